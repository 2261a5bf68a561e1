//! A JSON document as flat arrays borrowing the input's strings, for the schema check:
//! `jsonschema` validates any representation that implements its `Json` traits, and
//! building this one costs a few vector pushes per value instead of a `serde_json::Value`
//! tree (an allocation per string, array and object, and as many frees).
//!
//! Only the question "does it pass?" is asked of it. A document that fails, and one this
//! parse leaves out (not JSON, nested past [`MAX_JSON_DEPTH`], or with a key repeated in
//! one object, which `serde_json::Value` collapses), goes through `serde_json::Value` as
//! before, so the violations reported and their order do not change.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::codec::MAX_JSON_DEPTH;

/// One parsed document; node 0 is the root.
#[derive(Debug, Default)]
pub struct Doc<'a> {
    nodes: Vec<Slot<'a>>,
    /// The members of every object, each object's contiguous.
    members: Vec<(Cow<'a, str>, u32)>,
    /// The items of every array, each array's contiguous.
    items: Vec<u32>,
}

#[derive(Debug)]
enum Slot<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    /// First item in `items`, count.
    Arr(u32, u32),
    /// First member in `members`, count.
    Obj(u32, u32),
}

impl<'a> Doc<'a> {
    /// Parses `raw`, or `None` when it is not JSON, is nested deeper than
    /// [`MAX_JSON_DEPTH`], repeats a key in one object, or is too large to index with
    /// 32 bits.
    #[must_use]
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        Self::parse_with(raw, true)
    }

    /// [`Doc::parse`] without the search for repeated keys, which a walk that sorts
    /// each object's keys finds for itself (the ignore paths' digest).
    pub fn parse_keeping_repeats(raw: &'a [u8]) -> Option<Self> {
        Self::parse_with(raw, false)
    }

    fn parse_with(raw: &'a [u8], refuse_repeats: bool) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?;
        // Real exports hold a value per 50 bytes or so (long strings). The vectors start
        // at one per 32 bytes so that they rarely regrow (a regrowth copies them and
        // touches twice the memory); what they do not fill is address space only,
        // never touched.
        let nodes = raw.len() / 32;
        let mut b = Builder {
            doc: Doc {
                nodes: Vec::with_capacity(nodes),
                members: Vec::with_capacity(nodes),
                items: Vec::with_capacity(nodes / 4),
            },
            item_stack: Vec::new(),
            member_stack: Vec::new(),
            prints: Vec::new(),
            refuse_repeats,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        Seed {
            b: &mut b,
            depth: 0,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some(b.doc)
    }

    /// The root node.
    #[must_use]
    pub fn root(&self) -> DocNode<'_> {
        DocNode { doc: self, at: 0 }
    }
}

/// What one node of a [`Doc`] is, for walks outside `jsonschema` (the ignore paths'
/// digest, `crate::filter::ignore`): members and items come with the index of the first
/// one in the document, so that a walk can mark some as left out.
#[derive(Debug)]
pub(crate) enum View<'d, 'a> {
    Null,
    Bool(bool),
    Num(&'d Number),
    Str(&'d str),
    /// The index of the first item, and the items' nodes.
    Arr(usize, &'d [u32]),
    /// The index of the first member, and the members (key, node).
    Obj(usize, &'d [(Cow<'a, str>, u32)]),
}

impl<'a> Doc<'a> {
    /// The node `at` (0: the root).
    pub(crate) fn view(&self, at: u32) -> View<'_, 'a> {
        match &self.nodes[at as usize] {
            Slot::Null => View::Null,
            Slot::Bool(b) => View::Bool(*b),
            Slot::Num(n) => View::Num(n),
            Slot::Str(s) => View::Str(s),
            Slot::Arr(first, n) => View::Arr(
                *first as usize,
                &self.items[*first as usize..(first + n) as usize],
            ),
            Slot::Obj(first, n) => View::Obj(
                *first as usize,
                &self.members[*first as usize..(first + n) as usize],
            ),
        }
    }

    /// How many members (of all objects) and items (of all arrays) the document has.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.members.len(), self.items.len())
    }
}

struct Builder<'a> {
    doc: Doc<'a>,
    /// The items (then members) of the arrays (objects) being parsed, innermost last.
    item_stack: Vec<u32>,
    member_stack: Vec<(Cow<'a, str>, u32)>,
    /// The [`fingerprint`] of each key in `member_stack` (when repeats are refused).
    prints: Vec<u64>,
    /// Whether a key repeated in one object fails the parse.
    refuse_repeats: bool,
}

impl<'a> Builder<'a> {
    fn push<E: de::Error>(&mut self, slot: Slot<'a>) -> Result<u32, E> {
        let at = index(self.doc.nodes.len())?;
        self.doc.nodes.push(slot);
        Ok(at)
    }
}

fn index<E: de::Error>(n: usize) -> Result<u32, E> {
    u32::try_from(n).map_err(|_| E::custom("too large"))
}

/// How many keys of one object are searched one by one (by their fingerprints) for a
/// repeated one; a wider object's keys go into a set.
const LINEAR: usize = 64;

/// Eight bytes that differ for most pairs of different keys (their length, their first
/// and last eight bytes), compared before the keys themselves: a search through an
/// object's keys then compares integers instead of strings.
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let n = b.len();
    let word = |at: &[u8]| {
        let mut w = [0u8; 8];
        w[..at.len()].copy_from_slice(at);
        u64::from_le_bytes(w)
    };
    let (head, tail) = if n >= 8 {
        (word(&b[..8]), word(&b[n - 8..]))
    } else {
        (word(b), 0)
    };
    head ^ tail.rotate_left(29) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Parses one value into the builder; its node index is the result.
struct Seed<'s, 'a> {
    b: &'s mut Builder<'a>,
    depth: usize,
}

impl<'a> DeserializeSeed<'a> for Seed<'_, 'a> {
    type Value = u32;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Seed<'_, 'a> {
    fn inner<E: de::Error>(&mut self) -> Result<Seed<'_, 'a>, E> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(E::custom("too deep"));
        }
        Ok(Seed {
            b: self.b,
            depth: self.depth + 1,
        })
    }
}

impl<'a> Visitor<'a> for Seed<'_, 'a> {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<u32, E> {
        self.b.push(Slot::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        self.b.push(Slot::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        self.b.push(Slot::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
        // serde_json hands over finite numbers only, as `Value` takes them.
        let n = Number::from_f64(v).ok_or_else(|| E::custom("not finite"))?;
        self.b.push(Slot::Num(n))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<u32, E> {
        self.b.push(Slot::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        self.b.push(Slot::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<u32, E> {
        self.b.push(Slot::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<u32, E> {
        self.b.push(Slot::Null)
    }
    fn visit_seq<A: SeqAccess<'a>>(mut self, mut seq: A) -> Result<u32, A::Error> {
        let at = self.b.push(Slot::Null)?;
        let start = self.b.item_stack.len();
        while let Some(item) = seq.next_element_seed(self.inner()?)? {
            self.b.item_stack.push(item);
        }
        let first = index(self.b.doc.items.len())?;
        let n = index(self.b.item_stack.len() - start)?;
        let items = self.b.item_stack.drain(start..);
        self.b.doc.items.extend(items);
        self.b.doc.nodes[at as usize] = Slot::Arr(first, n);
        Ok(at)
    }
    fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<u32, A::Error> {
        let at = self.b.push(Slot::Null)?;
        let start = self.b.member_stack.len();
        let mut seen: Option<HashSet<Cow<'a, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if !self.b.refuse_repeats {
                let value = map.next_value_seed(self.inner()?)?;
                self.b.member_stack.push((key, value));
                continue;
            }
            let members = &self.b.member_stack[start..];
            let print = fingerprint(&key);
            let repeated = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let prints = &self.b.prints[start..];
                    holds(prints, print)
                        && prints
                            .iter()
                            .zip(members)
                            .any(|(p, (k, _))| *p == print && *k == key)
                }
            };
            if repeated {
                return Err(de::Error::custom("repeated key"));
            }
            if seen.is_none() && members.len() >= LINEAR {
                let mut set: HashSet<_> = members.iter().map(|(k, _)| k.clone()).collect();
                set.insert(key.clone());
                seen = Some(set);
            }
            let value = map.next_value_seed(self.inner()?)?;
            self.b.member_stack.push((key, value));
            self.b.prints.push(print);
        }
        let first = index(self.b.doc.members.len())?;
        let n = index(self.b.member_stack.len() - start)?;
        self.b.prints.truncate(start);
        let members = self.b.member_stack.drain(start..);
        self.b.doc.members.extend(members);
        self.b.doc.nodes[at as usize] = Slot::Obj(first, n);
        Ok(at)
    }
}

/// Whether `prints` holds `print`: eight at a time without a branch, which the compiler
/// turns into vector compares (an object's keys are searched once per key).
fn holds(prints: &[u64], print: u64) -> bool {
    let mut chunks = prints.chunks_exact(8);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &p| any | (p == print)) {
            return true;
        }
    }
    chunks.remainder().contains(&print)
}

/// An object key, borrowed from the input when it has no escapes.
struct Key;

impl<'a> DeserializeSeed<'a> for Key {
    type Value = Cow<'a, str>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for Key {
    type Value = Cow<'a, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'a str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The representation, for `jsonschema::options_for::<Borrowed>()`.
#[derive(Debug)]
pub struct Borrowed;

impl Json for Borrowed {
    type Node<'a> = DocNode<'a>;
    type PreparedKey = String;
    type StringBuffer = Doc<'static>;

    // A lookup is a search through the object's members.
    const KEYS_PER_LOOKUP: usize = 8;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut Doc<'static>,
        string: &str,
        f: impl FnOnce(DocNode<'_>) -> T,
    ) -> T {
        buffer.nodes.clear();
        buffer.nodes.push(Slot::Str(Cow::Owned(string.to_owned())));
        f(buffer.root())
    }
}

/// One node of a [`Doc`].
#[derive(Debug, Clone, Copy)]
pub struct DocNode<'a> {
    doc: &'a Doc<'a>,
    at: u32,
}

impl<'a> DocNode<'a> {
    fn slot(&self) -> &'a Slot<'a> {
        &self.doc.nodes[self.at as usize]
    }

    fn at(&self, at: u32) -> Self {
        Self { doc: self.doc, at }
    }
}

/// The members of one object.
#[derive(Debug, Clone, Copy)]
pub struct DocObject<'a> {
    node: DocNode<'a>,
    members: &'a [(Cow<'a, str>, u32)],
}

/// The items of one array.
#[derive(Debug, Clone, Copy)]
pub struct DocArray<'a> {
    node: DocNode<'a>,
    items: &'a [u32],
}

impl<'a> Node<'a, Borrowed> for DocNode<'a> {
    type Object = DocObject<'a>;
    type Array = DocArray<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<DocObject<'a>> {
        match *self.slot() {
            Slot::Obj(first, n) => Some(DocObject {
                node: *self,
                members: &self.doc.members[first as usize..(first + n) as usize],
            }),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<DocArray<'a>> {
        match *self.slot() {
            Slot::Arr(first, n) => Some(DocArray {
                node: *self,
                items: &self.doc.items[first as usize..(first + n) as usize],
            }),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.slot() {
            Slot::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self.slot() {
            Slot::Num(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.slot() {
            Slot::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.slot(), Slot::Null)
    }

    fn json_type(&self) -> JsonType {
        match self.slot() {
            Slot::Null => JsonType::Null,
            Slot::Bool(_) => JsonType::Boolean,
            Slot::Num(_) => JsonType::Number,
            Slot::Str(_) => JsonType::String,
            Slot::Arr(..) => JsonType::Array,
            Slot::Obj(..) => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(match self.slot() {
            Slot::Null => Value::Null,
            Slot::Bool(b) => Value::Bool(*b),
            Slot::Num(n) => Value::Number(n.clone()),
            Slot::Str(s) => Value::String(s.to_string()),
            Slot::Arr(..) => Value::Array(
                self.as_array()
                    .map(|a| a.items.iter().map(|&i| self.at(i).to_value().into_owned()))
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
            Slot::Obj(..) => Value::Object(
                self.as_object()
                    .map(|o| {
                        o.members
                            .iter()
                            .map(|(k, i)| (k.to_string(), self.at(*i).to_value().into_owned()))
                    })
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
        })
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref::<Doc<'_>>(self.doc) as usize,
            self.at,
        ))
    }
}

impl<'a> Object<'a, Borrowed> for DocObject<'a> {
    type Node = DocNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.members.len()
    }

    fn get(&self, key: &String) -> Option<DocNode<'a>> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, i)| self.node.at(*i))
    }

    fn members(&self) -> Members<'a> {
        Members {
            node: self.node,
            members: self.members.iter(),
        }
    }
}

/// The members of an object, in the document's order.
#[derive(Debug)]
pub struct Members<'a> {
    node: DocNode<'a>,
    members: std::slice::Iter<'a, (Cow<'a, str>, u32)>,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, DocNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.members
            .next()
            .map(|(k, i)| (k.as_ref(), self.node.at(*i)))
    }
}

impl<'a> Array<'a, Borrowed> for DocArray<'a> {
    type Node = DocNode<'a>;
    type ElementsIter = Items<'a>;

    fn len(&self) -> usize {
        self.items.len()
    }

    fn elements(&self) -> Items<'a> {
        Items {
            node: self.node,
            items: self.items.iter(),
        }
    }
}

/// The items of an array.
#[derive(Debug)]
pub struct Items<'a> {
    node: DocNode<'a>,
    items: std::slice::Iter<'a, u32>,
}

impl<'a> Iterator for Items<'a> {
    type Item = DocNode<'a>;

    fn next(&mut self) -> Option<DocNode<'a>> {
        self.items.next().map(|i| self.node.at(*i))
    }
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;

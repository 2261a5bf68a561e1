//! The fast path of a read filter that only selects a path (`.`, `.data`,
//! `.dashboard`, `.a.b`): the selected value is cut out of the export while it is
//! parsed and written out as compact JSON at once, without building jaq's values (an
//! allocation per string, array and object) and serialising them again.
//!
//! The output is byte for byte what the jaq program gives (serde_json parses the input
//! and writes every string and number, as on jaq's path; keys stay in their order), so
//! stored hashes do not depend on which path ran. Whenever that could differ, the fast
//! path gives up and the caller runs jaq: input that is not JSON (jaq then names the
//! error), a key that appears twice in one object (jaq keeps the last value, in the
//! first one's place), or a value on the path that is neither an object nor null (jaq
//! fails on it).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The keys a program selects, if it is only a path: `.` (no keys) or `.k1.k2...` with
/// identifier keys; `None` for anything else.
#[must_use]
pub fn path_of(code: &str) -> Option<Vec<String>> {
    let code = code.trim();
    if code == "." {
        return Some(Vec::new());
    }
    let rest = code.strip_prefix('.')?;
    rest.split('.')
        .map(|key| {
            let mut chars = key.chars();
            let first = chars.next()?;
            let ident = (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            ident.then(|| key.to_string())
        })
        .collect()
}

/// The value at `path` in a document already parsed into jaq's values, as the program
/// `path_of` read `path` from gives it (a missing key is null); `None` when jaq would
/// fail (a value on the path that is neither an object nor null), so that jaq says why.
#[must_use]
pub fn select_val(doc: &jaq_json::Val, path: &[String]) -> Option<jaq_json::Val> {
    use jaq_json::Val;
    let mut at = doc.clone();
    for key in path {
        at = match at {
            Val::Obj(map) => map
                .get(&Val::from(key.clone()))
                .cloned()
                .unwrap_or(Val::Null),
            Val::Null => Val::Null,
            _ => return None,
        };
    }
    Some(at)
}

/// The value at `path` in the JSON document `raw`, as the compact JSON text jaq would
/// write for the program `path_of` read `path` from; `None` when only jaq can tell
/// (see the module's documentation).
#[must_use]
pub fn select(raw: &[u8], path: &[String]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut state = State {
        // The selected value is usually most of the export.
        out: Vec::with_capacity(raw.len()),
        keys: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    Walk {
        state: &mut state,
        path,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(state.out)
}

struct State<'de> {
    out: Vec<u8>,
    /// The keys of the objects being written, innermost last, to find repeated ones.
    keys: Vec<Cow<'de, str>>,
}

/// Any reason to leave the document to jaq; never shown.
fn give_up<E: de::Error>() -> E {
    E::custom("left to jaq")
}

/// Follows `path` down the document, skipping (but parsing) everything else.
struct Walk<'s, 'de> {
    state: &'s mut State<'de>,
    path: &'s [String],
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(Emit { state: self.state })
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `.k` of null is null.
        self.state.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (key, rest) = self.path.split_first().ok_or_else(give_up)?;
        let mut found = false;
        while let Some(k) = map.next_key_seed(Key)? {
            if k == key.as_str() {
                if found {
                    return Err(give_up());
                }
                found = true;
                map.next_value_seed(Walk {
                    state: self.state,
                    path: rest,
                })?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        if !found {
            // A missing key is null.
            self.state.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    // Anything else on the path makes jaq fail ("cannot index"): jaq says so.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(give_up())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(give_up())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(give_up())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(give_up())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(give_up())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(give_up())
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value parsed as jaq's parse would (every string decoded), and dropped.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// How many keys of one object are searched one by one for a repeated one.
const LINEAR: usize = 32;

/// Writes the value as serde_json writes jaq's value of it (compact).
struct Emit<'s, 'de> {
    state: &'s mut State<'de>,
}

impl Emit<'_, '_> {
    fn write<T: serde::Serialize + ?Sized, E: de::Error>(&mut self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut self.state.out, v).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Emit<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Emit<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.write(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.state.out.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.state.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.state.out.len();
            if !first {
                self.state.out.push(b',');
            }
            if seq
                .next_element_seed(Emit {
                    state: &mut *self.state,
                })?
                .is_none()
            {
                // The separator was written before the end showed.
                self.state.out.truncate(at);
                break;
            }
            first = false;
        }
        self.state.out.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.state.out.push(b'{');
        let start = self.state.keys.len();
        // Small objects are searched; past `LINEAR` keys, a set takes over.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let repeated = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => self.state.keys[start..].contains(&key),
            };
            if repeated {
                return Err(give_up());
            }
            if seen.is_none() && self.state.keys.len() - start >= LINEAR {
                let mut set: HashSet<_> = self.state.keys[start..].iter().cloned().collect();
                set.insert(key.clone());
                seen = Some(set);
            }
            if self.state.keys.len() > start {
                self.state.out.push(b',');
            }
            self.write(key.as_ref())?;
            self.state.out.push(b':');
            self.state.keys.push(key);
            map.next_value_seed(Emit {
                state: &mut *self.state,
            })?;
        }
        self.state.keys.truncate(start);
        self.state.out.push(b'}');
        Ok(())
    }
}

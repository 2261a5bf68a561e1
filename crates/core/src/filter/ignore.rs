//! The fast path of the ignore paths' digest: when every ignore path is plain (`.a.b`,
//! `.list[].id`, `.[]`: keys that are identifiers, and `[]`), the document is parsed
//! into the borrowed [`Doc`] the schema check uses (strings borrowed from the input, no
//! jaq values), the paths are applied by marking what they delete, and the digest is
//! computed over what is left.
//!
//! The digest is byte for byte jaq's ([`super::value::digest`] over the result of the
//! program `try del(p) catch .` for each path in turn): a path that would fail anywhere
//! (a key looked up in an array, a string or a number; `[]` over null or a scalar)
//! deletes nothing, as the `catch` makes jaq do; a key looked up in null is null. When
//! the parse gives up (not JSON, too deep) or the walk meets a key repeated in one
//! object (jaq's parse keeps the last), the caller runs jaq.

use sha2::Digest as _;

use crate::schema::doc::{Doc, View};

/// One step of a plain path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.key`: the member of an object (null in null).
    Key(String),
    /// `[]`: every item of an array, every member of an object.
    Each,
}

/// The steps of a plain path, or `None` for anything else (left to jaq).
#[must_use]
pub fn plain_path(code: &str) -> Option<Vec<Step>> {
    let mut rest = code.trim().strip_prefix('.')?;
    let mut steps = Vec::new();
    // After the leading dot: a key, or `[]`.
    loop {
        if let Some(r) = rest.strip_prefix("[]") {
            steps.push(Step::Each);
            rest = r;
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let key = &rest[..end];
            if !key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                return None;
            }
            steps.push(Step::Key(key.to_string()));
            rest = &rest[end..];
        }
        while let Some(r) = rest.strip_prefix("[]") {
            steps.push(Step::Each);
            rest = r;
        }
        if rest.is_empty() {
            return Some(steps);
        }
        rest = rest.strip_prefix('.')?;
    }
}

/// What the paths leave out, by member and item index.
struct Gone {
    members: Vec<bool>,
    items: Vec<bool>,
}

/// The digest of the document `doc` without `paths`, prefixed by `names` (the paths as
/// configured), as [`super::EnvFilters`]' jaq path computes it; `None` when only jaq can
/// tell (a key repeated in one object, which jaq's parse collapses).
#[must_use]
pub fn digest(doc: &Doc<'_>, paths: &[Vec<Step>], names: &[String]) -> Option<String> {
    let (members, items) = doc.counts();
    let mut gone = Gone {
        members: vec![false; members],
        items: vec![false; items],
    };
    for path in paths {
        if path.is_empty() {
            return None;
        }
        if valid(doc, &gone, 0, path) {
            delete(doc, &mut gone, 0, path);
        }
    }
    let mut hasher = sha2::Sha256::new();
    for name in names {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
    }
    let mut walk = Walk {
        doc,
        gone: &gone,
        hasher,
        pending: Vec::with_capacity(PENDING),
        keys: Vec::new(),
        number: String::new(),
    };
    if !walk.hash(0) {
        return None;
    }
    walk.flush();
    Some(hex::encode(walk.hasher.finalize()))
}

/// The member of `key` still there in an object's members.
fn member(
    first: usize,
    members: &[(std::borrow::Cow<'_, str>, u32)],
    gone: &Gone,
    key: &str,
) -> Option<(usize, u32)> {
    members
        .iter()
        .enumerate()
        .find(|(i, (k, _))| !gone.members[first + i] && k == key)
        .map(|(i, (_, node))| (first + i, *node))
}

/// Whether the path can be followed from `at` without an error.
fn valid(doc: &Doc<'_>, gone: &Gone, at: u32, path: &[Step]) -> bool {
    let Some((step, rest)) = path.split_first() else {
        return true;
    };
    match (step, doc.view(at)) {
        // Null's members are null; iterating null fails.
        (Step::Key(_), View::Null) => rest.iter().all(|s| matches!(s, Step::Key(_))),
        (Step::Key(k), View::Obj(first, members)) => match member(first, members, gone, k) {
            Some((_, node)) => valid(doc, gone, node, rest),
            None => rest.iter().all(|s| matches!(s, Step::Key(_))),
        },
        (Step::Each, View::Arr(first, items)) => items
            .iter()
            .enumerate()
            .all(|(i, &node)| gone.items[first + i] || valid(doc, gone, node, rest)),
        (Step::Each, View::Obj(first, members)) => members
            .iter()
            .enumerate()
            .all(|(i, (_, node))| gone.members[first + i] || valid(doc, gone, *node, rest)),
        _ => false,
    }
}

/// Marks what the path deletes from `at` (the path is [`valid`] there).
fn delete(doc: &Doc<'_>, gone: &mut Gone, at: u32, path: &[Step]) {
    let Some((step, rest)) = path.split_first() else {
        return;
    };
    match (step, doc.view(at)) {
        (Step::Key(k), View::Obj(first, members)) => {
            if let Some((i, node)) = member(first, members, gone, k) {
                if rest.is_empty() {
                    gone.members[i] = true;
                } else {
                    delete(doc, gone, node, rest);
                }
            }
        }
        (Step::Each, View::Arr(first, items)) => {
            for (i, &node) in items.iter().enumerate() {
                if rest.is_empty() {
                    gone.items[first + i] = true;
                } else if !gone.items[first + i] {
                    delete(doc, gone, node, rest);
                }
            }
        }
        (Step::Each, View::Obj(first, members)) => {
            for (i, (_, node)) in members.iter().enumerate() {
                if rest.is_empty() {
                    gone.members[first + i] = true;
                } else if !gone.members[first + i] {
                    delete(doc, gone, *node, rest);
                }
            }
        }
        // Null (and, for a valid path, nothing else) has nothing to delete.
        _ => {}
    }
}

/// How many bytes [`Walk`] gathers before it hashes them: the walk's pieces are a few
/// bytes each (a tag, a length), and one `update` per piece cost more than hashing them.
const PENDING: usize = 16 * 1024;

/// The hash of what the paths leave, with its scratch space: the bytes not yet hashed,
/// the sorted members of the objects being hashed (innermost last) and a number's text.
struct Walk<'w, 'a> {
    doc: &'w Doc<'a>,
    gone: &'w Gone,
    hasher: sha2::Sha256,
    pending: Vec<u8>,
    keys: Vec<(&'w str, u32, bool)>,
    number: String,
}

impl Walk<'_, '_> {
    fn put(&mut self, bytes: &[u8]) {
        if self.pending.len() + bytes.len() > PENDING {
            self.flush();
            if bytes.len() > PENDING / 2 {
                self.hasher.update(bytes);
                return;
            }
        }
        self.pending.extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        self.hasher.update(&self.pending);
        self.pending.clear();
    }

    fn len(&mut self, n: usize) {
        self.put(&(n as u64).to_le_bytes());
    }

    /// Feeds what is left of node `at` to the hasher, as `value::digest` does; false
    /// for a key repeated in one object.
    fn hash(&mut self, at: u32) -> bool {
        let all = self.gone;
        match self.doc.view(at) {
            View::Null => self.put(b"n"),
            View::Bool(b) => self.put(if b { b"t" } else { b"f" }),
            View::Num(n) => {
                use std::fmt::Write as _;
                self.number.clear();
                let _ = write!(self.number, "{n}");
                self.put(b"#");
                let number = std::mem::take(&mut self.number);
                self.put(number.as_bytes());
                self.number = number;
                self.put(b";");
            }
            View::Str(s) => {
                self.put(b"s");
                self.len(s.len());
                self.put(s.as_bytes());
            }
            View::Arr(first, items) => {
                let gone = &all.items[first..first + items.len()];
                self.put(b"[");
                self.len(gone.iter().filter(|g| !**g).count());
                for (&node, &gone) in items.iter().zip(gone) {
                    if !gone && !self.hash(node) {
                        return false;
                    }
                }
            }
            View::Obj(first, members) => {
                // Every member is sorted, the deleted too, so that a repeated key is seen.
                let base = self.keys.len();
                let gone = &all.members[first..first + members.len()];
                self.keys.extend(
                    members
                        .iter()
                        .zip(gone)
                        .map(|((k, node), &gone)| (k.as_ref(), *node, gone)),
                );
                let sorted = &mut self.keys[base..];
                sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
                    return false;
                }
                let left = sorted.iter().filter(|m| !m.2).count();
                self.put(b"{");
                self.len(left);
                for i in base..base + members.len() {
                    let (key, node, gone) = self.keys[i];
                    if gone {
                        continue;
                    }
                    self.len(key.len());
                    self.put(key.as_bytes());
                    if !self.hash(node) {
                        return false;
                    }
                }
                self.keys.truncate(base);
            }
        }
        true
    }
}

//! One walk over both documents that writes the JSON Patch and the readable changes
//! together.
//!
//! The patch is applied in order, so each operation's path is where the value is at that
//! moment. The walk keeps that true by settling an array's shape (removals, moves,
//! insertions) before it descends into the items the two versions share: by then every
//! ancestor already has the new document's shape, and an item's patch path is its path
//! in the new document.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};
use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use super::identity::{identity_key, item_label, segment};
use super::{Change, order};

/// How long one diff may spend looking for the longest common subsequences of arrays
/// without identities (Myers is O(n·d)); past it they are still correct, maybe longer.
const SEQUENCE_BUDGET: Duration = Duration::from_secs(1);

/// Where a value is: in the old document, in the new one, and the same two written with
/// keyed items named by their identity.
#[derive(Debug, Clone, Default)]
struct Loc {
    old: PointerBuf,
    new: PointerBuf,
    old_id: String,
    new_id: String,
}

impl Loc {
    /// An object member: the same key in both documents.
    fn member(&self, key: &str) -> Self {
        let seg = escape(key);
        self.child(key.into(), key.into(), &seg, &seg)
    }

    /// An array item compared by position.
    fn index(&self, old: usize, new: usize) -> Self {
        self.child(old.into(), new.into(), &old.to_string(), &new.to_string())
    }

    /// A keyed array item: its indices differ, its identity does not.
    fn item(&self, old: usize, new: usize, seg: &str) -> Self {
        self.child(old.into(), new.into(), seg, seg)
    }

    fn child(
        &self,
        old: json_patch::jsonptr::Token<'_>,
        new: json_patch::jsonptr::Token<'_>,
        old_seg: &str,
        new_seg: &str,
    ) -> Self {
        let mut loc = self.clone();
        loc.old.push_back(old);
        loc.new.push_back(new);
        loc.old_id = format!("{}/{old_seg}", self.old_id);
        loc.new_id = format!("{}/{new_seg}", self.new_id);
        loc
    }
}

/// A JSON pointer token: `~` as `~0`, `/` as `~1`.
pub(super) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn at(base: &PointerBuf, index: usize) -> PointerBuf {
    let mut p = base.clone();
    p.push_back(index);
    p
}

/// The patch and the changes, with a label for each change that names a keyed item.
#[derive(Debug)]
pub(super) struct Walk<'k> {
    keys: &'k [String],
    /// After this, Myers gives up on minimal sequences and settles for correct ones.
    deadline: Instant,
    pub ops: Vec<PatchOperation>,
    pub changes: Vec<Change>,
    pub labels: Vec<Option<String>>,
}

impl<'k> Walk<'k> {
    pub fn run(keys: &'k [String], a: &Value, b: &Value) -> Self {
        let mut w = Self {
            keys,
            deadline: Instant::now() + SEQUENCE_BUDGET,
            ops: Vec::new(),
            changes: Vec::new(),
            labels: Vec::new(),
        };
        w.value(a, b, &Loc::default());
        w
    }

    fn note(&mut self, change: Change, label: Option<String>) {
        self.changes.push(change);
        self.labels.push(label);
    }

    fn value(&mut self, a: &Value, b: &Value, loc: &Loc) {
        if a == b {
            return;
        }
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => self.object(a, b, loc),
            (Value::Array(a), Value::Array(b)) => match identity_key(self.keys, a, b) {
                Some(key) => self.keyed(a, b, key, loc),
                None => self.sequence(a, b, loc),
            },
            _ => {
                self.ops.push(PatchOperation::Replace(ReplaceOperation {
                    path: loc.new.clone(),
                    value: b.clone(),
                }));
                self.note(
                    Change::Changed {
                        path: loc.new.to_string(),
                        id_path: loc.new_id.clone(),
                        from: a.clone(),
                        to: b.clone(),
                    },
                    None,
                );
            }
        }
    }

    fn object(&mut self, a: &Map<String, Value>, b: &Map<String, Value>, loc: &Loc) {
        for (key, old) in a {
            let child = loc.member(key);
            match b.get(key) {
                Some(new) => self.value(old, new, &child),
                None => {
                    self.ops.push(PatchOperation::Remove(RemoveOperation {
                        path: child.new.clone(),
                    }));
                    self.removed(&child, old, None);
                }
            }
        }
        for (key, new) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
            let child = loc.member(key);
            self.ops.push(PatchOperation::Add(AddOperation {
                path: child.new.clone(),
                value: new.clone(),
            }));
            self.added(&child, new, None);
        }
    }

    fn removed(&mut self, loc: &Loc, value: &Value, label: Option<String>) {
        let change = Change::Removed {
            path: loc.old.to_string(),
            id_path: loc.old_id.clone(),
            value: value.clone(),
        };
        self.note(change, label);
    }

    fn added(&mut self, loc: &Loc, value: &Value, label: Option<String>) {
        let change = Change::Added {
            path: loc.new.to_string(),
            id_path: loc.new_id.clone(),
            value: value.clone(),
        };
        self.note(change, label);
    }

    /// An array without identities: the longest common subsequence of whole items
    /// (Myers) stays; around it, an old item and a new one facing each other are compared
    /// in depth, and the rest are removed or added.
    fn sequence(&mut self, a: &[Value], b: &[Value], loc: &Loc) {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |v: &Value| {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            *ids.entry(v.to_string()).or_insert(next)
        };
        let ia: Vec<u32> = a.iter().map(&mut intern).collect();
        let ib: Vec<u32> = b.iter().map(&mut intern).collect();
        // `pos` is where the walk is in the array being patched; it is always the index
        // in the new document too, since everything before it already has the new shape.
        let mut pos = 0;
        for op in capture_diff_slices_deadline(Algorithm::Myers, &ia, &ib, Some(self.deadline)) {
            let (old_index, old_len, new_index, new_len) = match op {
                DiffOp::Equal { len, .. } => {
                    pos += len;
                    continue;
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => (old_index, old_len, 0, 0),
                DiffOp::Insert {
                    new_index, new_len, ..
                } => (0, 0, new_index, new_len),
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => (old_index, old_len, new_index, new_len),
            };
            let paired = old_len.min(new_len);
            for k in 0..paired {
                let (i, j) = (old_index + k, new_index + k);
                self.value(&a[i], &b[j], &loc.index(i, j));
            }
            pos += paired;
            let old_rest = old_index + paired..old_index + old_len;
            for (i, old) in old_rest.clone().zip(&a[old_rest]) {
                self.ops.push(PatchOperation::Remove(RemoveOperation {
                    path: at(&loc.new, pos),
                }));
                self.removed(&loc.index(i, pos), old, None);
            }
            let new_rest = new_index + paired..new_index + new_len;
            for (j, new) in new_rest.clone().zip(&b[new_rest]) {
                self.ops.push(PatchOperation::Add(AddOperation {
                    path: at(&loc.new, pos),
                    value: new.clone(),
                }));
                self.added(&loc.index(pos, j), new, None);
                pos += 1;
            }
        }
    }

    /// An array whose items have identities under `key`: items only the old version
    /// has are removed, items only the new one has are added, shared items are compared
    /// in depth, and the fewest shared items are moved to give the new order.
    fn keyed(&mut self, a: &[Value], b: &[Value], key: &str, loc: &Loc) {
        let id = |v: &Value| v.get(key).map(Value::to_string).unwrap_or_default();
        let old_at: HashMap<String, usize> =
            a.iter().enumerate().map(|(i, v)| (id(v), i)).collect();
        let new_ids: Vec<String> = b.iter().map(id).collect();
        let new_set: HashSet<&str> = new_ids.iter().map(String::as_str).collect();
        let seg = |v: &Value| segment(key, v.get(key).unwrap_or(&Value::Null));

        // Removals, from the end so that each index is still right when it applies.
        let kept: Vec<bool> = a.iter().map(|v| new_set.contains(id(v).as_str())).collect();
        let gone: Vec<usize> = (0..a.len()).filter(|&i| !kept[i]).collect();
        for &i in gone.iter().rev() {
            self.ops.push(PatchOperation::Remove(RemoveOperation {
                path: at(&loc.new, i),
            }));
        }
        for &i in &gone {
            let item = Loc {
                old: at(&loc.old, i),
                old_id: format!("{}/{}", loc.old_id, seg(&a[i])),
                ..Loc::default()
            };
            self.removed(&item, &a[i], Some(item_label(&a[i], key)));
        }

        // The shared items in the new order, as positions in what is left after the
        // removals; the fewest of them move.
        let mut left_at = vec![usize::MAX; a.len()];
        for (p, i) in (0..a.len()).filter(|&i| kept[i]).enumerate() {
            left_at[i] = p;
        }
        let wanted: Vec<usize> = new_ids
            .iter()
            .filter_map(|n| old_at.get(n).map(|&i| left_at[i]))
            .collect();
        let order = order::moves(&wanted);
        for (from, to) in order.ops {
            self.ops.push(PatchOperation::Move(MoveOperation {
                from: at(&loc.new, from),
                path: at(&loc.new, to),
            }));
        }

        // Insertions in the new order: each lands at its final index.
        for (j, item) in b.iter().enumerate() {
            if !old_at.contains_key(&new_ids[j]) {
                self.ops.push(PatchOperation::Add(AddOperation {
                    path: at(&loc.new, j),
                    value: item.clone(),
                }));
            }
        }

        // The readable changes in the new order; shared items are compared in depth,
        // now that the array has its new shape.
        for (j, new) in b.iter().enumerate() {
            let s = seg(new);
            match old_at.get(&new_ids[j]) {
                None => {
                    let item = Loc {
                        new: at(&loc.new, j),
                        new_id: format!("{}/{s}", loc.new_id),
                        ..Loc::default()
                    };
                    self.added(&item, new, Some(item_label(new, key)));
                }
                Some(&i) => {
                    let item = loc.item(i, j, &s);
                    if order.moved[left_at[i]] {
                        let change = Change::Moved {
                            path: item.new.to_string(),
                            from: item.old.to_string(),
                            id_path: item.new_id.clone(),
                        };
                        self.note(change, Some(item_label(new, key)));
                    }
                    self.value(&a[i], new, &item);
                }
            }
        }
    }
}

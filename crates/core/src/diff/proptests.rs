//! The patch, applied in order to the old document, gives the new one: for arbitrary
//! pairs of documents, and for flows of keyed nodes edited by deletions, insertions,
//! reorders and property changes, whose readable changes are also counted.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Change, Diff, DiffOptions};

/// Any JSON, from few keys and small values so that two documents overlap; objects
/// often carry an `id` from a small set, so some arrays are keyed and some have repeats.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0i64..4).prop_map(Value::from),
        "[ab/~]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let with_id = (
            0u8..6,
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3),
        )
            .prop_map(|(id, m)| {
                let mut o: serde_json::Map<String, Value> = m.into_iter().collect();
                o.insert("id".into(), format!("n{id}").into());
                Value::Object(o)
            });
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-c/~]|id|name", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            prop::collection::vec(with_id.clone(), 0..6).prop_map(Value::Array),
            with_id,
        ]
    })
}

/// A node of a flow: identity, type, name, a number that edits change, and wires.
fn node(id: &str, v: i64) -> Value {
    json!({"id": id, "type": "function", "name": format!("node {id}"), "v": v, "wires": [[id]]})
}

/// An edit of a flow of `n` nodes: which nodes stay, which of those change, the new
/// order of the ones that stay, and where new nodes go.
#[derive(Debug, Clone)]
struct Edit {
    n: usize,
    keep: Vec<bool>,
    change: Vec<bool>,
    order: Vec<usize>,
    inserts: Vec<usize>,
}

fn edit() -> impl Strategy<Value = Edit> {
    (0usize..16).prop_flat_map(|n| {
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        let reorder = prop_oneof![Just((0..n).collect::<Vec<_>>()).boxed(), order.boxed()];
        (
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(prop::bool::weighted(0.2), n),
            reorder,
            prop::collection::vec(0usize..20, 0..4),
        )
            .prop_map(move |(keep, change, order, inserts)| Edit {
                n,
                keep,
                change,
                order,
                inserts,
            })
    })
}

impl Edit {
    fn before(&self) -> Vec<Value> {
        (0..self.n).map(|i| node(&format!("n{i}"), 1)).collect()
    }

    fn after(&self) -> Vec<Value> {
        let mut flow: Vec<Value> = self
            .order
            .iter()
            .filter(|&&i| self.keep[i])
            .map(|&i| node(&format!("n{i}"), if self.change[i] { 2 } else { 1 }))
            .collect();
        for (k, &at) in self.inserts.iter().enumerate() {
            flow.insert(at.min(flow.len()), node(&format!("new{k}"), 1));
        }
        flow
    }

    fn removed(&self) -> usize {
        self.keep.iter().filter(|k| !**k).count()
    }

    fn changed(&self) -> usize {
        (0..self.n)
            .filter(|&i| self.keep[i] && self.change[i])
            .count()
    }
}

fn count(d: &Diff, f: fn(&Change) -> bool) -> usize {
    d.changes().iter().filter(|c| f(c)).count()
}

fn patched(a: &Value, d: &Diff) -> Value {
    let mut doc = a.clone();
    json_patch::patch(&mut doc, d.patch()).expect("the patch applies");
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_pair_patches(a in any_json(), b in any_json()) {
        let d = Diff::values(&a, &b);
        prop_assert_eq!(patched(&a, &d), b.clone());
        prop_assert_eq!(d.is_empty(), a == b);
        let positional = DiffOptions::default().keys(Vec::<String>::new()).values(&a, &b);
        prop_assert_eq!(patched(&a, &positional), b);
    }

    #[test]
    fn edited_flows_patch_and_count(e in edit(), nested in any::<bool>()) {
        let (old, new) = (Value::Array(e.before()), Value::Array(e.after()));
        // A flow at the root, or inside a document next to other changes.
        let (a, b) = if nested {
            (json!({"flows": old, "rev": "1"}), json!({"rev": "2", "flows": new}))
        } else {
            (old, new)
        };
        let d = Diff::values(&a, &b);
        prop_assert_eq!(patched(&a, &d), b.clone());

        // One change per node added or removed, one per property changed, the rev.
        let rev = usize::from(nested);
        prop_assert_eq!(count(&d, |c| matches!(c, Change::Added { .. })), e.inserts.len());
        prop_assert_eq!(count(&d, |c| matches!(c, Change::Removed { .. })), e.removed());
        prop_assert_eq!(count(&d, |c| matches!(c, Change::Changed { .. })), e.changed() + rev);
        let moved = count(&d, |c| matches!(c, Change::Moved { .. }));
        let kept: Vec<usize> = e.order.iter().copied().filter(|&i| e.keep[i]).collect();
        if kept.windows(2).all(|w| w[0] < w[1]) {
            prop_assert_eq!(moved, 0, "the order of the kept nodes is unchanged");
        } else {
            prop_assert!(moved > 0 && moved < kept.len());
        }
        // Every line but the count names a node by identity; the count adds up.
        let text = d.render(80);
        let lines: Vec<&str> = text.lines().collect();
        prop_assert_eq!(lines.len(), d.changes().len() + 1);
        let prefix = if nested { "/flows/[id=" } else { "/[id=" };
        for line in &lines[..lines.len() - 1] {
            prop_assert!(line[2..].starts_with(prefix) || line.starts_with("~ /rev"), "{}", line);
        }
    }
}

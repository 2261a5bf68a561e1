//! Identities of array items: which key gives them, and how an identity is written in a
//! readable path.

use std::collections::HashSet;

use serde_json::Value;

use super::walk::escape;

/// The first of `keys` that identifies the items of both arrays: every item is an object
/// that has the key with a scalar value (string, number or boolean), unique within its
/// array. `None` when some item is not an object, or no key qualifies.
pub(super) fn identity_key<'k>(keys: &'k [String], a: &[Value], b: &[Value]) -> Option<&'k str> {
    if (a.is_empty() && b.is_empty()) || !a.iter().chain(b).all(Value::is_object) {
        return None;
    }
    keys.iter()
        .map(String::as_str)
        .find(|key| unique_scalars(a, key) && unique_scalars(b, key))
}

fn unique_scalars(items: &[Value], key: &str) -> bool {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().all(|item| match item.get(key) {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
            seen.insert(v.to_string())
        }
        _ => false,
    })
}

/// A keyed item as one path segment, `[key=value]`: a string made of letters, digits and
/// `._:@+-` that reads as no other JSON value is written bare, anything else as JSON
/// (`[name="My flow"]`, `[id=7]`, `[id="7"]`). `~` and `/` are escaped as in a JSON
/// pointer.
pub(super) fn segment(key: &str, value: &Value) -> String {
    let shown = match value {
        Value::String(s) if bare(s) => s.clone(),
        other => other.to_string(),
    };
    escape(&format!("[{key}={shown}]"))
}

fn bare(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@+-".contains(c))
        && serde_json::from_str::<Value>(s).is_err()
}

/// What names a keyed item besides its identity: its `type` and its `name` (quoted), when
/// they are strings and not the identity key itself. Empty when it has neither.
pub(super) fn item_label(item: &Value, key: &str) -> String {
    let field = |k: &str| match item.get(k) {
        Some(Value::String(s)) if k != key => Some(s.as_str()),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(t) = field("type") {
        parts.push(t.to_string());
    }
    if let Some(n) = field("name") {
        parts.push(Value::from(n).to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Vec<String> {
        ["id", "uid", "name"].map(String::from).to_vec()
    }

    #[test]
    fn picks_the_first_key_every_item_has_uniquely() {
        let k = keys();
        let a = [json!({"id": 1, "name": "x"}), json!({"id": 2, "name": "x"})];
        assert_eq!(identity_key(&k, &a, &[]), Some("id"));
        let a = [json!({"id": 1, "name": "x"}), json!({"id": 1, "name": "y"})];
        assert_eq!(identity_key(&k, &a, &[]), Some("name"), "ids repeat");
        let a = [json!({"id": 1}), json!({"uid": "u"})];
        assert_eq!(identity_key(&k, &a, &[]), None, "no key on every item");
        let a = [json!({"id": 1}), json!({"id": 2})];
        let b = [json!({"id": 1}), json!({"name": "z"})];
        assert_eq!(identity_key(&k, &a, &b), None, "both versions must qualify");
        let a = [json!({"id": [1]}), json!({"id": null})];
        assert_eq!(identity_key(&k, &a, &[]), None, "not scalars");
        let a = [json!({"id": 1}), json!(2)];
        assert_eq!(identity_key(&k, &a, &[]), None, "an item is not an object");
        let a = [json!({"id": "1"}), json!({"id": 1})];
        assert_eq!(identity_key(&k, &a, &[]), Some("id"), "\"1\" is not 1");
        assert_eq!(identity_key(&[], &a, &[]), None, "no keys: nothing keyed");
    }

    #[test]
    fn segments_are_greppable_and_unambiguous() {
        assert_eq!(
            segment("id", &json!("3cc11d24.ff01a2")),
            "[id=3cc11d24.ff01a2]"
        );
        assert_eq!(segment("id", &json!(7)), "[id=7]");
        assert_eq!(segment("id", &json!("7")), "[id=\"7\"]");
        assert_eq!(segment("id", &json!("true")), "[id=\"true\"]");
        assert_eq!(segment("name", &json!("My flow")), "[name=\"My flow\"]");
        assert_eq!(segment("name", &json!("a/b~c")), "[name=\"a~1b~0c\"]");
    }

    #[test]
    fn labels_name_type_and_name() {
        let node = json!({"id": "n1", "type": "comment", "name": "note"});
        assert_eq!(item_label(&node, "id"), "comment \"note\"");
        assert_eq!(item_label(&node, "name"), "comment");
        assert_eq!(item_label(&json!({"id": "n1", "type": 3}), "id"), "");
    }
}

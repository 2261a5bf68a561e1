//! The borrowed document agrees with `serde_json::Value` on what passes a schema and
//! with the JSON check on what is JSON.

use serde_json::json;

use super::*;
use crate::codec::check_json;

/// `schema` compiled for both representations.
fn validators(schema: &Value) -> (jsonschema::Validator, jsonschema::Validator<Borrowed>) {
    let by_value = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .unwrap();
    let borrowed = jsonschema::options_for::<Borrowed>()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .unwrap();
    (by_value, borrowed)
}

fn agree(schema: &Value, raw: &[u8]) -> bool {
    let (by_value, borrowed) = validators(schema);
    let doc = Doc::parse(raw).expect("parsed");
    let value: Value = serde_json::from_slice(raw).unwrap();
    let valid = by_value.is_valid(&value);
    assert_eq!(
        borrowed.is_valid(doc.root()),
        valid,
        "{schema} on {}",
        String::from_utf8_lossy(&raw[..raw.len().min(80)])
    );
    assert_eq!(
        borrowed.iter_errors(doc.root()).count(),
        by_value.iter_errors(&value).count(),
        "{schema}: as many violations"
    );
    valid
}

#[test]
fn meets_jsonschemas_contract_for_representations() {
    let raw = serde_json::to_vec(&jsonschema::json::conformance::document()).unwrap();
    let doc = Doc::parse(&raw).unwrap();
    jsonschema::json::conformance::assert_conformance::<Borrowed>(&doc.root());
}

#[test]
fn real_exports_pass_and_fail_the_same_schemas_as_with_values() {
    let dir = crate::testutil::corpus_dir();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let file = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(format!("{root}/{p}")).unwrap()).unwrap()
    };
    let schemas = [
        file("bench/schema/walk.json"),
        file("schemas/node-red-flows.json"),
        json!({"type": "array", "items": {"required": ["id", "type"]}}),
        json!({"type": "object", "maxProperties": 3}),
        json!({"properties": {"name": {"type": "string", "minLength": 4, "pattern": "^[A-Z]"}},
               "additionalProperties": {"type": ["object", "array", "string", "number", "boolean", "null"]}}),
        json!({"propertyNames": {"maxLength": 12}, "patternProperties": {"^e": {"type": "object"}}}),
        json!({"items": {"uniqueItems": true}, "contains": {"const": {"type": "tab"}}}),
        json!({"$defs": {"any": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/any"}},
               {"type": "object", "additionalProperties": {"$ref": "#/$defs/any"}},
               {"not": {"type": ["array", "object"]}, "enum": [null, true, false, 0, ""]},
               {"type": ["string", "number"]}]}}, "$ref": "#/$defs/any"}),
    ];
    let (mut files, mut passed, mut failed) = (0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        for schema in &schemas {
            if agree(schema, &raw) {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        files += 1;
    }
    assert!(files >= 5, "the real exports are in {}", dir.display());
    assert!(
        passed > files && failed > files,
        "{passed} passed, {failed} failed"
    );
}

#[test]
fn numbers_strings_and_names_compare_as_with_values() {
    let raw = br#"{"i": 3, "n": -4, "f": 2.5, "w": 2.0, "big": 18446744073709551615, "s": "caf\u00e9 \ud83d\ude00",
        "long_property_name": [1, 1.0, "1"], "e": {}, "a": [[], {}, null]}"#;
    for schema in [
        json!({"properties": {"i": {"type": "integer", "multipleOf": 3, "maximum": 3}}}),
        json!({"properties": {"w": {"type": "integer"}, "f": {"exclusiveMinimum": 2.5}}}),
        json!({"properties": {"n": {"minimum": -4}, "big": {"maximum": 1e19}}}),
        json!({"properties": {"s": {"maxLength": 6}}}),
        json!({"properties": {"s": {"maxLength": 5}}}),
        json!({"propertyNames": {"maxLength": 10}}),
        json!({"properties": {"long_property_name": {"uniqueItems": true}}}),
        json!({"properties": {"a": {"prefixItems": [{"type": "array"}, {"type": "object"}, {"type": "null"}]}}}),
        json!({"properties": {"a": {"const": [[], {}, null]}, "e": {"enum": [{}]}}}),
        json!({"required": ["i", "zz"], "minProperties": 10, "dependentRequired": {"i": ["s"]}}),
    ] {
        agree(&schema, raw);
    }
}

#[test]
fn takes_what_the_json_check_takes_but_repeated_keys() {
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    for raw in [
        deep(crate::codec::MAX_JSON_DEPTH),
        deep(crate::codec::MAX_JSON_DEPTH + 1),
        b"{\"a\":\"\xff\"}".to_vec(),
        br#"["\ud800"]"#.to_vec(),
        br#"{"a":1} x"#.to_vec(),
        br#"[1e400]"#.to_vec(),
        br#"[1,]"#.to_vec(),
        br#" "text" "#.to_vec(),
        br#"{"a\u0000b":[true,null]}"#.to_vec(),
    ] {
        assert_eq!(
            Doc::parse(&raw).is_some(),
            check_json(&raw, "x").is_ok(),
            "{}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
    }
    // `Value` keeps the last of repeated keys: such documents go its way.
    let repeated = br#"{"x":{"a":1,"b":2,"a":"one"}}"#;
    assert!(check_json(repeated, "x").is_ok());
    assert!(Doc::parse(repeated).is_none());
    // Keys of one length that share their first and last eight bytes have one
    // fingerprint: told apart by their text, in objects searched key by key (40) and
    // through a set (100).
    for n in [40, 100] {
        let alike: Vec<String> = (0..n)
            .map(|i| format!("\"abcdefgh-{i:03}-stuvwxyz\":{i}"))
            .collect();
        let raw = format!("{{{}}}", alike.join(","));
        let doc = Doc::parse(raw.as_bytes()).expect("no key repeats");
        assert_eq!(doc.root().as_object().unwrap().len(), n);
        let raw = format!("{{{},\"abcdefgh-017-stuvwxyz\":0}}", alike.join(","));
        assert!(
            Doc::parse(raw.as_bytes()).is_none(),
            "{n} keys and a repeat"
        );
    }
    let wide: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
    let raw = format!("{{{},\"k7\":0}}", wide.join(","));
    assert!(Doc::parse(raw.as_bytes()).is_none());
    let raw = format!("{{{}}}", wide.join(","));
    assert_eq!(
        Doc::parse(raw.as_bytes())
            .unwrap()
            .root()
            .as_object()
            .unwrap()
            .len(),
        100
    );
}

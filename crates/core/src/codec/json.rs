//! The JSON check: what jetvault accepts as a configuration, and so what it stores.

use crate::error::{Error, Result};

/// The deepest nesting [`check_json`] accepts: at most this many arrays and objects open
/// at once (`[]` is depth 1, `{"a":[1]}` depth 2, a bare scalar depth 0).
///
/// Why 100: `diff`, `GET .../diff` and restore's plan parse snapshots with serde_json,
/// whose default recursion limit reads at most 127 levels; a limit below that keeps
/// every stored snapshot readable by them (a deeper one would be stored and then fail
/// there), and lets this check, not serde_json's, name the limit. The deepest real
/// export in `tests/data` and the shared corpus nests 38 levels (an Appsmith widget
/// tree), so 100 leaves room for deeper apps while keeping the parser's native stack
/// small and bounded.
pub const MAX_JSON_DEPTH: usize = 100;

/// Checks that `raw` is one valid JSON document (RFC 8259) that jetvault can read back.
///
/// Everything serde_json checks when it parses a `serde_json::Value` is checked here:
/// the structure, the number syntax (and that each number fits an `f64`), that every
/// string and key is valid UTF-8 with valid escapes (a lone or mis-paired surrogate
/// escape such as `"\ud800"` or `"\udc00"` is refused), no trailing data (whitespace
/// aside), and nesting of at most [`MAX_JSON_DEPTH`] arrays and objects. Nothing is
/// built: strings are validated in place and dropped. Depth is counted here and the
/// parser stops at the first container past the limit, so deeply nested input is
/// refused fast and native-stack use stays bounded.
///
/// # Errors
/// `InvalidInput` naming `what`, what was wrong, and the line and column of the first
/// error (a column counts bytes).
pub fn check_json(raw: &[u8], what: &str) -> Result<()> {
    // Outside strings valid JSON is ASCII, so the document is valid UTF-8 exactly when
    // every string and key is. One pass over the whole buffer costs far less than
    // serde_json validating each string on its own (a third of the check's time on a
    // real export), and then serde_json reads the document as a `str`.
    let text = std::str::from_utf8(raw).map_err(|e| {
        let (line, column) = line_column(raw, e.valid_up_to());
        Error::invalid(format!(
            "{what} is not valid JSON: not valid UTF-8 at byte offset {} (line {line} column \
             {column})",
            e.valid_up_to()
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Checked { depth: 0 }, &mut de)
        .and_then(|()| de.end())
        .map_err(|e| Error::invalid(format!("{what} is not valid JSON: {}", explain(&e))))
}

/// [`check_json`] and a parse into a `serde_json::Value` in one pass, for callers that
/// need the value (a schema check): what it accepts and refuses, and the messages, are
/// [`check_json`]'s (an input it refuses is run through [`check_json`] for the message).
///
/// # Errors
/// As [`check_json`].
pub fn parse_json(raw: &[u8], what: &str) -> Result<serde_json::Value> {
    let parsed = std::str::from_utf8(raw)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .filter(|v| depth(v, 0) <= MAX_JSON_DEPTH);
    match parsed {
        Some(v) => Ok(v),
        None => {
            check_json(raw, what)?;
            // Not reached: whatever serde_json or the depth walk refuses, check_json does.
            Err(Error::invalid(format!("{what} is not valid JSON")))
        }
    }
}

/// How many arrays and objects are open at the deepest point of `v`, `at` levels in;
/// stops counting past the limit.
fn depth(v: &serde_json::Value, at: usize) -> usize {
    if at > MAX_JSON_DEPTH {
        return at;
    }
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| depth(i, at + 1))
            .max()
            .unwrap_or(at + 1),
        serde_json::Value::Object(map) => map
            .values()
            .map(|i| depth(i, at + 1))
            .max()
            .unwrap_or(at + 1),
        _ => at,
    }
}

/// The 1-based line and column (in bytes) of byte `offset`, as serde_json counts them.
fn line_column(raw: &[u8], offset: usize) -> (usize, usize) {
    let before = &raw[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - start + 1)
}

/// serde_json's message, reworded where its terms are obscure, and its position.
fn explain(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let msg = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    let msg = match msg {
        "lone leading surrogate in hex escape" | "unexpected end of hex escape" => {
            "a \\u escape is a lone or mis-paired UTF-16 surrogate"
        }
        other => other,
    };
    if e.line() == 0 {
        msg.to_string()
    } else {
        format!("{msg} at line {} column {}", e.line(), e.column())
    }
}

/// One JSON value, `depth` arrays and objects deep, checked and discarded.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        // `deserialize_any`, never `deserialize_ignored_any`: serde_json then decodes
        // every string (keys too) to `str`, which validates UTF-8 and escapes.
        d.deserialize_any(self)
    }
}

impl Checked {
    fn enter<E: serde::de::Error>(self, kind: &str) -> std::result::Result<Self, E> {
        let depth = self.depth + 1;
        if depth > MAX_JSON_DEPTH {
            return Err(E::custom(format!(
                "{kind} nested {depth} levels deep, past the limit of {MAX_JSON_DEPTH} \
                 nested arrays and objects"
            )));
        }
        Ok(Self { depth })
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        let inner = self.enter("an array")?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let inner = self.enter("an object")?;
        // A key is decoded by the same seed: serde_json hands it over as a `str`.
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_check_names_the_input() {
        assert!(check_json(b"{\"a\":1}", "x").is_ok());
        let e = check_json(b"{\"a\":", "live configuration of crm/production").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("live configuration of crm/production is not valid JSON")
        );
    }

    fn refused(raw: &[u8]) -> String {
        let e = check_json(raw, "x").expect_err("must be refused");
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput);
        e.to_string()
    }

    fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
        format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
    }

    #[test]
    fn invalid_utf8_is_refused_in_values_and_keys() {
        let e = refused(b"{\"a\":\"\xff\xfe\"}");
        assert!(
            e.ends_with("is not valid JSON: not valid UTF-8 at byte offset 6 (line 1 column 7)"),
            "{e}"
        );
        let e = refused(b"{\"a\":1,\n\"\xff\xfe\":1}");
        assert!(e.ends_with("at byte offset 9 (line 2 column 2)"), "{e}");
        refused(b"[\"ok\", \"\xc3\"]"); // a truncated two-byte sequence
        refused(b"[\"\xed\xa0\x80\"]"); // a surrogate encoded as UTF-8 (CESU)
        refused(b"[\"\xc0\xaf\"]"); // an overlong encoding
        assert!(check_json("[\"caf\u{e9} \u{1f600}\"]".as_bytes(), "x").is_ok());
    }

    #[test]
    fn lone_and_mispaired_surrogates_are_refused() {
        for bad in [
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["\ud800x"]"#,
            r#"["\ud800\u0041"]"#,
            r#"["\udc00\ud800"]"#,
            r#"["\ud800\ud800"]"#,
            r#"{"\ud800":1}"#,
            r#"["\u12"]"#,
            r#"["\x41"]"#,
        ] {
            let e = refused(bad.as_bytes());
            assert!(e.contains("line 1 column"), "{bad}: {e}");
            if bad.contains(r"\ud") {
                assert!(
                    e.contains("lone or mis-paired UTF-16 surrogate"),
                    "{bad}: {e}"
                );
            }
        }
        assert!(check_json(br#"["\ud83d\ude00 \u00e9 \u0000"]"#, "x").is_ok());
    }

    #[test]
    fn numbers_structure_and_trailing_data_are_checked() {
        for bad in [
            &b""[..],
            b"   ",
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:1}",
            b"[01]",
            b"[1.]",
            b"[-]",
            b"[1e]",
            b"[1e400]",
            b"[NaN]",
            b"['a']",
            b"[\"tab\there\"]",
            b"{} {}",
            b"{}x",
            b"[1] ]",
            b"\xef\xbb\xbf{}",
        ] {
            refused(bad);
        }
        assert!(refused(b"{}x").contains("trailing"));
        for good in [
            &b"0"[..],
            b"\"s\"",
            b"null",
            b" {} \n",
            b"[-0.5e-3, 1E+2, 18446744073709551615, -9223372036854775808, 1e308]",
        ] {
            assert!(
                check_json(good, "x").is_ok(),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
    }

    #[test]
    fn nesting_is_limited_and_the_limit_itself_passes() {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            assert!(check_json(&nested(open, close, MAX_JSON_DEPTH), "x").is_ok());
            let e = refused(&nested(open, close, MAX_JSON_DEPTH + 1));
            assert!(e.contains(&format!("limit of {MAX_JSON_DEPTH}")), "{e}");
            assert!(e.contains("line 1 column"), "{e}");
        }
        // Arrays and objects count alike.
        let mixed = "[{\"k\":".repeat(MAX_JSON_DEPTH / 2) + "1" + &"}]".repeat(MAX_JSON_DEPTH / 2);
        assert!(check_json(mixed.as_bytes(), "x").is_ok());
        // Whatever passes here, serde_json::Value (diff, restore's plan) reads too.
        let at_limit = nested("[", "]", MAX_JSON_DEPTH);
        assert!(serde_json::from_slice::<serde_json::Value>(&at_limit).is_ok());
    }

    #[test]
    fn parse_json_accepts_and_refuses_what_check_json_does() {
        for raw in [
            &b"{\"a\":\"\xff\xfe\"}"[..],
            br#"["\ud800"]"#,
            b"[1,]",
            b"{}x",
            b"[1e400]",
            &nested("[", "]", MAX_JSON_DEPTH + 1),
            &nested("{\"k\":", "}", MAX_JSON_DEPTH + 1),
            &vec![b'['; 100_000],
        ] {
            let by_parse = parse_json(raw, "x").expect_err("refused").to_string();
            assert_eq!(by_parse, refused(raw));
        }
        for raw in [
            &b"0"[..],
            b" {\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\"} ",
            &nested("[", "]", MAX_JSON_DEPTH),
            &nested("{\"k\":", "}", MAX_JSON_DEPTH),
        ] {
            let v = parse_json(raw, "x").unwrap();
            assert_eq!(v, serde_json::from_slice::<serde_json::Value>(raw).unwrap());
        }
        assert_eq!(depth(&serde_json::json!([[], {"a": [1]}]), 0), 3);
    }

    #[test]
    fn very_deep_input_is_refused_fast_without_overflowing_the_stack() {
        let started = std::time::Instant::now();
        for raw in [
            vec![b'['; 100_000],
            nested("[", "]", 100_000),
            b"{\"a\":".repeat(100_000),
        ] {
            let e = refused(&raw);
            assert!(e.contains(&format!("limit of {MAX_JSON_DEPTH}")), "{e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn every_real_export_passes() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let raw = std::fs::read(&path).unwrap();
                check_json(&raw, &path.display().to_string()).unwrap();
                seen += 1;
            }
        }
        assert!(seen >= 5, "only {seen} files in {dir}");
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(8, 256, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                proptest::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_serialized_value_passes(v in any_json()) {
            proptest::prop_assert!(check_json(&serde_json::to_vec(&v).unwrap(), "x").is_ok());
            proptest::prop_assert!(check_json(&serde_json::to_vec_pretty(&v).unwrap(), "x").is_ok());
        }
    }
}

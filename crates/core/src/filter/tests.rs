use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::config::FilterConfig;
use crate::error::ErrorKind;

const AT: &str = "apps.flows.envs.prod.filter";

fn filters(read: Option<&str>, write: Option<&str>, ignore: &[&str]) -> EnvFilters {
    let config = FilterConfig {
        read: read.map(str::to_string),
        write: write.map(str::to_string),
        ignore: ignore.iter().map(|s| (*s).to_string()).collect(),
        ..FilterConfig::default()
    };
    EnvFilters::compile(AT, &config).unwrap()
}

fn compile_err(read: &str) -> crate::error::Error {
    let config = FilterConfig {
        read: Some(read.into()),
        ..FilterConfig::default()
    };
    EnvFilters::compile(AT, &config).unwrap_err()
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap())
}

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

#[test]
fn read_unwraps_and_writes_the_same_bytes_each_time_in_the_documents_key_order() {
    let f = filters(Some(".flows"), None, &[]);
    let exported = br#"{"rev":"9a1","flows":[{"id":"n1","type":"tab","z":"","label":"Flow 1"},{"id":"n2","type":"comment","name":"x","big":9007199254740993,"f":1.5,"e":-2.5e-3}]}"#;
    let once = f.read(Bytes::from_static(exported)).unwrap();
    let twice = f.read(Bytes::from_static(exported)).unwrap();
    assert_eq!(once, twice, "same input, same bytes");
    assert_eq!(
        std::str::from_utf8(&once).unwrap(),
        r#"[{"id":"n1","type":"tab","z":"","label":"Flow 1"},{"id":"n2","type":"comment","name":"x","big":9007199254740993,"f":1.5,"e":-0.0025}]"#,
        "compact, keys in the export's order, integers exact, other numbers as 64-bit floats"
    );
}

#[test]
fn without_programs_bytes_pass_through_untouched() {
    let f = filters(None, None, &[".version"]);
    let odd = Bytes::from_static(b"{ \"b\": 1,\n  \"a\": 2 }\n");
    assert_eq!(f.read(odd.clone()).unwrap(), odd);
    assert_eq!(f.write(odd.clone(), None).unwrap(), odd);
    assert!(!f.has_read() && !f.write_uses_live());
}

#[test]
fn write_sees_live_as_exported_or_null_when_live_holds_nothing() {
    let f = filters(None, Some("{flows: ., rev: $live.rev}"), &[]);
    assert!(f.write_uses_live());
    let doc = bytes(&json!([{"id": "n1"}]));
    let live = bytes(&json!({"flows": [], "rev": "live-rev"}));
    let out = f.write(doc.clone(), Some(&live)).unwrap();
    assert_eq!(
        parsed(&out),
        json!({"flows": [{"id": "n1"}], "rev": "live-rev"})
    );
    let out = f.write(doc, None).unwrap();
    assert_eq!(parsed(&out), json!({"flows": [{"id": "n1"}], "rev": null}));

    let plain = filters(None, Some("{dashboard: ., overwrite: true}"), &[]);
    assert!(
        !plain.write_uses_live(),
        "no $live: no read of live before a write"
    );
}

#[test]
fn a_program_must_yield_exactly_one_value() {
    let none = filters(Some(".[] | select(.keep)"), None, &[]);
    let e = none.read(bytes(&json!([{"keep": false}]))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("apps.flows.envs.prod.filter.read"),
        "{e}"
    );
    assert!(e.message().contains("yields no value"), "{e}");

    let two = filters(Some(".a, .b"), None, &[]);
    let e = two.read(bytes(&json!({"a": 1, "b": 2}))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("filter.read (`.a, .b`)"), "{e}");
    assert!(e.message().contains("more than one value"), "{e}");

    let fails = filters(Some(".flows"), None, &[]);
    let e = fails.read(bytes(&json!([1, 2]))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("fails: cannot index"), "{e}");
}

#[test]
fn an_export_that_is_not_json_is_invalid_input() {
    let f = filters(Some(".flows"), None, &[]);
    let e = f.read(Bytes::from_static(b"<html>502</html>")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("is not JSON"), "{e}");
    let e = f.read(Bytes::from_static(b"{} {}")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "one document, no more");
}

#[test]
fn syntax_errors_name_the_key_line_and_column() {
    let e = compile_err("{flows: ., rev: $live.rev");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message()
            .starts_with("apps.flows.envs.prod.filter.read: jq error at line 1, column "),
        "{e}"
    );

    let e = compile_err(".flows\n| map(\n  select(.type == ))");
    assert!(e.message().contains("line 3, column 19"), "{e}");
    assert!(e.message().contains("expected term, found `)`"), "{e}");

    let e = compile_err(".a | nosuchfilter(1)");
    assert!(
        e.message()
            .contains("line 1, column 6: undefined filter `nosuchfilter`"),
        "{e}"
    );

    // `$live` is for write filters only.
    let e = compile_err(".flows | $live");
    assert!(e.message().contains("undefined variable `$live`"), "{e}");
}

#[test]
fn a_bad_ignore_path_is_named_by_its_index() {
    let config = FilterConfig {
        ignore: vec![".version".into(), ".nodes[.updatedAt".into()],
        ..FilterConfig::default()
    };
    let e = EnvFilters::compile(AT, &config).unwrap_err();
    assert!(
        e.message()
            .starts_with("apps.flows.envs.prod.filter.ignore[1]: jq error at line 1"),
        "{e}"
    );
}

#[test]
fn program_files_are_read_and_their_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("write.jq");
    std::fs::write(&good, "# Node-RED API v2\n{flows: ., rev: $live.rev}\n").unwrap();
    let bad = dir.path().join("read.jq");
    std::fs::write(&bad, "# unwrap\n\n.flows |\n").unwrap();
    let config = FilterConfig {
        write_file: Some(good),
        ..FilterConfig::default()
    };
    let f = EnvFilters::compile(AT, &config).unwrap();
    assert!(f.write_uses_live());
    let out = f.write(bytes(&json!([])), Some(br#"{"rev":"r"}"#)).unwrap();
    assert_eq!(parsed(&out), json!({"flows": [], "rev": "r"}));

    let config = FilterConfig {
        read_file: Some(bad.clone()),
        ..FilterConfig::default()
    };
    let e = EnvFilters::compile(AT, &config).unwrap_err();
    let expected = format!(
        "{} (apps.flows.envs.prod.filter.read_file): jq error at line 4, column 1",
        bad.display()
    );
    assert!(e.message().starts_with(&expected), "{e}");

    let config = FilterConfig {
        read_file: Some(dir.path().join("missing.jq")),
        ..FilterConfig::default()
    };
    let e = EnvFilters::compile(AT, &config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message()
            .contains("filter.read_file: cannot read jq file"),
        "{e}"
    );
}

#[test]
fn inline_and_file_together_is_a_config_error() {
    let text = r#"
[apps.a.envs.e.live]
kind = "file"
path = "live.json"
[apps.a.envs.e.filter]
write = "{flows: .}"
write_file = "write.jq"
"#;
    let e = crate::config::Config::parse(text).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message()
            .contains("apps.a.envs.e.filter: set at most one of `write` and `write_file`"),
        "{e}"
    );
}

#[test]
fn ignore_paths_leave_fields_out_of_comparisons_only() {
    let f = filters(None, None, &[".version", ".nodes[].updatedAt"]);
    let a = json!({"title": "t", "version": 3, "nodes": [{"id": 1, "updatedAt": "mon"}]});
    let b = json!({"nodes": [{"updatedAt": "tue", "id": 1}], "version": 4, "title": "t"});
    let c = json!({"title": "T", "version": 3, "nodes": [{"id": 1, "updatedAt": "mon"}]});
    assert!(f.same(&bytes(&a), &bytes(&b)).unwrap());
    assert!(
        !f.same(&bytes(&a), &bytes(&c)).unwrap(),
        "a real change is seen"
    );
    assert_eq!(
        f.normalize(&a).unwrap(),
        json!({"title": "t", "nodes": [{"id": 1}]})
    );
    // A document without `.nodes` keeps everything but the paths it has.
    assert_eq!(
        f.normalize(&json!({"version": 1, "x": null})).unwrap(),
        json!({"x": null})
    );
    // Reading stores everything: ignore is for comparisons.
    assert_eq!(parsed(&f.read(bytes(&a)).unwrap()), a);

    let none = filters(None, None, &[]);
    assert!(!none.same(&bytes(&a), &bytes(&b)).unwrap());
    assert_eq!(none.normalize(&a).unwrap(), a);
}

#[test]
fn check_all_compiles_every_environment() {
    let text = r#"
[apps.a.envs.ok.live]
kind = "file"
path = "a.json"
[apps.a.envs.ok.filter]
read = ".flows"
[apps.a.envs.plain.live]
kind = "file"
path = "b.json"
[apps.b.envs.bad.live]
kind = "file"
path = "c.json"
[apps.b.envs.bad.filter]
write = "{flows: ., rev: $live.rev"
"#;
    let config = crate::config::Config::parse(text).unwrap();
    let e = check_all(&config).unwrap_err();
    assert!(
        e.message()
            .starts_with("apps.b.envs.bad.filter.write: jq error"),
        "{e}"
    );
    let config =
        crate::config::Config::parse(&text.replace("$live.rev\"", "$live.rev}\"")).unwrap();
    assert_eq!(check_all(&config).unwrap(), 2);
}

/// What jaq itself gives for `code` on `raw` (the path the fast one must match).
fn jaq_output(code: &str, raw: &[u8]) -> Result<Vec<u8>> {
    let program = Program::compile("test", code, &[])?;
    value::to_bytes(&program.run(value::parse(raw, "test input")?, Vec::new())?)
}

/// Every `.k` and `.k.k2` path of a document's top two levels, and one missing key.
fn paths_of(doc: &Value) -> Vec<String> {
    let mut paths = vec![".".to_string()];
    if let Value::Object(top) = doc {
        paths.push(".no_such_key".into());
        for (k, v) in top {
            if fast::path_of(&format!(".{k}")).is_none() {
                continue;
            }
            paths.push(format!(".{k}"));
            if let Value::Object(inner) = v {
                let nested = inner.keys().map(|k2| format!(".{k}.{k2}"));
                paths.extend(nested.filter(|p| fast::path_of(p).is_some()).take(5));
                paths.push(format!(".{k}.missing.deeper"));
            }
        }
    }
    paths
}

/// The real exports of the corpus (tests/data): path, bytes, parsed.
fn real_exports() -> Vec<(std::path::PathBuf, Vec<u8>, Value)> {
    let dir = crate::testutil::corpus_dir();
    let mut exports = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let doc: Value = serde_json::from_slice(&raw).unwrap();
        exports.push((path, raw, doc));
    }
    assert!(
        exports.len() >= 5,
        "the real exports are in {}",
        dir.display()
    );
    exports
}

#[test]
fn the_fast_path_writes_jaqs_very_bytes_on_the_real_exports() {
    for (path, raw, doc) in real_exports() {
        // The export as is, and inside an API envelope, pretty-printed.
        let envelope = serde_json::to_vec_pretty(
            &json!({"responseMeta": {"status": 200}, "data": doc, "errorDisplay": ""}),
        )
        .unwrap();
        for (input, paths) in [(&raw, paths_of(&doc)), (&envelope, vec![".data".into()])] {
            for code in paths {
                let keys = fast::path_of(&code).unwrap();
                let ours = fast::select(input, &keys)
                    .unwrap_or_else(|| panic!("{}: {code} left to jaq", path.display()));
                let theirs = jaq_output(&code, input).unwrap();
                assert!(
                    ours == theirs,
                    "{}: {code} differs from jaq",
                    path.display()
                );
                // And through the environment's filters, which take the fast path.
                let f = filters(Some(&code), None, &[]);
                assert_eq!(f.read(Bytes::from(input.clone())).unwrap(), theirs);
                // With plain ignore paths, the output is the fast path's and the backup
                // hashes it without them; with others, the path is looked up in jaq's
                // values. Either way: the output and digest of the program run by jaq
                // (`(.k)` is not a path).
                for ignore in [&[".name", ".x[].id"][..], &[".x[0]", ".name"]] {
                    let fast = filters(Some(&code), None, ignore);
                    let jaq = filters(Some(&format!("({code})")), None, ignore);
                    let (out, digest) = fast.read_with_digest(Bytes::from(input.clone())).unwrap();
                    let digest = match digest {
                        Some(d) => Some(d),
                        None => fast.ignoring_sha256(&out).unwrap(),
                    };
                    let theirs = jaq.read_with_digest(Bytes::from(input.clone())).unwrap();
                    assert!(
                        digest.is_some() && (out, digest) == theirs,
                        "{}: {code} {ignore:?}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn the_fast_path_matches_jaq_on_escapes_numbers_and_nesting() {
    let raw = br#" { "a" : { "s": "caf\u00e9 \ud83d\ude00 \/ \" \\ \n \u0001 \u001f tab\t", "n": [0, -0, 1.0, 1e2, -2.5E-3, 12345678901234567890, -9223372036854775808, 9007199254740993, 0.1, 1.7976931348623157e308],
        "o": {"": null, "k": [[], {}, [{}], true, false]}, "\u0041\n": 1 }, "b": [1] } "#;
    for code in [
        ".", ".a", ".a.s", ".a.n", ".a.o", ".a.o.k", ".b", ".c", ".a.zz.q",
    ] {
        let keys = fast::path_of(code).unwrap();
        let ours = fast::select(raw, &keys).unwrap_or_else(|| panic!("{code} left to jaq"));
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(jaq_output(code, raw).unwrap()).unwrap(),
            "{code}"
        );
    }
}

#[test]
fn what_only_jaq_can_tell_is_left_to_jaq_with_its_result() {
    let cases: [(&str, &[u8]); 6] = [
        // A repeated key: jaq keeps the last value in the first one's place.
        (".", br#"{"a":1,"b":2,"a":3}"#),
        (".d", br#"{"d":{"x":[{"k":1,"k":2}]}}"#),
        (".d", br#"{"d":1,"d":2}"#),
        // Indexing what is not an object: jaq fails, and says so.
        (".d.e", br#"{"d":[1]}"#),
        (".d", br#""text""#),
        // Not JSON: jaq's parse names the error.
        (".d", br#"{"d":1"#),
    ];
    for (code, raw) in cases {
        assert_eq!(
            fast::select(raw, &fast::path_of(code).unwrap()),
            None,
            "{code} on {raw:?}"
        );
        let f = filters(Some(code), None, &[]);
        match jaq_output(code, raw) {
            Ok(theirs) => assert_eq!(f.read(Bytes::from_static(raw)).unwrap(), theirs),
            Err(e) => assert_eq!(
                f.read(Bytes::from_static(raw)).unwrap_err().kind(),
                e.kind()
            ),
        }
    }
    // A wide object with a key repeated far apart (the set, not the search, finds it).
    let mut wide: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
    wide.push("\"k3\":0".into());
    let raw = format!("{{\"d\":{{{}}}}}", wide.join(","));
    assert_eq!(fast::select(raw.as_bytes(), &["d".into()]), None);
    wide.pop();
    let raw = format!("{{\"d\":{{{}}}}}", wide.join(","));
    assert_eq!(
        fast::select(raw.as_bytes(), &["d".into()]).unwrap(),
        jaq_output(".d", raw.as_bytes()).unwrap()
    );
}

#[test]
fn only_plain_paths_take_the_fast_path() {
    assert_eq!(fast::path_of(" . "), Some(vec![]));
    assert_eq!(fast::path_of(".data"), Some(vec!["data".to_string()]));
    assert_eq!(
        fast::path_of(".a_1.B\n"),
        Some(vec!["a_1".to_string(), "B".to_string()])
    );
    for not in [
        "", "..", ".a.", ".a[]", ".a | .b", ".[\"a\"]", ".1a", ".a?", "{a: .a}", ".a .b", ".a-b",
        "$live",
    ] {
        assert_eq!(fast::path_of(not), None, "{not:?}");
    }
}

/// A path-only read filter is compiled by jaq only if it runs on jaq's values
/// (`Program::lazy_path`): every path `path_of` accepts, keywords included, must compile.
#[test]
fn every_path_the_fast_path_accepts_compiles() {
    for code in [
        ".if", ".then", ".def", ".reduce", ".and", ".or", ".not", ".import", ".__loc__", ".try",
        ".label", ".foreach", ".as", ".elif", ".else", ".end", ".include",
    ] {
        assert!(fast::path_of(code).is_some(), "{code}");
        assert!(Program::compile("t", code, &[]).is_ok(), "{code}");
        // And as plain ignore paths, also compiled only when first needed.
        let each = format!("{code}[]{code}");
        let f = filters(Some(code), None, &[code, &each]);
        assert!(f.ignore_plain.is_some(), "{code}");
        f.force().unwrap_or_else(|e| panic!("{code}: {e}"));
    }
}

/// The plain-path walk's digest of `raw`, parsed as the backup parses it.
fn walk(raw: &[u8], steps: &[Vec<ignore::Step>], names: &[String]) -> Option<String> {
    ignore::digest(
        &crate::schema::Doc::parse_keeping_repeats(raw)?,
        steps,
        names,
    )
}

/// The ignore paths' digest by the plain-path walk and by jaq, on one document.
fn both_digests(raw: &[u8], paths: &[&str]) -> (Option<String>, Option<String>) {
    let f = filters(None, None, paths);
    let steps: Vec<_> = paths
        .iter()
        .map(|p| ignore::plain_path(p).unwrap_or_else(|| panic!("{p} is plain")))
        .collect();
    let ours = walk(raw, &steps, &f.ignore_paths);
    // The schema check's parse (repeated keys refused) gives the walk the same document.
    if let Some(strict) = crate::schema::Doc::parse(raw) {
        assert_eq!(ignore::digest(&strict, &steps, &f.ignore_paths), ours);
    }
    let theirs = f.digest_of(value::parse(raw, "test").unwrap());
    (ours, theirs)
}

#[test]
fn plain_ignore_paths_digest_as_jaq_does_on_the_real_exports() {
    for (path, raw, doc) in real_exports() {
        // Every top-level key, then each top-level array's items' first keys, through `[]`.
        let mut sets: Vec<Vec<String>> = paths_of(&doc)
            .into_iter()
            .filter(|p| ignore::plain_path(p).is_some())
            .map(|p| vec![p])
            .collect();
        if let Value::Object(map) = &doc {
            for (k, v) in map {
                let items = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(v.as_object().into_iter().flat_map(|o| o.values()));
                for item in items.take(3) {
                    if let Some(first) = item.as_object().and_then(|o| o.keys().next())
                        && ignore::plain_path(&format!(".{k}[].{first}")).is_some()
                    {
                        sets.push(vec![format!(".{k}[].{first}"), format!(".{k}")]);
                        sets.push(vec![format!(".{k}[].{first}")]);
                    }
                }
            }
        }
        // A flow list (an array at the top): its nodes' keys.
        for k in doc
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|o| o.keys())
        {
            if ignore::plain_path(&format!(".[].{k}")).is_some() {
                sets.push(vec![format!(".[].{k}")]);
            }
        }
        assert!(sets.len() >= 3, "{}: {sets:?}", path.display());
        for set in &sets {
            let set: Vec<&str> = set.iter().map(String::as_str).collect();
            let (ours, theirs) = both_digests(&raw, &set);
            assert!(
                ours.is_some() && ours == theirs,
                "{}: {set:?}",
                path.display()
            );
        }
    }
}

#[test]
fn plain_ignore_paths_fail_and_skip_as_jaq_does() {
    let raw = br#"{"a": {"b": 1, "c": [1, {"b": 2}, {"c": 3}]}, "s": "text", "n": null,
        "o": {"x": {"id": 1, "k": 2}, "y": {"id": 2}}, "m": [{"id": 1, "v": 1.0}, {"v": 1e2, "id": -0}],
        "nums": [0, -0, 1.5, -2.5E-3, 12345678901234567890, -9223372036854775808, 0.1, 1.7976931348623157e308],
        "e": [], "eo": {}, "u": "caf\u00e9 \ud83d\ude00"}"#;
    for set in [
        &[".a.b"][..],
        &[".a.c[].b"], // fails on the item 1: nothing deleted
        &[".a.c[].c"], // fails on 1 too
        &[".m[].id"],
        &[".m[]"],
        &[".o[].id"],
        &[".o[]"],
        &[".s.x"], // a key in a string fails
        &[".s[]"],
        &[".n.x.y"], // null's members are null
        &[".n[]"],   // iterating null fails
        &[".missing.x"],
        &[".missing[]"],
        &[".e[]", ".eo[]", ".e[].x"],
        &[".a", ".a.b", ".a[]"],
        &[".m[].id", ".m[]", ".m[].v"],
        &[".nums", ".u"],
        &[".a.c"],
        &[".[]"],
        &[".[][]"],
        &[".nums[]"],
    ] {
        let (ours, theirs) = both_digests(raw, set);
        assert!(ours.is_some() && ours == theirs, "{set:?}");
    }
    // What the walk leaves to jaq: a repeated key, not JSON.
    let steps = vec![ignore::plain_path(".a").unwrap()];
    assert_eq!(walk(br#"{"a":1,"a":2}"#, &steps, &[]), None);
    assert_eq!(walk(br#"{"b":[{"c":1,"c":1}]}"#, &steps, &[]), None);
    assert_eq!(walk(br#"{"a":1"#, &steps, &[]), None);
    // And `ignoring_sha256` then asks jaq, whose parse keeps the last of a repeated key.
    let f = filters(None, None, &[".a"]);
    assert_eq!(
        f.ignoring_sha256(br#"{"a":0,"b":1,"b":2}"#).unwrap(),
        f.ignoring_sha256(br#"{"b":2}"#).unwrap()
    );
}

#[test]
fn only_plain_ignore_paths_skip_jaq() {
    use ignore::Step::{Each, Key};
    let key = |k: &str| Key(k.to_string());
    assert_eq!(ignore::plain_path(".a"), Some(vec![key("a")]));
    assert_eq!(
        ignore::plain_path(" .a.b_1 "),
        Some(vec![key("a"), key("b_1")])
    );
    assert_eq!(
        ignore::plain_path(".list[].id"),
        Some(vec![key("list"), Each, key("id")])
    );
    assert_eq!(ignore::plain_path(".[]"), Some(vec![Each]));
    assert_eq!(
        ignore::plain_path(".a[][]"),
        Some(vec![key("a"), Each, Each])
    );
    for not in [
        ".", "", "a", ".a.", ".a[0]", ".a[]?", ".a?", ".\"k\"", ".[\"a\"]", ".1a", ".a | .b",
        ".a,.b", ".a-b", "..", ".a[].", ".a []",
    ] {
        assert_eq!(ignore::plain_path(not), None, "{not:?}");
    }
}

use serde_json::{Value, json};

use super::*;

/// Applies the diff's patch to `a` and checks that it gives `b`.
fn applies(d: &Diff, a: &Value, b: &Value) {
    let mut patched = a.clone();
    json_patch::patch(&mut patched, d.patch()).unwrap();
    assert_eq!(
        &patched,
        b,
        "patch: {}",
        serde_json::to_string(d.patch()).unwrap()
    );
}

/// The readable lines without the count at the end.
fn lines(d: &Diff) -> Vec<String> {
    let text = d.render(60);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.pop();
    lines
}

#[test]
fn lists_changes_and_patches() {
    let a = json!({"name": "crm", "pages": [{"n": "Home"}, {"n": "Old"}], "theme": "dark"});
    let b = json!({"name": "crm2", "pages": [{"n": "Home"}], "theme": "dark", "x": 1});
    let d = Diff::values(&a, &b);
    let text = d.render(40);
    assert!(text.contains("~ /name: \"crm\" -> \"crm2\""), "{text}");
    assert!(text.contains("- /pages/1: {\"n\":\"Old\"}"), "{text}");
    assert!(text.contains("+ /x: 1"), "{text}");
    assert!(text.ends_with("1 added, 1 removed, 1 changed\n"), "{text}");
    applies(&d, &a, &b);
}

#[test]
fn equal_documents() {
    let d = Diff::between(b"{\"a\": [1,2]}", b"{\"a\":[1,2]}", "a", "b").unwrap();
    assert!(d.is_empty());
    assert!(d.patch().0.is_empty());
    assert_eq!(d.render(10), "no differences\n");
    assert!(
        Diff::between(b"{", b"{}", "version 3", "b")
            .unwrap_err()
            .to_string()
            .contains("version 3")
    );
}

#[test]
fn root_and_type_changes() {
    let d = Diff::values(&json!(1), &json!("one"));
    assert_eq!(lines(&d), ["~ (root): 1 -> \"one\""]);
    applies(&d, &json!(1), &json!("one"));
    let (a, b) = (json!({"a": [1]}), json!({"a": {"0": 1}}));
    let d = Diff::values(&a, &b);
    assert_eq!(lines(&d), ["~ /a: [1] -> {\"0\":1}"]);
    applies(&d, &a, &b);
}

#[test]
fn unkeyed_arrays_keep_their_common_subsequence() {
    // One value inserted at the front: one line, not one per shifted position.
    let (a, b) = (json!({"w": [1, 2, 3, 4]}), json!({"w": [0, 1, 2, 3, 4]}));
    let d = Diff::values(&a, &b);
    assert_eq!(lines(&d), ["+ /w/0: 0"]);
    applies(&d, &a, &b);
    // Items facing each other are compared in depth.
    let a = json!([{"t": "set", "to": "a"}, {"t": "del"}]);
    let b = json!([{"t": "set", "to": "b"}, {"t": "del"}]);
    let d = Diff::values(&a, &b);
    assert_eq!(lines(&d), ["~ /0/to: \"a\" -> \"b\""]);
    applies(&d, &a, &b);
}

#[test]
fn keyed_items_are_named_and_moves_are_minimal() {
    let n = |id: &str, v: i64| json!({"id": id, "type": "function", "name": id, "v": v});
    let a = json!([n("a", 1), n("b", 1), n("c", 1), n("d", 1)]);
    // `a` goes to the end, `c` is deleted, `b` changes, `e` is new at the front.
    let b = json!([n("e", 1), n("b", 2), n("d", 1), n("a", 1)]);
    let d = Diff::values(&a, &b);
    assert_eq!(
        lines(&d),
        [
            "- /[id=c] function \"c\"",
            "+ /[id=e] function \"e\"",
            "~ /[id=b]/v: 1 -> 2",
            "> /[id=a] function \"a\" moved 0 -> 3",
        ]
    );
    assert!(
        d.render(60)
            .ends_with("1 added, 1 removed, 1 changed, 1 moved\n")
    );
    let moves = d
        .patch()
        .iter()
        .filter(|op| matches!(op, json_patch::PatchOperation::Move(_)))
        .count();
    assert_eq!(moves, 1, "one item moved, not three");
    applies(&d, &a, &b);
    // The structured changes carry both paths.
    assert!(d.changes().contains(&Change::Changed {
        path: "/1/v".into(),
        id_path: "/[id=b]/v".into(),
        from: json!(1),
        to: json!(2),
    }));
    assert!(d.changes().contains(&Change::Removed {
        path: "/2".into(),
        id_path: "/[id=c]".into(),
        value: n("c", 1),
    }));
}

#[test]
fn keys_come_from_the_options() {
    let a = json!({"panels": [{"key": "p1", "w": 1}, {"key": "p2", "w": 1}]});
    let b = json!({"panels": [{"key": "p2", "w": 1}]});
    let by_key = DiffOptions::default().keys(["key"]).values(&a, &b);
    assert_eq!(lines(&by_key), ["- /panels/[key=p1]"]);
    applies(&by_key, &a, &b);
    let default = Diff::values(&a, &b);
    assert_eq!(lines(&default), ["- /panels/0: {\"key\":\"p1\",\"w\":1}"]);
    let none = DiffOptions::default().keys(Vec::<String>::new());
    assert!(none.identity_keys().is_empty());
    let cfg = DiffConfig {
        keys: Some(vec!["key".into()]),
    };
    assert_eq!(
        DiffOptions::from_config(Some(&cfg)),
        DiffOptions::default().keys(["key"])
    );
    assert_eq!(DiffOptions::from_config(None), DiffOptions::default());
    assert_eq!(
        DiffOptions::from_config(Some(&DiffConfig::default())),
        DiffOptions::default()
    );
}

#[test]
fn keyed_items_nest() {
    let a = json!({"flows": [{"id": "t1", "nodes": [{"id": "x", "v": 1}, {"id": "y"}]}]});
    let b = json!({"flows": [{"id": "t1", "nodes": [{"id": "y"}, {"id": "x", "v": 2}]}]});
    let d = Diff::values(&a, &b);
    assert_eq!(
        lines(&d),
        [
            "> /flows/[id=t1]/nodes/[id=y] moved 1 -> 0",
            "~ /flows/[id=t1]/nodes/[id=x]/v: 1 -> 2",
        ]
    );
    applies(&d, &a, &b);
}

/// The real Node-RED export, grown to 20 nodes with copies of its own nodes under new ids.
fn nodered_flow() -> Vec<Value> {
    let raw = include_str!("../../../../tests/data/nodered-http-endpoint-example.json");
    let mut flow: Vec<Value> = serde_json::from_str(raw).unwrap();
    let real = flow.len();
    for k in 0..20usize.saturating_sub(real) {
        let mut copy = flow[k].clone();
        copy["id"] = format!("{}.copy{k}", copy["id"].as_str().unwrap()).into();
        flow.push(copy);
    }
    assert_eq!(flow.len(), 20);
    flow
}

#[test]
fn deleting_one_node_of_a_real_flow_is_one_line() {
    let a = Value::Array(nodered_flow());
    let mut b = a.clone();
    let gone = b.as_array_mut().unwrap().remove(6);
    assert_eq!(gone["type"], "comment");
    // By position, the same edit touches most of the flow.
    assert!(json_patch::diff(&a, &b).0.len() > 10);

    let d = Diff::values(&a, &b);
    assert_eq!(
        lines(&d),
        ["- /[id=3c61c12c.5abaae] comment \"Send HTTP request: http://localhost:1880/hello\""]
    );
    assert!(d.render(60).ends_with("0 added, 1 removed, 0 changed\n"));
    assert_eq!(d.patch().0.len(), 1);
    applies(&d, &a, &b);
}

#[test]
fn changing_one_property_of_a_real_flow_is_one_line() {
    let a = Value::Array(nodered_flow());
    let mut b = a.clone();
    assert_eq!(b[7]["id"], "db134063.83b7a");
    b[7]["name"] = "hello page".into();
    let d = Diff::values(&a, &b);
    assert_eq!(
        lines(&d),
        ["~ /[id=db134063.83b7a]/name: \"page\" -> \"hello page\""]
    );
    applies(&d, &a, &b);

    // Adding a node and moving one are one line each too.
    let mut c = a.clone();
    let flow = c.as_array_mut().unwrap();
    let moved = flow.remove(0);
    flow.push(moved);
    flow.insert(3, json!({"id": "new.1", "type": "debug", "z": "x"}));
    let d = Diff::values(&a, &c);
    assert_eq!(
        lines(&d),
        [
            "+ /[id=new.1] debug",
            "> /[id=87bd706a.aec93] comment \"Create an HTTP Endpoint\" moved 0 -> 20",
        ]
    );
    applies(&d, &a, &c);
}

/// The environment's `ignore` paths are left out of the readable diff (a version
/// counter that moves at every save is no change worth reading).
#[test]
fn ignored_paths_are_left_out() {
    let config = crate::config::FilterConfig {
        ignore: vec![".version".into(), ".nodes[].updatedAt".into()],
        ..crate::config::FilterConfig::default()
    };
    let filters = Arc::new(EnvFilters::compile("apps.a.envs.e.filter", &config).unwrap());
    let options = DiffOptions::default().ignoring(filters);
    let a = br#"{"version": 4, "nodes": [{"id": "n1", "name": "a", "updatedAt": "t1"}]}"#;
    let b = br#"{"version": 9, "nodes": [{"id": "n1", "name": "a", "updatedAt": "t2"}]}"#;
    let d = options.between(a, b, "a", "b").unwrap();
    assert!(d.changes().is_empty(), "{:?}", d.changes());
    let c = br#"{"version": 10, "nodes": [{"id": "n1", "name": "b", "updatedAt": "t3"}]}"#;
    let d = options.between(a, c, "a", "c").unwrap();
    assert_eq!(
        lines(&d),
        vec![r#"~ /nodes/[id=n1]/name: "a" -> "b""#.to_string()]
    );
    // Without the filters every counter shows.
    let d = DiffOptions::default().between(a, c, "a", "c").unwrap();
    assert_eq!(d.changes().len(), 3);
}

//! The keyed diff through the real binary: `jetvault diff` on a real Node-RED flow (one
//! deleted node, one line), the environment's `diff.keys` and the flags that override
//! them, and the HTTP diff route taking the same keys from the server's config.

use serde_json::{Value, json};

use crate::harness::cli::Jv;
use crate::harness::serve::{OP, RD, Server, client, config, send};
use crate::harness::{NODERED, StoreSpec, corpus};

/// The real Node-RED export grown to 20 nodes with copies of its own nodes under new ids.
fn flow20() -> Vec<Value> {
    let mut flow: Vec<Value> = serde_json::from_slice(&corpus(NODERED)).unwrap();
    let real = flow.len();
    for k in 0..20usize.saturating_sub(real) {
        let mut copy = flow[k].clone();
        copy["id"] = format!("{}.copy{k}", copy["id"].as_str().unwrap()).into();
        flow.push(copy);
    }
    assert_eq!(flow.len(), 20);
    flow
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

fn apply(a: &Value, patch: Value) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    let mut doc = a.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    doc
}

#[test]
fn cli_names_a_deleted_node_in_one_line() {
    let jv = Jv::new();
    let a = Value::Array(flow20());
    let mut b = a.clone();
    b.as_array_mut().unwrap().remove(6);
    let mut c = b.clone();
    c[6]["name"] = "hello page".into();
    for (name, doc) in [("a.json", &a), ("b.json", &b), ("c.json", &c)] {
        let file = jv.file(name, &pretty(doc));
        jv.ok(&["backup", "crm", "production", "--from", &file]);
    }

    let out = jv.ok(&["diff", "crm", "production", "1", "2"]).stdout;
    assert_eq!(
        out,
        "--- crm/production v1\n+++ crm/production v2\n\
         - /[id=3c61c12c.5abaae] comment \"Send HTTP request: http://localhost:1880/hello\"\n\
         0 added, 1 removed, 0 changed\n"
    );
    let out = jv.ok(&["diff", "crm", "production", "2", "3"]).stdout;
    assert!(
        out.ends_with(
            "~ /[id=db134063.83b7a]/name: \"page\" -> \"hello page\"\n\
             0 added, 0 removed, 1 changed\n"
        ),
        "{out}"
    );
    insta::assert_snapshot!(
        "diff_keyed_real_flow",
        jv.text(&["diff", "crm", "production", "1", "3"])
    );

    // The JSON Patch turns v1 into v3, in as many operations as changes.
    let patch = jv.json(&["diff", "crm", "production", "1", "3"]);
    assert_eq!(patch.as_array().unwrap().len(), 2, "{patch}");
    assert_eq!(apply(&a, patch), c);
}

#[test]
fn cli_keys_from_the_config_and_the_flags() {
    let jv = Jv::new();
    let a = json!({"panels": [{"key": "p1", "w": 1}, {"key": "p2", "w": 1}]});
    let b = json!({"panels": [{"key": "p2", "w": 2}]});
    jv.write_config(
        "[apps.crm.envs.production]\n[apps.crm.envs.production.diff]\nkeys = [\"key\"]\n",
    );
    for (name, doc) in [("a.json", &a), ("b.json", &b)] {
        let file = jv.file(name, &pretty(doc));
        jv.ok(&["backup", "crm", "production", "--from", &file]);
    }
    let diff = |extra: &[&str]| {
        let mut args = vec!["diff", "crm", "production", "1", "2"];
        args.extend_from_slice(extra);
        let out = jv.ok(&args).stdout;
        out.lines().skip(2).map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(
        diff(&[]),
        [
            "- /panels/[key=p1]",
            "~ /panels/[key=p2]/w: 1 -> 2",
            "0 added, 1 removed, 1 changed"
        ]
    );
    // Compared by position, the first panel seems to have become the second.
    assert_eq!(
        diff(&["--no-keys"]),
        [
            "~ /panels/0/key: \"p1\" -> \"p2\"",
            "~ /panels/0/w: 1 -> 2",
            "- /panels/1: {\"key\":\"p2\",\"w\":1}",
            "0 added, 1 removed, 2 changed"
        ]
    );
    assert_eq!(
        diff(&["--key", "w"])[0],
        "~ /panels/0/key: \"p1\" -> \"p2\""
    );
    assert_eq!(diff(&["--key", "w", "--key", "key"]), diff(&[]));
}

#[tokio::test]
async fn http_route_uses_the_configured_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let apps = "[apps.crm.envs.production.diff]\nkeys = [\"key\"]\n";
    let server = Server::start(dir.path(), &config(&store, "", apps));
    let http = client();
    let env = "/v1/apps/crm/envs/production";
    let a = json!({"panels": [{"key": "p1", "w": 1}, {"key": "p2", "w": 1}], "v": 1});
    let b = json!({"panels": [{"key": "p3", "w": 1}, {"key": "p2", "w": 2}], "v": 1});
    for doc in [&a, &b] {
        let r = send(
            http.post(server.url(&format!("{env}/snapshots")))
                .bearer_auth(OP)
                .body(pretty(doc)),
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
    }

    let c = send(
        http.get(server.url(&format!("{env}/diff?format=changes")))
            .bearer_auth(RD),
    )
    .await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(
        c.json(),
        json!({"a": 1, "b": 2, "changes": [
            {"change": "removed", "path": "/panels/0", "id_path": "/panels/[key=p1]",
             "value": {"key": "p1", "w": 1}},
            {"change": "added", "path": "/panels/0", "id_path": "/panels/[key=p3]",
             "value": {"key": "p3", "w": 1}},
            {"change": "changed", "path": "/panels/1/w", "id_path": "/panels/[key=p2]/w",
             "from": 1, "to": 2},
        ]})
    );
    let p = send(
        http.get(server.url(&format!("{env}/diff?a=1&b=2")))
            .bearer_auth(RD),
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(apply(&a, p.json()), b);
}

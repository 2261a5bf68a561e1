//! The ready configs of `examples/platforms/`: `config check` accepts each, and each
//! filter does what the platform needs on real exports (tests/data), wrapped the way
//! the platform's API wraps them.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use jetvault_core::config::{Config, EnvConfig, LiveConfig, WriteMethod};
use jetvault_core::filter::{EnvFilters, table_key};
use jetvault_core::id::EnvRef;
use serde_json::{Value, json};

use crate::harness::cli::Jv;
use crate::harness::{GRAFANA, N8N, NODERED, corpus};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/platforms")
}

fn example(name: &str) -> Config {
    let path = examples_dir().join(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn env_config<'a>(config: &'a Config, app: &str, env: &str) -> (EnvRef, &'a EnvConfig) {
    let env = EnvRef::parse(app, env).unwrap();
    let c = config
        .env(&env)
        .unwrap_or_else(|| panic!("{env} is in the example"));
    (env, c)
}

fn filters(config: &Config, app: &str, env: &str) -> EnvFilters {
    let (env, c) = env_config(config, app, env);
    let f = c.filter.as_ref().expect("the example has a filter table");
    EnvFilters::compile(&table_key(&env), f).unwrap()
}

fn real(name: &str) -> Value {
    serde_json::from_slice(&corpus(name)).unwrap()
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap())
}

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn http(
    c: &EnvConfig,
) -> (
    &str,
    Option<WriteMethod>,
    &std::collections::BTreeMap<String, String>,
) {
    match c.live.as_ref() {
        Some(LiveConfig::Http {
            url,
            write_method,
            headers,
            ..
        }) => (url, *write_method, headers),
        other => panic!("an http live target, not {other:?}"),
    }
}

#[test]
fn config_check_accepts_every_platform_example() {
    let jv = Jv::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["grafana.toml", "n8n.toml", "node-red.toml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for file in &files {
        let path = file.to_str().unwrap();
        let r = jv.ok(&["config", "check", "--config", path]);
        assert!(r.stdout.contains(&format!("{path}: ok")), "{}", r.text());
    }
}

#[test]
fn config_check_names_a_broken_filter_with_file_key_line_and_column() {
    let jv = Jv::new();
    let text = std::fs::read_to_string(examples_dir().join("node-red.toml")).unwrap();
    let broken = text.replace("{flows: ., rev: $live.rev}", "{flows: ., rev: $live.rev");
    assert_ne!(broken, text);
    let path = jv.file("node-red.toml", broken.as_bytes());
    let r = jv.fails(&["config", "check", "--config", &path], 2);
    assert!(
        r.stderr.contains(&format!(
            "config file {path}: apps.node-red.envs.production.filter.write: jq error at line 1, column "
        )),
        "{}",
        r.text()
    );

    // A .jq file: its path and the key that names it.
    let text = std::fs::read_to_string(examples_dir().join("n8n.toml")).unwrap();
    let path = jv.file("n8n.toml", text.as_bytes());
    let jq = jv.file("n8n-write.jq", b"# comment\n{name,\n  nodes: .nodes |\n}\n");
    let r = jv.fails(&["config", "check", "--config", &path], 2);
    assert!(
        r.stderr.contains(&format!(
            "{jq} (apps.n8n.envs.webhook-workflow.filter.write_file): jq error at line 4, column 1"
        )),
        "{}",
        r.text()
    );
}

#[test]
fn node_red_v2_stores_the_flows_and_deploys_them_with_the_current_rev() {
    let config = example("node-red.toml");
    let flows = real(NODERED);
    let (_, v2) = env_config(&config, "node-red", "production");
    let (url, method, headers) = http(v2);
    assert_eq!(url, "http://127.0.0.1:1880/flows");
    assert_eq!(method, Some(WriteMethod::Post));
    assert_eq!(headers["Node-RED-API-Version"], "v2");
    assert_eq!(headers["Node-RED-Deployment-Type"], "full");

    let f = filters(&config, "node-red", "production");
    // GET /flows with Node-RED-API-Version: v2.
    let exported = json!({"rev": "7ab6a4fd04e4bd4f19b8e2b0ba2d8b4c", "flows": flows});
    let stored = f.read(bytes(&exported)).unwrap();
    assert_eq!(parsed(&stored), flows);

    // Deployed since: Node-RED's rev is another one now.
    let live = json!({"rev": "0d2d2a5e0c0b4c8e9c8d9f0e1f2a3b4c", "flows": []});
    let body = parsed(&f.write(stored.clone(), Some(&bytes(&live))).unwrap());
    assert_eq!(keys(&body), ["flows", "rev"]);
    assert_eq!(
        body["rev"], live["rev"],
        "the current rev, never the stored one"
    );
    assert_eq!(body["flows"], flows);
}

#[test]
fn node_red_v1_deploys_the_plain_array_with_no_filter() {
    let config = example("node-red.toml");
    let (_, v1) = env_config(&config, "node-red-v1", "production");
    assert!(v1.filter.is_none(), "v1 exports and imports the same array");
    let (url, method, headers) = http(v1);
    assert_eq!(url, "http://127.0.0.1:1880/flows");
    assert_eq!(method, Some(WriteMethod::Post));
    assert_eq!(headers["Node-RED-API-Version"], "v1");
    assert_eq!(headers["Node-RED-Deployment-Type"], "full");
    assert!(real(NODERED).is_array(), "what GET /flows gives in v1");
}

/// `GET /api/dashboards/uid/<uid>` as Grafana answers it.
fn grafana_export(dashboard: &Value, version: u64) -> Value {
    let mut d = dashboard.clone();
    d["id"] = 42.into();
    d["version"] = version.into();
    json!({
        "meta": {
            "type": "db", "canSave": true, "canEdit": true, "canAdmin": true,
            "slug": "kubernetes-views-nodes", "url": "/d/k8s_views_nodes/kubernetes-views-nodes",
            "created": "2026-01-05T10:00:00Z", "updated": "2026-11-30T09:12:00Z",
            "updatedBy": "admin", "createdBy": "admin", "version": version,
            "folderId": 7, "folderUid": "fe1kubernetes", "folderTitle": "Kubernetes",
            "provisioned": false
        },
        "dashboard": d,
    })
}

#[test]
fn grafana_stores_the_dashboard_and_saves_it_back_into_its_folder() {
    let config = example("grafana.toml");
    let dashboard = real(GRAFANA);
    let f = filters(&config, "grafana", "k8s-views-nodes");
    let (_, c) = env_config(&config, "grafana", "k8s-views-nodes");
    let (url, method, _) = http(c);
    assert!(
        url.ends_with("/api/dashboards/uid/k8s_views_nodes"),
        "{url}"
    );
    assert_eq!(
        dashboard["uid"], "k8s_views_nodes",
        "the example names the real dashboard"
    );
    assert_eq!(method, Some(WriteMethod::Post));

    let export = grafana_export(&dashboard, 40);
    let stored = f.read(bytes(&export)).unwrap();
    assert_eq!(parsed(&stored), export["dashboard"]);

    // POST /api/dashboards/db: {dashboard, folderUid, overwrite}, found by uid.
    let live = grafana_export(&dashboard, 43);
    let body = parsed(&f.write(stored.clone(), Some(&bytes(&live))).unwrap());
    assert_eq!(keys(&body), ["dashboard", "folderUid", "overwrite"]);
    assert_eq!(body["folderUid"], "fe1kubernetes");
    assert_eq!(body["overwrite"], true);
    assert_eq!(body["dashboard"]["id"], Value::Null);
    assert_eq!(body["dashboard"]["uid"], "k8s_views_nodes");
    let mut sent = body["dashboard"].clone();
    sent["id"] = 42.into();
    assert_eq!(
        sent, export["dashboard"],
        "the dashboard itself is sent unchanged"
    );

    // Saved again, only the version moved: no change. A new title is one.
    let resaved = f.read(bytes(&grafana_export(&dashboard, 41))).unwrap();
    assert_ne!(resaved, stored);
    assert!(f.same(&resaved, &stored).unwrap());
    let mut edited = dashboard.clone();
    edited["title"] = "Nodes (edited)".into();
    let edited = f.read(bytes(&grafana_export(&edited, 41))).unwrap();
    assert!(!f.same(&edited, &stored).unwrap());
    let normalized = f.normalize(&parsed(&stored)).unwrap();
    assert!(normalized.get("version").is_none() && normalized.get("id").is_none());
    assert_eq!(normalized["panels"], dashboard["panels"]);
}

/// `GET /api/v1/workflows/<id>` as n8n answers it, around a real workflow.
fn n8n_export(workflow: &Value, updated_at: &str, counter: u64) -> Value {
    json!({
        "id": "Qm2cXgZ4uI1nD3xX",
        "name": workflow["name"],
        "active": true,
        "isArchived": false,
        "createdAt": "2026-09-29T07:08:00.610Z",
        "updatedAt": updated_at,
        "nodes": workflow["nodes"],
        "connections": workflow["connections"],
        "settings": workflow["settings"],
        "staticData": null,
        "meta": workflow["meta"],
        "pinData": workflow["pinData"],
        "versionId": format!("5c1f0b7e-0000-4000-8000-{counter:012}"),
        "versionCounter": counter,
        "triggerCount": 1,
        "shared": [{"role": "workflow:owner", "projectId": "p1"}],
        "tags": [{"id": "t1", "name": "automation"}],
    })
}

#[test]
fn n8n_stores_what_put_restores_and_puts_only_what_n8n_accepts() {
    let config = example("n8n.toml");
    let workflow = real(N8N);
    assert!(
        workflow["settings"]
            .as_object()
            .unwrap()
            .values()
            .any(Value::is_null),
        "the real export has a null setting, which PUT refuses"
    );
    let f = filters(&config, "n8n", "webhook-workflow");
    let (_, c) = env_config(&config, "n8n", "webhook-workflow");
    let (_, method, headers) = http(c);
    assert_eq!(method, Some(WriteMethod::Put));
    assert!(
        !headers.contains_key("X-N8N-API-KEY"),
        "the key is not in the file"
    );
    let Some(LiveConfig::Http { secret_headers, .. }) = c.live.as_ref() else {
        unreachable!()
    };
    assert_eq!(
        secret_headers["X-N8N-API-KEY"].env.as_deref(),
        Some("N8N_API_KEY"),
        "n8n's key is a secret header read from the environment"
    );

    let export = n8n_export(&workflow, "2026-11-30T09:00:00.000Z", 7);
    let stored = parsed(&f.read(bytes(&export)).unwrap());
    assert_eq!(
        keys(&stored),
        [
            "connections",
            "id",
            "name",
            "nodes",
            "settings",
            "staticData",
            "updatedAt",
            "versionCounter",
            "versionId"
        ]
    );
    assert_eq!(stored["nodes"], workflow["nodes"]);
    assert_eq!(stored["connections"], workflow["connections"]);

    // PUT accepts name, nodes, connections, settings (non-null values), staticData.
    let body = parsed(&f.write(bytes(&stored), None).unwrap());
    assert_eq!(keys(&body), ["connections", "name", "nodes", "settings"]);
    let settings = body["settings"].as_object().unwrap();
    assert!(settings.values().all(|v| !v.is_null()), "{settings:?}");
    assert_eq!(settings["timezone"], "UTC");
    assert_eq!(
        settings.len(),
        workflow["settings"].as_object().unwrap().len() - 1
    );
    assert_eq!(body["nodes"], workflow["nodes"]);
    let mut with_data = stored.clone();
    with_data["staticData"] = json!({"node:Webhook": {"lastId": 3}});
    let body = parsed(&f.write(bytes(&with_data), None).unwrap());
    assert_eq!(
        keys(&body),
        ["connections", "name", "nodes", "settings", "staticData"]
    );

    // Saved again: updatedAt, versionId and versionCounter moved, nothing else.
    let resaved = f
        .read(bytes(&n8n_export(&workflow, "2026-11-30T10:30:00.000Z", 8)))
        .unwrap();
    assert_ne!(parsed(&resaved), stored);
    assert!(f.same(&resaved, &bytes(&stored)).unwrap());
    let mut edited = workflow.clone();
    edited["nodes"][0]["name"] = "Start".into();
    let edited = f
        .read(bytes(&n8n_export(&edited, "2026-11-30T10:30:00.000Z", 8)))
        .unwrap();
    assert!(!f.same(&edited, &bytes(&stored)).unwrap());
}

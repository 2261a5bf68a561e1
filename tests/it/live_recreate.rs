//! Restoring a workflow the platform deleted: with `[...live.create]`, restore creates it
//! anew (n8n's `POST /api/v1/workflows`, which gives it a new id), reads it back from the
//! new id, and prints the new id and the config lines that point the environment at it;
//! without, the exit-12 message names that table. The n8n-like server and the config
//! are `live_n8n`'s and `examples/platforms/n8n.toml` itself.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::StoreSpec;
use crate::harness::cli::Jv;
use crate::harness::serve::{self as srv, Server};
use crate::live_n8n::{KEY_ONE, N8n, assert_keyless, run};

/// The n8n example, pointed at the test server's workflow `wf1`, the key in `key_file`.
fn example(base: &str, key_file: &Path) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/platforms");
    let text = std::fs::read_to_string(dir.join("n8n.toml")).unwrap();
    let text = text
        .replace("http://127.0.0.1:5678", base)
        .replace("REPLACE-WITH-WORKFLOW-ID", "wf1")
        .replace(
            "{ env = \"N8N_API_KEY\" }",
            &format!("{{ file = {:?} }}", key_file.display().to_string()),
        );
    assert!(text.contains("live.create]") && text.contains("/workflows/wf1"));
    text
}

fn write_jq(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/platforms/n8n-write.jq");
    std::fs::copy(src, dir.join("n8n-write.jq")).unwrap();
}

fn key_file(path: &Path) {
    std::fs::write(path, KEY_ONE).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_workflow_is_created_anew_and_the_config_change_printed() {
    let n8n = N8n::new();
    let base = n8n.serve().await;
    let jv = Jv::new();
    let key = jv.path("n8n-key");
    key_file(&key);
    write_jq(&jv.path(""));
    let config = example(&base, &key);
    jv.write_config(&config);
    let (code, out) = run(&jv, &["config", "check"]).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&jv, &["backup", "n8n", "webhook-workflow"]).await;
    assert_eq!(code, 0, "{out}");
    let original = n8n.inner.lock().unwrap().workflow.clone();

    // Deleted in n8n: PUT answers 404; the plan says it would be created anew.
    n8n.set(|s| s.deleted = true);
    let (code, out) = run(
        &jv,
        &["restore", "n8n", "webhook-workflow", "1", "--dry-run"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("created anew (POST {base}/api/v1/workflows)")),
        "{out}"
    );
    assert!(n8n.inner.lock().unwrap().created.is_empty());

    let (code, out) = run(&jv, &["restore", "n8n", "webhook-workflow", "1", "--yes"]).await;
    assert_eq!(code, 0, "{out}");
    let created = n8n.inner.lock().unwrap().created.clone();
    assert_eq!(created.len(), 1, "one workflow created: {out}");
    let (id, wf) = created.into_iter().next().unwrap();
    assert_ne!(id, "wf1");
    for field in ["name", "nodes", "connections", "settings"] {
        assert_eq!(wf[field], original[field], "{field}");
    }
    assert!(
        out.contains(&format!("created anew with the identity {id}")),
        "{out}"
    );
    let new_url = format!("{base}/api/v1/workflows/{id}");
    let change = format!("  [apps.n8n.envs.webhook-workflow.live]\n  url = \"{new_url}\"\n");
    assert!(out.contains(&change), "prints the config change:\n{out}");
    assert!(
        out.contains(&format!("restored v1 to {new_url}")),
        "read back from the new id: {out}"
    );
    assert!(out.contains("but for the filter's ignore paths"), "{out}");
    assert!(out.contains("no pre-restore snapshot"), "{out}");
    assert!(out.contains("recorded as v2"), "{out}");

    // The audit event records the recreation and the new id.
    let (code, out) = run(&jv, &["--json", "events", "n8n", "webhook-workflow"]).await;
    assert_eq!(code, 0, "{out}");
    let events: Value = serde_json::from_str(&out).unwrap();
    let restore = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "restore")
        .unwrap_or_else(|| panic!("no restore event: {out}"));
    assert_eq!(
        restore["details"]["recreated"]["id"],
        json!(id),
        "{restore}"
    );
    assert_eq!(
        restore["details"]["recreated"]["config_change"]["set"]["url"],
        json!(new_url)
    );

    // The printed change, made by hand: backups read the new workflow, unchanged.
    let config = config.replace(&format!("{base}/api/v1/workflows/wf1"), &new_url);
    jv.write_config(&config);
    let (code, out) = run(&jv, &["--json", "backup", "n8n", "webhook-workflow"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"unchanged\""), "{out}");

    // A create request the platform refuses: exit 11 quoting it; nothing created.
    let config = example(&base, &key);
    let refused = config.replace("id = \".id\"\n", "id = \".id\"\nwrite = \".\"\n");
    assert_ne!(refused, config);
    jv.write_config(&refused);
    let (code, out) = run(&jv, &["restore", "n8n", "webhook-workflow", "1", "--yes"]).await;
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains(&format!(
            "creating it anew (POST {base}/api/v1/workflows) failed"
        )) && out.contains("must NOT have additional properties"),
        "{out}"
    );
    assert_eq!(n8n.inner.lock().unwrap().created.len(), 1);

    // Without the create table: exit 12, naming it; nothing created.
    let at = config
        .find("[apps.n8n.envs.webhook-workflow.live.create]")
        .unwrap();
    let end = config[at..].find("\n\n").unwrap() + at;
    jv.write_config(&format!("{}{}", &config[..at], &config[end..]));
    let (code, out) = run(&jv, &["restore", "n8n", "webhook-workflow", "1", "--yes"]).await;
    assert_eq!(code, 12, "{out}");
    assert!(
        out.contains("add an [apps.n8n.envs.webhook-workflow.live.create] table"),
        "{out}"
    );
    assert_eq!(n8n.inner.lock().unwrap().created.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_creates_only_with_create_if_missing() {
    let n8n = N8n::new();
    let base = n8n.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("n8n-key");
    key_file(&key);
    write_jq(dir.path());
    let store = StoreSpec::local(&dir.path().join("store"));
    let text = srv::config(&store, "", &example(&base, &key));
    let path = dir.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || Server::start(&path, &text))
        .await
        .unwrap();
    let client = srv::client();
    let u = server.url("/v1/apps/n8n/envs/webhook-workflow");
    let post = |route: &str, body: Value| {
        srv::send(
            client
                .post(format!("{u}/{route}"))
                .bearer_auth(srv::OP)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    };
    assert_eq!(post("backup", json!({})).await.status, 201);
    n8n.set(|s| s.deleted = true);

    let r = post(
        "restore",
        json!({"source": {"version": 1}, "allow_missing_live": true}),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "live_missing"),
        "{:?}",
        r.json()
    );
    let message = r.json()["error"].to_string();
    assert!(
        message.contains("can create it anew")
            && message.contains("\\\"create_if_missing\\\": true"),
        "{message}"
    );
    assert!(n8n.inner.lock().unwrap().created.is_empty());

    let r = post(
        "restore",
        json!({"source": {"version": 1}, "create_if_missing": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let report = r.json();
    let id = report["recreated"]["id"].as_str().unwrap().to_string();
    assert!(n8n.inner.lock().unwrap().created.contains_key(&id));
    assert_eq!(
        report["recreated"]["config_change"]["set"]["url"],
        json!(format!("{base}/api/v1/workflows/{id}"))
    );
    assert_eq!(report["verified"], "equal_ignoring", "{report}");
    let all = format!("{}{}", String::from_utf8_lossy(&r.body), server.stderr());
    assert_keyless("serve", &all);
}

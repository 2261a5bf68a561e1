//! The batch commands (`backup-all`, `verify`, `prune` over many environments) through
//! the real binary: rows printed as environments finish, one JSON array in `--json`
//! mode, totals and the store requests a run cost, a failure that does not stop the
//! others.

use std::collections::BTreeMap;

use crate::harness::cli::Jv;

/// Six environments of three apps, live files from the real exports in tests/data, and
/// one environment whose live file is missing.
fn world() -> Jv {
    let jv = Jv::new();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let files = [
        "nodered-http-endpoint-example.json",
        "appsmith-import-app-all-access.json",
        "grafana-k8s-views-nodes.json",
    ];
    let mut config = String::new();
    for (i, app) in ["crm", "shop", "wiki"].iter().enumerate() {
        for (j, env) in ["production", "staging"].iter().enumerate() {
            let live = jv.path(&format!("{app}-{env}.json"));
            std::fs::copy(data.join(files[(i + j) % files.len()]), &live).unwrap();
            config.push_str(&Jv::file_env(app, env, &live, ""));
        }
    }
    config.push_str(&Jv::file_env(
        "zoo",
        "production",
        &jv.path("missing.json"),
        "",
    ));
    jv.write_config(&config);
    jv
}

#[test]
fn backup_all_prints_every_row_the_totals_and_the_requests_it_made() {
    let jv = world();
    let r = jv.fails(&["backup-all", "--concurrency", "3"], 8);
    for app in ["crm", "shop", "wiki"] {
        for env in ["production", "staging"] {
            assert!(
                r.stdout.contains(&format!("{app}/{env}: v1 written")),
                "{}",
                r.stdout
            );
        }
    }
    assert!(
        r.stdout.contains("zoo/production: FAILED: "),
        "{}",
        r.stdout
    );
    let summary = r.stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("7 environments: 6 written, 0 unchanged, 1 failed; "),
        "{summary}"
    );
    // The request count is the store's own: six snapshots need at least six PUTs.
    let requests: u64 = summary
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {summary:?}"));
    assert!(requests >= 6, "{summary}");
    assert!(summary.contains("put "), "{summary}");

    // Again, in JSON: one array, one element per environment, in any order.
    let r = jv.fails(&["--json", "backup-all"], 8);
    let rows = r.json();
    let by_env: BTreeMap<String, String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                format!(
                    "{}/{}",
                    row["app"].as_str().unwrap(),
                    row["env"].as_str().unwrap()
                ),
                row["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(by_env.len(), 7, "{rows}");
    assert_eq!(by_env["crm/production"], "unchanged");
    assert_eq!(by_env["zoo/production"], "failed");
    let failed = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["result"] == "failed")
        .unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("missing.json"),
        "{failed}"
    );
}

#[test]
fn verify_and_prune_of_many_environments_stream_rows_in_order() {
    let jv = world();
    jv.fails(&["backup-all"], 8);
    jv.fails(&["backup-all", "--force"], 8);

    let r = jv.ok(&["verify", "--concurrency", "4"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let envs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(": ").next().filter(|_| l.contains("all good")))
        .collect();
    assert_eq!(
        envs,
        [
            "crm/production",
            "crm/staging",
            "shop/production",
            "shop/staging",
            "wiki/production",
            "wiki/staging"
        ],
        "{}",
        r.stdout
    );
    assert_eq!(
        lines.last().copied(),
        Some("6 environments, 12 snapshots checked, 0 bad, 0 gaps, 0 not verified")
    );
    let rows = jv.json(&["verify"]);
    assert_eq!(rows.as_array().unwrap().len(), 6, "{rows}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "checked")
    );

    // A damaged snapshot in one environment is named, and verify exits 6.
    let history = jv.json(&["list", "shop", "staging"]);
    let first = history
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["version"] == 1)
        .unwrap();
    jv.flip_byte(first["key"].as_str().unwrap());
    let r = jv.fails(&["verify", "--concurrency", "2"], 6);
    assert!(
        r.stdout
            .contains("shop/staging: 2 snapshots checked, 1 BAD:"),
        "{}",
        r.stdout
    );

    let rows = jv.json(&["prune", "--keep-last", "1", "--concurrency", "3"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let names: Vec<String> = rows.iter().map(|r| r["env"].to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "rows come in environment order");
    assert!(
        rows.iter()
            .all(|r| r["result"] == "pruned" && r["deleted"] == 1),
        "{rows:?}"
    );
}

/// `backup-all` covers the environments a discovery source lists (a file here), with
/// their live targets from the template; configured ones keep their own.
#[test]
fn backup_all_backs_up_discovered_environments() {
    let jv = Jv::new();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let apps = ["crm", "shop", "wiki"];
    for app in apps {
        std::fs::copy(
            data.join("nodered-http-endpoint-example.json"),
            jv.path(&format!("{app}-production.json")),
        )
        .unwrap();
    }
    let listing = serde_json::json!({ "apps": apps.iter().map(|a| {
        serde_json::json!({ "slug": a, "environments": [{ "name": "production" }] })
    }).collect::<Vec<_>>() });
    let source = jv.file("platform.json", listing.to_string().as_bytes());
    let configured = jv.path("configured.json");
    std::fs::write(&configured, br#"{"configured":true}"#).unwrap();
    jv.write_config(&format!(
        "{}[discovery]\nurl = {source:?}\n\
         filter = \"[.apps[] | .slug as $app | .environments[] | {{app: $app, env: .name}}]\"\n\
         [discovery.template.live]\nkind = \"file\"\npath = \"{}/{{app}}-{{env}}.json\"\n",
        Jv::file_env("crm", "production", &configured, ""),
        jv.path("").display().to_string().trim_end_matches('/'),
    ));
    let r = jv.ok(&["backup-all"]);
    for app in apps {
        assert!(
            r.stdout.contains(&format!("{app}/production: v1 written")),
            "{}",
            r.stdout
        );
    }
    // The configured environment read its own live file, not the template's.
    let crm = jv.ok(&["cat", "crm", "production", "latest"]);
    assert_eq!(crm.stdout.trim(), r#"{"configured":true}"#);
}

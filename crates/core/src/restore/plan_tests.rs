//! The dry run's diff follows the environment's diff rules: `diff.keys` and the
//! filter's `ignore` paths.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use crate::config::FilterConfig;
use crate::diff::{Change, DiffOptions};
use crate::filter::EnvFilters;
use crate::live::LiveTarget;
use crate::live::file::FileTarget;
use crate::live::filtered::FilteredTarget;
use crate::selector::Selector;
use crate::snapshot::{BackupRequest, Trigger};
use crate::testutil::local_vault;

fn write(path: &std::path::Path, v: &serde_json::Value) {
    std::fs::write(path, v.to_string()).unwrap();
}

fn paths(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| serde_json::to_value(c).unwrap()["id_path"].to_string())
        .collect()
}

#[tokio::test]
async fn the_dry_run_diff_uses_the_keys_and_leaves_ignored_paths_out() {
    let (dir, _store, vault, env) = local_vault();
    let live = dir.path().join("live.json");
    let items = |v: u64, first_size: u64| {
        json!({
            "version": v,
            "items": [
                {"slot": "a", "size": first_size},
                {"slot": "b", "size": 1},
                {"slot": "c", "size": 1},
            ],
        })
    };
    write(&live, &items(1, 1));
    let filters = FilterConfig {
        ignore: vec![".version".into()],
        ..FilterConfig::default()
    };
    let filters =
        Arc::new(EnvFilters::compile("apps.crm.envs.production.filter", &filters).unwrap());
    let inner: Arc<dyn LiveTarget> = Arc::new(FileTarget::new(live.clone()));
    let target = FilteredTarget::new(inner, filters, 1 << 20);
    vault
        .backup_from_live(
            &env,
            &target,
            BackupRequest::new(Bytes::new(), Trigger::Manual),
        )
        .await
        .unwrap();

    // Live's first item changed; the platform bumped its version counter.
    write(&live, &items(2, 5));
    let v1 = Selector::Version(1);
    let keyed = vault
        .plan_restore_with(&env, &target, &v1, DiffOptions::default().keys(["slot"]))
        .await
        .unwrap();
    let changes = keyed.changes.unwrap();
    assert_eq!(changes.len(), 1, "one line, no version line: {changes:?}");
    assert!(
        paths(&changes)[0].contains("slot=a"),
        "named by its key: {changes:?}"
    );

    // Without the keys, the item is named by its position (and still no version).
    let plain = vault.plan_restore(&env, &target, &v1).await.unwrap();
    let changes = plain.changes.unwrap();
    assert_eq!(paths(&changes), ["\"/items/0/size\""], "{changes:?}");
}

//! Unit tests of releases over a local directory store, one file per topic; the
//! fixture is shared with promote's tests.

mod publish;
mod read;
mod rollback;

pub(crate) use super::*;
pub(crate) use crate::error::ErrorKind;
pub(crate) use crate::events::{Action, Actor};
pub(crate) use crate::layout;
pub(crate) use crate::meta::SnapshotMeta;
pub(crate) use crate::meta::Trigger;
pub(crate) use crate::selector::Selector;
pub(crate) use crate::snapshot::{BackupOutcome, BackupRequest};
pub(crate) use crate::vault::Vault;

pub(crate) const FIXTURES: [&[u8]; 3] = [
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/nodered-http-endpoint-example.json"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/appsmith-import-app-all-access.json"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/grafana-k8s-views-nodes.json"
    )),
];

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) vault: Vault,
    pub(crate) env: EnvRef,
}

pub(crate) fn actor() -> Actor {
    Actor {
        who: Some("ada".into()),
        via: "test".into(),
        from: None,
    }
}

/// A vault with `crm/production` holding one snapshot per fixture (v1, v2, v3).
pub(crate) async fn fixture() -> Fixture {
    let (dir, _store, vault, env) = crate::testutil::local_vault();
    for raw in FIXTURES {
        let out = vault
            .backup(&env, BackupRequest::new(raw, Trigger::Manual))
            .await
            .unwrap();
        assert!(matches!(out, BackupOutcome::Created(_)));
    }
    Fixture {
        _dir: dir,
        vault,
        env,
    }
}

pub(crate) fn req(version: u64) -> ReleaseRequest {
    ReleaseRequest::new(version, actor())
}

pub(crate) fn labelled(version: u64, label: &str) -> ReleaseRequest {
    ReleaseRequest {
        label: Some(Label::new(label).unwrap()),
        ..req(version)
    }
}

pub(crate) async fn pointer_etag(f: &Fixture) -> String {
    f.vault
        .store()
        .head(&layout::release_pointer_key(&f.env))
        .await
        .unwrap()
        .etag
}

pub(crate) async fn history_seqs(f: &Fixture) -> Vec<u64> {
    let page = f
        .vault
        .store()
        .list(&layout::releases_prefix(&f.env), None, 1000)
        .await
        .unwrap();
    page.objects
        .iter()
        .filter_map(|o| layout::parse_release_key(&o.key))
        .collect()
}

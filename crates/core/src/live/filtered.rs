//! A live target seen through its environment's filters (see [`crate::filter`]): a
//! read is the target's read, then the read filter; a write first reads live when the
//! write filter uses `$live` (nothing there: null), then runs the write filter, then
//! writes the result.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::LiveTarget;
use crate::error::{Error, ErrorKind, Result};
use crate::filter::EnvFilters;

/// Another live target, through filters.
#[derive(Debug)]
pub struct FilteredTarget {
    inner: Arc<dyn LiveTarget>,
    filters: Arc<EnvFilters>,
    live_limit: u64,
}

impl FilteredTarget {
    /// `inner` through `filters`; `live_limit` bounds the read of live that gives a
    /// write filter its `$live`.
    #[must_use]
    pub fn new(inner: Arc<dyn LiveTarget>, filters: Arc<EnvFilters>, live_limit: u64) -> Self {
        Self {
            inner,
            filters,
            live_limit,
        }
    }
}

/// Runs a filter off the async threads: a large document takes milliseconds.
async fn blocking(f: impl FnOnce() -> Result<Bytes> + Send + 'static) -> Result<Bytes> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("filter task failed: {e}")))?
}

#[async_trait]
impl LiveTarget for FilteredTarget {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let exported = self.inner.read(limit).await?;
        if !self.filters.has_read() {
            return Ok(exported);
        }
        let filters = Arc::clone(&self.filters);
        blocking(move || filters.read(exported))
            .await
            .map_err(|e| e.context(format!("reading {}", self.inner.describe())))
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let live = if self.filters.write_uses_live() {
            match self.inner.read(self.live_limit).await {
                Ok(raw) => Some(raw),
                // Live holds nothing: a missing object (or, from older targets, not found).
                Err(e) if matches!(e.kind(), ErrorKind::LiveMissing | ErrorKind::NotFound) => None,
                Err(e) => {
                    return Err(e.context(format!(
                        "reading {} for the write filter's $live (nothing was written)",
                        self.inner.describe()
                    )));
                }
            }
        } else {
            None
        };
        let filters = Arc::clone(&self.filters);
        let out = blocking(move || filters.write(bytes, live.as_deref()))
            .await
            .map_err(|e| {
                e.context(format!(
                    "preparing the write to {} (nothing was written)",
                    self.inner.describe()
                ))
            })?;
        self.inner.write(out).await
    }

    fn filters(&self) -> Option<Arc<EnvFilters>> {
        Some(Arc::clone(&self.filters))
    }

    async fn read_for_backup(&self, limit: u64) -> Result<(Bytes, Option<String>)> {
        if self.filters.ignore_paths().is_empty() {
            return Ok((self.read(limit).await?, None));
        }
        let exported = self.inner.read(limit).await?;
        let filters = Arc::clone(&self.filters);
        tokio::task::spawn_blocking(move || filters.read_with_digest(exported))
            .await
            .map_err(|e| Error::internal(format!("filter task failed: {e}")))?
            .map_err(|e| e.context(format!("reading {}", self.inner.describe())))
    }

    /// The inner target's answer when no program reshapes documents (ignore paths only).
    fn holds_written(&self, written: &[u8], back: &[u8]) -> bool {
        !self.filters.has_read()
            && !self.filters.has_write()
            && self.inner.holds_written(written, back)
    }

    fn creates(&self) -> Option<String> {
        self.inner.creates()
    }

    /// The body is `doc` through the write filter, with `$live` null (the object is
    /// gone); the new object is seen through the same filters.
    async fn create(&self, doc: Bytes, _body: Bytes) -> Result<super::http::Created> {
        let filters = Arc::clone(&self.filters);
        let d = doc.clone();
        let body = blocking(move || filters.write(d, None))
            .await
            .map_err(|e| {
                e.context(format!(
                    "preparing the create request for {} (nothing was created)",
                    self.inner.describe()
                ))
            })?;
        let created = self.inner.create(doc, body).await?;
        Ok(super::http::Created {
            target: Arc::new(Self::new(
                created.target,
                Arc::clone(&self.filters),
                self.live_limit,
            )),
            ..created
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Value, json};

    use super::*;
    use crate::config::FilterConfig;
    use crate::events::Actor;
    use crate::live::file::FileTarget;
    use crate::restore::{PreRestore, RestoreRequest, Verification};
    use crate::selector::Selector;
    use crate::snapshot::{BackupOutcome, BackupRequest, Trigger};
    use crate::testutil::{corpus, local_vault};

    const FLOWS: &str = "nodered-http-endpoint-example.json";

    fn compiled(read: &str, write: &str, ignore: &[&str]) -> Arc<EnvFilters> {
        let config = FilterConfig {
            read: Some(read.into()),
            write: Some(write.into()),
            ignore: ignore.iter().map(|s| (*s).to_string()).collect(),
            ..FilterConfig::default()
        };
        Arc::new(EnvFilters::compile("apps.crm.envs.production.filter", &config).unwrap())
    }

    fn v2_target(path: &std::path::Path) -> FilteredTarget {
        let inner: Arc<dyn LiveTarget> = Arc::new(FileTarget::new(path.to_path_buf()));
        let filters = compiled(".flows", "{flows: ., rev: $live.rev}", &[]);
        FilteredTarget::new(inner, filters, 1 << 20)
    }

    fn json_file(path: &std::path::Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn req(v: u64) -> RestoreRequest {
        RestoreRequest::new(Selector::Version(v), Actor::default())
    }

    fn backup() -> BackupRequest {
        BackupRequest::new(Bytes::new(), Trigger::Manual)
    }

    #[tokio::test]
    async fn backs_up_the_unwrapped_flows_and_restores_them_with_the_current_rev() {
        let (dir, _store, vault, env) = local_vault();
        let flows: Value = serde_json::from_slice(&corpus(FLOWS)).unwrap();
        let live = dir.path().join("flows.json");
        std::fs::write(&live, json!({"flows": flows, "rev": "r1"}).to_string()).unwrap();
        let target = v2_target(&live);

        let BackupOutcome::Created(v1) = vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap()
        else {
            panic!("first backup creates v1");
        };
        let (_, stored) = vault.get(&env, v1.version).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&stored).unwrap(),
            flows,
            "no envelope stored"
        );

        // Someone deploys an empty flow; Node-RED's rev moves on.
        std::fs::write(&live, json!({"flows": [], "rev": "r2"}).to_string()).unwrap();
        let report = vault.restore(&env, &target, req(1)).await.unwrap();
        assert_eq!(
            report.verified,
            Verification::Sha256,
            "the read filter's output matches"
        );
        assert!(matches!(report.pre_restore, PreRestore::Saved { .. }));
        assert_eq!(
            json_file(&live),
            json!({"flows": flows, "rev": "r2"}),
            "the rev sent is live's current one, not the stored one"
        );
        // What the platform holds now reads back as v1's very bytes.
        let again = vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap();
        assert_eq!(again.snapshot().sha256, v1.sha256);
    }

    #[tokio::test]
    async fn live_is_null_in_the_write_filter_when_live_holds_nothing() {
        let (dir, _store, vault, env) = local_vault();
        let flows: Value = serde_json::from_slice(&corpus(FLOWS)).unwrap();
        let live = dir.path().join("flows.json");
        std::fs::write(&live, json!({"flows": flows, "rev": "r1"}).to_string()).unwrap();
        let target = v2_target(&live);
        vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap();

        std::fs::remove_file(&live).unwrap();
        let mut r = req(1);
        r.allow_missing_live = true;
        let report = vault.restore(&env, &target, r).await.unwrap();
        assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
        assert_eq!(json_file(&live), json!({"flows": flows, "rev": null}));
    }

    #[tokio::test]
    async fn a_write_filter_with_two_outputs_writes_nothing_and_names_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.json");
        std::fs::write(&live, r#"{"flows":[],"rev":"r1"}"#).unwrap();
        let inner: Arc<dyn LiveTarget> = Arc::new(FileTarget::new(live.clone()));
        let target =
            FilteredTarget::new(inner, compiled(".flows", "{flows: .}, {rev: 1}", &[]), 1024);
        let e = target.write(Bytes::from_static(b"[1]")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("nothing was written"), "{e}");
        assert!(
            e.message()
                .contains("filter.write (`{flows: .}, {rev: 1}`)"),
            "{e}"
        );
        assert!(e.message().contains("more than one value"), "{e}");
        assert_eq!(std::fs::read(&live).unwrap(), br#"{"flows":[],"rev":"r1"}"#);

        let target = FilteredTarget::new(
            Arc::new(FileTarget::new(live.clone())),
            compiled(".flows | empty", ".", &[]),
            1024,
        );
        let e = target.read(1024).await.unwrap_err();
        assert!(
            e.message()
                .starts_with(&format!("reading file:{}", live.display())),
            "{e}"
        );
        assert!(e.message().contains("yields no value"), "{e}");
    }

    /// Grafana in memory: exports `{dashboard, meta}`, takes `{dashboard, folderUid,
    /// overwrite}` and bumps the version at each save.
    #[derive(Debug)]
    struct Grafana(Mutex<Value>);

    #[async_trait]
    impl LiveTarget for Grafana {
        fn describe(&self) -> String {
            "grafana".into()
        }
        async fn read(&self, _limit: u64) -> Result<Bytes> {
            Ok(Bytes::from(self.0.lock().unwrap().to_string()))
        }
        async fn write(&self, bytes: Bytes) -> Result<()> {
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["overwrite"], true);
            let mut live = self.0.lock().unwrap();
            assert_eq!(body["folderUid"], live["meta"]["folderUid"]);
            let version = live["dashboard"]["version"].as_u64().unwrap() + 1;
            live["dashboard"] = body["dashboard"].clone();
            live["dashboard"]["version"] = version.into();
            live["meta"]["version"] = version.into();
            Ok(())
        }
    }

    #[tokio::test]
    async fn ignored_paths_make_a_version_bump_no_change_and_confirm_a_restore() {
        let (_dir, _store, vault, env) = local_vault();
        let dashboard = json!({"uid": "k8s", "title": "Nodes", "version": 7, "panels": [1, 2]});
        let grafana = Arc::new(Grafana(Mutex::new(
            json!({"dashboard": dashboard, "meta": {"folderUid": "f1", "version": 7}}),
        )));
        let filters = compiled(
            ".dashboard",
            "{dashboard: ., folderUid: $live.meta.folderUid, overwrite: true}",
            &[".version"],
        );
        let target = FilteredTarget::new(grafana.clone(), filters, 1 << 20);
        vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap();

        // Saved again unchanged: only the version moved.
        grafana.0.lock().unwrap()["dashboard"]["version"] = 8.into();
        assert!(matches!(
            vault
                .backup_from_live(&env, &target, backup())
                .await
                .unwrap(),
            BackupOutcome::Unchanged(_)
        ));
        grafana.0.lock().unwrap()["dashboard"]["title"] = "Broken".into();
        let BackupOutcome::Created(v2) = vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap()
        else {
            panic!("a real change is a new snapshot");
        };
        assert_eq!(v2.version, 2);

        let report = vault.restore(&env, &target, req(1)).await.unwrap();
        assert_eq!(
            report.verified,
            Verification::EqualIgnoring,
            "Grafana bumped the version"
        );
        assert!(matches!(report.pre_restore, PreRestore::Reused { .. }));
        let live = grafana.0.lock().unwrap().clone();
        assert_eq!(live["dashboard"]["title"], "Nodes");
        assert_eq!(live["dashboard"]["version"], 9);
        // Live equals v1 but for the version: a second restore pushes nothing.
        let again = vault.restore(&env, &target, req(1)).await.unwrap();
        assert!(!again.pushed);
    }

    /// With ignore paths, a backup stores the hash of the document without them in the
    /// snapshot's metadata, and the next backup compares with it instead of reading the
    /// snapshot back; an older snapshot without it is read back and compared; object
    /// key order never matters; other ignore paths give other hashes (a new snapshot,
    /// the safe side).
    #[tokio::test]
    async fn the_hash_without_ignored_paths_is_stored_and_compared() {
        let (dir, store, vault, env) = local_vault();
        let live = dir.path().join("live.json");
        let target = |ignore: &[&str]| {
            let inner: Arc<dyn LiveTarget> = Arc::new(FileTarget::new(live.clone()));
            FilteredTarget::new(inner, compiled(".", ".", ignore), 1 << 20)
        };
        let hash_of = |v: u64| {
            let store = store.clone();
            let key = crate::layout::snapshot_key(&env, v);
            async move {
                let info = store.head(&key).await.unwrap();
                info.metadata.get(crate::meta::M_IGNORING_SHA256).cloned()
            }
        };
        let outcome = |t: FilteredTarget| {
            let vault = &vault;
            let env = &env;
            async move { vault.backup_from_live(env, &t, backup()).await.unwrap() }
        };
        // An older snapshot, without the hash (taken without filters).
        std::fs::write(&live, r#"{"a":1,"b":{"v":1,"x":[1,2]}}"#).unwrap();
        vault
            .backup_from_live(&env, &FileTarget::new(live.clone()), backup())
            .await
            .unwrap();
        assert_eq!(hash_of(1).await, None);
        // Only the ignored path changed, keys in another order: unchanged (read back).
        std::fs::write(&live, r#"{"b":{"x":[1,2],"v":2},"a":1}"#).unwrap();
        assert!(matches!(
            outcome(target(&[".b.v"])).await,
            BackupOutcome::Unchanged(_)
        ));
        // A real change: v2 carries the hash, the same as from the stored bytes.
        std::fs::write(&live, r#"{"b":{"x":[1,3],"v":2},"a":1}"#).unwrap();
        assert_eq!(outcome(target(&[".b.v"])).await.snapshot().version, 2);
        let hash = hash_of(2).await.expect("stored with v2");
        let (_, stored) = vault.get(&env, 2).await.unwrap();
        let t = target(&[".b.v"]);
        assert_eq!(
            t.filters.ignoring_sha256(&stored).unwrap(),
            Some(hash.clone())
        );
        assert_eq!(
            t.filters
                .ignoring_sha256(br#"{"a":1,"b":{"v":9,"x":[1,3]}}"#)
                .unwrap(),
            Some(hash)
        );
        // The next comparison needs only the hash: v2's content is not read (here it
        // could not be: it is damaged).
        std::fs::write(dir.path().join(crate::layout::snapshot_key(&env, 2)), b"x").unwrap();
        std::fs::write(&live, r#"{"a":1,"b":{"v":3,"x":[1,3]}}"#).unwrap();
        assert!(matches!(outcome(t).await, BackupOutcome::Unchanged(_)));
        // Other ignore paths: another hash, so a new snapshot.
        assert!(matches!(
            outcome(target(&[".b.v", ".a"])).await,
            BackupOutcome::Created(_)
        ));
    }
}

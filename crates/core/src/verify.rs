//! Verification: reads stored snapshots back and checks every one of them (it
//! decompresses, its size and sha256 match its metadata, the metadata parses, its key
//! names the version the metadata states, the content is JSON), and that every version
//! a release or a pin names has a snapshot. It also names the gaps a killed writer
//! left (see [`crate::repair`]), which `repair` closes.
//!
//! An encrypted snapshot is checked in full when an identity given opens it; without
//! one, only its structure (see [`crate::crypt::header`]), and the report counts it as
//! such ([`VerifyReport::structure_only`]).

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use serde::Serialize;

use crate::error::{ErrorKind, Result};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::repair::Gap;
use crate::snapshot::decode_snapshot;
use crate::vault::Vault;

mod record;
pub use record::LastVerify;

/// How much to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Check only this many randomly chosen snapshots (the latest always, on top).
    pub sample: Option<usize>,
    /// Name only gaps older than this ([`crate::repair::DEFAULT_GRACE`]), so that a
    /// running writer's next records are not taken for missing ones.
    pub grace: std::time::Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            sample: None,
            grace: crate::repair::DEFAULT_GRACE,
        }
    }
}

/// A snapshot that failed a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BadSnapshot {
    /// The object's key.
    pub key: String,
    /// The version its key names, if it names one.
    pub version: Option<u64>,
    /// What failed.
    pub reason: String,
}

/// What `verify` found in one environment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// The environment.
    pub env: EnvRef,
    /// Objects under the environment's snapshot prefix.
    pub total: usize,
    /// Objects checked.
    pub checked: usize,
    /// Objects that passed.
    pub ok: usize,
    /// Objects deleted between the listing and the check (a concurrent prune).
    pub vanished: usize,
    /// Objects that failed, with the reason; also releases and pins that name a
    /// version with no snapshot.
    pub bad: Vec<BadSnapshot>,
    /// What a killed writer left missing or behind (index entries, release records,
    /// audit events, temporary files); `repair` closes these.
    pub gaps: Vec<Gap>,
    /// Encrypted snapshots whose structure was checked (age header, recipient stanzas,
    /// payload size, metadata) but not their content (decryption, decompression,
    /// size, sha256, JSON), because no identity given opens them. Counted in `ok`.
    pub structure_only: usize,
    /// Why those could not be checked in full (the first such reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure_only_reason: Option<String>,
}

/// How many snapshots are checked at once.
const CONCURRENCY: usize = 8;

impl Vault {
    /// Checks the snapshots of `env` (all, or a sample plus the latest).
    ///
    /// # Errors
    /// Store errors (an unreachable store is an error, not a bad snapshot).
    pub async fn verify_env(&self, env: &EnvRef, opts: &VerifyOptions) -> Result<VerifyReport> {
        self.verify_env_with_progress(env, opts, &|_, _| {}).await
    }

    /// [`Vault::verify_env`], calling `progress(done, total)` after each snapshot.
    ///
    /// # Errors
    /// As [`Vault::verify_env`].
    pub async fn verify_env_with_progress(
        &self,
        env: &EnvRef,
        opts: &VerifyOptions,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport> {
        // Every key, parseable or not: a stray object under snapshots/ is reported too.
        let keys = self
            .list_parsed_keys(&layout::snapshots_prefix(env), None, usize::MAX, |_| {
                Some(0)
            })
            .await?;
        let total = keys.len();
        let present: std::collections::HashSet<u64> = keys
            .iter()
            .filter_map(|k| layout::parse_snapshot_key(k))
            .collect();
        let dangling = self.dangling_references(env, &present).await?;
        let index = self.index_entries(env, None, usize::MAX).await;
        let index = &index;
        let chosen = match opts.sample {
            Some(n) if n < keys.len() => sample(keys, n),
            _ => keys,
        };
        let n = chosen.len() as u64;
        progress(0, n);
        let done = AtomicU64::new(0);
        let results: Vec<Result<Check>> = futures::stream::iter(chosen)
            .map(|key| {
                let done = &done;
                async move {
                    let entry = layout::parse_snapshot_key(&key).and_then(|v| index.get(&v));
                    let r = self.check_snapshot(env, &key, entry).await;
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, n);
                    r
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut report = VerifyReport {
            env: env.clone(),
            total,
            checked: results.len(),
            ok: 0,
            vanished: 0,
            bad: Vec::new(),
            gaps: Vec::new(),
            structure_only: 0,
            structure_only_reason: None,
        };
        for r in results {
            match r? {
                Check::Ok => report.ok += 1,
                Check::StructureOnly(why) => {
                    report.ok += 1;
                    report.structure_only += 1;
                    report.structure_only_reason.get_or_insert(why);
                }
                Check::Vanished => report.vanished += 1,
                Check::Bad(b) => report.bad.push(b),
            }
        }
        report.bad.extend(dangling);
        report.bad.sort_by(|a, b| a.key.cmp(&b.key));
        report.gaps = match self.find_gaps(env, opts.grace).await {
            Ok(gaps) => gaps,
            // An unreadable release record is in `bad` already.
            Err(e) if e.kind() == ErrorKind::Corrupt => Vec::new(),
            Err(e) => return Err(e),
        };
        self.record_last_verify(&report, opts).await;
        Ok(report)
    }

    /// Releases (the pointer and the history) and pins that name a version with no
    /// snapshot, and release records that can't be read.
    async fn dangling_references(
        &self,
        env: &EnvRef,
        present: &std::collections::HashSet<u64>,
    ) -> Result<Vec<BadSnapshot>> {
        let mut bad = Vec::new();
        let mut refs: Vec<(String, String, u64)> = Vec::new();
        match self.current_release(env).await {
            Ok(Some(p)) => refs.push((
                layout::release_pointer_key(env),
                format!("the release pointer (release {})", p.release.reference()),
                p.release.version,
            )),
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::Corrupt => bad.push(BadSnapshot {
                key: layout::release_pointer_key(env),
                version: None,
                reason: e.report(),
            }),
            Err(e) => return Err(e),
        }
        match self.releases(env, usize::MAX).await {
            Ok(history) => refs.extend(history.iter().map(|r| {
                (
                    layout::release_key(env, r.seq),
                    format!("release {}", r.reference()),
                    r.version,
                )
            })),
            Err(e) if e.kind() == ErrorKind::Corrupt => bad.push(BadSnapshot {
                key: layout::releases_prefix(env),
                version: None,
                reason: e.report(),
            }),
            Err(e) => return Err(e),
        }
        refs.extend(
            self.pins(env)
                .await?
                .into_iter()
                .map(|v| (layout::pin_key(env, v), format!("the pin of v{v}"), v)),
        );
        let mut seen = std::collections::HashSet::new();
        for (key, what, v) in refs {
            if !present.contains(&v) && seen.insert(key.clone()) {
                bad.push(BadSnapshot {
                    key,
                    version: Some(v),
                    reason: format!("{what} names v{v}, which has no snapshot in the store"),
                });
            }
        }
        Ok(bad)
    }

    async fn check_snapshot(
        &self,
        env: &EnvRef,
        key: &str,
        index_entry: Option<&crate::index::Entry>,
    ) -> Result<Check> {
        let version = layout::parse_snapshot_key(key);
        let bad = |reason: String| {
            Ok(Check::Bad(BadSnapshot {
                key: key.to_string(),
                version,
                reason,
            }))
        };
        if version.is_none() {
            return bad(
                "not a snapshot key (expected <ordinal>-v<N>.json.zst): a stray or \
                 renamed object"
                    .into(),
            );
        }
        let obj = match self.store().get(key).await {
            Ok(obj) => obj,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Check::Vanished),
            Err(e) => return Err(e),
        };
        let meta = match SnapshotMeta::from_object(&obj.info) {
            Ok(m) => m,
            Err(e) => return bad(e.report()),
        };
        if obj.bytes.len() as u64 != obj.info.size {
            return bad(format!(
                "the object holds {} bytes, the store says {}",
                obj.bytes.len(),
                obj.info.size
            ));
        }
        // Checked last, so that a damaged snapshot is named for its own fault.
        let index_mismatch = index_entry
            .filter(|e| !crate::index::agrees(&e.meta, &meta))
            .map(|e| {
                format!(
                    "{}: {} (delete it and `list` reads the snapshot's own metadata)",
                    crate::index::mismatch(env, meta.version),
                    e.key
                )
            });
        let limit = self.options().max_size.max(meta.size);
        let mut structure_only = None;
        let frame = match &meta.recipients {
            None => Some(obj.bytes),
            Some(recipients) => {
                if let Err(reason) = check_age_structure(&obj.bytes, recipients) {
                    return bad(reason);
                }
                // With an identity that opens it, the content is checked as a plain one's.
                match self.unseal(env, &meta, obj.bytes).await {
                    Ok(frame) => Some(frame),
                    Err(e) if e.kind() == ErrorKind::Corrupt => return bad(e.report()),
                    Err(e) if e.kind() == ErrorKind::Config => {
                        structure_only = Some(e.report());
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        // decode_snapshot checks size, sha256 and that the bytes are JSON.
        if let Some(frame) = frame {
            match decode_snapshot(env, &meta, frame, limit).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Corrupt => return bad(e.report()),
                Err(e) => return Err(e),
            }
        }
        match (index_mismatch, structure_only) {
            (Some(reason), _) => bad(reason),
            (None, Some(why)) => Ok(Check::StructureOnly(why)),
            (None, None) => Ok(Check::Ok),
        }
    }
}

enum Check {
    Ok,
    /// Encrypted, and no identity opens it: structure checked, content not (why).
    StructureOnly(String),
    Vanished,
    Bad(BadSnapshot),
}

/// What can be checked of an encrypted object without its key: the age header parses,
/// it holds one X25519 stanza per recipient its metadata names, and the payload has a
/// size an age payload can have.
fn check_age_structure(bytes: &[u8], recipients: &[String]) -> std::result::Result<(), String> {
    let s = crate::crypt::header::inspect(bytes, "the object").map_err(|e| e.report())?;
    let x25519 = s.stanzas.iter().filter(|t| *t == "X25519").count();
    if x25519 != recipients.len() {
        return Err(format!(
            "the age header has {x25519} X25519 recipient stanzas, but the metadata names \
             {} recipients ({})",
            recipients.len(),
            recipients.join(", ")
        ));
    }
    Ok(())
}

/// `n` keys chosen at random, plus the first (the newest: keys sort newest first).
fn sample(mut keys: Vec<String>, n: usize) -> Vec<String> {
    if keys.is_empty() {
        return keys;
    }
    let newest = keys.remove(0);
    // Partial Fisher-Yates: the first `n` places end up a uniform sample.
    let n = n.min(keys.len());
    for i in 0..n {
        let j = rand::random_range(i..keys.len());
        keys.swap(i, j);
    }
    keys.truncate(n);
    keys.insert(0, newest);
    keys
}

impl VerifyReport {
    /// The `verify-problem` notice for a report with bad snapshots or gaps, as `actor`;
    /// `None` when everything checked is good (`jetvault verify` and the HTTP route send
    /// it through [`Vault::notify`]).
    #[must_use]
    pub fn problem_notice(&self, actor: &crate::events::Actor) -> Option<crate::notify::Notice> {
        if self.bad.is_empty() && self.gaps.is_empty() {
            return None;
        }
        let first = self.bad.first().map_or_else(
            || {
                self.gaps
                    .first()
                    .map(|g| format!("{}: {}", g.key, g.detail))
                    .unwrap_or_default()
            },
            |b| format!("{}: {}", b.key, b.reason),
        );
        Some(crate::notify::Notice::now(
            crate::notify::NoticeKind::VerifyProblem,
            &self.env,
            actor,
            format!(
                "verify found {} bad snapshots and {} gaps in {} (first: {first}); `jetvault \
                 repair` closes gaps",
                self.bad.len(),
                self.gaps.len(),
                self.env
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::snapshot::{BackupRequest, Trigger};
    use crate::store::{LocalStore, Metadata, PutMode, Store};
    use crate::vault::VaultOptions;

    use crate::testutil::corpus;

    #[tokio::test]
    async fn names_every_bad_snapshot_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        for name in [
            "nodered-http-endpoint-example.json",
            "appsmith-import-app-all-access.json",
            "grafana-k8s-views-nodes.json",
            "n8n-webhook-manual-create.json",
        ] {
            vault
                .backup(&env, BackupRequest::new(corpus(name), Trigger::Manual))
                .await
                .unwrap();
        }
        let clean = vault
            .verify_env(&env, &VerifyOptions::default())
            .await
            .unwrap();
        assert_eq!((clean.total, clean.ok, clean.bad.len()), (4, 4, 0));

        // One flipped byte in v2's stored object.
        let path = dir.path().join(layout::snapshot_key(&env, 2));
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        // v3's object copied over v4's key: valid zstd, wrong sha256 for v4.
        let v3 = std::fs::read(dir.path().join(layout::snapshot_key(&env, 3))).unwrap();
        std::fs::write(dir.path().join(layout::snapshot_key(&env, 4)), v3).unwrap();
        // A stray object under the prefix.
        store
            .put(
                &format!("{}notes.txt", layout::snapshots_prefix(&env)),
                bytes::Bytes::from_static(b"hello"),
                &Metadata::new(),
                PutMode::Create,
            )
            .await
            .unwrap();

        let seen = AtomicU64::new(0);
        let report = vault
            .verify_env_with_progress(&env, &VerifyOptions::default(), &|d, _| {
                seen.store(d, Ordering::Relaxed);
            })
            .await
            .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 5);
        assert_eq!(report.ok, 2);
        let bad: Vec<(Option<u64>, &str)> = report
            .bad
            .iter()
            .map(|b| (b.version, b.reason.as_str()))
            .collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad.iter().any(|(v, r)| *v == Some(2) && r.contains("v2")),
            "{bad:?}"
        );
        assert!(
            bad.iter()
                .any(|(v, r)| *v == Some(4) && (r.contains("sha256") || r.contains("bytes"))),
            "{bad:?}"
        );
        assert!(
            bad.iter()
                .any(|(v, r)| v.is_none() && r.contains("not a snapshot key"))
        );
    }

    /// Entries of format 3 carry the hash without the ignore paths, as the snapshot's
    /// metadata does; an entry written before (none) agrees, a different one does not.
    #[tokio::test]
    async fn index_entries_with_and_without_the_ignoring_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        let config = crate::config::FilterConfig {
            ignore: vec![".v".into()],
            ..Default::default()
        };
        let filters = Arc::new(crate::filter::EnvFilters::compile("t", &config).unwrap());
        for i in 0..2 {
            let mut req = BackupRequest::new(format!("{{\"rev\":{i},\"v\":{i}}}"), Trigger::Manual);
            req.filters = Some(Arc::clone(&filters));
            vault.backup(&env, req).await.unwrap();
        }
        let clean = |report: &VerifyReport| (report.ok, report.bad.len());
        let opts = VerifyOptions::default();
        assert_eq!(clean(&vault.verify_env(&env, &opts).await.unwrap()), (2, 0));
        // v2's entry as a build before format 3 wrote it, then with another hash.
        let entries = vault.index_entries(&env, None, 10).await;
        let entry = &entries[&2];
        assert!(entry.meta.ignoring_sha256.is_some());
        for (ignoring, agrees) in [(None, true), (Some(crate::codec::sha256_hex(b"x")), false)] {
            let current = vault.index_entries(&env, None, 10).await;
            store.delete(&current[&2].key).await.unwrap();
            let meta = SnapshotMeta {
                ignoring_sha256: ignoring,
                ..entry.meta.clone()
            };
            let payload = crate::index::encode(&meta).unwrap();
            let key = layout::index_key(&env, 2, &payload).unwrap();
            store
                .put(&key, bytes::Bytes::new(), &Metadata::new(), PutMode::Create)
                .await
                .unwrap();
            let report = vault.verify_env(&env, &opts).await.unwrap();
            assert_eq!(report.bad.is_empty(), agrees, "{:?}", report.bad);
        }
    }

    #[tokio::test]
    async fn releases_and_pins_of_missing_versions_are_bad() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        for i in 0..3 {
            vault
                .backup(
                    &env,
                    BackupRequest::new(format!("{{\"rev\":{i}}}"), Trigger::Manual),
                )
                .await
                .unwrap();
        }
        let actor = crate::events::Actor::default();
        vault
            .release(&env, crate::release::ReleaseRequest::new(2, actor.clone()))
            .await
            .unwrap();
        vault.pin(&env, 1, &actor).await.unwrap();
        let report = vault
            .verify_env(&env, &VerifyOptions::default())
            .await
            .unwrap();
        assert!(report.bad.is_empty(), "{:?}", report.bad);
        // Deleted behind jetvault's back.
        store.delete(&layout::snapshot_key(&env, 2)).await.unwrap();
        store.delete(&layout::snapshot_key(&env, 1)).await.unwrap();
        let report = vault
            .verify_env(&env, &VerifyOptions::default())
            .await
            .unwrap();
        let reasons: Vec<&str> = report.bad.iter().map(|b| b.reason.as_str()).collect();
        assert_eq!(report.bad.len(), 3, "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.starts_with("the release pointer")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.starts_with("release r1 (v2)")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.starts_with("the pin of v1")),
            "{reasons:?}"
        );
    }

    #[tokio::test]
    async fn a_sample_always_includes_the_latest() {
        let keys: Vec<String> = (0..50).map(|i| format!("k{i:02}")).collect();
        for _ in 0..20 {
            let s = sample(keys.clone(), 5);
            assert_eq!(s.len(), 6);
            assert_eq!(s[0], "k00");
            let mut u = s.clone();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), 6, "no key twice");
        }
        assert_eq!(sample(Vec::new(), 3), Vec::<String>::new());
    }

    #[tokio::test]
    async fn flags_a_snapshot_that_passes_its_checksum_but_is_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        vault
            .backup(
                &env,
                BackupRequest::new(corpus("grafana-k8s-views-nodes.json"), Trigger::Manual),
            )
            .await
            .unwrap();
        let mut meta = vault.snapshot_meta(&env, 1).await.unwrap();
        let raw = b"{\"truncated\": ";
        let compressed = crate::codec::compress(raw, 3).unwrap();
        meta.sha256 = crate::codec::sha256_hex(raw);
        meta.size = raw.len() as u64;
        meta.stored_size = compressed.len() as u64;
        store
            .put(
                &meta.key,
                compressed.into(),
                &meta.to_metadata(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let report = vault
            .verify_env(&env, &VerifyOptions::default())
            .await
            .unwrap();
        assert_eq!(report.bad.len(), 1, "{report:?}");
        assert_eq!(report.bad[0].version, Some(1), "{report:?}");
        assert!(report.bad[0].reason.contains("JSON"), "{report:?}");
    }
}

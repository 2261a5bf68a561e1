//! The last verify of an environment, recorded in the store (`verify.json` next to its
//! release pointer, see [`crate::layout::last_verify_key`]) so that the console's
//! overview and `GET /v1/envs` can show it, whoever ran it (the CLI, the API).
//!
//! Recording is best-effort: a store that can't be written (a read-only copy) or a
//! failed write is logged, and the verify's own result stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{VerifyOptions, VerifyReport};
use crate::error::{Error, ErrorKind, Result};
use crate::id::EnvRef;
use crate::layout;
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// A summary of the last verify of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastVerify {
    /// When it finished (UTC).
    pub at: DateTime<Utc>,
    /// No bad snapshot and no gap.
    pub ok: bool,
    /// Objects under the snapshot prefix.
    pub total: usize,
    /// Objects checked (fewer than `total` with a sample).
    pub checked: usize,
    /// Objects that passed.
    pub passed: usize,
    /// Snapshots that failed a check, and releases or pins naming a missing version.
    pub bad: usize,
    /// Gaps a killed writer left (`jetvault repair` closes them).
    pub gaps: usize,
    /// Encrypted snapshots checked for structure only (no identity opened them).
    pub structure_only: usize,
    /// Whether only a sample was checked.
    pub sampled: bool,
    /// The first problem found, in words (a bad snapshot's reason, else a gap's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl LastVerify {
    /// The summary of `report`, finished `at`.
    #[must_use]
    pub fn of(report: &VerifyReport, opts: &VerifyOptions, at: DateTime<Utc>) -> Self {
        let problem = report
            .bad
            .first()
            .map(|b| format!("{}: {}", b.key, b.reason))
            .or_else(|| {
                report
                    .gaps
                    .first()
                    .map(|g| format!("{}: {}", g.key, g.detail))
            });
        Self {
            at,
            ok: report.bad.is_empty() && report.gaps.is_empty(),
            total: report.total,
            checked: report.checked,
            passed: report.ok,
            bad: report.bad.len(),
            gaps: report.gaps.len(),
            structure_only: report.structure_only,
            sampled: opts.sample.is_some_and(|n| n < report.total),
            problem,
        }
    }
}

impl Vault {
    /// Records `report` as the last verify of its environment; logs, and does not fail,
    /// when the store can't be written. An environment with no snapshot object gets no
    /// record (a verify of a mistyped name must not create it in the store).
    pub(super) async fn record_last_verify(&self, report: &VerifyReport, opts: &VerifyOptions) {
        if report.total == 0 {
            return;
        }
        let summary = LastVerify::of(report, opts, Utc::now());
        let key = layout::last_verify_key(&report.env);
        let written = match serde_json::to_vec(&summary) {
            Ok(body) => {
                self.store()
                    .put(&key, body.into(), &Metadata::new(), PutMode::Overwrite)
                    .await
            }
            Err(e) => Err(Error::internal(format!(
                "cannot encode the verify summary: {e}"
            ))),
        };
        if let Err(e) = written {
            tracing::info!(env = %report.env, key, error = %e.report(),
                "the verify's result is not recorded for the console (the store can't be \
                 written?); the verify itself stands");
        }
    }

    /// The last verify recorded for `env`; `None` if none was (or the record is
    /// unreadable, which is logged: it is only a summary).
    ///
    /// # Errors
    /// Store errors other than a missing record.
    pub async fn last_verify(&self, env: &EnvRef) -> Result<Option<LastVerify>> {
        let key = layout::last_verify_key(env);
        match self.store().get(&key).await {
            Ok(obj) => match serde_json::from_slice(&obj.bytes) {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    tracing::warn!(%env, key, error = %e,
                        "the last verify's record is unreadable; the next verify replaces it");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::snapshot::{BackupRequest, Trigger};
    use crate::store::{LocalStore, Store};
    use crate::vault::VaultOptions;

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    async fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
        (dir, Vault::new(store, VaultOptions::default()))
    }

    #[tokio::test]
    async fn a_verify_records_its_result_and_the_next_replaces_it() {
        let (_dir, vault) = vault().await;
        let env = env();
        assert_eq!(vault.last_verify(&env).await.unwrap(), None);
        for n in 0..2 {
            let req = BackupRequest::new(format!("{{\"n\":{n}}}"), Trigger::Manual);
            vault.backup(&env, req).await.unwrap();
        }
        let opts = VerifyOptions::default();
        vault.verify_env(&env, &opts).await.unwrap();
        let first = vault.last_verify(&env).await.unwrap().expect("recorded");
        assert!(first.ok, "{first:?}");
        assert_eq!((first.total, first.checked, first.passed), (2, 2, 2));
        assert_eq!((first.bad, first.gaps, first.sampled), (0, 0, false));

        // Damage v1: the next verify records the failure, naming it.
        let key = layout::snapshot_key(&env, 1);
        let obj = vault.store().get(&key).await.unwrap();
        let meta = obj.info.metadata.clone();
        vault
            .store()
            .put(
                &key,
                bytes::Bytes::from_static(b"not zstd"),
                &meta,
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        vault.verify_env(&env, &opts).await.unwrap();
        let second = vault.last_verify(&env).await.unwrap().expect("recorded");
        assert!(!second.ok);
        assert_eq!((second.bad, second.passed), (1, 1));
        assert!(
            second.problem.as_deref().unwrap().contains("-v1.json.zst"),
            "{second:?}"
        );
        assert!(second.at >= first.at);
    }

    #[tokio::test]
    async fn an_environment_without_snapshots_gets_no_record() {
        let (_dir, vault) = vault().await;
        let env = env();
        let report = vault
            .verify_env(&env, &VerifyOptions::default())
            .await
            .unwrap();
        assert_eq!(report.total, 0);
        assert_eq!(vault.last_verify(&env).await.unwrap(), None);
        assert!(vault.stored_envs().await.unwrap().is_empty());
    }
}

//! The dry run: the snapshot a restore would push (checked), what live holds now, and
//! the diff between them.

use bytes::Bytes;

use super::{LiveRetry, LiveState, RestorePlan};
use crate::codec;
use crate::diff::DiffOptions;
use crate::error::{ErrorKind, Result};
use crate::filter;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::meta::SnapshotMeta;
use crate::selector::Selector;
use crate::vault::Vault;

impl Vault {
    /// The snapshot `source` names, read and checked: size and sha256 against its
    /// metadata, and that it parses as JSON. A version number is read with one GET,
    /// which brings the metadata (no HEAD first; a missing one is named by `get` with
    /// the nearest that exist).
    pub(super) async fn checked_snapshot(
        &self,
        env: &EnvRef,
        source: &Selector,
    ) -> Result<(SnapshotMeta, Bytes)> {
        let version = match source {
            Selector::Version(v) => *v,
            other => self.resolve(env, other).await?.version,
        };
        // `get` checks size, sha256 and that the bytes are JSON (`Corrupt` if not).
        self.get(env, version).await
    }

    /// What restoring `source` to `target` would do, changing nothing: the snapshot
    /// (checked), what live holds now, and the diff between them.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions, labels or times; `Corrupt` if the
    /// snapshot fails a check; store errors. A live target that can't be read is not
    /// an error: the plan says so.
    pub async fn plan_restore(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        source: &Selector,
    ) -> Result<RestorePlan> {
        self.plan_restore_with(env, target, source, DiffOptions::default())
            .await
    }

    /// [`Vault::plan_restore`], its diff compared with `options` (the environment's
    /// `diff.keys`: [`DiffOptions::for_env`]); the target's `ignore` paths are left out
    /// of the diff either way.
    ///
    /// # Errors
    /// As [`Vault::plan_restore`].
    pub async fn plan_restore_with(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        source: &Selector,
        options: DiffOptions,
    ) -> Result<RestorePlan> {
        let options = match target.filters() {
            Some(f) if !f.ignore_paths().is_empty() => options.ignoring(f),
            _ => options,
        };
        let (snapshot, raw) = self.checked_snapshot(env, source).await.map_err(|e| {
            e.context(format!(
                "refusing to restore {source} of {env} (nothing was pushed)"
            ))
        })?;
        let (schema_violations, (live, live_raw)) = tokio::join!(
            self.options().schemas.check_blocking(env, raw.clone()),
            self.read_live(target)
        );
        let schema_violations = schema_violations?;
        let mut already_live =
            matches!(&live, LiveState::Present { sha256, .. } if *sha256 == snapshot.sha256);
        if let Some(current) = live_raw.as_ref().filter(|_| !already_live) {
            // Equal but for the filter's ignore paths: restore would push nothing.
            already_live = filter::equal_ignoring(target.filters(), current.clone(), raw.clone())
                .await
                .unwrap_or(false);
        }
        let diff = match &live_raw {
            Some(current) if matches!(live, LiveState::Present { json: true, .. }) => {
                let (current, new) = (current.clone(), raw.clone());
                tokio::task::spawn_blocking(move || {
                    options.between(&current, &new, "live", "snapshot")
                })
                .await
                .ok()
                .and_then(Result::ok)
            }
            _ => None,
        };
        Ok(RestorePlan {
            env: env.clone(),
            target: target.describe(),
            live,
            already_live,
            changes: diff.as_ref().map(|d| d.changes().to_vec()),
            schema_violations,
            diff,
            snapshot,
            raw,
        })
    }

    /// Reads live for a restore: again, after a pause, while it fails with anything
    /// but a missing live (a 5xx, a timeout, a refused connection, a 401 or 403), up to
    /// `retry.attempts` reads. The last error is returned.
    pub(super) async fn read_live_retrying(
        &self,
        target: &dyn LiveTarget,
        retry: LiveRetry,
    ) -> Result<Bytes> {
        let attempts = retry.attempts.max(1);
        let mut pause = retry.backoff;
        let mut attempt = 1;
        loop {
            match target.read(self.options().max_size).await {
                Ok(raw) => return Ok(raw),
                Err(e) if e.is_live_missing() || e.kind() == ErrorKind::TooLarge => {
                    return Err(e);
                }
                Err(e) if attempt >= attempts => return Err(e),
                Err(e) => {
                    tracing::warn!(target = %target.describe(), attempt, error = %e.report(),
                        "cannot read live before a restore; reading it again");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    pub(super) async fn read_live(&self, target: &dyn LiveTarget) -> (LiveState, Option<Bytes>) {
        match target.read(self.options().max_size).await {
            Ok(raw) => {
                let json = codec::check_json(&raw, "live").is_ok();
                (
                    LiveState::Present {
                        sha256: codec::sha256_hex(&raw),
                        size: raw.len() as u64,
                        json,
                    },
                    Some(raw),
                )
            }
            Err(e) if e.is_live_missing() => (LiveState::Missing { reason: e.report() }, None),
            Err(e) => (
                LiveState::Unreadable {
                    reason: e.report(),
                    code: e.kind().code().into(),
                },
                None,
            ),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

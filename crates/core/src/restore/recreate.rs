//! A restore to a live object the platform has deleted (its write answered 404 or
//! 410): create it anew when the live target says how and the caller allows it
//! (`create_if_missing`), or say how to configure that.

use bytes::Bytes;

use super::failure::LiveAfter;
use super::{PreRestore, RestoreRequest};
use crate::error::{Error, Hint, Result, Step};
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::live::http::Created;
use crate::meta::SnapshotMeta;
use crate::vault::Vault;

impl Vault {
    /// Creates the deleted live object from the snapshot's bytes, after the write's
    /// `missing` error. A failure is recorded as a failed restore (stage `create`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_missing(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        snapshot: &SnapshotMeta,
        raw: Bytes,
        pre_restore: &PreRestore,
        req: &RestoreRequest,
        missing: Error,
    ) -> Result<Created> {
        let v = snapshot.version;
        let how = target.creates().unwrap_or_default();
        tracing::info!(%env, version = v, create = %how, missing = %missing.report(),
            "the live object is gone from the platform; creating it anew");
        match target.create(raw.clone(), raw).await {
            Ok(created) => {
                tracing::info!(%env, version = v, id = %created.id,
                    target = %created.target.describe(), "created the live object anew");
                Ok(created)
            }
            Err(e) => {
                let state = LiveAfter {
                    text: format!(
                        "the object is gone from the platform ({}), and creating it anew \
                         ({how}) failed",
                        missing.message()
                    ),
                    code: "create-failed",
                    undo: None,
                };
                self.record_failure(env, snapshot, pre_restore, req, "create", &e, &state)
                    .await;
                Err(Error::new(
                    e.kind(),
                    format!("restoring v{v} of {env}: {}: {}", state.text, e.report()),
                )
                .with_source(e))
            }
        }
    }
}

/// The error of a write that found the live object gone, with what to do: create it
/// (when the target says how), or configure how.
pub(super) fn explain_missing(env: &EnvRef, target: &dyn LiveTarget, e: Error) -> Error {
    let e = e.with_hint("the object is gone from the platform");
    let (text, step) = match target.creates() {
        Some(how) => (
            format!(
                "the live target can create it anew ({how}); the platform then gives it a new \
                 identity, and the config must be changed to point at it"
            ),
            Some(Step::CreateMissing),
        ),
        None => (
            format!(
                "to have restore create it anew, add an [apps.{}.envs.{}.live.create] table \
                 with the create request's `url` and `id`, the jq path to the new identity in \
                 the platform's answer (see the README, \"Restoring a deleted object\")",
                env.app, env.env
            ),
            None,
        ),
    };
    match step {
        Some(step) if e.hint().is_none() => e.with_next(Hint::steps(text, [step])),
        _ => e.with_hint(text),
    }
}

/// An error after the object was created anew (reading it back, comparing): it names
/// the new identity and the config change, since the object exists either way.
pub(super) fn created_but(e: Error, created: &Created) -> Error {
    e.with_hint(format!(
        "the object was created anew with the identity {:?} at {}; point the config at it: \
         {}",
        created.id,
        created.target.describe(),
        created.change.toml().trim_end().replace('\n', "; ")
    ))
}

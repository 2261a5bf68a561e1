//! Saving what is live outside the store before a restore, for a store that can't be
//! written (a read-only copy used for disaster recovery): a restore never overwrites
//! live before what it holds is saved somewhere.

use bytes::Bytes;

use super::{PreRestore, RestoreRequest};
use crate::codec;
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::id::EnvRef;
use crate::vault::Vault;

/// The hint when the pre-restore snapshot can't be written to the store.
pub(super) fn store_unwritable_hint() -> Hint {
    Hint::steps(
        "make the store writable, or save what is live outside the store first",
        [Step::SaveLiveTo],
    )
}

impl Vault {
    /// Writes `current` (what live holds) to `req.save_live_to` and reads it back.
    ///
    /// # Errors
    /// The target's errors, or `Unavailable` if what is read back differs; nothing has
    /// been pushed then.
    pub(super) async fn save_live_copy(
        &self,
        env: &EnvRef,
        req: &RestoreRequest,
        current: Bytes,
    ) -> Result<PreRestore> {
        let Some(copy) = &req.save_live_to else {
            return Err(Error::internal("no target to save live to"));
        };
        let target = copy.describe();
        let what = || {
            format!(
                "saving the live configuration of {env} to {target} before restoring; \
                 nothing was pushed"
            )
        };
        let sha256 = codec::sha256_hex(&current);
        let size = current.len() as u64;
        copy.write(current).await.map_err(|e| e.context(what()))?;
        let back = copy
            .read(size.max(self.options().max_size))
            .await
            .map_err(|e| e.context(what()))?;
        if codec::sha256_hex(&back) != sha256 {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("{}: reading the copy back gives other bytes", what()),
            ));
        }
        tracing::info!(%env, %target, size, "live configuration saved outside the store");
        Ok(PreRestore::SavedElsewhere {
            target,
            sha256,
            size,
        })
    }
}

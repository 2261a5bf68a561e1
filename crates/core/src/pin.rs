//! Pins: a pinned snapshot is never deleted by retention. A pin is one small object
//! per version (`layout::pin_key`); creating it is idempotent, deleting it unpins.

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::events::{Action, Actor, Event};
use crate::id::EnvRef;
use crate::layout;
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// What a pin object holds (informational: the key alone makes the pin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// The pinned version.
    pub version: u64,
    /// When it was pinned.
    pub pinned_at: DateTime<Utc>,
    /// Who pinned it.
    pub by: Option<String>,
}

/// What `pin` or `unpin` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinOutcome {
    /// The version is now pinned (or unpinned).
    Changed,
    /// It already was; nothing was written.
    AlreadyThatWay,
}

impl Vault {
    /// Pins snapshot `version` of `env` so that retention never deletes it.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions if the snapshot does not exist; store
    /// errors.
    pub async fn pin(&self, env: &EnvRef, version: u64, actor: &Actor) -> Result<PinOutcome> {
        // The snapshot must exist: a pin on nothing protects nothing.
        self.snapshot_meta(env, version).await?;
        self.ensure_marker().await?;
        let record = PinRecord {
            version,
            pinned_at: Utc::now(),
            by: actor.who.clone(),
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| Error::internal(format!("cannot encode pin: {e}")))?;
        match self
            .store()
            .put(
                &layout::pin_key(env, version),
                Bytes::from(body),
                &Metadata::new(),
                PutMode::Create,
            )
            .await
        {
            Ok(_) => {
                let event = Event::now(Action::Pin, env, actor).version(version);
                self.record_event_or_log(&event).await;
                Ok(PinOutcome::Changed)
            }
            Err(e) if e.is_conflict() => Ok(PinOutcome::AlreadyThatWay),
            Err(e) => Err(e.context(format!("pinning v{version} of {env}"))),
        }
    }

    /// Removes the pin of `version`, letting retention delete it again.
    ///
    /// # Errors
    /// `NotFound` naming the pinned versions if `version` is not pinned; store errors.
    pub async fn unpin(&self, env: &EnvRef, version: u64, actor: &Actor) -> Result<PinOutcome> {
        let key = layout::pin_key(env, version);
        match self.store().head(&key).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let pins = self.pins(env).await?;
                let listed = if pins.is_empty() {
                    "no version is pinned".to_string()
                } else {
                    let shown: Vec<String> = pins.iter().rev().map(|v| format!("v{v}")).collect();
                    format!("pinned: {}", shown.join(", "))
                };
                return Err(Error::not_found(format!(
                    "v{version} of {env} is not pinned ({listed})"
                ))
                .with_next(Hint::steps("pin it", [Step::Pin(env.into(), version)])));
            }
            Err(e) => return Err(e),
        }
        self.store()
            .delete(&key)
            .await
            .map_err(|e| e.context(format!("unpinning v{version} of {env}")))?;
        let event = Event::now(Action::Unpin, env, actor).version(version);
        self.record_event_or_log(&event).await;
        Ok(PinOutcome::Changed)
    }

    /// The pinned versions of `env`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn pins(&self, env: &EnvRef) -> Result<BTreeSet<u64>> {
        let keys = self
            .list_parsed_keys(
                &layout::pins_prefix(env),
                None,
                usize::MAX,
                layout::parse_pin_key,
            )
            .await?;
        Ok(keys
            .iter()
            .filter_map(|k| layout::parse_pin_key(k))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::snapshot::{BackupRequest, Trigger};
    use crate::store::LocalStore;
    use crate::vault::VaultOptions;

    async fn vault_with(n: u64) -> (tempfile::TempDir, Vault, EnvRef) {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::new(
            Arc::new(LocalStore::open(dir.path()).unwrap()),
            VaultOptions::default(),
        );
        let env = EnvRef::parse("crm", "production").unwrap();
        for i in 0..n {
            vault
                .backup(
                    &env,
                    BackupRequest::new(format!("{{\"n\":{i}}}"), Trigger::Manual),
                )
                .await
                .unwrap();
        }
        (dir, vault, env)
    }

    #[tokio::test]
    async fn pin_unpin_round_trip() {
        let (_d, vault, env) = vault_with(3).await;
        let actor = Actor::default();
        assert_eq!(
            vault.pin(&env, 2, &actor).await.unwrap(),
            PinOutcome::Changed
        );
        assert_eq!(
            vault.pin(&env, 2, &actor).await.unwrap(),
            PinOutcome::AlreadyThatWay
        );
        vault.pin(&env, 3, &actor).await.unwrap();
        assert_eq!(vault.pins(&env).await.unwrap(), BTreeSet::from([2, 3]));
        assert_eq!(
            vault.unpin(&env, 2, &actor).await.unwrap(),
            PinOutcome::Changed
        );
        assert_eq!(vault.pins(&env).await.unwrap(), BTreeSet::from([3]));
        let e = vault.unpin(&env, 2, &actor).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("pinned: v3"), "{e}");
        let events = vault.events(&env, 20).await.unwrap();
        let count = |a: Action| events.iter().filter(|e| e.action == a).count();
        // Events in the same millisecond have no order between them: count them.
        assert_eq!((count(Action::Pin), count(Action::Unpin)), (2, 1));
    }

    #[tokio::test]
    async fn pinning_a_missing_version_names_the_nearest() {
        let (_d, vault, env) = vault_with(3).await;
        let e = vault.pin(&env, 9, &Actor::default()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("the latest is v3"), "{e}");
        assert!(vault.pins(&env).await.unwrap().is_empty());
    }
}

//! Key rotation: re-encrypts an environment's encrypted snapshots to its current
//! recipients, keeping each snapshot's version, sha256, content and history.
//!
//! Each object is rewritten in place, with the same metadata but the recipients, by a
//! conditional write on the etag read (a concurrent prune or rekey makes it fail, not
//! clobber). A write replaces the whole object with its metadata at once, so a crash
//! leaves either the old object or the new one, both readable. After each write the
//! object is read back and compared byte for byte with what was written (and decoded
//! in full when an identity given opens it); if that fails, the old object is put back.
//! Plain snapshots are left as they are.

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::{Recipients, decrypt, encrypt};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Action, Actor, Event};
use crate::id::EnvRef;
use crate::meta::SnapshotMeta;
use crate::snapshot::decode_snapshot;
use crate::store::PutMode;
use crate::vault::Vault;

/// How many snapshots are re-encrypted at once.
const CONCURRENCY: usize = 4;

/// What `rekey` did in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// The environment.
    pub env: String,
    /// The recipients the snapshots are now encrypted to.
    pub recipients: Vec<String>,
    /// Versions re-encrypted.
    pub rekeyed: Vec<u64>,
    /// Encrypted versions already encrypted to exactly these recipients.
    pub current: usize,
    /// Plain (unencrypted) versions, left as they are.
    pub plain: usize,
}

enum Outcome {
    Rekeyed(u64),
    Current,
    Plain,
    Vanished,
}

impl Vault {
    /// Re-encrypts every encrypted snapshot of `env` that is not encrypted to its
    /// current recipients (the config's) to them, and records a `rekey` audit event
    /// when it changed any.
    ///
    /// # Errors
    /// `InvalidInput` if `env` has no recipients configured; `Config` if a snapshot
    /// can't be decrypted with the identities given (naming its recipients); `Corrupt`
    /// if one fails its checks (nothing is rewritten for it); store errors. Snapshots
    /// re-encrypted before an error stay re-encrypted (each is whole and checked).
    pub async fn rekey(&self, env: &EnvRef, actor: &Actor) -> Result<RekeyReport> {
        let recipients = self
            .options()
            .encryption
            .recipients(env)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{env} has no age recipients configured, so there is nothing to \
                     re-encrypt to: set [encryption] recipients (or \
                     [apps.{}.envs.{}.encryption] recipients) in the config",
                    env.app, env.env
                ))
            })?;
        let keys = self.list_keys(env, None, usize::MAX).await?;
        let outcomes: Vec<Result<Outcome>> = futures::stream::iter(keys)
            .map(|key| {
                let recipients = &recipients;
                async move { self.rekey_one(env, &key, recipients).await }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut report = RekeyReport {
            env: env.to_string(),
            recipients: recipients.names().to_vec(),
            ..RekeyReport::default()
        };
        let mut first_error = None;
        for o in outcomes {
            match o {
                Ok(Outcome::Rekeyed(v)) => report.rekeyed.push(v),
                Ok(Outcome::Current) => report.current += 1,
                Ok(Outcome::Plain) => report.plain += 1,
                Ok(Outcome::Vanished) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        report.rekeyed.sort_unstable();
        if !report.rekeyed.is_empty() {
            let event = Event::now(Action::Rekey, env, actor).details(serde_json::json!({
                "versions": report.rekeyed,
                "recipients": report.recipients,
            }));
            self.record_event_or_log(&event).await;
        }
        match first_error {
            Some(e) => Err(e.context(format!(
                "rekey of {env} stopped after re-encrypting {} snapshots",
                report.rekeyed.len()
            ))),
            None => Ok(report),
        }
    }

    async fn rekey_one(&self, env: &EnvRef, key: &str, to: &Recipients) -> Result<Outcome> {
        let obj = match self.store().get(key).await {
            Ok(obj) => obj,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Outcome::Vanished),
            Err(e) => return Err(e),
        };
        let meta = SnapshotMeta::from_object(&obj.info)?;
        let Some(from) = &meta.recipients else {
            return Ok(Outcome::Plain);
        };
        let mut same = from.clone();
        let mut wanted = to.names().to_vec();
        same.sort();
        wanted.sort();
        if same == wanted {
            return Ok(Outcome::Current);
        }
        let what = format!("snapshot v{} of {env}", meta.version);
        let identities = self.options().identities.clone();
        let (old, from, to_keys) = (obj.bytes.clone(), from.clone(), to.clone());
        let (frame, sealed) = tokio::task::spawn_blocking(move || {
            let frame = decrypt(&old, &identities, &from, &what)?;
            let sealed = encrypt(&frame, &to_keys)?;
            Ok::<_, Error>((Bytes::from(frame), Bytes::from(sealed)))
        })
        .await
        .map_err(|e| Error::internal(format!("rekey task failed: {e}")))??;
        // The content is checked before anything is written.
        let limit = self.options().max_size.max(meta.size);
        decode_snapshot(env, &meta, frame, limit).await?;
        let mut next = meta.clone();
        next.recipients = Some(to.names().to_vec());
        self.store()
            .put(
                key,
                sealed.clone(),
                &next.to_metadata(),
                PutMode::Update {
                    etag: obj.info.etag.clone(),
                },
            )
            .await?;
        if let Err(e) = self.check_rekeyed(env, key, &sealed, &next).await {
            tracing::error!(%env, version = meta.version, error = %e.report(),
                "the re-encrypted snapshot does not read back; putting the old one back");
            self.store()
                .put(key, obj.bytes, &meta.to_metadata(), PutMode::Overwrite)
                .await?;
            return Err(e.context(format!(
                "re-encrypting v{} of {env} (the old object was put back)",
                meta.version
            )));
        }
        tracing::info!(%env, version = meta.version, "snapshot re-encrypted");
        Ok(Outcome::Rekeyed(meta.version))
    }

    /// Reads a re-encrypted object back: the bytes and metadata written, and the
    /// content in full when an identity given opens it.
    async fn check_rekeyed(
        &self,
        env: &EnvRef,
        key: &str,
        written: &Bytes,
        meta: &SnapshotMeta,
    ) -> Result<()> {
        let back = self.store().get(key).await?;
        let read = SnapshotMeta::from_object(&back.info)?;
        if back.bytes != *written
            || read.recipients != meta.recipients
            || read.sha256 != meta.sha256
        {
            return Err(Error::corrupt(format!(
                "{key} does not read back as written"
            )));
        }
        match self.unseal(env, &read, back.bytes).await {
            Ok(frame) => {
                let limit = self.options().max_size.max(read.size);
                decode_snapshot(env, &read, frame, limit).await.map(drop)
            }
            // Not one of the new recipients' identities: the bytes match what was
            // encrypted from checked content, which is all that can be checked.
            Err(e) if e.kind() == ErrorKind::Config => Ok(()),
            Err(e) => Err(e),
        }
    }
}

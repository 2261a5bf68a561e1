//! Reading one snapshot: its metadata, its stored bytes, or its checked content; a
//! missing version names the nearest that exist.

use bytes::Bytes;

use super::{decode_snapshot, no_snapshots};
use crate::crypt;
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::vault::Vault;

impl Vault {
    /// The metadata of snapshot `version`.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions that exist; `Corrupt` for unreadable
    /// metadata.
    pub async fn snapshot_meta(&self, env: &EnvRef, version: u64) -> Result<SnapshotMeta> {
        match self.store().head(&layout::snapshot_key(env, version)).await {
            Ok(info) => SnapshotMeta::from_object(&info),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(self.version_not_found(env, version).await)
            }
            Err(e) => Err(e),
        }
    }

    /// The zstd frame of snapshot `version` with its metadata: the stored bytes, or for
    /// an encrypted snapshot the frame decrypted with the vault's identities; not
    /// decompressed.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions; `Corrupt` for unreadable metadata or an
    /// encrypted object that fails decryption; `Config` for an encrypted snapshot that
    /// no identity given opens (naming its recipients).
    pub async fn get_stored(&self, env: &EnvRef, version: u64) -> Result<(SnapshotMeta, Bytes)> {
        let obj = match self.store().get(&layout::snapshot_key(env, version)).await {
            Ok(obj) => obj,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(self.version_not_found(env, version).await);
            }
            Err(e) => return Err(e),
        };
        let meta = SnapshotMeta::from_object(&obj.info)?;
        let frame = self.unseal(env, &meta, obj.bytes).await?;
        Ok((meta, frame))
    }

    /// The zstd frame inside a stored snapshot object: the object itself for a plain
    /// snapshot, decrypted with the vault's identities for an encrypted one.
    ///
    /// # Errors
    /// As [`Vault::get_stored`].
    pub async fn unseal(&self, env: &EnvRef, meta: &SnapshotMeta, stored: Bytes) -> Result<Bytes> {
        let Some(recipients) = meta.recipients.clone() else {
            return Ok(stored);
        };
        let identities = self.options().identities.clone();
        let what = format!("snapshot v{} of {env}", meta.version);
        tokio::task::spawn_blocking(move || {
            crypt::decrypt(&stored, &identities, &recipients, &what).map(Bytes::from)
        })
        .await
        .map_err(|e| Error::internal(format!("decryption task failed: {e}")))?
    }

    /// The raw configuration of snapshot `version`, decompressed and checked against its
    /// sha256 and size.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions; `Corrupt` if the content fails a check.
    pub async fn get(&self, env: &EnvRef, version: u64) -> Result<(SnapshotMeta, Bytes)> {
        let (meta, stored) = self.get_stored(env, version).await?;
        let raw =
            decode_snapshot(env, &meta, stored, self.options().max_size.max(meta.size)).await?;
        Ok((meta, raw))
    }

    /// A `NotFound` error for a missing version that names the nearest versions that
    /// exist (two LISTs at most).
    async fn version_not_found(&self, env: &EnvRef, version: u64) -> Error {
        let Ok(Some(latest)) = self.latest_version(env).await else {
            return no_snapshots(env);
        };
        let mut near = Vec::new();
        if version < latest {
            if let Ok(keys) = self.list_keys(env, Some(version), 1).await
                && let Some(down) = keys.first().and_then(|k| layout::parse_snapshot_key(k))
            {
                near.push(format!("v{down}"));
            }
            // Keys sort newest first: start just above `version` + 100 and keep what is
            // newer than `version`; the smallest of those is the nearest newer version.
            let window = 100;
            if let Ok(keys) = self
                .list_keys(
                    env,
                    Some(version.saturating_add(window + 1)),
                    window as usize + 1,
                )
                .await
                && let Some(up) = keys
                    .iter()
                    .filter_map(|k| layout::parse_snapshot_key(k))
                    .filter(|v| *v > version)
                    .min()
            {
                near.push(format!("v{up}"));
            }
        }
        let near = if near.is_empty() {
            String::new()
        } else {
            format!("; the nearest are {}", near.join(" and "))
        };
        Error::not_found(format!(
            "snapshot v{version} of {env} not found{near}; the latest is v{latest}"
        ))
        .with_next(Hint::steps(
            "look at the snapshots",
            [Step::ListSnapshots(env.into())],
        ))
    }
}

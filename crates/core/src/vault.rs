//! The domain's entry point: a [`Vault`] is a store plus the options that shape what is
//! written to it. Snapshots, releases, restore and retention are `impl Vault` blocks in
//! their own modules.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::crypt::{Encryption, Identities};
use crate::error::{Error, Result};
use crate::layout::{FORMAT_VERSION, MARKER_KEY};
use crate::notify::{EventSink, Notice};
use crate::schema::Schemas;
use crate::store::{Metadata, PutMode, Store};

/// What shapes the snapshots a vault writes.
#[derive(Debug, Clone)]
pub struct VaultOptions {
    /// zstd level for new snapshots.
    pub compression_level: i32,
    /// The largest configuration accepted, in bytes.
    pub max_size: u64,
    /// The environments' JSON Schemas (none by default).
    pub schemas: Schemas,
    /// The age recipients of new snapshots, per environment (none by default).
    pub encryption: Encryption,
    /// The age identities that read encrypted snapshots (none by default).
    pub identities: Identities,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            compression_level: 3,
            max_size: 64 * 1024 * 1024,
            schemas: Schemas::default(),
            encryption: Encryption::none(),
            identities: Identities::none(),
        }
    }
}

impl VaultOptions {
    /// The options a config file sets (no identities: those never come from the
    /// config, see [`VaultOptions::with_identities`]).
    ///
    /// # Errors
    /// `Config` for an `encryption` recipient that is not an age X25519 public key.
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(Self {
            compression_level: config.snapshots.compression_level,
            max_size: config.snapshots.max_size.0,
            schemas: Schemas::from_config(config),
            encryption: Encryption::from_config(config)?,
            identities: Identities::none(),
        })
    }

    /// These options, reading encrypted snapshots with `identities`.
    #[must_use]
    pub fn with_identities(mut self, identities: Identities) -> Self {
        self.identities = identities;
        self
    }
}

/// The store marker: says that a bucket or directory holds a jetvault store, and in
/// which layout version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Layout version.
    pub format: u32,
    /// When the store was first written.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The jetvault version that created it.
    pub created_by: String,
}

/// Snapshots, releases and restores of every environment in one store.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Arc<dyn Store>,
    options: VaultOptions,
    /// Whether the marker was there when first read (an error is not kept).
    marker_read: Arc<OnceCell<bool>>,
    marker_checked: Arc<OnceCell<()>>,
    sink: Option<Arc<dyn EventSink>>,
}

impl Vault {
    /// A vault over `store`.
    pub fn new(store: Arc<dyn Store>, options: VaultOptions) -> Self {
        Self {
            store,
            options,
            marker_read: Arc::new(OnceCell::new()),
            marker_checked: Arc::new(OnceCell::new()),
            sink: None,
        }
    }

    /// This vault with `sink` told of every audit event it records (and of what the
    /// front ends pass to [`Vault::notify`]).
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Hands `notice` to the sink, if any; returns at once.
    pub fn notify(&self, notice: Notice) {
        if let Some(sink) = &self.sink {
            sink.notify(notice);
        }
    }

    /// The store underneath.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &VaultOptions {
        &self.options
    }

    /// Makes sure the store carries a marker of a layout this build understands,
    /// writing one into an empty store. Done once per vault, before the first write.
    ///
    /// # Errors
    /// `Corrupt` if the marker is unreadable, `InvalidInput` if it is from a newer
    /// layout, store errors otherwise.
    pub async fn ensure_marker(&self) -> Result<()> {
        self.marker_checked
            .get_or_try_init(|| async {
                if self.marker_exists().await? {
                    return Ok(());
                }
                let marker = Marker {
                    format: FORMAT_VERSION,
                    created_at: chrono::Utc::now(),
                    created_by: format!("jetvault {}", env!("CARGO_PKG_VERSION")),
                };
                let body = serde_json::to_vec_pretty(&marker)
                    .map_err(|e| Error::internal(format!("cannot encode marker: {e}")))?;
                match self
                    .store
                    .put(
                        MARKER_KEY,
                        Bytes::from(body),
                        &Metadata::new(),
                        PutMode::Create,
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_conflict() => self.read_marker().await.map(drop),
                    Err(e) => Err(e),
                }
            })
            .await
            .copied()
    }

    /// [`Vault::ensure_marker`] once `checked` says a write may follow: the marker is
    /// read at once, beside the caller's checks (one GET however many callers wait), and
    /// written into an empty store only if they pass; nothing when they fail (the
    /// caller reports why).
    ///
    /// # Errors
    /// As [`Vault::ensure_marker`].
    pub(crate) async fn ensure_marker_after(
        &self,
        checked: impl Future<Output = bool>,
    ) -> Result<()> {
        if self.marker_checked.initialized() {
            return Ok(());
        }
        let (exists, passed) = tokio::join!(self.marker_exists(), checked);
        if !passed {
            return Ok(());
        }
        exists?;
        self.ensure_marker().await
    }

    /// Whether the store's marker exists, read once per vault (and checked: see
    /// [`Vault::read_marker`]).
    async fn marker_exists(&self) -> Result<bool> {
        self.marker_read
            .get_or_try_init(|| async {
                match self.read_marker().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == crate::error::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
            .copied()
    }

    /// The keys under `prefix` that `parse` accepts, up to `limit`, in key order (newest
    /// first for ordinal keys), after `start_after`; one LIST per 1000 keys.
    ///
    /// # Errors
    /// Store errors.
    pub(crate) async fn list_parsed_keys(
        &self,
        prefix: &str,
        start_after: Option<String>,
        limit: usize,
        parse: fn(&str) -> Option<u64>,
    ) -> Result<Vec<String>> {
        let mut after = start_after;
        let mut keys = Vec::new();
        while keys.len() < limit {
            let page = self
                .store
                .list(prefix, after.as_deref(), (limit - keys.len()).min(1000))
                .await?;
            after = page.objects.last().map(|o| o.key.clone());
            keys.extend(
                page.objects
                    .into_iter()
                    .filter(|o| parse(&o.key).is_some())
                    .map(|o| o.key),
            );
            if !page.truncated {
                break;
            }
        }
        Ok(keys)
    }

    /// Reads the store marker.
    ///
    /// # Errors
    /// `NotFound` for a store never written to; `Corrupt` or `InvalidInput` for a
    /// marker this build can't use.
    pub async fn read_marker(&self) -> Result<Marker> {
        let obj = self.store.get(MARKER_KEY).await?;
        let marker: Marker = serde_json::from_slice(&obj.bytes).map_err(|e| {
            Error::corrupt(format!(
                "store marker {MARKER_KEY} in {} is unreadable: {e}",
                self.store.describe()
            ))
        })?;
        if marker.format > FORMAT_VERSION {
            return Err(Error::invalid(format!(
                "{} was written in layout {} by {}; this jetvault reads layout \
                 {FORMAT_VERSION}: upgrade jetvault",
                self.store.describe(),
                marker.format,
                marker.created_by
            )));
        }
        Ok(marker)
    }
}

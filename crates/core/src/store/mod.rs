//! Object stores: the one interface the domain writes through, and its implementations.
//!
//! Every implementation has the same semantics, checked by one conformance suite
//! ([`conformance`]): keys are `/`-separated strings relative to the store's root,
//! listing is recursive and in byte order, and `put` takes a [`PutMode`] so that a
//! version number is claimed with create-only and the release pointer is moved with
//! compare-and-swap.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::store::s3::S3Options;

pub(crate) mod atomic;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod counting;
pub mod local;
mod redact;
pub mod s3;

pub use counting::CountingStore;
pub use local::LocalStore;
pub use redact::redact_url;
pub use s3::S3Store;

/// User metadata of an object: lowercase ASCII keys, ASCII values (S3's `x-amz-meta-*`).
pub type Metadata = BTreeMap<String, String>;

/// How a `put` treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Create the object only if the key is free (`If-None-Match: *`); fails with
    /// `AlreadyExists` otherwise.
    Create,
    /// Replace the object only if its current etag is this one (`If-Match`); fails with
    /// `PreconditionFailed` if it changed, `NotFound` if it is missing.
    Update {
        /// The etag read before.
        etag: String,
    },
    /// Write unconditionally.
    Overwrite,
}

/// What a store knows of one object without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the store's root.
    pub key: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Opaque version tag, changed by every write.
    pub etag: String,
    /// When the object was written, where the store says.
    pub last_modified: Option<DateTime<Utc>>,
    /// User metadata (empty in list results).
    pub metadata: Metadata,
}

/// An object with its content.
#[derive(Debug, Clone)]
pub struct Object {
    /// What the store says of it.
    pub info: ObjectInfo,
    /// The content.
    pub bytes: Bytes,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects in byte order of their keys; `metadata` is empty.
    pub objects: Vec<ObjectInfo>,
    /// Whether more keys follow; continue with `start_after` = the last key.
    pub truncated: bool,
}

/// The result of a conditional read.
#[derive(Debug, Clone)]
pub enum Conditional {
    /// The object has not changed since the etag given (HTTP 304: no content transferred).
    NotModified,
    /// The object has changed; here it is.
    Modified(Object),
}

/// The storage interface of the domain.
///
/// Implementations map their own failures onto the library's error kinds: a missing
/// object is `NotFound`, a lost conditional write `AlreadyExists` (create) or
/// `PreconditionFailed` (update), a failed connection `Unavailable` naming the endpoint.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// A human-readable name of the store for messages, e.g. `s3://bucket/prefix at
    /// http://127.0.0.1:4566`. Never contains secrets.
    fn describe(&self) -> String;

    /// Reads an object with its content and metadata.
    async fn get(&self, key: &str) -> Result<Object>;

    /// Reads an object only if its etag differs from `etag`.
    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional>;

    /// Reads an object's size, etag and metadata.
    async fn head(&self, key: &str) -> Result<ObjectInfo>;

    /// Writes an object with metadata, as `mode` allows; returns the new etag.
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<String>;

    /// Lists up to `limit` objects whose keys start with `prefix` and sort after
    /// `start_after`, recursively, in byte order of their keys.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize)
    -> Result<ListPage>;

    /// Lists the distinct "directories" directly below `prefix` (which ends with `/`):
    /// for keys `apps/a/x` and `apps/b/y` under `apps/`, returns `["a", "b"]`.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Checks that the store is reachable and its bucket or directory exists.
    async fn check(&self) -> Result<()>;

    /// Files that writers killed mid-write left under `prefix` (a `/`-terminated key
    /// prefix), last written more than `grace` ago, so that a running writer's are not
    /// named. A store that writes each object in one request leaves none (the default).
    async fn leftovers(&self, prefix: &str, grace: Duration) -> Result<Vec<Leftover>> {
        let _ = (prefix, grace);
        Ok(Vec::new())
    }

    /// Deletes a leftover that [`Store::leftovers`] named, if it still is one and older
    /// than `grace`; returns whether it was deleted. Never touches an object.
    async fn remove_leftover(&self, leftover: &Leftover, grace: Duration) -> Result<bool> {
        let _ = (leftover, grace);
        Ok(false)
    }
}

/// What a killed writer left behind in a store (see [`Store::leftovers`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leftover {
    /// Its path relative to the store's root (not an object key: stores hide it).
    pub path: String,
    /// What it is.
    pub kind: LeftoverKind,
    /// When it was last written.
    pub modified: Option<DateTime<Utc>>,
}

/// The kinds of [`Leftover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftoverKind {
    /// A temporary file of an atomic write that was never renamed into place.
    TempFile,
    /// The metadata of an object whose content was never written (or was deleted).
    OrphanMetadata,
}

/// Options that apply when opening a store from a URL.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// S3 settings (endpoint, region, path style, SSE).
    pub s3: S3Options,
}

impl OpenOptions {
    /// The options a configuration gives.
    #[must_use]
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            s3: config.s3.clone(),
        }
    }
}

/// Opens the store a URL names: `s3://bucket[/prefix]` or `file:///path`.
///
/// # Errors
/// `InvalidInput` for a malformed URL or an unknown scheme.
pub async fn open(url: &str, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    match StoreUrl::parse(url)? {
        StoreUrl::File(path) => Ok(Arc::new(LocalStore::open(path)?)),
        StoreUrl::S3 { bucket, prefix } => Ok(Arc::new(
            S3Store::connect(&bucket, &prefix, &options.s3).await?,
        )),
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `file:///path`: a local directory.
    File(std::path::PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

impl StoreUrl {
    /// Parses `s3://bucket[/prefix]` or `file:///absolute/path` (or `file://relative`).
    ///
    /// # Errors
    /// `InvalidInput` naming the URL and the accepted forms.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid store URL {url:?}: {why}; use s3://BUCKET[/PREFIX] or file:///PATH"
            ))
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the bucket is missing"));
            }
            let bucket_ok = bucket.len() >= 3
                && bucket.len() <= 63
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !bucket_ok {
                return Err(bad(&format!("{bucket:?} is not a valid bucket name")));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == ".." || p == ".") {
                return Err(bad("the prefix may not contain '.' or '..' segments"));
            }
            Ok(Self::S3 {
                bucket: bucket.to_string(),
                prefix,
            })
        } else if let Some(rest) = url.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(bad("the path is missing"));
            }
            Ok(Self::File(std::path::PathBuf::from(rest)))
        } else {
            Err(bad("unknown scheme"))
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Checks that a store honours conditional writes: creates a probe key twice with
/// create-only (the second must fail), then updates it with a stale etag (must fail).
///
/// # Errors
/// `UnsafeStore` if the store accepted a write it should have refused; other kinds if
/// the store could not be reached.
pub async fn precondition_self_test(store: &dyn Store) -> Result<()> {
    let key = format!("_jetvault/probe/{}", uuid::Uuid::new_v4());
    let meta = Metadata::new();
    let unsafe_store = |what: &str| {
        Error::new(
            crate::error::ErrorKind::UnsafeStore,
            format!(
                "{} ignores {what}: two writers could both claim the same version or \
                 overwrite a release; use AWS S3, MinIO or LocalStack, or a store that \
                 supports If-None-Match and If-Match on PutObject",
                store.describe()
            ),
        )
    };
    let first = store
        .put(&key, Bytes::from_static(b"1"), &meta, PutMode::Create)
        .await?;
    let result = async {
        match store
            .put(&key, Bytes::from_static(b"2"), &meta, PutMode::Create)
            .await
        {
            Err(e) if e.is_conflict() => {}
            Ok(_) => return Err(unsafe_store("If-None-Match: * (create-only writes)")),
            Err(e) => return Err(e),
        }
        let stale = store
            .put(
                &key,
                Bytes::from_static(b"3"),
                &meta,
                PutMode::Update {
                    etag: first.clone(),
                },
            )
            .await?;
        match store
            .put(
                &key,
                Bytes::from_static(b"4"),
                &meta,
                PutMode::Update { etag: first },
            )
            .await
        {
            Err(e) if e.is_conflict() => {}
            Ok(_) => return Err(unsafe_store("If-Match (compare-and-swap writes)")),
            Err(e) => return Err(e),
        }
        let _ = stale;
        Ok(())
    }
    .await;
    let cleanup = store.delete(&key).await;
    result?;
    cleanup
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/a/b/").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///var/lib/jv").unwrap(),
            StoreUrl::File("/var/lib/jv".into())
        );
        for bad in [
            "",
            "http://x",
            "s3://",
            "s3://A_B",
            "s3://b/../x",
            "file://",
        ] {
            let e = StoreUrl::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid store URL"), "{bad}: {e}");
        }
    }
}

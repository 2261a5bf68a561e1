//! The S3 store (aws-sdk-s3). Placeholder until the S3 work lands.

use async_trait::async_trait;
use bytes::Bytes;

use super::{Conditional, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};
use crate::config::S3Options;
use crate::error::{Error, Result};

/// A bucket and prefix in S3 or an S3-compatible server.
#[derive(Debug)]
pub struct S3Store {
    bucket: String,
}

impl S3Store {
    /// Connects to `bucket` with keys under `prefix`.
    ///
    /// # Errors
    /// `Config` for bad settings.
    pub async fn connect(bucket: &str, _prefix: &str, _options: &S3Options) -> Result<Self> {
        Ok(Self {
            bucket: bucket.to_string(),
        })
    }
    fn todo(&self) -> Error {
        Error::internal(format!("S3 store for {} not built yet", self.bucket))
    }
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }
    async fn get(&self, _key: &str) -> Result<Object> {
        Err(self.todo())
    }
    async fn get_if_none_match(&self, _key: &str, _etag: &str) -> Result<Conditional> {
        Err(self.todo())
    }
    async fn head(&self, _key: &str) -> Result<ObjectInfo> {
        Err(self.todo())
    }
    async fn put(
        &self,
        _key: &str,
        _bytes: Bytes,
        _m: &Metadata,
        _mode: PutMode,
    ) -> Result<String> {
        Err(self.todo())
    }
    async fn list(&self, _p: &str, _s: Option<&str>, _l: usize) -> Result<ListPage> {
        Err(self.todo())
    }
    async fn list_dirs(&self, _p: &str) -> Result<Vec<String>> {
        Err(self.todo())
    }
    async fn delete(&self, _key: &str) -> Result<()> {
        Err(self.todo())
    }
    async fn check(&self) -> Result<()> {
        Err(self.todo())
    }
}

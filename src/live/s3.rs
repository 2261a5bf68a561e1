//! A live configuration in an S3 object.
// Written by the live-targets work; placeholder until then.

use async_trait::async_trait;
use bytes::Bytes;

use super::LiveTarget;
use crate::config::{LiveConfig, S3Options};
use crate::error::{Error, Result};

/// An S3 object.
#[derive(Debug)]
pub struct S3Target {
    name: String,
}

impl S3Target {
    /// Builds the target from its config.
    ///
    /// # Errors
    /// `Config` for a bad bucket or key.
    pub async fn from_config(config: &LiveConfig, _store: &S3Options) -> Result<Self> {
        match config {
            LiveConfig::S3 { bucket, key, .. } => Ok(Self {
                name: format!("s3://{bucket}/{key}"),
            }),
            _ => Err(Error::internal("not an s3 target")),
        }
    }
}

#[async_trait]
impl LiveTarget for S3Target {
    fn describe(&self) -> String {
        self.name.clone()
    }
    async fn read(&self, _limit: u64) -> Result<Bytes> {
        Err(Error::internal("s3 live target not built yet"))
    }
    async fn write(&self, _bytes: Bytes) -> Result<()> {
        Err(Error::internal("s3 live target not built yet"))
    }
}

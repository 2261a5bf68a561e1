//! A live configuration behind an HTTP endpoint (GET exports it, PUT imports it).
// Written by the live-targets work; placeholder until then.

use async_trait::async_trait;
use bytes::Bytes;

use super::LiveTarget;
use crate::config::LiveConfig;
use crate::error::{Error, Result};
use crate::id::EnvRef;

/// An HTTP endpoint.
#[derive(Debug)]
pub struct HttpTarget {
    url: String,
}

impl HttpTarget {
    /// Builds the target from its config.
    ///
    /// # Errors
    /// `Config` for a bad URL or unreadable token.
    pub fn from_config(_env: &EnvRef, config: &LiveConfig) -> Result<Self> {
        match config {
            LiveConfig::Http { url, .. } => Ok(Self { url: url.clone() }),
            _ => Err(Error::internal("not an http target")),
        }
    }
}

#[async_trait]
impl LiveTarget for HttpTarget {
    fn describe(&self) -> String {
        self.url.clone()
    }
    async fn read(&self, _limit: u64) -> Result<Bytes> {
        Err(Error::internal("http live target not built yet"))
    }
    async fn write(&self, _bytes: Bytes) -> Result<()> {
        Err(Error::internal("http live target not built yet"))
    }
}

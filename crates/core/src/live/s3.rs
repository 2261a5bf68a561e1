//! A live configuration in an S3 object, in any bucket.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};

use super::LiveTarget;
use crate::config::{LiveConfig, S3Options};
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::store::s3::{Op, S3Client};

/// An S3 object that holds an environment's configuration.
#[derive(Debug)]
pub struct S3Target {
    s3: S3Client,
    bucket: String,
    key: String,
}

impl S3Target {
    /// Builds the target from its config; the endpoint, region and path style that it
    /// does not set come from the store's `[s3]` settings.
    ///
    /// # Errors
    /// `Config` for an empty bucket or key or a bad endpoint; `Internal` if `config` is
    /// not an S3 target.
    pub async fn from_config(config: &LiveConfig, store: &S3Options) -> Result<Self> {
        let LiveConfig::S3 {
            bucket,
            key,
            endpoint,
            region,
            force_path_style,
        } = config
        else {
            return Err(Error::internal(
                "S3Target::from_config called for a non-S3 target",
            ));
        };
        if bucket.is_empty() || key.is_empty() || key.starts_with('/') {
            return Err(Error::config(format!(
                "live s3 target s3://{bucket}/{key}: set a bucket and a key (without a \
                 leading '/')"
            )));
        }
        let options =
            store.for_live_target(endpoint.as_deref(), region.as_deref(), *force_path_style);
        Ok(Self {
            s3: S3Client::new(&options).await?,
            bucket: bucket.clone(),
            key: key.clone(),
        })
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn too_large(&self, limit: u64) -> Error {
        Error::too_large(format!(
            "live object {} is larger than the {limit}-byte limit; raise snapshots.max_size \
             if this is expected",
            self.url()
        ))
    }
}

#[async_trait]
impl LiveTarget for S3Target {
    fn describe(&self) -> String {
        match self.s3.endpoint() {
            Some(e) => format!("{} at {e}", self.url()),
            None => self.url(),
        }
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let what = format!("live object {}", self.url());
        let mut out = self
            .s3
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(|e| match self.s3.error(Op::Get, &what, &e) {
                e if e.kind() == ErrorKind::NotFound => e.with_kind(ErrorKind::LiveMissing),
                e => e,
            })?;
        // Refuse before transferring anything when the size is known.
        if out
            .content_length
            .is_some_and(|n| u64::try_from(n).unwrap_or(u64::MAX) > limit)
        {
            return Err(self.too_large(limit));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = out.body.try_next().await.map_err(|e| {
            Error::unavailable(format!(
                "cannot read {what} from {}: the connection failed while receiving it ({e})",
                self.s3.target()
            ))
            .with_next(Hint::steps(
                "retry, and check the whole setup if it persists",
                [Step::Doctor],
            ))
        })? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(self.too_large(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let what = format!("live object {}", self.url());
        let content_type = if self.key.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        self.s3
            .client()
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.s3.error(Op::PutOverwrite, &what, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn falls_back_to_the_store_settings() {
        let store = S3Options {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("eu-central-1".into()),
            force_path_style: true,
            ..S3Options::default()
        };
        let own = LiveConfig::S3 {
            bucket: "live".into(),
            key: "crm/prod.json".into(),
            endpoint: None,
            region: None,
            force_path_style: false,
        };
        let t = S3Target::from_config(&own, &store).await.unwrap();
        assert_eq!(
            t.describe(),
            "s3://live/crm/prod.json at http://127.0.0.1:9"
        );
        assert_eq!(t.s3.region(), "eu-central-1");

        let set = LiveConfig::S3 {
            bucket: "live".into(),
            key: "crm/prod.json".into(),
            endpoint: Some("http://127.0.0.1:10".into()),
            region: Some("us-west-2".into()),
            force_path_style: true,
        };
        let t = S3Target::from_config(&set, &store).await.unwrap();
        assert_eq!(
            t.describe(),
            "s3://live/crm/prod.json at http://127.0.0.1:10"
        );
        assert_eq!(t.s3.region(), "us-west-2");

        let empty = LiveConfig::S3 {
            bucket: "live".into(),
            key: String::new(),
            endpoint: None,
            region: None,
            force_path_style: false,
        };
        let e = S3Target::from_config(&empty, &store).await.unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{e}");
    }
}

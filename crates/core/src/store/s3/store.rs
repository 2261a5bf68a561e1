//! The store over a bucket and a key prefix.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::classify::{HttpResponse, Op};
use super::errors::root_cause;
use super::{S3Client, S3Options, Sse};
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::store::{Conditional, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};

/// The Content-Type of a key, from its extension.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".zst") {
        "application/zstd"
    } else if key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

fn to_utc(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn to_metadata(m: Option<HashMap<String, String>>) -> Metadata {
    m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// A bucket and prefix in S3 or an S3-compatible server.
#[derive(Debug, Clone)]
pub struct S3Store {
    s3: S3Client,
    bucket: String,
    /// Empty, or the prefix with a trailing `/`.
    prefix: String,
    sse: Option<(ServerSideEncryption, Option<String>)>,
}

impl S3Store {
    /// Connects to `bucket` with keys under `prefix` (without leading or trailing `/`;
    /// may be empty). No request is made: [`Store::check`] says whether it is reachable.
    ///
    /// # Errors
    /// `Config` for bad settings (an endpoint that is not a URL, a KMS key id without
    /// `sse = "aws:kms"`).
    pub async fn connect(bucket: &str, prefix: &str, options: &S3Options) -> Result<Self> {
        let sse = match (options.sse, &options.sse_kms_key_id) {
            (None, None) => None,
            (Some(Sse::Aes256), None) => Some((ServerSideEncryption::Aes256, None)),
            (Some(Sse::Kms), key) => Some((ServerSideEncryption::AwsKms, key.clone())),
            (_, Some(_)) => {
                return Err(Error::config(
                    "s3.sse_kms_key_id is set but s3.sse is not \"aws:kms\"; set s3.sse = \
                     \"aws:kms\" or remove the key id",
                ));
            }
        };
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            s3: S3Client::new(options).await?,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            sse,
        })
    }

    /// The client underneath (for tests and tools that need raw S3 access).
    #[must_use]
    pub fn s3(&self) -> &S3Client {
        &self.s3
    }

    /// The bucket.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    fn strip<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.prefix.as_str())
    }

    fn err<E>(&self, op: Op, key: &str, err: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = if key.is_empty() && op == Op::CheckBucket {
            format!("bucket s3://{}", self.bucket)
        } else if op == Op::List {
            format!("{}*", self.url_of(key))
        } else {
            self.url_of(key)
        };
        self.s3.error(op, &what, err)
    }

    async fn object_from(&self, key: &str, out: GetObjectOutput) -> Result<Object> {
        let info = ObjectInfo {
            key: key.to_string(),
            size: out
                .content_length
                .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            etag: out.e_tag.clone().unwrap_or_default(),
            last_modified: to_utc(out.last_modified.as_ref()),
            metadata: to_metadata(out.metadata),
        };
        let bytes = out.body.collect().await.map_err(|e| {
            Error::unavailable(format!(
                "cannot read {} from {}: the connection failed while receiving it ({})",
                self.url_of(key),
                self.s3.target(),
                root_cause(&e)
            ))
            .with_next(Hint::steps(
                "retry, and check the whole setup if it persists",
                [Step::Doctor],
            ))
        })?;
        let bytes = bytes.into_bytes();
        let info = ObjectInfo {
            size: bytes.len() as u64,
            ..info
        };
        Ok(Object { info, bytes })
    }
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        let base = format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'));
        let base = base.trim_end_matches('/').to_string();
        match self.s3.endpoint() {
            Some(e) => format!("{base} at {e}"),
            None => base,
        }
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let out = self
            .s3
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.err(Op::Get, key, &e))?;
        self.object_from(key, out).await
    }

    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
        let result = self
            .s3
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_none_match(etag)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Conditional::Modified(self.object_from(key, out).await?)),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                Ok(Conditional::NotModified)
            }
            Err(e) => Err(self.err(Op::Get, key, &e)),
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        let out = self
            .s3
            .client()
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.err(Op::Head, key, &e))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: out
                .content_length
                .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            etag: out.e_tag.unwrap_or_default(),
            last_modified: to_utc(out.last_modified.as_ref()),
            metadata: to_metadata(out.metadata),
        })
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<String> {
        let mut req = self
            .s3
            .client()
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type(key))
            // The server checks the body against this and refuses a truncated upload
            // (a connection cut mid-body) instead of storing what arrived.
            .checksum_sha256(aws_smithy_types::base64::encode(
                <sha2::Sha256 as sha2::Digest>::digest(&bytes),
            ))
            .body(ByteStream::from(bytes));
        for (k, v) in metadata {
            req = req.metadata(k, v);
        }
        if let Some((sse, kms_key)) = &self.sse {
            req = req.server_side_encryption(sse.clone());
            if let Some(id) = kms_key {
                req = req.ssekms_key_id(id);
            }
        }
        let op = match &mode {
            PutMode::Create => {
                req = req.if_none_match("*");
                Op::PutCreate
            }
            PutMode::Update { etag } => {
                req = req.if_match(etag);
                Op::PutUpdate
            }
            PutMode::Overwrite => Op::PutOverwrite,
        };
        let out = req.send().await.map_err(|e| self.err(op, key, &e))?;
        out.e_tag.ok_or_else(|| {
            Error::internal(format!(
                "{} answered PutObject of {} without an ETag",
                self.s3.target(),
                self.url_of(key)
            ))
        })
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let want = limit.saturating_sub(objects.len()).clamp(1, 1000);
            let mut req = self
                .s3
                .client()
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.full_key(prefix))
                .max_keys(i32::try_from(want).unwrap_or(1000));
            req = match (&token, start_after) {
                (Some(t), _) => req.continuation_token(t),
                (None, Some(after)) => req.start_after(self.full_key(after)),
                (None, None) => req,
            };
            let out = req
                .send()
                .await
                .map_err(|e| self.err(Op::List, prefix, &e))?;
            let truncated = out.is_truncated.unwrap_or(false);
            for o in out.contents.unwrap_or_default() {
                let Some(key) = o.key.as_deref().and_then(|k| self.strip(k)) else {
                    continue;
                };
                if objects.len() == limit {
                    return Ok(ListPage {
                        objects,
                        truncated: true,
                    });
                }
                objects.push(ObjectInfo {
                    key: key.to_string(),
                    size: o.size.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                    etag: o.e_tag.unwrap_or_default(),
                    last_modified: to_utc(o.last_modified.as_ref()),
                    metadata: Metadata::new(),
                });
            }
            token = out.next_continuation_token;
            if !truncated || token.is_none() {
                return Ok(ListPage {
                    objects,
                    truncated: false,
                });
            }
            if objects.len() >= limit {
                return Ok(ListPage {
                    objects,
                    truncated: true,
                });
            }
        }
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let full = self.full_key(prefix);
        let mut dirs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .s3
                .client()
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .delimiter("/");
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let out = req
                .send()
                .await
                .map_err(|e| self.err(Op::List, prefix, &e))?;
            for p in out.common_prefixes.unwrap_or_default() {
                if let Some(name) = p
                    .prefix
                    .as_deref()
                    .and_then(|p| p.strip_prefix(full.as_str()))
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|p| !p.is_empty())
                {
                    dirs.push(name.to_string());
                }
            }
            token = out.next_continuation_token;
            if !out.is_truncated.unwrap_or(false) || token.is_none() {
                break;
            }
        }
        dirs.sort_unstable();
        dirs.dedup();
        Ok(dirs)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self
            .s3
            .client()
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.err(Op::Delete, key, &e) {
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn check(&self) -> Result<()> {
        self.s3
            .client()
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.err(Op::CheckBucket, "", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type("a/b/0000-v1.json.zst"), "application/zstd");
        assert_eq!(content_type("a/release.json"), "application/json");
        assert_eq!(content_type("a/pins/x"), "application/octet-stream");
    }

    #[tokio::test]
    async fn describe_names_bucket_prefix_and_custom_endpoint() {
        let options = S3Options {
            endpoint: Some("http://u:p@127.0.0.1:4566".into()),
            region: Some("eu-west-1".into()),
            force_path_style: true,
            ..S3Options::default()
        };
        let store = S3Store::connect("bk", "a/b/", &options).await.unwrap();
        assert_eq!(store.describe(), "s3://bk/a/b at http://127.0.0.1:4566");
        let store = S3Store::connect("bk", "", &options).await.unwrap();
        assert_eq!(store.describe(), "s3://bk at http://127.0.0.1:4566");
        assert_eq!(store.s3().region(), "eu-west-1");
        let bad = S3Options {
            endpoint: Some("127.0.0.1:4566".into()),
            ..S3Options::default()
        };
        let e = S3Store::connect("bk", "", &bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let kms_without_sse = S3Options {
            sse_kms_key_id: Some("k".into()),
            region: Some("us-east-1".into()),
            ..S3Options::default()
        };
        let e = S3Store::connect("bk", "", &kms_without_sse)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
}

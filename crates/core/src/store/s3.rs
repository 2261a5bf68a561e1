//! The S3 store (aws-sdk-s3), for AWS S3 and S3-compatible servers (MinIO, LocalStack).
//!
//! Create-only writes are `PutObject` with `If-None-Match: *` and compare-and-swap is
//! `PutObject` with `If-Match`, so S3 itself decides which of several racing writers
//! wins; [`classify`] turns S3's answers into the library's error kinds in one place.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Conditional, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};
use crate::error::{Error, ErrorKind, Result};

/// S3 client settings; credentials always come from the standard AWS chain.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint URL for S3-compatible servers (MinIO, LocalStack); `AWS_ENDPOINT_URL`
    /// is used when this is not set.
    pub endpoint: Option<String>,
    /// Region; the AWS chain (`AWS_REGION`, profile) when not set, else `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint` (MinIO,
    /// LocalStack).
    #[serde(default)]
    pub force_path_style: bool,
    /// Server-side encryption for new objects.
    pub sse: Option<Sse>,
    /// KMS key id when `sse = "aws:kms"`.
    pub sse_kms_key_id: Option<String>,
}

/// Server-side encryption modes passed through to S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Sse {
    /// SSE-S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[serde(rename = "aws:kms")]
    Kms,
}

/// How long to wait for a TCP connection before the attempt counts as failed. With the
/// SDK's three attempts an unreachable endpoint fails in seconds, not minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The region used when neither the config nor the AWS chain names one.
const DEFAULT_REGION: &str = "us-east-1";

/// An S3 client and what messages need to say about where it points.
///
/// Built in one place for the store and for S3 live targets.
#[derive(Debug, Clone)]
pub struct S3Client {
    client: Client,
    endpoint: Option<String>,
    region: String,
}

impl S3Client {
    /// Builds a client from the standard AWS chain (credentials, region, profile) and
    /// `options`: the endpoint (else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, which
    /// the SDK reads), the region (else the chain, else `us-east-1`) and path style.
    ///
    /// Credentials are resolved lazily, on the first request.
    ///
    /// # Errors
    /// `Config` for an endpoint that is not an http(s) URL.
    pub async fn new(options: &S3Options) -> Result<Self> {
        if let Some(e) = &options.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Error::config(format!(
                "S3 endpoint {:?} is not an http:// or https:// URL; set s3.endpoint (or \
                 --s3-endpoint, AWS_ENDPOINT_URL) to e.g. http://127.0.0.1:4566",
                redact_url(e)
            )));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        loader = match &options.region {
            Some(r) => loader.region(Region::new(r.clone())),
            None => loader.region(RegionProviderChain::default_provider().or_else(DEFAULT_REGION)),
        };
        if let Some(e) = &options.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        let sdk = loader.load().await;
        let endpoint = options
            .endpoint
            .clone()
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL"))
            .or_else(|| sdk.endpoint_url().map(str::to_string))
            .map(|e| redact_url(&e));
        let region = sdk
            .region()
            .map_or_else(|| DEFAULT_REGION.to_string(), ToString::to_string);
        let mut builder =
            aws_sdk_s3::config::Builder::from(&sdk).force_path_style(options.force_path_style);
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            // Plain HTTP needs no root certificates: skip loading the system's (tens of
            // milliseconds per process on Debian, which reads a bundle and a directory).
            builder = builder.http_client(plain_http_client()?);
        }
        if endpoint.is_some() {
            // S3-compatible servers differ in their support of the newer flexible
            // checksums (aws-chunked bodies with trailers); send them only when the
            // operation requires one. Snapshots carry their own sha256 anyway.
            builder =
                builder.request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            endpoint,
            region,
        })
    }

    /// The SDK client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The custom endpoint, when not AWS (without any credentials in the URL).
    #[must_use]
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The region requests are signed for.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where requests go, for messages: the custom endpoint, or AWS S3 and the region.
    #[must_use]
    pub fn target(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 ({})", self.region),
        }
    }

    /// Turns a failed request into a library error whose message says what failed, on
    /// which object, and what to do.
    pub(crate) fn error<E>(&self, op: Op, what: &str, err: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        tracing::debug!(target: "jetvault::s3", op = ?op, what, error = ?err, "S3 request failed");
        let doing = op.doing();
        let service = match err {
            SdkError::ServiceError(e) => {
                Some((e.raw().status().as_u16(), e.err().code(), e.err().message()))
            }
            SdkError::ResponseError(e) if e.raw().status().as_u16() >= 300 => {
                Some((e.raw().status().as_u16(), None, None))
            }
            _ => None,
        };
        let Some((status, code, detail)) = service else {
            return self.transport_error(doing, what, err);
        };
        let kind = classify(op, status, code);
        // S3 names the bucket's region on a redirect.
        let bucket_region = err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        let answer = match (code, detail) {
            (Some(c), Some(d)) if !d.is_empty() => format!("HTTP {status} {c}: {d}"),
            (Some(c), _) => format!("HTTP {status} {c}"),
            _ => format!("HTTP {status}"),
        };
        let at = self.target();
        let message = match kind {
            ErrorKind::NotFound => format!("{what} not found ({answer} from {at})"),
            ErrorKind::AlreadyExists => {
                format!("{what} already exists: another writer created it first ({answer})")
            }
            ErrorKind::PreconditionFailed => format!(
                "{what} changed since it was read: another writer updated it first ({answer}); \
                 read it again and retry"
            ),
            ErrorKind::Config
                if code == Some("NoSuchBucket") || op == Op::CheckBucket && status == 404 =>
            {
                format!(
                    "cannot {doing} {what}: the bucket does not exist at {at} ({answer}); \
                     create it (e.g. `aws s3 mb s3://BUCKET`) or fix the store URL, then run \
                     `jetvault doctor`"
                )
            }
            ErrorKind::Config if is_redirect(status, code) => format!(
                "cannot {doing} {what}: the bucket is not in region {} ({answer}); set the \
                 bucket's region{} in s3.region or AWS_REGION",
                self.region,
                bucket_region.map_or_else(String::new, |r| format!(" ({r})"))
            ),
            ErrorKind::Config => format!(
                "cannot {doing} {what}: access denied by {at} ({answer}); check the AWS \
                 credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the \
                 instance role) and that their policy allows s3:GetObject, s3:PutObject, \
                 s3:ListBucket and s3:DeleteObject on the bucket (S3 also answers 403 for \
                 a missing object when s3:ListBucket is not allowed); run `jetvault doctor`"
            ),
            ErrorKind::TooLarge => format!("cannot {doing} {what}: too large for S3 ({answer})"),
            ErrorKind::Unavailable => format!(
                "cannot {doing} {what}: {at} answered {answer}; retry later, and run \
                 `jetvault doctor` if it persists"
            ),
            _ => format!("cannot {doing} {what}: unexpected answer from {at}: {answer}"),
        };
        Error::new(kind, message)
    }

    fn transport_error<E, R>(&self, doing: &str, what: &str, err: &SdkError<E, R>) -> Error
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let at = self.target();
        if let Some(cause) = credentials_cause(err) {
            return Error::config(format!(
                "cannot {doing} {what} at {at}: no usable AWS credentials ({cause}); set \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an \
                 instance or pod role is available; then run `jetvault doctor`"
            ));
        }
        let cause = root_cause(err);
        let hint = if self.endpoint.is_some() {
            "check the endpoint (s3.endpoint, --s3-endpoint or AWS_ENDPOINT_URL) and that the \
             server is running"
        } else {
            "check the network and the region (s3.region or AWS_REGION)"
        };
        Error::unavailable(format!(
            "cannot reach S3 at {at} to {doing} {what}: {cause}; {hint}, then run `jetvault doctor`"
        ))
    }
}

/// An HTTP client for `http://` endpoints (LocalStack, MinIO on a private network): TLS
/// stays available but with an empty trust store, so no certificate is loaded.
fn plain_http_client() -> Result<aws_sdk_s3::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_native_roots(false))
        .build()
        .map_err(|e| Error::internal(format!("cannot set up the S3 HTTP client: {e}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// The response type of the SDK's errors.
pub(crate) type HttpResponse = aws_sdk_s3::config::http::HttpResponse;

/// What a request was doing, for classifying its failure and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// GetObject (also conditional).
    Get,
    /// HeadObject.
    Head,
    /// PutObject with `If-None-Match: *`.
    PutCreate,
    /// PutObject with `If-Match`.
    PutUpdate,
    /// Unconditional PutObject.
    PutOverwrite,
    /// ListObjectsV2.
    List,
    /// DeleteObject.
    Delete,
    /// HeadBucket.
    CheckBucket,
}

impl Op {
    fn doing(self) -> &'static str {
        match self {
            Self::Get => "read",
            Self::Head => "inspect",
            Self::PutCreate | Self::PutUpdate | Self::PutOverwrite => "write",
            Self::List => "list",
            Self::Delete => "delete",
            Self::CheckBucket => "check",
        }
    }
}

fn is_redirect(status: u16, code: Option<&str>) -> bool {
    matches!(status, 301 | 307)
        || matches!(
            code,
            Some(
                "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException"
            )
        )
}

/// Maps S3's answer to a failed request onto an error kind.
///
/// A lost conditional write is `412 PreconditionFailed`, or `409
/// ConditionalRequestConflict` when AWS sees the writes overlap in flight: both mean
/// that another writer won, so both are `AlreadyExists` for a create and
/// `PreconditionFailed` for an update. An update of a missing key is `404`: `NotFound`.
/// A missing bucket, refused access and a wrong region are `Config`: retrying does not
/// help, fixing the settings does.
#[must_use]
pub(crate) fn classify(op: Op, status: u16, code: Option<&str>) -> ErrorKind {
    let code = code.unwrap_or("");
    let lost_race = matches!(status, 409 | 412)
        || matches!(code, "PreconditionFailed" | "ConditionalRequestConflict");
    match op {
        _ if code == "NoSuchBucket" => ErrorKind::Config,
        Op::CheckBucket if status == 404 => ErrorKind::Config,
        Op::PutCreate if lost_race => ErrorKind::AlreadyExists,
        Op::PutUpdate if lost_race => ErrorKind::PreconditionFailed,
        _ if status == 404 || matches!(code, "NoSuchKey" | "NotFound") => ErrorKind::NotFound,
        _ if is_redirect(status, Some(code)) => ErrorKind::Config,
        _ if matches!(status, 401 | 403)
            || matches!(
                code,
                "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "AllAccessDisabled"
            ) =>
        {
            ErrorKind::Config
        }
        _ if code == "EntityTooLarge" => ErrorKind::TooLarge,
        // 409 outside a conditional write: OperationAborted, a conflicting operation
        // in progress; retrying helps.
        _ if status >= 500
            || matches!(status, 408 | 409 | 429)
            || matches!(
                code,
                "SlowDown"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "OperationAborted"
            ) =>
        {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

/// The innermost error of a chain: the reason a person can act on ("Connection refused").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

/// The deepest error of a chain that is about credentials, if any: the SDK reports a
/// failed credential chain as a dispatch failure, which is not a network problem.
fn credentials_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut found = None;
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("credential") {
            found = Some(text);
        }
        cur = e.source();
    }
    found
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Removes `user:password@` from a URL so that messages never show secrets.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => rest[at + 1..].to_string(),
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

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
                "cannot read {} from {}: the connection failed while receiving it ({}); \
                 retry, and run `jetvault doctor` if it persists",
                self.url_of(key),
                self.s3.target(),
                root_cause(&e)
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
            .client
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
            .client
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
            .client
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
            .client
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
                .client
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
                .client
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
            .client
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
            .client
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
    fn lost_races_are_conflicts_whether_412_or_409() {
        for (status, code) in [
            (412, Some("PreconditionFailed")),
            (409, Some("ConditionalRequestConflict")),
            (412, None),
            (409, None),
        ] {
            assert_eq!(
                classify(Op::PutCreate, status, code),
                ErrorKind::AlreadyExists,
                "create {status} {code:?}"
            );
            assert_eq!(
                classify(Op::PutUpdate, status, code),
                ErrorKind::PreconditionFailed,
                "update {status} {code:?}"
            );
        }
    }

    #[test]
    fn update_of_a_missing_key_is_not_found() {
        assert_eq!(
            classify(Op::PutUpdate, 404, Some("NoSuchKey")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Op::Get, 404, Some("NoSuchKey")),
            ErrorKind::NotFound
        );
        assert_eq!(classify(Op::Head, 404, None), ErrorKind::NotFound);
    }

    #[test]
    fn setup_problems_are_config_errors() {
        assert_eq!(
            classify(Op::Get, 404, Some("NoSuchBucket")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 404, Some("NoSuchBucket")),
            ErrorKind::Config
        );
        assert_eq!(classify(Op::CheckBucket, 404, None), ErrorKind::Config);
        assert_eq!(
            classify(Op::Get, 403, Some("AccessDenied")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 403, Some("SignatureDoesNotMatch")),
            ErrorKind::Config
        );
        assert_eq!(
            classify(Op::PutCreate, 403, Some("InvalidAccessKeyId")),
            ErrorKind::Config
        );
        assert_eq!(classify(Op::CheckBucket, 301, None), ErrorKind::Config);
        assert_eq!(
            classify(Op::List, 400, Some("AuthorizationHeaderMalformed")),
            ErrorKind::Config
        );
    }

    #[test]
    fn server_trouble_is_unavailable() {
        assert_eq!(
            classify(Op::Get, 503, Some("SlowDown")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::List, 500, Some("InternalError")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::PutOverwrite, 409, Some("OperationAborted")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::PutOverwrite, 400, Some("RequestTimeout")),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(Op::Get, 400, Some("InvalidArgument")),
            ErrorKind::Internal
        );
        assert_eq!(
            classify(Op::PutOverwrite, 400, Some("EntityTooLarge")),
            ErrorKind::TooLarge
        );
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("http://user:secret@minio:9000/x"),
            "http://minio:9000/x"
        );
        assert_eq!(redact_url("http://127.0.0.1:4566"), "http://127.0.0.1:4566");
        assert_eq!(redact_url("https://h/p@q"), "https://h/p@q");
    }

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

//! Building the SDK client from [`S3Options`] and the standard AWS chain.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation};

use super::S3Options;
use crate::error::{Error, Hint, Result, Step};
use crate::store::redact_url;

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
    pub(super) endpoint: Option<String>,
    pub(super) region: String,
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
                "S3 endpoint {:?} is not an http:// or https:// URL",
                redact_url(e)
            ))
            .with_next(Hint::steps(
                "set the endpoint to e.g. http://127.0.0.1:4566",
                [Step::S3Endpoint],
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

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

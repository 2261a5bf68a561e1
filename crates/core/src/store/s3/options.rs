//! The S3 settings shared by the store and S3 live targets, and the one place they are
//! combined.

use serde::{Deserialize, Serialize};

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

impl S3Options {
    /// Settings for an S3-compatible server at `endpoint`, addressed path-style (MinIO,
    /// LocalStack).
    #[must_use]
    pub fn for_endpoint(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            force_path_style: true,
            ..Self::default()
        }
    }

    /// The settings of an S3 live target: its own endpoint, region and path style where
    /// it sets them, else these (the store's); never the store's encryption.
    #[must_use]
    pub fn for_live_target(
        &self,
        endpoint: Option<&str>,
        region: Option<&str>,
        force_path_style: bool,
    ) -> Self {
        Self {
            endpoint: endpoint
                .map(str::to_string)
                .or_else(|| self.endpoint.clone()),
            region: region.map(str::to_string).or_else(|| self.region.clone()),
            force_path_style: force_path_style || self.force_path_style,
            sse: None,
            sse_kms_key_id: None,
        }
    }
}

//! The verify route: reads an environment's stored snapshots back and checks them
//! ([`Vault::verify_env`], the code `jetvault verify` runs), answering with the report.
//!
//! It needs the role `operate` although it changes no snapshot: it reads every chosen
//! snapshot in full from the store, so its cost grows with the history (each one a
//! store GET, billed on S3), which is more than a `read` token (handed to every client
//! that polls a release) should be able to set off; and what a verify finds is an
//! operator's business (it names gaps for `repair`).
//!
//! [`Vault::verify_env`]: jetvault_core::vault::Vault::verify_env

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::CanOperate;
use super::error::{ApiError, ErrorBody, OperateErrors};
use super::extract::{Env, EnvPath, OptionalJson};
use super::{AppState, json_response};
use jetvault_core::error::Error;
use jetvault_core::snapshot::no_snapshots;
use jetvault_core::verify::{VerifyOptions, VerifyReport};

/// The largest sample.
const MAX_SAMPLE: usize = 1_000_000;

/// How much to check.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// Check only this many randomly chosen snapshots, plus the latest (default: all).
    /// Read as a number, so that `20.0` is 20 as JSON Schema has it.
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    pub sample: Option<f64>,
}

/// The sample size, if one: a whole number from 1 to [`MAX_SAMPLE`].
fn sample(body: &VerifyBody) -> Result<Option<usize>, ApiError> {
    let Some(n) = body.sample else {
        return Ok(None);
    };
    if n.fract() == 0.0 && (1.0..=MAX_SAMPLE as f64).contains(&n) {
        // Whole and in range: exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok(Some(n as usize));
    }
    Err(Error::invalid(format!(
        "sample={n}: use a whole number from 1 to {MAX_SAMPLE}"
    ))
    .into())
}

/// Checks an environment's snapshots: each one decompresses, its size and sha256 match
/// its metadata, the metadata parses, its key names its version, the content is JSON;
/// every version a release or a pin names has a snapshot. Also names the gaps an
/// interrupted write left (which `jetvault repair` closes). Changes nothing. Bad
/// snapshots and gaps are in the 200 report, not an error status.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/verify", tag = "snapshots", operation_id = "verify_env",
    params(EnvPath),
    request_body(content = Option<VerifyBody>, description = "Optional: `{\"sample\": 20}` checks 20 random snapshots and the latest"),
    responses(
        OperateErrors,
        (status = 200, description = "The report: `checked` of `total`, `ok`, `bad` (with \
            the reason for each), `gaps`", body = VerifyReport),
        (status = 400, description = "Invalid id or body (`sample` out of 1..1000000)", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn verify(
    CanOperate(who): CanOperate,
    Env(env): Env,
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<VerifyBody>,
) -> Result<Response, ApiError> {
    let opts = VerifyOptions {
        sample: sample(&body)?,
        ..VerifyOptions::default()
    };
    let report: VerifyReport = state.vault.verify_env(&env, &opts).await?;
    if report.total == 0 {
        return Err(no_snapshots(&env).into());
    }
    tracing::info!(%env, checked = report.checked, bad = report.bad.len(),
        gaps = report.gaps.len(), token = who.name(), "verified through the API");
    if let Some(notice) = report.problem_notice(&who.actor()) {
        state.vault.notify(notice);
    }
    Ok(json_response(StatusCode::OK, &report))
}

//! Operations routes: liveness, readiness (store reachable, cached briefly), Prometheus
//! metrics and the generated OpenAPI document.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::CanRead;
use super::error::{ApiError, ErrorBody, ReadErrors};
use super::{AppState, json_response};
use jetvault_core::error::{Error, Result};
use jetvault_core::store::Store;

/// How long a readiness answer is reused, so that frequent probes do not each cost a
/// store request.
pub const READY_TTL: Duration = Duration::from_secs(5);

/// How long a readiness check waits for the store: a store that stalls (a held lock, a
/// stuck connection) is not ready.
pub const READY_WAIT: Duration = Duration::from_secs(2);

/// A status answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "get_healthz",
    responses((status = 200, description = "The process is up", body = Status)))]
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &Status { status: "ok" })
}

/// The store is reachable and answers within 2 s (checked at most every 5 s; later
/// probes reuse the answer).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "get_readyz",
    responses(
        (status = 200, description = "The store is reachable", body = Status),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.ready.check(state.vault.store().as_ref()).await?;
    Ok(json_response(StatusCode::OK, &Status { status: "ready" }))
}

/// Prometheus metrics (OpenMetrics text). Needs a `read` token unless reads are public.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "get_metrics",
    responses(ReadErrors, (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)),
    security(("bearer" = [])))]
pub async fn metrics(_: CanRead, State(state): State<AppState>) -> Response {
    let mut res = state.metrics.encode().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// This API's OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "get_openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    let mut res = state.openapi.clone().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A store check whose answer is reused for [`READY_TTL`]; concurrent probes wait for
/// one check.
#[derive(Debug, Default)]
pub struct ReadyCache {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
    checking: tokio::sync::Mutex<()>,
}

impl ReadyCache {
    fn cached(&self) -> Option<Result<(), String>> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < READY_TTL)
            .map(|(_, r)| r.clone())
    }

    /// Checks the store, or reuses a recent answer.
    ///
    /// # Errors
    /// `Unavailable` with the store's error.
    pub async fn check(&self, store: &dyn Store) -> Result<()> {
        let answer = match self.cached() {
            Some(r) => r,
            None => {
                let _one = self.checking.lock().await;
                match self.cached() {
                    Some(r) => r,
                    None => {
                        let r = match tokio::time::timeout(READY_WAIT, store.check()).await {
                            Ok(r) => r.map_err(|e| e.report()),
                            Err(_) => Err(format!(
                                "{} did not answer within {} ms",
                                store.describe(),
                                READY_WAIT.as_millis()
                            )),
                        };
                        *self
                            .last
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some((Instant::now(), r.clone()));
                        r
                    }
                }
            }
        };
        answer.map_err(|e| Error::unavailable(format!("the store is not reachable: {e}")))
    }
}

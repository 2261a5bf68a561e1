//! The one mapping from a library error kind to an HTTP status and a JSON body
//! `{"error": {"code": "...", "message": "...", "hint": "..."}}`. Every error response goes
//! through it; a library [`Hint`] is rendered here in the API's terms.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use jetvault_core::error::{Error, ErrorKind, Hint, Step};

/// An error as a response: a status, a stable machine code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    hint: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code and a message saying what failed and what to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable; one of [`ErrorCode`].
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// What failed.
    pub message: String,
    /// What to do next, in this API's terms (fields, headers, routes), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Every code an error body can carry: the library's kinds plus the HTTP layer's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a bad id, version, query parameter, header or body.
    InvalidInput,
    /// 401: no valid bearer token.
    Unauthorized,
    /// 403: the token's role is too low for the route.
    Forbidden,
    /// 404: no such snapshot, release, environment or route.
    NotFound,
    /// 405: the route does not take that method.
    MethodNotAllowed,
    /// 409: the label (or another unique name) is taken.
    AlreadyExists,
    /// 409: the live configuration changed while it was being restored.
    LiveConflict,
    /// 412: `If-Match` is stale, or another writer won the race.
    PreconditionFailed,
    /// 413: the body or the configuration is over the configured size.
    TooLarge,
    /// 500: stored data failed a check.
    Corrupt,
    /// 500: the server's own config is wrong.
    Config,
    /// 500: a bug or an unexpected failure.
    Internal,
    /// 502: the live target refused the request.
    LiveRefused,
    /// 502: the live target has no configuration.
    LiveMissing,
    /// 503: the store (or the live target) is unreachable; retrying may help.
    Unavailable,
    /// 503: the store failed the precondition self-test; writes are unsafe.
    UnsafeStore,
}

/// The error answers every route that needs a `read` token can give, besides its own.
#[derive(Debug, IntoResponses)]
pub enum ReadErrors {
    /// 401.
    #[response(
        status = 401,
        description = "`unauthorized`: no valid bearer token (tokens are configured and \
            reads are not public); with `WWW-Authenticate: Bearer`"
    )]
    Unauthorized(ErrorBody),
    /// 500.
    #[response(
        status = 500,
        description = "`corrupt` (stored data failed a check), `config` or `internal`"
    )]
    Internal(ErrorBody),
    /// 503.
    #[response(
        status = 503,
        description = "`unavailable`: the store is unreachable (retrying may help)"
    )]
    Unavailable(ErrorBody),
}

/// The error answers every route that needs an `operate` token can give, besides its own.
#[derive(Debug, IntoResponses)]
pub enum OperateErrors {
    /// 401.
    #[response(
        status = 401,
        description = "`unauthorized`: no valid bearer token, or writes are disabled (no \
            token configured); with `WWW-Authenticate: Bearer`"
    )]
    Unauthorized(ErrorBody),
    /// 403.
    #[response(
        status = 403,
        description = "`forbidden`: the token has the role `read`; this route needs `operate`"
    )]
    Forbidden(ErrorBody),
    /// 413.
    #[response(
        status = 413,
        description = "`too_large`: the request body is over `server.max_body_size`"
    )]
    TooLarge(ErrorBody),
    /// 500.
    #[response(
        status = 500,
        description = "`corrupt` (stored data failed a check), `config` or `internal`"
    )]
    Internal(ErrorBody),
    /// 503.
    #[response(
        status = 503,
        description = "`unavailable` (the store is unreachable; retrying may help) or \
            `unsafe_store`"
    )]
    Unavailable(ErrorBody),
}

/// The status for a library error kind.
#[must_use]
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable | ErrorKind::UnsafeStore => StatusCode::SERVICE_UNAVAILABLE,
        // The live target's own answer, not the client's request: a bad gateway, with
        // the codes `live_refused` and `live_missing` telling which.
        ErrorKind::LiveRefused | ErrorKind::LiveMissing => StatusCode::BAD_GATEWAY,
        ErrorKind::LiveConflict => StatusCode::CONFLICT,
        // Config (the server's own config is wrong), Corrupt (stored data failed a
        // check), Internal and kinds added later are the server's problem.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error with an explicit status and code, for what is not a library error
    /// (authentication, unknown routes).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// 401: no valid bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid token without the role the route needs.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// The status sent.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = status_for(e.kind());
        if status.is_server_error() {
            tracing::warn!(code = e.kind().code(), error = %e.report(), "request failed");
        }
        Self {
            status,
            code: e.kind().code(),
            message: e.report(),
            hint: e.hint().map(render_hint),
        }
    }
}

/// A library hint in this API's terms: "advice (step, step)".
#[must_use]
pub fn render_hint(hint: &Hint) -> String {
    hint.render(render_step)
}

fn render_step(step: &Step) -> String {
    let env_path = |e: &jetvault_core::error::EnvName| format!("/v1/apps/{}/envs/{}", e.app, e.env);
    match step {
        Step::Confirm => "\"allow_missing_live\": true".into(),
        Step::OverrideUnreadableLive => "\"allow_unreadable_live\": true".into(),
        Step::SkipSchemaCheck => "\"skip_schema_check\": true".into(),
        Step::IfMatch(etag) => format!("If-Match: {etag}"),
        Step::NoIfMatch => "no If-Match header".into(),
        Step::Label => "a \"label\" field".into(),
        Step::RetentionRule => "a retention rule in the environment's config".into(),
        Step::S3Endpoint => "s3.endpoint in the config, or AWS_ENDPOINT_URL".into(),
        Step::ConfigFile => "the service's config file".into(),
        Step::FromFile => "the configuration as the request body".into(),
        Step::LaterTime => "a later \"at\"".into(),
        Step::ListSnapshots(e) => format!("GET {}/snapshots", env_path(e)),
        Step::ListReleases(e) => format!("GET {}/releases", env_path(e)),
        Step::Restore(e, v) => format!(
            "POST {}/restore with {{\"version\": {v}, \"allow_missing_live\": true}}",
            env_path(e)
        ),
        Step::Backup(e) => format!("POST {}/backup", env_path(e)),
        Step::Release(e, Some(v)) => {
            format!("POST {}/release with {{\"version\": {v}}}", env_path(e))
        }
        Step::Release(e, None) => format!("POST {}/release with a \"version\"", env_path(e)),
        Step::Rollback(e) => format!("POST {}/rollback", env_path(e)),
        Step::Pin(e, v) => format!("POST {}/pins/{v}", env_path(e)),
        Step::Verify => "verifying the store (an operator's task; no route)".into(),
        Step::Doctor => "GET /readyz".into(),
        Step::SaveLiveTo => "a store the service can write".into(),
        Step::CreateMissing => "\"create_if_missing\": true".into(),
        other => format!("{other:?}"),
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Error::invalid(format!("invalid path: {}", e.body_text())).into()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Error::invalid(format!("invalid query string: {}", e.body_text())).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                hint: self.hint,
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (self.status, bytes).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"jetvault\""),
            );
        }
        res
    }
}

/// The fallback for unknown paths: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see /openapi.json for the API",
    )
}

/// The fallback for a known path with another method: a JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json for the API",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_status() {
        for (kind, status) in [
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 409),
            (ErrorKind::PreconditionFailed, 412),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::LiveRefused, 502),
            (ErrorKind::LiveMissing, 502),
            (ErrorKind::LiveConflict, 409),
            (ErrorKind::Corrupt, 500),
            (ErrorKind::Config, 500),
            (ErrorKind::Internal, 500),
        ] {
            assert_eq!(status_for(kind).as_u16(), status, "{kind}");
        }
    }

    #[test]
    fn every_code_is_in_the_schema() {
        let codes: Vec<String> = [
            ErrorCode::InvalidInput,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::AlreadyExists,
            ErrorCode::LiveConflict,
            ErrorCode::PreconditionFailed,
            ErrorCode::TooLarge,
            ErrorCode::Corrupt,
            ErrorCode::Config,
            ErrorCode::Internal,
            ErrorCode::LiveRefused,
            ErrorCode::LiveMissing,
            ErrorCode::Unavailable,
            ErrorCode::UnsafeStore,
        ]
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::Config,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::PreconditionFailed,
            ErrorKind::TooLarge,
            ErrorKind::Unavailable,
            ErrorKind::Corrupt,
            ErrorKind::LiveRefused,
            ErrorKind::LiveMissing,
            ErrorKind::LiveConflict,
            ErrorKind::UnsafeStore,
            ErrorKind::Internal,
        ] {
            assert!(codes.iter().any(|c| c == kind.code()), "{}", kind.code());
        }
        for http in [
            "unauthorized",
            "forbidden",
            "not_found",
            "method_not_allowed",
        ] {
            assert!(codes.iter().any(|c| c == http), "{http}");
        }
    }

    #[tokio::test]
    async fn body_has_code_and_message() {
        let res = ApiError::from(Error::already_exists("label 1.0 is taken")).into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "already_exists");
        assert_eq!(v["error"]["message"], "label 1.0 is taken");
        let res = ApiError::unauthorized("no token").into_response();
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"jetvault\""
        );
    }
}

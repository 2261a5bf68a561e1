//! The web console: one HTML page, four scripts (the pages; the diffs; the actions; the
//! restore-all runs) and a style sheet, compiled into the binary (no CDN, no build step,
//! nothing fetched at run time).
//! The scripts are a client of the JSON API under `/v1`, with the caller's bearer token
//! kept in `sessionStorage` and sent as `Authorization`, never in a cookie.
//!
//! Every answer carries a Content-Security-Policy that allows no inline script and no
//! other origin, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const ACTIONS_JS: &str = include_str!("assets/actions.js");
const DIFF_JS: &str = include_str!("assets/diff.js");
const RUNS_JS: &str = include_str!("assets/runs.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The policy: this origin only, no inline script or style, no framing, no forms posted
/// elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{file}`: the script and the style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => with_headers("text/javascript; charset=utf-8", APP_JS),
        "actions.js" => with_headers("text/javascript; charset=utf-8", ACTIONS_JS),
        "diff.js" => with_headers("text/javascript; charset=utf-8", DIFF_JS),
        "runs.js" => with_headers("text/javascript; charset=utf-8", RUNS_JS),
        "app.css" => with_headers("text/css; charset=utf-8", APP_CSS),
        _ => super::error::ApiError::from(jetvault_core::Error::not_found(format!(
            "the console has no file {file:?}"
        )))
        .into_response(),
    }
}

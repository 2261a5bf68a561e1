//! Request extractors that turn every bad input into a 400 (or 413) through the one
//! error mapping, before any I/O: validated ids, query strings, bodies, conditional and
//! content-negotiation headers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::error::ApiError;
use jetvault_core::Selector;
use jetvault_core::error::Error;
use jetvault_core::id::{AppId, EnvRef};

/// The `{app}` and `{env}` of a route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EnvPath {
    /// App id: 1 to 63 of `a-z 0-9 . _ -`, starting with a letter or digit, no `..`.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub app: String,
    /// Environment id: the same rules as an app id.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub env: String,
}

/// The `{app}` of a route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// App id: 1 to 63 of `a-z 0-9 . _ -`, starting with a letter or digit, no `..`.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub app: String,
}

/// The `{app}`, `{env}` and `{version}` of a route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// App id: 1 to 63 of `a-z 0-9 . _ -`, starting with a letter or digit, no `..`.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub app: String,
    /// Environment id: the same rules as an app id.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub env: String,
    /// A version number from 1 to 9999999999 (`12` or `v12`), `latest`, or `release`
    /// (also `current_release`: the released snapshot).
    #[param(pattern = r"^(v?0*[1-9][0-9]{0,9}|latest|release|current_release)$")]
    pub version: String,
}

/// Extractor: a validated environment from the path.
#[derive(Debug)]
pub struct Env(pub EnvRef);

impl<S: Send + Sync> FromRequestParts<S> for Env {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(p) = Path::<EnvPath>::from_request_parts(parts, state).await?;
        Ok(Self(EnvRef::parse(&p.app, &p.env)?))
    }
}

/// Extractor: a validated app from the path.
#[derive(Debug)]
pub struct App(pub AppId);

impl<S: Send + Sync> FromRequestParts<S> for App {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(p) = Path::<AppPath>::from_request_parts(parts, state).await?;
        Ok(Self(AppId::new(p.app)?))
    }
}

/// Extractor: a validated environment and version selector from the path.
#[derive(Debug)]
pub struct EnvVersion(pub EnvRef, pub Selector);

impl<S: Send + Sync> FromRequestParts<S> for EnvVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(p) = Path::<VersionPath>::from_request_parts(parts, state).await?;
        let env = EnvRef::parse(&p.app, &p.env)?;
        Ok(Self(env, p.version.parse()?))
    }
}

/// Extractor: a query string, 400 when malformed.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(q))
    }
}

/// Extractor: the raw request body, limited to `server.max_body_size` (413 beyond).
#[derive(Debug)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(body_error)
    }
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::too_large(
            "the request body is larger than server.max_body_size; raise it in the config \
             if this is expected",
        )
        .into()
    } else {
        Error::invalid(format!("cannot read the request body: {}", e.body_text())).into()
    }
}

/// Extractor: an optional JSON body; an empty body gives `T::default()`, malformed JSON
/// (or `null`: the document says the body is left out or is an object) a 400 naming the
/// problem.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(Self)
    }
}

/// A `before` query parameter: a version or release number, 1 to 9999999999.
///
/// # Errors
/// `InvalidInput` (a 400) outside that range.
pub fn before(before: Option<u64>) -> Result<Option<u64>, ApiError> {
    match before {
        Some(b) if !(1..=super::doc::MAX_VERSION).contains(&b) => {
            Err(Error::invalid(format!("before={b}: use 1 to {}", super::doc::MAX_VERSION)).into())
        }
        b => Ok(b),
    }
}

/// Extractor: a required JSON body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("the request body is empty; send a JSON object").into());
        }
        parse_json(&bytes).map(Self)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = if e.is_data() {
            // Well-formed JSON with a field that is wrong (a bad "at", an unknown key).
            format!("the request body has an invalid field: {e}")
        } else {
            format!("the request body is not valid JSON: {e}")
        };
        Error::invalid(message).into()
    })
}

/// The conditional and negotiation headers of a GET.
#[derive(Debug, Default)]
pub struct Negotiation {
    /// `If-None-Match`, as sent.
    pub if_none_match: Option<HeaderValue>,
    /// Whether `Accept-Encoding` accepts `zstd`.
    pub zstd: bool,
}

impl Negotiation {
    /// Reads the headers.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_none_match: headers.get(header::IF_NONE_MATCH).cloned(),
            zstd: headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .any(|v| accepts_zstd(v.as_bytes())),
        }
    }

    /// Whether `If-None-Match` matches `etag` (a quoted entity tag; weak comparison).
    #[must_use]
    pub fn not_modified(&self, etag: &[u8]) -> bool {
        self.if_none_match
            .as_ref()
            .is_some_and(|v| match (v.to_str(), std::str::from_utf8(etag)) {
                (Ok(list), Ok(etag)) => jetvault_core::etag::none_match(list, etag),
                _ => false,
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Negotiation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// Whether an `Accept-Encoding` value lists `zstd` with a non-zero quality.
#[must_use]
pub fn accepts_zstd(value: &[u8]) -> bool {
    value.split(|b| *b == b',').any(|item| {
        let mut parts = item.split(|b| *b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(b"zstd") {
            return false;
        }
        !parts.any(|p| {
            let p = p.trim_ascii();
            p.strip_prefix(b"q=")
                .or_else(|| p.strip_prefix(b"Q="))
                .is_some_and(|q| {
                    std::str::from_utf8(q)
                        .ok()
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_forms() {
        assert!(accepts_zstd(b"zstd"));
        assert!(accepts_zstd(b"gzip, deflate, br, zstd"));
        assert!(accepts_zstd(b"ZSTD;q=0.5"));
        assert!(!accepts_zstd(b"zstd;q=0"));
        assert!(!accepts_zstd(b"gzip, br"));
        assert!(!accepts_zstd(b"zstdx"));
    }
}

//! Bearer tokens with roles: `read` may read, `operate` may also back up, release, roll
//! back, promote and restore.
//!
//! Tokens are compared as sha256 digests with a constant-time comparison, against every
//! configured token (the time taken depends on the number of tokens, not on how much of
//! a token is right). Logs and audit events name the token (`name` in the config),
//! never its value.
//!
//! With no token configured the service is either open on loopback only, or serves public
//! reads and refuses writes; see [`Auth::from_config`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use jetvault_core::config::{Role, ServerConfig};
use jetvault_core::error::{Error, Result};
use jetvault_core::events::Actor;

/// How requests are authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens are configured: every request needs one, except reads when
    /// `public_reads` is on.
    Tokens,
    /// No token configured and listening on loopback only: everything is allowed.
    OpenLoopback,
    /// No token configured, not on loopback, `public_reads` on: reads are public and
    /// writes are refused.
    ReadOnlyPublic,
}

struct TokenEntry {
    name: Arc<str>,
    role: Role,
    digest: [u8; 32],
}

/// The configured tokens and the rules for using them.
pub struct Auth {
    mode: AuthMode,
    public_reads: bool,
    tokens: Vec<TokenEntry>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("mode", &self.mode)
            .field("public_reads", &self.public_reads)
            .field(
                "tokens",
                &self
                    .tokens
                    .iter()
                    .map(|t| (&*t.name, t.role))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Who made a request, once authorised.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name; `None` for public reads and the open loopback mode.
    pub token: Option<Arc<str>>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

impl Principal {
    /// The actor recorded in snapshots and audit events.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            who: Some(
                self.token
                    .as_deref()
                    .map_or_else(|| "anonymous".to_string(), |n| format!("token:{n}")),
            ),
            via: "api".into(),
            from: self.peer.map(|p| p.ip().to_string()),
        }
    }

    /// The token name for logs.
    #[must_use]
    pub fn name(&self) -> &str {
        self.token.as_deref().unwrap_or("anonymous")
    }
}

impl Auth {
    /// Reads the tokens (values or files) and decides the mode.
    ///
    /// With no token configured: on a loopback address everything is allowed (a local,
    /// single-user setup; a warning is logged at start); elsewhere, reads are served
    /// only if `public_reads` is on and writes are always refused; with neither, the
    /// service refuses to start.
    ///
    /// # Errors
    /// `Config` for an unreadable token file, two tokens with the same name or value, an
    /// empty token, or no token on a non-loopback address without `public_reads`.
    pub fn from_config(server: &ServerConfig, loopback: bool) -> Result<Self> {
        let mut tokens: Vec<TokenEntry> = Vec::new();
        for t in &server.tokens {
            let secret = t.resolve()?;
            if secret.expose().trim().is_empty() {
                return Err(Error::config(format!(
                    "server.tokens {:?}: the token is empty",
                    t.name
                )));
            }
            let digest: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
            if tokens.iter().any(|e| e.name.as_ref() == t.name) {
                return Err(Error::config(format!(
                    "server.tokens: two tokens are named {:?}; names must be unique (logs \
                     and audit events use them)",
                    t.name
                )));
            }
            if let Some(other) = tokens.iter().find(|e| e.digest == digest) {
                return Err(Error::config(format!(
                    "server.tokens {:?} and {:?} have the same value; give each its own",
                    other.name, t.name
                )));
            }
            tokens.push(TokenEntry {
                name: Arc::from(t.name.as_str()),
                role: t.role,
                digest,
            });
        }
        let mode = if !tokens.is_empty() {
            AuthMode::Tokens
        } else if loopback {
            AuthMode::OpenLoopback
        } else if server.public_reads {
            AuthMode::ReadOnlyPublic
        } else {
            return Err(Error::config(
                "no server.tokens are configured and the listen address is not loopback: \
                 anyone who can reach it could back up, release and restore. Add \
                 [[server.tokens]] (role \"read\" or \"operate\"), set \
                 server.public_reads = true for a read-only service, or listen on \
                 127.0.0.1",
            ));
        };
        Ok(Self {
            mode,
            public_reads: server.public_reads,
            tokens,
        })
    }

    /// The mode decided at start.
    #[must_use]
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Checks a request's bearer token for `need`.
    ///
    /// # Errors
    /// 401 without a valid token, 403 with a token whose role is too low.
    pub fn authorize(&self, headers: &HeaderMap, need: Role) -> Result<Option<Arc<str>>, ApiError> {
        match self.mode {
            AuthMode::OpenLoopback => return Ok(None),
            AuthMode::ReadOnlyPublic if need == Role::Read => return Ok(None),
            AuthMode::ReadOnlyPublic => {
                return Err(ApiError::unauthorized(
                    "writes are disabled: this service has no [[server.tokens]] configured; \
                     add a token with role \"operate\" to the config",
                ));
            }
            AuthMode::Tokens if need == Role::Read && self.public_reads => return Ok(None),
            AuthMode::Tokens => {}
        }
        let token = bearer(headers.get(AUTHORIZATION)).ok_or_else(|| {
            ApiError::unauthorized(
                "missing bearer token: send `Authorization: Bearer <token>` with a token \
                 from server.tokens",
            )
        })?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.tokens {
            // Every entry is compared, whatever matched before.
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or_else(|| {
            ApiError::unauthorized("invalid bearer token: it matches no token in server.tokens")
        })?;
        if entry.role < need {
            return Err(ApiError::forbidden(format!(
                "token {:?} has the role \"read\"; this route needs a token with the role \
                 \"operate\"",
                &*entry.name
            )));
        }
        Ok(Some(entry.name.clone()))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(value: Option<&HeaderValue>) -> Option<&[u8]> {
    let v = value?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Extractor: the request may read (role `read` or `operate`, or public reads).
#[derive(Debug, Clone)]
pub struct CanRead(pub Principal);

/// Extractor: the request may change things (role `operate`).
#[derive(Debug, Clone)]
pub struct CanOperate(pub Principal);

impl FromRequestParts<AppState> for CanRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = state.auth.load().authorize(&parts.headers, Role::Read)?;
        Ok(Self(Principal {
            token,
            peer: peer(parts),
        }))
    }
}

impl FromRequestParts<AppState> for CanOperate {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = state.auth.load().authorize(&parts.headers, Role::Operate)?;
        Ok(Self(Principal {
            token,
            peer: peer(parts),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use jetvault_core::config::{Secret, TokenConfig};

    fn server(tokens: &[(&str, Role, &str)], public_reads: bool) -> ServerConfig {
        ServerConfig {
            public_reads,
            tokens: tokens
                .iter()
                .map(|(name, role, value)| TokenConfig {
                    name: (*name).into(),
                    role: *role,
                    value: Some(Secret::new(*value)),
                    value_file: None,
                })
                .collect(),
            ..ServerConfig::default()
        }
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(AUTHORIZATION, HeaderValue::from_str(t).unwrap());
        }
        h
    }

    #[test]
    fn roles_and_tokens() {
        let auth = Auth::from_config(
            &server(
                &[
                    ("ci", Role::Operate, "op-token"),
                    ("dash", Role::Read, "rd-token"),
                ],
                false,
            ),
            false,
        )
        .unwrap();
        assert_eq!(auth.mode(), AuthMode::Tokens);
        let ok = |h: Option<&str>, need| auth.authorize(&headers(h), need);
        assert_eq!(
            ok(Some("Bearer op-token"), Role::Operate)
                .unwrap()
                .as_deref(),
            Some("ci")
        );
        assert_eq!(
            ok(Some("bearer rd-token"), Role::Read).unwrap().as_deref(),
            Some("dash")
        );
        assert_eq!(
            ok(Some("Bearer rd-token"), Role::Operate)
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
        for bad in [
            None,
            Some("Bearer nope"),
            Some("Basic op-token"),
            Some("Bearer "),
        ] {
            assert_eq!(
                ok(bad, Role::Read).unwrap_err().status(),
                StatusCode::UNAUTHORIZED,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn no_tokens_is_open_only_on_loopback() {
        let auth = Auth::from_config(&server(&[], false), true).unwrap();
        assert_eq!(auth.mode(), AuthMode::OpenLoopback);
        assert!(auth.authorize(&headers(None), Role::Operate).is_ok());
        let e = Auth::from_config(&server(&[], false), false).unwrap_err();
        assert!(e.to_string().contains("server.tokens"), "{e}");
        let auth = Auth::from_config(&server(&[], true), false).unwrap();
        assert!(auth.authorize(&headers(None), Role::Read).is_ok());
        assert_eq!(
            auth.authorize(&headers(None), Role::Operate)
                .unwrap_err()
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn duplicate_tokens_are_refused_and_debug_hides_values() {
        assert!(
            Auth::from_config(
                &server(&[("a", Role::Read, "x"), ("b", Role::Operate, "x")], false),
                false
            )
            .is_err()
        );
        let auth = Auth::from_config(&server(&[("a", Role::Read, "sekrit")], true), false).unwrap();
        assert!(!format!("{auth:?}").contains("sekrit"));
        assert!(auth.authorize(&headers(None), Role::Read).is_ok());
    }
}

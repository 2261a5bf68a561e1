//! Sign-in at an OAuth2 token endpoint (RFC 6749): the password grant (Node-RED's
//! `adminAuth`) and the client credentials grant.
//!
//! The token is cached for the whole process, keyed by the token URL, the client, the
//! grant, the user and the scope, because live targets are built anew for each backup or
//! restore (and for each scheduler tick of `serve`). It is renewed when 80% of its
//! lifetime (`expires_in`) has passed, and once after a 401 ([`OAuth::forget`]).
//!
//! This is a form POST with reqwest rather than the `oauth2` crate: `oauth2` 5 bundles
//! reqwest 0.12 (this workspace uses 0.13; the adapter crate `oauth2-reqwest` is an
//! alpha), and on an error answer it keeps the body but drops the HTTP status, which is
//! what tells a refused password (fix the config) from a 503 of a proxy (retry later).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;

use super::answer;
use crate::config::{ClientAuth, OAuthConfig, OAuthGrant, Secret};
use crate::error::{Error, Result};
use crate::id::EnvRef;
use crate::store::redact_url;

/// The share of a token's lifetime after which it is renewed.
const RENEW_AT_PERCENT: u32 = 80;

/// The largest token answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// What identifies a token: the same endpoint, client, grant, user and scope get the
/// same token, whichever environment asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    token_url: String,
    client_id: String,
    grant: OAuthGrant,
    username: Option<String>,
    scope: Option<String>,
}

/// A token and when to renew it (`None`: the endpoint gave no lifetime; renewed after
/// a 401 only).
struct Cached {
    token: Secret,
    renew_at: Option<Instant>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The process's tokens. A slot's async lock is held while signing in, so that
/// concurrent requests wait for one sign-in rather than each doing their own.
static TOKENS: LazyLock<Mutex<HashMap<Key, Slot>>> = LazyLock::new(Mutex::default);

/// One live target's sign-in.
pub(super) struct OAuth {
    env: EnvRef,
    config: OAuthConfig,
    token_url: reqwest::Url,
    timeout: Duration,
    slot: Slot,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("grant", &self.config.grant)
            .field("token_url", &redact_url(self.token_url.as_str()))
            .field("client_id", &self.config.client_id)
            .field("username", &self.config.username)
            .finish_non_exhaustive()
    }
}

/// A token endpoint's answer (RFC 6749 section 5.1).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: Option<String>,
    /// Seconds; some endpoints send it as a string.
    expires_in: Option<serde_json::Value>,
}

impl OAuth {
    /// The sign-in of `env`'s live target.
    ///
    /// # Errors
    /// `Config` for a bad token URL.
    pub(super) fn new(env: &EnvRef, config: &OAuthConfig, timeout: Duration) -> Result<Self> {
        let token_url = reqwest::Url::parse(&config.token_url).map_err(|e| {
            Error::config(format!(
                "apps.{}.envs.{}.live.oauth.token_url: invalid URL {:?}: {e}",
                env.app,
                env.env,
                redact_url(&config.token_url)
            ))
        })?;
        let key = Key {
            token_url: token_url.to_string(),
            client_id: config.client_id.clone(),
            grant: config.grant,
            username: config.username.clone(),
            scope: config.scope.clone(),
        };
        let slot = TOKENS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        Ok(Self {
            env: env.clone(),
            config: config.clone(),
            token_url,
            timeout,
            slot,
        })
    }

    /// The token endpoint, for messages (without userinfo and query).
    pub(super) fn describe(&self) -> String {
        redact_url(self.token_url.as_str())
    }

    /// A valid token: the cached one, or a new one if there is none or it is due for
    /// renewal. `scrub` takes the target's secrets out of messages.
    ///
    /// # Errors
    /// `Config` if the endpoint refuses the credentials or a secret can't be read;
    /// `Unavailable` if it can't be reached or answers 5xx.
    pub(super) async fn token(
        &self,
        client: &reqwest::Client,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Secret> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref()
            && c.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(c.token.clone());
        }
        let fresh = self.sign_in(client, scrub).await?;
        let token = fresh.token.clone();
        *slot = Some(fresh);
        Ok(token)
    }

    /// Forgets `rejected`, which the live target answered with a 401, so that the next
    /// [`OAuth::token`] signs in again; unless another request has renewed it already.
    pub(super) async fn forget(&self, rejected: &Secret) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| c.token == *rejected) {
            *slot = None;
        }
    }

    /// The sign-in's secrets readable now, for scrubbing messages: the password, the
    /// client secret, the cached token, the token URL's userinfo and query.
    pub(super) fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = [self.config.password(), self.config.client_secret()]
            .into_iter()
            .flatten()
            .filter_map(|s| s.read("").ok())
            .map(|s| s.expose().to_string())
            .collect();
        if let Ok(slot) = self.slot.try_lock()
            && let Some(c) = slot.as_ref()
        {
            out.push(c.token.expose().to_string());
        }
        out.push(self.token_url.username().to_string());
        out.extend(self.token_url.password().map(str::to_string));
        out.extend(self.token_url.query().map(str::to_string));
        out.extend(self.token_url.query_pairs().map(|(_, v)| v.into_owned()));
        out
    }

    /// What is signed in as, for messages: "user admin, client node-red-admin".
    fn who(&self) -> String {
        match &self.config.username {
            Some(user) => format!("user {user:?}, client {:?}", self.config.client_id),
            None => format!("client {:?}", self.config.client_id),
        }
    }

    /// The advice when the endpoint refuses: where the credentials come from.
    fn check_what(&self) -> String {
        let source = |s: Option<crate::config::SecretSource>| match s {
            Some(crate::config::SecretSource { env: Some(var), .. }) => format!("${var}"),
            Some(crate::config::SecretSource {
                file: Some(path), ..
            }) => path.display().to_string(),
            _ => "(none)".into(),
        };
        match self.config.grant {
            OAuthGrant::Password => format!(
                "check the username and the password (read from {}) of oauth, and token_url",
                source(self.config.password())
            ),
            OAuthGrant::ClientCredentials => format!(
                "check client_id and the client secret (read from {}) of oauth, and token_url",
                source(self.config.client_secret())
            ),
        }
    }

    async fn sign_in(
        &self,
        client: &reqwest::Client,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Cached> {
        let env = &self.env;
        let url = self.describe();
        let client_secret = match self.config.client_secret() {
            Some(s) => Some(s.read(&format!(
                "the OAuth client secret of the live target of {env}"
            ))?),
            None => None,
        };
        let password = match self.config.grant {
            OAuthGrant::Password => Some(
                self.config
                    .password()
                    .ok_or_else(|| Error::config(format!("{env}: oauth has no password")))?
                    .read(&format!("the OAuth password of the live target of {env}"))?,
            ),
            OAuthGrant::ClientCredentials => None,
        };
        // Built before any await: the serializer is not `Send`.
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            match &password {
                Some(password) => {
                    form.append_pair("grant_type", "password");
                    form.append_pair("username", self.config.username.as_deref().unwrap_or(""));
                    form.append_pair("password", password.expose());
                }
                None => {
                    form.append_pair("grant_type", "client_credentials");
                }
            }
            if let Some(scope) = &self.config.scope {
                form.append_pair("scope", scope);
            }
            if self.config.client_auth == ClientAuth::Body {
                form.append_pair("client_id", &self.config.client_id);
                if let Some(s) = &client_secret {
                    form.append_pair("client_secret", s.expose());
                }
            }
            form.finish()
        };
        let mut req = client
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if self.config.client_auth == ClientAuth::Basic {
            // RFC 6749 2.3.1: both form-encoded before they are joined.
            let enc = |s: &str| -> String {
                url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
            };
            let secret = client_secret.as_ref().map(|s| enc(s.expose()));
            req = req.basic_auth(enc(&self.config.client_id), secret);
        }
        tracing::debug!(%env, token_url = %url, grant = %self.config.grant, "signing in");
        let doing = format!("signing in at {url} ({})", self.who());
        let resp = req.body(form).send().await.map_err(|e| {
            let cause = scrub(&e.to_string());
            answer::send_error(&doing, &self.token_url, &e, &cause, self.timeout)
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            Error::unavailable(format!(
                "{doing}: reading the answer failed: {}",
                scrub(&e.to_string())
            ))
        })?;
        let body = &body[..body.len().min(MAX_ANSWER)];
        if !status.is_success() {
            let quoted = answer::snippet(body, scrub);
            let msg = format!("{doing}: it answered {status}: {quoted}");
            return Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Error::unavailable(format!("{msg}; retry later"))
                } else {
                    Error::config(format!("{msg}; {}", self.check_what()))
                },
            );
        }
        let parsed: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
            Error::config(format!(
                "{doing}: the answer is not a token ({e}): {}; is token_url the token endpoint?",
                answer::snippet(body, scrub)
            ))
        })?;
        if parsed.access_token.trim().is_empty() {
            return Err(Error::config(format!(
                "{doing}: the answer's access_token is empty"
            )));
        }
        if let Some(t) = &parsed.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::config(format!(
                "{doing}: the token type is {t:?}; only bearer tokens are supported"
            )));
        }
        let lifetime = parsed.expires_in.as_ref().and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        });
        let renew_at = lifetime.map(|secs| {
            let secs = secs.clamp(0.0, 10.0 * 365.0 * 86_400.0);
            Instant::now() + Duration::from_secs_f64(secs) * RENEW_AT_PERCENT / 100
        });
        tracing::info!(%env, token_url = %url, expires_in = ?lifetime, "signed in");
        Ok(Cached {
            token: Secret::new(parsed.access_token),
            renew_at,
        })
    }
}

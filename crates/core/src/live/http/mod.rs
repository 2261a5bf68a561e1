//! A live configuration behind an HTTP endpoint: GET exports it, PUT (or the configured
//! method) imports it. Headers come from the config; credentials (`auth`: a bearer
//! token, secret headers, an OAuth2 sign-in) are read at each request so a rotated
//! secret is picked up. What each answer means is in `answer`; the sign-in is `oauth`.

mod answer;
mod auth;
mod client;
mod create;
mod oauth;
pub mod retry;

pub use create::{ConfigChange, Created};

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use self::auth::Credentials;
use super::LiveTarget;
use crate::config::{LiveConfig, SecretSource, WriteMethod};
use crate::error::{Error, Result};
use crate::id::EnvRef;
use crate::store::redact_url;

/// Words that mark a plain header's value as a secret.
const SENSITIVE_NAMES: [&str; 6] = ["token", "key", "secret", "auth", "password", "cookie"];

/// Secret values shorter than this are not scrubbed from messages.
const MIN_SECRET_LEN: usize = 4;

/// How long a request may take when the config sets no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP endpoint holding one environment's configuration.
#[derive(Debug)]
pub struct HttpTarget {
    client: reqwest::Client,
    read_url: reqwest::Url,
    write_url: reqwest::Url,
    write_method: Method,
    headers: HeaderMap,
    credentials: Credentials,
    timeout: Duration,
    /// How to create the object when the platform has deleted it.
    creator: Option<create::Creator>,
    /// The environment and its config, for the target at a new object's URL.
    origin: create::Origin,
}

/// The HTTP method of a configured write method.
fn method_of(m: WriteMethod) -> Method {
    match m {
        WriteMethod::Put => Method::PUT,
        WriteMethod::Post => Method::POST,
        WriteMethod::Patch => Method::PATCH,
    }
}

fn parse_url(env: &EnvRef, url: &str) -> Result<reqwest::Url> {
    reqwest::Url::parse(url).map_err(|e| {
        Error::config(format!(
            "apps.{}.envs.{}.live: invalid URL {:?}: {e}",
            env.app,
            env.env,
            redact_url(url)
        ))
    })
}

impl HttpTarget {
    /// Builds the target from its config.
    ///
    /// # Errors
    /// `Config` for a bad URL, header or method, or credentials configured twice.
    pub fn from_config(env: &EnvRef, config: &LiveConfig) -> Result<Self> {
        let LiveConfig::Http {
            url,
            write_url,
            write_method,
            headers,
            bearer_token_env,
            bearer_token_file,
            secret_headers,
            oauth,
            timeout,
            create,
        } = config
        else {
            return Err(Error::internal(
                "HttpTarget::from_config needs an http live config",
            ));
        };
        let read_url = parse_url(env, url)?;
        let write_url = match write_url {
            Some(u) => parse_url(env, u)?,
            None => read_url.clone(),
        };
        let write_method = method_of(write_method.unwrap_or_default());
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let credentials = Credentials::new(
            env,
            SecretSource::from_pair(bearer_token_env.as_ref(), bearer_token_file.as_ref()),
            secret_headers,
            oauth.as_deref(),
            timeout,
        )?;
        let client = client::shared(timeout)?;
        Ok(Self {
            client,
            read_url,
            write_url,
            write_method,
            headers: header_map(env, headers)?,
            credentials,
            timeout,
            creator: create
                .as_deref()
                .map(|c| create::Creator::new(env, c))
                .transpose()?,
            origin: create::Origin {
                env: env.clone(),
                config: config.clone(),
            },
        })
    }

    /// `text` without this target's secrets: its URLs' userinfo and query (the URLs
    /// are shown redacted), its credentials (bearer token, secret headers, the sign-in's
    /// password, client secret and token) and its sensitive headers' values. For
    /// messages built from what the endpoint or the HTTP client said.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        let mut secrets: Vec<String> = Vec::new();
        let create_url = self.creator.as_ref().map(create::Creator::url);
        for url in [&self.read_url, &self.write_url]
            .into_iter()
            .chain(create_url)
        {
            text = text.replace(url.as_str(), &redact_url(url.as_str()));
            secrets.push(url.username().to_string());
            secrets.extend(url.password().map(str::to_string));
            secrets.extend(url.query().map(str::to_string));
            secrets.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
        }
        secrets.extend(self.credentials.secrets());
        secrets.extend(
            self.headers
                .values()
                .filter(|v| v.is_sensitive())
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string),
        );
        // Longest first, so that a secret holding another goes whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in &secrets {
            // Shorter values (`?page=2`) are not secrets worth mangling a message for.
            if s.len() >= MIN_SECRET_LEN {
                text = text.replace(s.as_str(), "<redacted>");
            }
        }
        text
    }

    /// Sends one request with the credentials read now; the OAuth token it carried.
    async fn send_once(
        &self,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Bytes>,
    ) -> Result<(reqwest::Response, Option<crate::config::Secret>)> {
        let scrub = |t: &str| self.scrub(t);
        let signed = self
            .credentials
            .sign(&self.client, &scrub)
            .await
            .map_err(|e| {
                e.context(format!("{method} {}", redact_url(url.as_str())))
                    .with_hint(answer::nothing_done(method))
            })?;
        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .headers(self.headers.clone())
            .headers(signed.headers);
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = req.send().await.map_err(|e| {
            let cause = self.scrub(&e.to_string());
            answer::send_error(method.as_str(), url, &e, &cause, self.timeout)
        })?;
        Ok((resp, signed.token))
    }

    /// Sends a request, waiting and sending it again when the platform answers 429, or
    /// 503 with `Retry-After` ([`retry::backoff`]); the last answer is what
    /// [`HttpTarget::send_signed`] makes of it.
    async fn send(
        &self,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Bytes>,
    ) -> Result<reqwest::Response> {
        let mut attempt = 0;
        loop {
            let resp = self.send_signed(method, url, body).await?;
            let status = resp.status();
            let Some(wait) = retry::backoff(status, resp.headers(), attempt, chrono::Utc::now())
            else {
                return self.answer(method, url, resp, false).await;
            };
            attempt += 1;
            tracing::info!(url = %redact_url(url.as_str()), %status, attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "the live target asks to slow down; retrying after the wait");
            tokio::time::sleep(wait).await;
        }
    }

    /// Turns a failure status into the error of [`answer::status_error`].
    async fn answer(
        &self,
        method: &Method,
        url: &reqwest::Url,
        resp: reqwest::Response,
        renewed: bool,
    ) -> Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let quoted = answer::snippet(&body, &|t| self.scrub(t));
        Err(answer::status_error(method, url, status, &quoted, renewed))
    }

    /// Sends a request; after a 401 to a request signed with an OAuth token, signs in
    /// afresh and sends it once more. A failure status is the error of
    /// [`answer::status_error`] (a 429 or 503 is returned as it is, for [`Self::send`]).
    async fn send_signed(
        &self,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Bytes>,
    ) -> Result<reqwest::Response> {
        let (mut resp, token) = self.send_once(method, url, body).await?;
        let mut renewed = false;
        if resp.status() == StatusCode::UNAUTHORIZED
            && let (Some(oauth), Some(token)) = (self.credentials.oauth(), token)
        {
            tracing::info!(url = %redact_url(url.as_str()), token_url = %oauth.describe(),
                "the live target refused the token (401); signing in again");
            oauth.forget(&token).await;
            resp = self.send_once(method, url, body).await?.0;
            renewed = true;
        }
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return Ok(resp);
        }
        self.answer(method, url, resp, renewed).await
    }
}

fn header_map(env: &EnvRef, headers: &BTreeMap<String, String>) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        let bad = |what: &str| {
            Error::config(format!(
                "apps.{}.envs.{}.live.headers: invalid header {what} {name:?}",
                env.app, env.env
            ))
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| bad("value for"))?;
        // A secret written inline (better kept in secret_headers) is still kept out of
        // messages when its name says what it is.
        let lower = name.to_ascii_lowercase();
        if n == AUTHORIZATION || SENSITIVE_NAMES.iter().any(|w| lower.contains(w)) {
            v.set_sensitive(true);
        }
        map.insert(n, v);
    }
    Ok(map)
}

#[async_trait]
impl LiveTarget for HttpTarget {
    fn describe(&self) -> String {
        redact_url(self.read_url.as_str())
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let resp = self.send(&Method::GET, &self.read_url, None).await?;
        self.body(resp, limit, &self.read_url, "reading the body of GET")
            .await
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        self.send(&self.write_method, &self.write_url, Some(&bytes))
            .await
            .map(drop)
    }

    fn creates(&self) -> Option<String> {
        self.creator.as_ref().map(create::Creator::describe)
    }

    async fn create(&self, doc: Bytes, body: Bytes) -> Result<Created> {
        self.create_object(doc, body).await
    }
}

impl HttpTarget {
    /// An answer's body, refusing more than `limit` bytes; `doing` names the request in
    /// errors ("reading the body of GET").
    async fn body(
        &self,
        resp: reqwest::Response,
        limit: u64,
        url: &reqwest::Url,
        doing: &str,
    ) -> Result<Bytes> {
        let too_large = || {
            Error::too_large(format!(
                "the answer of {} is larger than the {limit}-byte limit; raise \
                 snapshots.max_size if this is expected",
                redact_url(url.as_str())
            ))
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = BytesMut::with_capacity(
            usize::try_from(resp.content_length().unwrap_or(0).min(limit)).unwrap_or(0),
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let cause = self.scrub(&e.to_string());
                answer::send_error(doing, url, &e, &cause, self.timeout)
            })?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_headers_named_like_secrets_are_sensitive_and_scrubbed() {
        let env = EnvRef::parse("crm", "production").unwrap();
        let headers = BTreeMap::from([
            ("X-Tenant".to_string(), "acme-tenant".to_string()),
            ("X-N8N-API-KEY".to_string(), "inline-key-0042".to_string()),
            ("PRIVATE-TOKEN".to_string(), "inline-token-0043".to_string()),
        ]);
        let map = header_map(&env, &headers).unwrap();
        assert!(!map["x-tenant"].is_sensitive());
        assert!(map["x-n8n-api-key"].is_sensitive());
        assert!(map["private-token"].is_sensitive());
        let config: LiveConfig = toml::from_str(
            "kind = \"http\"\nurl = \"http://h/x\"\n\
             headers = { \"X-N8N-API-KEY\" = \"inline-key-0042\", \"X-Tenant\" = \"acme-tenant\" }\n\
             create = { url = \"http://h/new\", id = \".id\" }",
        )
        .unwrap();
        let t = HttpTarget::from_config(&env, &config).unwrap();
        let text = t.scrub("sent inline-key-0042 for acme-tenant");
        assert_eq!(text, "sent <redacted> for acme-tenant");
        assert!(!format!("{t:?}").contains("inline-key-0042"));
    }
}

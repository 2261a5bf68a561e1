//! A live configuration behind an HTTP endpoint: GET exports it, PUT (or the configured
//! method) imports it. Headers come from the config; a bearer token from an environment
//! variable or a file, read at each request so a rotated token is picked up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use super::LiveTarget;
use crate::config::{LiveConfig, WriteMethod, read_secret_file};
use crate::error::{Error, Hint, Result, Step};
use crate::id::EnvRef;
use crate::store::redact_url;

/// How many characters of an error response's body a message shows.
const SNIPPET_LEN: usize = 200;

/// Secret values shorter than this are not scrubbed from messages.
const MIN_SECRET_LEN: usize = 4;

/// How long a request may take when the config sets no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum TokenSource {
    None,
    Env(String),
    File(PathBuf),
}

/// An HTTP endpoint holding one environment's configuration.
#[derive(Debug)]
pub struct HttpTarget {
    env: EnvRef,
    client: reqwest::Client,
    read_url: reqwest::Url,
    write_url: reqwest::Url,
    write_method: Method,
    headers: HeaderMap,
    token: TokenSource,
    timeout: Duration,
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
    /// `Config` for a bad URL, header or method.
    pub fn from_config(env: &EnvRef, config: &LiveConfig) -> Result<Self> {
        let LiveConfig::Http {
            url,
            write_url,
            write_method,
            headers,
            bearer_token_env,
            bearer_token_file,
            timeout,
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
        let write_method = match write_method.unwrap_or_default() {
            WriteMethod::Put => Method::PUT,
            WriteMethod::Post => Method::POST,
            WriteMethod::Patch => Method::PATCH,
        };
        let token = match (bearer_token_env, bearer_token_file) {
            (Some(var), None) => TokenSource::Env(var.clone()),
            (None, Some(path)) => TokenSource::File(path.clone()),
            (None, None) => TokenSource::None,
            (Some(_), Some(_)) => {
                return Err(Error::config(format!(
                    "apps.{}.envs.{}.live: set at most one of bearer_token_env and bearer_token_file",
                    env.app, env.env
                )));
            }
        };
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("jetvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            env: env.clone(),
            client,
            read_url,
            write_url,
            write_method,
            headers: header_map(env, headers)?,
            token,
            timeout,
        })
    }

    fn token(&self) -> Result<Option<HeaderValue>> {
        let Some(token) = self.token_value()? else {
            return Ok(None);
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::config(format!(
                "the bearer token for the live target of {} has characters not allowed in a header",
                self.env
            ))
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// The bearer token, trimmed, read now from its variable or file.
    fn token_value(&self) -> Result<Option<String>> {
        let token = match &self.token {
            TokenSource::None => return Ok(None),
            TokenSource::Env(var) => std::env::var(var).map_err(|_| {
                Error::config(format!(
                    "the bearer token for the live target of {} is read from ${var}, which is \
                     not set; export it or use bearer_token_file",
                    self.env
                ))
            })?,
            TokenSource::File(path) => read_secret_file(path)?.expose().to_string(),
        };
        Ok(Some(token.trim().to_string()))
    }

    /// `text` without this target's secrets: its URLs' userinfo and query (the URLs
    /// are shown redacted), its bearer token and its sensitive headers' values. For
    /// messages built from what the endpoint or the HTTP client said.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        let mut secrets: Vec<String> = Vec::new();
        for url in [&self.read_url, &self.write_url] {
            text = text.replace(url.as_str(), &redact_url(url.as_str()));
            secrets.push(url.username().to_string());
            secrets.extend(url.password().map(str::to_string));
            secrets.extend(url.query().map(str::to_string));
            secrets.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
        }
        if let Ok(Some(token)) = self.token_value() {
            secrets.push(token);
        }
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

    fn request(&self, method: Method, url: &reqwest::Url) -> Result<reqwest::RequestBuilder> {
        let mut req = self
            .client
            .request(method, url.clone())
            .headers(self.headers.clone());
        if let Some(token) = self.token()? {
            req = req.header(AUTHORIZATION, token);
        }
        Ok(req)
    }

    fn send_error(&self, doing: &str, url: &reqwest::Url, e: &reqwest::Error) -> Error {
        let url = redact_url(url.as_str());
        // reqwest's message names the URL, query and userinfo included.
        let cause = self.scrub(&e.to_string());
        if e.is_timeout() {
            Error::unavailable(format!(
                "{doing} {url} timed out after {:?}; check that the endpoint is up, or raise the \
                 live target's timeout",
                self.timeout
            ))
        } else if e.is_connect() {
            Error::unavailable(format!("cannot connect to {url} ({doing}): {cause}")).with_next(
                Hint::steps(
                    "check that the endpoint is up and reachable (the setup check tries every live \
                 target)",
                    [Step::Doctor],
                ),
            )
        } else {
            Error::unavailable(format!("{doing} {url} failed: {cause}"))
        }
    }

    async fn status_error(
        &self,
        doing: &str,
        url: &reqwest::Url,
        resp: reqwest::Response,
    ) -> Error {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        // Scrubbed before it is cut, so that a secret across the cut goes too.
        let head = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_LEN + 4096)]);
        let snippet: String = self
            .scrub(&head)
            .chars()
            .filter(|c| !c.is_control())
            .take(SNIPPET_LEN)
            .collect();
        let url = redact_url(url.as_str());
        let msg = format!("{doing} {url} answered {status}: {snippet}");
        match status {
            // Only these say live holds nothing; every other failure is "unreadable".
            StatusCode::NOT_FOUND | StatusCode::GONE => Error::not_found(msg),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::config(format!(
                "{msg}; check the live target's bearer token and headers"
            )),
            StatusCode::PAYLOAD_TOO_LARGE => Error::too_large(msg),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Error::unavailable(format!("{msg}; retry later"))
            }
            _ => Error::invalid(msg),
        }
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
        if n == AUTHORIZATION || name.to_ascii_lowercase().contains("token") {
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
        let doing = "GET";
        let resp = self
            .request(Method::GET, &self.read_url)?
            .send()
            .await
            .map_err(|e| self.send_error(doing, &self.read_url, &e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(doing, &self.read_url, resp).await);
        }
        let too_large = || {
            Error::too_large(format!(
                "the live configuration at {} is larger than the {limit}-byte limit; raise \
                 snapshots.max_size if this is expected",
                self.describe()
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
            let chunk = chunk
                .map_err(|e| self.send_error("reading the body of GET", &self.read_url, &e))?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let doing = self.write_method.as_str().to_string();
        let resp = self
            .request(self.write_method.clone(), &self.write_url)?
            .header(CONTENT_TYPE, "application/json")
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.send_error(&doing, &self.write_url, &e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&doing, &self.write_url, resp).await);
        }
        Ok(())
    }
}

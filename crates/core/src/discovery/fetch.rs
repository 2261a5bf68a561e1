//! Reading the discovery source: a GET to an HTTP endpoint with the configured headers
//! and the secrets read now (so a rotated token is picked up), or a file.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::MAX_ANSWER;
use crate::config::DiscoveryConfig;
use crate::error::{Error, Result};

/// How long a request may take when `discovery.timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client of a discovery source.
pub(super) fn client(config: &DiscoveryConfig) -> Result<reqwest::Client> {
    let timeout = config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("jetvault/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))
}

/// The source's answer.
pub(super) async fn fetch(client: &reqwest::Client, config: &DiscoveryConfig) -> Result<Vec<u8>> {
    let source = config.describe();
    if let Some(path) = config.file() {
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            Error::unavailable(format!(
                "cannot read the discovery file {}: {e}",
                path.display()
            ))
            .with_hint("check discovery.url")
        })?;
        return check_size(bytes, &source);
    }
    let headers = headers(config)?;
    let resp = client
        .get(&config.url)
        .headers(headers)
        .send()
        .await
        .map_err(|e| {
            // The URL is named once, redacted; reqwest's own message would quote it whole.
            let cause = causes(&e.without_url());
            Error::unavailable(format!("discovery: GET {source} failed: {cause}"))
                .with_hint("check that the discovery endpoint is up and discovery.url")
        })?;
    let status = resp.status();
    if !status.is_success() {
        let e = Error::unavailable(format!("discovery: GET {source} answered {status}"));
        return Err(match status.as_u16() {
            401 | 403 => e.with_hint(
                "check the discovery token (bearer_token_env, bearer_token_file or \
                 secret_headers)",
            ),
            _ => e.with_hint("check discovery.url and that the endpoint is up"),
        });
    }
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER) {
        return Err(too_large(&source));
    }
    let bytes = resp.bytes().await.map_err(|e| {
        Error::unavailable(format!(
            "discovery: reading the answer of {source} failed: {}",
            e.without_url()
        ))
    })?;
    check_size(bytes.to_vec(), &source)
}

/// An error and its sources, `: ` between them ("error sending request: connection
/// refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = s.source();
    }
    text
}

fn check_size(bytes: Vec<u8>, source: &str) -> Result<Vec<u8>> {
    if bytes.len() as u64 > MAX_ANSWER {
        return Err(too_large(source));
    }
    Ok(bytes)
}

fn too_large(source: &str) -> Error {
    Error::too_large(format!(
        "the discovery answer of {source} is larger than {} MiB",
        MAX_ANSWER / 1024 / 1024
    ))
}

/// The request headers: the plain ones, then the secret ones and the bearer token, read
/// now and marked sensitive (never logged).
fn headers(config: &DiscoveryConfig) -> Result<HeaderMap> {
    let mut out = HeaderMap::new();
    out.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (name, value) in &config.headers {
        let (n, v) = header(name, value, "discovery.headers")?;
        out.insert(n, v);
    }
    for (name, source) in &config.secret_headers {
        let secret = source.read(&format!("the discovery secret header {name}"))?;
        let (n, mut v) = header(name, secret.expose(), "discovery.secret_headers")?;
        v.set_sensitive(true);
        out.insert(n, v);
    }
    if let Some(source) = config.bearer() {
        let token = source.read("the discovery bearer token")?;
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
            Error::config("the discovery bearer token holds characters a header can't carry")
        })?;
        v.set_sensitive(true);
        out.insert(AUTHORIZATION, v);
    }
    Ok(out)
}

fn header(name: &str, value: &str, at: &str) -> Result<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(format!("{at}: invalid header name {name:?}")))?;
    let v = HeaderValue::from_str(value).map_err(|_| {
        Error::config(format!(
            "{at}.{name}: the value holds characters a header can't carry"
        ))
    })?;
    Ok((n, v))
}

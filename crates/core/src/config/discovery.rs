//! `[discovery]`: where the list of environments comes from (an HTTP endpoint or a file
//! returning JSON), the jq filter that turns its answer into `{app, env}` objects, how
//! often it is read again, and the template each discovered environment gets (the same
//! shape as `[apps.A.envs.E]`, with `{app}`, `{env}` and the entry's other fields as
//! placeholders in its `live` table). [`crate::discovery`] reads and applies it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EnvConfig, SecretSource, check_cron};
use crate::error::{Error, Result};
use crate::store::redact_url;

/// How often the list is read again when `refresh` is not set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The shortest `refresh` accepted.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The discovery source and the template of what each discovered environment gets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Where the list is: an `http://` or `https://` URL answering JSON, or a JSON file
    /// (`file:///path` or a path, relative to the config file).
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// An environment variable that holds a bearer token for the endpoint.
    pub bearer_token_env: Option<String>,
    /// A file that holds a bearer token for the endpoint.
    pub bearer_token_file: Option<PathBuf>,
    /// Request headers whose values are secrets: `{ env = "VAR" }` or `{ file = "PATH" }`.
    #[serde(default)]
    pub secret_headers: BTreeMap<String, SecretSource>,
    /// A jq program that turns the answer into one array of objects, each with `app`
    /// and `env` (and optionally other fields, usable as placeholders). Without one, the
    /// answer must already be that array.
    pub filter: Option<String>,
    /// How often the list is read again (`serve`; also on SIGHUP).
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Request timeout.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// What each discovered environment gets: `live` (with `{app}`, `{env}` and other
    /// fields' placeholders), `schedule`, `retention`, `filter`, `diff`, `schema`.
    #[serde(default)]
    pub template: EnvConfig,
}

fn default_refresh() -> Duration {
    DEFAULT_REFRESH
}

impl DiscoveryConfig {
    /// Where the list is, for messages (credentials and query redacted).
    #[must_use]
    pub fn describe(&self) -> String {
        redact_url(&self.url)
    }

    /// The bearer token's source, if one is set.
    #[must_use]
    pub fn bearer(&self) -> Option<SecretSource> {
        SecretSource::from_pair(
            self.bearer_token_env.as_ref(),
            self.bearer_token_file.as_ref(),
        )
    }

    /// The file the list is read from, when `url` is not an HTTP URL.
    #[must_use]
    pub fn file(&self) -> Option<PathBuf> {
        if self.is_http() {
            None
        } else if let Some(p) = self.url.strip_prefix("file://") {
            Some(PathBuf::from(p))
        } else {
            Some(PathBuf::from(&self.url))
        }
    }

    fn is_http(&self) -> bool {
        self.url.starts_with("http://") || self.url.starts_with("https://")
    }

    /// Checks what serde can't: the URL, the refresh, the credentials, the filter and
    /// the template's schedule and filter.
    ///
    /// # Errors
    /// `Config` naming the `discovery` key.
    pub fn validate(&self) -> Result<()> {
        if self.is_http() {
            reqwest::Url::parse(&self.url).map_err(|e| {
                Error::config(format!(
                    "discovery.url: {:?} is not a valid URL: {e}",
                    self.describe()
                ))
            })?;
        } else if self.url.contains("://") && !self.url.starts_with("file://") {
            return Err(Error::config(format!(
                "discovery.url: {:?} is neither an http:// or https:// URL nor a file \
                 (file:///path or a path)",
                self.describe()
            )));
        }
        if self.refresh < MIN_REFRESH {
            return Err(Error::config(format!(
                "discovery.refresh = {}: use at least 1s (5m is the default)",
                humantime::format_duration(self.refresh)
            )));
        }
        if self.bearer_token_env.is_some() && self.bearer_token_file.is_some() {
            return Err(Error::config(
                "discovery: set at most one of bearer_token_env and bearer_token_file",
            ));
        }
        for (name, source) in &self.secret_headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Error::config(format!(
                    "discovery.secret_headers: invalid header name {name:?}"
                )));
            }
            if source.env.is_some() == source.file.is_some() {
                return Err(Error::config(format!(
                    "discovery.secret_headers.{name}: set exactly one of `env` and `file`, \
                     e.g. {{ env = \"API_KEY\" }}"
                )));
            }
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Error::config(format!(
                    "discovery.headers: invalid header name {name:?}"
                )));
            }
        }
        if let Some(code) = &self.filter {
            crate::filter::Program::compile("discovery.filter", code, &[])?;
        }
        if let Some(cron) = &self.template.schedule {
            check_cron(cron)
                .map_err(|e| Error::config(format!("discovery.template.schedule: {e}")))?;
        }
        if let Some(filter) = &self.template.filter {
            crate::filter::EnvFilters::compile("discovery.template.filter", filter)?;
        }
        Ok(())
    }

    /// Makes relative paths (the list file, token and secret files, the template's
    /// files) relative to `dir`, the config file's directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(file) = self.file().filter(|f| f.is_relative()) {
            self.url = dir.join(file).display().to_string();
        }
        self.bearer_token_file.iter_mut().for_each(fix);
        self.secret_headers
            .values_mut()
            .filter_map(|s| s.file.as_mut())
            .for_each(fix);
        self.template.resolve_paths(dir);
    }
}

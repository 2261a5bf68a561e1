//! Environments discovered from the platform: `[discovery]` names an endpoint (or a
//! file) answering JSON, a jq filter turns the answer into `{app, env}` objects, and each
//! gets the template's settings with `{app}`, `{env}` (and the object's other fields)
//! filled into its `live` table.
//!
//! - An entry whose ids break the id rules, or that lacks `app` or `env`, or whose
//!   template names a field it does not have, is reported and skipped; the rest are
//!   kept.
//! - An environment configured in `[apps.A.envs.E]` wins over a discovered one of the
//!   same name.
//! - [`effective`] gives the configuration the rest of jetvault uses: the configured
//!   environments plus the discovered ones.
//! - Nothing about discovery is written to the store: an environment that is no longer
//!   discovered keeps its history, and is listed as `store-only` (it has history but is
//!   neither configured nor discovered now), see [`sources`].

mod expand;
mod fetch;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{Config, DiscoveryConfig, EnvConfig};
use crate::error::Result;
use crate::filter::Program;
use crate::id::EnvRef;

pub use expand::fill_placeholders;

/// The largest answer read from the discovery source.
pub const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// A discovery source, its filter compiled once.
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    filter: Option<Program>,
    client: reqwest::Client,
}

/// What one discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The discovered environments with their expanded settings, configured ones left
    /// out.
    pub envs: BTreeMap<EnvRef, EnvConfig>,
    /// Discovered environments that the config also names (the config wins).
    pub configured: Vec<EnvRef>,
    /// Entries skipped, each with why (a bad id, a missing field, a duplicate).
    pub skipped: Vec<String>,
}

impl Discovery {
    /// Compiles the filter and builds the HTTP client.
    ///
    /// # Errors
    /// `Config` for a filter that does not compile; `Internal` if the client can't be
    /// built.
    pub fn new(config: &DiscoveryConfig) -> Result<Self> {
        let filter = match &config.filter {
            Some(code) => Some(Program::compile("discovery.filter", code, &[])?),
            None => None,
        };
        Ok(Self {
            client: fetch::client(config)?,
            config: config.clone(),
            filter,
        })
    }

    /// The source's settings.
    #[must_use]
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Reads the source and applies the filter and the template; environments
    /// `configured` names are left to the config.
    ///
    /// # Errors
    /// `Unavailable` if the endpoint can't be reached or answers an error, `Config` if a
    /// secret can't be read or the filter fails, `InvalidInput` if the answer is not
    /// JSON or not an array of objects. A bad entry is not an error (see
    /// [`Discovered::skipped`]).
    pub async fn run(&self, configured: &Config) -> Result<Discovered> {
        let answer = fetch::fetch(&self.client, &self.config).await?;
        let discovered = self.apply(&answer, configured)?;
        for why in &discovered.skipped {
            tracing::warn!(source = %self.config.describe(), "discovery skipped an entry: {why}");
        }
        Ok(discovered)
    }

    /// Applies the filter and the template to an answer.
    ///
    /// # Errors
    /// As [`Discovery::run`], without the fetch.
    pub fn apply(&self, answer: &[u8], configured: &Config) -> Result<Discovered> {
        let entries = expand::entries(self.filter.as_ref(), answer, &self.config.describe())?;
        Ok(expand::expand(entries, &self.config.template, configured))
    }
}

/// The configuration the rest of jetvault uses: `config` with the discovered
/// environments added (a configured environment is never replaced).
#[must_use]
pub fn effective(config: &Config, discovered: &Discovered) -> Config {
    let mut out = config.clone();
    for (env, env_config) in &discovered.envs {
        out.apps
            .entry(env.app.clone())
            .or_default()
            .envs
            .entry(env.env.clone())
            .or_insert_with(|| Box::new(env_config.clone()));
    }
    out
}

/// Where an environment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `[apps.A.envs.E]` in the config.
    Config,
    /// The discovery source lists it now.
    Discovery,
    /// It has history in the store but is neither configured nor discovered now (a
    /// discovered environment the platform no longer lists, or one removed from the
    /// config). Its history stays.
    StoreOnly,
}

impl Source {
    /// The name used in output: `config`, `discovery`, `store-only`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Discovery => "discovery",
            Self::StoreOnly => "store-only",
        }
    }
}

/// Every environment with its source, in id order, from `config` (configured, or the
/// effective configuration), `discovered` (listed now) and `stored` (with history).
#[must_use]
pub fn sources(
    config: &Config,
    discovered: &BTreeSet<EnvRef>,
    stored: &[EnvRef],
) -> BTreeMap<EnvRef, Source> {
    let mut out: BTreeMap<EnvRef, Source> = stored
        .iter()
        .map(|e| (e.clone(), Source::StoreOnly))
        .collect();
    for (env, _) in config.envs() {
        out.insert(env, Source::Config);
    }
    // Discovered environments never include configured ones, so `config` may be the
    // effective configuration too.
    for env in discovered {
        out.insert(env.clone(), Source::Discovery);
    }
    out
}

//! `kind = "parts"`: several documents in one environment, each with its own live
//! target (and filter), backed up together as one snapshot and restored together.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Config, FilterConfig, LiveConfig};
use crate::error::{Error, Result};
use crate::id::EnvRef;

/// One named part of a `kind = "parts"` live target: a full live target config (any
/// kind but `parts`), with its own filter, and whether it holds secrets.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PartConfig {
    /// Where this part lives (`kind = "file"`, `"http"` or `"s3"` and its keys).
    #[serde(flatten)]
    pub live: LiveConfig,
    /// jq filters between this part's export format and what is stored under its name.
    pub filter: Option<FilterConfig>,
    /// The part holds secrets (credentials): it is stored only under client-side
    /// encryption (`[encryption] recipients` applying to the environment), unless
    /// `allow_plaintext_secrets` says otherwise.
    #[serde(default)]
    pub secret: bool,
    /// Store this secret part without jetvault's encryption, knowingly.
    #[serde(default)]
    pub allow_plaintext_secrets: bool,
    /// The part may be absent (no file, no object, a 404): a backup then records the
    /// version without it, and a restore of such a version leaves the part's live
    /// target as it is. A required part (the default) that is missing fails the backup.
    #[serde(default)]
    pub optional: bool,
}

impl PartConfig {
    /// Makes its relative paths relative to `dir`.
    pub(super) fn resolve_paths(&mut self, dir: &Path) {
        super::apps::resolve_live_paths(&mut self.live, dir);
        if let Some(f) = &mut self.filter {
            f.resolve_paths(dir);
        }
    }
}

/// The config key of a part's table.
#[must_use]
pub fn part_key(env: &EnvRef, name: &str) -> String {
    format!("apps.{}.envs.{}.live.parts.{name}", env.app, env.env)
}

/// Whether `name` can name a part: letters, digits, `-` and `_` (it is a JSON key and
/// a jq path, `.flows`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Config {
    /// Checks every `kind = "parts"` live target: at least one part, valid names, no
    /// parts inside a part, filters well formed, and each secret part stored encrypted
    /// or explicitly allowed in plain text.
    pub(super) fn validate_parts(&self) -> Result<()> {
        let encryption = crate::crypt::Encryption::from_config(self)?;
        for (env, env_config) in self.envs() {
            let Some(LiveConfig::Parts { parts }) = &env_config.live else {
                continue;
            };
            if parts.is_empty() {
                return Err(Error::config(format!(
                    "apps.{}.envs.{}.live: kind = \"parts\" needs at least one part, e.g. \
                     [apps.{0}.envs.{1}.live.parts.flows]",
                    env.app, env.env
                )));
            }
            for (name, part) in parts {
                let at = part_key(&env, name);
                if !valid_name(name) {
                    return Err(Error::config(format!(
                        "{at}: a part's name may hold only letters, digits, `-` and `_`"
                    )));
                }
                if matches!(part.live, LiveConfig::Parts { .. }) {
                    return Err(Error::config(format!(
                        "{at}: a part can't itself have parts; use kind = \"file\", \
                         \"http\" or \"s3\""
                    )));
                }
                if let Some(f) = &part.filter {
                    f.check(&format!("{at}.filter"))?;
                    if !f.ignore.is_empty() {
                        return Err(Error::config(format!(
                            "{at}.filter: ignore paths of a part are not supported: the \
                             parts are compared as one document, so put them in the \
                             environment's filter with the part's name first, e.g. \
                             [apps.{}.envs.{}.filter] ignore = [\".{name}.rev\"]",
                            env.app, env.env
                        )));
                    }
                }
                if part.secret
                    && !part.allow_plaintext_secrets
                    && encryption.recipients(&env).is_none()
                {
                    return Err(Error::config(format!(
                        "{at}: secret = true, but the snapshots of {env} are not encrypted, \
                         so this part would be stored in plain text: add age recipients \
                         ([encryption] recipients, or [apps.{}.envs.{}.encryption]), or \
                         write allow_plaintext_secrets = true on the part to store it \
                         unencrypted knowingly",
                        env.app, env.env
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The parts of a live config (empty for other kinds), in name order: the order a
/// restore writes them.
#[must_use]
pub fn parts_of(live: &LiveConfig) -> Option<&BTreeMap<String, PartConfig>> {
    match live {
        LiveConfig::Parts { parts } => Some(parts),
        _ => None,
    }
}

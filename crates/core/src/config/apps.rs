//! Apps and their environments: where each live configuration is, when it is backed up
//! and what prune keeps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::live_auth::{OAuthConfig, SecretSource};
use crate::id::EnvId;

/// One app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Environments by id. Boxed: an [`EnvConfig`] is a few hundred bytes and a
    /// B-tree leaf holds room for eleven, so an app with one environment would keep
    /// about 5 KB for it (50 MB at 10,000 apps); a leaf of boxes is 11 pointers.
    #[serde(default)]
    pub envs: BTreeMap<EnvId, Box<EnvConfig>>,
}

/// One environment: where its live configuration is, when to back it up, what to keep.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// The live configuration that backup reads and restore writes.
    pub live: Option<LiveConfig>,
    /// A cron expression (with seconds: `sec min hour day month weekday`) for scheduled
    /// backups.
    pub schedule: Option<String>,
    /// What prune keeps.
    pub retention: Option<RetentionPolicy>,
    /// How `diff` compares versions: the identity keys of array items.
    pub diff: Option<super::DiffConfig>,
    /// jq filters between the platform's export format and what is stored.
    pub filter: Option<super::FilterConfig>,
    /// The JSON Schema the configuration must satisfy.
    pub schema: Option<super::schema::SchemaConfig>,
    /// The age recipients of this environment's new snapshots (replaces `[encryption]`).
    pub encryption: Option<super::EncryptionConfig>,
}

impl EnvConfig {
    /// Makes its relative file paths (live file, token, secret header and OAuth files,
    /// jq and schema files) relative to `dir`, the config file's directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(live) = &mut self.live {
            resolve_live_paths(live, dir);
        }
        if let Some(filter) = &mut self.filter {
            filter.resolve_paths(dir);
        }
        if let Some(schema) = &mut self.schema {
            fix(&mut schema.file);
        }
    }
}

/// Makes a live target's relative file paths (live file, token, secret header and
/// OAuth files, and those of its parts) relative to `dir`.
pub(super) fn resolve_live_paths(live: &mut LiveConfig, dir: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    match live {
        LiveConfig::File { path } => fix(path),
        LiveConfig::Http {
            bearer_token_file,
            secret_headers,
            oauth,
            ..
        } => {
            let oauth_files = oauth
                .iter_mut()
                .flat_map(|o| [&mut o.client_secret_file, &mut o.password_file]);
            let header_files = secret_headers.values_mut().map(|s| &mut s.file);
            std::iter::once(bearer_token_file)
                .chain(header_files)
                .chain(oauth_files)
                .flatten()
                .for_each(fix);
        }
        LiveConfig::Parts { parts } => {
            for part in parts.values_mut() {
                part.resolve_paths(dir);
            }
        }
        LiveConfig::S3 { .. } => {}
    }
}

/// The HTTP method that imports a configuration into an HTTP live target.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum WriteMethod {
    /// `PUT` (the default).
    #[default]
    Put,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
}

/// Where a live configuration is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LiveConfig {
    /// A local file, written atomically (temp file and rename).
    File {
        /// The file.
        path: PathBuf,
    },
    /// An HTTP endpoint: GET exports the configuration, PUT (or `write_method`) imports it.
    Http {
        /// The export URL.
        url: String,
        /// The import URL, when it differs from `url`.
        write_url: Option<String>,
        /// The import method: `PUT` (default), `POST` or `PATCH`.
        write_method: Option<WriteMethod>,
        /// Extra request headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// An environment variable that holds a bearer token.
        bearer_token_env: Option<String>,
        /// A file that holds a bearer token.
        bearer_token_file: Option<PathBuf>,
        /// Request headers whose values are secrets, each read at each request from an
        /// environment variable or a file: `{ env = "VAR" }` or `{ file = "PATH" }`.
        #[serde(default)]
        secret_headers: BTreeMap<String, SecretSource>,
        /// Sign-in at an OAuth2 token endpoint (at most one of this and a bearer token).
        oauth: Option<Box<OAuthConfig>>,
        /// Request timeout.
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
        /// How to create the object when the platform has deleted it (restore then
        /// creates it, and the environment's URL changes to the new identity's).
        create: Option<Box<super::CreateConfig>>,
    },
    /// An object in any S3 bucket (credentials from the AWS chain).
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// Endpoint, when not the store's or AWS's.
        endpoint: Option<String>,
        /// Region.
        region: Option<String>,
        /// Path-style addressing.
        #[serde(default)]
        force_path_style: bool,
    },
    /// Several documents, each a named part with its own live target (and filter),
    /// backed up together as one snapshot whose JSON is an object of the parts, and
    /// restored together, in name order (see [`crate::live::parts`]).
    Parts {
        /// The parts by name.
        parts: BTreeMap<String, super::parts::PartConfig>,
    },
}

/// What prune keeps; a version kept by any rule is kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// The newest N versions.
    pub keep_last: Option<u32>,
    /// The newest version of each of the last N days that have one.
    pub keep_daily: Option<u32>,
    /// The newest version of each of the last N weeks that have one.
    pub keep_weekly: Option<u32>,
    /// The newest version of each of the last N months that have one.
    pub keep_monthly: Option<u32>,
    /// Every version younger than this (`30d`, `12h`).
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, example = "30d")]
    pub keep_within: Option<Duration>,
}

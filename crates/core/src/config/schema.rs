//! `[apps.APP.envs.ENV.schema]`: the JSON Schema (2020-12) an environment's
//! configuration must satisfy, and what a backup does with one that does not.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An environment's JSON Schema check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// The schema file (JSON, draft 2020-12 unless its `$schema` says otherwise);
    /// relative to the config file's directory.
    pub file: PathBuf,
    /// What a backup does with a configuration that fails the schema.
    #[serde(default)]
    pub on_backup: OnBackup,
}

/// What a backup does with a configuration that fails the environment's schema.
/// Release, promote and restore always refuse one, unless overridden explicitly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBackup {
    /// The backup fails (bad input) naming the first violations; nothing is written.
    #[default]
    Refuse,
    /// The snapshot is stored, and its metadata records the violations.
    Flag,
}

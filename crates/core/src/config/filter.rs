//! `[apps.APP.envs.ENV.filter]`: jq programs between a platform's export format and
//! what jetvault stores (see [`crate::filter`], which compiles and runs them).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The filters of one environment's live target; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// A jq program run on what the platform exports, before hashing and storing
    /// (`.flows`, `.dashboard`).
    pub read: Option<String>,
    /// A `.jq` file holding the read program (relative to the config file).
    pub read_file: Option<PathBuf>,
    /// A jq program that shapes what restore sends; `$live` is the live document as the
    /// platform exports it, or null when live holds nothing (`{flows: ., rev: $live.rev}`).
    pub write: Option<String>,
    /// A `.jq` file holding the write program (relative to the config file).
    pub write_file: Option<PathBuf>,
    /// jq paths left out of change detection and of the readable diff, but still
    /// stored (`.version`, `.nodes[].updatedAt`).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// Where a filter program comes from: inline in the config, or a `.jq` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterSource {
    /// Inline text, under this config key (`apps.a.envs.e.filter.read`).
    Inline {
        /// The config key.
        key: String,
        /// The program.
        code: String,
    },
    /// A file named by this config key (`apps.a.envs.e.filter.read_file`).
    File {
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

impl FilterSource {
    /// Where the program is, for messages: the key, or the file and its key.
    #[must_use]
    pub fn origin(&self) -> String {
        match self {
            Self::Inline { key, .. } => key.clone(),
            Self::File { key, path } => format!("{} ({key})", path.display()),
        }
    }

    /// The program's text, reading the file if it is one.
    ///
    /// # Errors
    /// `Config` naming the key and the file that can't be read.
    pub fn code(&self) -> Result<String> {
        match self {
            Self::Inline { code, .. } => Ok(code.clone()),
            Self::File { key, path } => std::fs::read_to_string(path).map_err(|e| {
                Error::config(format!(
                    "{key}: cannot read jq file {}: {e}",
                    path.display()
                ))
            }),
        }
    }
}

impl FilterConfig {
    /// Checks that each program is given at most once (inline or as a file).
    ///
    /// # Errors
    /// `Config` naming both keys.
    pub fn check(&self, at: &str) -> Result<()> {
        for (name, inline, file) in [
            ("read", self.read.is_some(), self.read_file.is_some()),
            ("write", self.write.is_some(), self.write_file.is_some()),
        ] {
            if inline && file {
                return Err(Error::config(format!(
                    "{at}: set at most one of `{name}` and `{name}_file`"
                )));
            }
        }
        Ok(())
    }

    /// The read program, if any; `at` is the table's key (`apps.a.envs.e.filter`).
    #[must_use]
    pub fn read_source(&self, at: &str) -> Option<FilterSource> {
        source(at, "read", self.read.as_ref(), self.read_file.as_ref())
    }

    /// The write program, if any; `at` is the table's key.
    #[must_use]
    pub fn write_source(&self, at: &str) -> Option<FilterSource> {
        source(at, "write", self.write.as_ref(), self.write_file.as_ref())
    }

    /// Makes the `.jq` file paths relative to `dir`, the config file's directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for p in [&mut self.read_file, &mut self.write_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

fn source(
    at: &str,
    name: &str,
    inline: Option<&String>,
    file: Option<&PathBuf>,
) -> Option<FilterSource> {
    match (inline, file) {
        (Some(code), _) => Some(FilterSource::Inline {
            key: format!("{at}.{name}"),
            code: code.clone(),
        }),
        (None, Some(path)) => Some(FilterSource::File {
            key: format!("{at}.{name}_file"),
            path: path.clone(),
        }),
        (None, None) => None,
    }
}

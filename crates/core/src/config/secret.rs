//! Secrets in the configuration: bearer tokens given as a value or in a file, never
//! shown by `Debug` or `Display`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Role;
use crate::error::{Error, Result};

/// One bearer token: its value inline or in a file, not both.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and metrics (never the token itself).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The token.
    pub value: Option<Secret>,
    /// A file holding the token (whitespace around it is ignored).
    pub value_file: Option<PathBuf>,
}

impl TokenConfig {
    /// Reads the token's value from the config or its file.
    ///
    /// # Errors
    /// `Config` if neither or both are set, or the file can't be read.
    pub fn resolve(&self) -> Result<Secret> {
        match (&self.value, &self.value_file) {
            (Some(v), None) => Ok(v.clone()),
            (None, Some(path)) => {
                read_secret_file(path).map_err(|e| e.context(format!("token {:?}", self.name)))
            }
            _ => Err(Error::config(format!(
                "token {:?}: set exactly one of `value` and `value_file`",
                self.name
            ))),
        }
    }
}

/// Reads a secret from a file, trimming whitespace at both ends (a leading blank line
/// would otherwise become part of a token no client can send).
///
/// # Errors
/// `Config` naming the file if it can't be read or is empty.
pub fn read_secret_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read secret file {}: {e}", path.display())))?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err(Error::config(format!(
            "secret file {} is empty",
            path.display()
        )));
    }
    Ok(Secret(value))
}

/// A warning if the secret file at `path` may be read by its group or by anyone: it
/// names the file and the fix, never the content. `None` if the file is private or its
/// mode cannot be read (reading it reports that).
#[must_use]
pub fn secret_file_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o077 == 0 {
        return None;
    }
    let who = if mode & 0o007 != 0 {
        "anyone on this machine"
    } else {
        "its group"
    };
    Some(format!(
        "secret file {} may be read by {who} (mode {:03o}); run `chmod 600 {}`",
        path.display(),
        mode & 0o777,
        path.display()
    ))
}

/// A secret string: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value; never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

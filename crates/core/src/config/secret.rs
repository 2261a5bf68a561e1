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

/// A warning if the secret file at `path` may be read by anyone on this machine, or by
/// a group this process is not in: it names the file and the fix, never the content.
/// A file readable by the service's own group (`root:jetvault 0640`, a Kubernetes secret
/// with `fsGroup`) is how a service reads a file it does not own, and gets none. `None`
/// also if the file's mode cannot be read (reading it reports that).
#[must_use]
pub fn secret_file_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    mode_warning(path, meta.mode(), meta.gid(), &process_groups())
}

/// The warning for a file of `mode` and group `gid`, read by a process in `groups`.
fn mode_warning(path: &Path, mode: u32, gid: u32, groups: &[u32]) -> Option<String> {
    let who = if mode & 0o007 != 0 {
        "anyone on this machine".to_string()
    } else if mode & 0o070 != 0 && !groups.contains(&gid) {
        format!("group {gid}, which this service is not in,")
    } else {
        return None;
    };
    let p = path.display();
    Some(format!(
        "secret file {p} may be read by {who} (mode {:03o}); run `chmod 600 {p}` (or `chmod \
         640 {p}` with the service's own group as the file's group)",
        mode & 0o777
    ))
}

/// This process's effective group and supplementary groups (Linux: `/proc/self/status`;
/// none elsewhere, so that any group-readable file is warned of).
fn process_groups() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut groups = Vec::new();
    for line in status.lines() {
        if let Some(ids) = line.strip_prefix("Gid:") {
            // Real, effective, saved, filesystem: the filesystem one decides access.
            groups.extend(
                ids.split_whitespace()
                    .nth(3)
                    .and_then(|g| g.parse::<u32>().ok()),
            );
        } else if let Some(ids) = line.strip_prefix("Groups:") {
            groups.extend(ids.split_whitespace().filter_map(|g| g.parse::<u32>().ok()));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_that_get_a_warning() {
        let p = Path::new("/etc/jetvault/tokens/ci");
        let ours = [1000, 27];
        for (mode, gid, warned) in [
            (0o100_600, 1000, None),
            (0o100_400, 5, None),
            (0o100_640, 1000, None),
            (0o100_440, 27, None),
            (0o100_640, 5, Some("group 5")),
            (0o100_604, 1000, Some("anyone")),
            (0o100_644, 1000, Some("anyone")),
        ] {
            let w = mode_warning(p, mode, gid, &ours);
            match warned {
                None => assert!(w.is_none(), "{mode:o} {gid}: {w:?}"),
                Some(who) => {
                    let w = w.unwrap_or_else(|| panic!("{mode:o} {gid}: no warning"));
                    assert!(w.contains(who), "{w}");
                    assert!(w.contains("chmod 600 /etc/jetvault/tokens/ci"), "{w}");
                    assert!(w.contains(&format!("{:03o}", mode & 0o777)), "{w}");
                }
            }
        }
    }
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

//! Differences between two configurations: an RFC 6902 JSON Patch for programs, and a
//! readable list of changes for people.
//!
//! Arrays of objects whose items carry an identity (by default the first of `id`, `uid`
//! and `name` that every item has, with unique scalar values; see [`DiffOptions`]) are
//! compared by that identity: a deleted item is one change naming it, a changed property
//! is one change whose path names the item, and an item that only changed place is one
//! `moved` change. Other arrays are compared as sequences: the longest common
//! subsequence stays, so one inserted item is one change.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, DiffConfig};
use crate::error::{Error, Result};
use crate::filter::EnvFilters;
use crate::id::EnvRef;

mod identity;
mod order;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
mod walk;

/// The identity keys tried when the configuration names none.
pub const DEFAULT_KEYS: [&str; 3] = ["id", "uid", "name"];

/// One change. `path` is a JSON pointer into the new document (added, changed, moved)
/// or the old one (removed); `id_path` is the same place with each keyed array item
/// written as `[key=value]` instead of its index, e.g. `/[id=3cc11d24.ff01a2]/name`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// A value that only the new document has.
    Added {
        /// JSON pointer in the new document.
        path: String,
        /// The same place, keyed items named by identity.
        id_path: String,
        /// The new value.
        value: Value,
    },
    /// A value that only the old document has.
    Removed {
        /// JSON pointer in the old document.
        path: String,
        /// The same place, keyed items named by identity.
        id_path: String,
        /// The old value.
        value: Value,
    },
    /// A value that differs.
    Changed {
        /// JSON pointer in the new document.
        path: String,
        /// The same place, keyed items named by identity.
        id_path: String,
        /// The old value.
        from: Value,
        /// The new value.
        to: Value,
    },
    /// A keyed array item that is in another place among the items both documents
    /// share; its content changes, if any, are listed on their own.
    Moved {
        /// JSON pointer in the new document.
        path: String,
        /// JSON pointer in the old document.
        from: String,
        /// The item, named by identity.
        id_path: String,
    },
}

/// How two documents are compared; [`DiffOptions::default`] tries [`DEFAULT_KEYS`] and
/// leaves nothing out.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    keys: Vec<String>,
    /// The environment's filters, whose `ignore` paths are left out of both documents.
    ignore: Option<Arc<EnvFilters>>,
}

impl PartialEq for DiffOptions {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
            && self.ignore.as_ref().map(|f| f.ignore_paths())
                == other.ignore.as_ref().map(|f| f.ignore_paths())
    }
}

impl Eq for DiffOptions {}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            keys: DEFAULT_KEYS.map(String::from).to_vec(),
            ignore: None,
        }
    }
}

impl DiffOptions {
    /// The identity keys to try, in order, on each array of objects; none compares every
    /// array as a sequence.
    #[must_use]
    pub fn keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The identity keys tried, in order.
    #[must_use]
    pub fn identity_keys(&self) -> &[String] {
        &self.keys
    }

    /// The options an environment's `diff` table sets (the defaults without one).
    #[must_use]
    pub fn from_config(diff: Option<&DiffConfig>) -> Self {
        match diff.and_then(|d| d.keys.as_ref()) {
            Some(keys) => Self::default().keys(keys.iter().cloned()),
            None => Self::default(),
        }
    }

    /// Leaves the `ignore` paths of `filters` out of both documents (version counters,
    /// timestamps: stored, but no change worth reading).
    #[must_use]
    pub fn ignoring(mut self, filters: Arc<EnvFilters>) -> Self {
        self.ignore = (!filters.ignore_paths().is_empty()).then_some(filters);
        self
    }

    /// The options configured for `env` in `config`: its `diff` keys, and the `ignore`
    /// paths of its `filter` table.
    ///
    /// # Errors
    /// `Config` if the environment's filters do not compile.
    pub fn for_env(config: &Config, env: &EnvRef) -> Result<Self> {
        let env_config = config.env(env);
        let options = Self::from_config(env_config.and_then(|e| e.diff.as_ref()));
        match env_config.and_then(|e| e.filter.as_ref()) {
            Some(filter) if !filter.ignore.is_empty() => Ok(options.ignoring(Arc::new(
                EnvFilters::compile(&crate::filter::table_key(env), filter)?,
            ))),
            _ => Ok(options),
        }
    }

    /// Compares two raw JSON documents; `a_name` and `b_name` name them in errors.
    ///
    /// # Errors
    /// `InvalidInput` if either is not JSON; `Config` if the ignore paths fail on one.
    pub fn between(&self, a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> Result<Diff> {
        let (mut a, mut b) = (parse(a, a_name)?, parse(b, b_name)?);
        if let Some(filters) = &self.ignore {
            a = filters.normalize(&a)?;
            b = filters.normalize(&b)?;
        }
        Ok(self.values(&a, &b))
    }

    /// Compares two parsed documents.
    #[must_use]
    pub fn values(&self, a: &Value, b: &Value) -> Diff {
        let w = walk::Walk::run(&self.keys, a, b);
        Diff {
            patch: json_patch::Patch(w.ops),
            changes: w.changes,
            labels: w.labels,
        }
    }
}

/// The difference between two documents.
#[derive(Debug, Clone)]
pub struct Diff {
    patch: json_patch::Patch,
    changes: Vec<Change>,
    /// For each change of a keyed item, its type and name (see `identity::item_label`).
    labels: Vec<Option<String>>,
}

fn parse(raw: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(raw)
        .map_err(|e| Error::invalid(format!("{what} is not valid JSON: {e}")))
}

impl Diff {
    /// Compares two raw JSON documents with the default options; `a_name` and `b_name`
    /// name them in errors.
    ///
    /// # Errors
    /// `InvalidInput` if either is not JSON.
    pub fn between(a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> Result<Self> {
        DiffOptions::default().between(a, b, a_name, b_name)
    }

    /// Compares two parsed documents with the default options.
    #[must_use]
    pub fn values(a: &Value, b: &Value) -> Self {
        DiffOptions::default().values(a, b)
    }

    /// Whether the documents are equal as JSON.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The RFC 6902 JSON Patch that turns the old document into the new one, its
    /// operations applied in order.
    #[must_use]
    pub fn patch(&self) -> &json_patch::Patch {
        &self.patch
    }

    /// The changes: removed keyed items before the rest of their array, otherwise in
    /// document order.
    #[must_use]
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// A readable listing, one line per change, values shortened to `width` characters:
    /// `+ path: value` added, `- path: value` removed, `~ path: old -> new` changed. A
    /// keyed item added, removed or moved is named instead of shown:
    /// `- /[id=3cc11d24.ff01a2] comment "note"`, `> /[id=…] comment "note" moved 3 -> 7`.
    /// The last line counts them.
    #[must_use]
    pub fn render(&self, width: usize) -> String {
        let mut out = String::new();
        let (mut add, mut rem, mut chg, mut mov) = (0, 0, 0, 0);
        for (c, label) in self.changes.iter().zip(&self.labels) {
            let _ = match (c, label) {
                (Change::Added { id_path, .. }, Some(l)) => {
                    add += 1;
                    writeln!(out, "+ {}", named(id_path, l))
                }
                (Change::Added { id_path, value, .. }, None) => {
                    add += 1;
                    writeln!(out, "+ {}: {}", show_path(id_path), short(value, width))
                }
                (Change::Removed { id_path, .. }, Some(l)) => {
                    rem += 1;
                    writeln!(out, "- {}", named(id_path, l))
                }
                (Change::Removed { id_path, value, .. }, None) => {
                    rem += 1;
                    writeln!(out, "- {}: {}", show_path(id_path), short(value, width))
                }
                (
                    Change::Changed {
                        id_path, from, to, ..
                    },
                    _,
                ) => {
                    chg += 1;
                    writeln!(
                        out,
                        "~ {}: {} -> {}",
                        show_path(id_path),
                        short(from, width),
                        short(to, width)
                    )
                }
                (
                    Change::Moved {
                        id_path,
                        path,
                        from,
                    },
                    l,
                ) => {
                    mov += 1;
                    writeln!(
                        out,
                        "> {} moved {} -> {}",
                        named(id_path, l.as_deref().unwrap_or_default()),
                        last_token(from),
                        last_token(path)
                    )
                }
            };
        }
        if self.changes.is_empty() {
            out.push_str("no differences\n");
        } else {
            let _ = write!(out, "{add} added, {rem} removed, {chg} changed");
            if mov > 0 {
                let _ = write!(out, ", {mov} moved");
            }
            out.push('\n');
        }
        out
    }
}

fn named(id_path: &str, label: &str) -> String {
    if label.is_empty() {
        id_path.to_string()
    } else {
        format!("{id_path} {label}")
    }
}

fn last_token(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or_default()
}

fn show_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

fn short(v: &Value, width: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= width {
        s
    } else {
        let cut: String = s.chars().take(width.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

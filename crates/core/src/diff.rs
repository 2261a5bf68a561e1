//! Differences between two configurations: an RFC 6902 JSON Patch for programs, and a
//! readable list of changed paths for people.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One change at one JSON pointer path.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// A value that only the new document has.
    Added {
        /// JSON pointer.
        path: String,
        /// The new value.
        value: Value,
    },
    /// A value that only the old document has.
    Removed {
        /// JSON pointer.
        path: String,
        /// The old value.
        value: Value,
    },
    /// A value that differs.
    Changed {
        /// JSON pointer.
        path: String,
        /// The old value.
        from: Value,
        /// The new value.
        to: Value,
    },
}

/// The difference between two documents.
#[derive(Debug, Clone)]
pub struct Diff {
    patch: json_patch::Patch,
    changes: Vec<Change>,
}

fn parse(raw: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(raw)
        .map_err(|e| Error::invalid(format!("{what} is not valid JSON: {e}")))
}

impl Diff {
    /// Compares two raw JSON documents; `a_name` and `b_name` name them in errors.
    ///
    /// # Errors
    /// `InvalidInput` if either is not JSON.
    pub fn between(a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> Result<Self> {
        let (a, b) = (parse(a, a_name)?, parse(b, b_name)?);
        Ok(Self::values(&a, &b))
    }

    /// Compares two parsed documents.
    #[must_use]
    pub fn values(a: &Value, b: &Value) -> Self {
        let patch = json_patch::diff(a, b);
        let changes = patch
            .iter()
            .filter_map(|op| {
                use json_patch::PatchOperation as Op;
                Some(match op {
                    Op::Add(o) => Change::Added {
                        path: o.path.to_string(),
                        value: o.value.clone(),
                    },
                    Op::Remove(o) => Change::Removed {
                        path: o.path.to_string(),
                        value: a.pointer(o.path.as_str()).cloned().unwrap_or(Value::Null),
                    },
                    Op::Replace(o) => Change::Changed {
                        path: o.path.to_string(),
                        from: a.pointer(o.path.as_str()).cloned().unwrap_or(Value::Null),
                        to: o.value.clone(),
                    },
                    // `diff` only emits add, remove and replace.
                    _ => return None,
                })
            })
            .collect();
        Self { patch, changes }
    }

    /// Whether the documents are equal as JSON.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The RFC 6902 JSON Patch that turns the old document into the new one.
    #[must_use]
    pub fn patch(&self) -> &json_patch::Patch {
        &self.patch
    }

    /// The changes, in document order.
    #[must_use]
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// A readable listing: one line per change, `+` added, `-` removed, `~` changed, with
    /// values shortened to `width` characters.
    #[must_use]
    pub fn render(&self, width: usize) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let _ = match c {
                Change::Added { path, value } => {
                    writeln!(out, "+ {}: {}", show_path(path), short(value, width))
                }
                Change::Removed { path, value } => {
                    writeln!(out, "- {}: {}", show_path(path), short(value, width))
                }
                Change::Changed { path, from, to } => writeln!(
                    out,
                    "~ {}: {} -> {}",
                    show_path(path),
                    short(from, width),
                    short(to, width)
                ),
            };
        }
        let (mut add, mut rem, mut chg) = (0, 0, 0);
        for c in &self.changes {
            match c {
                Change::Added { .. } => add += 1,
                Change::Removed { .. } => rem += 1,
                Change::Changed { .. } => chg += 1,
            }
        }
        if self.changes.is_empty() {
            out.push_str("no differences\n");
        } else {
            let _ = writeln!(out, "{add} added, {rem} removed, {chg} changed");
        }
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_changes_and_patches() {
        let a = json!({"name": "crm", "pages": [{"n": "Home"}, {"n": "Old"}], "theme": "dark"});
        let b = json!({"name": "crm2", "pages": [{"n": "Home"}], "theme": "dark", "x": 1});
        let d = Diff::values(&a, &b);
        let text = d.render(40);
        assert!(text.contains("~ /name: \"crm\" -> \"crm2\""), "{text}");
        assert!(text.contains("- /pages/1: {\"n\":\"Old\"}"), "{text}");
        assert!(text.contains("+ /x: 1"), "{text}");
        assert!(text.ends_with("1 added, 1 removed, 1 changed\n"), "{text}");
        let mut patched = a.clone();
        json_patch::patch(&mut patched, d.patch()).unwrap();
        assert_eq!(patched, b);
    }

    #[test]
    fn equal_documents() {
        let d = Diff::between(b"{\"a\": [1,2]}", b"{\"a\":[1,2]}", "a", "b").unwrap();
        assert!(d.is_empty());
        assert_eq!(d.render(10), "no differences\n");
        assert!(
            Diff::between(b"{", b"{}", "version 3", "b")
                .unwrap_err()
                .to_string()
                .contains("version 3")
        );
    }
}

//! Several documents in one environment (`kind = "parts"`): each named part has its own
//! live target and filter. A read reads every part at once and gives one JSON object,
//! `{"<name>": <document>, ...}` in name order, each document byte for byte as its
//! part gave it, so the environment has one snapshot, one version and one sha256 for
//! all of them. A write splits such an object and writes the parts one by one in name
//! order, reading each back and checking it before the next; a failure names the parts
//! already written and those not.
//!
//! A required part that is missing (no file, a 404) while others are present makes the
//! whole unreadable rather than missing: what the other parts hold can't be snapshotted
//! without it, so a restore over it needs the explicit override. An **optional** part
//! (`optional = true`) that is missing is left out of the object: the version records
//! it as absent, and a restore of that version leaves the part's live target as it is
//! (nothing is removed). When every part is missing, live is missing, as for any
//! target. Anything else than "missing" (a 5xx, a timeout, a refused sign-in) fails the
//! read, optional part or not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::LiveTarget;
use crate::config::{PartConfig, S3Options, part_key};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::{self, EnvFilters};
use crate::id::EnvRef;

/// One part: its name and its target (through its filter, if it has one).
#[derive(Debug)]
struct Part {
    name: String,
    target: Arc<dyn LiveTarget>,
    /// May be absent (`optional = true`).
    optional: bool,
}

/// Named live targets read and written as one JSON object.
#[derive(Debug)]
pub struct PartsTarget {
    /// In name order: the order of the stored object and of a restore's writes.
    parts: Vec<Part>,
    /// The most a part's read-back may hold.
    limit: u64,
}

impl PartsTarget {
    /// The parts `parts` (any order; kept in name order); `limit` bounds the read-back
    /// of each part after it is written.
    #[must_use]
    pub fn new(parts: Vec<(String, Arc<dyn LiveTarget>)>, limit: u64) -> Self {
        let mut parts: Vec<Part> = parts
            .into_iter()
            .map(|(name, target)| Part {
                name,
                target,
                optional: false,
            })
            .collect();
        parts.sort_by(|a, b| a.name.cmp(&b.name));
        Self { parts, limit }
    }

    /// Marks the parts `names` optional: they may be absent (see the module's
    /// documentation).
    #[must_use]
    pub fn with_optional(mut self, names: &[&str]) -> Self {
        for p in &mut self.parts {
            p.optional |= names.contains(&p.name.as_str());
        }
        self
    }

    /// Builds the parts of `env`'s `kind = "parts"` target, each through its filter.
    ///
    /// # Errors
    /// `Config` for a part that can't be built or a filter that does not compile.
    pub async fn open(
        env: &EnvRef,
        parts: &BTreeMap<String, PartConfig>,
        store_s3: &S3Options,
        limit: u64,
    ) -> Result<Self> {
        let mut out = Vec::with_capacity(parts.len());
        for (name, part) in parts {
            let at = part_key(env, name);
            let target = super::open_leaf(env, &part.live, store_s3)
                .await
                .map_err(|e| e.context(&at))?;
            let target = match &part.filter {
                None => target,
                Some(f) => {
                    let filters = EnvFilters::compile(&format!("{at}.filter"), f)?;
                    Arc::new(super::filtered::FilteredTarget::new(
                        target,
                        Arc::new(filters),
                        limit,
                    )) as Arc<dyn LiveTarget>
                }
            };
            out.push((name.clone(), target));
        }
        let optional: Vec<&str> = parts
            .iter()
            .filter(|(_, p)| p.optional)
            .map(|(n, _)| n.as_str())
            .collect();
        Ok(Self::new(out, limit).with_optional(&optional))
    }

    /// The part names, in order.
    fn names(&self) -> Vec<&str> {
        self.parts.iter().map(|p| p.name.as_str()).collect()
    }

    /// ", of which [a, b] optional", or nothing.
    fn optional_text(&self) -> String {
        let optional: Vec<&str> = self
            .parts
            .iter()
            .filter(|p| p.optional)
            .map(|p| p.name.as_str())
            .collect();
        if optional.is_empty() {
            String::new()
        } else {
            format!(", of which [{}] optional", optional.join(", "))
        }
    }

    /// The error for a failure at part `i` of a write: what was written and what not.
    fn failed_at(&self, i: usize, doing: &str, e: Error) -> Error {
        let list = |parts: &[Part]| {
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let part = &self.parts[i];
        let kind = e.kind();
        let message = format!(
            "{doing} part {} ({}) failed: {}; parts written before it: {}; parts not \
             written: {}; restoring the pre-restore snapshot puts every part back",
            part.name,
            part.target.describe(),
            e.report(),
            list(&self.parts[..i]),
            list(&self.parts[i + 1..]),
        );
        Error::new(kind, message).with_source(e)
    }
}

/// Joins the parts' documents into one object, in name order, each kept byte for byte.
fn join(docs: &[(String, Bytes)]) -> Result<Bytes> {
    let mut map: BTreeMap<&str, &RawValue> = BTreeMap::new();
    for (name, doc) in docs {
        let raw: &RawValue = serde_json::from_slice(doc).map_err(|e| {
            Error::invalid(format!(
                "part {name} is not JSON ({e}): every part must hold one JSON document"
            ))
        })?;
        map.insert(name.as_str(), raw);
    }
    serde_json::to_vec(&map)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("joining the parts: {e}")))
}

/// Whether `back`, read from a part after writing `sent`, holds it: the same bytes,
/// the same JSON, or the same but for the part filter's ignored paths.
async fn holds(filters: Option<Arc<EnvFilters>>, sent: Bytes, back: Bytes) -> bool {
    if sent == back {
        return true;
    }
    let same_json = matches!(
        (
            serde_json::from_slice::<serde_json::Value>(&sent),
            serde_json::from_slice::<serde_json::Value>(&back),
        ),
        (Ok(a), Ok(b)) if a == b
    );
    same_json
        || filter::equal_ignoring(filters, sent, back)
            .await
            .unwrap_or(false)
}

#[async_trait]
impl LiveTarget for PartsTarget {
    fn describe(&self) -> String {
        let mut out = String::from("parts {");
        for (i, p) in self.parts.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{}: {}", p.name, p.target.describe());
        }
        out.push('}');
        out
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let reads =
            futures::future::join_all(self.parts.iter().map(|p| p.target.read(limit))).await;
        let mut docs = Vec::with_capacity(reads.len());
        let (mut missing, mut absent) = (Vec::new(), Vec::new());
        for (part, read) in self.parts.iter().zip(reads) {
            match read {
                Ok(doc) => docs.push((part.name.clone(), doc)),
                Err(e) if e.is_live_missing() && part.optional => {
                    absent.push((part.name.as_str(), e));
                }
                Err(e) if e.is_live_missing() => missing.push((part.name.as_str(), e)),
                Err(e) => return Err(e.context(format!("reading part {}", part.name))),
            }
        }
        let text = |parts: &[(&str, Error)]| {
            parts
                .iter()
                .map(|(name, e)| format!("{name} ({})", e.report()))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if docs.is_empty() {
            missing.extend(absent);
            return Err(Error::live_missing(format!(
                "every part is missing: {}",
                text(&missing)
            )));
        }
        if !missing.is_empty() {
            let present: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
            let tables: Vec<String> = missing
                .iter()
                .map(|(name, _)| format!("[...live.parts.{name}]"))
                .collect();
            return Err(Error::precondition(format!(
                "the required part {} is missing while {} {} present: the parts are one \
                 snapshot, so they can't be saved without it (restore the missing part, \
                 or the whole environment; if the part may be absent, as a credentials \
                 file before any credentials exist, write optional = true in {})",
                text(&missing),
                present.join(", "),
                if present.len() == 1 { "is" } else { "are" },
                tables.join(", "),
            )));
        }
        for (name, e) in &absent {
            tracing::info!(part = %name, reason = %e.report(),
                "optional part absent: the version is taken without it");
        }
        let joined = tokio::task::spawn_blocking(move || join(&docs))
            .await
            .map_err(|e| Error::internal(format!("joining the parts failed: {e}")))??;
        if joined.len() as u64 > limit {
            return Err(Error::too_large(format!(
                "the parts together ({} bytes) are larger than the {limit}-byte limit; \
                 raise snapshots.max_size if this is expected",
                joined.len()
            )));
        }
        Ok(joined)
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let mut docs: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!(
                    "nothing was written: the configuration is not an object of parts \
                     ({e}); this environment's parts are {}",
                    self.names().join(", ")
                ))
            })?;
        let names = self.names();
        let given: Vec<&str> = docs.keys().map(String::as_str).collect();
        // Every part but the optional ones, and no other.
        let fits = given.iter().all(|g| names.contains(g))
            && self
                .parts
                .iter()
                .all(|p| p.optional || docs.contains_key(&p.name));
        if !fits {
            return Err(Error::invalid(format!(
                "nothing was written: the configuration has the parts [{}], but this \
                 environment's are [{}]{}",
                given.join(", "),
                names.join(", "),
                self.optional_text()
            )));
        }
        for (i, part) in self.parts.iter().enumerate() {
            // An optional part the version does not hold: its live target is left as
            // it is.
            let Some(doc) = docs.remove(&part.name) else {
                tracing::info!(part = %part.name,
                    "optional part absent from the version: its live target is left as it is");
                continue;
            };
            let doc = Bytes::from(Box::<str>::from(doc).into_boxed_bytes());
            if let Err(e) = part.target.write(doc.clone()).await {
                return Err(self.failed_at(i, "writing", e));
            }
            let back = match part.target.read(self.limit).await {
                Ok(back) => back,
                Err(e) => return Err(self.failed_at(i, "reading back", e)),
            };
            if !holds(part.target.filters(), doc, back).await {
                let e = Error::new(
                    ErrorKind::Corrupt,
                    "it reads back as something else than was written",
                );
                return Err(self.failed_at(i, "checking", e));
            }
        }
        Ok(())
    }

    fn holds_written(&self, written: &[u8], back: &[u8]) -> bool {
        holds_with_optional_parts(&self.parts, written, back)
    }
}

/// Whether `back` holds `written` with only optional parts added: each part `written`
/// holds is in `back` as the same JSON, and the parts `back` holds besides are optional
/// ones (left as they were by the write, the version not holding them).
fn holds_with_optional_parts(parts: &[Part], written: &[u8], back: &[u8]) -> bool {
    type Parts = BTreeMap<String, serde_json::Value>;
    let (Ok(written), Ok(mut back)) = (
        serde_json::from_slice::<Parts>(written),
        serde_json::from_slice::<Parts>(back),
    ) else {
        return false;
    };
    for (name, doc) in &written {
        if back.remove(name).as_ref() != Some(doc) {
            return false;
        }
    }
    back.keys()
        .all(|name| parts.iter().any(|p| p.optional && &p.name == name))
}

#[cfg(test)]
#[path = "parts_tests.rs"]
mod tests;

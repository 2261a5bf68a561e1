//! Filters on a live target, in the jq language (the `jaq` crates): what the platform
//! exports goes through the **read** filter before it is hashed and stored (`.flows`,
//! `.dashboard`); what restore sends goes through the **write** filter, with the live
//! document as `$live` (`{flows: ., rev: $live.rev}`); **ignore** paths (`.version`)
//! are left out when documents are compared, but stay in what is stored.
//!
//! Each program is compiled once, when the environment's live target is opened, and
//! must yield exactly one value. Output is compact JSON written by serde_json in the
//! value's key order: the same input always gives the same bytes.

mod fast;
mod ignore;
mod program;
#[cfg(test)]
mod tests;
pub mod value;

use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;

pub use program::Program;

use crate::config::{Config, FilterConfig};
use crate::error::{Error, Result};
use crate::schema::Doc;

/// The variable that holds, in a write filter, the document live holds now as the
/// platform exports it (null when live holds nothing).
pub const LIVE_VAR: &str = "$live";

/// The compiled filters of one environment.
#[derive(Debug)]
pub struct EnvFilters {
    read: Option<Program>,
    /// The keys the read filter selects when it is only a path (see `fast.rs`).
    read_path: Option<Vec<String>>,
    write: Option<Program>,
    write_uses_live: bool,
    ignore: Option<Program>,
    ignore_paths: Vec<String>,
    /// The ignore paths' steps when every one is plain (see `ignore.rs`).
    ignore_plain: Option<Vec<Vec<ignore::Step>>>,
}

impl EnvFilters {
    /// Compiles an environment's filters; `at` is the table's key
    /// (`apps.a.envs.e.filter`), used in messages.
    ///
    /// # Errors
    /// `Config` naming the key or `.jq` file, with line and column, for a program that
    /// does not compile or a file that can't be read.
    pub fn compile(at: &str, config: &FilterConfig) -> Result<Self> {
        config.check(at)?;
        let read = match config.read_source(at) {
            Some(s) => {
                let code = s.code()?;
                Some(if fast::path_of(&code).is_some() {
                    Program::lazy(&s.origin(), &code)
                } else {
                    Program::compile(&s.origin(), &code, &[])?
                })
            }
            None => None,
        };
        let write = match config.write_source(at) {
            Some(s) => Some(Program::compile(&s.origin(), &s.code()?, &[LIVE_VAR])?),
            None => None,
        };
        // A program that never names `$live` needs no read of live before a write.
        let write_uses_live = write.as_ref().is_some_and(|w| w.code().contains(LIVE_VAR));
        let ignore_plain = config
            .ignore
            .iter()
            .map(|p| ignore::plain_path(p))
            .collect::<Option<Vec<_>>>();
        let ignore = if config.ignore.is_empty() {
            None
        } else {
            // Each path is deleted where it exists; a path the document does not have
            // (`.nodes[].x` without `.nodes`) leaves it as it is.
            let body: Vec<String> = config
                .ignore
                .iter()
                .map(|p| format!("ignore({p})"))
                .collect();
            let code = format!(
                "def ignore(f): . as $doc | try del(f) catch $doc; {}",
                body.join(" | ")
            );
            // Plain paths are served without jaq (see `ignore.rs`) until a diff or a
            // comparison of documents needs it. Otherwise one compilation (each loads
            // jaq's standard library); the paths one by one only to name a fault.
            match if ignore_plain.is_some() {
                Ok(Program::lazy(&format!("{at}.ignore"), &code))
            } else {
                Program::compile(&format!("{at}.ignore"), &code, &[])
            } {
                Ok(p) => Some(p),
                Err(all) => {
                    for (i, path) in config.ignore.iter().enumerate() {
                        Program::compile(&format!("{at}.ignore[{i}]"), path, &[])?;
                    }
                    return Err(all);
                }
            }
        };
        let read_path = read.as_ref().and_then(|r| fast::path_of(r.code()));
        Ok(Self {
            read,
            read_path,
            write,
            write_uses_live,
            ignore,
            ignore_paths: config.ignore.clone(),
            ignore_plain,
        })
    }

    /// Compiles the programs left for their first use (see [`Program::lazy`]).
    ///
    /// # Errors
    /// As [`EnvFilters::compile`].
    pub fn force(&self) -> Result<()> {
        for p in [&self.read, &self.ignore].into_iter().flatten() {
            p.force()?;
        }
        Ok(())
    }

    /// Whether a read filter is set.
    #[must_use]
    pub fn has_read(&self) -> bool {
        self.read.is_some()
    }

    /// Whether a write filter is set.
    #[must_use]
    pub fn has_write(&self) -> bool {
        self.write.is_some()
    }

    /// Whether the write filter uses `$live`, so a write first reads live.
    #[must_use]
    pub fn write_uses_live(&self) -> bool {
        self.write_uses_live
    }

    /// The configured ignore paths.
    #[must_use]
    pub fn ignore_paths(&self) -> &[String] {
        &self.ignore_paths
    }

    /// Runs the read filter on what the platform exports (unchanged without one).
    ///
    /// # Errors
    /// `InvalidInput` if the export is not JSON; `Config` naming the filter if it fails
    /// or does not yield exactly one value.
    pub fn read(&self, exported: Bytes) -> Result<Bytes> {
        let Some(read) = &self.read else {
            return Ok(exported);
        };
        // A path is cut out of the bytes, with the same output as jaq's.
        if let Some(out) = self
            .read_path
            .as_deref()
            .and_then(|p| fast::select(&exported, p))
        {
            return Ok(Bytes::from(out));
        }
        let input = value::parse(&exported, "what the live target exports")?;
        let out = read.run(input, Vec::new())?;
        Ok(Bytes::from(value::to_bytes(&out)?))
    }

    /// [`EnvFilters::read`], and, with ignore paths, the sha256 of the result without
    /// them ([`EnvFilters::ignoring_sha256`]), from the one parse the read filter makes
    /// (without a read filter, the export is parsed once for it); `None` for plain
    /// ignore paths over a path read filter's fast output (or the export itself), which
    /// the backup hashes from the parse its JSON check makes.
    ///
    /// # Errors
    /// As [`EnvFilters::read`].
    pub fn read_with_digest(&self, exported: Bytes) -> Result<(Bytes, Option<String>)> {
        if self.ignore.is_none() {
            return Ok((self.read(exported)?, None));
        }
        // Plain paths on the read filter's fast output (or the export itself): no jaq.
        let fast_out = match (&self.read, self.read_path.as_deref()) {
            (None, _) => Some(exported.clone()),
            (Some(_), Some(path)) => fast::select(&exported, path).map(Bytes::from),
            (Some(_), None) => None,
        };
        // Plain paths: the backup hashes the output without them itself, from the parse
        // its JSON check makes (`ignoring_sha256_parsed`).
        if let Some(out) = fast_out
            && self.ignore_plain.is_some()
        {
            return Ok((out, None));
        }
        let input = value::parse(&exported, "what the live target exports")?;
        let (out, doc) = match &self.read {
            None => (exported, input),
            Some(read) => {
                // A path is looked up in the values (jaq need not even compile it).
                let doc = match self.read_path.as_deref() {
                    Some(path) => match fast::select_val(&input, path) {
                        Some(doc) => doc,
                        None => read.run(input, Vec::new())?,
                    },
                    None => read.run(input, Vec::new())?,
                };
                (Bytes::from(value::to_bytes(&doc)?), doc)
            }
        };
        Ok((out, self.digest_of(doc)))
    }

    /// The sha256 of a document (JSON text) without the ignored paths, whatever the
    /// order of object keys, prefixed by the ignore paths themselves (a change to them
    /// changes every digest); `None` without ignore paths, or if they fail on it.
    ///
    /// # Errors
    /// `InvalidInput` if `raw` is not JSON.
    pub fn ignoring_sha256(&self, raw: &[u8]) -> Result<Option<String>> {
        let doc = self
            .digests_parsed()
            .then(|| Doc::parse_keeping_repeats(raw))
            .flatten();
        self.ignoring_sha256_parsed(raw, doc.as_ref())
    }

    /// Whether the ignore paths' digest is taken from a parsed [`Doc`] (every path is
    /// plain), which a caller that parses the document anyway passes to
    /// [`EnvFilters::ignoring_sha256_parsed`].
    #[must_use]
    pub fn digests_parsed(&self) -> bool {
        self.ignore.is_some() && self.ignore_plain.is_some()
    }

    /// [`EnvFilters::ignoring_sha256`] of `raw`, already parsed as `doc` (by
    /// [`Doc::parse`] or the parse that keeps repeated keys) when it could be.
    ///
    /// # Errors
    /// `InvalidInput` if `raw` is not JSON.
    pub fn ignoring_sha256_parsed(
        &self,
        raw: &[u8],
        doc: Option<&Doc<'_>>,
    ) -> Result<Option<String>> {
        if self.ignore.is_none() {
            return Ok(None);
        }
        let plain = doc.zip(self.ignore_plain.as_deref());
        if let Some(digest) =
            plain.and_then(|(doc, paths)| ignore::digest(doc, paths, &self.ignore_paths))
        {
            return Ok(Some(digest));
        }
        Ok(self.digest_of(value::parse(raw, "a document to compare")?))
    }

    fn digest_of(&self, doc: Val) -> Option<String> {
        use sha2::Digest as _;
        let ignore = self.ignore.as_ref()?;
        let stripped = ignore.run(doc, Vec::new()).ok()?;
        let mut hasher = sha2::Sha256::new();
        for path in &self.ignore_paths {
            hasher.update((path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
        }
        value::digest(&stripped, &mut hasher).ok()?;
        Some(hex::encode(hasher.finalize()))
    }

    /// Runs the write filter on a stored document, with `live` (the raw live document,
    /// or `None` when live holds nothing) as `$live` (unchanged without one).
    ///
    /// # Errors
    /// `InvalidInput` if the document or live is not JSON; `Config` naming the filter if
    /// it fails or does not yield exactly one value.
    pub fn write(&self, doc: Bytes, live: Option<&[u8]>) -> Result<Bytes> {
        let Some(write) = &self.write else {
            return Ok(doc);
        };
        let input = value::parse(&doc, "the configuration to write")?;
        let live = match live {
            Some(raw) => value::parse(raw, "the live document ($live)")?,
            None => Val::Null,
        };
        let out = write.run(input, vec![live])?;
        Ok(Bytes::from(value::to_bytes(&out)?))
    }

    /// The document without the ignored paths, for diffs and comparisons.
    ///
    /// # Errors
    /// `Config` naming the ignore paths if they fail on this document.
    pub fn normalize(&self, doc: &serde_json::Value) -> Result<serde_json::Value> {
        match &self.ignore {
            None => Ok(doc.clone()),
            Some(ignore) => value::to_json(&ignore.run(value::from_json(doc), Vec::new())?),
        }
    }

    /// Whether two documents (JSON text) are equal once the ignored paths are left out;
    /// object key order never matters.
    ///
    /// # Errors
    /// `InvalidInput` if either is not JSON, `Config` if the ignore paths fail.
    pub fn same(&self, a: &[u8], b: &[u8]) -> Result<bool> {
        Ok(self.strip(a)? == self.strip(b)?)
    }

    /// A document (JSON text) without the ignored paths.
    fn strip(&self, raw: &[u8]) -> Result<Normalized> {
        let v = value::parse(raw, "a document to compare")?;
        Ok(Normalized(match &self.ignore {
            None => v,
            Some(ignore) => ignore.run(v, Vec::new())?,
        }))
    }
}

/// A document without its environment's ignored paths, to compare with another: equal
/// when the documents are equal but for those paths, whatever the order of object keys.
#[derive(Debug, PartialEq, Eq)]
pub struct Normalized(Val);

/// Parses `raw` and leaves out `filters`' ignore paths, off the async threads.
///
/// # Errors
/// As [`EnvFilters::same`].
pub async fn normalized(filters: &Arc<EnvFilters>, raw: Bytes) -> Result<Normalized> {
    let filters = Arc::clone(filters);
    tokio::task::spawn_blocking(move || filters.strip(&raw))
        .await
        .map_err(|e| Error::internal(format!("comparison task failed: {e}")))?
}

/// Whether two documents are equal once `filters`' ignore paths are left out (both
/// parsed at once, off the async threads); false without filters or ignore paths.
///
/// # Errors
/// As [`EnvFilters::same`].
pub async fn equal_ignoring(filters: Option<Arc<EnvFilters>>, a: Bytes, b: Bytes) -> Result<bool> {
    let Some(filters) = filters.filter(|f| !f.ignore_paths().is_empty()) else {
        return Ok(false);
    };
    let (a, b) = tokio::join!(normalized(&filters, a), normalized(&filters, b));
    Ok(a? == b?)
}

/// Compiles the filters of every configured environment, as opening their live targets
/// would; gives how many environments have filters.
///
/// # Errors
/// The first environment's error (see [`EnvFilters::compile`]).
pub fn check_all(config: &Config) -> Result<usize> {
    let mut n = 0;
    for (env, env_config) in config.envs() {
        if let Some(filter) = &env_config.filter {
            EnvFilters::compile(&table_key(&env), filter)?.force()?;
            n += 1;
        }
        let parts = env_config.live.as_ref().and_then(crate::config::parts_of);
        for (name, part) in parts.into_iter().flatten() {
            if let Some(filter) = &part.filter {
                let at = format!("{}.filter", crate::config::part_key(&env, name));
                EnvFilters::compile(&at, filter)?.force()?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The config key of an environment's filter table.
#[must_use]
pub fn table_key(env: &crate::id::EnvRef) -> String {
    format!("apps.{}.envs.{}.filter", env.app, env.env)
}

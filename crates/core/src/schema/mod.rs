//! Schema checks: each environment may name a JSON Schema (draft 2020-12, the
//! `jsonschema` crate) that its configuration must satisfy.
//!
//! [`Schemas`] holds every configured schema, compiled the first time it is needed, and
//! is part of the vault's options, so the check sits in one place for every front end:
//! backup refuses or flags (`on_backup`), release, promote and restore refuse unless
//! the caller overrides explicitly (and the audit event records the override).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::config::{Config, OnBackup, SchemaConfig};
use crate::error::{Error, Result};
use crate::id::EnvRef;

pub(crate) mod doc;
#[cfg(test)]
mod tests;

pub use doc::Doc;

/// How many violations are named in messages, events and metadata.
pub const SHOWN_VIOLATIONS: usize = 5;

/// The schemas of the configured environments.
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    envs: Arc<BTreeMap<EnvRef, EnvSchema>>,
}

/// One environment's schema, compiled on first use.
#[derive(Debug)]
pub struct EnvSchema {
    config: SchemaConfig,
    compiled: OnceLock<std::result::Result<Arc<jsonschema::Validator>, String>>,
    /// The same schema, for documents parsed as a [`Doc`].
    borrowed: OnceLock<std::result::Result<Arc<jsonschema::Validator<doc::Borrowed>>, String>>,
    /// Whether [`Schemas::prepare`] has started compiling `borrowed`.
    preparing: AtomicBool,
}

/// One way a document fails a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// Where, as a JSON pointer into the document (`""` for the whole document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// What a check against a schema found: how many violations, and the first few.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violations {
    /// The schema file.
    pub schema: String,
    /// How many violations in all.
    pub count: u64,
    /// The first [`SHOWN_VIOLATIONS`] of them.
    pub first: Vec<Violation>,
}

impl Violations {
    /// The first violations, one per line with their pointers, and how many more.
    #[must_use]
    pub fn listing(&self) -> String {
        let mut out: Vec<String> = self.first.iter().map(|v| format!("  {v}")).collect();
        let more = self.count.saturating_sub(self.first.len() as u64);
        if more > 0 {
            out.push(format!("  ... and {more} more"));
        }
        out.join("\n")
    }

    /// "N violation(s) of SCHEMA".
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} violation{} of the schema {}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.schema
        )
    }

    /// The refusal of `what` (e.g. "releasing v4 of crm/production"): `InvalidInput`,
    /// naming the violations, with the override as the step.
    #[must_use]
    pub fn refusal(&self, what: &str, env: &EnvRef) -> Error {
        Error::invalid(format!(
            "refusing {what}: the configuration fails the JSON Schema of {env} ({}):\n{}",
            self.summary(),
            self.listing()
        ))
        .with_next(crate::error::Hint::steps(
            "fix the configuration or the schema; to go on anyway, override the schema \
             check explicitly (the audit event records it)",
            [crate::error::Step::SkipSchemaCheck],
        ))
    }
}

impl Schemas {
    /// The schemas a config names (nothing is read yet).
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        let envs = config
            .envs()
            .filter_map(|(env, c)| {
                let config = c.schema.clone()?;
                Some((
                    env,
                    EnvSchema {
                        config,
                        compiled: OnceLock::new(),
                        borrowed: OnceLock::new(),
                        preparing: AtomicBool::new(false),
                    },
                ))
            })
            .collect();
        Self {
            envs: Arc::new(envs),
        }
    }

    /// The schema of `env`, if it has one.
    #[must_use]
    pub fn get(&self, env: &EnvRef) -> Option<&EnvSchema> {
        self.envs.get(env)
    }

    /// Checks `raw` against the schema of `env`: `None` when it passes or `env` has no
    /// schema. See [`EnvSchema::check`].
    ///
    /// # Errors
    /// As [`EnvSchema::check`].
    pub fn check(&self, env: &EnvRef, raw: &[u8]) -> Result<Option<Violations>> {
        match self.get(env) {
            Some(s) => s.check(env, raw),
            None => Ok(None),
        }
    }

    /// Checks `raw` against the schema of `env` on a blocking thread.
    ///
    /// # Errors
    /// As [`EnvSchema::check`].
    pub async fn check_blocking(
        &self,
        env: &EnvRef,
        raw: bytes::Bytes,
    ) -> Result<Option<Violations>> {
        if self.get(env).is_none() {
            return Ok(None);
        }
        let (schemas, env) = (self.clone(), env.clone());
        tokio::task::spawn_blocking(move || schemas.check(&env, &raw))
            .await
            .map_err(|e| Error::internal(format!("schema check task failed: {e}")))?
    }

    /// Starts compiling the schema of `env` on a blocking thread, once, when it has one
    /// not yet compiled: a check that first parses the document then finds it compiled,
    /// or compiling (and waits for it). The first compile in a process also builds
    /// `jsonschema`'s validator of draft 2020-12's meta-schema, which checks the schema:
    /// 1.4 to 2.5 ms of CPU with it, about as long as parsing the 1.32 MB export
    /// (docs/PERFORMANCE.md). A schema that does not compile keeps its error for the
    /// check to report. Call it inside a tokio runtime; the handle is `None` when there
    /// is nothing to start.
    pub fn prepare(&self, env: &EnvRef) -> Option<tokio::task::JoinHandle<()>> {
        let schema = self.get(env)?;
        if schema.borrowed.get().is_some() || schema.preparing.swap(true, Ordering::Relaxed) {
            return None;
        }
        let (schemas, env) = (self.clone(), env.clone());
        Some(tokio::task::spawn_blocking(move || {
            if let Some(s) = schemas.get(&env) {
                let _ = s.borrowed_validator(&env);
            }
        }))
    }

    /// Reads and compiles every schema (for `config check`): the environments and
    /// their schema files.
    ///
    /// # Errors
    /// `Config` naming the environment, the file and what is wrong with it.
    pub fn compile_all(&self) -> Result<Vec<(EnvRef, PathBuf)>> {
        self.envs
            .iter()
            .map(|(env, s)| {
                s.validator(env)?;
                Ok((env.clone(), s.config.file.clone()))
            })
            .collect()
    }
}

impl EnvSchema {
    /// What a backup does with a configuration that fails it.
    #[must_use]
    pub fn on_backup(&self) -> OnBackup {
        self.config.on_backup
    }

    /// The schema file.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.config.file
    }

    fn validator(&self, env: &EnvRef) -> Result<Arc<jsonschema::Validator>> {
        self.compiled
            .get_or_init(|| compile(&self.config.file).map(Arc::new))
            .clone()
            .map_err(|e| Error::config(format!("apps.{}.envs.{}.schema: {e}", env.app, env.env)))
    }

    fn borrowed_validator(
        &self,
        env: &EnvRef,
    ) -> Result<Arc<jsonschema::Validator<doc::Borrowed>>> {
        self.borrowed
            .get_or_init(|| compile(&self.config.file).map(Arc::new))
            .clone()
            .map_err(|e| Error::config(format!("apps.{}.envs.{}.schema: {e}", env.app, env.env)))
    }

    /// Checks `raw` (already known to be JSON) against the schema: `None` if it passes.
    /// CPU-bound: call it off the async runtime for large documents.
    ///
    /// # Errors
    /// `Config` if the schema can't be read or compiled; `InvalidInput` if `raw` is not
    /// JSON.
    pub fn check(&self, env: &EnvRef, raw: &[u8]) -> Result<Option<Violations>> {
        self.check_parsed(env, raw, Doc::parse(raw).as_ref())
    }

    /// [`EnvSchema::check`] of `raw`, already parsed as `doc` when [`Doc::parse`] could:
    /// a document that passes is known from `doc` alone; one that fails (or was not
    /// parsed) is parsed into a `serde_json::Value` to name its violations.
    ///
    /// # Errors
    /// As [`EnvSchema::check`].
    pub fn check_parsed(
        &self,
        env: &EnvRef,
        raw: &[u8],
        doc: Option<&Doc<'_>>,
    ) -> Result<Option<Violations>> {
        // Only the borrowed representation's validator is compiled for a document that
        // passes (each compilation reads the file and checks the schema itself);
        // `check_value` compiles its own to name a failing document's violations.
        if let Some(doc) = doc
            && self.borrowed_validator(env)?.is_valid(doc.root())
        {
            return Ok(None);
        }
        let doc: serde_json::Value = serde_json::from_slice(raw)
            .map_err(|e| Error::invalid(format!("the configuration of {env} is not JSON: {e}")))?;
        self.check_value(env, &doc)
    }

    /// Checks a document already parsed (backup parses once for this and its JSON
    /// check) against the schema: `None` if it passes. CPU-bound.
    ///
    /// # Errors
    /// `Config` if the schema can't be read or compiled.
    pub fn check_value(&self, env: &EnvRef, doc: &serde_json::Value) -> Result<Option<Violations>> {
        let validator = self.validator(env)?;
        if validator.is_valid(doc) {
            return Ok(None);
        }
        let mut count = 0u64;
        let mut first = Vec::with_capacity(SHOWN_VIOLATIONS);
        for e in validator.iter_errors(doc) {
            count += 1;
            if first.len() < SHOWN_VIOLATIONS {
                // The instance itself is shown only when it is a scalar: a whole
                // object or array would make the message as large as the document.
                let message = if e.instance().is_object() || e.instance().is_array() {
                    e.masked_with("the value").to_string()
                } else {
                    e.to_string()
                };
                first.push(Violation {
                    pointer: e.instance_path().as_str().to_string(),
                    message: shorten(&message, 200),
                });
            }
        }
        Ok(Some(Violations {
            schema: self.config.file.display().to_string(),
            count,
            first,
        }))
    }
}

/// Reads and compiles a schema file for the representation `F`, naming the file in the
/// error.
fn compile<F: jsonschema::json::Json>(
    path: &Path,
) -> std::result::Result<jsonschema::Validator<F>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the schema file {}: {e}", path.display()))?;
    let schema: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("the schema file {} is not JSON: {e}", path.display()))?;
    // Draft 2020-12 unless the schema's `$schema` names another draft.
    jsonschema::options_for::<F>()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| {
            format!(
                "the schema file {} is not a valid schema: {e}",
                path.display()
            )
        })
}

/// `text` cut to at most `max` characters, marked with an ellipsis when cut.
#[must_use]
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

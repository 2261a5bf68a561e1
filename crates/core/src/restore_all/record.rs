//! The run record: one JSON object per restore-all run
//! ([`layout::restore_all_run_key`]), created once and then rewritten only by
//! compare-and-swap on its etag as environments finish, so that a resumed or a
//! concurrent writer never loses another's results.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Decision, EnvPlan, Point, SkipReason};
use crate::error::{Error, ErrorKind, Hint, Result};
use crate::events::Actor;
use crate::layout;
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Environments back to a point.
    Restore,
    /// Environments back to what was live before another run.
    Undo,
}

/// Where one environment of a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not done yet.
    Pending,
    /// Pushed and confirmed.
    Restored,
    /// Live already held the version.
    Unchanged,
    /// Left alone (see the reason).
    Skipped,
    /// Failed (see the reason); a resume tries it again.
    Failed,
}

impl Status {
    /// Whether the environment is finished for good (a resume leaves it alone).
    #[must_use]
    pub fn is_done(self) -> bool {
        matches!(self, Self::Restored | Self::Unchanged | Self::Skipped)
    }
}

/// One environment of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvRun {
    /// Where it stands.
    pub status: Status,
    /// The version it goes to (`None` until found).
    pub version: Option<u64>,
    /// Where its live configuration is.
    pub target: Option<String>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// The error kind's code or the skip reason, for machines.
    pub code: Option<String>,
    /// The snapshot that holds what was live before the restore (the undo point).
    pub pre_restore: Option<u64>,
    /// How many restores of it were attempted.
    #[serde(default)]
    pub attempts: u32,
}

/// A restore-all run, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// What it does.
    pub kind: RunKind,
    /// The run it undoes (undo runs).
    pub undoes: Option<String>,
    /// The point it restores to (restore runs).
    pub point: Option<Point>,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// Who started it.
    pub actor: Actor,
    /// The environments it was asked for (restore runs): rerunning the same command
    /// finds the run again by it and its point, and resumes it while unfinished.
    #[serde(default)]
    pub selection: Option<Selection>,
    /// Every environment it covers, by `app/env`.
    pub envs: BTreeMap<String, EnvRun>,
}

/// Which environments a restore run was asked for, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Selection {
    /// Every environment.
    #[serde(default)]
    pub all: bool,
    /// Only these apps (sorted).
    #[serde(default)]
    pub apps: Vec<String>,
    /// The env name pattern.
    #[serde(default)]
    pub pattern: Option<String>,
}

impl Selection {
    /// The selection, with its apps sorted and deduplicated so that the order they
    /// were given in does not matter.
    #[must_use]
    pub fn new(all: bool, mut apps: Vec<String>, pattern: Option<String>) -> Self {
        apps.sort();
        apps.dedup();
        Self { all, apps, pattern }
    }
}

impl RunRecord {
    /// A new record with a fresh id, from a plan.
    #[must_use]
    pub fn from_plan(kind: RunKind, plans: &[EnvPlan], actor: Actor) -> Self {
        let now = Utc::now();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &suffix[..6]);
        let envs = plans
            .iter()
            .map(|p| {
                let mut run = EnvRun {
                    status: Status::Pending,
                    version: p.version(),
                    target: p.target.clone(),
                    reason: None,
                    code: None,
                    pre_restore: None,
                    attempts: 0,
                };
                match &p.decision {
                    Decision::Restore { .. } | Decision::Resolved { .. } => {}
                    Decision::Unchanged { .. } => run.status = Status::Unchanged,
                    Decision::Skip { reason, detail } => {
                        run.status = Status::Skipped;
                        run.reason = Some(detail.clone());
                        run.code = Some(skip_code(*reason));
                    }
                    Decision::Fail { error, code, .. } => {
                        run.status = Status::Failed;
                        run.reason = Some(error.clone());
                        run.code = Some(code.clone());
                    }
                }
                (p.env.clone(), run)
            })
            .collect();
        Self {
            id,
            kind,
            undoes: None,
            point: None,
            created_at: now,
            updated_at: now,
            actor,
            selection: None,
            envs,
        }
    }

    /// Whether every environment is done for good (none pending or failed).
    #[must_use]
    pub fn finished(&self) -> bool {
        self.envs.values().all(|e| e.status.is_done())
    }

    /// How many environments stand at `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> usize {
        self.envs.values().filter(|e| e.status == status).count()
    }

    fn encode(&self) -> Result<Bytes> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("cannot encode run record {}: {e}", self.id)))
    }
}

/// The machine code of a skip reason.
pub(crate) fn skip_code(reason: SkipReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Checks a run id given by a user: letters, digits and `-`.
///
/// # Errors
/// `InvalidInput` naming the id.
pub fn check_run_id(id: &str) -> Result<()> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{id:?} is not a restore-all run id (such as 20261130T101500Z-a1b2c3)"
        )))
    }
}

impl Vault {
    /// Stores a new run record (create-only); returns its etag.
    ///
    /// # Errors
    /// `AlreadyExists` if the id is taken; store errors.
    pub async fn create_run(&self, record: &RunRecord) -> Result<String> {
        self.ensure_marker().await?;
        self.store()
            .put(
                &layout::restore_all_run_key(&record.id),
                record.encode()?,
                &Metadata::new(),
                PutMode::Create,
            )
            .await
            .map_err(|e| e.context(format!("cannot record restore-all run {}", record.id)))
    }

    /// Reads a run record and its etag.
    ///
    /// # Errors
    /// `NotFound` naming the id; `Corrupt` if unreadable; store errors.
    pub async fn load_run(&self, id: &str) -> Result<(RunRecord, String)> {
        check_run_id(id)?;
        let key = layout::restore_all_run_key(id);
        let obj = self.store().get(&key).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(format!(
                    "there is no restore-all run {id} in {}",
                    self.store().describe()
                ))
                .with_next(Hint::text("the run id is printed when a run starts"))
            } else {
                e
            }
        })?;
        let record = serde_json::from_slice(&obj.bytes)
            .map_err(|e| Error::corrupt(format!("run record {key} is unreadable: {e}")))?;
        Ok((record, obj.info.etag))
    }

    /// The newest restore run with this selection and point, if it is unfinished (some
    /// environments pending or failed): what rerunning the same command resumes. A
    /// finished newest run means a rerun starts afresh. Run ids begin with their start
    /// time, so the newest is the last key; at most the 100 newest runs are read.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for an unreadable record.
    pub async fn unfinished_run(
        &self,
        selection: &Selection,
        point: &Point,
    ) -> Result<Option<(RunRecord, String)>> {
        let prefix = layout::RESTORE_ALL_RUNS_PREFIX;
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().list(prefix, after.as_deref(), 1000).await?;
            for o in &page.objects {
                if let Some(id) = o
                    .key
                    .strip_prefix(prefix)
                    .and_then(|k| k.strip_suffix(".json"))
                    .filter(|id| check_run_id(id).is_ok())
                {
                    ids.push(id.to_string());
                }
            }
            match page.objects.last() {
                Some(last) if page.truncated => after = Some(last.key.clone()),
                _ => break,
            }
        }
        ids.sort();
        for id in ids.iter().rev().take(100) {
            let (record, etag) = self.load_run(id).await?;
            if record.kind == RunKind::Restore
                && record.selection.as_ref() == Some(selection)
                && record.point.as_ref() == Some(point)
            {
                return Ok((!record.finished()).then_some((record, etag)));
            }
        }
        Ok(None)
    }

    /// Applies `updates` to the stored record by compare-and-swap, starting from the
    /// etag `etag`; on a lost race re-reads the record and applies them again. Returns
    /// the record written and its new etag.
    ///
    /// # Errors
    /// Store errors.
    pub async fn update_run(
        &self,
        id: &str,
        mut current: (RunRecord, String),
        updates: &BTreeMap<String, EnvRun>,
    ) -> Result<(RunRecord, String)> {
        let key = layout::restore_all_run_key(id);
        for _ in 0..8 {
            let (mut record, etag) = current;
            for (env, run) in updates {
                record.envs.insert(env.clone(), run.clone());
            }
            record.updated_at = Utc::now();
            match self
                .store()
                .put(
                    &key,
                    record.encode()?,
                    &Metadata::new(),
                    PutMode::Update { etag },
                )
                .await
            {
                Ok(etag) => return Ok((record, etag)),
                Err(e) if e.is_conflict() => current = self.load_run(id).await?,
                Err(e) => return Err(e.context(format!("cannot update run record {id}"))),
            }
        }
        Err(Error::precondition(format!(
            "run record {id} kept changing while being updated: another run of it is going on"
        )))
    }
}

//! The run-level audit events of a restore-all: one when a run starts (or is resumed)
//! and one when it ends, each with the counts, stored next to the run record at
//! `runs/restore-all/<run>/events/`. Each environment's restore also records its own
//! event (naming the run), as a single restore does.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{Point, RunKind, RunRecord, Selection, Status};
use crate::error::{Error, Result};
use crate::events::Actor;
use crate::layout;
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// When in a run an event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// The run started, or was resumed.
    Start,
    /// The run ended (every environment it tried has a result).
    End,
}

/// A run-level audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Start or end.
    pub phase: RunPhase,
    /// The run id.
    pub run: String,
    /// What the run does.
    pub kind: RunKind,
    /// Whether this start resumes an earlier, unfinished start of the run.
    pub resumed: bool,
    /// Who started (or resumed) it.
    pub actor: Actor,
    /// The point (restore runs).
    pub point: Option<Point>,
    /// The run it undoes (undo runs).
    pub undoes: Option<String>,
    /// The environments asked for (restore runs).
    pub selection: Option<Selection>,
    /// Environments in the run.
    pub envs: usize,
    /// Environments restored so far.
    pub restored: usize,
    /// Environments whose live already held the version.
    pub unchanged: usize,
    /// Environments left alone.
    pub skipped: usize,
    /// Environments failed (or, at the start, still to do).
    pub failed: usize,
    /// Environments still to do (pending or failed, at the start).
    pub todo: usize,
}

impl RunEvent {
    /// The event of `record` as it stands, at `phase`, by `actor`.
    #[must_use]
    pub fn of(record: &RunRecord, phase: RunPhase, actor: &Actor, resumed: bool) -> Self {
        Self {
            at: Utc::now(),
            phase,
            run: record.id.clone(),
            kind: record.kind,
            resumed,
            actor: actor.clone(),
            point: record.point.clone(),
            undoes: record.undoes.clone(),
            selection: record.selection.clone(),
            envs: record.envs.len(),
            restored: record.count(Status::Restored),
            unchanged: record.count(Status::Unchanged),
            skipped: record.count(Status::Skipped),
            failed: record.count(Status::Failed),
            todo: record.envs.values().filter(|e| !e.status.is_done()).count(),
        }
    }
}

fn events_prefix(id: &str) -> String {
    format!("{}{id}/events/", layout::RESTORE_ALL_RUNS_PREFIX)
}

impl Vault {
    /// Records a run-level event; a failure is logged, not returned (the run goes on,
    /// its record and the environments' own events stand).
    pub async fn record_run_event(&self, event: &RunEvent) {
        tracing::info!(run = %event.run, phase = ?event.phase, envs = event.envs,
            restored = event.restored, unchanged = event.unchanged, skipped = event.skipped,
            failed = event.failed, todo = event.todo, "restore-all run event");
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let key = format!(
            "{}{}-{}-{}.json",
            events_prefix(&event.run),
            event.at.format("%Y%m%dT%H%M%S%.3fZ"),
            match event.phase {
                RunPhase::Start => "start",
                RunPhase::End => "end",
            },
            &suffix[..6]
        );
        let written = match serde_json::to_vec(event) {
            Ok(body) => {
                self.store()
                    .put(&key, Bytes::from(body), &Metadata::new(), PutMode::Create)
                    .await
            }
            Err(e) => Err(Error::internal(format!("cannot encode a run event: {e}"))),
        };
        if let Err(e) = written {
            tracing::warn!(run = %event.run, error = %e.report(),
                "could not record the restore-all run event");
        }
    }

    /// The run-level events of run `id`, oldest first.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed id; store errors; `Corrupt` for an unreadable
    /// event.
    pub async fn run_events(&self, id: &str) -> Result<Vec<RunEvent>> {
        super::record::check_run_id(id)?;
        let prefix = events_prefix(id);
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().list(&prefix, after.as_deref(), 1000).await?;
            keys.extend(page.objects.iter().map(|o| o.key.clone()));
            match page.objects.last() {
                Some(last) if page.truncated => after = Some(last.key.clone()),
                _ => break,
            }
        }
        futures::stream::iter(keys)
            .map(|key| async move {
                let obj = self.store().get(&key).await?;
                serde_json::from_slice(&obj.bytes)
                    .map_err(|e| Error::corrupt(format!("run event {key} is unreadable: {e}")))
            })
            .buffered(8)
            .try_collect()
            .await
    }
}

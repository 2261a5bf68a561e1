//! Listing restore-all runs: newest first, a bounded page at a time, each as a summary
//! (id, start, point, selection, counts by status, finished or not).
//!
//! Run ids begin with their start time (`20261130T101500Z-a1b2c3`), so the key order
//! under [`layout::RESTORE_ALL_RUNS_PREFIX`] is the start order and the newest are the
//! last keys. A page reads only its own records, side by side, and parses of each only
//! the head and every environment's status (not its target, reason or undo point).

use std::fmt;

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::Point;
use super::record::{RunKind, Selection, Status, check_run_id};
use crate::error::{Error, ErrorKind, Hint, Result};
use crate::events::Actor;
use crate::layout;
use crate::vault::Vault;

/// The most runs one page holds.
pub const MAX_RUNS_PAGE: usize = 100;

/// How many run records are read at once.
const READ_AT_ONCE: usize = 8;

/// Environments of a run, counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    /// Every environment in the run.
    pub envs: usize,
    /// Pushed and confirmed.
    pub restored: usize,
    /// Live already held the version.
    pub unchanged: usize,
    /// Left alone.
    pub skipped: usize,
    /// Failed (a resume retries them).
    pub failed: usize,
    /// Not done yet.
    pub pending: usize,
}

impl StatusCounts {
    fn add(&mut self, status: Status) {
        self.envs += 1;
        match status {
            Status::Pending => self.pending += 1,
            Status::Restored => self.restored += 1,
            Status::Unchanged => self.unchanged += 1,
            Status::Skipped => self.skipped += 1,
            Status::Failed => self.failed += 1,
        }
    }
}

/// The `envs` map of a stored record, read as counts: each key is skipped and each
/// value's `status` is the only field read.
impl<'de> Deserialize<'de> for StatusCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct StatusOnly {
            status: Status,
        }
        struct Counter;
        impl<'de> Visitor<'de> for Counter {
            type Value = StatusCounts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of environments to their run status")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<StatusCounts, A::Error> {
                let mut counts = StatusCounts::default();
                while let Some((IgnoredAny, env)) = map.next_entry::<IgnoredAny, StatusOnly>()? {
                    counts.add(env.status);
                }
                Ok(counts)
            }
        }
        d.deserialize_map(Counter)
    }
}

/// One run at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// What it does.
    pub kind: RunKind,
    /// The run it undoes (undo runs).
    pub undoes: Option<String>,
    /// The point it restores to (restore runs).
    pub point: Option<Point>,
    /// The environments it was asked for (restore runs).
    pub selection: Option<Selection>,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When its record was last written.
    pub updated_at: DateTime<Utc>,
    /// Who started it.
    pub actor: Actor,
    /// Its environments, counted by status.
    pub counts: StatusCounts,
    /// Whether every environment is done for good (none pending or failed).
    pub finished: bool,
}

/// What a summary reads of a stored record ([`super::RunRecord`]): its head, and of
/// `envs` only the statuses.
#[derive(Deserialize)]
struct Head {
    id: String,
    kind: RunKind,
    #[serde(default)]
    undoes: Option<String>,
    #[serde(default)]
    point: Option<Point>,
    #[serde(default)]
    selection: Option<Selection>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    actor: Actor,
    envs: StatusCounts,
}

impl From<Head> for RunSummary {
    fn from(h: Head) -> Self {
        Self {
            finished: h.envs.pending == 0 && h.envs.failed == 0,
            id: h.id,
            kind: h.kind,
            undoes: h.undoes,
            point: h.point,
            selection: h.selection,
            created_at: h.created_at,
            updated_at: h.updated_at,
            actor: h.actor,
            counts: h.envs,
        }
    }
}

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

impl Vault {
    /// The restore-all runs in the store, newest first: at most `limit` (1 to
    /// [`MAX_RUNS_PAGE`]) of them, only those started before run `before` when given.
    /// Lists the run keys, then reads the page's records side by side; a record deleted
    /// in between is left out.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed `before` or a `limit` out of range; store errors;
    /// `Corrupt` naming an unreadable record.
    pub async fn list_runs(&self, before: Option<&str>, limit: usize) -> Result<RunPage> {
        if let Some(b) = before {
            check_run_id(b)?;
        }
        if !(1..=MAX_RUNS_PAGE).contains(&limit) {
            return Err(Error::invalid(format!(
                "a page of restore-all runs holds 1 to {MAX_RUNS_PAGE}, not {limit}"
            )));
        }
        let mut ids = self.run_ids().await?;
        if let Some(b) = before {
            ids.retain(|id| id.as_str() < b);
        }
        let more = ids.len() > limit;
        let page: Vec<String> = ids.into_iter().rev().take(limit).collect();
        let next_before = if more { page.last().cloned() } else { None };
        let runs: Vec<Option<RunSummary>> = futures::stream::iter(page)
            .map(|id| self.run_summary(id))
            .buffered(READ_AT_ONCE)
            .try_collect()
            .await?;
        Ok(RunPage {
            runs: runs.into_iter().flatten().collect(),
            next_before,
        })
    }

    /// Every run id in the store, oldest first.
    async fn run_ids(&self) -> Result<Vec<String>> {
        let prefix = layout::RESTORE_ALL_RUNS_PREFIX;
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().list(prefix, after.as_deref(), 1000).await?;
            ids.extend(page.objects.iter().filter_map(|o| {
                o.key
                    .strip_prefix(prefix)
                    .and_then(|k| k.strip_suffix(".json"))
                    .filter(|id| check_run_id(id).is_ok())
                    .map(str::to_string)
            }));
            match page.objects.last() {
                Some(last) if page.truncated => after = Some(last.key.clone()),
                _ => break,
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// One run's summary; `None` if its record is gone.
    async fn run_summary(&self, id: String) -> Result<Option<RunSummary>> {
        let key = layout::restore_all_run_key(&id);
        let obj = match self.store().get(&key).await {
            Ok(obj) => obj,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.context(format!("cannot read restore-all run {id}"))),
        };
        let head: Head = serde_json::from_slice(&obj.bytes).map_err(|e| {
            Error::corrupt(format!("run record {key} is unreadable: {e}")).with_next(Hint::text(
                format!("repair or delete {key}: the list of runs stops at it"),
            ))
        })?;
        Ok(Some(head.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::Bytes;
    use chrono::{Duration, TimeZone as _};

    use super::*;
    use crate::restore_all::{EnvRun, RunRecord};
    use crate::store::{LocalStore, Metadata, PutMode};
    use crate::vault::VaultOptions;

    fn vault(dir: &tempfile::TempDir) -> Vault {
        let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
        Vault::new(store, VaultOptions::default())
    }

    fn env_run(status: Status) -> EnvRun {
        EnvRun {
            status,
            version: Some(3),
            target: Some("file:/tmp/live.json".into()),
            reason: (status == Status::Failed).then(|| "the platform answered 503".into()),
            code: None,
            pre_restore: (status == Status::Restored).then_some(7),
            attempts: 1,
        }
    }

    /// Run `n` (started n minutes after 10:00) with the given statuses.
    fn record(n: i64, statuses: &[Status]) -> RunRecord {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap() + Duration::minutes(n);
        let envs: BTreeMap<String, EnvRun> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("app{i}/prod"), env_run(*s)))
            .collect();
        RunRecord {
            id: format!("{}-abc{n:03}", at.format("%Y%m%dT%H%M%SZ")),
            kind: if n == 4 {
                RunKind::Undo
            } else {
                RunKind::Restore
            },
            undoes: (n == 4).then(|| "20261130T100300Z-abc003".into()),
            point: (n != 4).then_some(Point::CurrentRelease),
            created_at: at,
            updated_at: at + Duration::seconds(30),
            actor: Actor::default(),
            selection: (n != 4).then(|| Selection::new(true, Vec::new(), None)),
            envs,
        }
    }

    #[tokio::test]
    async fn pages_newest_first_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(&dir);
        assert_eq!(
            vault.list_runs(None, 10).await.unwrap(),
            RunPage {
                runs: Vec::new(),
                next_before: None
            }
        );
        use Status::{Failed, Pending, Restored, Skipped, Unchanged};
        let records = [
            record(0, &[Restored, Restored, Skipped]),
            record(1, &[Failed, Restored]),
            record(2, &[Pending, Pending, Restored, Unchanged]),
            record(3, &[Restored]),
            record(4, &[Restored]),
        ];
        for r in &records {
            vault.create_run(r).await.unwrap();
            // A run's events sit below its id: they are not runs.
            vault
                .store()
                .put(
                    &format!(
                        "{}{}/events/x-start.json",
                        layout::RESTORE_ALL_RUNS_PREFIX,
                        r.id
                    ),
                    Bytes::from_static(b"{}"),
                    &Metadata::new(),
                    PutMode::Create,
                )
                .await
                .unwrap();
        }

        let first = vault.list_runs(None, 2).await.unwrap();
        let ids: Vec<&str> = first.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [records[4].id.as_str(), records[3].id.as_str()]);
        assert_eq!(first.next_before.as_deref(), Some(records[3].id.as_str()));
        let undo = &first.runs[0];
        assert_eq!(undo.kind, RunKind::Undo);
        assert_eq!(undo.undoes.as_deref(), Some(records[3].id.as_str()));
        assert_eq!(undo.updated_at, records[4].updated_at);

        let second = vault
            .list_runs(first.next_before.as_deref(), 2)
            .await
            .unwrap();
        let [two, one] = second.runs.as_slice() else {
            panic!("{second:?}")
        };
        assert_eq!(two.id, records[2].id);
        assert_eq!(
            two.counts,
            StatusCounts {
                envs: 4,
                restored: 1,
                unchanged: 1,
                skipped: 0,
                failed: 0,
                pending: 2
            }
        );
        assert!(!two.finished, "pending environments: not finished");
        assert_eq!(one.counts.failed, 1);
        assert!(!one.finished, "a failed environment: not finished");
        assert_eq!(one.point, Some(Point::CurrentRelease));
        assert_eq!(one.selection, records[1].selection);

        let last = vault
            .list_runs(second.next_before.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(last.runs.len(), 1);
        assert_eq!(last.next_before, None, "the oldest page has no next");
        assert!(last.runs[0].finished);
        assert_eq!(last.runs[0].counts.restored, 2);
        assert_eq!(last.runs[0].counts.skipped, 1);

        // A page as large as what is left has no next page either.
        assert_eq!(vault.list_runs(None, 5).await.unwrap().next_before, None);
        assert_eq!(vault.list_runs(None, 5).await.unwrap().runs.len(), 5);
    }

    #[tokio::test]
    async fn refuses_bad_input_and_names_an_unreadable_record() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(&dir);
        for limit in [0, MAX_RUNS_PAGE + 1] {
            let e = vault.list_runs(None, limit).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        }
        let e = vault.list_runs(Some("../x"), 5).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

        vault
            .store()
            .put(
                &layout::restore_all_run_key("20261130T100000Z-bad000"),
                Bytes::from_static(b"{\"id\": 1}"),
                &Metadata::new(),
                PutMode::Create,
            )
            .await
            .unwrap();
        let e = vault.list_runs(None, 5).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("20261130T100000Z-bad000"), "{e}");
    }
}

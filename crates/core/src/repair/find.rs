//! Finding gaps: lists what each environment holds (snapshots, index entries, the
//! release pointer and history, pins, events, leftover files) and names what a killed
//! writer left missing, with the record that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Fix, Gap, GapKind};
use crate::error::{ErrorKind, Result};
use crate::events::{Action, Actor, Event, hostname};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::{SnapshotMeta, Trigger};
use crate::release::ReleaseKind;
use crate::vault::Vault;

/// How many events or pins are read at once.
const CONCURRENCY: usize = 16;

/// What the audit log of one environment records.
#[derive(Default)]
struct Recorded {
    backups: BTreeSet<u64>,
    releases: BTreeSet<u64>,
    restores_from: BTreeSet<u64>,
    promotes: BTreeSet<u64>,
    pruned: Vec<(u64, u64)>,
    pins: BTreeMap<u64, Vec<DateTime<Utc>>>,
    unpins: BTreeMap<u64, Vec<DateTime<Utc>>>,
}

impl Recorded {
    fn add(&mut self, e: &Event) {
        let d = &e.details;
        let num = |k: &str| d.get(k).and_then(Value::as_u64);
        match e.action {
            Action::Backup => self.backups.extend(e.version),
            Action::Release | Action::Rollback => self.releases.extend(num("seq")),
            Action::Restore => self.restores_from.extend(
                d.pointer("/pre_restore/snapshot/version")
                    .and_then(Value::as_u64),
            ),
            Action::Prune => {
                if let (Some(lo), Some(hi)) = (num("oldest_deleted"), num("newest_deleted")) {
                    self.pruned.push((lo.min(hi), lo.max(hi)));
                }
            }
            Action::Pin => self
                .pins
                .entry(e.version.unwrap_or(0))
                .or_default()
                .push(e.at),
            Action::Promote => self.promotes.extend(e.version),
            Action::Unpin => self
                .unpins
                .entry(e.version.unwrap_or(0))
                .or_default()
                .push(e.at),
            Action::Rekey => {}
        }
    }

    fn pruned(&self, v: u64) -> bool {
        self.pruned.iter().any(|(lo, hi)| (*lo..=*hi).contains(&v))
    }
}

impl Vault {
    /// The gaps of `env` older than `grace` (see [`crate::repair`]): what `verify`
    /// names and `repair` closes.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the release pointer or history can't be read.
    pub async fn find_gaps(&self, env: &EnvRef, grace: Duration) -> Result<Vec<Gap>> {
        self.gaps(env, grace, None).await
    }

    pub(super) async fn gaps(
        &self,
        env: &EnvRef,
        grace: Duration,
        by: Option<&Actor>,
    ) -> Result<Vec<Gap>> {
        let now = Utc::now();
        let cutoff = now - TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX);
        let mut gaps = Vec::new();
        let recorded = self.recorded(env).await?;
        let (snapshots, index) = tokio::join!(
            self.describe_snapshots(env, None, usize::MAX),
            self.index_entries(env, None, usize::MAX)
        );
        let snapshots: Vec<SnapshotMeta> = snapshots?
            .into_iter()
            .filter_map(|(_, meta, _)| meta.ok()) // Unreadable ones are verify's `bad`.
            .collect();
        let present: BTreeSet<u64> = snapshots.iter().map(|m| m.version).collect();
        let reconstruct = |action, at, version: Option<u64>, from: String, details: Value| {
            reconstructed(env, action, at, version, &from, details, by, now)
        };

        for meta in snapshots.iter().filter(|m| m.created_at <= cutoff) {
            let v = meta.version;
            if !index.contains_key(&v)
                && crate::index::encode(meta)
                    .and_then(|p| layout::index_key(env, v, &p))
                    .is_some()
            {
                gaps.push(gap(
                    GapKind::MissingIndexEntry,
                    &meta.key,
                    Some(v),
                    format!("snapshot v{v} has no listing index entry"),
                    Fix::WriteIndexEntry(Box::new(meta.clone())),
                ));
            }
            if !recorded.backups.contains(&v) {
                let details = json!({
                    "trigger": meta.trigger, "sha256": meta.sha256,
                    "size": meta.size, "source": meta.source,
                });
                let from = format!("the metadata of snapshot v{v} ({})", meta.key);
                let (key, event) =
                    reconstruct(Action::Backup, meta.created_at, Some(v), from, details);
                let event = Event {
                    actor: Actor {
                        who: meta.author.clone(),
                        ..event.actor
                    },
                    ..event
                };
                gaps.push(gap(
                    GapKind::MissingEvent,
                    &meta.key,
                    Some(v),
                    format!("snapshot v{v} has no backup event"),
                    Fix::WriteEvent {
                        key,
                        event: Box::new(event),
                    },
                ));
            }
            if meta.trigger == Trigger::PreRestore && !recorded.restores_from.contains(&v) {
                let details = json!({
                    "outcome": "interrupted",
                    "live_after": "unknown",
                    "note": "the restore was interrupted after saving what was live as this \
                             snapshot; whether it pushed is unknown: compare live with a dry run",
                    "pre_restore": {"kind": "saved", "snapshot": meta},
                    "message": meta.message,
                });
                let from = format!("pre-restore snapshot v{v} ({})", meta.key);
                let (key, event) =
                    reconstruct(Action::Restore, meta.created_at, None, from, details);
                let event = Event {
                    actor: Actor {
                        who: meta.author.clone(),
                        ..event.actor
                    },
                    ..event
                };
                gaps.push(gap(
                    GapKind::MissingEvent,
                    &meta.key,
                    Some(v),
                    format!("pre-restore snapshot v{v} has no restore event"),
                    Fix::WriteEvent {
                        key,
                        event: Box::new(event),
                    },
                ));
            }
            if meta.trigger == Trigger::Promote && !recorded.promotes.contains(&v) {
                gaps.push(self.promote_gap(meta, &reconstruct));
            }
        }
        for (v, entry) in &index {
            if !present.contains(v) && entry.meta.created_at <= cutoff {
                gaps.push(gap(
                    GapKind::DanglingIndexEntry,
                    &entry.key,
                    Some(*v),
                    format!("the listing index entry of v{v} names a snapshot that is gone"),
                    Fix::DeleteIndexEntry {
                        entry: entry.key.clone(),
                        version: *v,
                    },
                ));
            }
        }

        // Deleted versions: every hole below the latest is a prune's (or a hand's).
        let mut next = 1;
        for &v in &present {
            let hole: Vec<u64> = (next..v).filter(|h| !recorded.pruned(*h)).collect();
            next = v + 1;
            let (Some(&lo), Some(&hi)) = (hole.first(), hole.last()) else {
                continue;
            };
            let Some(after) = snapshots.iter().find(|m| m.version == v) else {
                continue;
            };
            if after.created_at > cutoff {
                continue;
            }
            let details = json!({
                "deleted": hole.len(), "oldest_deleted": lo, "newest_deleted": hi,
                "note": "the time is the earliest the deletion can have happened (when the \
                         next version was taken)",
            });
            let from = format!("the versions missing below v{v}");
            let (key, event) = reconstruct(Action::Prune, after.created_at, None, from, details);
            let what = if lo == hi {
                format!("v{lo}")
            } else {
                format!("v{lo} to v{hi}")
            };
            gaps.push(gap(
                GapKind::MissingEvent,
                &layout::snapshot_key(env, lo),
                Some(lo),
                format!("{what} are deleted, and no prune event records it"),
                Fix::WriteEvent {
                    key,
                    event: Box::new(event),
                },
            ));
        }

        self.release_gaps(env, &recorded, cutoff, &reconstruct, &mut gaps)
            .await?;
        self.pin_gaps(env, &recorded, cutoff, &reconstruct, &mut gaps)
            .await?;
        for l in self
            .store()
            .leftovers(&layout::env_prefix(env), grace)
            .await?
        {
            let what = match l.kind {
                crate::store::LeftoverKind::TempFile => "a temporary file of an interrupted write",
                crate::store::LeftoverKind::OrphanMetadata => {
                    "metadata of an object that was never written or was deleted"
                }
            };
            let path = l.path.clone();
            gaps.push(gap(
                GapKind::LeftoverFile,
                &path,
                None,
                what.into(),
                Fix::RemoveLeftover(l),
            ));
        }
        gaps.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        Ok(gaps)
    }

    async fn release_gaps(
        &self,
        env: &EnvRef,
        recorded: &Recorded,
        cutoff: DateTime<Utc>,
        reconstruct: &(
             dyn Fn(Action, DateTime<Utc>, Option<u64>, String, Value) -> (String, Event) + Sync
         ),
        gaps: &mut Vec<Gap>,
    ) -> Result<()> {
        let (pointer, history) =
            futures::try_join!(self.current_release(env), self.releases(env, usize::MAX))?;
        if let Some(p) = pointer.filter(|p| p.release.released_at <= cutoff) {
            let r = &p.release;
            let label = self.store().head(&layout::label_key(env, &r.label)).await;
            let entry = self.history_entry(env, r.seq).await?;
            let label_missing = matches!(&label, Err(e) if e.kind() == ErrorKind::NotFound);
            if let Err(e) = label
                && e.kind() != ErrorKind::NotFound
            {
                return Err(e);
            }
            if entry.is_none() || label_missing {
                gaps.push(gap(
                    GapKind::MissingReleaseRecord,
                    &layout::release_key(env, r.seq),
                    Some(r.version),
                    format!(
                        "the current release {} has no {}",
                        r.reference(),
                        match (entry.is_none(), label_missing) {
                            (true, true) => "history entry and no label key",
                            (true, false) => "history entry",
                            _ => "label key",
                        }
                    ),
                    Fix::WriteReleaseRecords(Box::new(r.clone())),
                ));
            }
        }
        for r in history.iter().filter(|r| r.released_at <= cutoff) {
            if recorded.releases.contains(&r.seq) {
                continue;
            }
            let action = match r.kind {
                ReleaseKind::Rollback => Action::Rollback,
                _ => Action::Release,
            };
            let details = json!({
                "seq": r.seq, "label": r.label, "kind": r.kind,
                "previous": r.previous, "base": r.base,
            });
            let from = format!("release r{} ({})", r.seq, layout::release_key(env, r.seq));
            let (key, event) = reconstruct(action, r.released_at, Some(r.version), from, details);
            let event = Event {
                actor: Actor {
                    who: r.released_by.clone(),
                    ..event.actor
                },
                ..event
            };
            gaps.push(gap(
                GapKind::MissingEvent,
                &layout::release_key(env, r.seq),
                Some(r.version),
                format!("release {} has no {action} event", r.reference()),
                Fix::WriteEvent {
                    key,
                    event: Box::new(event),
                },
            ));
        }
        Ok(())
    }

    async fn pin_gaps(
        &self,
        env: &EnvRef,
        recorded: &Recorded,
        cutoff: DateTime<Utc>,
        reconstruct: &(
             dyn Fn(Action, DateTime<Utc>, Option<u64>, String, Value) -> (String, Event) + Sync
         ),
        gaps: &mut Vec<Gap>,
    ) -> Result<()> {
        let pins = self.pins(env).await?;
        self.unpin_gaps(env, &pins, recorded, cutoff, reconstruct, gaps);
        let records: Vec<(u64, Result<crate::pin::PinRecord>)> = futures::stream::iter(pins)
            .map(|v| async move {
                let key = layout::pin_key(env, v);
                let record = match self.store().get(&key).await {
                    Ok(obj) => serde_json::from_slice(&obj.bytes).map_err(|e| {
                        crate::error::Error::corrupt(format!("pin {key} is unreadable: {e}"))
                    }),
                    Err(e) => Err(e),
                };
                (v, record)
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for (v, record) in records {
            let record = match record {
                Ok(r) => r,
                // Unpinned meanwhile, or not one jetvault wrote: nothing to tell from it.
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Corrupt) => continue,
                Err(e) => return Err(e),
            };
            let since = record.pinned_at - TimeDelta::milliseconds(1);
            let has_event = recorded
                .pins
                .get(&v)
                .is_some_and(|ats| ats.iter().any(|at| *at >= since));
            if has_event || record.pinned_at > cutoff {
                continue;
            }
            let key = layout::pin_key(env, v);
            let (ekey, event) = reconstruct(
                Action::Pin,
                record.pinned_at,
                Some(v),
                format!("pin {key}"),
                Value::Null,
            );
            let event = Event {
                actor: Actor {
                    who: record.by.clone(),
                    ..event.actor
                },
                ..event
            };
            gaps.push(gap(
                GapKind::MissingEvent,
                &key,
                Some(v),
                format!("the pin of v{v} has no pin event"),
                Fix::WriteEvent {
                    key: ekey,
                    event: Box::new(event),
                },
            ));
        }
        Ok(())
    }

    /// Unpins killed between deleting the pin and recording it: a version whose last
    /// pin event is older than `cutoff`, that is not pinned now (a pin is removed only by
    /// `unpin`), and that has no unpin event since. The rebuilt event is dated 1 ms after
    /// that pin event: the earliest the unpin can have happened.
    fn unpin_gaps(
        &self,
        env: &EnvRef,
        pinned: &BTreeSet<u64>,
        recorded: &Recorded,
        cutoff: DateTime<Utc>,
        reconstruct: &(
             dyn Fn(Action, DateTime<Utc>, Option<u64>, String, Value) -> (String, Event) + Sync
         ),
        gaps: &mut Vec<Gap>,
    ) {
        for (&v, ats) in &recorded.pins {
            let Some(&pinned_at) = ats.iter().max() else {
                continue;
            };
            let unpinned = recorded
                .unpins
                .get(&v)
                .is_some_and(|u| u.iter().any(|at| *at >= pinned_at));
            if pinned.contains(&v) || unpinned || pinned_at > cutoff {
                continue;
            }
            let at = pinned_at + TimeDelta::milliseconds(1);
            let details = json!({
                "note": "the pin is gone and no unpin event recorded its removal; the time \
                         is the earliest the unpin can have happened (just after the last pin)",
                "pinned_at": pinned_at,
            });
            let from = format!("the pin events of v{v} and its missing pin");
            let (key, event) = reconstruct(Action::Unpin, at, Some(v), from, details);
            gaps.push(gap(
                GapKind::MissingEvent,
                &layout::pin_key(env, v),
                Some(v),
                format!("v{v} was unpinned, and no unpin event records it"),
                Fix::WriteEvent {
                    key,
                    event: Box::new(event),
                },
            ));
        }
    }

    /// The missing promote event of a snapshot copied by `promote`: where it came from
    /// is in its source, `promote:<app>/<env>@v<n>`.
    fn promote_gap(
        &self,
        meta: &SnapshotMeta,
        reconstruct: &(
             dyn Fn(Action, DateTime<Utc>, Option<u64>, String, Value) -> (String, Event) + Sync
         ),
    ) -> Gap {
        let v = meta.version;
        let (from, from_version) = meta
            .source
            .as_deref()
            .and_then(|s| s.strip_prefix("promote:"))
            .and_then(|s| s.rsplit_once("@v"))
            .map_or((None, None), |(env, n)| (Some(env), n.parse::<u64>().ok()));
        let details = json!({
            "from": from, "from_version": from_version, "created": true,
            "note": "whether the copy was also released is in the release history",
        });
        let source = format!("the metadata of snapshot v{v} ({})", meta.key);
        let (key, event) = reconstruct(Action::Promote, meta.created_at, Some(v), source, details);
        let event = Event {
            actor: Actor {
                who: meta.author.clone(),
                ..event.actor
            },
            ..event
        };
        gap(
            GapKind::MissingEvent,
            &meta.key,
            Some(v),
            format!("promoted snapshot v{v} has no promote event"),
            Fix::WriteEvent {
                key,
                event: Box::new(event),
            },
        )
    }

    /// Reads every audit event of `env` (an unreadable one is logged and skipped).
    async fn recorded(&self, env: &EnvRef) -> Result<Recorded> {
        let prefix = layout::events_prefix(env);
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().list(&prefix, after.as_deref(), 1000).await?;
            after = page.objects.last().map(|o| o.key.clone());
            keys.extend(page.objects.into_iter().map(|o| o.key));
            if !page.truncated || after.is_none() {
                break;
            }
        }
        let events: Vec<Result<Option<Event>>> = futures::stream::iter(keys)
            .map(|key| async move {
                match self.store().get(&key).await {
                    Ok(obj) => Ok(serde_json::from_slice::<Event>(&obj.bytes)
                        .inspect_err(|e| {
                            tracing::warn!(%key, error = %e, "unreadable audit event skipped");
                        })
                        .ok()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut recorded = Recorded::default();
        for e in events {
            if let Some(e) = e? {
                recorded.add(&e);
            }
        }
        Ok(recorded)
    }
}

fn gap(kind: GapKind, key: &str, version: Option<u64>, detail: String, fix: Fix) -> Gap {
    Gap {
        kind,
        key: key.to_string(),
        version,
        detail,
        fix,
    }
}

/// An event rebuilt by repair, and its key. The event is dated when what it records
/// happened (so it sorts where it belongs), marked `via: repair`, and its details say
/// what it was rebuilt from, when and by whom. The key depends only on the action, the
/// environment, the time and `from`, so that two repairs write one event.
#[allow(clippy::too_many_arguments)]
fn reconstructed(
    env: &EnvRef,
    action: Action,
    at: DateTime<Utc>,
    version: Option<u64>,
    from: &str,
    mut details: Value,
    by: Option<&Actor>,
    now: DateTime<Utc>,
) -> (String, Event) {
    let seed = format!("{action}\n{env}\n{}\n{from}", at.timestamp_millis());
    let id = format!("r{}", &crate::codec::sha256_hex(seed.as_bytes())[..11]);
    let note = json!({
        "by": by,
        "at": now,
        "from": from,
        "host": hostname(),
    });
    match &mut details {
        Value::Object(map) => {
            map.insert("reconstructed".into(), note);
        }
        _ => details = json!({ "reconstructed": note }),
    }
    let event = Event {
        at,
        action,
        env: env.clone(),
        actor: Actor {
            who: None,
            via: "repair".into(),
            from: None,
        },
        version,
        details,
    };
    (layout::event_key(env, at, &id), event)
}

//! What a restore-all costs in store requests per environment, counted by operation
//! with [`CountingStore`]s over the directory store: exact counts for the environments'
//! own keys (`apps/`), so that a request added to the path fails here; the run's record
//! and run-level events (`runs/`), written in batches by time, are counted apart.
//! docs/PERFORMANCE.md, "Platform-wide restore", gives the same figures.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, Utc};

use super::*;
use crate::error::Result;
use crate::events::Actor;
use crate::host_limits::HostLimits;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::live::file::FileTarget;
use crate::store::counting::{Ops, RequestCounts, minus, ops};
use crate::store::{
    Conditional, CountingStore, Leftover, ListPage, LocalStore, Metadata, Object, ObjectInfo,
    PutMode, Store,
};
use crate::testutil::put_snapshot;
use crate::vault::{Vault, VaultOptions};

/// Routes the run's keys (`runs/`) to one counter and everything else to another.
#[derive(Debug)]
struct Split {
    runs: CountingStore,
    data: CountingStore,
}

impl Split {
    fn of(&self, key: &str) -> &CountingStore {
        if key.starts_with("runs/") {
            &self.runs
        } else {
            &self.data
        }
    }
}

#[async_trait]
impl Store for Split {
    fn describe(&self) -> String {
        self.data.describe()
    }
    async fn get(&self, key: &str) -> Result<Object> {
        self.of(key).get(key).await
    }
    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
        self.of(key).get_if_none_match(key, etag).await
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        self.of(key).head(key).await
    }
    async fn put(&self, key: &str, b: Bytes, m: &Metadata, mode: PutMode) -> Result<String> {
        self.of(key).put(key, b, m, mode).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<ListPage> {
        self.of(prefix).list(prefix, after, limit).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        self.of(prefix).list_dirs(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.of(key).delete(key).await
    }
    async fn check(&self) -> Result<()> {
        self.data.check().await
    }
    async fn leftovers(&self, prefix: &str, grace: StdDuration) -> Result<Vec<Leftover>> {
        self.data.leftovers(prefix, grace).await
    }
}

fn good(i: usize) -> Vec<u8> {
    format!("{{\"app\":{i},\"flows\":[1,2,3]}}").into_bytes()
}

fn bad(i: usize) -> Vec<u8> {
    format!("{{\"app\":{i},\"flows\":[]}}").into_bytes()
}

struct World {
    dir: tempfile::TempDir,
    vault: Vault,
    data: Arc<RequestCounts>,
    runs: Arc<RequestCounts>,
    before: chrono::DateTime<Utc>,
    targets: Vec<EnvTarget>,
}

impl World {
    /// `app{i}/prod` for `i < n`: v1 good (two hours ago), and for the `damaged` ones v2
    /// (an hour ago) held live; the others hold v1. Each snapshot has its listing index
    /// entry, as a backup writes it; the vault's marker is checked.
    async fn new(n: usize, damaged: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path().join("s")).unwrap());
        let split = Split {
            runs: CountingStore::new(local.clone()),
            data: CountingStore::new(local.clone()),
        };
        let (runs, data) = (split.runs.counts().clone(), split.data.counts().clone());
        let vault = Vault::new(Arc::new(split), VaultOptions::default());
        let now = Utc::now();
        let mut targets = Vec::new();
        for i in 0..n {
            let env = EnvRef::parse(&format!("app{i}"), "prod").unwrap();
            let m = put_snapshot(local.as_ref(), &env, 1, &good(i), now - Duration::hours(2)).await;
            vault.write_index_entry(&env, &m).await;
            let live = if i < damaged {
                let m =
                    put_snapshot(local.as_ref(), &env, 2, &bad(i), now - Duration::hours(1)).await;
                vault.write_index_entry(&env, &m).await;
                bad(i)
            } else {
                good(i)
            };
            let path = dir.path().join(format!("live{i}.json"));
            std::fs::write(&path, live).unwrap();
            targets.push(EnvTarget {
                env,
                target: Ok(Arc::new(FileTarget::new(path)) as Arc<dyn LiveTarget>),
            });
        }
        vault.ensure_marker().await.unwrap();
        Self {
            dir,
            vault,
            data,
            runs,
            before: now - Duration::minutes(90),
            targets,
        }
    }

    fn live(&self, i: usize) -> Vec<u8> {
        std::fs::read(self.dir.path().join(format!("live{i}.json"))).unwrap()
    }

    fn opts(&self, point: Option<Point>, plans: &[EnvPlan]) -> RunOptions {
        RunOptions {
            concurrency: 4,
            actor: Actor::default(),
            message: None,
            allow_missing_live: true,
            point,
            resume: false,
            latest: latest_of(plans),
            lease: None,
        }
    }

    /// Records `plans` as a run of `kind` and runs it; the requests of the run to the
    /// environments' keys and to the run's.
    async fn run(
        &self,
        kind: RunKind,
        plans: &[EnvPlan],
        point: Option<Point>,
    ) -> (RunReport, Ops, Ops) {
        let by_name = self
            .targets
            .iter()
            .filter_map(|t| Some((t.env.to_string(), t.target.clone().ok()?)))
            .collect();
        let (data, runs) = (ops(&self.data), ops(&self.runs));
        let mut record = RunRecord::from_plan(kind, plans, Actor::default());
        record.point = point.clone();
        let etag = self.vault.create_run(&record).await.unwrap();
        let report = self
            .vault
            .run_restore_all(
                (record, etag),
                &by_name,
                &HostLimits::new(4),
                &self.opts(point, plans),
                &|_, _| {},
            )
            .await;
        (
            report,
            minus(ops(&self.data), data),
            minus(ops(&self.runs), runs),
        )
    }
}

/// The run's own requests: the record created, written at least once more, its start
/// and end events; nothing read back.
fn assert_run_keys(runs: Ops) {
    let (get, head, put, list, delete) = runs;
    assert_eq!((get, head, list, delete), (0, 0, 0, 0), "{runs:?}");
    assert!(
        put >= 4,
        "create, start event, record update(s), end event: {runs:?}"
    );
}

#[tokio::test]
async fn restore_all_and_its_undo_cost_six_requests_per_damaged_environment() {
    // Three damaged environments, one untouched.
    let w = World::new(4, 3).await;
    let point = Point::At(w.before);
    let limits = HostLimits::new(4);

    // The dry run: per environment, the resolution of `--at` from the newest page
    // (a LIST of the snapshots and one of the index), the snapshot read (GET, its
    // metadata with it) and live read; nothing written.
    let before = ops(&w.data);
    let plans = w
        .vault
        .plan_restore_all(&w.targets, &point, 4, &limits, true)
        .await;
    assert_eq!(minus(ops(&w.data), before), (4, 0, 0, 8, 0), "dry run");
    assert_eq!(ops(&w.runs), (0, 0, 0, 0, 0));
    let restore = plans
        .iter()
        .filter(|p| matches!(p.decision, Decision::Restore { .. }))
        .count();
    assert_eq!(restore, 3);

    // A confirmed run: the plan resolves the point only (2 LISTs each).
    let before = ops(&w.data);
    let plans = w
        .vault
        .plan_restore_all(&w.targets, &point, 4, &limits, false)
        .await;
    assert_eq!(
        minus(ops(&w.data), before),
        (0, 0, 0, 8, 0),
        "confirmed run's plan"
    );
    let (report, data, runs) = w.run(RunKind::Restore, &plans, Some(point)).await;
    assert_eq!(
        (report.restored, report.unchanged, report.failed),
        (3, 1, 0)
    );
    // Per damaged environment: GET of the version, no listing (the plan's latest is
    // the pre-restore check), 4 PUTs (the restored snapshot, its index entry, its
    // backup event, the restore event). The untouched one: GET, the restore event,
    // and one `latest` (1 LIST) confirming the history's latest holds live.
    assert_eq!(
        data,
        (3 + 1, 0, 3 * 4 + 1, 1, 0),
        "run (get, head, put, list, delete)"
    );
    assert_run_keys(runs);
    for i in 0..4 {
        assert_eq!(w.live(i), good(i), "app{i}");
    }

    // Its undo: no resolution; each restore's one `latest` (1 LIST) finds the
    // restored snapshot, equal to live; the GET and 4 PUTs as above.
    let before = ops(&w.data);
    let undo_plans = w
        .vault
        .plan_undo(&report.run, &w.targets, 4, &limits, false)
        .await;
    assert_eq!(minus(ops(&w.data), before), (0, 0, 0, 0, 0), "undo plan");
    assert_eq!(undo_plans.len(), 3);
    let (undo, data, runs) = w.run(RunKind::Undo, &undo_plans, None).await;
    assert_eq!((undo.restored, undo.failed), (3, 0));
    assert_eq!(
        data,
        (3, 0, 3 * 4, 3, 0),
        "undo (get, head, put, list, delete)"
    );
    assert_run_keys(runs);
    for i in 0..3 {
        assert_eq!(w.live(i), bad(i), "app{i} back to what it held");
    }
    assert_eq!(w.live(3), good(3));
}

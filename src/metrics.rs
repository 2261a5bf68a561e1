//! Prometheus metrics: backups by result, backup duration, last success per env, snapshot
//! sizes, releases, restores and scheduled retention runs by result, pointer
//! revalidations, and HTTP requests by route template, method and status.
//!
//! The HTTP counters are on the hot path, so they are plain atomics in a table built
//! once from the router's route templates; the rest use `prometheus-client` families
//! (a lock per update, which backups and releases can afford).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use jetvault_core::error::{ErrorKind, Result};
use jetvault_core::id::EnvRef;
use jetvault_core::restore::RestoreReport;
use jetvault_core::retention::PruneReport;
use jetvault_core::snapshot::{BackupOutcome, Trigger};

mod discovery;
pub use discovery::DiscoveryMetrics;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackupLabels {
    app: String,
    env: String,
    trigger: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnvLabels {
    app: String,
    env: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SizeLabels {
    app: String,
    env: String,
    encoding: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReleaseLabels {
    app: String,
    env: String,
    action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnvResultLabels {
    app: String,
    env: String,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// What a pointer revalidation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revalidation {
    /// The store answered 304.
    NotModified,
    /// The pointer changed.
    Changed,
    /// There is no pointer.
    Missing,
    /// The store failed.
    Error,
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    backups: Family<BackupLabels, Counter>,
    backup_duration: Histogram,
    last_success: Family<EnvLabels, Gauge<f64, AtomicU64>>,
    snapshot_size: Family<SizeLabels, Gauge>,
    releases: Family<ReleaseLabels, Counter>,
    restores: Family<EnvResultLabels, Counter>,
    retention_runs: Family<EnvResultLabels, Counter>,
    retention_deleted: Family<EnvLabels, Counter>,
    revalidations: Family<ResultLabels, Counter>,
    config_loads: Counter,
    stale_served: Counter,
    claims: Family<ResultLabels, Counter>,
    last_scheduled: std::sync::Mutex<HashMap<EnvRef, LastRun>>,
}

/// How an environment's last scheduled backup went, for the console's overview.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LastRun {
    /// When it ended (UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// `created`, `unchanged`, `rejected` or `failed`.
    pub outcome: &'static str,
    /// What failed, for `rejected` and `failed`.
    pub error: Option<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric (the HTTP table is added by [`Metrics::register_http`]).
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jetvault");
        let backups = Family::<BackupLabels, Counter>::default();
        registry.register(
            "backups",
            "Backups by environment, trigger and result (created, unchanged, rejected, failed)",
            backups.clone(),
        );
        let backup_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "backup_duration_seconds",
            "Time taken by backups, reading the live target included",
            backup_duration.clone(),
        );
        let last_success = Family::<EnvLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last backup of each environment succeeded (Unix time)",
            last_success.clone(),
        );
        let snapshot_size = Family::<SizeLabels, Gauge>::default();
        registry.register(
            "snapshot_size_bytes",
            "Size of the latest snapshot this process took or found, raw and stored (zstd)",
            snapshot_size.clone(),
        );
        let releases = Family::<ReleaseLabels, Counter>::default();
        registry.register(
            "releases",
            "Releases published through this process, by action (release, rollback, promote, \
             restore)",
            releases.clone(),
        );
        let restores = Family::<EnvResultLabels, Counter>::default();
        registry.register(
            "restores",
            "Restores through this process, by result (restored, already_live, partial: \
             restored but not published, rejected: nothing pushed, failed)",
            restores.clone(),
        );
        let retention_runs = Family::<EnvResultLabels, Counter>::default();
        registry.register(
            "retention_runs",
            "Retention applied after scheduled backups, by result (applied, failed)",
            retention_runs.clone(),
        );
        let retention_deleted = Family::<EnvLabels, Counter>::default();
        registry.register(
            "retention_deleted_snapshots",
            "Snapshots deleted by retention after scheduled backups",
            retention_deleted.clone(),
        );
        let revalidations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pointer_revalidations",
            "Conditional reads of release pointers from the store, by result",
            revalidations.clone(),
        );
        let config_loads = Counter::default();
        registry.register(
            "release_config_loads",
            "Released configurations read from the store into memory",
            config_loads.clone(),
        );
        let stale_served = Counter::default();
        registry.register(
            "pointer_stale_served",
            "Release pointers served from memory while the store failed or did not answer \
             in time (responses with X-Jetvault-Stale)",
            stale_served.clone(),
        );
        registry.register(
            "notifications",
            "Webhook notifications by hook and outcome (delivered; retried: one per retry; \
             dropped: the oldest waiting one when the queue was full; failed: given up)",
            crate::notify::counters().clone(),
        );
        let claims = Family::<ResultLabels, Counter>::default();
        registry.register(
            "scheduler_claims",
            "Tick claims of this replica ([scheduler] claims), by result: won (owner, claimed), \
             lost (another replica had it), late (the owner did not claim it in time: run \
             here), taken_over (its claim expired: run here), error (the store failed)",
            claims.clone(),
        );
        Self {
            registry,
            backups,
            backup_duration,
            last_success,
            snapshot_size,
            releases,
            restores,
            retention_runs,
            retention_deleted,
            revalidations,
            config_loads,
            stale_served,
            claims,
            last_scheduled: std::sync::Mutex::default(),
        }
    }

    /// How the environment's last scheduled backup went, if one ran in this process.
    pub fn last_scheduled(&self, env: &EnvRef) -> Option<LastRun> {
        self.last_scheduled.lock().ok()?.get(env).cloned()
    }

    /// Counts a tick claim of the scheduler by result (`won`, `lost`, `late`,
    /// `taken_over`, `error`).
    pub fn record_claim(&self, result: &'static str) {
        self.claims.get_or_create(&ResultLabels { result }).inc();
    }

    /// Adds the HTTP request table.
    pub fn register_http(&mut self, http: std::sync::Arc<HttpMetrics>) {
        self.registry.register_collector(Box::new(http));
    }

    /// Records a backup's outcome and duration.
    pub fn record_backup(
        &self,
        env: &EnvRef,
        trigger: Trigger,
        result: &Result<BackupOutcome>,
        elapsed: Duration,
    ) {
        let outcome = match result {
            Ok(BackupOutcome::Created(_)) => "created",
            Ok(BackupOutcome::Unchanged(_)) => "unchanged",
            // The caller's input was refused (not JSON, too large): not a failure of
            // the backup machinery, so alerts on `failed` stay meaningful.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::TooLarge) => {
                "rejected"
            }
            Err(_) => "failed",
        };
        if trigger == Trigger::Schedule
            && let Ok(mut runs) = self.last_scheduled.lock()
        {
            runs.insert(
                env.clone(),
                LastRun {
                    at: chrono::Utc::now(),
                    outcome,
                    error: result.as_ref().err().map(jetvault_core::Error::report),
                },
            );
        }
        self.backups
            .get_or_create(&BackupLabels {
                app: env.app.to_string(),
                env: env.env.to_string(),
                trigger: trigger.as_str(),
                result: outcome,
            })
            .inc();
        self.backup_duration.observe(elapsed.as_secs_f64());
        if let Ok(o) = result {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            self.last_success.get_or_create(&env_labels(env)).set(now);
            let meta = o.snapshot();
            for (encoding, size) in [("raw", meta.size), ("zstd", meta.stored_size)] {
                self.snapshot_size
                    .get_or_create(&SizeLabels {
                        app: env.app.to_string(),
                        env: env.env.to_string(),
                        encoding,
                    })
                    .set(i64::try_from(size).unwrap_or(i64::MAX));
            }
        }
    }

    /// Counts a release published through this process.
    pub fn record_release(&self, env: &EnvRef, action: &'static str) {
        self.releases
            .get_or_create(&ReleaseLabels {
                app: env.app.to_string(),
                env: env.env.to_string(),
                action,
            })
            .inc();
    }

    /// Counts a restore (not a dry run) by result.
    pub fn record_restore(&self, env: &EnvRef, result: &Result<RestoreReport>) {
        let outcome = match result {
            Ok(r) if r.publish_error.is_some() => "partial",
            Ok(r) if r.pushed => "restored",
            Ok(_) => "already_live",
            // Refused before anything was pushed: no such version, live missing without
            // consent, a bad request.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::PreconditionFailed
                ) =>
            {
                "rejected"
            }
            Err(_) => "failed",
        };
        self.restores
            .get_or_create(&EnvResultLabels {
                app: env.app.to_string(),
                env: env.env.to_string(),
                result: outcome,
            })
            .inc();
    }

    /// Counts a retention run after a scheduled backup, and what it deleted.
    pub fn record_retention(&self, env: &EnvRef, result: &Result<PruneReport>) {
        let outcome = match result {
            Ok(report) => {
                self.retention_deleted
                    .get_or_create(&env_labels(env))
                    .inc_by(report.deleted as u64);
                "applied"
            }
            Err(_) => "failed",
        };
        self.retention_runs
            .get_or_create(&EnvResultLabels {
                app: env.app.to_string(),
                env: env.env.to_string(),
                result: outcome,
            })
            .inc();
    }

    /// Counts a pointer revalidation.
    pub fn record_revalidation(&self, r: Revalidation) {
        let result = match r {
            Revalidation::NotModified => "not_modified",
            Revalidation::Changed => "changed",
            Revalidation::Missing => "missing",
            Revalidation::Error => "error",
        };
        self.revalidations
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts a released configuration loaded into memory.
    pub fn record_config_load(&self) {
        self.config_loads.inc();
    }

    /// Counts a release pointer served from memory while the store is failing.
    pub fn record_stale_served(&self) {
        self.stale_served.inc();
    }

    /// The OpenMetrics text of every metric.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

fn env_labels(env: &EnvRef) -> EnvLabels {
    EnvLabels {
        app: env.app.to_string(),
        env: env.env.to_string(),
    }
}

/// Status codes counted one by one; any other is counted as `other`.
const STATUSES: [u16; 17] = [
    200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 500, 503, 0,
];
const METHODS: [&str; 3] = ["GET", "POST", "other"];
const UNMATCHED: &str = "unmatched";

fn status_index(status: u16) -> usize {
    STATUSES[..STATUSES.len() - 1]
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len() - 1)
}

fn method_index(m: &Method) -> usize {
    if m == Method::GET || m == Method::HEAD {
        0
    } else if m == Method::POST {
        1
    } else {
        2
    }
}

#[derive(Debug, Default)]
struct RouteCounters {
    counts: [[AtomicU64; STATUSES.len()]; METHODS.len()],
}

/// Requests by route template, method and status: a fixed table of atomics.
#[derive(Debug)]
pub struct HttpMetrics {
    routes: HashMap<Box<str>, RouteCounters>,
    unmatched: RouteCounters,
    /// Connections answered to the end by jetvault's connection path, and those handed
    /// to hyper (see `conn`).
    connections: [AtomicU64; 2],
    /// Body bytes sent with `sendfile`.
    sendfile_bytes: AtomicU64,
}

/// Who served a connection: jetvault's own path for plain GETs, or hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnServer {
    /// `conn`'s GET path, start to end.
    Jetvault,
    /// Handed to hyper (a request the GET path does not take).
    Hyper,
}

impl ConnServer {
    fn label(self) -> &'static str {
        match self {
            Self::Jetvault => "jetvault",
            Self::Hyper => "hyper",
        }
    }
}

impl HttpMetrics {
    /// A table for these route templates (as the router writes them, e.g.
    /// `/v1/apps/{app}/envs/{env}/release`).
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            routes: templates
                .into_iter()
                .map(|t| (Box::from(t), RouteCounters::default()))
                .collect(),
            unmatched: RouteCounters::default(),
            connections: Default::default(),
            sendfile_bytes: AtomicU64::new(0),
        }
    }

    /// Counts a connection when it ends.
    pub fn count_connection(&self, server: ConnServer) {
        self.connections[server as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts body bytes sent with `sendfile`.
    pub fn count_sendfile(&self, bytes: u64) {
        self.sendfile_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one response.
    pub fn count(&self, route: Option<&str>, method: &Method, status: u16) {
        let counters = route
            .and_then(|r| self.routes.get(r))
            .unwrap_or(&self.unmatched);
        counters.counts[method_index(method)][status_index(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests were counted for a route, method and status (for tests).
    #[must_use]
    pub fn get(&self, route: &str, method: &Method, status: u16) -> u64 {
        self.routes.get(route).map_or(0, |c| {
            c.counts[method_index(method)][status_index(status)].load(Ordering::Relaxed)
        })
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "http_requests",
            "HTTP requests by route template, method and status",
            None,
            MetricType::Counter,
        )?;
        let all = self
            .routes
            .iter()
            .map(|(r, c)| (&**r, c))
            .chain(std::iter::once((UNMATCHED, &self.unmatched)));
        for (route, counters) in all {
            for (mi, method) in METHODS.iter().enumerate() {
                for (si, status) in STATUSES.iter().enumerate() {
                    let n = counters.counts[mi][si].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let status = if *status == 0 {
                        "other".to_string()
                    } else {
                        status.to_string()
                    };
                    let labels = [
                        ("route", route),
                        ("method", *method),
                        ("status", status.as_str()),
                    ];
                    ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        let mut metric = encoder.encode_descriptor(
            "http_connections",
            "HTTP connections closed, by what served them: jetvault's path for plain GETs \
             from start to end, or hyper (handed over at a request that path does not take)",
            None,
            MetricType::Counter,
        )?;
        for server in [ConnServer::Jetvault, ConnServer::Hyper] {
            let n = self.connections[server as usize].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(metric.encode_family(&[("server", server.label())])?)?;
        }
        let metric = encoder.encode_descriptor(
            "http_sendfile_bytes",
            "Response body bytes sent with sendfile (large released configurations)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.sendfile_bytes.load(Ordering::Relaxed)).encode(metric)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetvault_core::snapshot::SnapshotMeta;

    #[test]
    fn encodes_what_was_recorded() {
        let http = std::sync::Arc::new(HttpMetrics::new(["/v1/x/{a}"]));
        let mut m = Metrics::new();
        m.register_http(http.clone());
        http.count(Some("/v1/x/{a}"), &Method::GET, 200);
        http.count(Some("/v1/x/{a}"), &Method::GET, 200);
        http.count(None, &Method::POST, 418);
        let env = EnvRef::parse("crm", "prod").unwrap();
        let meta = SnapshotMeta {
            version: 1,
            sha256: "0".repeat(64),
            size: 100,
            stored_size: 40,
            created_at: chrono::Utc::now(),
            trigger: Trigger::Schedule,
            author: None,
            message: None,
            source: None,
            key: String::new(),
            restored_from: None,
            schema_errors: None,
            schema_error: None,
            recipients: None,
            ignoring_sha256: None,
        };
        m.record_backup(
            &env,
            Trigger::Schedule,
            &Ok(BackupOutcome::Created(meta)),
            Duration::from_millis(20),
        );
        m.record_release(&env, "release");
        m.record_restore(&env, &Err(jetvault_core::Error::not_found("no v7")));
        m.record_restore(&env, &Err(jetvault_core::Error::corrupt("sha256 mismatch")));
        m.record_retention(&env, &Err(jetvault_core::Error::unavailable("store down")));
        let text = m.encode();
        for want in [
            "jetvault_http_requests_total{route=\"/v1/x/{a}\",method=\"GET\",status=\"200\"} 2",
            "jetvault_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"other\"} 1",
            "jetvault_backups_total{app=\"crm\",env=\"prod\",trigger=\"schedule\",result=\"created\"} 1",
            "jetvault_backup_duration_seconds_count 1",
            "jetvault_snapshot_size_bytes{app=\"crm\",env=\"prod\",encoding=\"zstd\"} 40",
            "jetvault_releases_total{app=\"crm\",env=\"prod\",action=\"release\"} 1",
            "jetvault_backup_last_success_timestamp_seconds{app=\"crm\",env=\"prod\"}",
            "jetvault_restores_total{app=\"crm\",env=\"prod\",result=\"rejected\"} 1",
            "jetvault_restores_total{app=\"crm\",env=\"prod\",result=\"failed\"} 1",
            "jetvault_retention_runs_total{app=\"crm\",env=\"prod\",result=\"failed\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}

//! The restore-all routes: start a platform-wide restore (or its dry run, a resume, an
//! undo) and follow its progress.
//!
//! The work is the library's `restore_all` module, the same code `jetvault restore-all`
//! runs. A run goes on in the background as a task of the server's tracker
//! ([`crate::tasks`]), so that a graceful shutdown waits for it; its record in the store
//! (`runs/restore-all/<run>.json`) is what `GET /v1/restore-all/{run}` reports, and
//! what a resume goes on from if the server stops anyway.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanOperate, CanRead};
use super::error::{ApiError, ErrorBody, OperateErrors, ReadErrors};
use super::extract::Json;
use super::{AppState, json_response};
use jetvault_core::config::Config;
use jetvault_core::error::{Error, ErrorKind};
use jetvault_core::host_limits::HostLimits;
use jetvault_core::id::EnvRef;
use jetvault_core::live::LiveTarget;
use jetvault_core::restore_all::record::check_run_id;
use jetvault_core::restore_all::{
    DEFAULT_LEASE, Decision, EnvFilter, EnvPlan, EnvTarget, Point, RunEvent, RunKind, RunOptions,
    RunRecord, Selection, Status, latest_of,
};
use jetvault_core::selector::parse_time;

/// What to restore, and how.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreAllBody {
    /// Every environment in the store and the config.
    #[serde(default)]
    pub all: bool,
    /// Only the environments of these apps.
    #[serde(default)]
    pub apps: Vec<String>,
    /// Only the environments whose name matches this pattern (`*` and `?`; with a `/`
    /// it matches `app/env`).
    pub env: Option<String>,
    /// Restore each environment's newest snapshot taken at or before this time
    /// (RFC 3339).
    pub at: Option<String>,
    /// Restore each environment's current release.
    #[serde(default)]
    pub release: bool,
    /// Restore the release each environment had at this time (RFC 3339).
    pub release_at: Option<String>,
    /// Answer with the plan, per environment (200), and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Go on with this run (done environments skipped, failed ones retried).
    #[schema(pattern = r"^[A-Za-z0-9-]{1,64}$")]
    pub resume: Option<String>,
    /// Put back what was live before this run, in every environment it restored.
    #[schema(pattern = r"^[A-Za-z0-9-]{1,64}$")]
    pub undo: Option<String>,
    /// Start a new run even if the newest run of the same selection and point is
    /// unfinished (by default that run is resumed).
    #[serde(default)]
    pub new_run: bool,
    /// Environments restored at once (default 16).
    #[schema(minimum = 1, maximum = 256)]
    pub concurrency: Option<u16>,
    /// At most this many requests at once toward one live host (default 4).
    #[schema(minimum = 1, maximum = 256)]
    pub per_host: Option<u16>,
    /// Why (kept in every restore event, with the run id).
    pub message: Option<String>,
}

/// The plan of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreAllPlan {
    /// The point (absent for an undo).
    pub point: Option<Point>,
    /// Per environment, in id order: `env`, `target`, `decision` (`restore`,
    /// `unchanged`, `skip`, `fail`) and its details (`version`, `live`, `changes`,
    /// `size`; `reason` and `detail`; `error` and `code`).
    #[schema(value_type = Vec<Object>)]
    pub envs: Vec<EnvPlan>,
    /// Environments that would be restored.
    pub restore: usize,
    /// Environments whose live already holds the version.
    pub unchanged: usize,
    /// Environments left alone.
    pub skip: usize,
    /// Environments whose plan failed.
    pub fail: usize,
}

/// A run started (or resumed) in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The run id.
    pub run: String,
    /// Whether an existing, unfinished run is resumed.
    pub resumed: bool,
    /// Environments in the run.
    pub envs: usize,
    /// Environments to do now.
    pub todo: usize,
    /// Where its progress is (also the `Location` header).
    pub status_url: String,
}

/// Where a run stands, from its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStatus {
    /// The record: every environment with its status, version, reason, undo point.
    pub run: RunRecord,
    /// Whether this server is running it now.
    pub running: bool,
    /// Whether every environment is done for good (none pending or failed).
    pub finished: bool,
    /// Environments restored.
    pub restored: usize,
    /// Environments whose live already held the version.
    pub unchanged: usize,
    /// Environments left alone.
    pub skipped: usize,
    /// Environments failed (a resume retries them).
    pub failed: usize,
    /// Environments not done yet.
    pub pending: usize,
    /// The run's start and end events, oldest first.
    pub events: Vec<RunEvent>,
}

/// The `{run}` of a route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunPath {
    /// The run id, as `POST /v1/restore-all` answered it.
    #[param(pattern = r"^[A-Za-z0-9-]{1,64}$", min_length = 1, max_length = 64)]
    pub run: String,
}

/// The runs this process is running now: a second start of one is refused.
fn running() -> &'static Mutex<BTreeSet<String>> {
    static RUNNING: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

fn is_running(id: &str) -> bool {
    running().lock().is_ok_and(|r| r.contains(id))
}

fn limit(value: Option<u16>, default: u16, what: &str) -> Result<usize, Error> {
    match value.unwrap_or(default) {
        n @ 1..=256 => Ok(usize::from(n)),
        n => Err(Error::invalid(format!("{what} is {n}: give 1 to 256"))),
    }
}

fn point(body: &RestoreAllBody) -> Result<Point, Error> {
    Ok(match (&body.at, body.release, &body.release_at) {
        (Some(t), false, None) => Point::At(parse_time(t)?),
        (None, true, None) => Point::CurrentRelease,
        (None, false, Some(t)) => Point::ReleaseAt(parse_time(t)?),
        _ => {
            return Err(Error::invalid(
                "give one point to restore to: `at`, `release` or `release_at` (or `resume`, \
                 `undo`)",
            ));
        }
    })
}

fn filter(body: &RestoreAllBody) -> Result<EnvFilter, Error> {
    EnvFilter::from_request(
        body.all,
        &body.apps,
        body.env.as_ref(),
        "`all`, `apps` or `env`",
    )
}

async fn open_targets<'a>(
    config: &Config,
    names: impl Iterator<Item = &'a String>,
) -> HashMap<String, Arc<dyn LiveTarget>> {
    let mut out = HashMap::new();
    for name in names {
        let Some(env) = name
            .split_once('/')
            .and_then(|(a, e)| EnvRef::parse(a, e).ok())
        else {
            continue;
        };
        if let Ok(t) = jetvault_core::live::open_configured(config, &env).await {
            out.insert(name.clone(), t);
        }
    }
    out
}

fn plan_answer(plans: Vec<EnvPlan>, point: Option<Point>) -> Response {
    let count = |f: fn(&Decision) -> bool| plans.iter().filter(|p| f(&p.decision)).count();
    let answer = RestoreAllPlan {
        point,
        restore: count(|d| matches!(d, Decision::Restore { .. } | Decision::Resolved { .. })),
        unchanged: count(|d| matches!(d, Decision::Unchanged { .. })),
        skip: count(|d| matches!(d, Decision::Skip { .. })),
        fail: count(|d| matches!(d, Decision::Fail { .. })),
        envs: plans,
    };
    json_response(StatusCode::OK, &answer)
}

/// Starts restoring many environments to one point in time, in the background, each
/// through the same safe restore as the single-environment route (pre-restore snapshot,
/// push, read-back, audit event): 202 with the run id and its `Location`. With
/// `dry_run`, answers 200 with the plan and changes nothing. `resume` goes on with a
/// run; `undo` puts back what was live before one. Without either, the newest run of
/// the same selection and point is resumed while it is unfinished (`new_run` starts
/// another). The body names environments (`all`, `apps` or `env`) and at most one point
/// (`at`, `release`, `release_at`); `dry_run`, `resume` and `undo` exclude each other.
#[utoipa::path(post, path = "/v1/restore-all", tag = "restore", operation_id = "restore_all",
    request_body = RestoreAllBody,
    responses(
        OperateErrors,
        (status = 202, description = "The run started (or resumed) in the background; \
            follow it at `Location`", body = RunStarted,
            headers(("Location" = String, description = "`/v1/restore-all/{run}`"))),
        (status = 200, description = "`dry_run`: the plan, per environment", body = RestoreAllPlan),
        (status = 400, description = "Malformed body: no selection or point, two points, \
            two of `dry_run`, `resume` and `undo`, an invalid app id, time or run id, a limit \
            out of range", body = ErrorBody),
        (status = 404, description = "No environment matches, or no such run to resume or \
            undo", body = ErrorBody),
        (status = 409, description = "The run is already running on this server, or in \
            another process that holds its lease in the store (the message says when the \
            lease expires)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn start(
    CanOperate(who): CanOperate,
    State(state): State<AppState>,
    Json(body): Json<RestoreAllBody>,
) -> Result<Response, ApiError> {
    let concurrency = limit(body.concurrency, 16, "concurrency")?;
    let limits = HostLimits::new(limit(body.per_host, 4, "per_host")?);
    let config = state.config.load_full();
    let vault = &state.vault;
    let actor = who.actor();

    let mut found = None;
    if let Some(id) = &body.resume {
        if body.dry_run || body.undo.is_some() {
            return Err(Error::invalid("`resume` goes with neither `dry_run` nor `undo`").into());
        }
        found = Some(vault.load_run(id).await?);
    }
    let mut new = None;
    if found.is_none() {
        let (plans, targets, kind, point, selection) = if let Some(id) = &body.undo {
            let (run, _) = vault.load_run(id).await?;
            let mut targets = Vec::new();
            for (name, _) in run
                .envs
                .iter()
                .filter(|(_, r)| r.status == Status::Restored)
            {
                let Some(env) = name
                    .split_once('/')
                    .and_then(|(a, e)| EnvRef::parse(a, e).ok())
                else {
                    continue;
                };
                let target = jetvault_core::live::open_configured(&config, &env)
                    .await
                    .map_err(|e| e.report());
                targets.push(EnvTarget { env, target });
            }
            let plans = vault
                .plan_undo(&run, &targets, concurrency, &limits, body.dry_run)
                .await;
            (plans, targets, RunKind::Undo, None, None)
        } else {
            let point = point(&body)?;
            let selection = Selection::new(body.all, body.apps.clone(), body.env.clone());
            if !body.dry_run && !body.new_run {
                found = vault.unfinished_run(&selection, &point).await?;
            }
            if found.is_some() {
                (Vec::new(), Vec::new(), RunKind::Restore, None, None)
            } else {
                let targets = vault.restore_all_targets(&config, &filter(&body)?).await?;
                if targets.is_empty() {
                    return Err(Error::not_found(
                        "no environment in the store or the config matches `apps`/`env`",
                    )
                    .into());
                }
                let plans = vault
                    .plan_restore_all(&targets, &point, concurrency, &limits, body.dry_run)
                    .await;
                (
                    plans,
                    targets,
                    RunKind::Restore,
                    Some(point),
                    Some(selection),
                )
            }
        };
        if found.is_none() {
            if body.dry_run {
                return Ok(plan_answer(plans, point));
            }
            let mut record = RunRecord::from_plan(kind, &plans, actor.clone());
            record.point = point;
            record.selection = selection;
            record.undoes = body.undo.clone();
            let etag = vault.create_run(&record).await?;
            let by_name: HashMap<String, Arc<dyn LiveTarget>> = targets
                .into_iter()
                .filter_map(|t| Some((t.env.to_string(), t.target.ok()?)))
                .collect();
            new = Some(((record, etag), by_name, latest_of(&plans)));
        }
    }
    let resumed = found.is_some();
    let (record, targets, latest) = match (found, new) {
        (Some(record), _) => {
            let targets = open_targets(&config, record.0.envs.keys()).await;
            (record, targets, HashMap::new())
        }
        (None, Some(new)) => new,
        (None, None) => return Err(Error::internal("no run to start").into()),
    };

    let id = record.0.id.clone();
    {
        let mut set = running()
            .lock()
            .map_err(|_| Error::internal("the set of running runs is poisoned"))?;
        if !set.insert(id.clone()) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("restore-all run {id} is already running on this server"),
            )
            .with_hint(format!("follow it at /v1/restore-all/{id}"))
            .into());
        }
    }
    // One process at a time, across replicas: refused (409) while another holds the
    // run's lease in the store; a resumed run's record is then read again, as the last
    // holder left it.
    let taken = async {
        let lease = vault.lease_run(&id, DEFAULT_LEASE).await?;
        if !resumed {
            return Ok((lease, record));
        }
        match vault.load_run(&id).await {
            Ok(fresh) => Ok((lease, fresh)),
            Err(e) => {
                lease.release().await;
                Err(e)
            }
        }
    };
    let (lease, record) = match taken.await {
        Ok(taken) => taken,
        Err(e) => {
            if let Ok(mut set) = running().lock() {
                set.remove(&id);
            }
            return Err(e.into());
        }
    };
    let envs = record.0.envs.len();
    let todo = record
        .0
        .envs
        .values()
        .filter(|e| !e.status.is_done())
        .count();
    let held = lease.lease();
    let opts = RunOptions {
        concurrency,
        actor,
        message: body.message.clone(),
        allow_missing_live: true,
        point: record.0.point.clone(),
        resume: resumed,
        latest,
        lease: Some(lease.lease()),
    };
    let s = state.clone();
    let run_id = id.clone();
    let started = state.tasks.spawn(async move {
        let report = s
            .vault
            .run_restore_all(record, &targets, &limits, &opts, &|_, _| {})
            .await;
        lease.release().await;
        tracing::info!(run = %run_id, restored = report.restored, unchanged = report.unchanged,
            skipped = report.skipped, failed = report.failed, "restore-all run ended");
        if let Ok(mut set) = running().lock() {
            set.remove(&run_id);
        }
    });
    if !started {
        held.release().await;
        if let Ok(mut set) = running().lock() {
            set.remove(&id);
        }
        return Err(Error::unavailable(format!(
            "the service is shutting down: restore-all run {id} is recorded but not started"
        ))
        .with_hint(format!(
            "resume it on another replica or after restart (`resume`: \"{id}\")"
        ))
        .into());
    }
    tracing::info!(run = %id, envs, todo, resumed, token = who.name(),
        "restore-all run started through the API");
    let status_url = format!("/v1/restore-all/{id}");
    let mut res = json_response(
        StatusCode::ACCEPTED,
        &RunStarted {
            run: id,
            resumed,
            envs,
            todo,
            status_url: status_url.clone(),
        },
    );
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Where a restore-all run stands, from its record in the store: every environment's
/// status, the counts, whether it is finished, and its start and end events. The
/// record is written as environments finish (at most every two seconds), so progress
/// lags by that much.
#[utoipa::path(get, path = "/v1/restore-all/{run}", tag = "restore", operation_id = "get_restore_all",
    params(RunPath),
    responses(
        ReadErrors,
        (status = 200, description = "The run's record, counts and events", body = RunStatus),
        (status = 400, description = "Invalid run id", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn status(
    _: CanRead,
    Path(path): Path<RunPath>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    check_run_id(&path.run)?;
    let (run, _) = state.vault.load_run(&path.run).await?;
    let events = state.vault.run_events(&path.run).await?;
    let answer = RunStatus {
        running: is_running(&run.id),
        finished: run.finished(),
        restored: run.count(Status::Restored),
        unchanged: run.count(Status::Unchanged),
        skipped: run.count(Status::Skipped),
        failed: run.count(Status::Failed),
        pending: run.count(Status::Pending),
        events,
        run,
    };
    Ok(json_response(StatusCode::OK, &answer))
}

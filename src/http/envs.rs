//! The environments the service knows (configured or stored), each with its latest
//! snapshot, current release, pins and last verify; and who the caller is. The console's
//! overview is built on these, and scripts can use them to walk every environment.
//!
//! Cost per environment: one LIST of the snapshots and one of the listing index (side by
//! side, as `jetvault list` does), one LIST of the pins, one GET of the last verify's
//! summary; the release comes from the pointer cache (no request within
//! `server.pointer_ttl`, then a conditional GET). The store's apps are listed side by
//! side too, and environments are read [`CONCURRENCY`] at a time.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::ToSchema;

use super::auth::{AuthMode, CanRead};
use super::error::{ApiError, ErrorBody, ReadErrors};
use super::extract::Q;
use super::{AppState, json_response};
use crate::metrics::LastRun;
use jetvault_core::config::{Config, LiveConfig, Role, SchedulerConfig, parse_cron};
use jetvault_core::discovery::{self, Source};
use jetvault_core::id::{AppId, EnvId, EnvRef};
use jetvault_core::release::Release;
use jetvault_core::snapshot::SnapshotMeta;
use jetvault_core::store::redact_url;
use jetvault_core::verify::LastVerify;

/// How many environments (and apps, when listing the store) are read at once.
pub const CONCURRENCY: usize = 32;

/// One environment at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvSummary {
    /// The app id.
    pub app: String,
    /// The environment id.
    pub env: String,
    /// Whether the service backs it up: configured or discovered (else it is only in
    /// the store).
    pub configured: bool,
    /// Where it comes from: `config`, `discovery` (listed by the discovery source now)
    /// or `store-only` (history in the store, neither configured nor discovered now).
    pub source: Source,
    /// Where its live configuration is (kind and redacted location), if configured.
    pub live: Option<String>,
    /// Its backup schedule (cron, with seconds), if any.
    pub schedule: Option<String>,
    /// The newest snapshot.
    pub latest: Option<SnapshotMeta>,
    /// The current release.
    pub release: Option<Release>,
    /// The release pointer's ETag (pass it as `If-Match` to release over it).
    pub release_etag: Option<String>,
    /// Pinned versions (kept by prune whatever the policy).
    pub pins: Vec<u64>,
    /// When the schedule fires next (UTC).
    pub next_run: Option<chrono::DateTime<chrono::Utc>>,
    /// How the last scheduled backup in this process went.
    pub last_scheduled: Option<LastRun>,
    /// The result of the last verify (CLI or API), as recorded in the store.
    pub last_verify: Option<LastVerify>,
}

/// Which environments to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvsQuery {
    /// Only this app's environments.
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub app: Option<String>,
    /// Only environments with this id (with `app`: that one environment).
    #[param(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub env: Option<String>,
}

/// Every environment, by app then environment id.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvList {
    /// The environments.
    pub envs: Vec<EnvSummary>,
}

/// Where a live configuration is, for listings: kind and redacted location.
#[must_use]
pub fn describe_live(live: &LiveConfig) -> String {
    match live {
        LiveConfig::File { path } => format!("file:{}", path.display()),
        LiveConfig::Http { url, .. } => redact_url(url),
        LiveConfig::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        LiveConfig::Parts { parts } => {
            let parts: Vec<String> = parts
                .iter()
                .map(|(name, p)| format!("{name}: {}", describe_live(&p.live)))
                .collect();
            format!("parts {{{}}}", parts.join(", "))
        }
    }
}

/// When the scheduler next runs `env` on `schedule`: its next tick, plus its spread
/// offset when `[scheduler] spread` is on (the scheduler's own rule).
fn next_run_of(
    settings: &SchedulerConfig,
    env: &EnvRef,
    schedule: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = parse_cron(schedule).ok()?;
    let spread = settings.spread.then_some(settings.spread_max);
    let now = chrono::Utc::now().timestamp_millis();
    let (_, due) = jetvault_core::claim::first_run(&cron, env, spread, now)?;
    chrono::DateTime::from_timestamp_millis(due)
}

/// Lists every environment: those in the config, those discovered and those in the
/// store, each with its source; `app` and `env` narrow the list.
#[utoipa::path(get, path = "/v1/envs", tag = "environments", operation_id = "list_envs",
    params(EnvsQuery),
    responses(
        ReadErrors,
        (status = 200, description = "Every environment with its latest snapshot, release, pins and last verify", body = EnvList),
        (status = 400, description = "`app` or `env` is not a valid id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    _: CanRead,
    Q(q): Q<EnvsQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let app = q.app.as_deref().map(AppId::new).transpose()?;
    let env_id = q.env.as_deref().map(EnvId::new).transpose()?;
    let stored = stored_envs(&state, app.as_ref()).await?;
    let config = state.config.load_full();
    let sources = discovery::sources(&config, &state.discovered.load(), &stored)
        .into_iter()
        .filter(|(e, _)| {
            app.as_ref().is_none_or(|a| &e.app == a) && env_id.as_ref().is_none_or(|v| &e.env == v)
        });
    let envs: Vec<EnvSummary> = futures::stream::iter(sources)
        .map(|(env, source)| {
            let state = state.clone();
            let config = config.clone();
            async move { summary(&state, &config, env, source).await }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(json_response(StatusCode::OK, &EnvList { envs }))
}

/// The environments in the store (of `app` only, if given): the apps listed side by
/// side, where [`jetvault_core::vault::Vault::stored_envs`] lists them one by one.
async fn stored_envs(state: &AppState, app: Option<&AppId>) -> Result<Vec<EnvRef>, ApiError> {
    if let Some(app) = app {
        return Ok(state.vault.stored_envs_of(app).await?);
    }
    let apps = state
        .vault
        .store()
        .list_dirs(jetvault_core::layout::APPS_PREFIX)
        .await?;
    let per_app: Vec<Vec<EnvRef>> = futures::stream::iter(apps)
        .filter_map(|name| async move {
            // Not an app id: skipped, as the vault's own listing does (it warns).
            AppId::new(&name).ok()
        })
        .map(|app| async move { state.vault.stored_envs_of(&app).await })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(per_app.into_iter().flatten().collect())
}

async fn summary(
    state: &AppState,
    config: &Config,
    env: EnvRef,
    source: Source,
) -> Result<EnvSummary, ApiError> {
    let configured = config.env(&env);
    let (latest, served, pins, last_verify) = tokio::try_join!(
        state.vault.latest(&env),
        state.cache.serve(&state.vault, &env, &state.metrics),
        state.vault.pins(&env),
        state.vault.last_verify(&env),
    )?;
    let (release, release_etag) = served.pointer.map_or((None, None), |p| {
        (Some(p.release.clone()), Some(p.store_etag.clone()))
    });
    Ok(EnvSummary {
        app: env.app.to_string(),
        env: env.env.to_string(),
        configured: configured.is_some(),
        source,
        live: configured.and_then(|c| c.live.as_ref()).map(describe_live),
        schedule: configured.and_then(|c| c.schedule.clone()),
        next_run: configured
            .and_then(|c| c.schedule.as_deref())
            .and_then(|s| next_run_of(&config.scheduler, &env, s)),
        last_scheduled: state.metrics.last_scheduled(&env),
        last_verify,
        latest,
        release,
        release_etag,
        pins: pins.into_iter().collect(),
    })
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// The token's name from `server.tokens`; absent without a token.
    pub token: Option<String>,
    /// `read` or `operate`: what this caller may do.
    pub role: String,
    /// How the service authorises: `tokens`, `open-loopback` (no tokens, loopback only:
    /// everything allowed) or `read-only-public` (no tokens: reads only).
    pub auth: &'static str,
}

/// Says who the caller is and what it may do (the console enables its actions by it).
#[utoipa::path(get, path = "/v1/session", tag = "environments", operation_id = "get_session",
    responses(
        ReadErrors,
        (status = 200, description = "The caller's token name and role", body = Session),
    ),
    security(("bearer" = [])))]
pub async fn session(
    CanRead(who): CanRead,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let auth = state.auth.load();
    let operate = auth.authorize(&headers, Role::Operate).is_ok();
    let auth = match auth.mode() {
        AuthMode::Tokens => "tokens",
        AuthMode::OpenLoopback => "open-loopback",
        AuthMode::ReadOnlyPublic => "read-only-public",
    };
    Ok(json_response(
        StatusCode::OK,
        &Session {
            token: who.token.as_deref().map(str::to_string),
            role: if operate { "operate" } else { "read" }.to_string(),
            auth,
        },
    ))
}

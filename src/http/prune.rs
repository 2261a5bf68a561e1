//! Prune routes: what a retention policy would delete (the plan), then deleting it.
//!
//! Both run [`Vault::apply_retention`], the code `jetvault prune` and the scheduler run:
//! the plan with `dry_run`, deleting nothing. The apply decides again at its own time
//! (a backup taken since the plan moves the `keep_last` window) and re-reads the
//! protected set just before deleting; the latest snapshot, the released one, those in
//! the release history, pinned ones and unreadable ones are never deleted. Both need
//! the role `operate`: the plan lists nothing a reader could not list, but it is the
//! first half of a delete, and it reads every snapshot's metadata.
//!
//! [`Vault::apply_retention`]: jetvault_core::vault::Vault::apply_retention

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{CanOperate, Principal};
use super::error::{ApiError, ErrorBody, OperateErrors};
use super::extract::{Env, EnvPath, OptionalJson};
use super::{AppState, json_response};
use jetvault_core::config::RetentionPolicy;
use jetvault_core::id::EnvRef;
use jetvault_core::retention::{PruneOptions, PruneReport, policy_is_empty};
use jetvault_core::snapshot::no_snapshots;

/// Which policy.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneBody {
    /// The policy to apply (default: the environment's `retention` in the config).
    /// A version kept by any rule is kept.
    pub retention: Option<RetentionPolicy>,
}

/// What a prune would delete: the policy's decision for every version, with the reason
/// each kept one is kept. Deletes nothing.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/prune/plan", tag = "snapshots", operation_id = "plan_prune",
    params(EnvPath),
    request_body(content = Option<PruneBody>, description = "Optional: `{\"retention\": {\"keep_last\": 10}}`; default: the config's policy"),
    responses(
        OperateErrors,
        (status = 200, description = "The plan (`dry_run` is true): `decisions` newest first, \
            `deleted` and `freed_bytes` say what a prune would delete now", body = PruneReport),
        (status = 400, description = "Invalid id or body, or no retention rule in the body or \
            the config (`invalid_input`)", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn plan(
    CanOperate(who): CanOperate,
    Env(env): Env,
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<PruneBody>,
) -> Result<Response, ApiError> {
    let report = run(who, env, state, body, true).await?;
    Ok(json_response(StatusCode::OK, &report))
}

/// Deletes the snapshots the retention policy does not keep, and records a `prune`
/// audit event. Never deletes the latest, the released one, one in the release history,
/// a pinned one or an unreadable one. Decides at its own time: send the plan's policy,
/// and expect the same deletions unless backups, releases or pins happened in between.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/prune", tag = "snapshots", operation_id = "prune",
    params(EnvPath),
    request_body(content = Option<PruneBody>, description = "Optional: `{\"retention\": {\"keep_last\": 10}}`; default: the config's policy"),
    responses(
        OperateErrors,
        (status = 200, description = "What was deleted (`deleted`, `freed_bytes`, the \
            decisions) and what was spared because it became protected meanwhile", body = PruneReport),
        (status = 400, description = "Invalid id or body, or no retention rule in the body or \
            the config (`invalid_input`)", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn apply(
    CanOperate(who): CanOperate,
    Env(env): Env,
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<PruneBody>,
) -> Result<Response, ApiError> {
    let report = run(who, env, state, body, false).await?;
    Ok(json_response(StatusCode::OK, &report))
}

/// Plans (`dry_run`) or applies the body's policy, else the config's.
async fn run(
    who: Principal,
    env: EnvRef,
    state: AppState,
    body: PruneBody,
    dry_run: bool,
) -> Result<PruneReport, ApiError> {
    let policy = body
        .retention
        .filter(|p| !policy_is_empty(p))
        .or_else(|| {
            state
                .config
                .load()
                .env(&env)
                .and_then(|c| c.retention.clone())
        })
        .unwrap_or_default();
    if state.vault.latest_version(&env).await?.is_none() {
        return Err(no_snapshots(&env).into());
    }
    let opts = PruneOptions {
        dry_run,
        actor: who.actor(),
        now: None,
    };
    let (s, e) = (state.clone(), env.clone());
    // Its own task: a client that hangs up does not cut the deletions in half.
    let report = state
        .tasks
        .run(async move { s.vault.apply_retention(&e, &policy, &opts).await })
        .await?;
    if !dry_run {
        tracing::info!(%env, deleted = report.deleted, spared = report.spared.len(),
            token = who.name(), "pruned through the API");
    }
    Ok(report)
}

//! The restore route: pushes a stored snapshot back to an environment's live target.
//!
//! The work is the library's [`Vault::plan_restore`] (the dry run) and
//! [`Vault::restore`], the same code `jetvault restore` runs; this file reads the body,
//! opens the configured live target and answers with the plan or the report.
//!
//! [`Vault::plan_restore`]: jetvault_core::vault::Vault::plan_restore
//! [`Vault::restore`]: jetvault_core::vault::Vault::restore

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::CanOperate;
use super::doc::SelectorInput;
use super::error::{ApiError, ErrorBody, OperateErrors};
use super::extract::{Env, EnvPath, Json};
use super::json_response;
use super::snapshots::configured_live;
use jetvault_core::Selector;
use jetvault_core::restore::{RestorePlan, RestoreReport, RestoreRequest};

/// The snapshot to restore: the body's JSON forms of [`Selector`], which it converts
/// into (`{"version": 12}`, `{"release": "1.4.0"}`, `{"at": "..."}`, `"latest"`,
/// `"current_release"`, and the text forms such as `"v12"`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = SelectorInput)]
pub struct RestoreSource(pub Selector);

/// What to restore, and how.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// The snapshot: `{"version": 12}`, `{"release": "1.4.0"}` (a release label),
    /// `{"at": "2024-05-01T12:00:00Z"}` (the newest taken at or before that time),
    /// `"latest"` or `"current_release"`.
    pub source: RestoreSource,
    /// Check the snapshot and return the plan with the diff against what is live;
    /// change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also publish the restored snapshot as the environment's release.
    #[serde(default)]
    pub publish: bool,
    /// Go on when live is truly missing (a 404 or 410, no file, no object), so that
    /// there is nothing to save (the disaster case). Without it such a restore is
    /// refused with 412 and nothing is pushed.
    #[serde(default)]
    pub allow_missing_live: bool,
    /// Go on when live can't be read (a 5xx, a timeout, a refused connection, a 401 or
    /// 403, after retries) or snapshotted (not JSON, too large): what it holds is
    /// overwritten unsaved. Recorded in the audit event. Without it such a restore is
    /// refused (503 for an unreachable live, 412 for content that can't be saved) and
    /// nothing is pushed.
    #[serde(default)]
    pub allow_unreadable_live: bool,
    /// Restore even if the snapshot fails the environment's JSON Schema (without it:
    /// 400 naming the violations, nothing pushed); recorded in the audit event.
    #[serde(default)]
    pub skip_schema_check: bool,
    /// When the platform has deleted the live object (the write answers 404 or 410)
    /// and the live target has a `create` table: create it anew. The platform gives it
    /// a new identity; the report's `recreated` names it and the config change that
    /// points the environment at it (the config file is not changed). Implies
    /// `allow_missing_live`. Without it such a restore answers 502 `live_missing`,
    /// saying that the object can be created.
    #[serde(default)]
    pub create_if_missing: bool,
    /// Why (kept in the audit event, and the release notes when publishing).
    pub message: Option<String>,
}

/// The answer: the plan of a dry run, or the report of a restore.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RestoreResponse {
    /// `dry_run`: what would be done, with the changes from live to the snapshot.
    Plan(Box<RestorePlan>),
    /// What was done, and what undoes it (`undo`: `{"action": "restore", "version": 4}`
    /// restores what was live before, `{"action": "rollback"}` rolls the release back).
    Report(Box<RestoreReport>),
}

/// Restores a snapshot to the environment's live target (from the config file's
/// `live`): checks the snapshot (size, sha256, JSON), saves what is live as a
/// `pre-restore` snapshot, pushes, reads back and confirms, records what live holds
/// as the newest snapshot (trigger `restore`; the report's `recorded`), records an
/// audit event. With `dry_run`, returns the plan and the diff and changes nothing.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/restore", tag = "restore", operation_id = "restore",
    params(EnvPath),
    request_body = RestoreBody,
    responses(
        OperateErrors,
        (status = 200, description = "The restore report (`undo` lists what undoes it; \
            `publish_error` is set if the restore succeeded but publishing failed), or with \
            `dry_run` the plan (`changes`: from live to the snapshot)", body = RestoreResponse),
        (status = 400, description = "Invalid id or malformed body, or the snapshot fails the \
            environment's JSON Schema and `skip_schema_check` is off (nothing was pushed)", body = ErrorBody),
        (status = 404, description = "No such version, label or time (the message names the \
            nearest), or the environment has no live target in the config", body = ErrorBody),
        (status = 409, description = "`live_conflict`: live changed while it was being restored", body = ErrorBody),
        (status = 412, description = "Live is missing and `allow_missing_live` is off, or \
            holds what can't be snapshotted and `allow_unreadable_live` is off; nothing was \
            pushed", body = ErrorBody),
        (status = 500, description = "The snapshot failed a check (`corrupt`, nothing was \
            pushed), or what was read back is not what was pushed (the message names the state \
            live is in; its hint, the restore that undoes it)", body = ErrorBody),
        (status = 503, description = "The live target or the store is unreachable: live could \
            not be read before the restore (after retries; nothing was pushed unless \
            `allow_unreadable_live`), or the push failed (the message names the state live is \
            in)", body = ErrorBody),
        (status = 502, description = "`live_refused` or `live_missing`: the live target's own \
            answer (it refused the push, or has no configuration: then the message says whether \
            `create_if_missing` can create it anew)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn restore(
    CanOperate(who): CanOperate,
    Env(env): Env,
    State(state): State<AppState>,
    Json(body): Json<RestoreBody>,
) -> Result<Response, ApiError> {
    configured_live(&state, &env)?;
    if body.dry_run {
        let config = state.config.load_full();
        let target = jetvault_core::live::open_configured(&config, &env).await?;
        let keys = jetvault_core::diff::DiffOptions::for_env(&config, &env)?;
        let plan = state
            .vault
            .plan_restore_with(&env, target.as_ref(), &body.source.0, keys)
            .await?;
        return Ok(json_response(
            StatusCode::OK,
            &RestoreResponse::Plan(Box::new(plan)),
        ));
    }
    let mut req = RestoreRequest::new(body.source.0, who.actor());
    req.allow_missing_live = body.allow_missing_live;
    req.allow_unreadable_live = body.allow_unreadable_live;
    req.publish = body.publish;
    req.skip_schema_check = body.skip_schema_check;
    req.create_if_missing = body.create_if_missing;
    req.message = body.message;
    let s = state.clone();
    let e = env.clone();
    // Its own task: a client that hangs up does not cut a push in half.
    let report = state
        .tasks
        .run(async move {
            let result = async {
                let target =
                    jetvault_core::live::open_configured(&s.config.load_full(), &e).await?;
                s.vault.restore(&e, target.as_ref(), req).await
            }
            .await;
            s.metrics.record_restore(&e, &result);
            if let Ok(r) = &result
                && r.published.as_ref().is_some_and(|p| p.changed)
            {
                s.metrics.record_release(&e, "restore");
                match s.vault.current_release(&e).await {
                    Ok(Some(p)) => s.cache.published(&e, p).await,
                    Ok(None) => {}
                    Err(err) => tracing::warn!(env = %e, error = %err.report(),
                        "cannot read the release just published; it is served within pointer_ttl"),
                }
            }
            result
        })
        .await?;
    tracing::info!(%env, version = report.restored.version, pushed = report.pushed,
        published = report.published.as_ref().is_some_and(|p| p.changed),
        token = who.name(), "restored through the API");
    Ok(json_response(
        StatusCode::OK,
        &RestoreResponse::Report(Box::new(report)),
    ))
}

//! Pin routes: the pinned versions of an environment, pin one, unpin one. A pinned
//! snapshot is kept by prune whatever the retention policy says.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{CanOperate, CanRead, Principal};
use super::error::{ApiError, ErrorBody, OperateErrors, ReadErrors};
use super::extract::{Env, EnvPath, EnvVersion, VersionPath};
use super::{AppState, json_response};
use jetvault_core::Selector;
use jetvault_core::id::EnvRef;
use jetvault_core::pin::PinOutcome;
use jetvault_core::snapshot::no_snapshots;

/// The pinned versions of an environment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinList {
    /// Pinned versions, oldest first.
    pub pins: Vec<u64>,
}

/// What a pin or unpin did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinChange {
    /// The version the path named.
    pub version: u64,
    /// Whether it is pinned now.
    pub pinned: bool,
    /// Whether this request changed it (false: it already was that way).
    pub changed: bool,
}

/// Lists the pinned versions.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/pins", tag = "snapshots", operation_id = "list_pins",
    params(EnvPath),
    responses(
        ReadErrors,
        (status = 200, description = "The pinned versions", body = PinList),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    _: CanRead,
    Env(env): Env,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let pins = state.vault.pins(&env).await?;
    if pins.is_empty() && state.vault.latest_version(&env).await?.is_none() {
        return Err(no_snapshots(&env).into());
    }
    Ok(json_response(
        StatusCode::OK,
        &PinList {
            pins: pins.into_iter().collect(),
        },
    ))
}

/// Pins a snapshot, so that prune keeps it whatever the policy. 201 when it was not
/// pinned, 200 when it already was.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/pins/{version}", tag = "snapshots", operation_id = "pin_snapshot",
    params(VersionPath),
    responses(
        OperateErrors,
        (status = 201, description = "Pinned", body = PinChange),
        (status = 200, description = "It already was pinned; nothing written", body = PinChange),
        (status = 400, description = "Invalid id or version", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn pin(
    CanOperate(who): CanOperate,
    EnvVersion(env, selector): EnvVersion,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    change(who, env, selector, state, true).await
}

/// Unpins a snapshot, so that prune may delete it again by the policy.
#[utoipa::path(delete, path = "/v1/apps/{app}/envs/{env}/pins/{version}", tag = "snapshots", operation_id = "unpin_snapshot",
    params(VersionPath),
    responses(
        OperateErrors,
        (status = 200, description = "Unpinned", body = PinChange),
        (status = 400, description = "Invalid id or version", body = ErrorBody),
        (status = 404, description = "No such snapshot, or it is not pinned (the message lists the pins)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn unpin(
    CanOperate(who): CanOperate,
    EnvVersion(env, selector): EnvVersion,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    change(who, env, selector, state, false).await
}

/// Pins (`pin`) or unpins the snapshot `selector` names: 201 for a new pin, 200
/// otherwise.
async fn change(
    who: Principal,
    env: EnvRef,
    selector: Selector,
    state: AppState,
    pin: bool,
) -> Result<Response, ApiError> {
    let (s, e, actor) = (state.clone(), env.clone(), who.actor());
    let (version, outcome) = state
        .tasks
        .run(async move {
            let version = s.vault.resolve_version(&e, &selector).await?;
            let outcome = if pin {
                s.vault.pin(&e, version, &actor).await?
            } else {
                s.vault.unpin(&e, version, &actor).await?
            };
            Ok((version, outcome))
        })
        .await?;
    let changed = outcome == PinOutcome::Changed;
    let what = if pin { "pinned" } else { "unpinned" };
    tracing::info!(%env, version, changed, token = who.name(), "{what} through the API");
    let status = if pin && changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &PinChange {
            version,
            pinned: pin,
            changed,
        },
    ))
}

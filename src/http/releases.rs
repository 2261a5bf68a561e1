//! Release routes: the pointer and the released configuration (from the pointer cache),
//! the history, release, rollback and promote.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanOperate, CanRead};
use super::doc::SelectorInput;
use super::error::{ApiError, ErrorBody, OperateErrors, ReadErrors};
use super::extract::{App, AppPath, Env, EnvPath, Json, Negotiation, OptionalJson, Q};
use super::{AppState, config_response, json_response, not_modified};
use jetvault_core::Selector;
use jetvault_core::error::Error;
use jetvault_core::id::{EnvId, EnvRef, Label};
use jetvault_core::promote::{PromoteOutcome, PromoteRequest};
use jetvault_core::release::{Release, ReleaseKind, ReleasePointer, ReleaseRequest, no_release};
use jetvault_core::snapshot::{BackupOutcome, no_snapshots};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// The current release (from memory, revalidated at most every `pointer_ttl`).
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/release", tag = "releases", operation_id = "get_release",
    params(EnvPath,
        ("If-None-Match" = Option<String>, Header, description = "The ETag of the pointer the client has"),
        ("Cache-Control" = Option<String>, Header, description = "`no-cache`: read the pointer from the store now rather than from memory (before a conditional release, so that its If-Match is current)")),
    responses(
        ReadErrors,
        (status = 200, description = "The release; ETag identifies the pointer (pass it as If-Match to release over it)", body = Release),
        (status = 304, description = "The client's pointer is current"),
        (status = 503, description = "The store is unavailable and no pointer is in memory", body = ErrorBody),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "The environment has no release", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn pointer(
    _: CanRead,
    Env(env): Env,
    neg: Negotiation,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let revalidate = headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
    });
    if revalidate && let Some(p) = state.vault.current_release(&env).await? {
        state.cache.published(&env, p).await;
    }
    let served = state
        .cache
        .serve(&state.vault, &env, &state.metrics)
        .await?;
    let stale = served.stale;
    let p = served.pointer.ok_or_else(|| no_release(&env))?;
    if neg.not_modified(p.etag.as_bytes()) {
        return Ok(mark_stale(not_modified(&p.etag, false), stale));
    }
    let mut res = Response::new(axum::body::Body::from(p.body.clone()));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ETAG, p.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(mark_stale(res, stale))
}

/// The header on a release or released configuration served from memory while the
/// store could not confirm it: the age in whole seconds of the last confirmation.
pub const STALE_HEADER: &str = "x-jetvault-stale";

fn mark_stale(mut res: Response, stale: Option<std::time::Duration>) -> Response {
    if let Some(age) = stale {
        res.headers_mut()
            .insert(STALE_HEADER, HeaderValue::from(age.as_secs()));
    }
    res
}

/// The released configuration, byte for byte (ETag = `"<sha256>"`); the stored zstd
/// bytes as they are when the client accepts zstd.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/release/config", tag = "releases", operation_id = "get_release_config",
    params(EnvPath,
        ("If-None-Match" = Option<String>, Header, description = "`\"<sha256>\"` of the configuration the client has"),
        ("Accept-Encoding" = Option<String>, Header, description = "With `zstd`, the stored zstd frame is sent as it is (Content-Encoding: zstd)")),
    responses(
        ReadErrors,
        (status = 200, description = "The released configuration", content_type = "application/json", body = Value),
        (status = 304, description = "The client's configuration is current"),
        (status = 503, description = "The store is unavailable and nothing is in memory", body = ErrorBody),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "The environment has no release", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn config(
    _: CanRead,
    Env(env): Env,
    neg: Negotiation,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let served = state
        .cache
        .serve(&state.vault, &env, &state.metrics)
        .await?;
    let stale = served.stale;
    let p = served.pointer.ok_or_else(|| no_release(&env))?;
    let c = p.config(&state.vault, &env, &state.metrics).await?;
    if neg.not_modified(c.etag.as_bytes()) {
        return Ok(mark_stale(not_modified(&c.etag, true), stale));
    }
    if neg.zstd {
        return Ok(mark_stale(
            config_response(c.zstd.clone(), &c.etag, true, c.zstd_file.as_ref()),
            stale,
        ));
    }
    Ok(mark_stale(
        config_response(c.raw.clone(), &c.etag, false, c.file.as_ref()),
        stale,
    ))
}

/// Paging of the release history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReleasesQuery {
    /// How many releases (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only releases numbered below this one (1 to 9999999999).
    #[param(minimum = 1, maximum = 9_999_999_999_u64)]
    pub before: Option<u64>,
}

/// The release history, newest first.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/releases", tag = "releases", operation_id = "list_releases",
    params(EnvPath, ReleasesQuery),
    responses(
        ReadErrors,
        (status = 200, description = "Releases, newest first; `Link: <...>; rel=\"next\"` names the next page", body = Vec<Release>,
            headers(("Link" = String, description = "`<path?limit=L&before=N>; rel=\"next\"` when there is a next page"))),
        (status = 400, description = "Invalid id or query", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn history(
    _: CanRead,
    Env(env): Env,
    Q(q): Q<ReleasesQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(n) => return Err(Error::invalid(format!("limit={n}: use 1 to {MAX_PAGE}")).into()),
    };
    let before = super::extract::before(q.before)?;
    let releases = state.vault.releases_page(&env, before, limit).await?;
    if releases.is_empty() && state.vault.latest_version(&env).await?.is_none() {
        return Err(no_snapshots(&env).into());
    }
    let next = (releases.len() == limit)
        .then(|| releases.last().map(|r| r.seq))
        .flatten()
        .filter(|s| *s > 1);
    let path = format!("/v1/apps/{}/envs/{}/releases", env.app, env.env);
    Ok(super::link_next(
        json_response(StatusCode::OK, &releases),
        &path,
        limit,
        next,
    ))
}

/// What to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// The snapshot to publish.
    /// `12`, `"v12"`, `"latest"`, `"release"`, or a tagged form (see `RestoreSource`).
    #[schema(value_type = SelectorInput)]
    pub version: Selector,
    /// The label, unique in the environment (default: the next release number).
    #[schema(
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9_+-]|\.[A-Za-z0-9_+-])*\.?$",
        min_length = 1,
        max_length = 64
    )]
    pub label: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// Publish even if the snapshot fails the environment's JSON Schema (without it:
    /// 400 naming the violations); recorded in the audit event.
    #[serde(default)]
    pub skip_schema_check: bool,
}

fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| Error::invalid("If-Match is not a valid entity tag").into())
        })
        .transpose()
}

fn label(s: Option<String>) -> Result<Option<Label>, Error> {
    s.map(Label::new).transpose()
}

fn released(pointer: &ReleasePointer, status: StatusCode) -> Response {
    let mut res = json_response(status, &pointer.release);
    let quoted = jetvault_core::etag::quote(&pointer.etag);
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// Publishes a snapshot as the environment's release. With `If-Match` (the pointer's
/// ETag), only if no other release happened since.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/release", tag = "releases", operation_id = "create_release",
    params(EnvPath,
        ("If-Match" = Option<String>, Header, description = "Publish only over this pointer (its ETag)")),
    request_body = ReleaseBody,
    responses(
        OperateErrors,
        (status = 201, description = "Published; ETag is the new pointer's", body = Release),
        (status = 400, description = "Invalid id, label or body, or the snapshot fails the \
            environment's JSON Schema (the message names the violations)", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody),
        (status = 409, description = "The label is taken", body = ErrorBody),
        (status = 412, description = "If-Match is stale, or another release won the race", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn release(
    CanOperate(who): CanOperate,
    Env(env): Env,
    headers: HeaderMap,
    State(state): State<AppState>,
    Json(body): Json<ReleaseBody>,
) -> Result<Response, ApiError> {
    let selector = body.version;
    let mut req = ReleaseRequest::new(0, who.actor());
    req.label = label(body.label)?;
    req.notes = body.notes;
    req.if_match = if_match(&headers)?;
    req.kind = ReleaseKind::Release;
    req.skip_schema_check = body.skip_schema_check;
    let s = state.clone();
    let e = env.clone();
    let pointer = state
        .tasks
        .run(async move {
            req.version = s.vault.resolve_version(&e, &selector).await?;
            let p = s.vault.release(&e, req).await?;
            s.metrics.record_release(&e, "release");
            s.cache.published(&e, p.clone()).await;
            Ok(p)
        })
        .await?;
    tracing::info!(%env, label = %pointer.release.label, version = pointer.release.version,
        token = who.name(), "released through the API");
    Ok(released(&pointer, StatusCode::CREATED))
}

/// Options of a rollback.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// Why.
    pub notes: Option<String>,
}

/// Goes back to the release before the current one, recorded as a new release.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/rollback", tag = "releases", operation_id = "rollback_release",
    params(EnvPath,
        ("If-Match" = Option<String>, Header, description = "Roll back only from this pointer (its ETag)")),
    request_body(content = Option<RollbackBody>, description = "Optional"),
    responses(
        OperateErrors,
        (status = 201, description = "Rolled back; ETag is the new pointer's", body = Release),
        (status = 400, description = "Invalid id, If-Match or body", body = ErrorBody),
        (status = 404, description = "No release, or none before it", body = ErrorBody),
        (status = 412, description = "If-Match is stale, or another release won the race", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn rollback(
    CanOperate(who): CanOperate,
    Env(env): Env,
    headers: HeaderMap,
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<RollbackBody>,
) -> Result<Response, ApiError> {
    let if_match = if_match(&headers)?;
    let actor = who.actor();
    let s = state.clone();
    let e = env.clone();
    let pointer = state
        .tasks
        .run(async move {
            let p = s.vault.rollback(&e, if_match, actor, body.notes).await?;
            s.metrics.record_release(&e, "rollback");
            s.cache.published(&e, p.clone()).await;
            Ok(p)
        })
        .await?;
    tracing::info!(%env, label = %pointer.release.label, version = pointer.release.version,
        token = who.name(), "rolled back through the API");
    Ok(released(&pointer, StatusCode::CREATED))
}

/// What to promote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    /// The environment to copy from.
    #[schema(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub from: String,
    /// The environment to copy to.
    #[schema(
        pattern = r"^[a-z0-9]([a-z0-9_-]|\.[a-z0-9_-])*\.?$",
        min_length = 1,
        max_length = 63
    )]
    pub to: String,
    /// The source version (default: the source's release, else its latest).
    #[schema(value_type = Option<SelectorInput>)]
    pub version: Option<Selector>,
    /// Also publish the copy as the target's release.
    #[serde(default)]
    pub release: bool,
    /// The label of that release.
    #[schema(
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9_+-]|\.[A-Za-z0-9_+-])*\.?$",
        min_length = 1,
        max_length = 64
    )]
    pub label: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// The copy's snapshot message.
    pub message: Option<String>,
    /// Write a new snapshot even if the target's latest has the same content.
    #[serde(default)]
    pub force: bool,
    /// Copy (and release) even if the snapshot fails the target's JSON Schema (without
    /// it: 400 naming the violations); recorded in the audit event.
    #[serde(default)]
    pub skip_schema_check: bool,
}

/// Copies a snapshot from one environment into another as a new snapshot (trigger
/// `promote`), and optionally publishes it there. `If-Match` applies to the target's
/// release pointer.
#[utoipa::path(post, path = "/v1/apps/{app}/promote", tag = "releases", operation_id = "promote",
    params(AppPath,
        ("If-Match" = Option<String>, Header, description = "Release only over this target pointer (its ETag)")),
    request_body = PromoteBody,
    responses(
        OperateErrors,
        (status = 201, description = "A snapshot was written or a release published"),
        (status = 200, description = "The target already had this content; nothing written"),
        (status = 400, description = "Invalid id or body, or the snapshot fails the target's \
            JSON Schema (the message names the violations)", body = ErrorBody),
        (status = 404, description = "No such source snapshot", body = ErrorBody),
        (status = 409, description = "The label is taken", body = ErrorBody),
        (status = 412, description = "If-Match is stale", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn promote(
    CanOperate(who): CanOperate,
    App(app): App,
    headers: HeaderMap,
    State(state): State<AppState>,
    Json(body): Json<PromoteBody>,
) -> Result<Response, ApiError> {
    let from = EnvId::new(body.from)?;
    let to = EnvId::new(body.to)?;
    let mut req = PromoteRequest::new(who.actor());
    req.version = body.version;
    req.release = body.release;
    req.label = label(body.label)?;
    req.notes = body.notes;
    req.message = body.message;
    req.force = body.force;
    req.skip_schema_check = body.skip_schema_check;
    req.if_match = if_match(&headers)?;
    let s = state.clone();
    let target = EnvRef {
        app: app.clone(),
        env: to.clone(),
    };
    let t = target.clone();
    let outcome: PromoteOutcome = state
        .tasks
        .run(async move {
            let o = s.vault.promote(&app, &from, &to, req).await?;
            if let Some(p) = &o.release {
                s.metrics.record_release(&t, "promote");
                s.cache.published(&t, p.clone()).await;
            }
            Ok(o)
        })
        .await?;
    let created =
        matches!(outcome.snapshot, BackupOutcome::Created(_)) || outcome.release.is_some();
    tracing::info!(env = %target, version = outcome.snapshot.snapshot().version,
        released = outcome.release.is_some(), token = who.name(), "promoted through the API");
    Ok(json_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &outcome,
    ))
}

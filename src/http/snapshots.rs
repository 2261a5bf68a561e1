//! Snapshot routes: history (paged), one snapshot's metadata and content, diff, events,
//! backup from the live target and upload.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanOperate, CanRead, Principal};
use super::error::{ApiError, ErrorBody, OperateErrors, ReadErrors};
use super::extract::{Body, Env, EnvPath, EnvVersion, Negotiation, OptionalJson, Q, VersionPath};
use super::{AppState, config_response, json_response};
use jetvault_core::Selector;
use jetvault_core::config::LiveConfig;
use jetvault_core::diff::{Change, DiffOptions};
use jetvault_core::error::Error;
use jetvault_core::events::Event;
use jetvault_core::id::EnvRef;
use jetvault_core::notify::Notice;
use jetvault_core::snapshot::{
    BackupOutcome, BackupRequest, SnapshotMeta, Trigger, decode_snapshot, no_snapshots,
};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// Paging of the history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many snapshots (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only versions older than this one (1 to 9999999999; for the next page, pass
    /// `next_before`).
    #[param(minimum = 1, maximum = 9_999_999_999_u64)]
    pub before: Option<u64>,
}

/// A page of the history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotPage {
    /// The snapshots.
    pub snapshots: Vec<SnapshotMeta>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<u64>,
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(Error::invalid(format!("limit={n}: use 1 to {MAX_PAGE}")).into()),
    }
}

/// Lists an environment's snapshots, newest first.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/snapshots", tag = "snapshots", operation_id = "list_snapshots",
    params(EnvPath, PageQuery),
    responses(
        ReadErrors,
        (status = 200, description = "A page of snapshots; `next_before` and `Link: <...>; rel=\"next\"` name the next page", body = SnapshotPage,
            headers(("Link" = String, description = "`<path?limit=L&before=N>; rel=\"next\"` when there is a next page"))),
        (status = 400, description = "Invalid id or query", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    _: CanRead,
    Env(env): Env,
    Q(q): Q<PageQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let before = super::extract::before(q.before)?;
    let snapshots = state.vault.list(&env, before, limit).await?;
    if snapshots.is_empty() && before.is_none() {
        return Err(no_snapshots(&env).into());
    }
    let next_before = (snapshots.len() == limit)
        .then(|| snapshots.last().map(|m| m.version))
        .flatten()
        .filter(|v| *v > 1);
    let path = format!("/v1/apps/{}/envs/{}/snapshots", env.app, env.env);
    let res = json_response(
        StatusCode::OK,
        &SnapshotPage {
            snapshots,
            next_before,
        },
    );
    Ok(super::link_next(res, &path, limit, next_before))
}

/// One snapshot's metadata.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/snapshots/{version}", tag = "snapshots", operation_id = "get_snapshot",
    params(VersionPath),
    responses(
        ReadErrors,
        (status = 200, description = "The snapshot's metadata", body = SnapshotMeta),
        (status = 400, description = "Invalid id or version", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn show(
    _: CanRead,
    EnvVersion(env, selector): EnvVersion,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let meta = state.vault.resolve(&env, &selector).await?;
    Ok(json_response(StatusCode::OK, &meta))
}

/// One snapshot's configuration, byte for byte; the stored zstd bytes as they are when
/// the client accepts zstd.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/snapshots/{version}/config", tag = "snapshots", operation_id = "get_snapshot_config",
    params(VersionPath,
        ("If-None-Match" = Option<String>, Header, description = "`\"<sha256>\"` of a copy the client has"),
        ("Accept-Encoding" = Option<String>, Header, description = "With `zstd`, the stored bytes are sent as they are")),
    responses(
        ReadErrors,
        (status = 200, description = "The configuration (ETag = \"<sha256>\")", content_type = "application/json", body = Value),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Invalid id or version", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn content(
    _: CanRead,
    EnvVersion(env, selector): EnvVersion,
    neg: Negotiation,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    // A HEAD (or LIST + HEAD for latest) is enough to answer a revalidation.
    let version = match &selector {
        Selector::Version(v) if neg.if_none_match.is_none() => *v,
        _ => {
            let meta = state.vault.resolve(&env, &selector).await?;
            let etag = jetvault_core::etag::quote(&meta.sha256);
            if neg.not_modified(etag.as_bytes()) {
                return Ok(super::not_modified(&etag_header(&meta.sha256), true));
            }
            meta.version
        }
    };
    let (meta, stored) = state.vault.get_stored(&env, version).await?;
    let etag = etag_header(&meta.sha256);
    if neg.not_modified(etag.as_bytes()) {
        return Ok(super::not_modified(&etag, true));
    }
    if neg.zstd {
        return Ok(config_response(stored, &etag, true, None));
    }
    let limit = state.vault.options().max_size.max(meta.size);
    let raw = decode_snapshot(&env, &meta, stored, limit).await?;
    Ok(config_response(raw, &etag, false, None))
}

/// The `ETag` header value of a configuration: its sha256, quoted.
pub(crate) fn etag_header(sha: &str) -> HeaderValue {
    HeaderValue::from_str(&jetvault_core::etag::quote(sha))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Which two versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The old version (default: the one before `b`): `12`, `v12`, `latest` or `release`.
    #[param(pattern = r"^(v?0*[1-9][0-9]{0,9}|latest|release|current_release)$")]
    pub a: Option<String>,
    /// The new version (default: latest), in the same forms.
    #[param(pattern = r"^(v?0*[1-9][0-9]{0,9}|latest|release|current_release)$")]
    pub b: Option<String>,
    /// `patch` (RFC 6902 JSON Patch, the default; its operations apply in order) or
    /// `changes` (a list of changes with old and new values). Arrays of objects whose
    /// items carry an identity (the environment's `diff.keys`, default `id`, `uid`,
    /// `name`) are compared by it.
    #[param(pattern = "^(patch|changes)$")]
    pub format: Option<String>,
}

/// The `changes` form of a diff.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffChanges {
    /// The old version.
    pub a: u64,
    /// The new version.
    pub b: u64,
    /// The changes: `path` is a JSON pointer into `b` (added, changed, moved) or `a`
    /// (removed); `id_path` names keyed array items as `[key=value]`, e.g.
    /// `/[id=3cc11d24.ff01a2]/name`. Removed keyed items come before the rest of their
    /// array; otherwise in document order.
    pub changes: Vec<Change>,
}

/// The differences between two versions: a JSON Patch (RFC 6902) that turns `a` into
/// `b`, or the list of changes. Array items with an identity are compared by it: one
/// deleted node is one `removed` change (and one `remove` operation), a node that only
/// changed place is one `moved` change (one `move` operation).
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/diff", tag = "snapshots", operation_id = "get_diff",
    params(EnvPath, DiffQuery),
    responses(
        ReadErrors,
        (status = 200, description = "JSON Patch (format=patch, `application/json-patch+json`) or changes (format=changes)",
            content((DiffChanges = "application/json"), (Vec<Object> = "application/json-patch+json"))),
        (status = 400, description = "Invalid id, version or format", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn diff(
    _: CanRead,
    Env(env): Env,
    Q(q): Q<DiffQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let patch_form = match q.format.as_deref() {
        None | Some("patch") => true,
        Some("changes") => false,
        Some(other) => {
            return Err(Error::invalid(format!("format={other:?}: use patch or changes")).into());
        }
    };
    let b_sel: Selector = q.b.as_deref().unwrap_or("latest").parse()?;
    let a_sel: Option<Selector> = q.a.as_deref().map(str::parse).transpose()?;
    let b = state.vault.resolve(&env, &b_sel).await?;
    let a = match a_sel {
        Some(sel) => state.vault.resolve(&env, &sel).await?.version,
        None => state
            .vault
            .version_before(&env, b.version)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "v{} is the first snapshot of {env}: there is nothing before it to \
                     compare with; pass a=",
                    b.version
                ))
            })?,
    };
    let ((_, raw_a), (_, raw_b)) =
        futures::try_join!(state.vault.get(&env, a), state.vault.get(&env, b.version))?;
    let b_version = b.version;
    let options = DiffOptions::for_env(&state.config.load(), &env)?;
    let diff = tokio::task::spawn_blocking(move || {
        options.between(&raw_a, &raw_b, &format!("v{a}"), &format!("v{b_version}"))
    })
    .await
    .map_err(|e| Error::internal(format!("diff task failed: {e}")))??;
    if patch_form {
        let mut res = json_response(StatusCode::OK, diff.patch());
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json-patch+json"),
        );
        Ok(res)
    } else {
        Ok(json_response(
            StatusCode::OK,
            &DiffChanges {
                a,
                b: b_version,
                changes: diff.changes().to_vec(),
            },
        ))
    }
}

/// How many events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The cursor of the next page, from the previous page's `Link: <...>; rel="next"`.
    #[param(pattern = r"^[0-9]{13}-[0-9a-f]{1,32}$")]
    pub after: Option<String>,
}

/// An environment's audit events, newest first.
#[utoipa::path(get, path = "/v1/apps/{app}/envs/{env}/events", tag = "snapshots", operation_id = "list_events",
    params(EnvPath, EventsQuery),
    responses(
        ReadErrors,
        (status = 200, description = "Events, newest first; `Link: <...>; rel=\"next\"` names the next page", body = Vec<Event>,
            headers(("Link" = String, description = "`<path?limit=L&after=C>; rel=\"next\"` when there is a next page"))),
        (status = 400, description = "Invalid id or limit", body = ErrorBody),
        (status = 404, description = "The environment has no snapshots and no events", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn events(
    _: CanRead,
    Env(env): Env,
    Q(q): Q<EventsQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let (events, next) = state
        .vault
        .events_page(&env, q.after.as_deref(), limit)
        .await?;
    if events.is_empty() && q.after.is_none() && state.vault.latest_version(&env).await?.is_none() {
        return Err(no_snapshots(&env).into());
    }
    let mut res = json_response(StatusCode::OK, &events);
    // The cursor is 13 digits, `-` and hex digits: nothing to escape.
    if let Some(after) = next
        && let Ok(v) = HeaderValue::from_str(&format!(
            "</v1/apps/{}/envs/{}/events?limit={limit}&after={after}>; rel=\"next\"",
            env.app, env.env
        ))
    {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

/// Options of a backup from the live target.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// Why the snapshot is taken.
    pub message: Option<String>,
    /// Write a snapshot even if the configuration equals the latest.
    #[serde(default)]
    pub force: bool,
    /// Store it even if it fails the environment's JSON Schema with `on_backup =
    /// "refuse"` (flagged in its metadata, recorded in the audit event).
    #[serde(default)]
    pub skip_schema_check: bool,
}

/// Snapshots the environment's live configuration (from the config file's `live`).
/// 201 with the new snapshot, or 200 when it is unchanged (nothing written).
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/backup", tag = "snapshots", operation_id = "backup",
    params(EnvPath),
    request_body(content = Option<BackupBody>, description = "Optional; an empty body is allowed"),
    responses(
        OperateErrors,
        (status = 201, description = "A snapshot was written", body = BackupOutcome),
        (status = 200, description = "Unchanged since the latest snapshot; nothing written", body = BackupOutcome),
        (status = 400, description = "Invalid id or malformed body, or the configuration fails \
            the environment's JSON Schema with `on_backup = \"refuse\"` (nothing written)", body = ErrorBody),
        (status = 404, description = "The environment is not in the config or has no live target", body = ErrorBody),
        (status = 413, description = "The live configuration is over snapshots.max_size", body = ErrorBody),
        (status = 502, description = "`live_refused` or `live_missing`: the live target's own answer", body = ErrorBody),
        (status = 503, description = "The live target or the store is unreachable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn backup(
    CanOperate(who): CanOperate,
    Env(env): Env,
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<BackupBody>,
) -> Result<Response, ApiError> {
    configured_live(&state, &env)
        .map_err(|e| e.with_hint("or upload the configuration with POST .../snapshots"))?;
    let mut req = BackupRequest::new(bytes::Bytes::new(), Trigger::Api);
    req.actor = who.actor();
    let actor = req.actor.clone();
    req.message = body.message;
    req.force = body.force;
    req.skip_schema_check = body.skip_schema_check;
    let s = state.clone();
    let e = env.clone();
    let outcome = state
        .tasks
        .run(async move {
            let started = Instant::now();
            let result = async {
                let target =
                    jetvault_core::live::open_configured(&s.config.load_full(), &e).await?;
                s.vault.backup_from_live(&e, target.as_ref(), req).await
            }
            .await;
            s.metrics
                .record_backup(&e, Trigger::Api, &result, started.elapsed());
            if let Err(err) = &result {
                s.vault.notify(Notice::backup_failed(&e, &actor, err));
            }
            result
        })
        .await?;
    Ok(backup_response(&env, &who, &outcome))
}

/// The live target of `env` in the server's config.
///
/// # Errors
/// `NotFound` (a 404) naming the config table to add when the environment is not in
/// the config or has no live target.
pub(crate) fn configured_live(state: &AppState, env: &EnvRef) -> Result<LiveConfig, Error> {
    match state.config.load().env(env) {
        Some(c) => c.live.clone().ok_or("has no live target in the config"),
        None => Err("is not in the config"),
    }
    .map_err(|why| {
        Error::not_found(format!(
            "{env} {why}: add [apps.{}.envs.{}.live] to the server's config",
            env.app, env.env
        ))
    })
}

/// How an upload is described.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Why the snapshot is taken (or the `X-Jetvault-Message` header).
    pub message: Option<String>,
    /// Write a snapshot even if the configuration equals the latest.
    #[serde(default)]
    pub force: bool,
}

/// Uploads a configuration as a new snapshot: the request body IS the configuration
/// (JSON). Nothing is written if it is not JSON or is too large.
#[utoipa::path(post, path = "/v1/apps/{app}/envs/{env}/snapshots", tag = "snapshots", operation_id = "upload_snapshot",
    params(EnvPath, UploadQuery,
        ("X-Jetvault-Message" = Option<String>, Header, description = "Why (percent-encoded UTF-8 allowed)")),
    request_body(content = Value, content_type = "application/json", description = "The configuration: any JSON value"),
    responses(
        OperateErrors,
        (status = 201, description = "A snapshot was written", body = BackupOutcome),
        (status = 200, description = "Unchanged since the latest snapshot; nothing written", body = BackupOutcome),
        (status = 400, description = "Invalid id, or the body is not JSON (nothing written)", body = ErrorBody),
        (status = 413, description = "Over server.max_body_size or snapshots.max_size", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    CanOperate(who): CanOperate,
    Env(env): Env,
    Q(q): Q<UploadQuery>,
    headers: axum::http::HeaderMap,
    State(state): State<AppState>,
    Body(raw): Body,
) -> Result<Response, ApiError> {
    let message = match q.message {
        Some(m) => Some(m),
        None => headers
            .get("x-jetvault-message")
            .map(|v| {
                percent_encoding::percent_decode(v.as_bytes())
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| Error::invalid("X-Jetvault-Message is not UTF-8"))
            })
            .transpose()?,
    };
    let mut req = BackupRequest::new(raw, Trigger::Upload);
    req.actor = who.actor();
    let actor = req.actor.clone();
    req.message = message;
    req.force = q.force;
    req.source = Some("upload:api".into());
    let s = state.clone();
    let e = env.clone();
    let outcome = state
        .tasks
        .run(async move {
            let started = Instant::now();
            let result = s.vault.backup(&e, req).await;
            s.metrics
                .record_backup(&e, Trigger::Upload, &result, started.elapsed());
            if let Err(err) = &result {
                s.vault.notify(Notice::backup_failed(&e, &actor, err));
            }
            result
        })
        .await?;
    Ok(backup_response(&env, &who, &outcome))
}

fn backup_response(env: &EnvRef, who: &Principal, outcome: &BackupOutcome) -> Response {
    let meta = outcome.snapshot();
    match outcome {
        BackupOutcome::Created(_) => {
            tracing::info!(%env, version = meta.version, token = who.name(), "snapshot written through the API");
            let mut res = json_response(StatusCode::CREATED, outcome);
            let location = format!(
                "/v1/apps/{}/envs/{}/snapshots/{}",
                env.app, env.env, meta.version
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
        BackupOutcome::Unchanged(_) => json_response(StatusCode::OK, outcome),
    }
}

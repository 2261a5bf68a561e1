//! The HTTP service: routes under `/v1`, the operations routes, the state they share, and
//! serving with graceful shutdown.
//!
//! One file per route group (`releases`, `snapshots`, `restore`, `ops`); errors go through the one
//! mapping in [`error`]; bearer-token roles in [`auth`]; the release pointer cache in
//! [`cache`]; metrics in [`crate::metrics`]. The OpenAPI document is generated from the
//! handlers' annotations by `utoipa`, and the router is built from the same
//! annotations (`utoipa-axum`), so the two cannot drift apart.

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use tokio::net::TcpListener;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::tasks::Tasks;
use jetvault_core::config::Config;
use jetvault_core::error::{Error, Result};
use jetvault_core::id::EnvRef;
use jetvault_core::vault::Vault;

pub mod auth;
pub mod cache;
pub mod conn;
pub mod console;
pub mod doc;
pub mod envs;
pub mod error;
pub mod extract;
pub mod ops;
pub mod pins;
pub mod prune;
pub mod releases;
pub mod restore;
pub mod restore_all;
pub mod restore_all_runs;
pub mod snapshots;
pub mod verify;

use crate::metrics::{DiscoveryMetrics, HttpMetrics, Metrics};
use auth::Auth;
use cache::PointerCache;
use ops::ReadyCache;

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    /// The domain.
    pub vault: Vault,
    /// The configuration in force: the configured environments and the discovered ones;
    /// swapped whole when SIGHUP reloads the file or discovery finds a change (a
    /// request keeps the one it started with).
    pub config: ArcSwap<Config>,
    /// The environments discovery lists now (none are configured ones).
    pub discovered: ArcSwap<BTreeSet<EnvRef>>,
    /// Tokens and roles; swapped when SIGHUP reloads the file.
    pub auth: ArcSwap<Auth>,
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Discovery refreshes and config reloads (also inside `metrics`).
    pub discovery_metrics: DiscoveryMetrics,
    /// The HTTP request counters (also inside `metrics`).
    pub http_metrics: Arc<HttpMetrics>,
    /// Release pointers and configurations in memory.
    pub cache: PointerCache,
    /// The last store check, for `/readyz`.
    pub ready: ReadyCache,
    /// Writes in flight.
    pub tasks: Tasks,
    /// The OpenAPI document, encoded once.
    pub openapi: Bytes,
}

/// The handlers' state: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jetvault",
        description = "Versioned snapshots and releases of no-code app configurations. \
            Clients poll `GET /v1/apps/{app}/envs/{env}/release` (or `.../release/config`) \
            with `If-None-Match: <ETag>`; 304 means nothing changed. Send \
            `Authorization: Bearer <token>`: role `read` reads, role `operate` also writes."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "releases", description = "The release pointer, the released configuration, release, rollback, promote"),
        (name = "snapshots", description = "History, content, diff, events, backup and upload"),
        (name = "restore", description = "Push a stored snapshot back to the live configuration, safely"),
        (name = "environments", description = "Every environment at a glance, and who the caller is"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from server.tokens: role `read` for GET routes, `operate` for \
                         POST routes",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route, with its OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Releases.
        .routes(routes!(releases::pointer, releases::release))
        .routes(routes!(releases::config))
        .routes(routes!(releases::history))
        .routes(routes!(releases::rollback))
        .routes(routes!(releases::promote))
        // Snapshots.
        .routes(routes!(snapshots::list, snapshots::upload))
        .routes(routes!(snapshots::show))
        .routes(routes!(snapshots::content))
        .routes(routes!(snapshots::diff))
        .routes(routes!(snapshots::events))
        .routes(routes!(snapshots::backup))
        // Pins.
        .routes(routes!(pins::list))
        .routes(routes!(pins::pin, pins::unpin))
        // Verify and prune.
        .routes(routes!(verify::verify))
        .routes(routes!(prune::plan))
        .routes(routes!(prune::apply))
        // Restore.
        .routes(routes!(restore::restore))
        .routes(routes!(restore_all::start))
        .routes(routes!(restore_all::status))
        .routes(routes!(restore_all_runs::list))
        // Environments.
        .routes(routes!(envs::list))
        .routes(routes!(envs::session))
        // Operations.
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
}

/// The OpenAPI document of the service.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    doc::finish(&mut doc);
    doc
}

/// Builds the router and its state.
///
/// # Errors
/// `Internal` if the OpenAPI document can't be encoded.
pub fn build(
    vault: Vault,
    config: Arc<Config>,
    auth: Auth,
    tasks: Tasks,
) -> Result<(Router, AppState)> {
    let (router, mut doc) = api().split_for_parts();
    doc::finish(&mut doc);
    let openapi = doc
        .to_json()
        .map_err(|e| Error::internal(format!("cannot encode the OpenAPI document: {e}")))?;
    let http_metrics = Arc::new(HttpMetrics::new(doc.paths.paths.keys().map(String::as_str)));
    let mut metrics = Metrics::new();
    metrics.register_http(http_metrics.clone());
    let discovery_metrics = DiscoveryMetrics::register(&mut metrics);
    let max_body = usize::try_from(config.server.max_body_size.0).unwrap_or(usize::MAX);
    let state = AppState(Arc::new(Shared {
        vault,
        cache: PointerCache::new(config.server.pointer_ttl),
        config: ArcSwap::new(config),
        discovered: ArcSwap::default(),
        auth: ArcSwap::from_pointee(auth),
        metrics: Arc::new(metrics),
        discovery_metrics,
        http_metrics,
        ready: ReadyCache::default(),
        tasks,
        openapi: Bytes::from(openapi),
    }));
    let router = router
        // The console: HTML and assets, not part of the API document.
        .route("/", axum::routing::get(console::index))
        .route("/console/{file}", axum::routing::get(console::asset))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state.clone());
    Ok((router, state))
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits for the requests in flight (the caller bounds that wait with its grace period).
/// See [`conn`] for how connections are served.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: &AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::Limits::from_config(&state.config.load().server);
    conn::serve_with(
        listener,
        router,
        state.http_metrics.clone(),
        limits,
        shutdown,
    )
    .await
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
static VARY_ENCODING: HeaderValue = HeaderValue::from_static("Accept-Encoding");
static ZSTD: HeaderValue = HeaderValue::from_static("zstd");

/// A JSON response.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, JSON.clone());
            res
        }
        Err(e) => {
            error::ApiError::from(Error::internal(format!("cannot encode the response: {e}")))
                .into_response()
        }
    }
}

/// Adds `Link: <path?limit=L&before=N>; rel="next"` to a page that has a next one
/// (RFC 8288), so that clients can follow pages without knowing the cursor's name.
pub(crate) fn link_next(
    mut res: Response,
    path: &str,
    limit: usize,
    next: Option<u64>,
) -> Response {
    if let Some(before) = next
        && let Ok(v) = HeaderValue::from_str(&format!(
            "<{path}?limit={limit}&before={before}>; rel=\"next\""
        ))
    {
        res.headers_mut().insert(header::LINK, v);
    }
    res
}

/// A 304 with the entity tag (and `Vary: Accept-Encoding` for configurations).
pub(crate) fn not_modified(etag: &HeaderValue, vary: bool) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    let h = res.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, NO_CACHE.clone());
    if vary {
        h.insert(header::VARY, VARY_ENCODING.clone());
    }
    res
}

/// A configuration: raw JSON (also in `file`, when there is one, for `sendfile`), or the
/// stored zstd frame with `Content-Encoding: zstd`.
pub(crate) fn config_response(
    body: Bytes,
    etag: &HeaderValue,
    zstd: bool,
    file: Option<&conn::FileBody>,
) -> Response {
    let mut res = Response::new(axum::body::Body::from(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, JSON.clone());
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, NO_CACHE.clone());
    h.insert(header::VARY, VARY_ENCODING.clone());
    if zstd {
        h.insert(header::CONTENT_ENCODING, ZSTD.clone());
    }
    if let Some(file) = file {
        res.extensions_mut().insert(file.clone());
    }
    res
}

/// Middleware: counts every response by route template, method and status.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    state.http_metrics.count(
        route.as_ref().map(MatchedPath::as_str),
        &method,
        res.status().as_u16(),
    );
    res
}

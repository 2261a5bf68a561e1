//! `GET /v1/restore-all`: the restore-all runs in the store, newest first, a page at a
//! time, each with its point, selection and counts by status (the console's "Restore
//! runs" page). One run in full is `GET /v1/restore-all/{run}` ([`super::restore_all`]).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::CanRead;
use super::error::{ApiError, ErrorBody, ReadErrors};
use super::extract::Q;
use super::{AppState, json_response};
use jetvault_core::restore_all::RunPage;

const DEFAULT_PAGE: usize = 20;

/// Paging of the runs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// How many runs (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Only runs started before this one (for the next page, pass `next_before`).
    #[param(pattern = r"^[A-Za-z0-9-]{1,64}$", min_length = 1, max_length = 64)]
    pub before: Option<String>,
}

/// Lists the restore-all runs recorded in the store, newest first: each run's id, start
/// and last update, point (or the run it undoes), selection, who started it, its
/// environments counted by status, and whether it is finished (none pending or failed).
/// Reads the page's run records only.
#[utoipa::path(get, path = "/v1/restore-all", tag = "restore", operation_id = "list_restore_all",
    params(RunsQuery),
    responses(
        ReadErrors,
        (status = 200, description = "A page of runs, newest first; `next_before` and \
            `Link: <...>; rel=\"next\"` name the next page", body = RunPage,
            headers(("Link" = String, description = "`</v1/restore-all?limit=L&before=RUN>; rel=\"next\"` when there is a next page"))),
        (status = 400, description = "Invalid `limit` or `before`", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    _: CanRead,
    Q(q): Q<RunsQuery>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    let page = state.vault.list_runs(q.before.as_deref(), limit).await?;
    let next = page.next_before.clone();
    let mut res = json_response(StatusCode::OK, &page);
    if let Some(before) = next
        && let Ok(v) = HeaderValue::from_str(&format!(
            "</v1/restore-all?limit={limit}&before={before}>; rel=\"next\""
        ))
    {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_limit_matches_the_documented_maximum() {
        assert_eq!(jetvault_core::restore_all::list::MAX_RUNS_PAGE, 100);
    }
}

//! Which environments a restore-all covers, and which version each goes to.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Point, SkipReason};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{AppId, EnvRef};
use crate::live::LiveTarget;
use crate::meta::SnapshotMeta;
use crate::vault::Vault;

/// The environments to cover: those of `apps` (all apps when empty) whose env name (or
/// `app/env`, when the pattern has a `/`) matches `pattern` (`*` any run of
/// characters, `?` one; all when `None`).
#[derive(Debug, Clone, Default)]
pub struct EnvFilter {
    /// Only these apps (none: every app).
    pub apps: Vec<AppId>,
    /// A glob over env names, or over `app/env` when it holds a `/`.
    pub pattern: Option<String>,
}

impl EnvFilter {
    /// The filter of a request: `all`, or some `apps` and/or an env `pattern`; `how`
    /// names these selectors in the caller's words (flags, or body fields) for the error.
    ///
    /// # Errors
    /// `InvalidInput` when nothing is selected (saying `how`), or for an invalid app id.
    pub fn from_request(
        all: bool,
        apps: &[String],
        pattern: Option<&String>,
        how: &str,
    ) -> Result<Self> {
        if !all && apps.is_empty() && pattern.is_none() {
            return Err(Error::invalid(format!("say which environments: {how}")));
        }
        Ok(Self {
            apps: apps
                .iter()
                .map(|a| AppId::new(a.as_str()))
                .collect::<Result<_>>()?,
            pattern: pattern.cloned(),
        })
    }

    /// Whether `env` is covered.
    #[must_use]
    pub fn matches(&self, env: &EnvRef) -> bool {
        if !self.apps.is_empty() && !self.apps.contains(&env.app) {
            return false;
        }
        match &self.pattern {
            None => true,
            Some(p) if p.contains('/') => glob(p, &env.to_string()),
            Some(p) => glob(p, env.env.as_str()),
        }
    }
}

/// Glob matching with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An environment and its live target, or why it has none.
#[derive(Debug, Clone)]
pub struct EnvTarget {
    /// The environment.
    pub env: EnvRef,
    /// Its live target, or why there is none.
    pub target: std::result::Result<Arc<dyn LiveTarget>, String>,
}

impl Vault {
    /// The environments `filter` covers among those in the store and those in
    /// `config`, with their live targets (or why they have none), in id order.
    ///
    /// # Errors
    /// Store errors while listing the stored environments.
    pub async fn restore_all_targets(
        &self,
        config: &Config,
        filter: &EnvFilter,
    ) -> Result<Vec<EnvTarget>> {
        let mut envs: Vec<EnvRef> = self.stored_envs().await?;
        envs.extend(config.envs().map(|(e, _)| e));
        envs.sort();
        envs.dedup();
        envs.retain(|e| filter.matches(e));
        let mut out = Vec::with_capacity(envs.len());
        for env in envs {
            let target = crate::live::open_configured(config, &env)
                .await
                .map_err(|e| e.report());
            out.push(EnvTarget { env, target });
        }
        Ok(out)
    }

    /// The newest snapshot of `env` taken at or before `at`, looked for among the
    /// newest `AT_PAGES` pages of the history: each page is one LIST of the snapshots
    /// and one of the listing index, which describes them without a HEAD each, where
    /// `snapshot_at`'s binary search costs a HEAD per step. The point of a restore-all
    /// is usually recent. `None` when it is not found there (older, or none at all):
    /// `snapshot_at` then finds it, or says why not.
    /// With the version, the latest snapshot (the first of the first page).
    async fn recent_at(
        &self,
        env: &EnvRef,
        at: DateTime<Utc>,
    ) -> Result<Option<(u64, Option<SnapshotMeta>)>> {
        const PAGE: usize = 32;
        const AT_PAGES: usize = 4;
        let mut before = None;
        let mut latest = None;
        for _ in 0..AT_PAGES {
            let page = self.list(env, before, PAGE).await?;
            if before.is_none() {
                latest = page.first().cloned();
            }
            if let Some(m) = page.iter().find(|m| m.created_at <= at) {
                return Ok(Some((m.version, latest)));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => before = Some(last.version),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The version `point` names for `env`.
    ///
    /// # Errors
    /// `NotFound` (with the skip reason to give) when there is none; store errors.
    pub async fn resolve_point(
        &self,
        env: &EnvRef,
        point: &Point,
    ) -> std::result::Result<u64, (Option<SkipReason>, Error)> {
        self.resolve_point_with_latest(env, point)
            .await
            .map(|(v, _)| v)
    }

    /// [`Vault::resolve_point`], with the latest snapshot when the resolution listed
    /// it on the way (`--at` within the newest pages): the restore then compares live
    /// with it instead of listing again ([`crate::restore::RestoreRequest::latest`]).
    ///
    /// # Errors
    /// As [`Vault::resolve_point`].
    pub async fn resolve_point_with_latest(
        &self,
        env: &EnvRef,
        point: &Point,
    ) -> std::result::Result<(u64, Option<SnapshotMeta>), (Option<SkipReason>, Error)> {
        let not_found = |reason: SkipReason| {
            move |e: Error| {
                if e.kind() == ErrorKind::NotFound {
                    (Some(reason), e)
                } else {
                    (None, e)
                }
            }
        };
        match point {
            Point::At(t) => {
                if let Some(found) = self.recent_at(env, *t).await.map_err(|e| (None, e))? {
                    return Ok(found);
                }
                self.snapshot_at(env, *t)
                    .await
                    .map(|m| (m.version, None))
                    .map_err(not_found(SkipReason::NoSnapshot))
            }
            Point::CurrentRelease => match self.current_release(env).await {
                Ok(Some(p)) => Ok((p.release.version, None)),
                Ok(None) => Err((
                    Some(SkipReason::NoRelease),
                    Error::not_found(format!("{env} has no release")),
                )),
                Err(e) => Err((None, e)),
            },
            Point::ReleaseAt(t) => {
                let releases = self
                    .releases(env, usize::MAX)
                    .await
                    .map_err(|e| (None, e))?;
                releases
                    .iter()
                    .find(|r| r.released_at <= *t)
                    .map(|r| (r.version, None))
                    .ok_or_else(|| {
                        let oldest = releases.last().map_or_else(
                            || "it has no release".to_string(),
                            |r| {
                                format!("its oldest release is from {}", r.released_at.to_rfc3339())
                            },
                        );
                        (
                            Some(SkipReason::NoRelease),
                            Error::not_found(format!(
                                "{env} had no release at {}: {oldest}",
                                t.to_rfc3339()
                            )),
                        )
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "production"));
        assert!(glob("prod*", "production"));
        assert!(glob("*tion", "production"));
        assert!(glob("p?oduction", "production"));
        assert!(glob("*-eu-*", "crm-eu-1"));
        assert!(!glob("prod", "production"));
        assert!(!glob("staging*", "production"));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
    }

    #[test]
    fn filters() {
        let env = |a: &str, e: &str| EnvRef::parse(a, e).unwrap();
        let f = EnvFilter {
            apps: vec![AppId::new("crm").unwrap()],
            pattern: Some("prod*".into()),
        };
        assert!(f.matches(&env("crm", "production")));
        assert!(!f.matches(&env("hr", "production")));
        assert!(!f.matches(&env("crm", "staging")));
        let f = EnvFilter {
            apps: vec![],
            pattern: Some("h*/d*".into()),
        };
        assert!(f.matches(&env("hr", "dev")));
        assert!(!f.matches(&env("crm", "dev")));
        assert!(EnvFilter::default().matches(&env("a", "b")));
    }
}

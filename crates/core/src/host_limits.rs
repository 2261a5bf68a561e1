//! A per-host limit on concurrent requests: one small semaphore per live host, so that
//! a batch that works on many environments at once (restore-all, and the scale-out
//! work that fans backups out) never sends more than `per_host` requests at a time to
//! the same platform, however high its overall concurrency.
//!
//! Callers take a permit for a target's [`host_key`] around each call to it; targets
//! with no host (local files) are not limited. A limit may also cap the requests per
//! second toward each host ([`HostLimits::with_rates`]: a rate limiter per host, from
//! the `governor` crate), and give some hosts limits of their own; the scheduler wraps
//! its live targets in [`Limited`] so that its reads go through them.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Result;
use crate::filter::EnvFilters;
use crate::live::LiveTarget;

/// One host's limits: concurrent requests and requests per second (`None`: no rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests at a time (at least one).
    pub concurrency: usize,
    /// Requests per second.
    pub rate: Option<NonZeroU32>,
}

struct Host {
    semaphore: Arc<Semaphore>,
    rate: Option<Arc<DefaultDirectRateLimiter>>,
}

/// Semaphores (and rate limiters) keyed by host, created on first use.
pub struct HostLimits {
    per_host: usize,
    rate: Option<NonZeroU32>,
    overrides: BTreeMap<String, Limit>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

impl std::fmt::Debug for HostLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLimits")
            .field("per_host", &self.per_host)
            .field("rate", &self.rate)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl HostLimits {
    /// At most `per_host` concurrent requests per host (at least one).
    #[must_use]
    pub fn new(per_host: usize) -> Self {
        Self::with_rates(
            Limit {
                concurrency: per_host,
                rate: None,
            },
            BTreeMap::new(),
        )
    }

    /// `default` toward every host but those of `overrides` (keyed by [`host_key`]).
    #[must_use]
    pub fn with_rates(default: Limit, overrides: BTreeMap<String, Limit>) -> Self {
        Self {
            per_host: default.concurrency.max(1),
            rate: default.rate,
            overrides,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, host: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                let limit = self.overrides.get(host).copied().unwrap_or(Limit {
                    concurrency: self.per_host,
                    rate: self.rate,
                });
                Arc::new(Host {
                    semaphore: Arc::new(Semaphore::new(limit.concurrency.max(1))),
                    // A burst of one: requests are spaced evenly at the rate.
                    rate: limit.rate.map(|r| {
                        Arc::new(RateLimiter::direct(
                            Quota::per_second(r).allow_burst(NonZeroU32::MIN),
                        ))
                    }),
                })
            })
            .clone()
    }

    /// The limit per host.
    #[must_use]
    pub fn per_host(&self) -> usize {
        self.per_host
    }

    /// Waits for a permit toward `host`; `None` (no host, e.g. a local file) needs none.
    /// The permit is released when dropped.
    /// With a rate, the permit is given when the host's rate allows one more request.
    pub async fn acquire(&self, host: Option<&str>) -> Option<OwnedSemaphorePermit> {
        let host = self.host(host?);
        // The semaphore is never closed, so acquiring only waits.
        let permit = host.semaphore.clone().acquire_owned().await.ok();
        if let Some(rate) = &host.rate {
            rate.until_ready().await;
        }
        permit
    }
}

/// A live target whose reads and writes take a permit of [`HostLimits`] first.
pub struct Limited {
    inner: Arc<dyn LiveTarget>,
    limits: Arc<HostLimits>,
    host: Option<String>,
}

impl std::fmt::Debug for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("inner", &self.inner.describe())
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Limited {
    /// `inner`, limited by `limits` toward its host.
    #[must_use]
    pub fn new(inner: Arc<dyn LiveTarget>, limits: Arc<HostLimits>) -> Self {
        let host = host_key(&inner.describe());
        Self {
            inner,
            limits,
            host,
        }
    }
}

#[async_trait]
impl LiveTarget for Limited {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let _permit = self.limits.acquire(self.host.as_deref()).await;
        self.inner.read(limit).await
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let _permit = self.limits.acquire(self.host.as_deref()).await;
        self.inner.write(bytes).await
    }

    fn filters(&self) -> Option<Arc<EnvFilters>> {
        self.inner.filters()
    }
}

/// The host a live target talks to, from its description: `host:port` of an HTTP(S)
/// URL, or of the endpoint of an S3 target (`s3://bucket/key at http://host:port`),
/// `s3` for AWS itself; `None` for a local file.
#[must_use]
pub fn host_key(describe: &str) -> Option<String> {
    let (scheme_url, endpoint) = match describe.split_once(" at ") {
        Some((url, endpoint)) => (url, Some(endpoint)),
        None => (describe, None),
    };
    let parsed = url::Url::parse(endpoint.unwrap_or(scheme_url)).ok()?;
    match parsed.scheme() {
        "http" | "https" => {
            let host = parsed.host_str()?;
            Some(match parsed.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            })
        }
        "s3" => Some("s3".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn hosts_of_targets() {
        assert_eq!(host_key("file:/srv/live.json"), None);
        assert_eq!(
            host_key("https://n8n.example.com/api/v1/workflows").as_deref(),
            Some("n8n.example.com:443")
        );
        assert_eq!(
            host_key("http://127.0.0.1:1880/flows").as_deref(),
            Some("127.0.0.1:1880")
        );
        assert_eq!(
            host_key("s3://bucket/app.json at http://127.0.0.1:4566").as_deref(),
            Some("127.0.0.1:4566")
        );
        assert_eq!(host_key("s3://bucket/app.json").as_deref(), Some("s3"));
    }

    #[tokio::test]
    async fn never_more_than_the_limit_toward_one_host() {
        let limits = Arc::new(HostLimits::new(2));
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..16usize)
            .map(|i| {
                let (limits, now, max) = (limits.clone(), now.clone(), max.clone());
                tokio::spawn(async move {
                    let host = if i == 0 { "other:80" } else { "a:80" };
                    let _permit = limits.acquire(Some(host)).await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Two permits toward "a", one task toward "other".
        assert!(max.load(Ordering::SeqCst) <= 3);
        assert!(limits.acquire(None).await.is_none());
    }

    #[tokio::test]
    async fn a_rate_spaces_the_requests_toward_a_host() {
        let ten = NonZeroU32::new(10).unwrap();
        let one = NonZeroU32::new(1).unwrap();
        let limits = HostLimits::with_rates(
            Limit {
                concurrency: 4,
                rate: Some(ten),
            },
            BTreeMap::from([(
                "slow:80".to_string(),
                Limit {
                    concurrency: 1,
                    rate: Some(one),
                },
            )]),
        );
        // A permit is given, and the host's limiter then has no room for another at once.
        drop(limits.acquire(Some("a:80")).await);
        let a = limits.host("a:80");
        assert!(
            a.rate.as_ref().unwrap().check().is_err(),
            "10/s: the next request waits"
        );
        let host = limits.host("slow:80");
        assert_eq!(
            host.semaphore.available_permits(),
            1,
            "the override's concurrency"
        );
        assert!(host.rate.as_ref().unwrap().check().is_ok());
        assert!(
            host.rate.as_ref().unwrap().check().is_err(),
            "1/s: the second request waits"
        );
        assert_eq!(limits.host("other:80").semaphore.available_permits(), 4);
    }
}

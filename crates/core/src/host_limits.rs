//! A per-host limit on concurrent requests: one small semaphore per live host, so that
//! a batch that works on many environments at once (restore-all, and the scale-out
//! work that fans backups out) never sends more than `per_host` requests at a time to
//! the same platform, however high its overall concurrency.
//!
//! Callers take a permit for a target's [`host_key`] around each call to it; targets
//! with no host (local files) are not limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Semaphores keyed by host, created on first use.
#[derive(Debug)]
pub struct HostLimits {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    /// At most `per_host` concurrent requests per host (at least one).
    #[must_use]
    pub fn new(per_host: usize) -> Self {
        Self {
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The limit per host.
    #[must_use]
    pub fn per_host(&self) -> usize {
        self.per_host
    }

    /// Waits for a permit toward `host`; `None` (no host, e.g. a local file) needs none.
    /// The permit is released when dropped.
    pub async fn acquire(&self, host: Option<&str>) -> Option<OwnedSemaphorePermit> {
        let host = host?;
        let semaphore = {
            let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        // The semaphore is never closed, so acquiring only waits.
        semaphore.acquire_owned().await.ok()
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
}

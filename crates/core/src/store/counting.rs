//! A store wrapper that counts requests by operation: for tests that check how many
//! requests an operation costs, for benchmarks, and for the service's metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Conditional, Leftover, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};
use crate::error::Result;

/// Request counts by operation.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// GET (conditional GETs included).
    pub get: AtomicU64,
    /// HEAD.
    pub head: AtomicU64,
    /// PUT.
    pub put: AtomicU64,
    /// LIST (both kinds).
    pub list: AtomicU64,
    /// DELETE.
    pub delete: AtomicU64,
    /// Reachability checks.
    pub check: AtomicU64,
}

impl RequestCounts {
    /// The total of all operations.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_op().iter().map(|(_, n)| n).sum()
    }

    /// Each operation's count, named.
    #[must_use]
    pub fn by_op(&self) -> [(&'static str, u64); 6] {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("get", l(&self.get)),
            ("head", l(&self.head)),
            ("put", l(&self.put)),
            ("list", l(&self.list)),
            ("delete", l(&self.delete)),
            ("check", l(&self.check)),
        ]
    }
}

/// Wraps a store and counts every request made through it.
#[derive(Debug, Clone)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Arc<RequestCounts>,
}

impl CountingStore {
    /// Counts the requests made to `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            counts: Arc::new(RequestCounts::default()),
        }
    }

    /// The counters (shared with every clone).
    #[must_use]
    pub fn counts(&self) -> &Arc<RequestCounts> {
        &self.counts
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl Store for CountingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn get(&self, key: &str) -> Result<Object> {
        bump(&self.counts.get);
        self.inner.get(key).await
    }

    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
        bump(&self.counts.get);
        self.inner.get_if_none_match(key, etag).await
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        bump(&self.counts.head);
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<String> {
        bump(&self.counts.put);
        self.inner.put(key, bytes, metadata, mode).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        bump(&self.counts.list);
        self.inner.list(prefix, start_after, limit).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        bump(&self.counts.list);
        self.inner.list_dirs(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        bump(&self.counts.delete);
        self.inner.delete(key).await
    }

    async fn check(&self) -> Result<()> {
        bump(&self.counts.check);
        self.inner.check().await
    }

    async fn leftovers(&self, prefix: &str, grace: Duration) -> Result<Vec<Leftover>> {
        self.inner.leftovers(prefix, grace).await
    }

    async fn remove_leftover(&self, leftover: &Leftover, grace: Duration) -> Result<bool> {
        self.inner.remove_leftover(leftover, grace).await
    }
}

/// Requests by operation, for the tests that count them: (get, head, put, list, delete).
#[cfg(test)]
pub(crate) type Ops = (u64, u64, u64, u64, u64);

/// `c`'s counts as [`Ops`].
#[cfg(test)]
pub(crate) fn ops(c: &RequestCounts) -> Ops {
    let [get, head, put, list, delete, _] = c.by_op().map(|(_, n)| n);
    (get, head, put, list, delete)
}

/// The requests made between two readings.
#[cfg(test)]
pub(crate) fn minus(a: Ops, b: Ops) -> Ops {
    (a.0 - b.0, a.1 - b.1, a.2 - b.2, a.3 - b.3, a.4 - b.4)
}

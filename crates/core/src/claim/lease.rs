//! Leases: one process at a time holds a piece of work (a restore-all run), decided
//! through the store itself, as tick claims are: a create-only object
//! ([`PutMode::Create`]) names the holder and when the lease expires; the holder renews
//! it by compare-and-swap on its etag ([`PutMode::Update`]) while the work goes on; a
//! lease past its expiry (its holder died, or lost the store for longer than the lease)
//! is taken over by compare-and-swap too, so that two takers can't both win.
//!
//! Same building blocks as the tick claims ([`replica_id`] for the holder, [`now_ms`],
//! a lost create-only write as the "someone else has it" answer); what differs is the
//! renewal: a tick claim lives as long as its replica's shared heartbeat, a lease is
//! renewed on its own object, since the work can take longer than any tick.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{now_ms, replica_id};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Metadata, PutMode, Store};

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The process that holds it ([`replica_id`]: host, pid, a random part).
    pub holder: String,
    /// When it was taken (ms since the epoch).
    pub acquired_ms: i64,
    /// When it was last renewed (ms).
    pub renewed_ms: i64,
    /// When it expires unless renewed (ms): then another process may take it over.
    pub expires_ms: i64,
}

impl LeaseRecord {
    /// When it expires, as a time.
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.expires_ms).unwrap_or_default()
    }

    fn encode(&self) -> Result<Bytes> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("cannot encode a lease: {e}")))
    }
}

/// What [`Lease::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    /// This process holds the lease now.
    Held(Lease),
    /// Another process holds it and it has not expired.
    Busy(LeaseRecord),
}

/// A lease this process holds on `key`.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn Store>,
    key: String,
    holder: String,
    acquired_ms: i64,
    ttl: Duration,
    etag: Mutex<String>,
    expires_ms: AtomicI64,
    lost: AtomicBool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Lease {
    /// Takes the lease on `key` for `ttl`: creates it (create-only), or takes over one
    /// that expired (compare-and-swap on the etag read). `Busy` with the holder's record
    /// when another process holds it.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for an object at `key` that is not a lease.
    pub async fn acquire(store: Arc<dyn Store>, key: &str, ttl: Duration) -> Result<Acquired> {
        let holder = replica_id();
        for _ in 0..8 {
            let now = now_ms();
            let record = LeaseRecord {
                holder: holder.clone(),
                acquired_ms: now,
                renewed_ms: now,
                expires_ms: now.saturating_add(ms(ttl)),
            };
            let meta = Metadata::new();
            match store
                .put(key, record.encode()?, &meta, PutMode::Create)
                .await
            {
                Ok(etag) => {
                    return Ok(Acquired::Held(Self::new(
                        store, key, holder, ttl, etag, &record,
                    )));
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.context(format!("taking the lease {key}"))),
            }
            let obj = match store.get(key).await {
                Ok(obj) => obj,
                // Released meanwhile: create it again.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e.context(format!("reading the lease {key}"))),
            };
            let found: LeaseRecord = serde_json::from_slice(&obj.bytes).map_err(|e| {
                Error::corrupt(format!(
                    "{key} is not a lease ({e}); delete it if no process is running its work"
                ))
            })?;
            if found.expires_ms > now_ms() {
                return Ok(Acquired::Busy(found));
            }
            // Expired: take it over, unless another process renews or takes it first.
            let takeover = PutMode::Update {
                etag: obj.info.etag,
            };
            match store.put(key, record.encode()?, &meta, takeover).await {
                Ok(etag) => {
                    tracing::info!(%key, previous = %found.holder,
                        expired = %found.expires_at().to_rfc3339(), "took over an expired lease");
                    return Ok(Acquired::Held(Self::new(
                        store, key, holder, ttl, etag, &record,
                    )));
                }
                Err(e) if e.is_conflict() || e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.context(format!("taking over the lease {key}"))),
            }
        }
        Err(Error::unavailable(format!(
            "the lease {key} kept changing while being taken: other processes are competing \
             for it; try again"
        )))
    }

    fn new(
        store: Arc<dyn Store>,
        key: &str,
        holder: String,
        ttl: Duration,
        etag: String,
        record: &LeaseRecord,
    ) -> Self {
        Self {
            store,
            key: key.to_string(),
            holder,
            acquired_ms: record.acquired_ms,
            ttl,
            etag: Mutex::new(etag),
            expires_ms: AtomicI64::new(record.expires_ms),
            lost: AtomicBool::new(false),
        }
    }

    /// The holder's id (this process).
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// When the lease expires unless renewed.
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.expires_ms.load(Ordering::Acquire)).unwrap_or_default()
    }

    /// Whether the lease may be held by another process now: a renewal found it taken
    /// over, or it expired without a renewal. The work must stop starting new items.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || now_ms() >= self.expires_ms.load(Ordering::Acquire)
    }

    /// Renews the lease for another `ttl` (compare-and-swap on its etag).
    ///
    /// # Errors
    /// `PreconditionFailed` when it was taken over or deleted (then [`Lease::is_lost`]);
    /// store errors (the lease stands until it expires).
    pub async fn renew(&self) -> Result<()> {
        if self.lost.load(Ordering::Acquire) {
            return Err(self.lost_error());
        }
        let now = now_ms();
        let record = LeaseRecord {
            holder: self.holder.clone(),
            acquired_ms: self.acquired_ms,
            renewed_ms: now,
            expires_ms: now.saturating_add(ms(self.ttl)),
        };
        let etag = self
            .etag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match self
            .store
            .put(
                &self.key,
                record.encode()?,
                &Metadata::new(),
                PutMode::Update { etag },
            )
            .await
        {
            Ok(etag) => {
                *self.etag.lock().unwrap_or_else(PoisonError::into_inner) = etag;
                self.expires_ms.store(record.expires_ms, Ordering::Release);
                Ok(())
            }
            Err(e) if e.is_conflict() || e.kind() == ErrorKind::NotFound => {
                self.lost.store(true, Ordering::Release);
                Err(self.lost_error())
            }
            Err(e) => Err(e.context(format!("renewing the lease {}", self.key))),
        }
    }

    fn lost_error(&self) -> Error {
        Error::precondition(format!(
            "the lease {} was taken over by another process (it expired at {} without a \
             renewal)",
            self.key,
            self.expires_at().to_rfc3339()
        ))
    }

    /// Renews the lease every third of its duration until the handle is aborted (or
    /// the lease is lost).
    #[must_use]
    pub fn spawn_renewal(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval((me.ttl / 3).max(Duration::from_millis(100)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                match me.renew().await {
                    Ok(()) => {}
                    Err(e) if me.lost.load(Ordering::Acquire) => {
                        tracing::error!(key = %me.key, error = %e.report(),
                            "lost the lease: another process may be doing this work now");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(key = %me.key, error = %e.report(),
                            "cannot renew the lease; trying again");
                    }
                }
            }
        })
    }

    /// Gives the lease up: deletes its object if it is still this process's (read
    /// first: a store delete has no condition, so one taken over is left alone).
    pub async fn release(&self) {
        if self.lost.load(Ordering::Acquire) {
            return;
        }
        let ours = match self.store.get(&self.key).await {
            Ok(obj) => serde_json::from_slice::<LeaseRecord>(&obj.bytes)
                .is_ok_and(|r| r.holder == self.holder),
            Err(_) => false,
        };
        if ours && let Err(e) = self.store.delete(&self.key).await {
            tracing::warn!(key = %self.key, error = %e.report(),
                "could not delete the lease; it expires by itself");
        }
        self.lost.store(true, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;

//! Tick claims: N replicas of `serve` sharing one store run each (environment, tick)
//! once, decided through the store itself (create-only objects, no lock server).
//!
//! - **Membership.** Every replica writes a heartbeat every `heartbeat`
//!   ([`layout::heartbeat_key`]: its id, the time, and a *settled* time before which
//!   every tick it was due to run is done) and lists the others' in the same beat: one
//!   PUT, one LIST and one DELETE (its previous heartbeat) per beat, whatever the number
//!   of environments.
//! - **Owner.** The replica that runs a tick is chosen by rendezvous hashing of
//!   (replica, environment, tick) over the live replicas, so the work is shared and
//!   replicas that see the same members agree without talking. The owner claims the
//!   tick with a create-only object ([`layout::tick_claim_key`]) and runs it; the others
//!   make no request at all.
//! - **Fallback.** After the tick, each other replica looks at the owner's heartbeat in
//!   memory. If the owner settled past the tick, nothing is done. If not (it died, or
//!   the replicas disagreed on the members), the tick's *successor* (the owner's
//!   runner-up in the same rendezvous, [`Claims::owner_and_successor`]) looks first,
//!   one lease after the tick: it reads the tick's claim; with none, it claims the tick itself;
//!   with a claim whose claimant's heartbeat stopped before it settled the tick, the
//!   claim has expired and the tick is taken over with a second create-only object
//!   ([`layout::takeover_key`]). The other replicas look half a lease later, and first
//!   ask whether that takeover object exists (one HEAD): a dead owner's tick costs two
//!   requests to its successor and one to each other replica, and only failures cost
//!   requests.
//! - **Clean-up.** The winner of a tick deletes the claim of the environment's previous
//!   tick: claims do not pile up. Heartbeats of replicas gone for longer than 10 leases
//!   are deleted by the others. What is left behind (a takeover object, one per tick
//!   taken over from a dead replica; the last claim of an environment whose schedule or
//!   claims were turned off, or of a replica killed between its claim and the next) is
//!   swept by retention: [`sweep_stale`], called by `prune` and by retention after a
//!   scheduled backup, deletes claims and takeovers of ticks older than
//!   [`STALE_AFTER`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::id::EnvRef;
use crate::layout;
use crate::store::{Metadata, PutMode, Store};

pub mod lease;
#[cfg(test)]
mod tests;

/// What a tick claim object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// The replica that claimed it.
    pub owner: String,
    /// The cron time of the tick (ms since the epoch).
    pub tick_ms: i64,
    /// When the tick was due to run, spread offset included (ms).
    pub run_ms: i64,
    /// When the claim expires unless its owner's heartbeat settles past `run_ms` (ms).
    pub expires_ms: i64,
}

/// One replica as its last heartbeat seen describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: Arc<str>,
    /// When it wrote the heartbeat (ms).
    pub at_ms: i64,
    /// Every tick it was due to run before this time is done (ms).
    pub settled_ms: i64,
}

/// What the fallback check of a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The owner ran it (or is running it, alive): nothing to do.
    Settled,
    /// Nobody had claimed it: this replica claimed it and must run it.
    Claimed,
    /// Its claimant died before settling it: this replica took it over and must run it.
    TakenOver,
    /// Another replica claimed or took it over first.
    Lost,
    /// The owner is alive but has not settled the tick yet (its runs are slow): look
    /// again later, without a request now.
    Wait,
}

/// One replica's side of the claims.
#[derive(Debug)]
pub struct Claims {
    store: Arc<dyn Store>,
    me: Arc<str>,
    lease: Duration,
    heartbeat: Duration,
    members: Mutex<Vec<Member>>,
    last_key: Mutex<Option<String>>,
    /// Runs in progress, by due time (ms) with their count.
    in_flight: Mutex<BTreeMap<i64, u32>>,
    /// The due time of the scheduler's next unprocessed entry (ms; `i64::MAX`: none).
    next_due: AtomicI64,
}

/// Milliseconds since the epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An id for this process: host name, pid and a random part, usable in a key.
#[must_use]
pub fn replica_id() -> String {
    let host: String = crate::events::hostname()
        .unwrap_or_else(|| "host".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &rand[..8])
}

/// A stable 64-bit hash of some parts (the same on every replica and every build).
#[must_use]
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The offset into its interval at which an environment's ticks run when spread:
/// a hash of app and environment, below `min(interval, max)`.
#[must_use]
pub fn spread_offset(env: &EnvRef, interval: Duration, max: Duration) -> Duration {
    let window = ms(interval.min(max));
    if window <= 1 {
        return Duration::ZERO;
    }
    let h = stable_hash(&[env.app.as_str().as_bytes(), env.env.as_str().as_bytes()]);
    Duration::from_millis(h % window.unsigned_abs())
}

/// The two replicas among `members` that rank first for the tick `tick_ms` of `env`
/// (rendezvous hashing): the owner, and its runner-up.
fn rendezvous<'a>(
    members: impl Iterator<Item = &'a Arc<str>>,
    env: &EnvRef,
    tick_ms: i64,
) -> (Option<&'a Arc<str>>, Option<&'a Arc<str>>) {
    let tick = tick_ms.to_le_bytes();
    let key = |id: &Arc<str>| {
        (
            stable_hash(&[
                id.as_bytes(),
                env.app.as_str().as_bytes(),
                env.env.as_str().as_bytes(),
                &tick,
            ]),
            id.to_string(),
        )
    };
    let mut top: [Option<(_, &'a Arc<str>)>; 2] = [None, None];
    for id in members {
        let k = key(id);
        if top[0].as_ref().is_none_or(|(best, _)| k > *best) {
            top[1] = top[0].take();
            top[0] = Some((k, id));
        } else if top[1].as_ref().is_none_or(|(second, _)| k > *second) {
            top[1] = Some((k, id));
        }
    }
    let [first, second] = top;
    (first.map(|(_, id)| id), second.map(|(_, id)| id))
}

impl Claims {
    /// This replica's claims in `store`, with a fresh id.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, lease: Duration, heartbeat: Duration) -> Self {
        Self::with_id(store, lease, heartbeat, replica_id())
    }

    /// [`Claims::new`] with a given id (tests).
    #[must_use]
    pub fn with_id(
        store: Arc<dyn Store>,
        lease: Duration,
        heartbeat: Duration,
        id: String,
    ) -> Self {
        Self {
            store,
            me: id.into(),
            lease,
            heartbeat,
            members: Mutex::new(Vec::new()),
            last_key: Mutex::new(None),
            in_flight: Mutex::new(BTreeMap::new()),
            next_due: AtomicI64::new(i64::MAX),
        }
    }

    /// This replica's id.
    #[must_use]
    pub fn id(&self) -> &Arc<str> {
        &self.me
    }

    /// The claim lease.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The heartbeat period.
    #[must_use]
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// How old a heartbeat may be for its replica to count as alive: two beats and a
    /// half (one missed beat, and the time until the reader's next listing).
    fn alive_within(&self) -> i64 {
        ms(self.heartbeat) * 5 / 2
    }

    /// The replicas seen in the last beat (this one included once it has beaten).
    #[must_use]
    pub fn members(&self) -> Vec<Member> {
        self.members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the claims the due time of the scheduler's next unprocessed entry.
    pub fn set_next_due(&self, due_ms: i64) {
        self.next_due.store(due_ms, Ordering::Release);
    }

    /// Marks a run due at `run_ms` as in progress until the guard is dropped.
    #[must_use]
    pub fn enter(self: &Arc<Self>, run_ms: i64) -> RunGuard {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(run_ms)
            .or_insert(0) += 1;
        RunGuard {
            claims: self.clone(),
            run_ms,
        }
    }

    /// Everything due before this time is done.
    fn settled(&self, now: i64) -> i64 {
        let oldest = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .next()
            .copied()
            .unwrap_or(i64::MAX);
        now.min(oldest).min(self.next_due.load(Ordering::Acquire))
    }

    /// Writes this replica's heartbeat, reads the others' and deletes its previous
    /// heartbeat (and those of replicas gone for 10 leases).
    ///
    /// # Errors
    /// What the store fails with.
    pub async fn beat(&self) -> Result<()> {
        let at = now_ms();
        let settled = self.settled(at);
        let key = layout::heartbeat_key(&self.me, at, settled);
        // The write and the listing side by side (the listing may miss this very
        // heartbeat: a replica always counts itself).
        let meta = Metadata::new();
        let (put, pages) = tokio::join!(
            self.store
                .put(&key, Bytes::new(), &meta, PutMode::Overwrite),
            self.list_heartbeats()
        );
        put.map_err(|e| e.context("writing the scheduler's heartbeat"))?;
        let pages = pages?;
        let previous = self
            .last_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(key.clone());
        let mut latest: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut gone = Vec::new();
        let now = now_ms();
        for o in pages.iter().flat_map(|p| &p.objects) {
            let Some((id, at, settled)) = layout::parse_heartbeat_key(&o.key) else {
                continue;
            };
            if at < now - 10 * ms(self.lease) && id != &*self.me {
                gone.push(o.key.clone());
                continue;
            }
            let e = latest.entry(id).or_insert((at, settled));
            if at > e.0 {
                *e = (at, settled);
            }
        }
        // This replica as it just wrote itself (the listing ran beside the write).
        latest.insert(&self.me, (at, settled));
        let members: Vec<Member> = latest
            .into_iter()
            .map(|(id, (at_ms, settled_ms))| Member {
                id: if id == &*self.me {
                    self.me.clone()
                } else {
                    id.into()
                },
                at_ms,
                settled_ms,
            })
            .collect();
        *self.members.lock().unwrap_or_else(PoisonError::into_inner) = members;
        let old: Vec<String> = previous
            .into_iter()
            .filter(|p| *p != key)
            .chain(gone)
            .collect();
        let store = self.store.clone();
        // Off the beat's path: a slow delete must not delay the next heartbeat.
        tokio::spawn(async move {
            for k in old {
                if let Err(e) = store.delete(&k).await {
                    tracing::debug!(key = %k, error = %e.report(), "could not delete an old heartbeat");
                }
            }
        });
        Ok(())
    }

    async fn list_heartbeats(&self) -> Result<Vec<crate::store::ListPage>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(layout::REPLICAS_PREFIX, after.as_deref(), 1000)
                .await
                .map_err(|e| e.context("listing the replicas' heartbeats"))?;
            after = page.objects.last().map(|o| o.key.clone());
            let truncated = page.truncated;
            pages.push(page);
            if !truncated || after.is_none() {
                return Ok(pages);
            }
        }
    }

    /// Beats every `heartbeat` until the returned handle is aborted.
    #[must_use]
    pub fn spawn_heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(me.heartbeat);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = me.beat().await {
                    tracing::warn!(error = %e.report(),
                        "scheduler heartbeat failed; the other replicas may take over this \
                         replica's ticks if it goes on failing");
                }
            }
        })
    }

    /// The live replicas (heartbeat recent enough), this one always included.
    fn live_ids(&self, now: i64) -> Vec<Arc<str>> {
        let members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<Arc<str>> = members
            .iter()
            .filter(|m| m.at_ms >= now - self.alive_within() || m.id == self.me)
            .map(|m| m.id.clone())
            .collect();
        if !ids.contains(&self.me) {
            ids.push(self.me.clone());
        }
        ids
    }

    /// The replica that owns the tick `tick_ms` of `env` among the live ones, and its
    /// successor, the runner-up, which checks first whether the owner ran it (this
    /// replica when there is no other).
    #[must_use]
    pub fn owner_and_successor(&self, env: &EnvRef, tick_ms: i64) -> (Arc<str>, Arc<str>) {
        let ids = self.live_ids(now_ms());
        let (owner, successor) = rendezvous(ids.iter(), env, tick_ms);
        let or_me = |id: Option<&Arc<str>>| id.cloned().unwrap_or_else(|| self.me.clone());
        (or_me(owner), or_me(successor))
    }

    /// Whether this replica owns the tick.
    #[must_use]
    pub fn is_mine(&self, owner: &Arc<str>) -> bool {
        *owner == self.me
    }

    async fn create(&self, key: &str, tick_ms: i64, run_ms: i64) -> Result<bool> {
        let record = ClaimRecord {
            owner: self.me.to_string(),
            tick_ms,
            run_ms,
            expires_ms: now_ms() + ms(self.lease),
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| Error::internal(format!("cannot encode a tick claim: {e}")))?;
        match self
            .store
            .put(key, body.into(), &Metadata::new(), PutMode::Create)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::error::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e.context(format!("claiming the tick {key}"))),
        }
    }

    /// Claims the tick `tick_ms` of `env`, due at `run_ms`: `true` if this replica won.
    /// A win deletes the claim of the environment's previous tick `prev_tick_ms`.
    ///
    /// # Errors
    /// What the store fails with (not a lost claim: that is `Ok(false)`).
    pub async fn claim(
        &self,
        env: &EnvRef,
        tick_ms: i64,
        run_ms: i64,
        prev_tick_ms: Option<i64>,
    ) -> Result<bool> {
        let won = self
            .create(&layout::tick_claim_key(env, tick_ms), tick_ms, run_ms)
            .await?;
        if won && let Some(prev) = prev_tick_ms {
            let key = layout::tick_claim_key(env, prev);
            if let Err(e) = self.store.delete(&key).await {
                tracing::debug!(%key, error = %e.report(), "could not delete an old tick claim");
            }
        }
        Ok(won)
    }

    /// The fallback check of a tick after it was due: `owner` is the replica that owned
    /// it then; `first` says whether this replica was its successor (see the module's
    /// documentation). When `patient`, an owner that is alive but has not settled the
    /// tick yet is given more time ([`Check::Wait`]) instead of being asked through the
    /// store.
    ///
    /// # Errors
    /// What the store fails with.
    pub async fn check(
        &self,
        env: &EnvRef,
        tick_ms: i64,
        run_ms: i64,
        owner: &str,
        patient: bool,
        first: bool,
    ) -> Result<Check> {
        let now = now_ms();
        let members = self.members();
        let find = |id: &str| members.iter().find(|m| &*m.id == id);
        let owner_now = find(owner);
        if owner_now.is_some_and(|m| m.settled_ms > run_ms) {
            return Ok(Check::Settled);
        }
        if patient && owner_now.is_some_and(|m| m.at_ms >= now - self.alive_within()) {
            return Ok(Check::Wait);
        }
        let takeover = layout::takeover_key(env, tick_ms);
        if !first {
            // The successor looked half a lease ago: if it took the tick over, that is
            // all there is to know.
            match self.store.head(&takeover).await {
                Ok(_) => return Ok(Check::Lost),
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
                Err(e) => return Err(e.context(format!("reading the tick takeover {takeover}"))),
            }
        }
        let key = layout::tick_claim_key(env, tick_ms);
        let record: ClaimRecord = match self.store.get(&key).await {
            Ok(o) => serde_json::from_slice(&o.bytes).map_err(|e| {
                Error::internal(format!(
                    "the tick claim {key} is not a claim ({e}); delete it and the next tick \
                     is claimed again"
                ))
            })?,
            // Nobody claimed it (the owner died before it could), or the next tick's
            // winner deleted the claim: claim it, create-only, and run it if that wins.
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {
                return Ok(if self.create(&key, tick_ms, run_ms).await? {
                    Check::Claimed
                } else {
                    Check::Lost
                });
            }
            Err(e) => return Err(e.context(format!("reading the tick claim {key}"))),
        };
        if record.owner == *self.me {
            return Ok(Check::Settled);
        }
        let claimant = find(&record.owner);
        let alive = claimant.is_some_and(|m| m.at_ms >= now - self.alive_within());
        let settled = claimant.is_some_and(|m| m.settled_ms > record.run_ms);
        if alive || settled {
            return Ok(Check::Settled);
        }
        if self.create(&takeover, tick_ms, run_ms).await? {
            Ok(Check::TakenOver)
        } else {
            Ok(Check::Lost)
        }
    }
}

/// The first tick of `cron` after `after_ms` (ms; cron works in whole seconds).
#[must_use]
pub fn next_tick(cron: &croner::Cron, after_ms: i64) -> Option<i64> {
    let after =
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(after_ms.div_euclid(1000) * 1000)?;
    cron.find_next_occurrence(&after, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The tick at `tick_ms` and the time to the following one (the interval the tick's
/// spread offset stays within).
#[must_use]
pub fn interval_after(cron: &croner::Cron, tick_ms: i64) -> Duration {
    next_tick(cron, tick_ms).map_or(Duration::ZERO, |n| {
        Duration::from_millis(u64::try_from(n - tick_ms).unwrap_or(0))
    })
}

/// `env`'s first run due at or after `now_ms`, as (tick, due time) in ms: its next tick,
/// plus the spread offset when `spread` is on, so that a tick whose offset run is still
/// ahead counts. What the scheduler runs first, and what the console shows as next.
#[must_use]
pub fn first_run(
    cron: &croner::Cron,
    env: &EnvRef,
    spread: Option<Duration>,
    now_ms: i64,
) -> Option<(i64, i64)> {
    let offset = |tick: i64| match spread {
        Some(max) => ms(spread_offset(env, interval_after(cron, tick), max)),
        None => 0,
    };
    let mut after = now_ms - 1;
    if spread.is_some()
        && let Some(first) = next_tick(cron, now_ms - 1)
    {
        after = now_ms - ms(interval_after(cron, first)) - 1;
    }
    let mut tick = next_tick(cron, after)?;
    loop {
        let due = tick + offset(tick);
        if due >= now_ms {
            return Some((tick, due));
        }
        tick = next_tick(cron, tick)?;
    }
}

/// How old a tick must be for its claim to be swept: no replica looks at a tick again
/// after a few leases, and a lease is minutes at most.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Deletes (or, on a dry run, counts) `env`'s tick claims and takeovers of ticks before
/// `before_ms`; returns how many.
///
/// # Errors
/// Store errors listing or deleting (the deletions before a failure stay done).
pub async fn sweep_stale(
    store: &dyn Store,
    env: &EnvRef,
    before_ms: i64,
    dry_run: bool,
) -> Result<usize> {
    let prefix = layout::tick_claims_prefix(env);
    let mut swept = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list(&prefix, after.as_deref(), 1000).await?;
        for object in &page.objects {
            // Keys sort by tick time (13 digits): the first young one ends the sweep.
            match layout::parse_tick_claim_key(&object.key) {
                Some(tick) if tick < before_ms => {
                    if !dry_run {
                        store.delete(&object.key).await?;
                    }
                    swept += 1;
                }
                Some(_) => return Ok(swept),
                None => {}
            }
        }
        match (page.truncated, page.objects.last()) {
            (true, Some(last)) => after = Some(last.key.clone()),
            _ => return Ok(swept),
        }
    }
}

/// A run in progress (see [`Claims::enter`]).
#[derive(Debug)]
pub struct RunGuard {
    claims: Arc<Claims>,
    run_ms: i64,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut map = self
            .claims
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.run_ms) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.run_ms);
            }
        }
    }
}

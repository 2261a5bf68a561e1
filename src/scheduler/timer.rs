//! The scheduler's one timer: a min-heap of next due times over every environment, so
//! that 10,000 scheduled environments cost one task and a few dozen bytes each, not
//! one job each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// What is due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// The environment's tick: claim it (if claims are on) and run it.
    Run {
        /// The claim of the environment's previous tick, deleted by the winner.
        prev_tick_ms: Option<i64>,
    },
    /// The fallback check of a tick another replica owned.
    Check {
        /// When the tick was due (spread offset included).
        run_ms: i64,
        /// The replica that owned it then.
        owner: Arc<str>,
        /// How many times the owner was found alive but not done yet.
        round: u8,
        /// Whether this replica is the owner's successor, which checks first.
        first: bool,
    },
}

/// One entry of the heap; ordered by due time first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// When it is due (ms since the epoch).
    pub due_ms: i64,
    /// The index of the environment's job.
    pub job: u32,
    /// The cron time of the tick (ms): the tick's identity across replicas.
    pub tick_ms: i64,
    /// What is due.
    pub what: Due,
}

/// The heap.
#[derive(Debug, Default)]
pub struct Timer {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timer {
    /// Adds an entry.
    pub fn push(&mut self, entry: Entry) {
        self.heap.push(Reverse(entry));
    }

    /// The due time of the earliest entry.
    pub fn next_due(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse(e)| e.due_ms)
    }

    /// Takes the earliest entry if it is due at `now_ms`.
    pub fn pop_due(&mut self, now_ms: i64) -> Option<Entry> {
        if self.next_due()? <= now_ms {
            self.heap.pop().map(|Reverse(e)| e)
        } else {
            None
        }
    }

    /// Moves every entry to the job `to` maps its job to, dropping those it maps to
    /// `None` (the environment's job is gone or replaced).
    pub fn remap(&mut self, mut to: impl FnMut(u32) -> Option<u32>) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter_map(|Reverse(mut e)| {
                e.job = to(e.job)?;
                Some(Reverse(e))
            })
            .collect();
    }

    /// How many entries wait.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

pub use jetvault_core::claim::{interval_after, next_tick};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_due_order_only_when_due() {
        let mut t = Timer::default();
        for (due, job) in [(30, 0), (10, 1), (20, 2)] {
            t.push(Entry {
                due_ms: due,
                job,
                tick_ms: due,
                what: Due::Run { prev_tick_ms: None },
            });
        }
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25).map(|e| e.job), Some(1));
        assert_eq!(t.pop_due(25).map(|e| e.job), Some(2));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_due(), Some(30));
    }

    /// An update keeps the entries of kept jobs, at their new index and with their due
    /// times, and drops those of removed and replaced jobs.
    #[test]
    fn remap_moves_kept_entries_and_drops_the_others() {
        let mut t = Timer::default();
        let entry = |due_ms, job, what| Entry {
            due_ms,
            job,
            tick_ms: due_ms,
            what,
        };
        let run = Due::Run { prev_tick_ms: None };
        let check = Due::Check {
            run_ms: 5,
            owner: Arc::from("r2"),
            round: 0,
            first: true,
        };
        t.push(entry(100, 0, run.clone()));
        t.push(entry(200, 1, run.clone()));
        t.push(entry(300, 2, check.clone()));
        t.push(entry(400, 1, check.clone()));
        // Job 1 is now 0, job 2 is now 1, job 0 is gone.
        t.remap(|j| [None, Some(0), Some(1)][j as usize]);
        let mut left = Vec::new();
        while let Some(e) = t.pop_due(i64::MAX) {
            left.push(e);
        }
        assert_eq!(
            left,
            vec![
                entry(200, 0, run),
                entry(300, 1, check.clone()),
                entry(400, 0, check)
            ]
        );
    }

    #[test]
    fn ticks_and_intervals_follow_the_cron() {
        let cron = jetvault_core::config::parse_cron("*/2 * * * * *").unwrap();
        let t0 = 1_700_000_000_000; // an even second
        assert_eq!(next_tick(&cron, t0), Some(t0 + 2_000));
        assert_eq!(next_tick(&cron, t0 + 1), Some(t0 + 2_000));
        assert_eq!(next_tick(&cron, t0 + 1_999), Some(t0 + 2_000));
        assert_eq!(next_tick(&cron, t0 + 2_000), Some(t0 + 4_000));
        assert_eq!(interval_after(&cron, t0), Duration::from_secs(2));
    }
}

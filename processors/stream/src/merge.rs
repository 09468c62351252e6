//! Event-time order across the jobs of one replay.
//!
//! Live, a stage's feeds (say allocation's orders and stock events) run
//! side by side and see their inputs roughly as they happened: a restock
//! at 10:02 reached the inventory job before an order placed at 10:04.
//! Replayed from the start, each feed would race through its own topic and
//! the interleaving (and so which order got scarce stock, or whether an
//! allocation met its order first) would depend on which feed ran faster.
//!
//! A [`MergeClock`] shared by the bounded jobs of one replay keeps them in
//! step: each job reports its **low** (the event time of the next record
//! it will process: the oldest one it holds back, or the last one it
//! processed while it is still reading), and a job may process a record
//! only if its timestamp is at most the lowest low of the *other* jobs
//! plus the clock's window. Records past that **fence** are held in the
//! job (their partition paused, so nothing more is fetched for it) and
//! released in order once the others caught up. A job whose partitions
//! all reached their bound leaves the clock.
//!
//! Ties: records of the same event time go in the jobs' order of
//! precedence (the order they are given in): a job waits for the jobs
//! before it to pass a time before it processes that time itself. So
//! route reads an order before the allocations made for it in the same
//! millisecond, as it did live.
//!
//! No deadlock: of the jobs holding the globally oldest records, the first
//! in precedence always has them within its fence (every other low is at
//! least that old, and it waits for no one at that time). The window
//! trades faithfulness for speed: each hand-over between jobs costs a
//! short wait, and there are about as many as the sparser input has
//! records (one per window at most). Within a window, records of
//! different jobs may be processed in either order, as they could live.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The shared clock of one replay's bounded jobs.
#[derive(Debug)]
pub struct MergeClock {
    window_ms: i64,
    /// Per job still running: (precedence, low; `i64::MIN` before it
    /// reported).
    lows: Mutex<BTreeMap<String, (usize, i64)>>,
}

impl MergeClock {
    /// A clock over `jobs`, first in precedence first (all registered up
    /// front, so none runs ahead of one that has not started yet).
    pub fn new(window: Duration, jobs: impl IntoIterator<Item = String>) -> Self {
        MergeClock {
            window_ms: window.as_millis().min(i64::MAX as u128) as i64,
            lows: Mutex::new(
                jobs.into_iter()
                    .enumerate()
                    .map(|(rank, j)| (j, (rank, i64::MIN)))
                    .collect(),
            ),
        }
    }

    /// `job` will process nothing older than `low` from now on.
    pub fn report(&self, job: &str, low: i64) {
        if let Ok(mut l) = self.lows.lock() {
            if let Some(v) = l.get_mut(job) {
                v.1 = low;
            }
        }
    }

    /// `job` is done (or stopped): it no longer holds anyone back.
    pub fn leave(&self, job: &str) {
        if let Ok(mut l) = self.lows.lock() {
            l.remove(job);
        }
    }

    /// The newest event time `job` may process now.
    pub fn fence(&self, job: &str) -> i64 {
        let Ok(l) = self.lows.lock() else {
            return i64::MAX;
        };
        let rank = l.get(job).map_or(usize::MAX, |v| v.0);
        l.iter()
            .filter(|(j, _)| j.as_str() != job)
            .map(|(_, (r, low))| {
                // A job before this one passes a time first.
                let before = i64::from(*r < rank);
                low.saturating_add(self.window_ms).saturating_sub(before)
            })
            .min()
            .unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_waits_for_the_others_within_the_window() {
        let c = MergeClock::new(Duration::from_millis(100), ["a".into(), "b".into()]);
        // Nobody reported: each waits for the other's first report.
        assert_eq!(c.fence("a"), i64::MIN + 100);
        c.report("a", 1_000);
        c.report("b", 5_000);
        assert_eq!(c.fence("a"), 5_100);
        assert_eq!(c.fence("b"), 1_099); // b waits for a at a's time
                                         // The oldest job is always within its fence.
        assert!(1_000 <= c.fence("a"));
        c.leave("b");
        assert_eq!(c.fence("a"), i64::MAX);
        assert_eq!(c.fence("b"), 1_099); // b waits for a at a's time
        c.report("gone", 1);
        assert_eq!(c.fence("a"), i64::MAX);
    }

    #[test]
    fn ties_go_in_precedence_order() {
        let c = MergeClock::new(Duration::ZERO, ["orders".into(), "allocations".into()]);
        // Both hold records of time 7: the orders go first.
        c.report("orders", 7);
        c.report("allocations", 7);
        assert!(7 <= c.fence("orders"));
        assert!(7 > c.fence("allocations"));
        // Once the orders are past 7, the allocations of 7 go.
        c.report("orders", 8);
        assert!(7 <= c.fence("allocations"));
    }
}

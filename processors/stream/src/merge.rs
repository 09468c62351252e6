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
//! No deadlock: the job holding the globally oldest record always has it
//! within its fence (every other low is at least that old). The window
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
    /// Per job still running: its low (`i64::MIN` before it reported).
    lows: Mutex<BTreeMap<String, i64>>,
}

impl MergeClock {
    /// A clock over `jobs` (all registered up front, so none runs ahead of
    /// one that has not started yet).
    pub fn new(window: Duration, jobs: impl IntoIterator<Item = String>) -> Self {
        MergeClock {
            window_ms: window.as_millis().min(i64::MAX as u128) as i64,
            lows: Mutex::new(jobs.into_iter().map(|j| (j, i64::MIN)).collect()),
        }
    }

    /// `job` will process nothing older than `low` from now on.
    pub fn report(&self, job: &str, low: i64) {
        if let Ok(mut l) = self.lows.lock() {
            if let Some(v) = l.get_mut(job) {
                *v = low;
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
        l.iter()
            .filter(|(j, _)| j.as_str() != job)
            .map(|(_, low)| *low)
            .min()
            .map_or(i64::MAX, |low| low.saturating_add(self.window_ms))
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
        assert_eq!(c.fence("b"), 1_100);
        // The oldest job is always within its fence.
        assert!(1_000 <= c.fence("a"));
        c.leave("b");
        assert_eq!(c.fence("a"), i64::MAX);
        assert_eq!(c.fence("b"), 1_100);
        c.report("gone", 1);
        assert_eq!(c.fence("a"), i64::MAX);
    }
}

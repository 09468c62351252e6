//! A circuit breaker for calls to a third-party API: after `threshold`
//! consecutive failures it opens and refuses calls for `open_for`, then
//! lets one trial call through (half-open); a success closes it, a failure
//! opens it again. So an API that is down is not hammered by every record
//! and every retry, and recovers by itself.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    opened_at: Option<Instant>,
    trial_out: bool,
}

/// Whether a call may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Closed,
    /// The one trial call after the open period.
    Trial,
    /// Refused; retry after this long.
    Open(Duration),
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::default()),
        }
    }

    pub fn gate(&self) -> Gate {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.opened_at {
            None => Gate::Closed,
            Some(at) => {
                let elapsed = at.elapsed();
                if elapsed < self.open_for {
                    Gate::Open(self.open_for - elapsed)
                } else if s.trial_out {
                    Gate::Open(self.open_for / 4)
                } else {
                    s.trial_out = true;
                    Gate::Trial
                }
            }
        }
    }

    pub fn success(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = State::default();
    }

    pub fn failure(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.failures += 1;
        s.trial_out = false;
        if s.failures >= self.threshold || s.opened_at.is_some() {
            s.opened_at = Some(Instant::now());
        }
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .opened_at
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_recovers_through_one_trial() {
        let b = Breaker::new(3, Duration::from_secs(10));
        b.failure();
        b.failure();
        assert_eq!(b.gate(), Gate::Closed);
        b.failure();
        assert!(matches!(b.gate(), Gate::Open(_)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.gate(), Gate::Trial);
        // Only one trial at a time.
        assert!(matches!(b.gate(), Gate::Open(_)));
        // The trial fails: open again for the full period.
        b.failure();
        assert!(matches!(b.gate(), Gate::Open(d) if d > Duration::from_secs(9)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.gate(), Gate::Trial);
        b.success();
        assert_eq!(b.gate(), Gate::Closed);
        assert!(!b.is_open());
    }
}

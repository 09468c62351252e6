//! A token bucket per API operation, as the channel APIs publish their
//! limits (Amazon SP-API: a rate and a burst per operation; eBay: calls per
//! day; TikTok: per second). `acquire` waits for a token; `penalize` empties
//! the bucket after a 429 so the next call waits out the server's view too.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Limiter {
    burst: f64,
    /// (tokens, last refill, rate per second)
    state: Mutex<(f64, Instant, f64)>,
}

impl Limiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Limiter {
        let burst = f64::from(burst.max(1));
        Limiter {
            burst,
            state: Mutex::new((burst, Instant::now(), rate_per_sec.max(1e-6))),
        }
    }

    /// How long until a token is free (zero: take it now).
    fn reserve(&self) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * s.2).min(self.burst);
        s.1 = now;
        s.0 -= 1.0;
        if s.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.0 / s.2)
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The rate the server says applies (SP-API's `x-amzn-RateLimit-Limit`).
    pub fn set_rate(&self, rate_per_sec: f64) {
        if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.2 = rate_per_sec;
        }
    }

    /// The rate now.
    pub fn rate(&self) -> f64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).2
    }

    /// After a 429: no tokens for `retry_after` (or one token's time).
    pub fn penalize(&self, retry_after: Option<Duration>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let debt = retry_after.map_or(1.0, |d| d.as_secs_f64() * s.2);
        s.0 = s.0.min(0.0) - debt;
        s.1 = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let l = Limiter::new(2.0, 3);
        let t = tokio::time::Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert!(t.elapsed() < Duration::from_millis(10), "the burst is free");
        l.acquire().await;
        l.acquire().await;
        assert!(t.elapsed() >= Duration::from_millis(900), "then 2/s");
        assert!(l.reserve() > Duration::ZERO);
    }
}

//! Calls to a third-party API (a carrier's label API, a sales channel's
//! fulfillment API) under one policy:
//!
//! - a token bucket keeps to the API's published rate; an answer that says
//!   "slow down" (429 with `Retry-After`) empties it for that long and
//!   halves the rate, which successes win back step by step (AIMD), so
//!   callers sharing the guard settle at what the API allows;
//! - failures that may pass (connect errors, timeouts, 408, 429, 5xx, and
//!   401/403, which are a configuration problem rather than the record's)
//!   are retried with exponential backoff and jitter, up to
//!   `max_attempts`, then reported as [`CallError::Unavailable`]: the
//!   caller retries the record later and never skips it;
//! - a circuit breaker stops calling an API that keeps failing and lets one
//!   trial call through after a pause;
//! - what will not succeed on retry (another 4xx, or an answer the caller
//!   reads as a refusal) is [`CallError::Refused`] with the API's words.
//!
//! `metric` names a counter (`<metric>{kind=transient|throttled|refused|breaker_open}`)
//! so each API's errors are visible on /metrics.

use std::future::Future;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::breaker::{Breaker, Gate};
use crate::ratelimit::Limiter;

/// Why an API refused: a machine-readable code (the API's own, such as
/// `address_invalid`, else `http_<status>`) and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

/// One attempt's outcome, as the caller reads the answer.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Will not succeed on retry.
    Refused(Refusal),
    /// Retry after at least this long (None: the backoff decides).
    Again(String, Option<Duration>),
    /// The API is up but asks to slow down (429): every caller of this
    /// guard waits, for `Retry-After` if given; the breaker does not count
    /// it as a failure.
    Throttled(String, Option<Duration>),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// The API refused; retrying will not change it.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The API could not be reached or kept failing; try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// How calls to one API are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Calls per second and burst of the token bucket.
    pub rate_per_sec: f64,
    pub burst: u32,
    /// Attempts per call before [`CallError::Unavailable`].
    pub max_attempts: u32,
    /// Consecutive failures that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// First backoff delay (it doubles up to `max_backoff`).
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rate_per_sec: 10.0,
            burst: 10,
            max_attempts: 5,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

pub struct Guard {
    metric: &'static str,
    limiter: Limiter,
    breaker: Breaker,
    policy: Policy,
}

impl Guard {
    pub fn new(metric: &'static str, policy: Policy) -> Guard {
        // Every kind exported from the start at 0: an alert on the rate of
        // errors sees a flat series, not a missing one.
        for kind in ["breaker_open", "refused", "transient", "throttled"] {
            metrics::counter!(metric, "kind" => kind).increment(0);
        }
        Guard {
            metric,
            limiter: Limiter::new(policy.rate_per_sec, policy.burst),
            breaker: Breaker::new(policy.breaker_failures, policy.breaker_open),
            policy,
        }
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Makes `call` until it is done or refused, or the attempts run out.
    /// `limited`: the call counts against the rate limit (a file download
    /// from a CDN does not).
    pub async fn call<T, F, Fut>(
        &self,
        what: &str,
        limited: bool,
        mut call: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut tries = Tries::new(&self.policy);
        loop {
            match self.attempt(what, limited, &tries.last, &mut call).await? {
                Ok(v) => return Ok(v),
                Err(retry) => {
                    if !tries.another(retry) {
                        return Err(tries.exhausted(what));
                    }
                    self.pause(&mut tries).await;
                }
            }
        }
    }

    /// One attempt through the breaker and the limiter: `Ok(Ok(v))` done,
    /// `Ok(Err(retry))` worth another, `Err` final.
    async fn attempt<T, F, Fut>(
        &self,
        what: &str,
        limited: bool,
        last: &str,
        call: &mut F,
    ) -> Result<Result<T, Retry>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        if let Gate::Open(wait) = self.breaker.gate() {
            metrics::counter!(self.metric, "kind" => "breaker_open").increment(1);
            return Err(CallError::Unavailable(format!(
                "{what}: circuit open after repeated failures ({last}); next try in {wait:?}"
            )));
        }
        if limited {
            self.limiter.acquire().await;
        }
        match call().await {
            Attempt::Done(v) => {
                self.breaker.success();
                if limited {
                    self.recover();
                }
                Ok(Ok(v))
            }
            Attempt::Refused(r) => {
                // The API answered: it is up.
                self.breaker.success();
                metrics::counter!(self.metric, "kind" => "refused").increment(1);
                Err(CallError::Refused(Refusal {
                    code: r.code,
                    reason: format!("{what}: {}", r.reason),
                }))
            }
            Attempt::Again(why, after) => {
                self.breaker.failure();
                metrics::counter!(self.metric, "kind" => "transient").increment(1);
                tracing::warn!(%why, api = self.metric, "{what} failed; retrying");
                Ok(Err(Retry {
                    why,
                    after,
                    throttled: false,
                }))
            }
            Attempt::Throttled(why, after) => {
                self.breaker.success();
                self.slow_down();
                metrics::counter!(self.metric, "kind" => "throttled").increment(1);
                tracing::debug!(%why, api = self.metric, "{what} throttled; waiting");
                Ok(Err(Retry {
                    why,
                    after: Some(after.unwrap_or(Duration::from_secs(1))),
                    throttled: true,
                }))
            }
        }
    }

    /// A 429: halve the rate (down to a sixteenth of the configured one),
    /// so that callers sharing this guard stop overrunning the API's
    /// bucket instead of colliding after every `Retry-After`.
    fn slow_down(&self) {
        let floor = self.policy.rate_per_sec / 16.0;
        self.limiter
            .set_rate((self.limiter.rate() / 2.0).max(floor).max(1e-3));
    }

    /// A success: win back a twentieth of the configured rate, up to it.
    fn recover(&self) {
        let rate = self.limiter.rate();
        if rate < self.policy.rate_per_sec {
            self.limiter
                .set_rate((rate + self.policy.rate_per_sec / 20.0).min(self.policy.rate_per_sec));
        }
    }

    /// The wait before the next attempt: what the API asked for (then the
    /// bucket waits too, for every caller), else the backoff.
    async fn pause(&self, tries: &mut Tries) {
        let wait = match tries.after {
            Some(a) => {
                let a = a.min(Duration::from_secs(60));
                self.limiter.penalize(Some(a));
                a
            }
            None => tries.backoff.next_delay(),
        };
        tokio::time::sleep(wait).await;
    }
}

/// A failed attempt worth another.
#[derive(Debug)]
struct Retry {
    why: String,
    after: Option<Duration>,
    throttled: bool,
}

/// Throttled attempts allowed per call, beside `max_attempts` failures: a
/// 429 is the API pacing us, not failing.
const MAX_THROTTLED: u32 = 100;

/// The attempts of one call so far.
struct Tries {
    backoff: Backoff,
    attempts: u32,
    failed: u32,
    throttled: u32,
    last: String,
    after: Option<Duration>,
}

impl Tries {
    fn new(p: &Policy) -> Tries {
        Tries {
            backoff: Backoff::new(p.first_backoff, p.max_backoff),
            attempts: p.max_attempts.max(1),
            failed: 0,
            throttled: 0,
            last: String::new(),
            after: None,
        }
    }

    /// Counts `r`; whether another attempt is allowed.
    fn another(&mut self, r: Retry) -> bool {
        if r.throttled {
            self.throttled += 1;
        } else {
            self.failed += 1;
        }
        self.last = r.why;
        self.after = r.after;
        self.failed < self.attempts && self.throttled < MAX_THROTTLED
    }

    fn exhausted(&self, what: &str) -> CallError {
        CallError::Unavailable(format!(
            "{what}: {} attempts failed ({} throttled), last: {}",
            self.failed + self.throttled,
            self.throttled,
            self.last
        ))
    }
}

/// What [`Guard::create`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made<T> {
    /// This call created it.
    New(T),
    /// It was there already (an earlier attempt, or run, whose answer was
    /// lost had created it).
    Found(T),
}

impl Guard {
    /// Creates something at an API that takes no idempotency key, without
    /// ever creating it twice: before every attempt, `check` asks the API
    /// whether it exists (an earlier attempt may have created it and lost
    /// the answer to a timeout or a 5xx); only when it does not is `make`
    /// called. `check` makes its own guarded calls ([`Guard::call`]);
    /// `make` is one attempt, under this guard's rate limit and breaker,
    /// retried with backoff like [`Guard::call`].
    ///
    /// It is only as safe as its caller's exclusivity: nobody else may
    /// create the same thing between `check` and `make` (conveyor's stages
    /// handle one key on one worker, in order).
    pub async fn create<T, C, CFut, M, MFut>(
        &self,
        what: &str,
        mut check: C,
        mut make: M,
    ) -> Result<Made<T>, CallError>
    where
        C: FnMut() -> CFut,
        CFut: Future<Output = Result<Option<T>, CallError>>,
        M: FnMut() -> MFut,
        MFut: Future<Output = Attempt<T>>,
    {
        let mut tries = Tries::new(&self.policy);
        loop {
            if let Some(found) = check().await? {
                return Ok(Made::Found(found));
            }
            match self.attempt(what, true, &tries.last, &mut make).await? {
                Ok(v) => return Ok(Made::New(v)),
                Err(retry) => {
                    if !tries.another(retry) {
                        return Err(tries.exhausted(what));
                    }
                    self.pause(&mut tries).await;
                }
            }
        }
    }
}

/// Reads a non-2xx HTTP status: 408, 429, 5xx and 401/403 are worth
/// retrying (a wrong token is fixed by an operator, not by dead-lettering
/// every record until then); any other status is a refusal.
pub fn classify<T>(status: u16, detail: &str, retry_after: Option<Duration>) -> Attempt<T> {
    let why = format!("HTTP {status}: {detail}");
    match status {
        429 => Attempt::Throttled(why, retry_after),
        408 | 401 | 403 => Attempt::Again(why, None),
        500..=599 => Attempt::Again(why, retry_after),
        _ => Attempt::Refused(Refusal::new(format!("http_{status}"), why)),
    }
}

/// `Retry-After` in seconds (fractions allowed), if the answer has one.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> Policy {
        Policy {
            rate_per_sec: 1000.0,
            burst: 100,
            max_attempts: 4,
            breaker_failures: 3,
            breaker_open: Duration::from_secs(60),
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_done() {
        let g = Guard::new("test_api_errors_total", quick());
        let n = AtomicU32::new(0);
        let r = g
            .call("op", true, || async {
                if n.fetch_add(1, Ordering::Relaxed) < 2 {
                    Attempt::Again("503".into(), None)
                } else {
                    Attempt::Done(7)
                }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(n.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_attempts_run_out() {
        let g = Guard::new("test_api_errors_total", quick());
        let n = AtomicU32::new(0);
        let r: Result<(), _> = g
            .call("op", true, || async {
                n.fetch_add(1, Ordering::Relaxed);
                Attempt::Refused(Refusal::new("http_422", "HTTP 422: no"))
            })
            .await;
        assert_eq!(
            r,
            Err(CallError::Refused(Refusal::new(
                "http_422",
                "op: HTTP 422: no"
            )))
        );
        assert_eq!(n.load(Ordering::Relaxed), 1);

        // Three failures open the breaker: the fourth attempt is not made.
        let r: Result<(), _> = g
            .call("op", true, || async {
                n.fetch_add(1, Ordering::Relaxed);
                Attempt::Again("HTTP 500".into(), None)
            })
            .await;
        assert!(
            matches!(r, Err(CallError::Unavailable(ref m)) if m.contains("circuit open")),
            "{r:?}"
        );
        assert_eq!(n.load(Ordering::Relaxed), 4);
        assert!(g.breaker_open());
    }

    #[tokio::test]
    async fn create_checks_before_every_attempt_so_a_lost_answer_creates_nothing_twice() {
        let g = Guard::new("test_api_errors_total", quick());
        let created = std::sync::Mutex::new(Vec::<u32>::new());
        let calls = AtomicU32::new(0);
        // The first create succeeds at the API but its answer is lost.
        let r = g
            .create(
                "create",
                || async { Ok(created.lock().unwrap().first().copied()) },
                || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    created.lock().unwrap().push(42);
                    Attempt::Again("HTTP 502 after the create".into(), None)
                },
            )
            .await;
        assert_eq!(r, Ok(Made::Found(42)));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(created.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn throttling_waits_without_spending_attempts_or_tripping_the_breaker() {
        let g = Guard::new("test_api_errors_total", quick());
        let n = AtomicU32::new(0);
        let r = g
            .call("op", true, || async {
                if n.fetch_add(1, Ordering::Relaxed) < 10 {
                    Attempt::Throttled("429".into(), Some(Duration::from_millis(1)))
                } else {
                    Attempt::Done(())
                }
            })
            .await;
        assert_eq!(r, Ok(()));
        assert_eq!(
            n.load(Ordering::Relaxed),
            11,
            "10 throttles > max_attempts 4"
        );
        assert!(!g.breaker_open());
        // Ten halvings hit the floor (1000/16); the success won 1000/20 back.
        assert!(
            (g.limiter.rate() - 112.5).abs() < 1e-9,
            "{}",
            g.limiter.rate()
        );
    }

    #[test]
    fn statuses_are_classified() {
        let again = |s| {
            matches!(
                classify::<()>(s, "", None),
                Attempt::Again(..) | Attempt::Throttled(..)
            )
        };
        assert!(again(429) && again(408) && again(500) && again(503) && again(401));
        assert!(!again(400) && !again(404) && !again(422));
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("soon")), None);
    }
}

//! The label API client: buys one label per call to [`CarrierApi::buy`]
//! and downloads its PDF.
//!
//! - Every purchase carries the caller's idempotency key, so a retry (here,
//!   after a timeout whose answer was lost, or after a crash) returns the
//!   label already bought instead of buying another (G2).
//! - Each request has a timeout; failures that may pass (connect errors,
//!   timeouts, 5xx, 429) are retried with exponential backoff and jitter,
//!   up to `max_attempts`, then reported as [`BuyError::Unavailable`] so
//!   the runtime retries the record later (it is never skipped).
//! - A token bucket keeps to the API's rate; a 429 empties it and waits out
//!   `Retry-After`.
//! - A circuit breaker stops calling an API that keeps failing and lets
//!   one trial call through after a pause.
//! - What will not succeed on retry (4xx other than 408/429, a transaction
//!   with status ERROR: an address the carrier cannot deliver to, a service
//!   it does not offer) is [`BuyError::Refused`] with the API's words.

use std::time::Duration;

use conveyor_runtime::backoff::Backoff;
use conveyor_runtime::breaker::{Breaker, Gate};
use conveyor_runtime::label::LabelConfig;
use conveyor_runtime::ratelimit::Limiter;
use reqwest::StatusCode;

use super::api::{ApiError, Transaction, TransactionRequest, IDEMPOTENCY_HEADER};

/// A bought label.
#[derive(Debug, Clone)]
pub struct Bought {
    pub transaction: Transaction,
    pub label_pdf: Vec<u8>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BuyError {
    /// The API or carrier refused; retrying will not change it.
    #[error("refused by the label API: {0}")]
    Refused(String),
    /// The API could not be reached or kept failing; try again later.
    #[error("label API unavailable: {0}")]
    Unavailable(String),
}

pub struct CarrierApi {
    http: reqwest::Client,
    base: String,
    token: String,
    limiter: Limiter,
    breaker: Breaker,
    max_attempts: u32,
}

/// One attempt's outcome.
enum Attempt<T> {
    Done(T),
    Refused(String),
    /// Retry after at least this long (None: the backoff decides).
    Again(String, Option<Duration>),
}

impl CarrierApi {
    pub fn new(c: &LabelConfig) -> Result<CarrierApi, reqwest::Error> {
        Ok(CarrierApi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(c.timeout_ms))
                .connect_timeout(Duration::from_millis(c.timeout_ms.min(5_000)))
                .build()?,
            base: c.api_url.trim_end_matches('/').to_string(),
            token: c.api_token.expose().to_string(),
            limiter: Limiter::new(c.rate_per_sec, c.burst),
            breaker: Breaker::new(c.breaker_failures, Duration::from_millis(c.breaker_open_ms)),
            max_attempts: c.max_attempts,
        })
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Buys the label of `req` under `key`, and downloads it.
    pub async fn buy(&self, req: &TransactionRequest, key: &str) -> Result<Bought, BuyError> {
        let transaction = self
            .with_retries("purchase", true, || self.purchase(req, key))
            .await?;
        // The label file is served from the API's file host, outside the
        // API's rate limit.
        let label_pdf = self
            .with_retries("label download", false, || {
                self.download(&transaction.label_url)
            })
            .await?;
        Ok(Bought {
            transaction,
            label_pdf,
        })
    }

    async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        limited: bool,
        mut call: F,
    ) -> Result<T, BuyError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last = String::new();
        for attempt in 1..=self.max_attempts.max(1) {
            match self.breaker.gate() {
                Gate::Open(wait) => {
                    metrics::counter!("conveyor_label_api_errors_total", "kind" => "breaker_open")
                        .increment(1);
                    return Err(BuyError::Unavailable(format!(
                        "{what}: circuit open after repeated failures ({last}); next try in {wait:?}"
                    )));
                }
                Gate::Closed | Gate::Trial => {}
            }
            if limited {
                self.limiter.acquire().await;
            }
            match call().await {
                Attempt::Done(v) => {
                    self.breaker.success();
                    return Ok(v);
                }
                Attempt::Refused(why) => {
                    // The API answered: it is up.
                    self.breaker.success();
                    metrics::counter!("conveyor_label_api_errors_total", "kind" => "refused")
                        .increment(1);
                    return Err(BuyError::Refused(format!("{what}: {why}")));
                }
                Attempt::Again(why, after) => {
                    self.breaker.failure();
                    metrics::counter!("conveyor_label_api_errors_total", "kind" => "transient")
                        .increment(1);
                    tracing::warn!(attempt, %why, "label API {what} failed; retrying");
                    last = why;
                    if attempt < self.max_attempts {
                        let wait = backoff.next_delay().max(after.unwrap_or_default());
                        if after.is_some() {
                            self.limiter.penalize(Some(wait));
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Err(BuyError::Unavailable(format!(
            "{what}: {} attempts failed, last: {last}",
            self.max_attempts
        )))
    }

    async fn purchase(&self, req: &TransactionRequest, key: &str) -> Attempt<Transaction> {
        let sent = self
            .http
            .post(format!("{}/transactions", self.base))
            .header("authorization", format!("ShippoToken {}", self.token))
            .header(IDEMPOTENCY_HEADER, key)
            .json(req)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Again(transport(&e), None),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Again(transport(&e), None),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Transaction>(&body) {
                Ok(t) if t.status == "SUCCESS" => Attempt::Done(t),
                Ok(t) if t.status == "ERROR" => Attempt::Refused(
                    t.messages
                        .iter()
                        .map(|m| m.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Ok(t) => {
                    Attempt::Again(format!("transaction {} is {}", t.object_id, t.status), None)
                }
                Err(e) => Attempt::Again(format!("unreadable transaction: {e}"), None),
            };
        }
        let detail = serde_json::from_slice::<ApiError>(&body)
            .map(|e| e.detail)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
        classify(status, detail, retry_after)
    }

    async fn download(&self, url: &str) -> Attempt<Vec<u8>> {
        let resp = match self.http.get(url).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Again(transport(&e), None),
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(b) if status.is_success() && b.starts_with(b"%PDF-") => Attempt::Done(b.to_vec()),
            Ok(_) if status.is_success() => Attempt::Refused(format!("{url} is not a PDF")),
            Ok(b) => classify(
                status,
                String::from_utf8_lossy(&b).chars().take(200).collect(),
                None,
            ),
            Err(e) => Attempt::Again(transport(&e), None),
        }
    }
}

fn classify<T>(status: StatusCode, detail: String, retry_after: Option<Duration>) -> Attempt<T> {
    let why = format!("HTTP {}: {detail}", status.as_u16());
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            Attempt::Again(why, Some(retry_after.unwrap_or(Duration::from_secs(1))))
        }
        StatusCode::REQUEST_TIMEOUT => Attempt::Again(why, None),
        // A wrong token is a configuration problem, not the record's:
        // keep retrying (the breaker spaces it out) rather than dead-letter
        // every order until someone fixes the secret.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Attempt::Again(why, None),
        s if s.is_server_error() => Attempt::Again(why, None),
        _ => Attempt::Refused(why),
    }
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        format!("transport: {e}")
    }
}

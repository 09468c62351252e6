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

use conveyor_runtime::guarded::{self, Attempt, CallError, Guard, Policy, Refusal};
use conveyor_runtime::label::LabelConfig;

use super::api::{
    ApiError, Refund, RefundRequest, Transaction, TransactionRequest, IDEMPOTENCY_HEADER,
};

/// A bought label.
#[derive(Debug, Clone)]
pub struct Bought {
    pub transaction: Transaction,
    pub label_pdf: Vec<u8>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BuyError {
    /// The API or carrier refused; retrying will not change it. `code` is
    /// the API's message code (`address_invalid`...), or `label_refused`.
    #[error("refused by the label API: {reason}")]
    Refused { code: String, reason: String },
    /// The API could not be reached or kept failing; try again later.
    #[error("label API unavailable: {0}")]
    Unavailable(String),
}

/// The code of a refusal whose answer named none.
pub const REFUSED: &str = "label_refused";

pub struct CarrierApi {
    http: reqwest::Client,
    base: String,
    token: String,
    guard: Guard,
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
            guard: Guard::new(
                "conveyor_label_api_errors_total",
                Policy {
                    rate_per_sec: c.rate_per_sec,
                    burst: c.burst,
                    max_attempts: c.max_attempts,
                    breaker_failures: c.breaker_failures,
                    breaker_open: Duration::from_millis(c.breaker_open_ms),
                    ..Policy::default()
                },
            ),
        })
    }

    pub fn breaker_open(&self) -> bool {
        self.guard.breaker_open()
    }

    /// Buys the label of `req` under `key`, and downloads it.
    pub async fn buy(&self, req: &TransactionRequest, key: &str) -> Result<Bought, BuyError> {
        let transaction = self
            .guard
            .call("purchase", true, || self.purchase(req, key))
            .await
            .map_err(refusal)?;
        // The label file is served from the API's file host, outside the
        // API's rate limit.
        let label_pdf = self
            .guard
            .call("label download", false, || {
                self.download(&transaction.label_url)
            })
            .await
            .map_err(refusal)?;
        Ok(Bought {
            transaction,
            label_pdf,
        })
    }

    /// Voids (refunds) the label of `transaction`; the refund's id. The
    /// same void again answers the same refund.
    pub async fn void(&self, transaction: &str, key: &str) -> Result<String, BuyError> {
        let req = RefundRequest {
            transaction: transaction.to_string(),
            is_async: false,
        };
        let refund = self
            .guard
            .call("refund", true, || async {
                let sent = self
                    .http
                    .post(format!("{}/refunds", self.base))
                    .header("authorization", format!("ShippoToken {}", self.token))
                    .header(IDEMPOTENCY_HEADER, key)
                    .json(&req)
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => return Attempt::Again(transport(&e), None),
                };
                let status = resp.status();
                let retry_after = guarded::retry_after(
                    resp.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()),
                );
                let body = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => return Attempt::Again(transport(&e), None),
                };
                if status.is_success() {
                    return match serde_json::from_slice::<Refund>(&body) {
                        Ok(r) if r.status == "ERROR" => Attempt::Refused(Refusal::new(
                            "refund_refused",
                            format!("refund {} of {transaction} is ERROR", r.object_id),
                        )),
                        Ok(r) => Attempt::Done(r),
                        Err(e) => Attempt::Again(format!("unreadable refund: {e}"), None),
                    };
                }
                let detail = serde_json::from_slice::<ApiError>(&body)
                    .map(|e| e.detail)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
                guarded::classify(status.as_u16(), &detail, retry_after)
            })
            .await
            .map_err(refusal)?;
        Ok(refund.object_id)
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
                Ok(t) if t.status == "ERROR" => {
                    let code = t
                        .messages
                        .iter()
                        .map(|m| m.code.as_str())
                        .find(|c| !c.is_empty())
                        .unwrap_or(REFUSED);
                    let text = t
                        .messages
                        .iter()
                        .map(|m| m.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    Attempt::Refused(Refusal::new(code, text))
                }
                Ok(t) => {
                    Attempt::Again(format!("transaction {} is {}", t.object_id, t.status), None)
                }
                Err(e) => Attempt::Again(format!("unreadable transaction: {e}"), None),
            };
        }
        let detail = serde_json::from_slice::<ApiError>(&body)
            .map(|e| e.detail)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
        guarded::classify(status.as_u16(), &detail, retry_after)
    }

    async fn download(&self, url: &str) -> Attempt<Vec<u8>> {
        let resp = match self.http.get(url).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Again(transport(&e), None),
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(b) if status.is_success() && b.starts_with(b"%PDF-") => Attempt::Done(b.to_vec()),
            Ok(_) if status.is_success() => {
                Attempt::Refused(Refusal::new("label_not_pdf", format!("{url} is not a PDF")))
            }
            Ok(b) => guarded::classify(
                status.as_u16(),
                &String::from_utf8_lossy(&b)
                    .chars()
                    .take(200)
                    .collect::<String>(),
                None,
            ),
            Err(e) => Attempt::Again(transport(&e), None),
        }
    }
}

/// A [`CallError`] as a [`BuyError`].
fn refusal(e: CallError) -> BuyError {
    match e {
        CallError::Unavailable(why) => BuyError::Unavailable(why),
        CallError::Refused(r) => BuyError::Refused {
            code: r.code,
            reason: r.reason,
        },
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

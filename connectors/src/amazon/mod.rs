//! Amazon SP-API poller (Orders API v0): `getOrders` by `LastUpdatedAfter`
//! with `NextToken` paging, then `getOrderItems` per order, published as
//! one raw record per order: `{"order": <Order as returned>, "items":
//! [<OrderItem as returned>...]}` (what normalize's amazon mapper reads).
//!
//! - Auth: a Login with Amazon access token from the refresh token
//!   ([`crate::oauth`]), sent as `x-amz-access-token`, refreshed on expiry
//!   and once on a 401/403.
//! - Rate limits: a token bucket per operation with the published defaults
//!   (getOrders 0.0167/s burst 20, getOrderItems 0.5/s burst 30), adjusted
//!   to the `x-amzn-RateLimit-Limit` each answer carries; a 429
//!   (`QuotaExceeded`) empties the bucket and is retried. 5xx and network
//!   errors back off exponentially with jitter; after 8 failed attempts the
//!   pass stops and the next one retries from the cursor (a circuit that
//!   opens for one poll interval).
//! - `Pending` orders are not requested: Amazon sends them without prices
//!   or address until payment clears, and they arrive again as `Unshipped`.
//! - G1: the cursor (`LastUpdatedAfter` = the newest `LastUpdateDate`
//!   published) is stored in `<state.dir>/connect.amazon/cursor.json` only
//!   after a page's orders were acknowledged; the next pass starts at it
//!   (inclusive) and normalize drops the overlap.
//!
//! Real SP-API deployments need a Restricted Data Token for buyer PII
//! (shipping address); the simulator returns addresses directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conveyor_runtime::config::AmazonConfig;
use conveyor_schemas::records::{RawOrder, RawSource};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::oauth::RefreshingToken;
use crate::publish::{now_ms, RawPublisher};
use conveyor_runtime::ratelimit::Limiter;

/// Order statuses polled (everything but Pending).
pub const STATUSES: &str = "Unshipped,PartiallyShipped,Shipped,Canceled,Unfulfillable";

#[derive(Debug, thiserror::Error)]
pub enum AmazonError {
    #[error("SP-API {operation}: {message}")]
    Api {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Token(#[from] crate::oauth::TokenError),
    #[error(transparent)]
    Cursor(#[from] crate::cursor::CursorError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub last_updated_after: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub pages: u64,
    pub orders: u64,
    pub throttled: u64,
}

pub struct Poller {
    pub config: AmazonConfig,
    pub publisher: RawPublisher,
    pub cursor_file: PathBuf,
    http: reqwest::Client,
    token: RefreshingToken,
    orders_limit: Limiter,
    items_limit: Limiter,
}

impl Poller {
    pub fn new(config: AmazonConfig, publisher: RawPublisher, state_dir: &Path) -> Poller {
        let token = RefreshingToken::new(
            &config.lwa_url,
            &config.client_id,
            config.client_secret.clone(),
            config.refresh_token.clone(),
            false,
        );
        Poller {
            cursor_file: crate::cursor::path(state_dir, "amazon"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            token,
            orders_limit: Limiter::new(0.0167, 20),
            items_limit: Limiter::new(0.5, 30),
            config,
            publisher,
        }
    }

    /// Polls every `poll_interval_ms` until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let every = Duration::from_millis(self.config.poll_interval_ms.max(1000));
        loop {
            match self.pass(&shutdown).await {
                Ok(s) => {
                    tracing::info!(pages = s.pages, orders = s.orders, "amazon poll pass done")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "amazon poll pass failed; the next pass retries from the cursor")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: every order updated since the cursor, page by page.
    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<PassStats, AmazonError> {
        let mut stats = PassStats::default();
        let since = match crate::cursor::load::<Cursor>(&self.cursor_file)? {
            Some(c) => c.last_updated_after,
            None => conveyor_processors::normalize::fields::format_ms(
                now_ms() - self.config.backfill_hours as i64 * 3_600_000,
            ),
        };
        let mut next: Option<String> = None;
        loop {
            if shutdown.is_cancelled() {
                return Ok(stats);
            }
            let mut q: Vec<(&str, String)> = vec![
                ("MarketplaceIds", self.config.marketplace_ids.join(",")),
                ("MaxResultsPerPage", "100".into()),
            ];
            match &next {
                Some(t) => q.push(("NextToken", t.clone())),
                None => {
                    q.push(("LastUpdatedAfter", since.clone()));
                    q.push(("OrderStatuses", STATUSES.into()));
                }
            }
            let page = self
                .call(
                    "getOrders",
                    &self.orders_limit,
                    "/orders/v0/orders",
                    &q,
                    &mut stats,
                )
                .await?;
            stats.pages += 1;
            let payload = page.get("payload").cloned().unwrap_or(Value::Null);
            let orders = payload
                .get("Orders")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut raws = Vec::with_capacity(orders.len());
            let mut newest: Option<(i64, String)> = None;
            for order in orders {
                let Some(id) = order
                    .get("AmazonOrderId")
                    .and_then(Value::as_str)
                    .map(String::from)
                else {
                    tracing::warn!("getOrders entry without AmazonOrderId skipped");
                    continue;
                };
                let updated = order
                    .get("LastUpdateDate")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let items = self.items(&id, &mut stats).await?;
                if let Ok(ms) =
                    conveyor_processors::normalize::fields::timestamp("LastUpdateDate", &updated)
                {
                    if newest.as_ref().is_none_or(|(n, _)| ms >= *n) {
                        newest = Some((ms, updated.clone()));
                    }
                }
                let body = json!({ "order": order, "items": items });
                raws.push(RawOrder {
                    event_id: format!("amazon:poll:{id}:{updated}"),
                    channel: "amazon".into(),
                    external_order_id: id,
                    external_order_number: None,
                    source: RawSource::Poller,
                    topic_hint: Some("getOrders".into()),
                    received_at: now_ms(),
                    content_type: "application/json".into(),
                    payload: serde_json::to_vec(&body).unwrap_or_default(),
                    source_headers: BTreeMap::from([(
                        "marketplace_ids".to_string(),
                        self.config.marketplace_ids.join(","),
                    )]),
                });
            }
            self.publisher.publish_all(&raws).await?;
            stats.orders += raws.len() as u64;
            if let Some((_, text)) = newest {
                crate::cursor::store(
                    &self.cursor_file,
                    &Cursor {
                        last_updated_after: text,
                    },
                )?;
            }
            next = payload
                .get("NextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(String::from);
            if next.is_none() {
                return Ok(stats);
            }
        }
    }

    /// Every item of one order (getOrderItems pages with NextToken too).
    async fn items(
        &self,
        order_id: &str,
        stats: &mut PassStats,
    ) -> Result<Vec<Value>, AmazonError> {
        let path = format!("/orders/v0/orders/{order_id}/orderItems");
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let q: Vec<(&str, String)> = next.iter().map(|t| ("NextToken", t.clone())).collect();
            let page = self
                .call("getOrderItems", &self.items_limit, &path, &q, stats)
                .await?;
            let payload = page.get("payload").cloned().unwrap_or(Value::Null);
            out.extend(
                payload
                    .get("OrderItems")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            next = payload
                .get("NextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(String::from);
            if next.is_none() {
                return Ok(out);
            }
        }
    }

    /// One SP-API call with the operation's limiter, token refresh and retries.
    async fn call(
        &self,
        operation: &'static str,
        limiter: &Limiter,
        path: &str,
        query: &[(&str, String)],
        stats: &mut PassStats,
    ) -> Result<Value, AmazonError> {
        let base = format!("{}{path}", self.config.api_url.trim_end_matches('/'));
        let url =
            reqwest::Url::parse_with_params(&base, query.iter().map(|(k, v)| (*k, v.as_str())))
                .map_err(|e| AmazonError::Api {
                    operation,
                    message: format!("bad api_url: {e}"),
                })?;
        let mut backoff = Duration::from_millis(500);
        let mut refreshed = false;
        for _ in 0..8 {
            limiter.acquire().await;
            let token = self.token.get(&self.http).await?;
            let resp = self
                .http
                .get(url.clone())
                .header("x-amz-access-token", token)
                .header("accept", "application/json")
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(operation, error = %e, "SP-API unreachable; backing off");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            if let Some(rate) = resp
                .headers()
                .get("x-amzn-ratelimit-limit")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
            {
                limiter.set_rate(rate);
            }
            let status = resp.status().as_u16();
            match status {
                200..=299 => {
                    return resp.json().await.map_err(|e| AmazonError::Api {
                        operation,
                        message: format!("unreadable answer: {e}"),
                    })
                }
                429 => {
                    stats.throttled += 1;
                    metrics::counter!("conveyor_connector_throttled_total", "channel" => "amazon")
                        .increment(1);
                    limiter.penalize(None);
                }
                401 | 403 if !refreshed => {
                    refreshed = true;
                    self.token.invalidate().await;
                }
                500..=599 => {
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                _ => {
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let msg = body["errors"][0]["message"].as_str().unwrap_or("refused");
                    let code = body["errors"][0]["code"].as_str().unwrap_or("");
                    return Err(AmazonError::Api {
                        operation,
                        message: format!("HTTP {status} {code}: {msg}"),
                    });
                }
            }
        }
        Err(AmazonError::Api {
            operation,
            message: "gave up after 8 attempts".into(),
        })
    }
}

/// `d` give or take 20 %, so many pollers do not retry in step.
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + 0.4 * fastrand::f64())
}

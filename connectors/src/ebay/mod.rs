//! eBay Fulfillment API poller: `GET /sell/fulfillment/v1/order` with
//! `filter=lastmodifieddate:[<from>..<to>]`, `limit`/`offset` paging via
//! the answer's `next` link; one raw record per `orders[]` entry, exactly
//! as returned.
//!
//! - Auth: a user access token from the refresh token (OAuth, client id and
//!   secret as basic auth, scope `sell.fulfillment`), refreshed on expiry
//!   and once on a 401.
//! - Rate limit: getOrders allows 100,000 calls a day; a token bucket at
//!   that rate (burst 10); a 429 empties it and is retried; 5xx back off
//!   with jitter; 8 failed attempts end the pass.
//! - Cursor: results are ordered by creation date, not modification date,
//!   and offset paging over a changing set can shift an order past the
//!   page being read. So each pass reads a closed window `[cursor..to]`
//!   (`to` = one minute before the pass started), checks that `total` did
//!   not change while paging, and only then stores `to` as the cursor
//!   (`<state.dir>/connect.ebay/cursor.json`). A window that changed is read
//!   again next pass; normalize drops what was already published (G1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conveyor_runtime::config::EbayConfig;
use conveyor_schemas::records::{RawOrder, RawSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::amazon::jitter;
use crate::oauth::RefreshingToken;
use crate::publish::{now_ms, RawPublisher};
use conveyor_runtime::ratelimit::Limiter;

pub const SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

#[derive(Debug, thiserror::Error)]
pub enum EbayError {
    #[error("eBay getOrders: {0}")]
    Api(String),
    #[error(transparent)]
    Token(#[from] crate::oauth::TokenError),
    #[error(transparent)]
    Cursor(#[from] crate::cursor::CursorError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub last_modified_from: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub pages: u64,
    pub orders: u64,
    pub throttled: u64,
    /// The window changed while paging: the cursor stayed put.
    pub window_changed: bool,
}

pub struct Poller {
    pub config: EbayConfig,
    pub publisher: RawPublisher,
    pub cursor_file: PathBuf,
    http: reqwest::Client,
    token: RefreshingToken,
    limit: Limiter,
}

/// eBay's date form: UTC with milliseconds and `Z`.
fn ebay_time(ms: i64) -> String {
    let t = conveyor_processors::normalize::fields::format_ms(ms);
    // format_ms trims trailing zeros; eBay wants exactly .SSSZ.
    match t.split_once('.') {
        Some((head, frac)) => {
            let digits: String = frac
                .trim_end_matches('Z')
                .chars()
                .chain("000".chars())
                .take(3)
                .collect();
            format!("{head}.{digits}Z")
        }
        None => t.replace('Z', ".000Z"),
    }
}

impl Poller {
    pub fn new(config: EbayConfig, publisher: RawPublisher, state_dir: &Path) -> Poller {
        let mut token = RefreshingToken::new(
            &config.token_url,
            &config.client_id,
            config.client_secret.clone(),
            config.refresh_token.clone(),
            true,
        );
        token.extra.push(("scope".into(), SCOPE.into()));
        Poller {
            cursor_file: crate::cursor::path(state_dir, "ebay"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            token,
            limit: Limiter::new(100_000.0 / 86_400.0, 10),
            config,
            publisher,
        }
    }

    pub async fn run(&self, shutdown: CancellationToken) {
        let every = Duration::from_millis(self.config.poll_interval_ms.max(1000));
        loop {
            match self.pass(&shutdown).await {
                Ok(s) => tracing::info!(pages = s.pages, orders = s.orders, "ebay poll pass done"),
                Err(e) => {
                    tracing::warn!(error = %e, "ebay poll pass failed; the next pass retries from the cursor")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<PassStats, EbayError> {
        let mut stats = PassStats::default();
        let from = match crate::cursor::load::<Cursor>(&self.cursor_file)? {
            Some(c) => c.last_modified_from,
            None => ebay_time(now_ms() - self.config.backfill_hours as i64 * 3_600_000),
        };
        let to = ebay_time(now_ms() - 60_000);
        let base = format!(
            "{}/sell/fulfillment/v1/order",
            self.config.api_url.trim_end_matches('/')
        );
        let mut url = reqwest::Url::parse_with_params(
            &base,
            &[
                ("filter", format!("lastmodifieddate:[{from}..{to}]")),
                ("limit", "200".to_string()),
                ("offset", "0".to_string()),
            ],
        )
        .map_err(|e| EbayError::Api(format!("bad api_url: {e}")))?;
        let mut first_total: Option<u64> = None;
        let mut last_total;
        loop {
            if shutdown.is_cancelled() {
                return Ok(stats);
            }
            let page = self.fetch(&url, &mut stats).await?;
            stats.pages += 1;
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            first_total.get_or_insert(total);
            last_total = total;
            let orders = page
                .get("orders")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let raws: Vec<RawOrder> = orders
                .iter()
                .filter_map(|o| {
                    let id = o.get("orderId").and_then(Value::as_str)?.to_string();
                    let modified = o
                        .get("lastModifiedDate")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Some(RawOrder {
                        event_id: format!("ebay:poll:{id}:{modified}"),
                        channel: "ebay".into(),
                        external_order_id: id,
                        external_order_number: o
                            .get("legacyOrderId")
                            .and_then(Value::as_str)
                            .map(String::from),
                        source: RawSource::Poller,
                        topic_hint: Some("getOrders".into()),
                        received_at: now_ms(),
                        content_type: "application/json".into(),
                        payload: serde_json::to_vec(o).unwrap_or_default(),
                        source_headers: BTreeMap::new(),
                    })
                })
                .collect();
            self.publisher.publish_all(&raws).await?;
            stats.orders += raws.len() as u64;
            match page
                .get("next")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(n) => {
                    url = reqwest::Url::parse(n)
                        .map_err(|e| EbayError::Api(format!("bad next link `{n}`: {e}")))?;
                }
                None => break,
            }
        }
        if first_total == Some(last_total) {
            crate::cursor::store(
                &self.cursor_file,
                &Cursor {
                    last_modified_from: to,
                },
            )?;
        } else {
            stats.window_changed = true;
            tracing::info!("ebay orders changed while paging; the window is read again next pass");
        }
        Ok(stats)
    }

    async fn fetch(&self, url: &reqwest::Url, stats: &mut PassStats) -> Result<Value, EbayError> {
        let mut backoff = Duration::from_millis(500);
        let mut refreshed = false;
        for _ in 0..8 {
            self.limit.acquire().await;
            let token = self.token.get(&self.http).await?;
            let resp = self
                .http
                .get(url.clone())
                .bearer_auth(token)
                .header("accept", "application/json")
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "eBay API unreachable; backing off");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            match status {
                200..=299 => {
                    return resp
                        .json()
                        .await
                        .map_err(|e| EbayError::Api(format!("unreadable answer: {e}")))
                }
                429 => {
                    stats.throttled += 1;
                    metrics::counter!("conveyor_connector_throttled_total", "channel" => "ebay")
                        .increment(1);
                    self.limit.penalize(Some(Duration::from_secs(1)));
                }
                401 if !refreshed => {
                    refreshed = true;
                    self.token.invalidate().await;
                }
                500..=599 => {
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                _ => {
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let e = &body["errors"][0];
                    return Err(EbayError::Api(format!(
                        "HTTP {status} error {}: {}",
                        e["errorId"],
                        e["message"].as_str().unwrap_or("refused")
                    )));
                }
            }
        }
        Err(EbayError::Api("gave up after 8 attempts".into()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ebay_times_have_milliseconds() {
        assert_eq!(super::ebay_time(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(super::ebay_time(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(super::ebay_time(1_230), "1970-01-01T00:00:01.230Z");
    }
}

//! The Shopify Admin REST poller (backfill and safety net for missed
//! webhooks): `GET /admin/api/<version>/orders.json?status=any&order=updated_at+asc&updated_at_min=<cursor>`,
//! following `Link: <...page_info=...>; rel="next"` cursor pagination.
//!
//! Rate limits: the REST Admin API is a leaky bucket (40 calls, 2/s leak on
//! standard plans) reported in `X-Shopify-Shop-Api-Call-Limit: used/size`;
//! the poller slows down past 80 % of the bucket and honours `429` with
//! `Retry-After`. Server errors back off exponentially.
//!
//! G1: the cursor (the newest `updated_at` published) is stored durably in
//! `<state.dir>/connect.shopify/cursor.json` only after every order of a
//! page was acknowledged by the broker. The next pass starts *at* the cursor
//! (inclusive), so an order updated in the same second is not missed; the
//! orders fetched twice carry the same event id and content, and normalize
//! drops them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conveyor_runtime::config::ShopifyConfig;
use conveyor_schemas::records::{RawOrder, RawSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::publish::{now_ms, RawPublisher};

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("Shopify API: {0}")]
    Http(String),
    #[error(
        "Shopify API refused the access token (HTTP {0}); check channels.shopify.access_token"
    )]
    Auth(u16),
    #[error("Shopify API answered something that is not an orders page: {0}")]
    Shape(String),
    #[error("cursor file {path}: {message}")]
    Cursor { path: PathBuf, message: String },
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}

/// The durable position of the poller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// RFC 3339 `updated_at` of the newest order published.
    pub updated_at_min: String,
}

pub fn cursor_path(state_dir: &Path) -> PathBuf {
    state_dir.join("connect.shopify").join("cursor.json")
}

pub fn load_cursor(path: &Path) -> Result<Option<Cursor>, PollError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| PollError::Cursor {
                path: path.to_path_buf(),
                message: format!("unreadable ({e}); fix or delete it to backfill"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PollError::Cursor {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Writes the cursor atomically and durably (temp file, fsync, rename).
pub fn store_cursor(path: &Path, c: &Cursor) -> Result<(), PollError> {
    let err = |e: std::io::Error| PollError::Cursor {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&serde_json::to_vec(c).unwrap_or_default())
            .map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// One pass's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub pages: u64,
    pub orders: u64,
    pub throttled: u64,
}

/// The Admin REST API client: auth header, rate limiting, retries.
pub struct AdminClient {
    pub config: ShopifyConfig,
    pub http: reqwest::Client,
}

impl AdminClient {
    pub fn new(config: ShopifyConfig) -> AdminClient {
        AdminClient {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// One page of an Admin REST list endpoint (`orders`, `products`), with
    /// rate limiting and retries: the entries and the next page's URL.
    pub async fn fetch_list(
        &self,
        url: &reqwest::Url,
        key: &str,
        stats: &mut PassStats,
    ) -> Result<(Vec<Value>, Option<reqwest::Url>), PollError> {
        let mut backoff = Duration::from_millis(500);
        for _attempt in 0..8 {
            let resp = self
                .http
                .get(url.clone())
                .header("X-Shopify-Access-Token", self.config.access_token.expose())
                .header("Accept", "application/json")
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "shopify API unreachable; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 429 {
                stats.throttled += 1;
                metrics::counter!("conveyor_connector_throttled_total", "channel" => "shopify")
                    .increment(1);
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .unwrap_or(2.0);
                tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.1, 60.0))).await;
                continue;
            }
            if status == 401 || status == 403 {
                return Err(PollError::Auth(status));
            }
            if status >= 500 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            if !(200..300).contains(&status) {
                let body = resp.text().await.unwrap_or_default();
                return Err(PollError::Http(format!(
                    "HTTP {status}: {}",
                    truncate(&body)
                )));
            }
            if let Some((used, size)) = resp
                .headers()
                .get("x-shopify-shop-api-call-limit")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_call_limit)
            {
                if used * 5 >= size * 4 {
                    // Past 80 % of the bucket: let it leak (2 calls/s).
                    tokio::time::sleep(Duration::from_millis(500 * (used + 1 - size * 4 / 5)))
                        .await;
                }
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|s| reqwest::Url::parse(&s).ok());
            let body: Value = resp
                .json()
                .await
                .map_err(|e| PollError::Shape(e.to_string()))?;
            let entries = body
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| PollError::Shape(format!("no `{key}` array")))?;
            return Ok((entries, next));
        }
        Err(PollError::Http(format!("{url}: gave up after 8 attempts")))
    }
}

pub struct Poller {
    pub config: ShopifyConfig,
    pub publisher: RawPublisher,
    pub cursor_file: PathBuf,
    pub client: AdminClient,
}

impl Poller {
    pub fn new(config: ShopifyConfig, publisher: RawPublisher, state_dir: &Path) -> Poller {
        Poller {
            client: AdminClient::new(config.clone()),
            config,
            publisher,
            cursor_file: cursor_path(state_dir),
        }
    }

    /// Polls every `poll_interval_ms` until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let every = Duration::from_millis(self.config.poll_interval_ms.max(1000));
        loop {
            match self.pass(&shutdown).await {
                Ok(s) => {
                    tracing::info!(pages = s.pages, orders = s.orders, "shopify poll pass done")
                }
                Err(e) => tracing::warn!(error = %e, "shopify poll pass failed; next pass retries"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: every order updated since the cursor, page by page.
    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<PassStats, PollError> {
        let mut stats = PassStats::default();
        let start = match load_cursor(&self.cursor_file)? {
            Some(c) => c.updated_at_min,
            None => conveyor_processors::normalize::fields::format_ms(
                now_ms() - self.config.backfill_hours as i64 * 3_600_000,
            ),
        };
        let base = format!(
            "{}/admin/api/{}/orders.json",
            self.config.api_url.trim_end_matches('/'),
            self.config.api_version
        );
        let mut url = reqwest::Url::parse_with_params(
            &base,
            &[
                ("status", "any"),
                ("limit", "250"),
                ("order", "updated_at asc"),
                ("updated_at_min", start.as_str()),
            ],
        )
        .map_err(|e| PollError::Http(format!("bad api_url: {e}")))?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(stats);
            }
            let (orders, next) = self.fetch(&url, &mut stats).await?;
            stats.pages += 1;
            let mut raws = Vec::with_capacity(orders.len());
            let mut newest: Option<(i64, String)> = None;
            for o in orders {
                let Some(id) = conveyor_processors::normalize::fields::id_text(o.get("id")) else {
                    tracing::warn!("shopify orders.json entry without an id skipped");
                    continue;
                };
                let updated = o
                    .get("updated_at")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Ok(ms) =
                    conveyor_processors::normalize::fields::timestamp("updated_at", &updated)
                {
                    if newest.as_ref().is_none_or(|(n, _)| ms >= *n) {
                        newest = Some((ms, updated.clone()));
                    }
                }
                raws.push(RawOrder {
                    event_id: format!("shopify:poll:{id}:{updated}"),
                    channel: "shopify".into(),
                    external_order_id: id,
                    external_order_number: o.get("name").and_then(Value::as_str).map(String::from),
                    source: RawSource::Poller,
                    topic_hint: Some("orders.json".into()),
                    received_at: now_ms(),
                    content_type: "application/json".into(),
                    // One order object of the page, re-serialized: the page
                    // is split per order, each published as its own record.
                    payload: serde_json::to_vec(&o).unwrap_or_default(),
                    source_headers: BTreeMap::from([(
                        "api_url".to_string(),
                        url.path().to_string(),
                    )]),
                });
            }
            self.publisher.publish_all(&raws).await?;
            stats.orders += raws.len() as u64;
            if let Some((_, text)) = newest {
                store_cursor(
                    &self.cursor_file,
                    &Cursor {
                        updated_at_min: text,
                    },
                )?;
            }
            match next {
                Some(n) => url = n,
                None => return Ok(stats),
            }
        }
    }

    /// One page, with rate limiting and retries.
    async fn fetch(
        &self,
        url: &reqwest::Url,
        stats: &mut PassStats,
    ) -> Result<(Vec<Value>, Option<reqwest::Url>), PollError> {
        self.client.fetch_list(url, "orders", stats).await
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `X-Shopify-Shop-Api-Call-Limit: 32/40` -> (32, 40).
pub fn parse_call_limit(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// The `rel="next"` URL of an RFC 8288 `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        is_next.then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_and_call_limit_headers() {
        let h = r#"<https://s.myshopify.com/admin/api/2025-01/orders.json?limit=250&page_info=abc>; rel="previous", <https://s.myshopify.com/admin/api/2025-01/orders.json?limit=250&page_info=def>; rel="next""#;
        assert_eq!(
            next_link(h).unwrap(),
            "https://s.myshopify.com/admin/api/2025-01/orders.json?limit=250&page_info=def"
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="previous""#), None);
        assert_eq!(parse_call_limit("32/40"), Some((32, 40)));
        assert_eq!(parse_call_limit("x"), None);
    }

    #[test]
    fn cursor_round_trips_atomically() {
        let d = tempfile::tempdir().unwrap();
        let p = cursor_path(d.path());
        assert_eq!(load_cursor(&p).unwrap(), None);
        let c = Cursor {
            updated_at_min: "2025-01-01T00:00:00Z".into(),
        };
        store_cursor(&p, &c).unwrap();
        assert_eq!(load_cursor(&p).unwrap(), Some(c));
        std::fs::write(&p, b"{").unwrap();
        assert!(load_cursor(&p)
            .unwrap_err()
            .to_string()
            .contains("delete it"));
    }
}

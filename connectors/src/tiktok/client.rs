//! The TikTok Shop Open API client for Get Order Detail (version 202309):
//! `GET {api_url}/order/202309/orders?ids=<id,...>&app_key=..&shop_cipher=..&timestamp=..&sign=..`
//! with the access token in the `x-tts-access-token` header.
//!
//! - Signing: [`super::sign::api_sign`] with the first configured app
//!   secret; when TikTok answers `106001` (invalid sign) and another secret
//!   is configured (a rotation), the next one is tried and kept.
//! - Answers: `{"code":0,"message":"Success","request_id":..,"data":{"orders":[..]}}`.
//!   A non-zero `code` is an error whatever the HTTP status (the gateway
//!   sends 401 with `106001`, 400 with `36009004`, 429 with `36009002`).
//! - Rate limit: a token bucket of `channels.tiktok.api_rate_per_sec`
//!   calls/s (default 10, burst of one second) per process. TikTok's
//!   rate-limits page makes the QPS per app and shop dynamic and asks
//!   clients to start low and back off on `429`/`36009002`; older revisions
//!   named 50 QPS per API as the default. 10/s is a fifth of that, and [`OrderFetcher`] puts up to 50 order ids
//!   in one call when webhooks arrive faster than that.
//! - Retries: `429`/`36009002` (the bucket is emptied too), `36009003`
//!   (internal error), `36009007` (timeout), 5xx and network errors, with
//!   exponential backoff plus jitter ([`RetryPolicy`]). Signature and
//!   credential errors are not retried: they need a config change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor_runtime::config::{Secret, TikTokConfig};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::sign::api_sign;
use conveyor_runtime::ratelimit::Limiter;

/// Get Order Detail, version 202309.
pub const ORDER_DETAIL_PATH: &str = "/order/202309/orders";
/// Order ids one Get Order Detail call accepts ("Max count: 50").
pub const MAX_IDS: usize = 50;

/// TikTok Shop error codes the client acts on (Partner Center, "Common
/// errors"; the numeric code is reused, so messages are passed on verbatim).
pub mod codes {
    pub const SUCCESS: i64 = 0;
    /// "Expired credentials": the access token expired.
    pub const EXPIRED_TOKEN: i64 = 105002;
    /// "Access denied": the app or token lacks the endpoint's scope.
    pub const NO_SCOPE: i64 = 105005;
    /// "Invalid credentials. The `sign` query parameter is invalid."
    pub const INVALID_SIGN: i64 = 106001;
    /// "Missing identifier. The `shop_cipher` query parameter is required".
    pub const MISSING_SHOP_CIPHER: i64 = 106013;
    /// "Too many requests." (HTTP 429).
    pub const TOO_MANY_REQUESTS: i64 = 36009002;
    /// "Internal error. Please try again."
    pub const INTERNAL_ERROR: i64 = 36009003;
    /// Invalid `app_key`, `x-tts-access-token` or `timestamp` (one code, the
    /// message says which).
    pub const INVALID_PARAMETER: i64 = 36009004;
    /// "Request timeout".
    pub const REQUEST_TIMEOUT: i64 = 36009007;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("TikTok Shop refused the request signature (code {code}: {message}; request_id {request_id}): none of the {tried} configured channels.tiktok.app_secrets is the app secret of app_key `{app_key}`")]
    Sign {
        code: i64,
        message: String,
        request_id: String,
        app_key: String,
        tried: usize,
    },
    #[error("TikTok Shop refused the credentials (code {code}: {message}; request_id {request_id}): {hint}")]
    Credentials {
        code: i64,
        message: String,
        request_id: String,
        hint: &'static str,
    },
    #[error("TikTok Shop API error {code} (HTTP {status}): {message} (request_id {request_id})")]
    Api {
        code: i64,
        status: u16,
        message: String,
        request_id: String,
    },
    #[error("TikTok Shop API gave up after {attempts} attempts; last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("TikTok Shop answered something that is not a Get Order Detail response: {0}")]
    Shape(String),
    #[error("TikTok Shop returned no order {id} (request_id {request_id})")]
    NotFound { id: String, request_id: String },
    #[error("TikTok Shop client: {0}")]
    Request(String),
}

impl ApiError {
    /// Worth retrying later (TikTok retries the webhook): everything but a
    /// refused signature or credentials and a malformed request.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ApiError::Sign { .. } | ApiError::Credentials { .. } | ApiError::Request(_)
        )
    }
}

/// Backoff between attempts: `min(base x 2^n, cap)` plus up to `jitter`
/// (the shape TikTok's rate-limits page recommends: 1 s doubling, 0-500 ms
/// jitter, 60 s cap, a handful of attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    pub jitter: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << n.min(20)).min(self.cap);
        exp + self.jitter.mul_f64(fastrand::f64())
    }
}

/// One Get Order Detail answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDetail {
    /// `data.orders[]`, each exactly as returned.
    pub orders: Vec<Value>,
    pub request_id: String,
}

#[derive(Deserialize)]
struct Envelope {
    code: Option<i64>,
    message: Option<String>,
    request_id: Option<String>,
    data: Option<Value>,
}

/// The signed Get Order Detail client.
pub struct ApiClient {
    base: String,
    app_key: String,
    secrets: Vec<Secret>,
    active: AtomicUsize,
    access_token: Secret,
    shop_cipher: String,
    http: reqwest::Client,
    limiter: Limiter,
    retry: RetryPolicy,
    throttled: AtomicU64,
}

impl ApiClient {
    pub fn new(config: &TikTokConfig) -> ApiClient {
        ApiClient {
            base: config.api_url.trim_end_matches('/').to_string(),
            app_key: config.app_key.clone(),
            secrets: config
                .app_secrets
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            active: AtomicUsize::new(0),
            access_token: config.access_token.clone(),
            shop_cipher: config.shop_cipher.clone(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            limiter: Limiter::new(
                config.api_rate_per_sec,
                (config.api_rate_per_sec.ceil() as u32).max(1),
            ),
            retry: RetryPolicy::default(),
            throttled: AtomicU64::new(0),
        }
    }

    /// Another token bucket (calls/s, burst).
    pub fn with_rate(mut self, rate_per_sec: f64, burst: u32) -> ApiClient {
        self.limiter = Limiter::new(rate_per_sec, burst);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> ApiClient {
        self.retry = retry;
        self
    }

    /// Rate-limited answers (`429`/`36009002`) received so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The orders `ids` (at most [`MAX_IDS`]), with rate limiting, retries
    /// and secret rotation. Ids TikTok does not know are simply absent.
    pub async fn get_orders(&self, ids: &[String]) -> Result<OrderDetail, ApiError> {
        self.fetch(ids, false).await
    }

    /// The signed URL of a Get Order Detail call (what [`ApiClient::get_orders`]
    /// sends; the access token is a header, not part of it).
    pub fn order_detail_url(
        &self,
        ids: &[String],
        secret: &str,
        timestamp: u64,
    ) -> Result<reqwest::Url, ApiError> {
        let ts = timestamp.to_string();
        let joined = ids.join(",");
        let mut params: Vec<(&str, &str)> = vec![
            ("app_key", self.app_key.as_str()),
            ("ids", joined.as_str()),
            ("timestamp", ts.as_str()),
        ];
        if !self.shop_cipher.is_empty() {
            params.push(("shop_cipher", self.shop_cipher.as_str()));
        }
        let mut url = reqwest::Url::parse(&format!("{}{ORDER_DETAIL_PATH}", self.base))
            .map_err(|e| ApiError::Request(format!("bad channels.tiktok.api_url: {e}")))?;
        // The path as the server sees it (an api_url may carry a prefix).
        let path = url.path().to_string();
        let sign = api_sign(secret, &path, params.iter().copied(), b"");
        url.query_pairs_mut()
            .extend_pairs(params.iter().copied())
            .append_pair("sign", &sign);
        Ok(url)
    }

    /// `token_held`: the caller already took this call's token from the
    /// bucket ([`OrderFetcher`] does, to batch while it waits).
    async fn fetch(&self, ids: &[String], mut token_held: bool) -> Result<OrderDetail, ApiError> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ApiError::Request(format!(
                "Get Order Detail takes 1 to {MAX_IDS} order ids, not {}",
                ids.len()
            )));
        }
        if self.secrets.is_empty() {
            return Err(ApiError::Request(
                "channels.tiktok.app_secrets is empty: requests cannot be signed".into(),
            ));
        }
        let mut failures = 0u32;
        let mut switched = 0usize;
        let mut last = String::new();
        loop {
            if failures >= self.retry.attempts.max(1) {
                return Err(ApiError::GaveUp {
                    attempts: failures,
                    last,
                });
            }
            if !token_held {
                self.limiter.acquire().await;
            }
            token_held = false;
            let at = self.active.load(Ordering::Relaxed) % self.secrets.len();
            let url = self.order_detail_url(ids, self.secrets[at].expose(), unix_now())?;
            let sent = self
                .http
                .get(url)
                .header("x-tts-access-token", self.access_token.expose())
                .header("content-type", "application/json")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    // Without the URL: it carries the sign and the shop cipher.
                    last = format!("unreachable: {}", e.without_url());
                    tracing::warn!(error = %last, "tiktok API unreachable; backing off");
                    tokio::time::sleep(self.retry.delay(failures)).await;
                    failures += 1;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(60.0)));
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = format!("HTTP {status}, body unreadable: {}", e.without_url());
                    tokio::time::sleep(self.retry.delay(failures)).await;
                    failures += 1;
                    continue;
                }
            };
            let env: Option<Envelope> = serde_json::from_slice(&body).ok();
            let code = env.as_ref().and_then(|e| e.code);
            let message = env
                .as_ref()
                .and_then(|e| e.message.clone())
                .unwrap_or_default();
            let request_id = env
                .as_ref()
                .and_then(|e| e.request_id.clone())
                .unwrap_or_default();
            let throttled = status == 429 || code == Some(codes::TOO_MANY_REQUESTS);
            let transient = status >= 500
                || matches!(
                    code,
                    Some(codes::INTERNAL_ERROR) | Some(codes::REQUEST_TIMEOUT)
                );
            if throttled {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("conveyor_connector_throttled_total", "channel" => "tiktok")
                    .increment(1);
                self.limiter.penalize(retry_after);
                last = format!("rate limited (HTTP {status}, code {code:?}: {message})");
                tracing::debug!(request_id, "tiktok API rate limited; backing off");
                let wait = self
                    .retry
                    .delay(failures)
                    .max(retry_after.unwrap_or_default());
                tokio::time::sleep(wait).await;
                failures += 1;
                continue;
            }
            if transient {
                last = format!("HTTP {status}, code {code:?}: {message} (request_id {request_id})");
                tracing::warn!(error = %last, "tiktok API unavailable; backing off");
                tokio::time::sleep(self.retry.delay(failures)).await;
                failures += 1;
                continue;
            }
            let Some(env) = env else {
                return Err(ApiError::Shape(format!(
                    "HTTP {status}, not a JSON envelope: {}",
                    truncate(&String::from_utf8_lossy(&body))
                )));
            };
            match env.code {
                Some(codes::SUCCESS) if (200..300).contains(&status) => {
                    let orders = match env.data.as_ref().map(|d| d.get("orders")) {
                        Some(Some(Value::Array(a))) => a.clone(),
                        // No match at all comes back without the array.
                        Some(None) | Some(Some(Value::Null)) | None => Vec::new(),
                        Some(Some(other)) => {
                            return Err(ApiError::Shape(format!(
                                "data.orders is not a list: {}",
                                truncate(&other.to_string())
                            )))
                        }
                    };
                    return Ok(OrderDetail { orders, request_id });
                }
                Some(codes::INVALID_SIGN) if switched + 1 < self.secrets.len() => {
                    switched += 1;
                    let next = (at + 1) % self.secrets.len();
                    self.active.store(next, Ordering::Relaxed);
                    tracing::warn!(
                        refused = at,
                        next,
                        request_id,
                        "tiktok refused the sign of app secret #{at} (106001); signing with the next configured secret"
                    );
                }
                Some(codes::INVALID_SIGN) => {
                    return Err(ApiError::Sign {
                        code: codes::INVALID_SIGN,
                        message,
                        request_id,
                        app_key: self.app_key.clone(),
                        tried: self.secrets.len(),
                    })
                }
                Some(
                    c @ (codes::EXPIRED_TOKEN
                    | codes::NO_SCOPE
                    | codes::MISSING_SHOP_CIPHER
                    | codes::INVALID_PARAMETER),
                ) => {
                    return Err(ApiError::Credentials {
                        code: c,
                        message,
                        request_id,
                        hint: credential_hint(c),
                    })
                }
                Some(c) => {
                    return Err(ApiError::Api {
                        code: c,
                        status,
                        message,
                        request_id,
                    })
                }
                None => {
                    return Err(ApiError::Shape(format!(
                        "HTTP {status} without a `code`: {}",
                        truncate(&String::from_utf8_lossy(&body))
                    )))
                }
            }
        }
    }
}

fn credential_hint(code: i64) -> &'static str {
    match code {
        codes::EXPIRED_TOKEN => {
            "the access token expired: refresh it and update channels.tiktok.access_token"
        }
        codes::NO_SCOPE => {
            "the app or the access token lacks the order scope (seller.order.info): grant it and re-authorize the shop"
        }
        codes::MISSING_SHOP_CIPHER => {
            "channels.tiktok.shop_cipher is missing or wrong (Get Authorized Shops gives it)"
        }
        _ => "check channels.tiktok.app_key and access_token, and the clock (the timestamp must be within 5 minutes of TikTok's)",
    }
}

/// Seconds since the Unix epoch (the `timestamp` parameter).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An order fetched for one webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub order: Value,
    pub request_id: String,
}

struct Pending {
    id: String,
    reply: oneshot::Sender<Result<Fetched, ApiError>>,
}

/// Fetches single orders for concurrent webhooks, batching: a call waits for
/// a token of the client's bucket, then takes every order id queued by then
/// (up to [`MAX_IDS`]). Alone, a webhook's order is fetched at once; in a
/// burst, 10 calls/s carry up to 500 orders.
#[derive(Clone)]
pub struct OrderFetcher {
    tx: mpsc::Sender<Pending>,
}

impl OrderFetcher {
    /// Starts the batching task (it ends when every clone is dropped).
    pub fn spawn(client: Arc<ApiClient>) -> OrderFetcher {
        let (tx, mut rx) = mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                client.limiter.acquire().await;
                let mut batch = vec![first];
                let mut ids: Vec<String> = vec![batch[0].id.clone()];
                while ids.len() < MAX_IDS {
                    match rx.try_recv() {
                        Ok(p) => {
                            if !ids.contains(&p.id) {
                                ids.push(p.id.clone());
                            }
                            batch.push(p);
                        }
                        Err(_) => break,
                    }
                }
                let client = client.clone();
                tokio::spawn(async move {
                    let res = client.fetch(&ids, true).await;
                    let by_id: HashMap<String, &Value> = match &res {
                        Ok(d) => d
                            .orders
                            .iter()
                            .filter_map(|o| {
                                conveyor_processors::normalize::fields::id_text(o.get("id"))
                                    .map(|id| (id, o))
                            })
                            .collect(),
                        Err(_) => HashMap::new(),
                    };
                    for p in batch {
                        let answer = match &res {
                            Ok(d) => match by_id.get(&p.id) {
                                Some(o) => Ok(Fetched {
                                    order: (*o).clone(),
                                    request_id: d.request_id.clone(),
                                }),
                                None => Err(ApiError::NotFound {
                                    id: p.id.clone(),
                                    request_id: d.request_id.clone(),
                                }),
                            },
                            Err(e) => Err(e.clone()),
                        };
                        // The webhook may have timed out and left.
                        let _ = p.reply.send(answer);
                    }
                });
            }
        });
        OrderFetcher { tx }
    }

    /// The order `id`, as Get Order Detail returns it.
    pub async fn fetch(&self, id: &str) -> Result<Fetched, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending {
                id: id.to_string(),
                reply,
            })
            .await
            .map_err(|_| ApiError::Request("the order fetcher stopped".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Request("the order fetcher stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::tiktok as sim;
    use tokio_util::sync::CancellationToken;

    const KEY: &str = "6a6test";
    const SECRET: &str = "sim-secret-1";
    const TOKEN: &str = "TTP_sim-token";

    fn config(api_url: String, secrets: &[&str]) -> TikTokConfig {
        TikTokConfig {
            api_url,
            app_key: KEY.into(),
            app_secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            access_token: Secret::new(TOKEN),
            shop_cipher: "ROW_simcipher".into(),
            ack_timeout_ms: 4000,
            ..TikTokConfig::default()
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            jitter: Duration::from_millis(10),
        }
    }

    async fn start(s: sim::Sim) -> (String, Arc<sim::Sim>, CancellationToken) {
        let s = Arc::new(s);
        let stop = CancellationToken::new();
        let (addr, _task) = sim::serve(s.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
            .await
            .unwrap();
        (format!("http://{addr}"), s, stop)
    }

    fn id_of(n: u64) -> String {
        conveyor_processors::normalize::tiktok::example(n)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn fetches_orders_as_the_api_returns_them() {
        let (url, _sim, stop) = start(sim::Sim::new(20, KEY, SECRET, TOKEN)).await;
        let c = ApiClient::new(&config(url, &[SECRET])).with_retry(fast());
        let d = c.get_orders(&[id_of(3)]).await.unwrap();
        assert_eq!(
            d.orders,
            vec![conveyor_processors::normalize::tiktok::example(3)]
        );
        assert!(!d.request_id.is_empty());
        let ids: Vec<String> = (0..20).map(id_of).chain(["1".to_string()]).collect();
        assert_eq!(
            c.get_orders(&ids[..20]).await.unwrap().orders.len(),
            20,
            "many ids per call"
        );
        assert!(
            c.get_orders(&ids[20..]).await.unwrap().orders.is_empty(),
            "an unknown id is absent"
        );
        let too_many: Vec<String> = (0..51).map(id_of).collect();
        assert!(matches!(
            c.get_orders(&too_many).await,
            Err(ApiError::Request(_))
        ));
        stop.cancel();
    }

    #[tokio::test]
    async fn a_wrong_secret_is_a_clear_error_and_rotation_finds_the_right_one() {
        let (url, sim, stop) = start(sim::Sim::new(5, KEY, SECRET, TOKEN)).await;
        let c = ApiClient::new(&config(url.clone(), &["not-the-secret"])).with_retry(fast());
        let e = c.get_orders(&[id_of(1)]).await.unwrap_err();
        assert!(matches!(e, ApiError::Sign { code: 106001, .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("app_secrets") && text.contains(KEY) && text.contains("106001"),
            "{text}"
        );
        assert!(!text.contains("not-the-secret"), "the secret is not echoed");
        assert!(!e.is_retryable());

        // During a rotation: the first secret is refused, the second is used
        // and kept.
        let c = ApiClient::new(&config(url.clone(), &["old-secret", SECRET])).with_retry(fast());
        assert_eq!(c.get_orders(&[id_of(1)]).await.unwrap().orders.len(), 1);
        let before = sim.counts().0;
        c.get_orders(&[id_of(2)]).await.unwrap();
        assert_eq!(sim.counts().0 - before, 1, "no second refusal");

        // A wrong access token is a credentials error naming the header.
        let mut cfg = config(url, &[SECRET]);
        cfg.access_token = Secret::new("TTP_wrong");
        let e = ApiClient::new(&cfg)
            .with_retry(fast())
            .get_orders(&[id_of(1)])
            .await
            .unwrap_err();
        assert!(
            matches!(e, ApiError::Credentials { code: 36009004, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("x-tts-access-token"), "{e}");
        stop.cancel();
    }

    #[tokio::test]
    async fn rate_limited_answers_are_retried() {
        // One call per second with a burst of 1: the second call is refused
        // with 36009002 and succeeds after backing off.
        let (url, sim, stop) =
            start(sim::Sim::new(5, KEY, SECRET, TOKEN).with_rate(10.0, 1.0)).await;
        let c = ApiClient::new(&config(url, &[SECRET]))
            .with_rate(1000.0, 100)
            .with_retry(fast());
        for n in 0..4 {
            assert_eq!(c.get_orders(&[id_of(n)]).await.unwrap().orders.len(), 1);
        }
        assert!(c.throttled() >= 1, "the simulator throttled");
        assert_eq!(sim.counts().1, c.throttled());

        // Throttled every time: a clear give-up, retryable.
        let (url, _sim, stop2) =
            start(sim::Sim::new(5, KEY, SECRET, TOKEN).with_rate(0.001, 1.0)).await;
        let c = ApiClient::new(&config(url, &[SECRET]))
            .with_rate(1000.0, 100)
            .with_retry(RetryPolicy {
                attempts: 3,
                ..fast()
            });
        c.get_orders(&[id_of(0)]).await.unwrap();
        let e = c.get_orders(&[id_of(1)]).await.unwrap_err();
        assert!(matches!(e, ApiError::GaveUp { attempts: 3, .. }), "{e}");
        assert!(e.to_string().contains("rate limited"), "{e}");
        assert!(e.is_retryable());
        stop.cancel();
        stop2.cancel();
    }

    #[tokio::test]
    async fn an_unreachable_api_gives_up_with_the_cause() {
        let c = ApiClient::new(&config("http://127.0.0.1:1".into(), &[SECRET])).with_retry(
            RetryPolicy {
                attempts: 2,
                ..fast()
            },
        );
        let e = c.get_orders(&[id_of(0)]).await.unwrap_err();
        assert!(matches!(e, ApiError::GaveUp { attempts: 2, .. }), "{e}");
        assert!(e.to_string().contains("unreachable"), "{e}");
        assert!(!e.to_string().contains("sign="), "no signed URL in errors");
    }

    #[tokio::test]
    async fn the_fetcher_batches_concurrent_webhooks() {
        let (url, sim, stop) = start(sim::Sim::new(60, KEY, SECRET, TOKEN)).await;
        // Two calls/s: 40 concurrent fetches cannot be 40 calls.
        let c = Arc::new(
            ApiClient::new(&config(url, &[SECRET]))
                .with_rate(2.0, 1)
                .with_retry(fast()),
        );
        let f = OrderFetcher::spawn(c.clone());
        let tasks: Vec<_> = (0..40u64)
            .map(|n| {
                let f = f.clone();
                tokio::spawn(async move { (n, f.fetch(&id_of(n % 30)).await) })
            })
            .collect();
        for t in tasks {
            let (n, got) = t.await.unwrap();
            let got = got.unwrap();
            assert_eq!(
                got.order,
                conveyor_processors::normalize::tiktok::example(n % 30)
            );
        }
        let calls = sim.counts().0;
        assert!(calls <= 4, "{calls} calls for 40 fetches");
        let e = f.fetch("1").await.unwrap_err();
        assert!(matches!(e, ApiError::NotFound { .. }), "{e}");
        stop.cancel();
    }

    #[test]
    fn the_url_is_signed_as_documented() {
        let c = ApiClient::new(&config("https://open-api.example/".into(), &[SECRET]));
        let url = c
            .order_detail_url(&["1".into(), "2".into()], SECRET, 1_700_000_000)
            .unwrap();
        assert_eq!(url.path(), ORDER_DETAIL_PATH);
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ids"), Some("1,2"));
        assert_eq!(get("app_key"), Some(KEY));
        assert_eq!(get("shop_cipher"), Some("ROW_simcipher"));
        assert_eq!(get("timestamp"), Some("1700000000"));
        assert_eq!(get("access_token"), None, "the token is a header");
        let by_hand = super::super::sign::api_sign(
            SECRET,
            ORDER_DETAIL_PATH,
            [
                ("app_key", KEY),
                ("ids", "1,2"),
                ("shop_cipher", "ROW_simcipher"),
                ("timestamp", "1700000000"),
            ],
            b"",
        );
        assert_eq!(get("sign"), Some(by_hand.as_str()));
        let d = RetryPolicy::default();
        assert!(d.delay(0) >= Duration::from_secs(1) && d.delay(0) <= Duration::from_millis(1500));
        assert!(d.delay(10) <= Duration::from_millis(60_500));
    }
}

//! A local TikTok Shop: Get Order Detail (202309) and the signed
//! ORDER_STATUS_CHANGE webhook delivery, in the shapes TikTok documents, so
//! the demo and the tests run the real connector code.
//!
//! `GET /order/202309/orders?ids=..&app_key=..&timestamp=..&sign=..[&shop_cipher=..]`
//! with the `x-tts-access-token` header. Checks, in this order, each
//! answered with TikTok's error envelope `{"code","message","request_id","data":null}`:
//! - `app_key` unknown: HTTP 400, `36009004` "Invalid credentials. Invalid
//!   'app_key' query parameter." (what the live gateway answers);
//! - `timestamp` missing or outside [now - 5 min, now + 30 s] (the window of
//!   "Common parameters"): HTTP 400, `36009004` "Invalid timestamp...";
//! - `sign` missing or not the documented HMAC (path, sorted parameters
//!   without `sign`/`access_token`, body, wrapped in the app secret): HTTP
//!   401, `106001` (what the live gateway answers);
//! - `x-tts-access-token` missing or wrong: HTTP 401, `36009004` "Invalid
//!   credentials. The `x-tts-access-token` header is invalid."; expired
//!   ([`Sim::expire_token`]): `105002`;
//! - a shop cipher configured ([`Sim::with_shop_cipher`]) and not sent:
//!   HTTP 400, `106013`;
//! - past the token bucket (default 50 calls/s, burst 50): HTTP 429,
//!   `36009002` "Too many requests...";
//! - `ids` missing, or more than 50: HTTP 400, `36009004`.
//!
//! Then `{"code":0,"message":"Success","request_id":..,"data":{"orders":[..]}}`
//! with the known ids' orders, in the order asked (unknown ids are left out).
//! Orders are `conveyor_processors::normalize::tiktok::example(0..n)`.
//!
//! Mark Package As Shipped (`POST /fulfillment/202309/orders/{order_id}/packages`,
//! same checks): `order_line_item_ids` (units), `tracking_number`,
//! `shipping_provider_id`; answers `data.package_id`; a unit shipped before
//! or not in the order is `36009004`. Shipped units then show their
//! `package_id` and `tracking_number` in Get Order Detail. Recorded in
//! [`Sim::shipments`].
//!
//! [`fire_webhooks`] delivers ORDER_STATUS_CHANGE (type 1) notifications
//! for those orders, signed in `Authorization` (hex HMAC-SHA256 of app_key +
//! body under the app secret), retrying non-2xx answers as TikTok does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conveyor_processors::normalize::tiktok::example;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::tiktok::client::{codes, unix_now, MAX_IDS, ORDER_DETAIL_PATH};
use crate::tiktok::sign::{verify_api_sign, webhook_sign};

use super::ledger::{Ledger, Shipped};
use super::Bucket;

/// The default rate limit: 50 calls/s per app and shop, the per-API default
/// older revisions of TikTok's rate-limits page named.
pub const RATE_PER_SEC: f64 = 50.0;
pub const BURST: f64 = 50.0;
/// The shop the simulated notifications come from.
pub const SHOP_ID: &str = "7495540735365777507";

pub struct Sim {
    orders: Vec<Value>,
    by_id: HashMap<String, usize>,
    app_key: String,
    app_secret: String,
    access_token: String,
    shop_cipher: Option<String>,
    expired: AtomicBool,
    bucket: Bucket,
    requests: AtomicU64,
    throttled: AtomicU64,
    /// Packages marked as shipped through the API (lines are unit ids).
    pub shipments: Ledger,
}

impl Sim {
    /// A shop with orders `example(0..n)`, the app `app_key`/`app_secret`
    /// and one authorized access token.
    pub fn new(n: u64, app_key: &str, app_secret: &str, access_token: &str) -> Sim {
        let orders: Vec<Value> = (0..n).map(example).collect();
        let by_id = orders
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o["id"].as_str().map(|id| (id.to_string(), i)))
            .collect();
        Sim {
            orders,
            by_id,
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            access_token: access_token.into(),
            shop_cipher: None,
            expired: AtomicBool::new(false),
            bucket: Bucket::new(RATE_PER_SEC, BURST),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            shipments: Ledger::default(),
        }
    }

    /// Another rate limit (tests make it bite quickly).
    pub fn with_rate(mut self, rate_per_sec: f64, burst: f64) -> Sim {
        self.bucket = Bucket::new(rate_per_sec, burst);
        self
    }

    /// Requires `shop_cipher` on every call (cross-border shops).
    pub fn with_shop_cipher(mut self, cipher: &str) -> Sim {
        self.shop_cipher = Some(cipher.to_string());
        self
    }

    /// From now on the access token is expired (`105002`).
    pub fn expire_token(&self) {
        self.expired.store(true, Ordering::Relaxed);
    }

    /// Get Order Detail requests answered, and how many were rate limited.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
        )
    }
}

fn request_id(n: u64) -> String {
    // TikTok's are a UTC timestamp and 20 hex digits.
    format!("20250101000000{n:020X}")
}

fn error(status: StatusCode, code: i64, message: &str, n: u64) -> Response {
    (
        status,
        Json(
            json!({ "code": code, "data": null, "message": message, "request_id": request_id(n) }),
        ),
    )
        .into_response()
}

/// The checks every API call passes: app key, timestamp, signature, access
/// token, shop cipher, rate limit. The answer when one fails.
fn authenticate(
    sim: &Sim,
    uri: &Uri,
    headers: &HeaderMap,
    q: &[(String, String)],
    body: &[u8],
    n: u64,
) -> Option<Response> {
    let param = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    if param("app_key") != Some(sim.app_key.as_str()) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PARAMETER,
            "Invalid credentials. Invalid 'app_key' query parameter.",
            n,
        ));
    }
    let now = unix_now() as i64;
    let ts_ok = param("timestamp")
        .filter(|t| t.len() == 10)
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| t >= now - 300 && t <= now + 30);
    if !ts_ok {
        return Some(error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PARAMETER,
            "Invalid timestamp. The `timestamp` query parameter must be a 10-digit Unix timestamp within [current time - 5 mins, current time + 30 secs].",
            n,
        ));
    }
    let multipart = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let signed_body: &[u8] = if multipart { b"" } else { body };
    let signed = param("sign").is_some_and(|given| {
        verify_api_sign(
            &sim.app_secret,
            uri.path(),
            q.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            signed_body,
            given,
        )
    });
    if !signed {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_SIGN,
            "Invalid credentials. The 'sign' query parameter is invalid.",
            n,
        ));
    }
    let token = headers
        .get("x-tts-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token != sim.access_token {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_PARAMETER,
            "Invalid credentials. The `x-tts-access-token` header is invalid.",
            n,
        ));
    }
    if sim.expired.load(Ordering::Relaxed) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            codes::EXPIRED_TOKEN,
            "Expired credentials. The `access_token` or `x-tts-access-token` header has expired.",
            n,
        ));
    }
    if let Some(cipher) = &sim.shop_cipher {
        if param("shop_cipher") != Some(cipher.as_str()) {
            return Some(error(
                StatusCode::BAD_REQUEST,
                codes::MISSING_SHOP_CIPHER,
                "Missing identifier. The `shop_cipher` query parameter is required to identify the target shop.",
                n,
            ));
        }
    }
    if !sim.bucket.take() {
        sim.throttled.fetch_add(1, Ordering::Relaxed);
        return Some(error(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_REQUESTS,
            "Too many requests. You've made too many requests in a short period of time.",
            n,
        ));
    }
    None
}

async fn order_detail(
    State(sim): State<Arc<Sim>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let n = sim.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(r) = authenticate(&sim, &uri, &headers, &q, &body, n) {
        return r;
    }
    let param = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let ids: Vec<&str> = param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return error(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PARAMETER,
            &format!(
                "Invalid param. `ids` takes 1 to {MAX_IDS} order ids, got {}.",
                ids.len()
            ),
            n,
        );
    }
    let mut seen = Vec::with_capacity(ids.len());
    let orders: Vec<Value> = ids
        .iter()
        .filter(|id| {
            let new = !seen.contains(*id);
            seen.push(**id);
            new
        })
        .filter_map(|id| sim.by_id.get(*id).map(|&i| sim.as_now(&sim.orders[i])))
        .collect();
    Json(json!({
        "code": 0,
        "message": "Success",
        "request_id": request_id(n),
        "data": { "orders": orders }
    }))
    .into_response()
}

impl Sim {
    /// The order with what was shipped: each shipped unit carries its
    /// package id, tracking number and provider.
    fn as_now(&self, order: &Value) -> Value {
        let id = order["id"].as_str().unwrap_or_default();
        let shipped = self.shipments.shipped(id);
        if shipped.is_empty() {
            return order.clone();
        }
        let mut o = order.clone();
        for unit in o["line_items"].as_array_mut().into_iter().flatten() {
            let uid = unit["id"].as_str().unwrap_or_default().to_string();
            if let Some(s) = shipped
                .iter()
                .find(|s| s.lines.iter().any(|(l, _)| *l == uid))
            {
                unit["package_id"] = json!(s.reference);
                unit["tracking_number"] = json!(s.tracking_number);
                unit["shipping_provider_id"] = json!(s.carrier);
                unit["display_status"] = json!("AWAITING_COLLECTION");
                unit["package_status"] = json!("TO_FULFILL");
            }
        }
        o
    }
}

/// Mark Package As Shipped: `order_line_item_ids`, `tracking_number`,
/// `shipping_provider_id`; answers the new `package_id`.
async fn mark_shipped(
    State(sim): State<Arc<Sim>>,
    uri: Uri,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let n = sim.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(r) = authenticate(&sim, &uri, &headers, &q, &body, n) {
        return r;
    }
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, codes::INVALID_PARAMETER, m, n);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return bad("Invalid param. The body is not JSON.");
    };
    let Some(&i) = sim.by_id.get(&order_id) else {
        return error(
            StatusCode::NOT_FOUND,
            codes::INVALID_PARAMETER,
            "Order does not exist.",
            n,
        );
    };
    let order = sim.as_now(&sim.orders[i]);
    let tracking = req["tracking_number"].as_str().unwrap_or_default();
    let provider = req["shipping_provider_id"].as_str().unwrap_or_default();
    if tracking.is_empty() || provider.is_empty() {
        return bad("Invalid param. tracking_number and shipping_provider_id are required.");
    }
    let ids: Vec<String> = req["order_line_item_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if ids.is_empty() {
        return bad("Invalid param. order_line_item_ids is required.");
    }
    for uid in &ids {
        let unit = order["line_items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["id"].as_str() == Some(uid.as_str()));
        match unit {
            None => {
                return bad(&format!(
                    "Invalid param. Line item {uid} is not in order {order_id}."
                ))
            }
            Some(u) if !u["tracking_number"].as_str().unwrap_or_default().is_empty() => {
                return bad(&format!("Line item {uid} has been shipped already."))
            }
            Some(_) => {}
        }
    }
    let package = sim.shipments.next_id(1_152_921_504_606_846_976).to_string();
    let lost = sim.shipments.record(
        &order_id,
        Shipped {
            reference: package.clone(),
            tracking_number: tracking.to_string(),
            carrier: provider.to_string(),
            lines: ids.iter().map(|u| (u.clone(), 1)).collect(),
        },
    );
    if lost {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "Internal error.",
            n,
        );
    }
    Json(json!({
        "code": 0,
        "message": "Success",
        "request_id": request_id(n),
        "data": { "package_id": package }
    }))
    .into_response()
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(ORDER_DETAIL_PATH, get(order_detail))
        .route(
            "/fulfillment/202309/orders/{order_id}/packages",
            post(mark_shipped),
        )
        .with_state(sim)
}

/// Serves the simulator on `bind` until `shutdown`; returns the bound
/// address (port 0 picks a free one) and the server task.
pub async fn serve(
    sim: Arc<Sim>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    super::serve_router(router(sim), bind, shutdown).await
}

pub use super::FireStats;

/// The ORDER_STATUS_CHANGE notification for order `example(n)` (body as
/// TikTok lays it out, and its headers, `Authorization` signed).
pub fn webhook_request(
    n: u64,
    app_key: &str,
    app_secret: &str,
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let order = example(n);
    let id = order["id"].as_str().unwrap_or_default();
    let status = order["status"].as_str().unwrap_or("AWAITING_SHIPMENT");
    let update = order["update_time"].as_i64().unwrap_or(0);
    let body = format!(
        r#"{{"type":1,"tts_notification_id":"{}","shop_id":"{SHOP_ID}","timestamp":{},"data":{{"order_id":"{id}","order_status":"{status}","update_time":{update}}}}}"#,
        7_380_066_284_010_030_890u64 + n,
        update + 5,
    )
    .into_bytes();
    let sig = webhook_sign(app_key, app_secret, &body);
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("authorization", sig),
    ];
    (body, headers)
}

/// Delivers ORDER_STATUS_CHANGE webhooks for orders `range` to `url`,
/// `concurrency` at a time, retrying each (up to `attempts`, 200 ms apart
/// and growing) until 2xx.
pub async fn fire_webhooks(
    url: &str,
    app_key: &str,
    app_secret: &str,
    range: std::ops::Range<u64>,
    concurrency: usize,
    attempts: u32,
) -> FireStats {
    let (app_key, app_secret) = (app_key.to_string(), app_secret.to_string());
    super::deliver(url, range, concurrency, attempts, move |n| {
        webhook_request(n, &app_key, &app_secret)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiktok::sign::api_sign;

    const KEY: &str = "simkey";
    const SECRET: &str = "simsecret";
    const TOKEN: &str = "TTP_token";

    async fn start(sim: Sim) -> (String, CancellationToken) {
        let stop = CancellationToken::new();
        let (addr, _) = serve(Arc::new(sim), ([127, 0, 0, 1], 0).into(), stop.clone())
            .await
            .unwrap();
        (format!("http://{addr}"), stop)
    }

    /// A hand-built request: (HTTP status, envelope).
    async fn call(
        base: &str,
        params: &[(&str, String)],
        secret: &str,
        token: &str,
    ) -> (u16, Value) {
        let sign = api_sign(
            secret,
            ORDER_DETAIL_PATH,
            params.iter().map(|(k, v)| (*k, v.as_str())),
            b"",
        );
        let mut url = reqwest::Url::parse(&format!("{base}{ORDER_DETAIL_PATH}")).unwrap();
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .append_pair("sign", &sign);
        let r = reqwest::Client::new()
            .get(url)
            .header("x-tts-access-token", token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    fn params(ids: &str, ts: u64) -> Vec<(&'static str, String)> {
        vec![
            ("app_key", KEY.into()),
            ("ids", ids.into()),
            ("timestamp", ts.to_string()),
        ]
    }

    #[tokio::test]
    async fn verifies_like_the_api_and_answers_in_its_envelope() {
        let (base, stop) = start(Sim::new(10, KEY, SECRET, TOKEN)).await;
        let (a, b) = (
            example(2)["id"].as_str().unwrap().to_string(),
            example(7)["id"].as_str().unwrap().to_string(),
        );
        let now = unix_now();
        let (s, v) = call(
            &base,
            &params(&format!("{b},{a},{b},9"), now),
            SECRET,
            TOKEN,
        )
        .await;
        assert_eq!((s, v["code"].as_i64()), (200, Some(0)), "{v}");
        assert_eq!(v["message"], "Success");
        assert_eq!(v["data"]["orders"], json!([example(7), example(2)]));

        let code = |r: (u16, Value)| (r.0, r.1["code"].as_i64().unwrap_or(-1));
        assert_eq!(
            code(call(&base, &params(&a, now), "other-secret", TOKEN).await),
            (401, 106001)
        );
        assert_eq!(
            code(call(&base, &params(&a, now), SECRET, "TTP_other").await),
            (401, 36009004)
        );
        let mut p = params(&a, now);
        p[0].1 = "otherkey".into();
        assert_eq!(code(call(&base, &p, SECRET, TOKEN).await), (400, 36009004));
        // Outside the 300 s window back and 30 s ahead, with 10 s of margin
        // (a loaded machine can take a second or more between the clock
        // read here and the simulator's).
        for skew in [-310, 40] {
            let stale = (unix_now() as i64 + skew) as u64;
            assert_eq!(
                code(call(&base, &params(&a, stale), SECRET, TOKEN).await),
                (400, 36009004),
                "timestamp {skew} s off"
            );
        }
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        assert_eq!(
            code(call(&base, &params(&many.join(","), now), SECRET, TOKEN).await),
            (400, 36009004)
        );
        // A parameter changed after signing.
        let sign = api_sign(
            SECRET,
            ORDER_DETAIL_PATH,
            params(&a, now).iter().map(|(k, v)| (*k, v.as_str())),
            b"",
        );
        let mut url = reqwest::Url::parse(&format!("{base}{ORDER_DETAIL_PATH}")).unwrap();
        url.query_pairs_mut()
            .extend_pairs(params(&b, now).iter().map(|(k, v)| (*k, v.as_str())))
            .append_pair("sign", &sign);
        let r = reqwest::Client::new()
            .get(url)
            .header("x-tts-access-token", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        stop.cancel();
    }

    #[tokio::test]
    async fn rate_limit_cipher_and_expiry() {
        let sim = Sim::new(3, KEY, SECRET, TOKEN)
            .with_rate(0.001, 2.0)
            .with_shop_cipher("ROW_c");
        let sim = Arc::new(sim);
        let stop = CancellationToken::new();
        let (addr, _) = serve(sim.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
            .await
            .unwrap();
        let base = format!("http://{addr}");
        let id = example(0)["id"].as_str().unwrap().to_string();
        let now = unix_now();
        let (s, v) = call(&base, &params(&id, now), SECRET, TOKEN).await;
        assert_eq!((s, v["code"].as_i64()), (400, Some(106013)));
        let mut p = params(&id, now);
        p.push(("shop_cipher", "ROW_c".into()));
        for _ in 0..2 {
            assert_eq!(call(&base, &p, SECRET, TOKEN).await.1["code"], 0);
        }
        let (s, v) = call(&base, &p, SECRET, TOKEN).await;
        assert_eq!((s, v["code"].as_i64()), (429, Some(36009002)));
        assert_eq!(sim.counts(), (4, 1));
        sim.expire_token();
        assert_eq!(call(&base, &p, SECRET, TOKEN).await.1["code"], 105002);
        stop.cancel();
    }

    #[test]
    fn webhooks_are_signed_order_status_changes() {
        let (body, headers) = webhook_request(4, KEY, SECRET);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], 1);
        assert_eq!(v["data"]["order_id"], example(4)["id"]);
        assert_eq!(v["data"]["update_time"], example(4)["update_time"]);
        assert_eq!(v["data"]["order_status"], "AWAITING_SHIPMENT");
        assert!(v["tts_notification_id"].as_str().is_some());
        let sig = &headers.iter().find(|h| h.0 == "authorization").unwrap().1;
        assert!(crate::tiktok::sign::verify_webhook(
            KEY,
            &[conveyor_runtime::config::Secret::new(SECRET)],
            &body,
            sig
        ));
    }
}

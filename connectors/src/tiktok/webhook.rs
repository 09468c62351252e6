//! The TikTok Shop webhook receiver: `POST /webhooks/tiktok` for the
//! ORDER_STATUS_CHANGE event (type 1):
//! `{"type":1,"tts_notification_id":"..","shop_id":"..","timestamp":..,"data":{"order_id":"..","order_status":"..","update_time":..}}`.
//!
//! The notification only names the order: the order itself is fetched with
//! the signed Get Order Detail call ([`super::client`]) and published as
//! one raw record, the order object exactly as in `data.orders[]`.
//!
//! What a delivery gets:
//! - **401** when `Authorization` is missing or is not the hex
//!   HMAC-SHA256 of `app_key + raw body` under one of the configured app
//!   secrets (two during a rotation); nothing is fetched or published, and
//!   the reply does not say which check failed;
//! - **400** when the body is not a JSON notification with an integer
//!   `type`, or a type 1 without `data.order_id`; **413** past [`MAX_BODY`];
//! - **200** at once for other event types (ignored, so TikTok does not
//!   retry them) and for a notification id acknowledged recently;
//! - **200** after the broker acknowledged the raw order (G1);
//! - **503** with `Retry-After` when the order could not be fetched (API
//!   down, rate limited past the retries, credentials refused) or the broker
//!   did not acknowledge, all within `channels.tiktok.ack_timeout_ms`:
//!   TikTok retries the notification, and normalize drops a duplicate if a
//!   first attempt landed after all.
//!
//! A replayed notification cannot inject data: what is published comes from
//! the API, which is authoritative; a replay only fetches the current state
//! again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use conveyor_processors::normalize::fields::id_text;
use conveyor_runtime::config::Secret;
use conveyor_schemas::records::{RawOrder, RawSource};
use serde_json::{json, Value};

use super::client::{ApiError, OrderFetcher};
use super::sign::verify_webhook;
use crate::publish::{now_ms, RawPublisher};
pub use crate::shopify::webhook::RecentIds;

/// The largest body accepted (notifications are a few hundred bytes).
pub const MAX_BODY: usize = 256 * 1024;

/// ORDER_STATUS_CHANGE, the event conveyor consumes.
pub const ORDER_STATUS_CHANGE: i64 = 1;

/// Request headers kept in the envelope's `source_headers` (never
/// `Authorization`).
const KEPT_HEADERS: &[&str] = &["content-type", "user-agent"];

#[derive(Clone)]
pub struct WebhookState {
    pub app_key: Arc<str>,
    pub secrets: Arc<Vec<Secret>>,
    pub fetcher: OrderFetcher,
    pub publisher: RawPublisher,
    pub ack_timeout: Duration,
    pub recent: Arc<RecentIds>,
}

/// The receiver's routes.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/tiktok", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn reply(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unavailable(message: &str) -> Response {
    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("5"));
    r
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A scalar as text (ids come as strings, sometimes as numbers).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One order status notification, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    /// `tts_notification_id`, else `<order_id>:<update_time>:<status>`
    /// (the documentation's curl sample has no notification id).
    pub notification_id: String,
    pub order_id: String,
    pub order_status: Option<String>,
    pub update_time: Option<String>,
    pub shop_id: Option<String>,
    pub timestamp: Option<String>,
}

/// What a verified body is.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    Order(OrderEvent),
    Other(i64),
}

/// Reads a (verified) notification body: `Err` is a 400.
pub fn parse(body: &[u8]) -> Result<Notification, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("body is not a JSON object".into());
    }
    let kind = match v.get("type") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or("`type` is missing or not an integer")?;
    if kind != ORDER_STATUS_CHANGE {
        return Ok(Notification::Other(kind));
    }
    let data = v
        .get("data")
        .filter(|d| d.is_object())
        .ok_or("an order status notification without a `data` object")?;
    let order_id = id_text(data.get("order_id"))
        .filter(|id| !id.trim().is_empty())
        .ok_or("an order status notification without `data.order_id`")?;
    let order_status = text(data.get("order_status"));
    let update_time = text(data.get("update_time"));
    let notification_id = text(v.get("tts_notification_id")).unwrap_or_else(|| {
        format!(
            "{order_id}:{}:{}",
            update_time.as_deref().unwrap_or(""),
            order_status.as_deref().unwrap_or("")
        )
    });
    Ok(Notification::Order(OrderEvent {
        notification_id,
        order_id,
        order_status,
        update_time,
        shop_id: text(v.get("shop_id")),
        timestamp: text(v.get("timestamp")),
    }))
}

/// The raw record of `order`, fetched for `event`.
pub fn raw_order(
    event: &OrderEvent,
    order: &Value,
    api_request_id: &str,
    headers: &HeaderMap,
) -> RawOrder {
    let mut source_headers: BTreeMap<String, String> = KEPT_HEADERS
        .iter()
        .filter_map(|h| header(headers, h).map(|v| (h.to_string(), v.to_string())))
        .collect();
    let meta = [
        (
            "tiktok-notification-id",
            Some(event.notification_id.as_str()),
        ),
        ("tiktok-event-type", Some("1")),
        ("tiktok-shop-id", event.shop_id.as_deref()),
        ("tiktok-event-timestamp", event.timestamp.as_deref()),
        ("tiktok-order-status", event.order_status.as_deref()),
        ("tiktok-update-time", event.update_time.as_deref()),
        (
            "tiktok-api-request-id",
            Some(api_request_id).filter(|s| !s.is_empty()),
        ),
    ];
    for (k, v) in meta {
        if let Some(v) = v {
            source_headers.insert(k.to_string(), v.to_string());
        }
    }
    RawOrder {
        event_id: format!("tiktok:webhook:{}", event.notification_id),
        channel: "tiktok".into(),
        external_order_id: event.order_id.clone(),
        external_order_number: None,
        source: RawSource::Webhook,
        topic_hint: event.order_status.clone(),
        received_at: now_ms(),
        content_type: "application/json".into(),
        // The order object of `data.orders[]`, re-serialized.
        payload: serde_json::to_vec(order).unwrap_or_default(),
        source_headers,
    }
}

enum Failure {
    Fetch(ApiError),
    Publish(crate::publish::PublishError),
}

async fn receive(State(st): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let outcome = |o: &'static str| {
        metrics::counter!("conveyor_webhook_requests_total", "channel" => "tiktok", "outcome" => o)
            .increment(1)
    };
    let verified = header(&headers, "authorization")
        .is_some_and(|sig| verify_webhook(&st.app_key, &st.secrets, &body, sig));
    if !verified {
        outcome("unauthorized");
        tracing::warn!("tiktok webhook without a valid signature refused");
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or invalid webhook signature",
        );
    }
    let event = match parse(&body) {
        Ok(Notification::Order(e)) => e,
        Ok(Notification::Other(kind)) => {
            outcome("ignored");
            return (StatusCode::OK, Json(json!({ "ignored_type": kind }))).into_response();
        }
        Err(e) => {
            outcome("bad_request");
            return reply(StatusCode::BAD_REQUEST, &e);
        }
    };
    if st.recent.contains(&event.notification_id) {
        outcome("duplicate");
        return (
            StatusCode::OK,
            Json(json!({ "duplicate": event.notification_id })),
        )
            .into_response();
    }
    let handled = tokio::time::timeout(st.ack_timeout, async {
        let fetched = st
            .fetcher
            .fetch(&event.order_id)
            .await
            .map_err(Failure::Fetch)?;
        let raw = raw_order(&event, &fetched.order, &fetched.request_id, &headers);
        st.publisher.publish(&raw).await.map_err(Failure::Publish)
    })
    .await;
    match handled {
        Ok(Ok(())) => {
            st.recent.insert(event.notification_id.clone());
            outcome("accepted");
            tracing::debug!(order_id = %format!("tiktok:{}", event.order_id), "webhook published");
            (StatusCode::OK, Json(json!({ "accepted": event.order_id }))).into_response()
        }
        Ok(Err(Failure::Fetch(e))) => {
            outcome("unavailable");
            tracing::warn!(order_id = %event.order_id, error = %e, "tiktok order not fetched; answering 503");
            unavailable(&format!("order not fetched: {e}"))
        }
        Ok(Err(Failure::Publish(e))) => {
            outcome("unavailable");
            tracing::warn!(error = %e, "tiktok webhook not published; answering 503");
            unavailable(&format!("not stored: {e}"))
        }
        Err(_) => {
            outcome("unavailable");
            tracing::warn!(order_id = %event.order_id, "tiktok order not fetched and acknowledged in time; answering 503");
            unavailable("the order was not fetched and stored in time")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::tiktok as sim;
    use crate::tiktok::client::{ApiClient, RetryPolicy};
    use crate::tiktok::sign::webhook_sign;
    use conveyor_runtime::config::{Config, TikTokConfig};
    use tokio_util::sync::CancellationToken;

    const KEY: &str = "hookkey";
    const SECRET: &str = "hooksecret";
    const TOKEN: &str = "TTP_hook";

    #[test]
    fn parses_order_notifications_and_names_what_is_wrong() {
        let doc = br#"{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507","timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178","order_status":"UNPAID","update_time":1718305585}}"#;
        let Ok(Notification::Order(e)) = parse(doc) else {
            panic!()
        };
        assert_eq!(e.notification_id, "7380066284010030890");
        assert_eq!(e.order_id, "576653688135258178");
        assert_eq!(e.order_status.as_deref(), Some("UNPAID"));
        assert_eq!(e.update_time.as_deref(), Some("1718305585"));
        assert_eq!(e.shop_id.as_deref(), Some("7495540735365777507"));
        // The documentation's curl sample: no notification id, numbers.
        let Ok(Notification::Order(e)) = parse(
            br#"{"type":1,"shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":576486316948490001,"order_status":"UNPAID","update_time":1644412885}}"#,
        ) else {
            panic!()
        };
        assert_eq!(e.notification_id, "576486316948490001:1644412885:UNPAID");
        assert_eq!(
            parse(br#"{"type":7,"data":{}}"#),
            Ok(Notification::Other(7))
        );
        for (bad, why) in [
            (&b"not json"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"data":{}}"#, "`type`"),
            (br#"{"type":"x"}"#, "`type`"),
            (br#"{"type":1}"#, "`data`"),
            (
                br#"{"type":1,"data":{"order_status":"UNPAID"}}"#,
                "order_id",
            ),
            (br#"{"type":1,"data":{"order_id":""}}"#, "order_id"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_raw_order_carries_the_api_order_and_no_secrets() {
        let order = conveyor_processors::normalize::tiktok::example(3);
        let (body, _) = sim::webhook_request(3, KEY, SECRET);
        let Ok(Notification::Order(e)) = parse(&body) else {
            panic!()
        };
        let mut h = HeaderMap::new();
        h.insert("authorization", "abc".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("x-tts-access-token", TOKEN.parse().unwrap());
        let raw = raw_order(&e, &order, "REQ1", &h);
        assert_eq!(
            raw.event_id,
            format!("tiktok:webhook:{}", e.notification_id)
        );
        assert_eq!(raw.channel, "tiktok");
        assert_eq!(raw.external_order_id, order["id"].as_str().unwrap());
        assert_eq!(raw.source, RawSource::Webhook);
        assert_eq!(raw.topic_hint.as_deref(), Some("AWAITING_SHIPMENT"));
        assert_eq!(
            serde_json::from_slice::<Value>(&raw.payload).unwrap(),
            order
        );
        assert!(!raw.source_headers.contains_key("authorization"));
        assert!(!raw.source_headers.contains_key("x-tts-access-token"));
        assert_eq!(
            raw.source_headers
                .get("tiktok-api-request-id")
                .map(String::as_str),
            Some("REQ1")
        );
        assert_eq!(
            raw.source_headers.get("tiktok-shop-id").map(String::as_str),
            Some(sim::SHOP_ID)
        );
        // What normalize reads.
        let n = conveyor_processors::normalize::tiktok::parse(&raw);
        assert!(n.is_ok());
    }

    /// A receiver against the simulator and a broker that is not there:
    /// every path short of the broker's acknowledgement, and no 200
    /// without one.
    #[tokio::test]
    async fn answers_401_400_200_and_503_without_a_broker() {
        let s = Arc::new(sim::Sim::new(5, KEY, SECRET, TOKEN));
        let stop = CancellationToken::new();
        let (api, _) = sim::serve(s.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
            .await
            .unwrap();
        let mut config = Config::default();
        config.kafka.brokers = "127.0.0.1:1".into();
        config.schema_registry.url = "http://127.0.0.1:1".into();
        let tc = TikTokConfig {
            api_url: format!("http://{api}"),
            app_key: KEY.into(),
            app_secrets: vec![Secret::new("new-secret"), Secret::new(SECRET)],
            access_token: Secret::new(TOKEN),
            shop_cipher: String::new(),
            ack_timeout_ms: 1500,
            ..TikTokConfig::default()
        };
        let codec = Arc::new(conveyor_schemas::codec::Codec::new("http://127.0.0.1:1").unwrap());
        let publisher = RawPublisher::new(&config, codec, "tiktok", "test").unwrap();
        let client = Arc::new(ApiClient::new(&tc).with_retry(RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
        }));
        let state = WebhookState {
            app_key: KEY.into(),
            secrets: Arc::new(tc.app_secrets.clone()),
            fetcher: OrderFetcher::spawn(client),
            publisher,
            ack_timeout: Duration::from_millis(tc.ack_timeout_ms),
            recent: Arc::new(RecentIds::new(100)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
        });
        let url = format!("http://{addr}/webhooks/tiktok");
        let http = reqwest::Client::new();
        let post = |body: Vec<u8>, sig: Option<String>| {
            let mut r = http.post(&url).body(body);
            if let Some(s) = sig {
                r = r.header("authorization", s);
            }
            async move {
                let resp = r.send().await.unwrap();
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }
        };
        let status = |r: (u16, String)| r.0;
        let (body, _) = sim::webhook_request(1, KEY, SECRET);
        let sign = |b: &[u8], secret: &str| Some(webhook_sign(KEY, secret, b));
        assert_eq!(status(post(body.clone(), None).await), 401);
        assert_eq!(status(post(body.clone(), sign(&body, "wrong")).await), 401);
        assert_eq!(status(post(body.clone(), sign(b"{}", SECRET)).await), 401);
        assert_eq!(
            status(
                post(
                    body.clone(),
                    Some(format!("Bearer {}", webhook_sign(KEY, SECRET, &body)))
                )
                .await
            ),
            401
        );
        assert_eq!(s.counts().0, 0, "nothing fetched for unsigned webhooks");
        let other =
            br#"{"type":7,"shop_id":"1","timestamp":1,"data":{"expiration_time":1}}"#.to_vec();
        assert_eq!(status(post(other.clone(), sign(&other, SECRET)).await), 200);
        let bad = br#"{"type":1,"data":{}}"#.to_vec();
        assert_eq!(status(post(bad.clone(), sign(&bad, SECRET)).await), 400);
        assert_eq!(s.counts().0, 0);
        // Signed (with the second secret of a rotation): fetched, but the
        // broker is not there, so 503 and nothing acknowledged.
        for secret in [SECRET, "new-secret"] {
            let (code, text) = post(body.clone(), sign(&body, secret)).await;
            assert_eq!(code, 503, "{text}");
            assert!(text.contains("not stored"), "{text}");
        }
        assert!(s.counts().0 >= 1, "the order was fetched");
        // An order the API does not know: 503, TikTok retries.
        let unknown = br#"{"type":1,"tts_notification_id":"9","shop_id":"1","timestamp":1,"data":{"order_id":"1","order_status":"UNPAID","update_time":1}}"#.to_vec();
        let (code, text) = post(unknown.clone(), sign(&unknown, SECRET)).await;
        assert_eq!(code, 503, "{text}");
        assert!(text.contains("no order 1"), "{text}");
        stop.cancel();
    }
}

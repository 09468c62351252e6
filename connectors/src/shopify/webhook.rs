//! The Shopify webhook receiver: `POST /webhooks/shopify` for the
//! orders/create, orders/updated and orders/cancelled topics.
//!
//! What a delivery gets:
//! - **401** when `X-Shopify-Hmac-Sha256` is missing or is not the
//!   HMAC-SHA256 (base64) of the raw body under one of the configured
//!   secrets (two during a rotation); nothing is published, and the reply
//!   does not say which check failed;
//! - **400** when the body is not a JSON order with an `id`, **413** past
//!   [`MAX_BODY`]; nothing is published;
//! - **200** after the broker acknowledged the raw order (G1), or at once
//!   for a webhook id already acknowledged recently (Shopify retries
//!   deliveries it thinks failed) and for topics conveyor does not consume
//!   (so Shopify does not retry them and remove the subscription);
//! - **503** with `Retry-After` when the broker does not acknowledge within
//!   `channels.shopify.ack_timeout_ms`: Shopify retries, and normalize drops
//!   the duplicate if the first attempt landed after all.
//!
//! The webhook-id memory is per process and bounded ([`RecentIds`]); it
//! saves work, it is not what makes duplicates harmless (normalize's
//! versions store is).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use conveyor_runtime::config::Secret;
use conveyor_schemas::records::{RawOrder, RawSource};
use serde_json::{json, Value};

use crate::publish::{now_ms, RawPublisher};
use crate::signature::verify_base64;

/// The largest body accepted (Shopify orders with hundreds of lines stay
/// far below it).
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// Order topics conveyor consumes.
pub const TOPICS: &[&str] = &["orders/create", "orders/updated", "orders/cancelled"];

/// Request headers kept in the envelope's `source_headers` (never the
/// signature, never anything credential-like).
const KEPT_HEADERS: &[&str] = &[
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-triggered-at",
    "x-shopify-api-version",
];

#[derive(Clone)]
pub struct WebhookState {
    pub secrets: Arc<Vec<Secret>>,
    pub publisher: RawPublisher,
    pub ack_timeout: Duration,
    pub recent: Arc<RecentIds>,
}

/// The receiver's routes.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/shopify", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn reply(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

async fn receive(State(st): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let outcome = |o: &'static str| {
        metrics::counter!("conveyor_webhook_requests_total", "channel" => "shopify", "outcome" => o)
            .increment(1)
    };
    let Some(sig) = header(&headers, "x-shopify-hmac-sha256") else {
        outcome("unauthorized");
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or invalid webhook signature",
        );
    };
    if !verify_base64(&st.secrets, &body, sig) {
        outcome("unauthorized");
        tracing::warn!("shopify webhook with an invalid signature refused");
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or invalid webhook signature",
        );
    }
    let topic = header(&headers, "x-shopify-topic").unwrap_or_default();
    if !TOPICS.contains(&topic) {
        outcome("ignored");
        return (StatusCode::OK, Json(json!({ "ignored_topic": topic }))).into_response();
    }
    let Some(webhook_id) = header(&headers, "x-shopify-webhook-id").map(String::from) else {
        outcome("bad_request");
        return reply(
            StatusCode::BAD_REQUEST,
            "X-Shopify-Webhook-Id header is missing",
        );
    };
    if st.recent.contains(&webhook_id) {
        outcome("duplicate");
        return (StatusCode::OK, Json(json!({ "duplicate": webhook_id }))).into_response();
    }
    let order: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            outcome("bad_request");
            return reply(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}"));
        }
    };
    let Some(order_id) = conveyor_processors::normalize::fields::id_text(order.get("id")) else {
        outcome("bad_request");
        return reply(
            StatusCode::BAD_REQUEST,
            "body is not a Shopify order: `id` is missing",
        );
    };
    let source_headers: BTreeMap<String, String> = KEPT_HEADERS
        .iter()
        .filter_map(|h| header(&headers, h).map(|v| (h.to_string(), v.to_string())))
        .collect();
    let raw = RawOrder {
        event_id: format!("shopify:webhook:{webhook_id}"),
        channel: "shopify".into(),
        external_order_id: order_id.clone(),
        external_order_number: order.get("name").and_then(Value::as_str).map(String::from),
        source: RawSource::Webhook,
        topic_hint: Some(topic.to_string()),
        received_at: now_ms(),
        content_type: "application/json".into(),
        payload: body.to_vec(),
        source_headers,
    };
    match tokio::time::timeout(st.ack_timeout, st.publisher.publish(&raw)).await {
        Ok(Ok(())) => {
            st.recent.insert(webhook_id);
            outcome("accepted");
            tracing::debug!(order_id = %format!("shopify:{order_id}"), topic, "webhook published");
            (StatusCode::OK, Json(json!({ "accepted": order_id }))).into_response()
        }
        Ok(Err(e)) => {
            outcome("unavailable");
            tracing::warn!(error = %e, "shopify webhook not published; answering 503");
            unavailable(&format!("not stored: {e}"))
        }
        Err(_) => {
            outcome("unavailable");
            tracing::warn!("broker did not acknowledge a shopify webhook in time; answering 503");
            unavailable("the broker did not acknowledge in time")
        }
    }
}

fn unavailable(message: &str) -> Response {
    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("5"));
    r
}

/// Recently acknowledged webhook ids, oldest evicted first.
pub struct RecentIds {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> RecentIds {
        RecentIds {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.inner.lock().map(|g| g.0.contains(id)).unwrap_or(false)
    }

    pub fn insert(&self, id: String) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        if g.0.insert(id.clone()) {
            g.1.push_back(id);
            while g.1.len() > self.capacity {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_are_bounded() {
        let r = RecentIds::new(2);
        r.insert("a".into());
        r.insert("b".into());
        r.insert("a".into());
        assert!(r.contains("a") && r.contains("b"));
        r.insert("c".into());
        assert!(!r.contains("a") && r.contains("c"));
    }
}

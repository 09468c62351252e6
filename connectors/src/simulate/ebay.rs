//! A local eBay: OAuth refresh (`POST /identity/v1/oauth2/token`, client
//! credentials as basic auth) and the Fulfillment API's getOrders
//! (`GET /sell/fulfillment/v1/order`) with the `lastmodifieddate:[a..b]`
//! filter, `limit` (max 200) and `offset` paging with `href`/`next`/`total`,
//! eBay's `{"errors": [{errorId, domain, category, message}]}` failures, and
//! a call budget answered with 429 when spent.
//!
//! Sync-back's `getShippingFulfillments` and `createShippingFulfillment`
//! (`GET`/`POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment`;
//! 201 with `Location`; 400 for an unknown line item or more units than
//! remain), recorded in [`Sim::shipments`].
//!
//! Orders are `conveyor_processors::normalize::ebay::example(n)`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use conveyor_processors::normalize::ebay::example;
use conveyor_processors::normalize::fields::timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::ledger::{Ledger, Shipped};

pub struct Sim {
    orders: Vec<(i64, Value)>,
    /// orderId -> index in `orders`.
    by_id: HashMap<String, usize>,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    tokens: Mutex<Vec<String>>,
    issued: AtomicU64,
    /// Calls answered 429 (every `throttle_every`-th call, 0 = never).
    throttle_every: u64,
    calls: AtomicU64,
    throttled: AtomicU64,
    /// Shipping fulfillments created through the API.
    pub shipments: Ledger,
}

impl Sim {
    pub fn new(n: u64, client_id: &str, client_secret: &str, refresh_token: &str) -> Sim {
        let mut orders: Vec<(i64, Value)> = (0..n)
            .map(|i| {
                let v = example(i);
                let m = v["lastModifiedDate"]
                    .as_str()
                    .and_then(|t| timestamp("", t).ok())
                    .unwrap_or(0);
                (m, v)
            })
            .collect();
        // getOrders answers newest-created first, not by modification.
        orders.reverse();
        let by_id = orders
            .iter()
            .enumerate()
            .filter_map(|(i, (_, o))| o["orderId"].as_str().map(|id| (id.to_string(), i)))
            .collect();
        Sim {
            orders,
            by_id,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            refresh_token: refresh_token.into(),
            tokens: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
            throttle_every: 0,
            calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            shipments: Ledger::default(),
        }
    }

    /// Answer every `n`-th getOrders call with a 429.
    pub fn throttle_every(mut self, n: u64) -> Sim {
        self.throttle_every = n;
        self
    }

    /// (429s answered, tokens issued).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.issued.load(Ordering::Relaxed),
        )
    }

    pub fn revoke_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn error(status: StatusCode, id: u32, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"errorId": id, "domain": "API_FULFILLMENT", "category": category, "message": message}]})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

async fn token(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", sim.client_id, sim.client_secret))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != expected {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        )
            .into_response();
    }
    if f.grant_type.as_deref() != Some("refresh_token")
        || f.refresh_token.as_deref() != Some(sim.refresh_token.as_str())
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "the provided authorization refresh token is invalid or was issued to another client"})),
        )
            .into_response();
    }
    if f.scope
        .as_deref()
        .is_some_and(|s| !s.contains("sell.fulfillment"))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_scope"})),
        )
            .into_response();
    }
    let t = format!(
        "v^1.1#i^1#sim-{}",
        sim.issued.fetch_add(1, Ordering::Relaxed)
    );
    sim.tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(t.clone());
    Json(json!({"access_token": t, "expires_in": 7200, "token_type": "User Access Token"}))
        .into_response()
}

/// The user access token: the answer when it is not one issued.
fn bearer(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let known = auth.strip_prefix("Bearer ").is_some_and(|t| {
        sim.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|k| k == t)
    });
    (!known).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            1001,
            "REQUEST",
            "Invalid access token",
        )
    })
}

/// `lastmodifieddate:[a..b]` (either bound may be empty).
fn window(filter: &str) -> Option<(Option<i64>, Option<i64>)> {
    let inner = filter
        .trim()
        .strip_prefix("lastmodifieddate:[")?
        .strip_suffix(']')?;
    let (a, b) = inner.split_once("..")?;
    let parse = |s: &str| -> Option<Option<i64>> {
        if s.trim().is_empty() {
            Some(None)
        } else {
            timestamp("", s.trim()).ok().map(Some)
        }
    };
    Some((parse(a)?, parse(b)?))
}

async fn orders(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = bearer(&sim, &headers) {
        return r;
    }
    let call = sim.calls.fetch_add(1, Ordering::Relaxed) + 1;
    if sim.throttle_every > 0 && call.is_multiple_of(sim.throttle_every) {
        sim.throttled.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            2001,
            "REQUEST",
            "The request limit has been reached for the resource.",
        );
    }
    let limit = q
        .get("limit")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(50);
    let offset = q
        .get("offset")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    if !(1..=200).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            30700,
            "REQUEST",
            "The 'limit' value must be between 1 and 200.",
        );
    }
    let filter = q.get("filter").cloned().unwrap_or_default();
    let (from, to) = if filter.is_empty() {
        (None, None)
    } else {
        match window(&filter) {
            Some(w) => w,
            None => return error(StatusCode::BAD_REQUEST, 30800, "REQUEST", "Invalid filter."),
        }
    };
    let matching: Vec<&Value> = sim
        .orders
        .iter()
        .filter(|(m, _)| from.is_none_or(|f| *m >= f) && to.is_none_or(|t| *m <= t))
        .map(|(_, v)| v)
        .collect();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let link = |off: usize| {
        let mut u = reqwest::Url::parse(&format!("http://{host}/sell/fulfillment/v1/order"))
            .expect("valid base");
        {
            let mut p = u.query_pairs_mut();
            if !filter.is_empty() {
                p.append_pair("filter", &filter);
            }
            p.append_pair("limit", &limit.to_string());
            p.append_pair("offset", &off.to_string());
        }
        u.to_string()
    };
    let page: Vec<&Value> = matching.iter().skip(offset).take(limit).copied().collect();
    let mut body = json!({
        "href": link(offset),
        "total": matching.len(),
        "limit": limit,
        "offset": offset,
        "orders": page,
        "warnings": [],
    });
    if offset + limit < matching.len() {
        body["next"] = json!(link(offset + limit));
    }
    Json(body).into_response()
}

impl Sim {
    fn order(&self, id: &str) -> Option<&Value> {
        self.by_id.get(id).map(|&i| &self.orders[i].1)
    }
}

fn fulfillment_json(s: &Shipped) -> Value {
    json!({
        "fulfillmentId": s.reference,
        "shipmentTrackingNumber": s.tracking_number,
        "shippingCarrierCode": s.carrier,
        "lineItems": s.lines.iter().map(|(id, n)| json!({"lineItemId": id, "quantity": n})).collect::<Vec<_>>(),
    })
}

/// getShippingFulfillments.
async fn shipping_fulfillments(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = bearer(&sim, &headers) {
        return r;
    }
    if sim.order(&id).is_none() {
        return error(StatusCode::NOT_FOUND, 32100, "REQUEST", "Invalid order ID.");
    }
    let list: Vec<Value> = sim
        .shipments
        .shipped(&id)
        .iter()
        .map(fulfillment_json)
        .collect();
    Json(json!({ "fulfillments": list, "total": list.len(), "warnings": [] })).into_response()
}

/// createShippingFulfillment: 201 with the fulfillment's URL in Location.
async fn create_shipping_fulfillment(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = bearer(&sim, &headers) {
        return r;
    }
    let Some(order) = sim.order(&id) else {
        return error(StatusCode::NOT_FOUND, 32100, "REQUEST", "Invalid order ID.");
    };
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, 32800, "REQUEST", m);
    let tracking = body["trackingNumber"].as_str().unwrap_or_default();
    let carrier = body["shippingCarrierCode"].as_str().unwrap_or_default();
    if tracking.is_empty() || carrier.is_empty() {
        return bad("trackingNumber and shippingCarrierCode are required.");
    }
    let mut lines = Vec::new();
    for li in body["lineItems"].as_array().into_iter().flatten() {
        let lid = li["lineItemId"].as_str().unwrap_or_default();
        let qty = li["quantity"].as_i64().unwrap_or(0);
        let Some(item) = order["lineItems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["lineItemId"].as_str() == Some(lid))
        else {
            return bad(&format!("Invalid line item ID {lid}."));
        };
        let ordered = item["quantity"].as_i64().unwrap_or(0);
        if qty <= 0 || sim.shipments.units_shipped(&id, lid) + qty > ordered {
            return bad(&format!(
                "The quantity of line item {lid} exceeds what remains to ship."
            ));
        }
        lines.push((lid.to_string(), qty));
    }
    if lines.is_empty() {
        return bad("lineItems is required.");
    }
    let fid = sim.shipments.next_id(9_000_000_000).to_string();
    let lost = sim.shipments.record(
        &id,
        Shipped {
            reference: fid.clone(),
            tracking_number: tracking.to_string(),
            carrier: carrier.to_string(),
            lines,
        },
    );
    if lost {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            32000,
            "APPLICATION",
            "Service unavailable.",
        );
    }
    let location = format!("/sell/fulfillment/v1/order/{id}/shipping_fulfillment/{fid}");
    (
        StatusCode::CREATED,
        [("location", location)],
        Json(json!({})),
    )
        .into_response()
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/identity/v1/oauth2/token", post(token))
        .route(
            "/sell/fulfillment/v1/order/{id}/shipping_fulfillment",
            get(shipping_fulfillments).post(create_shipping_fulfillment),
        )
        .route("/sell/fulfillment/v1/order", get(orders))
        .with_state(sim)
}

pub async fn serve(
    sim: Arc<Sim>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    super::serve_router(router(sim), bind, shutdown).await
}

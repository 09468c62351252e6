//! A local Amazon Selling Partner API: Login with Amazon token refresh and
//! the Orders API v0 (`getOrders`, `getOrderItems`) in the shapes Amazon
//! documents: `{"payload": {...}}` answers, `{"errors": [{code, message}]}`
//! failures, `NextToken` paging, `x-amzn-RateLimit-Limit` on every answer
//! and `429 QuotaExceeded` past the per-operation token bucket.
//!
//! Sync-back's `confirmShipment` (`POST
//! /orders/v0/orders/{orderId}/shipmentConfirmation`, 204; 400
//! `InvalidInput` for a package reference that is not a positive number, an
//! unknown order item, more units than ordered, a canceled order, or a
//! package reference confirmed before with another tracking number; the
//! same confirmation again is 204 and records nothing), recorded in
//! [`Sim::shipments`].
//!
//! Orders are `conveyor_processors::normalize::amazon::example(n)`; every
//! 13th is `Canceled`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use conveyor_processors::normalize::amazon::example;
use conveyor_processors::normalize::fields::timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::ledger::{Ledger, Shipped};
use super::Bucket;

pub struct Sim {
    orders: Vec<(i64, Value, Vec<Value>)>,
    by_id: HashMap<String, usize>,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    tokens: Mutex<Vec<String>>,
    issued: AtomicU64,
    get_orders: Bucket,
    get_items: Bucket,
    confirm: Bucket,
    throttled: AtomicU64,
    /// Packages confirmed through the API (reference = packageReferenceId).
    pub shipments: Ledger,
}

impl Sim {
    /// A seller with orders `example(0..n)`, the published rate limits.
    pub fn new(n: u64, client_id: &str, client_secret: &str, refresh_token: &str) -> Sim {
        let mut orders: Vec<(i64, Value, Vec<Value>)> = (0..n)
            .map(|i| {
                let mut v = example(i);
                if i % 13 == 12 {
                    v["order"]["OrderStatus"] = json!("Canceled");
                }
                let updated = v["order"]["LastUpdateDate"]
                    .as_str()
                    .and_then(|t| timestamp("", t).ok())
                    .unwrap_or(0);
                let items = v["items"].as_array().cloned().unwrap_or_default();
                (updated, v["order"].take(), items)
            })
            .collect();
        orders.sort_by_key(|o| o.0);
        let by_id = orders
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.1["AmazonOrderId"].as_str().map(|id| (id.to_string(), i)))
            .collect();
        Sim {
            orders,
            by_id,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            refresh_token: refresh_token.into(),
            tokens: Mutex::new(Vec::new()),
            issued: AtomicU64::new(0),
            get_orders: Bucket::new(0.0167, 20.0),
            get_items: Bucket::new(0.5, 30.0),
            confirm: Bucket::new(2.0, 10.0),
            throttled: AtomicU64::new(0),
            shipments: Ledger::default(),
        }
    }

    /// Other limits (the demo and tests do not wait a minute per page).
    pub fn with_rates(mut self, orders: (f64, f64), items: (f64, f64)) -> Sim {
        self.get_orders = Bucket::new(orders.0, orders.1);
        self.get_items = Bucket::new(items.0, items.1);
        self
    }

    /// Another confirmShipment limit.
    pub fn with_confirm_rate(mut self, rate: f64, burst: f64) -> Sim {
        self.confirm = Bucket::new(rate, burst);
        self
    }

    /// 429s answered and tokens issued so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.issued.load(Ordering::Relaxed),
        )
    }

    /// Revokes every issued access token (the next call gets a 403).
    pub fn revoke_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "code": code, "message": message, "details": "" }] })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(State(sim): State<Arc<Sim>>, Form(f): Form<TokenForm>) -> Response {
    let ok = f.grant_type.as_deref() == Some("refresh_token")
        && f.refresh_token.as_deref() == Some(sim.refresh_token.as_str())
        && f.client_id.as_deref() == Some(sim.client_id.as_str())
        && f.client_secret.as_deref() == Some(sim.client_secret.as_str());
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token"})),
        )
            .into_response();
    }
    let n = sim.issued.fetch_add(1, Ordering::Relaxed);
    let t = format!("Atza|sim-{n}");
    sim.tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(t.clone());
    Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 3600})).into_response()
}

fn authorized(sim: &Sim, h: &HeaderMap) -> Option<Response> {
    let t = h
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let known = sim
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|k| k == t);
    (!known).then(|| {
        errors(
            StatusCode::FORBIDDEN,
            "Unauthorized",
            "Access to requested resource is denied.",
        )
    })
}

fn limited(sim: &Sim, bucket: &Bucket) -> Option<Response> {
    if bucket.take() {
        return None;
    }
    sim.throttled.fetch_add(1, Ordering::Relaxed);
    let mut r = errors(
        StatusCode::TOO_MANY_REQUESTS,
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
    );
    if let Ok(v) = HeaderValue::from_str(&bucket.rate.to_string()) {
        r.headers_mut().insert("x-amzn-ratelimit-limit", v);
    }
    Some(r)
}

fn with_rate(mut r: Response, rate: f64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&rate.to_string()) {
        r.headers_mut().insert("x-amzn-ratelimit-limit", v);
    }
    r
}

async fn get_orders(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = authorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = limited(&sim, &sim.get_orders) {
        return r;
    }
    if q.get("MarketplaceIds").is_none_or(|m| m.is_empty()) {
        return errors(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "MarketplaceIds is required.",
        );
    }
    let per_page = q
        .get("MaxResultsPerPage")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(100);
    if !(1..=100).contains(&per_page) {
        return errors(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "MaxResultsPerPage must be between 1 and 100.",
        );
    }
    // NextToken carries the filter and the position.
    let (after_ms, statuses, from) = match q.get("NextToken") {
        Some(t) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<(i64, String, usize)>(&b).ok());
            match decoded {
                Some(d) => d,
                None => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        "InvalidInput",
                        "Invalid NextToken.",
                    )
                }
            }
        }
        None => {
            let Some(after) = q.get("LastUpdatedAfter").or(q.get("CreatedAfter")) else {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    "Either CreatedAfter or LastUpdatedAfter must be specified.",
                );
            };
            match timestamp("LastUpdatedAfter", after) {
                Ok(ms) => (ms, q.get("OrderStatuses").cloned().unwrap_or_default(), 0),
                Err(e) => return errors(StatusCode::BAD_REQUEST, "InvalidInput", &e.0),
            }
        }
    };
    let wanted: Vec<&str> = statuses.split(',').filter(|s| !s.is_empty()).collect();
    let matching: Vec<&(i64, Value, Vec<Value>)> = sim
        .orders
        .iter()
        .filter(|o| o.0 >= after_ms)
        .filter(|o| {
            wanted.is_empty() || wanted.contains(&o.1["OrderStatus"].as_str().unwrap_or(""))
        })
        .collect();
    let page: Vec<&Value> = matching
        .iter()
        .skip(from)
        .take(per_page)
        .map(|o| &o.1)
        .collect();
    let mut payload = json!({ "Orders": page });
    if from + per_page < matching.len() {
        let token = base64::engine::general_purpose::STANDARD.encode(
            serde_json::to_vec(&(after_ms, &statuses, from + per_page)).unwrap_or_default(),
        );
        payload["NextToken"] = json!(token);
    }
    with_rate(
        Json(json!({ "payload": payload })).into_response(),
        sim.get_orders.rate,
    )
}

async fn get_items(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = authorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = limited(&sim, &sim.get_items) {
        return r;
    }
    match sim.by_id.get(&id) {
        Some(&i) => with_rate(
            Json(json!({ "payload": { "AmazonOrderId": id, "OrderItems": sim.orders[i].2 } }))
                .into_response(),
            sim.get_items.rate,
        ),
        None => errors(StatusCode::NOT_FOUND, "NotFound", "Order not found."),
    }
}

async fn confirm_shipment(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = authorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = limited(&sim, &sim.confirm) {
        return r;
    }
    let Some(&i) = sim.by_id.get(&id) else {
        return errors(StatusCode::NOT_FOUND, "NotFound", "Order not found.");
    };
    let (_, order, items) = &sim.orders[i];
    let bad = |m: &str| errors(StatusCode::BAD_REQUEST, "InvalidInput", m);
    if body["marketplaceId"].as_str().is_none_or(str::is_empty) {
        return bad("marketplaceId is required.");
    }
    if order["OrderStatus"] == "Canceled" {
        return bad("The order is canceled and cannot be confirmed.");
    }
    let pkg = &body["packageDetail"];
    let reference = pkg["packageReferenceId"].as_str().unwrap_or_default();
    if reference.parse::<u64>().map_or(true, |n| n == 0) {
        return bad("packageReferenceId must be a positive number.");
    }
    let tracking = pkg["trackingNumber"].as_str().unwrap_or_default();
    if tracking.is_empty() || pkg["carrierCode"].as_str().is_none_or(str::is_empty) {
        return bad("carrierCode and trackingNumber are required.");
    }
    if let Some(before) = sim
        .shipments
        .shipped(&id)
        .into_iter()
        .find(|s| s.reference == reference)
    {
        return if before.tracking_number == tracking {
            StatusCode::NO_CONTENT.into_response()
        } else {
            bad("packageReferenceId was confirmed before with another trackingNumber.")
        };
    }
    let mut lines = Vec::new();
    for it in pkg["orderItems"].as_array().into_iter().flatten() {
        let item_id = it["orderItemId"].as_str().unwrap_or_default();
        let qty = it["quantity"].as_i64().unwrap_or(0);
        let Some(item) = items.iter().find(|x| x["OrderItemId"] == item_id) else {
            return bad(&format!("orderItemId {item_id} is not in the order."));
        };
        let ordered = item["QuantityOrdered"].as_i64().unwrap_or(0);
        if qty <= 0 || sim.shipments.units_shipped(&id, item_id) + qty > ordered {
            return bad(&format!(
                "quantity of orderItemId {item_id} exceeds what remains to ship."
            ));
        }
        lines.push((item_id.to_string(), qty));
    }
    if lines.is_empty() {
        return bad("orderItems is required.");
    }
    let lost = sim.shipments.record(
        &id,
        Shipped {
            reference: reference.to_string(),
            tracking_number: tracking.to_string(),
            carrier: pkg["carrierCode"].as_str().unwrap_or_default().to_string(),
            lines,
        },
    );
    if lost {
        return errors(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service temporarily unavailable.",
        );
    }
    with_rate(StatusCode::NO_CONTENT.into_response(), sim.confirm.rate)
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/auth/o2/token", post(token))
        .route(
            "/orders/v0/orders/{id}/shipmentConfirmation",
            post(confirm_shipment),
        )
        .route("/orders/v0/orders", get(get_orders))
        .route("/orders/v0/orders/{id}/orderItems", get(get_items))
        .with_state(sim)
}

pub async fn serve(
    sim: Arc<Sim>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    super::serve_router(router(sim), bind, shutdown).await
}

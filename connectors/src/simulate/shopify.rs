//! A local Shopify: the parts of the Admin REST API and the webhook
//! delivery the connector uses, in the shapes Shopify documents, so the
//! demo and the tests run the real client code.
//!
//! - `GET /admin/api/<version>/orders.json` with `updated_at_min`,
//!   `status`, `order=updated_at asc`, `limit` (max 250) and cursor
//!   pagination (`Link: <...page_info=...>; rel="next"`; a `page_info`
//!   request accepts no other filter, like Shopify's); `401` without the
//!   access token; the leaky-bucket rate limit (bucket 40, leak 2/s),
//!   reported in `X-Shopify-Shop-Api-Call-Limit`, with `429` and
//!   `Retry-After` when the bucket is full.
//! - Fulfillment, for sync-back: `GET /orders/{id}/fulfillment_orders.json`
//!   (one fulfillment order per order, at one location; its line items'
//!   `fulfillable_quantity` goes down as fulfillments are made; a line
//!   item's fulfillment-order line item id is its own id + 7),
//!   `GET /orders/{id}/fulfillments.json` and `POST /fulfillments.json`
//!   (`line_items_by_fulfillment_order`, `tracking_info`; 422 when more
//!   units are asked than remain), `POST /fulfillments/{id}/cancel.json`,
//!   recorded in [`Sim::shipments`].
//! - [`fire_webhooks`]: delivers orders/create webhooks signed with
//!   `X-Shopify-Hmac-Sha256`, retrying non-2xx answers like Shopify does.
//!
//! Orders are `conveyor_processors::normalize::shopify::example(n)`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use conveyor_processors::normalize::shopify::example;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::ledger::{Ledger, Shipped};
use crate::signature::sign_base64;

/// Bucket size and leak rate of the REST Admin API (standard plans).
pub const BUCKET: f64 = 40.0;
pub const LEAK_PER_SEC: f64 = 2.0;

pub struct Sim {
    orders: Vec<Value>,
    /// Order id -> index in `orders`.
    by_id: std::collections::HashMap<String, usize>,
    access_token: String,
    bucket_size: f64,
    leak_per_sec: f64,
    bucket: Mutex<(f64, Instant)>,
    stats: Mutex<(u64, u64)>,
    /// Fulfillments made through the API.
    pub shipments: Ledger,
}

impl Sim {
    /// A shop with orders `example(0..n)`.
    pub fn new(n: u64, access_token: &str) -> Sim {
        Sim::with_orders(std::iter::once(0..n), access_token)
    }

    /// A shop with orders `example(n)` for every `n` in `ranges`.
    pub fn with_orders(
        ranges: impl IntoIterator<Item = std::ops::Range<u64>>,
        access_token: &str,
    ) -> Sim {
        let mut orders: Vec<Value> = ranges.into_iter().flatten().map(example).collect();
        orders.sort_by(|a, b| {
            let k = |v: &Value| v["updated_at"].as_str().unwrap_or_default().to_string();
            k(a).cmp(&k(b))
        });
        let by_id = orders
            .iter()
            .enumerate()
            .map(|(i, o)| (id_text(&o["id"]), i))
            .collect();
        Sim {
            orders,
            by_id,
            access_token: access_token.to_string(),
            bucket_size: BUCKET,
            leak_per_sec: LEAK_PER_SEC,
            bucket: Mutex::new((0.0, Instant::now())),
            stats: Mutex::new((0, 0)),
            shipments: Ledger::default(),
        }
    }

    /// Another bucket (tests make the rate limit bite quickly).
    pub fn with_bucket(mut self, size: f64, leak_per_sec: f64) -> Sim {
        self.bucket_size = size.max(1.0);
        self.leak_per_sec = leak_per_sec.max(0.01);
        self
    }

    /// Requests answered and how many of them were 429s.
    pub fn counts(&self) -> (u64, u64) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one call from the bucket: `Err(retry_after_secs)` when full.
    fn take(&self) -> Result<f64, f64> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let leaked = now.duration_since(b.1).as_secs_f64() * self.leak_per_sec;
        b.0 = (b.0 - leaked).max(0.0);
        b.1 = now;
        if b.0 + 1.0 > self.bucket_size {
            return Err((b.0 + 1.0 - self.bucket_size) / self.leak_per_sec);
        }
        b.0 += 1.0;
        Ok(b.0)
    }
}

#[derive(Debug, Deserialize)]
struct OrdersQuery {
    limit: Option<usize>,
    updated_at_min: Option<String>,
    page_info: Option<String>,
    status: Option<String>,
    order: Option<String>,
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct PageInfo {
    from: usize,
    min: Option<String>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": message }))).into_response()
}

/// The access token and the leaky bucket: the calls used, or the answer.
fn gate(sim: &Sim, headers: &HeaderMap) -> Result<f64, Box<Response>> {
    if let Ok(mut s) = sim.stats.lock() {
        s.0 += 1;
    }
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token != sim.access_token {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "[API] Invalid API key or access token (unrecognized login or wrong password)",
        )));
    }
    sim.take().map_err(|retry| {
        if let Ok(mut s) = sim.stats.lock() {
            s.1 += 1;
        }
        Box::new(throttled(retry))
    })
}

fn throttled(retry: f64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.");
    r.headers_mut().insert(
        "retry-after",
        HeaderValue::from_str(&format!("{retry:.1}")).unwrap_or(HeaderValue::from_static("1.0")),
    );
    r
}

async fn orders(
    State(sim): State<Arc<Sim>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<OrdersQuery>,
) -> Response {
    let used = match gate(&sim, &headers) {
        Ok(used) => used,
        Err(r) => return *r,
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 250 {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 250");
    }
    let (from, min) = match &q.page_info {
        Some(p) => {
            if q.updated_at_min.is_some() || q.status.is_some() || q.order.is_some() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "page_info cannot be combined with other filters",
                );
            }
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<PageInfo>(&b).ok());
            match decoded {
                Some(pi) => (pi.from, pi.min),
                None => return error(StatusCode::BAD_REQUEST, "Invalid value for page_info"),
            }
        }
        None => (0, q.updated_at_min.clone()),
    };
    let min_ms = match min
        .as_deref()
        .map(|m| conveyor_processors::normalize::fields::timestamp("updated_at_min", m))
    {
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &e.0),
        Some(Ok(ms)) => Some(ms),
        None => None,
    };
    let matching: Vec<&Value> = sim
        .orders
        .iter()
        .filter(|o| {
            min_ms.is_none_or(|m| {
                o["updated_at"]
                    .as_str()
                    .and_then(|t| conveyor_processors::normalize::fields::timestamp("u", t).ok())
                    .is_some_and(|t| t >= m)
            })
        })
        .collect();
    let page: Vec<&Value> = matching.iter().skip(from).take(limit).copied().collect();
    let mut resp = Json(json!({ "orders": page })).into_response();
    let h = resp.headers_mut();
    h.insert(
        "x-shopify-shop-api-call-limit",
        HeaderValue::from_str(&format!(
            "{}/{}",
            used.ceil() as u64,
            sim.bucket_size as u64
        ))
        .unwrap_or(HeaderValue::from_static("1/40")),
    );
    if from + limit < matching.len() {
        let info = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&PageInfo {
                from: from + limit,
                min,
            })
            .unwrap_or_default(),
        );
        let link = format!(
            "</admin/api/{version}/orders.json?limit={limit}&page_info={info}>; rel=\"next\""
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.insert("link", v);
        }
    }
    resp
}

/// Absolute `Link` URLs, as Shopify sends them: the handler writes a path,
/// this layer prefixes the request's host.
async fn absolute_links(
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut resp = next.run(req).await;
    if let Some(link) = resp.headers().get("link").and_then(|v| v.to_str().ok()) {
        let abs = link.replacen("</", &format!("<http://{host}/"), 1);
        if let Ok(v) = HeaderValue::from_str(&abs) {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

/// `products.json`: the example catalog's SKUs as products with one variant
/// each (variant ids are the ones the example orders carry).
async fn products(
    State(sim): State<Arc<Sim>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<OrdersQuery>,
) -> Response {
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token != sim.access_token {
        return error(
            StatusCode::UNAUTHORIZED,
            "[API] Invalid API key or access token (unrecognized login or wrong password)",
        );
    }
    if sim.take().is_err() {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Exceeded 2 calls per second for api client.",
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1.0"));
        return r;
    }
    let catalog = include_str!("../../../examples/catalog.csv");
    let all: Vec<Value> = catalog
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            let (sku, name, grams, price) =
                (cols.first()?, cols.get(1)?, cols.get(2)?, cols.get(6)?);
            let variant = cols.get(10).and_then(|l| {
                l.split(';')
                    .find_map(|p| p.strip_prefix("shopify:"))
                    .and_then(|v| v.parse::<u64>().ok())
            })?;
            Some(json!({
                "id": 8_000_000 + variant,
                "title": name,
                "status": "active",
                "variants": [{
                    "id": variant, "product_id": 8_000_000 + variant, "title": "Default Title",
                    "sku": sku, "price": price, "grams": grams.parse::<i64>().unwrap_or(0),
                    "weight": grams.parse::<f64>().unwrap_or(0.0), "weight_unit": "g",
                    "inventory_management": "shopify", "requires_shipping": true
                }]
            }))
        })
        .collect();
    let limit = q.limit.unwrap_or(50).clamp(1, 250);
    let from = q
        .page_info
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<&Value> = all.iter().skip(from).take(limit).collect();
    let mut resp = Json(json!({ "products": page })).into_response();
    if from + limit < all.len() {
        let link = format!(
            "</admin/api/{version}/products.json?limit={limit}&page_info={}>; rel=\"next\"",
            from + limit
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    resp
}

/// The fulfillment-order line item id of a line item.
const FO_LINE: u64 = 7;

impl Sim {
    fn order(&self, id: &str) -> Option<&Value> {
        self.by_id.get(id).map(|&i| &self.orders[i])
    }

    /// The order's one fulfillment order, as it stands.
    fn fulfillment_order(&self, order: &Value) -> Value {
        let oid = id_text(&order["id"]);
        let mut left_total = 0;
        let mut ordered_total = 0;
        let items: Vec<Value> = order["line_items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|li| {
                let id = li["id"].as_u64().unwrap_or(0);
                let qty = li["quantity"].as_i64().unwrap_or(0);
                let left = (qty - self.shipments.units_shipped(&oid, &id.to_string())).max(0);
                left_total += left;
                ordered_total += qty;
                json!({
                    "id": id + FO_LINE,
                    "fulfillment_order_id": fo_id(order),
                    "line_item_id": id,
                    "variant_id": li["variant_id"],
                    "quantity": qty,
                    "fulfillable_quantity": left,
                })
            })
            .collect();
        let status = if order["cancelled_at"].is_string() || left_total == 0 {
            "closed"
        } else if left_total < ordered_total {
            "in_progress"
        } else {
            "open"
        };
        json!({
            "id": fo_id(order),
            "order_id": order["id"],
            "assigned_location_id": 24_826_418,
            "status": status,
            "request_status": "unsubmitted",
            "line_items": items,
        })
    }
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fo_id(order: &Value) -> u64 {
    order["id"].as_u64().unwrap_or(0) + 1
}

fn fulfillment_json(order: &str, s: &Shipped) -> Value {
    json!({
        "id": s.reference.parse::<u64>().map(Value::from).unwrap_or(json!(s.reference)),
        "order_id": order.parse::<u64>().map(Value::from).unwrap_or(json!(order)),
        "status": "success",
        "tracking_company": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_numbers": [s.tracking_number],
        "line_items": s.lines.iter().map(|(id, n)| json!({"id": id.parse::<u64>().unwrap_or(0), "quantity": n})).collect::<Vec<_>>(),
    })
}

async fn fulfillment_orders(
    State(sim): State<Arc<Sim>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return *r;
    }
    match sim.order(&id) {
        Some(o) => {
            Json(json!({ "fulfillment_orders": [sim.fulfillment_order(o)] })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn fulfillments(
    State(sim): State<Arc<Sim>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return *r;
    }
    if sim.order(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let list: Vec<Value> = sim
        .shipments
        .shipped(&id)
        .iter()
        .map(|s| fulfillment_json(&id, s))
        .collect();
    Json(json!({ "fulfillments": list })).into_response()
}

async fn create_fulfillment(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return *r;
    }
    let f = &body["fulfillment"];
    let groups = f["line_items_by_fulfillment_order"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let number = f["tracking_info"]["number"].as_str().unwrap_or_default();
    if groups.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "line_items_by_fulfillment_order is required",
        );
    }
    let mut order_id: Option<String> = None;
    let mut lines: Vec<(String, i64)> = Vec::new();
    for g in &groups {
        let fo = g["fulfillment_order_id"].as_u64().unwrap_or(0);
        // A fulfillment order's id is its order's id + 1.
        let Some(order) = sim
            .order(&fo.saturating_sub(1).to_string())
            .filter(|o| fo_id(o) == fo)
        else {
            return error(StatusCode::NOT_FOUND, "Not Found");
        };
        let oid = id_text(&order["id"]);
        if order_id.as_ref().is_some_and(|o| *o != oid) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "All fulfillment orders must belong to the same order.",
            );
        }
        let current = sim.fulfillment_order(order);
        for item in g["fulfillment_order_line_items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let want = item["quantity"].as_i64().unwrap_or(0);
            let Some(li) = current["line_items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|li| li["id"] == item["id"])
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid fulfillment order line item id.",
                );
            };
            if want <= 0 || want > li["fulfillable_quantity"].as_i64().unwrap_or(0) {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({"errors": ["Invalid fulfillment order line item quantity requested."]})),
                )
                    .into_response();
            }
            lines.push((id_text(&li["line_item_id"]), want));
        }
        order_id = Some(oid);
    }
    let oid = order_id.unwrap_or_default();
    let shipped = Shipped {
        reference: sim.shipments.next_id(5_000_000_000).to_string(),
        tracking_number: number.to_string(),
        carrier: f["tracking_info"]["company"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        lines,
    };
    let answer = fulfillment_json(&oid, &shipped);
    if sim.shipments.record(&oid, shipped) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    (StatusCode::CREATED, Json(json!({ "fulfillment": answer }))).into_response()
}

/// `POST /fulfillments/{id}/cancel.json`: the fulfillment is cancelled, its
/// units open to fulfil again.
async fn cancel_fulfillment(
    State(sim): State<Arc<Sim>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return *r;
    }
    let Some((order, shipped)) = sim.shipments.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    sim.shipments.cancel(&id);
    let mut f = fulfillment_json(&order, &shipped);
    f["status"] = json!("cancelled");
    Json(json!({ "fulfillment": f })).into_response()
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/admin/api/{version}/orders.json", get(orders))
        .route("/admin/api/{version}/products.json", get(products))
        .route(
            "/admin/api/{version}/orders/{id}/fulfillment_orders.json",
            get(fulfillment_orders),
        )
        .route(
            "/admin/api/{version}/orders/{id}/fulfillments.json",
            get(fulfillments),
        )
        .route(
            "/admin/api/{version}/fulfillments.json",
            post(create_fulfillment),
        )
        .route(
            "/admin/api/{version}/fulfillments/{id}/cancel.json",
            post(cancel_fulfillment),
        )
        .layer(axum::middleware::from_fn(absolute_links))
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

/// The signed webhook request for order `n` (body, headers).
pub fn webhook_request(
    n: u64,
    secret: &str,
    topic: &str,
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let body = serde_json::to_vec(&example(n)).unwrap_or_default();
    let sig = sign_base64(secret.as_bytes(), &body);
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-shopify-topic", topic.to_string()),
        ("x-shopify-hmac-sha256", sig),
        (
            "x-shopify-shop-domain",
            "conveyor-demo.myshopify.com".to_string(),
        ),
        (
            "x-shopify-webhook-id",
            format!("b54557e4-bdd9-4b37-8a5f-{n:012}"),
        ),
        ("x-shopify-api-version", "2025-01".to_string()),
        (
            "x-shopify-triggered-at",
            "2025-01-01T00:00:00.000Z".to_string(),
        ),
    ];
    (body, headers)
}

/// Delivers orders/create webhooks for orders `range` to `url`, `concurrency`
/// at a time, retrying each (up to `attempts`, 200 ms apart) until 2xx.
pub async fn fire_webhooks(
    url: &str,
    secret: &str,
    range: std::ops::Range<u64>,
    concurrency: usize,
    attempts: u32,
) -> FireStats {
    let secret = secret.to_string();
    super::deliver(url, range, concurrency, attempts, move |n| {
        webhook_request(n, &secret, "orders/create")
    })
    .await
}

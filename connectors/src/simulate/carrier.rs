//! A label API in Shippo's shapes (`POST /transactions`, instalabel: the
//! shipment inline, a carrier account and a service level token), for the
//! demo and the tests: it sells 4 x 6 PDF labels with tracking numbers in
//! each carrier's format, and keeps count of what it sold.
//!
//! - `Authorization: ShippoToken <token>` is checked (401 otherwise).
//! - `Idempotency-Key`: a key a label was sold under returns that
//!   transaction (200) and sells nothing; a new one sells a label (201). A
//!   refused purchase keeps no key: the corrected request is tried again.
//! - An address it cannot deliver to (empty street, ZIP `00000`) is a
//!   transaction with status `ERROR` and a message, as Shippo answers.
//! - A token bucket answers 429 with `Retry-After`; `--fail-every N` makes
//!   every Nth call a 503, to exercise the client's retries and breaker.
//! - `POST /refunds` voids a label (`{"transaction", "async": false}`):
//!   `SUCCESS`, the same refund again for a label refunded before, 400 for
//!   an unknown transaction.
//! - `GET /labels/<id>.pdf` serves the label; `GET /sim/purchases` says
//!   how many labels were sold, how many shipments were sold more than one
//!   (what the crash tests assert is zero), and how many were refunded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conveyor_processors::label::api::{
    ApiError, ApiMessage, ApiRate, Refund, RefundRequest, Transaction, TransactionRequest,
    IDEMPOTENCY_HEADER,
};
use conveyor_processors::label::shipping_label::{self, LabelContent};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Bucket;

pub struct Sim {
    token: String,
    bucket: Bucket,
    fail_every: u64,
    latency: Duration,
    calls: AtomicU64,
    /// `POST /transactions` being answered now, and the most at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    sold: Mutex<Sold>,
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Sim);

impl<'a> InFlight<'a> {
    fn enter(sim: &'a Sim) -> InFlight<'a> {
        let now = sim.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sim.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(sim)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Sold {
    by_key: HashMap<String, Transaction>,
    labels: HashMap<String, Vec<u8>>,
    /// transaction id -> refund id.
    refunds: HashMap<String, String>,
    per_shipment: HashMap<String, u64>,
    purchases: u64,
}

/// What `GET /sim/purchases` reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Purchases {
    /// Labels sold (new transactions).
    pub purchases: u64,
    /// Distinct shipments (transaction metadata) sold a label.
    pub shipments: u64,
    /// Shipments sold more than one label.
    pub duplicates: u64,
    /// Every call to `POST /transactions`, replays and refusals included.
    pub calls: u64,
    /// Labels refunded (voided).
    #[serde(default)]
    pub refunds: u64,
    /// The most `POST /transactions` calls answered at once (a client
    /// that buys concurrently shows more than one).
    #[serde(default)]
    pub max_in_flight: u64,
}

impl Sim {
    pub fn new(token: &str) -> Sim {
        Sim {
            token: token.to_string(),
            bucket: Bucket::new(1e9, 1e9),
            fail_every: 0,
            latency: Duration::ZERO,
            calls: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            sold: Mutex::new(Sold::default()),
        }
    }

    /// Answers 429 beyond `rate` calls per second (burst `burst`).
    pub fn with_rate(mut self, rate: f64, burst: f64) -> Sim {
        self.bucket = Bucket::new(rate, burst);
        self
    }

    /// Every `n`th call fails with 503 (0 = never).
    pub fn fail_every(mut self, n: u64) -> Sim {
        self.fail_every = n;
        self
    }

    /// Each purchase takes this long (a real API's latency).
    pub fn with_latency(mut self, latency: Duration) -> Sim {
        self.latency = latency;
        self
    }

    pub fn purchases(&self) -> Purchases {
        let sold = self.sold.lock().unwrap_or_else(|e| e.into_inner());
        Purchases {
            purchases: sold.purchases,
            shipments: sold.per_shipment.len() as u64,
            duplicates: sold.per_shipment.values().filter(|&&n| n > 1).count() as u64,
            calls: self.calls.load(Ordering::Relaxed),
            refunds: sold.refunds.len() as u64,
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
        }
    }
}

fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            detail: detail.into(),
        }),
    )
        .into_response()
}

fn digits(seed: &[u8], n: usize) -> String {
    let mut out = String::new();
    let mut block = Sha256::digest(seed).to_vec();
    while out.len() < n {
        out.extend(block.iter().map(|b| char::from(b'0' + b % 10)));
        block = Sha256::digest(&block).to_vec();
    }
    out.truncate(n);
    out
}

/// A tracking number in the carrier's format, from the purchase's key.
fn tracking_number(carrier: &str, seed: &[u8]) -> String {
    match carrier {
        "usps" => format!("9400{}", digits(seed, 18)),
        "ups" => format!("1Z{}", digits(seed, 16)),
        _ => digits(seed, 12),
    }
}

fn tracking_url(carrier: &str, number: &str) -> String {
    match carrier {
        "usps" => format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
        "ups" => format!("https://www.ups.com/track?tracknum={number}"),
        "fedex" => format!("https://www.fedex.com/fedextrack/?trknbr={number}"),
        _ => String::new(),
    }
}

/// What the simulator charges: a base per service tier plus weight.
fn price(service: &str, pounds: f64) -> String {
    let base = if service.contains("next") || service.contains("express") {
        28.0
    } else if service.contains("2day") || service.contains("priority") {
        9.5
    } else {
        5.4
    };
    format!("{:.2}", base + 0.9 * (pounds.ceil() - 1.0).max(0.0))
}

/// The token and the rate limit every API call passes: the answer when
/// one fails.
fn gate(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.strip_prefix("ShippoToken ") != Some(sim.token.as_str()) {
        return Some(error(StatusCode::UNAUTHORIZED, "Invalid token."));
    }
    if !sim.bucket.take() {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Request was throttled.");
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return Some(r);
    }
    None
}

async fn transactions(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Result<Json<TransactionRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let _in_flight = InFlight::enter(&sim);
    let call = sim.calls.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(r) = gate(&sim, &headers) {
        return r;
    }
    if sim.fail_every > 0 && call % sim.fail_every == 0 {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable.",
        );
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !sim.latency.is_zero() {
        tokio::time::sleep(sim.latency).await;
    }
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let carrier = req.carrier_account.to_ascii_lowercase();
    if !["usps", "ups", "fedex"].contains(&carrier.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("carrier_account `{}` not found.", req.carrier_account),
        );
    }
    let Some(parcel) = req.shipment.parcels.first() else {
        return error(
            StatusCode::BAD_REQUEST,
            "shipment.parcels: at least one parcel is required.",
        );
    };
    let pounds: f64 = parcel.weight.parse().unwrap_or(1.0);

    let mut sold = sim.sold.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = key.as_ref().and_then(|k| sold.by_key.get(k)) {
        return (StatusCode::OK, Json(t.clone())).into_response();
    }
    let seed = key.clone().unwrap_or_else(|| format!("call-{call}"));
    let object_id = format!("txn_{}", &hex(&Sha256::digest(seed.as_bytes()))[..24]);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let to = &req.shipment.address_to;
    let refused = if to.street1.trim().is_empty() {
        Some("Address not found: address_to.street1 is empty.")
    } else if to.zip.trim() == "00000" || to.zip.trim().is_empty() {
        Some("Address not found: the ZIP code does not exist.")
    } else {
        None
    };
    let service = req
        .servicelevel_token
        .strip_prefix(&format!("{carrier}_"))
        .unwrap_or(&req.servicelevel_token)
        .to_string();
    let created = jiff::Timestamp::now().to_string();
    let t = match refused {
        Some(why) => Transaction {
            object_id,
            object_created: created,
            status: "ERROR".into(),
            tracking_number: String::new(),
            tracking_url_provider: String::new(),
            label_url: String::new(),
            rate: None,
            metadata: req.metadata.clone(),
            messages: vec![ApiMessage {
                source: carrier.to_uppercase(),
                code: "address_invalid".into(),
                text: why.into(),
            }],
        },
        None => {
            let number = tracking_number(&carrier, seed.as_bytes());
            let pdf = shipping_label::render(&LabelContent {
                carrier: carrier.clone(),
                service: service.clone(),
                tracking_number: number.clone(),
                from: req.shipment.address_from.clone(),
                to: to.clone(),
                weight: format!("{} lb", parcel.weight),
                reference: req.metadata.clone(),
            });
            sold.labels.insert(object_id.clone(), pdf);
            sold.purchases += 1;
            *sold.per_shipment.entry(req.metadata.clone()).or_default() += 1;
            Transaction {
                label_url: format!("http://{host}/labels/{object_id}.pdf"),
                object_id,
                object_created: created,
                status: "SUCCESS".into(),
                tracking_url_provider: tracking_url(&carrier, &number),
                tracking_number: number,
                rate: Some(ApiRate {
                    amount: price(&service, pounds),
                    currency: "USD".into(),
                    provider: carrier.to_uppercase(),
                    servicelevel_token: req.servicelevel_token.clone(),
                }),
                metadata: req.metadata.clone(),
                messages: vec![],
            }
        }
    };
    // A refusal sold nothing, so its key is not kept: the same shipment
    // with its address corrected (an operator's retry) is a new attempt.
    if let Some(k) = key.filter(|_| t.status == "SUCCESS") {
        sold.by_key.insert(k, t.clone());
    }
    (StatusCode::CREATED, Json(t)).into_response()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn label(State(sim): State<Arc<Sim>>, Path(file): Path<String>) -> Response {
    let id = file.strip_suffix(".pdf").unwrap_or(&file);
    let sold = sim.sold.lock().unwrap_or_else(|e| e.into_inner());
    match sold.labels.get(id) {
        Some(pdf) => (
            StatusCode::OK,
            [("content-type", "application/pdf")],
            pdf.clone(),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

async fn refunds(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Result<Json<RefundRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = gate(&sim, &headers) {
        return r;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let mut sold = sim.sold.lock().unwrap_or_else(|e| e.into_inner());
    if !sold.labels.contains_key(&req.transaction) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("Transaction {} not found.", req.transaction),
        );
    }
    let n = sold.refunds.len();
    let id = sold
        .refunds
        .entry(req.transaction.clone())
        .or_insert_with(|| format!("refund_{n:08}"))
        .clone();
    (
        StatusCode::CREATED,
        Json(Refund {
            object_id: id,
            status: "SUCCESS".into(),
            transaction: req.transaction,
        }),
    )
        .into_response()
}

async fn purchases(State(sim): State<Arc<Sim>>) -> Json<Purchases> {
    Json(sim.purchases())
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/transactions", post(transactions))
        .route("/refunds", post(refunds))
        .route("/labels/{file}", get(label))
        .route("/sim/purchases", get(purchases))
        .with_state(sim)
}

pub async fn serve(
    sim: Arc<Sim>,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    super::serve_router(router(sim), bind, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_look_like_the_carriers_and_repeat_for_a_key() {
        let u = tracking_number("usps", b"k1");
        assert!(u.starts_with("9400") && u.len() == 22 && u.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(u, tracking_number("usps", b"k1"));
        assert_ne!(u, tracking_number("usps", b"k2"));
        assert!(tracking_number("ups", b"k").starts_with("1Z"));
        assert_eq!(tracking_number("fedex", b"k").len(), 12);
        assert_eq!(price("ground_advantage", 1.0), "5.40");
        assert_eq!(price("2day", 3.0), "11.30");
    }
}

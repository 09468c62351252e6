//! The order status API (axum), served from an [`OperationalStore`]:
//!
//! - `GET /orders/{id}`: current status, details, lines, shipments (plan,
//!   label, sync-back), reservations and history;
//! - `GET /orders?channel=&status=&since=&limit=&cursor=`: orders by
//!   creation time, paged (`next` is the cursor of the following page);
//! - `GET /search?by=number|email|sku|tracking&q=&limit=`: orders found by
//!   channel order number, customer email, SKU or tracking number;
//! - `GET /inventory/{sku}`: levels per warehouse, recent movements and
//!   current alerts;
//! - `GET /inventory?after=&limit=`: every SKU's levels, paged by SKU;
//! - `GET /alerts`: inventory alerts that have not recovered;
//! - `GET /tracking/{number}`: the shipment a tracking number belongs to;
//! - `GET /exceptions?day=YYYY-MM-DD`: exceptions raised that day, each
//!   with its state (the newest operator action on it);
//! - `GET /exceptions/{id}`: one exception (its latest raising) and its
//!   state; the id may hold `:` and `/` as they are;
//! - `GET /actions?day=YYYY-MM-DD`: the operator actions taken that day.
//!
//! JSON in and out; 404 with a message for what does not exist, 400 for a
//! malformed request, 503 when the store cannot be reached. Times are UTC
//! millis, amounts exact decimal strings. Every answer is a few point
//! lookups or bounded scans of the store (see [`crate::ops`]), whatever
//! its size.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::ops::views::{
    self, ActionsView, AlertsView, InventoryQuery, OrderQuery, QueryError, SearchQuery,
};
use crate::ops::{OperationalStore, StoreError};

/// The API's routes over `store`.
pub fn router<S: OperationalStore>(store: Arc<S>) -> Router {
    Router::new()
        .route("/orders/{id}", get(order::<S>))
        .route("/orders", get(orders::<S>))
        .route("/search", get(search::<S>))
        .route("/inventory/{sku}", get(inventory::<S>))
        .route("/inventory", get(inventory_page::<S>))
        .route("/alerts", get(alerts::<S>))
        .route("/tracking/{number}", get(tracking::<S>))
        .route("/exceptions", get(exceptions::<S>))
        .route("/exceptions/{*id}", get(exception::<S>))
        .route("/actions", get(actions::<S>))
        .with_state(store)
}

enum ApiError {
    NotFound(String),
    BadRequest(String),
    Unavailable(StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "status API: store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the store is unavailable: {}", e.message),
                )
            }
        };
        (code, Json(json!({ "error": message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(m) => ApiError::BadRequest(m),
            QueryError::Store(e) => ApiError::Unavailable(e),
        }
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// The query string's parameters, or a 400 saying what is wrong.
fn query<T>(q: QueryResult<T>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

fn timed(route: &'static str, started: Instant) {
    metrics::histogram!("conveyor_status_api_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
}

async fn order<S: OperationalStore>(
    State(store): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let v = views::order_view(store.as_ref(), &id).await?;
    timed("order", started);
    match v {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::NotFound(format!("no order `{id}`"))),
    }
}

async fn orders<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<OrderQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let page = views::list_orders(store.as_ref(), &query(q)?).await?;
    timed("orders", started);
    Ok(Json(page).into_response())
}

async fn search<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<SearchQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let found = views::search(store.as_ref(), &query(q)?).await?;
    timed("search", started);
    Ok(Json(found).into_response())
}

async fn inventory_page<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<InventoryQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let page = views::inventory_page(store.as_ref(), &query(q)?).await?;
    timed("inventory_page", started);
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    #[serde(default)]
    limit: usize,
}

async fn alerts<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<LimitQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let limit = match query(q)?.limit {
        0 => views::MAX_LIMIT,
        n if n > views::MAX_LIMIT => {
            return Err(ApiError::BadRequest(format!(
                "limit must be at most {}, got {n}",
                views::MAX_LIMIT
            )))
        }
        n => n,
    };
    let alerts = store.alerts(limit).await?;
    timed("alerts", started);
    Ok(Json(AlertsView { alerts }).into_response())
}

async fn inventory<S: OperationalStore>(
    State(store): State<Arc<S>>,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let v = views::inventory_view(store.as_ref(), &sku, 20).await?;
    timed("inventory", started);
    match v {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::NotFound(format!("no inventory for SKU `{sku}`"))),
    }
}

async fn tracking<S: OperationalStore>(
    State(store): State<Arc<S>>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    match store.tracking(&number).await? {
        Some(t) => Ok(Json(t).into_response()),
        None => Err(ApiError::NotFound(format!(
            "no shipment with tracking number `{number}`"
        ))),
    }
}

#[derive(Deserialize)]
struct DayQuery {
    day: Option<String>,
}

/// The `day` of `/<what>?day=YYYY-MM-DD`, or a 400 saying what is wrong.
fn day_of_query(what: &str, q: QueryResult<DayQuery>) -> Result<String, ApiError> {
    let Some(day) = query(q)?.day else {
        return Err(ApiError::BadRequest(format!(
            "give the day: /{what}?day=YYYY-MM-DD"
        )));
    };
    if !valid_day(&day) {
        return Err(ApiError::BadRequest(format!(
            "day must be YYYY-MM-DD, got `{day}`"
        )));
    }
    Ok(day)
}

fn valid_day(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

async fn exceptions<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<DayQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let day = day_of_query("exceptions", q)?;
    let v = views::exceptions_view(store.as_ref(), &day).await?;
    timed("exceptions", started);
    Ok(Json(v).into_response())
}

async fn exception<S: OperationalStore>(
    State(store): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let v = views::exception_view(store.as_ref(), &id).await?;
    timed("exception", started);
    match v {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::NotFound(format!("no exception `{id}`"))),
    }
}

async fn actions<S: OperationalStore>(
    State(store): State<Arc<S>>,
    q: QueryResult<DayQuery>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let day = day_of_query("actions", q)?;
    let actions = store.actions_on(&day).await?;
    timed("actions", started);
    Ok(Json(ActionsView { day, actions }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SinkEvent;
    use crate::ops::embedded::EmbeddedStore;
    use crate::ops::testkit::{self, BASE_MS};
    use serde_json::Value;

    async fn serve(store: Arc<EmbeddedStore>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router(store)).await.unwrap();
        });
        format!("http://{addr}")
    }

    async fn get(base: &str, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_what_the_console_asks_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("ops.redb")).unwrap());
        testkit::load(store.as_ref(), 0..100).await;
        let exception = crate::sample::orders(0..100, BASE_MS)
            .into_iter()
            .find_map(|e| match e {
                SinkEvent::Exception(x) => Some(x),
                _ => None,
            })
            .unwrap();
        let mut action = conveyor_schemas::samples::operator_action(0, exception.raised_at + 1);
        action.exception_id = exception.exception_id.clone();
        action.order_id = exception.order_id.clone();
        testkit::apply_events(store.as_ref(), &[SinkEvent::Action(action.clone())]).await;
        let base = serve(store).await;

        // Search: summaries, newest first; no email in them.
        let (code, s) = get(&base, "/search?by=number&q=%23100005").await;
        assert_eq!(code, 200, "{s}");
        assert_eq!(s["orders"][0]["order_id"], testkit::order_id(5));
        assert!(s["orders"][0].get("customer_email").is_none(), "{s}");
        let (code, s) = get(&base, "/search?by=email&q=CUSTOMER7%40example.com").await;
        assert_eq!(
            (code, s["orders"].as_array().unwrap().len()),
            (200, 1),
            "{s}"
        );
        let (code, s) = get(&base, "/search?by=sku&q=PKM-SV1-ETB&limit=3").await;
        assert_eq!(
            (code, s["orders"].as_array().unwrap().len()),
            (200, 3),
            "{s}"
        );
        for (path, says) in [
            ("/search?by=phone&q=1", "unknown search field `phone`"),
            ("/search?by=sku", "give what to look for"),
            ("/search?q=1", "give the field"),
            ("/search?by=sku&q=X&limit=501", "limit must be at most 500"),
            ("/search?by=sku&q=X&limit=many", "limit"),
        ] {
            let (code, e) = get(&base, path).await;
            assert_eq!(code, 400, "{path}: {e}");
            assert!(e["error"].as_str().unwrap().contains(says), "{path}: {e}");
        }

        // Exceptions: by day with coordinates and state, and by id (which
        // holds ':' and '/').
        let (code, x) = get(&base, "/exceptions?day=2026-11-27").await;
        assert_eq!(code, 200, "{x}");
        let row = x["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["exception_id"] == exception.exception_id.as_str())
            .expect("the exception is listed");
        assert_eq!(row["source_topic"], "shipments.planned");
        assert_eq!(row["source_offset"], exception.source_offset);
        assert_eq!(row["state"]["state"], "RETRIED");
        assert_eq!(row["state"]["actor"], "alice");
        assert_eq!(row["open"], false);
        assert!(exception.exception_id.contains(':') && exception.exception_id.contains('/'));
        let (code, one) = get(&base, &format!("/exceptions/{}", exception.exception_id)).await;
        assert_eq!(code, 200, "{one}");
        assert_eq!(one["exception_id"], exception.exception_id.as_str());
        assert_eq!(one["state"]["action_id"], action.action_id.as_str());
        // Percent-encoded, as a client that escapes every reserved
        // character sends it.
        let encoded = exception
            .exception_id
            .replace(':', "%3A")
            .replace('/', "%2F");
        let (code, same) = get(&base, &format!("/exceptions/{encoded}")).await;
        assert_eq!((code, &same), (200, &one));
        let (code, e) = get(&base, "/exceptions/label:nope/1").await;
        assert_eq!(code, 404);
        assert_eq!(e["error"], "no exception `label:nope/1`");

        // The audit log.
        let (code, a) = get(&base, "/actions?day=2026-11-27").await;
        assert_eq!(code, 200, "{a}");
        assert_eq!(a["day"], "2026-11-27");
        assert_eq!(a["actions"][0]["action_id"], action.action_id.as_str());
        assert_eq!(a["actions"][0]["kind"], "RETRY");
        assert_eq!(a["actions"][0]["role"], "operator");
        for (path, says) in [
            ("/actions", "give the day: /actions?day=YYYY-MM-DD"),
            ("/actions?day=27-11-2026", "YYYY-MM-DD"),
        ] {
            let (code, e) = get(&base, path).await;
            assert_eq!(code, 400, "{path}: {e}");
            assert!(e["error"].as_str().unwrap().contains(says), "{path}: {e}");
        }

        // Alerts and the inventory, paged by SKU.
        let (code, al) = get(&base, "/alerts").await;
        assert_eq!(code, 200, "{al}");
        assert_eq!(al["alerts"][0]["kind"], "LOW_STOCK");
        let (code, _) = get(&base, "/alerts?limit=501").await;
        assert_eq!(code, 400);
        let (code, page) = get(&base, "/inventory?limit=2").await;
        assert_eq!(code, 200, "{page}");
        let first_sku = page["levels"][0]["sku"].as_str().unwrap().to_string();
        let next = page["next"].as_str().expect("more SKUs follow").to_string();
        let (code, page2) = get(&base, &format!("/inventory?after={next}&limit=500")).await;
        assert_eq!(code, 200, "{page2}");
        assert!(page2["next"].is_null(), "{page2}");
        assert!(page2["levels"][0]["sku"].as_str().unwrap() > next.as_str());
        assert!(first_sku <= next);
        let (code, _) = get(&base, "/inventory?limit=none").await;
        assert_eq!(code, 400);
        let (code, inv) = get(&base, "/inventory/MTG-DMU-BOOSTER").await;
        assert_eq!(code, 200, "{inv}");
        assert_eq!(inv["alerts"][0]["warehouse_id"], "AUS-1");
    }
}

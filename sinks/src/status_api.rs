//! The order status API (axum), served from an [`OperationalStore`]:
//!
//! - `GET /orders/{id}`: current status, details, lines, shipments (plan,
//!   label, sync-back), reservations and history;
//! - `GET /orders?channel=&status=&since=&limit=&cursor=`: orders by
//!   creation time, paged (`next` is the cursor of the following page);
//! - `GET /inventory/{sku}`: levels per warehouse and recent movements;
//! - `GET /tracking/{number}`: the shipment a tracking number belongs to;
//! - `GET /exceptions?day=YYYY-MM-DD`: exceptions raised that day.
//!
//! JSON in and out; 404 with a message for what does not exist, 400 for a
//! malformed request, 503 when the store cannot be reached. Times are UTC
//! millis, amounts exact decimal strings.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::ops::views::{self, ExceptionsView, OrderQuery, QueryError};
use crate::ops::{OperationalStore, StoreError};

/// The API's routes over `store`.
pub fn router<S: OperationalStore>(store: Arc<S>) -> Router {
    Router::new()
        .route("/orders/{id}", get(order::<S>))
        .route("/orders", get(orders::<S>))
        .route("/inventory/{sku}", get(inventory::<S>))
        .route("/tracking/{number}", get(tracking::<S>))
        .route("/exceptions", get(exceptions::<S>))
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
    q: Result<Query<OrderQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let page = views::list_orders(store.as_ref(), &q)
        .await
        .map_err(|e| match e {
            QueryError::Invalid(m) => ApiError::BadRequest(m),
            QueryError::Store(e) => ApiError::Unavailable(e),
        })?;
    timed("orders", started);
    Ok(Json(page).into_response())
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
    q: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Some(day) = q.day else {
        return Err(ApiError::BadRequest(
            "give the day: /exceptions?day=YYYY-MM-DD".into(),
        ));
    };
    if !valid_day(&day) {
        return Err(ApiError::BadRequest(format!(
            "day must be YYYY-MM-DD, got `{day}`"
        )));
    }
    let exceptions = store.exceptions_on(&day).await?;
    Ok(Json(ExceptionsView { day, exceptions }).into_response())
}

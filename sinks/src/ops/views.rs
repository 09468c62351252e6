//! What the status API answers, assembled from an [`OperationalStore`]'s
//! rows: the same code for every store, so both answer the same.

use serde::{Deserialize, Serialize};

use super::model::{
    ExceptionRow, HistoryEntry, LevelRow, LineRow, MovementRow, OrderDetails, ReservationRow,
};
use super::{IndexEntry, OperationalStore, ShipmentRecord, StoreError};

/// `GET /orders/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: String,
    /// The pipeline status (see [`super::model::status`]); absent until a
    /// stage reported one.
    pub status: Option<String>,
    pub status_at: Option<i64>,
    /// The order's details; absent while only later stages' events have
    /// arrived (the sink reads every topic, in no fixed order across them).
    pub details: Option<OrderDetails>,
    pub lines: Vec<LineRow>,
    pub shipments: Vec<ShipmentRecord>,
    pub reservations: Vec<ReservationRow>,
    pub history: Vec<HistoryEntry>,
}

pub async fn order_view<S: OperationalStore>(
    store: &S,
    order_id: &str,
) -> Result<Option<OrderView>, StoreError> {
    let Some(rec) = store.order(order_id).await? else {
        return Ok(None);
    };
    let (lines, shipments, reservations, history) = futures::try_join!(
        store.lines(order_id),
        store.shipments(order_id),
        store.reservations(order_id),
        store.history(order_id),
    )?;
    Ok(Some(OrderView {
        order_id: order_id.to_string(),
        status: rec.status,
        status_at: rec.status_at,
        details: rec.details,
        lines,
        shipments,
        reservations,
        history,
    }))
}

/// `GET /orders?channel=&status=&since=&limit=&cursor=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OrderQuery {
    pub channel: Option<String>,
    pub status: Option<String>,
    /// Created at or after, UTC millis.
    pub since: Option<i64>,
    /// Page size (1..=500; default 50).
    #[serde(default)]
    pub limit: usize,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub order_id: String,
    pub channel: String,
    pub external_number: Option<String>,
    pub status: Option<String>,
    pub total: Option<String>,
    pub currency: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Pass as `cursor` for the next page; absent at the end.
    pub next: Option<String>,
}

pub const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;
/// Index entries one request examines at most (a rare status filtered
/// over months of orders answers with a short page and a cursor instead
/// of scanning them all).
const MAX_SCAN: usize = 20_000;

/// A cursor: `<created_at>-<order_id>`.
pub fn encode_cursor(created_at: i64, order_id: &str) -> String {
    format!("{created_at}-{order_id}")
}

pub fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let (at, id) = c.split_once('-')?;
    Some((at.parse().ok()?, id.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn list_orders<S: OperationalStore>(
    store: &S,
    q: &OrderQuery,
) -> Result<OrderPage, QueryError> {
    let limit = match q.limit {
        0 => DEFAULT_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(QueryError::Invalid(format!(
                "limit must be at most {MAX_LIMIT}, got {n}"
            )))
        }
        n => n,
    };
    if let Some(s) = &q.status {
        if !super::model::status::ALL.contains(&s.as_str()) {
            return Err(QueryError::Invalid(format!(
                "unknown status `{s}`; one of {}",
                super::model::status::ALL.join(", ")
            )));
        }
    }
    let mut after = match &q.cursor {
        Some(c) => {
            Some(decode_cursor(c).ok_or_else(|| QueryError::Invalid(format!("bad cursor `{c}`")))?)
        }
        None => None,
    };
    let since = q.since.unwrap_or(0);
    let mut orders = Vec::new();
    let mut scanned = 0;
    loop {
        let page: Vec<IndexEntry> = store.orders_since(since, after.clone(), 500).await?;
        if page.is_empty() {
            return Ok(OrderPage { orders, next: None });
        }
        for e in page {
            after = Some((e.created_at, e.order_id.clone()));
            scanned += 1;
            if q.channel.as_ref().is_some_and(|c| *c != e.channel) {
                continue;
            }
            let rec = store.order(&e.order_id).await?.unwrap_or_default();
            // An entry left under a creation time the order no longer has
            // (a store that cannot move entries, e.g. Scylla's index):
            // the entry under the current one lists it.
            if rec
                .details
                .as_ref()
                .is_some_and(|d| d.created_at != e.created_at)
            {
                continue;
            }
            if q.status.is_some() && rec.status != q.status {
                continue;
            }
            orders.push(OrderSummary {
                order_id: e.order_id.clone(),
                channel: e.channel.clone(),
                external_number: rec.details.as_ref().and_then(|d| d.external_number.clone()),
                status: rec.status,
                total: rec.details.as_ref().map(|d| d.total.clone()),
                currency: rec.details.as_ref().map(|d| d.currency.clone()),
                created_at: e.created_at,
            });
            if orders.len() == limit {
                let next = after.map(|(at, id)| encode_cursor(at, &id));
                return Ok(OrderPage { orders, next });
            }
        }
        if scanned >= MAX_SCAN {
            let next = after.map(|(at, id)| encode_cursor(at, &id));
            return Ok(OrderPage { orders, next });
        }
    }
}

/// `GET /inventory/{sku}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryView {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub warehouses: Vec<LevelRow>,
    /// Newest first.
    pub movements: Vec<MovementRow>,
}

pub async fn inventory_view<S: OperationalStore>(
    store: &S,
    sku: &str,
    movements: usize,
) -> Result<Option<InventoryView>, StoreError> {
    let (warehouses, movements) =
        futures::try_join!(store.levels(sku), store.movements(sku, movements))?;
    if warehouses.is_empty() {
        return Ok(None);
    }
    let sum = |f: fn(&LevelRow) -> i32| warehouses.iter().map(|l| i64::from(f(l))).sum();
    Ok(Some(InventoryView {
        sku: sku.to_string(),
        on_hand: sum(|l| l.on_hand),
        reserved: sum(|l| l.reserved),
        available: sum(|l| l.available),
        warehouses,
        movements,
    }))
}

/// `GET /exceptions?day=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionsView {
    pub day: String,
    pub exceptions: Vec<ExceptionRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_ids_with_separators() {
        let c = encode_cursor(1_795_737_600_000, "shopify:gid-1001:x");
        assert_eq!(
            decode_cursor(&c),
            Some((1_795_737_600_000, "shopify:gid-1001:x".to_string()))
        );
        assert_eq!(decode_cursor("nonsense"), None);
    }
}

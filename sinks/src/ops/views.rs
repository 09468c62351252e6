//! What the status API answers, assembled from an [`OperationalStore`]'s
//! rows: the same code for every store, so both answer the same.

use serde::{Deserialize, Serialize};

use super::model::{
    ActionRow, AlertRow, ExceptionRow, ExceptionState, HistoryEntry, LevelRow, LineRow,
    MovementRow, OrderDetails, ReservationRow, SearchField,
};
use super::{IndexEntry, OperationalStore, OrderRecord, ShipmentRecord, StoreError};

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
    let limit = page_size(q.limit, DEFAULT_LIMIT)?;
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

/// The page size of `limit` (`0`: `default`), or why it is refused.
fn page_size(limit: usize, default: usize) -> Result<usize, QueryError> {
    match limit {
        0 => Ok(default),
        n if n > MAX_LIMIT => Err(QueryError::Invalid(format!(
            "limit must be at most {MAX_LIMIT}, got {n}"
        ))),
        n => Ok(n),
    }
}

/// `GET /search?by=number|email|sku|tracking&q=&limit=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SearchQuery {
    /// `number` (the channel's order number, case-insensitive, `#`
    /// optional), `email` (case-insensitive), `sku` (orders whose current
    /// lines hold it) or `tracking` (a shipment's tracking number).
    pub by: Option<String>,
    pub q: Option<String>,
    /// At most this many orders (1..=500; default 50).
    #[serde(default)]
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchView {
    /// Newest first (creation time; by SKU, the latest edit of the lines).
    pub orders: Vec<OrderSummary>,
}

/// The summary of an order whose details have arrived.
fn summary(order_id: &str, rec: OrderRecord) -> Option<OrderSummary> {
    let d = rec.details?;
    Some(OrderSummary {
        order_id: order_id.to_string(),
        channel: d.channel,
        external_number: d.external_number,
        status: rec.status,
        total: Some(d.total),
        currency: Some(d.currency),
        created_at: d.created_at,
    })
}

/// Orders found by `q.by`: those whose details have arrived, each once.
pub async fn search<S: OperationalStore>(
    store: &S,
    q: &SearchQuery,
) -> Result<SearchView, QueryError> {
    let limit = page_size(q.limit, DEFAULT_LIMIT)?;
    let value = q.q.as_deref().map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(QueryError::Invalid(
            "give what to look for: /search?by=number|email|sku|tracking&q=...".into(),
        ));
    }
    let ids = match q.by.as_deref() {
        Some("tracking") => store
            .tracking(value)
            .await?
            .map(|t| vec![t.order_id])
            .unwrap_or_default(),
        Some(by) => {
            let field = match by {
                "number" => SearchField::Number,
                "email" => SearchField::Email,
                "sku" => SearchField::Sku,
                other => {
                    return Err(QueryError::Invalid(format!(
                        "unknown search field `{other}`; one of number, email, sku, tracking"
                    )))
                }
            };
            store.find_orders(field, value, limit).await?
        }
        None => {
            return Err(QueryError::Invalid(
                "give the field: /search?by=number|email|sku|tracking&q=...".into(),
            ))
        }
    };
    let records = futures::future::try_join_all(ids.iter().map(|id| store.order(id))).await?;
    let mut orders = Vec::new();
    for (id, rec) in ids.iter().zip(records) {
        if let Some(s) = rec.and_then(|r| summary(id, r)) {
            if !orders
                .iter()
                .any(|o: &OrderSummary| o.order_id == s.order_id)
            {
                orders.push(s);
            }
        }
    }
    Ok(SearchView { orders })
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
    /// The SKU's current alert per warehouse (`*`: its total), recovered
    /// ones included.
    pub alerts: Vec<AlertRow>,
}

pub async fn inventory_view<S: OperationalStore>(
    store: &S,
    sku: &str,
    movements: usize,
) -> Result<Option<InventoryView>, StoreError> {
    let (warehouses, movements, alerts) = futures::try_join!(
        store.levels(sku),
        store.movements(sku, movements),
        store.sku_alerts(sku)
    )?;
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
        alerts,
    }))
}

/// `GET /inventory?after=&limit=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InventoryQuery {
    /// The previous page's `next`: the SKU to continue after.
    pub after: Option<String>,
    /// SKUs per page (1..=500; default 100), each with all its warehouses.
    #[serde(default)]
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryPage {
    /// By SKU then warehouse; a SKU's warehouses are never split across
    /// pages.
    pub levels: Vec<LevelRow>,
    /// Pass as `after` for the next page; absent at the end.
    pub next: Option<String>,
}

pub async fn inventory_page<S: OperationalStore>(
    store: &S,
    q: &InventoryQuery,
) -> Result<InventoryPage, QueryError> {
    let skus = page_size(q.limit, 100)?;
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    // One SKU more than the page, to know whether another page follows.
    let mut levels = store.inventory_page(after, skus + 1).await?;
    let mut seen = 0;
    let cut = levels.iter().enumerate().position(|(i, l)| {
        if i == 0 || levels[i - 1].sku != l.sku {
            seen += 1;
        }
        seen > skus
    });
    let next = match cut {
        Some(i) => {
            levels.truncate(i);
            levels.last().map(|l| l.sku.clone())
        }
        None => None,
    };
    Ok(InventoryPage { levels, next })
}

/// `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsView {
    /// Current alerts that have not recovered, by SKU then warehouse.
    pub alerts: Vec<AlertRow>,
}

/// An exception as the console lists it: the row, what an operator last
/// did about it, and whether it is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    #[serde(flatten)]
    pub row: ExceptionRow,
    /// The newest action on the exception (any raising of it), if any.
    pub state: Option<ExceptionState>,
    /// No action was taken since this raising: the exception awaits an
    /// operator (a retry that failed again raises it anew, later than
    /// the retry).
    pub open: bool,
}

impl ExceptionEntry {
    pub fn new(row: ExceptionRow, state: Option<ExceptionState>) -> Self {
        let open = state.as_ref().is_none_or(|s| s.at < row.raised_at);
        Self { row, state, open }
    }
}

/// `GET /exceptions?day=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionsView {
    pub day: String,
    pub exceptions: Vec<ExceptionEntry>,
}

pub async fn exceptions_view<S: OperationalStore>(
    store: &S,
    day: &str,
) -> Result<ExceptionsView, StoreError> {
    let rows = store.exceptions_on(day).await?;
    let mut ids: Vec<String> = rows.iter().map(|r| r.exception_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let states = store.exception_states(&ids).await?;
    let exceptions = rows
        .into_iter()
        .map(|row| {
            let state = states.get(&row.exception_id).cloned();
            ExceptionEntry::new(row, state)
        })
        .collect();
    Ok(ExceptionsView {
        day: day.to_string(),
        exceptions,
    })
}

/// `GET /exceptions/{id}`: the latest raising and its state.
pub async fn exception_view<S: OperationalStore>(
    store: &S,
    exception_id: &str,
) -> Result<Option<ExceptionEntry>, StoreError> {
    let Some(row) = store.exception(exception_id).await? else {
        return Ok(None);
    };
    let mut states = store
        .exception_states(std::slice::from_ref(&row.exception_id))
        .await?;
    let state = states.remove(&row.exception_id);
    Ok(Some(ExceptionEntry::new(row, state)))
}

/// `GET /actions?day=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsView {
    pub day: String,
    /// Oldest first.
    pub actions: Vec<ActionRow>,
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

    #[test]
    fn an_exception_is_open_until_an_action_follows_its_raising() {
        let row = ExceptionRow {
            exception_id: "label:shopify:1001/PDX-1/1".into(),
            day: "2026-11-27".into(),
            raised_at: 1_000,
            order_id: "shopify:1001".into(),
            shipment_id: Some("shopify:1001/PDX-1/1".into()),
            stage: "label".into(),
            code: "address_invalid".into(),
            reason: "no such street".into(),
            action: "fix the address and retry".into(),
            source_topic: "shipments.planned".into(),
            source_partition: 2,
            source_offset: 17,
        };
        let state = |at| ExceptionState {
            state: "RETRIED".into(),
            actor: "alice".into(),
            at,
            reason: "fixed".into(),
            action_id: "a1".into(),
        };
        assert!(ExceptionEntry::new(row.clone(), None).open);
        assert!(!ExceptionEntry::new(row.clone(), Some(state(1_500))).open);
        assert!(
            ExceptionEntry::new(row.clone(), Some(state(500))).open,
            "raised again after the retry"
        );
        let json = serde_json::to_value(ExceptionEntry::new(row, Some(state(1_500)))).unwrap();
        assert_eq!(json["exception_id"], "label:shopify:1001/PDX-1/1");
        assert_eq!(json["source_offset"], 17);
        assert_eq!(json["state"]["state"], "RETRIED");
        assert_eq!(json["open"], false);
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0, 50).unwrap(), 50);
        assert_eq!(page_size(7, 50).unwrap(), 7);
        assert_eq!(page_size(MAX_LIMIT, 50).unwrap(), MAX_LIMIT);
        assert!(matches!(
            page_size(MAX_LIMIT + 1, 50),
            Err(QueryError::Invalid(_))
        ));
    }
}

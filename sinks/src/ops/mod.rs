//! The operational store: each order's current state, history, lines,
//! shipments and labels (also by tracking number), inventory levels and
//! recent movements per SKU, current inventory alerts, reservations,
//! exceptions (by day and by id) with the operator actions taken on them
//! (the console's audit log), and search indexes (order number, customer
//! email, SKU). Written by the sink (`conveyor sink scylla`), read by the
//! order status API (and, through it, the operator console).
//!
//! Behind [`OperationalStore`], with two implementations that apply the
//! same versioned [`model::Mutation`]s by the same rule and pass the same
//! behaviour suite ([`testkit`]):
//!
//! - [`embedded::EmbeddedStore`]: one redb file, for one machine (the
//!   default; no Scylla needed for the main job);
//! - [`crate::scylla::ScyllaStore`]: ScyllaDB / Apache Cassandra 4.

pub mod embedded;
pub mod model;
pub mod testkit;
pub mod views;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;

use model::{
    ActionRow, AlertRow, ExceptionRow, ExceptionState, HistoryEntry, LabelCells, LevelRow, LineRow,
    MovementRow, Mutation, OrderDetails, PlanCells, ReservationRow, SearchField, SyncCells,
    TrackingRow,
};
use serde::{Deserialize, Serialize};

/// A store that failed or could not be reached (the feed retries).
#[derive(Debug, Clone, thiserror::Error)]
#[error("operational store {store}: {message}")]
pub struct StoreError {
    pub store: String,
    pub message: String,
}

impl StoreError {
    pub fn new(store: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            store: store.into(),
            message: message.to_string(),
        }
    }
}

/// An order's row: its details (from the order events) and its pipeline
/// status (from whichever stage spoke last); either may come first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderRecord {
    pub details: Option<OrderDetails>,
    pub status: Option<String>,
    pub status_at: Option<i64>,
}

/// A shipment's row: its plan, label and sync-back groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    pub shipment_id: String,
    pub plan: Option<PlanCells>,
    pub label: Option<LabelCells>,
    pub sync: Option<SyncCells>,
}

/// An entry of the order listing index (by creation time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub created_at: i64,
    pub order_id: String,
    pub channel: String,
}

/// The operational store. Reads see every batch `apply` has returned.
pub trait OperationalStore: Send + Sync + 'static {
    /// A name for errors and logs (`embedded <path>`, `scylla <nodes>`).
    fn describe(&self) -> String;

    /// Applies a batch's mutations (see [`model`] for the rule). Durable
    /// when it returns.
    fn apply(&self, batch: Vec<Mutation>) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn order(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;

    fn lines(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Vec<LineRow>, StoreError>> + Send;

    /// The order's history, oldest first.
    fn history(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    fn shipments(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Vec<ShipmentRecord>, StoreError>> + Send;

    fn reservations(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Vec<ReservationRow>, StoreError>> + Send;

    fn tracking(
        &self,
        tracking_number: &str,
    ) -> impl Future<Output = Result<Option<TrackingRow>, StoreError>> + Send;

    /// Orders created at or after `since` (ms) and strictly after `after`
    /// (a previous page's last entry), oldest first, at most `limit`.
    /// May return fewer than `limit` before the end (a bounded scan); the
    /// caller continues after the last entry returned, and stops on an
    /// empty answer.
    fn orders_since(
        &self,
        since: i64,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<IndexEntry>, StoreError>> + Send;

    fn levels(&self, sku: &str) -> impl Future<Output = Result<Vec<LevelRow>, StoreError>> + Send;

    /// The SKU's latest movements, newest first.
    fn movements(
        &self,
        sku: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<MovementRow>, StoreError>> + Send;

    /// Exceptions raised on `day` (`YYYY-MM-DD`, UTC), oldest first.
    fn exceptions_on(
        &self,
        day: &str,
    ) -> impl Future<Output = Result<Vec<ExceptionRow>, StoreError>> + Send;

    /// An exception by id: its latest raising.
    fn exception(
        &self,
        exception_id: &str,
    ) -> impl Future<Output = Result<Option<ExceptionRow>, StoreError>> + Send;

    /// The current states of the exceptions `exception_ids` that an
    /// operator acted on (one call for a day's list).
    fn exception_states(
        &self,
        exception_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, ExceptionState>, StoreError>> + Send;

    /// Operator actions taken on `day` (`YYYY-MM-DD`, UTC), oldest first.
    fn actions_on(
        &self,
        day: &str,
    ) -> impl Future<Output = Result<Vec<ActionRow>, StoreError>> + Send;

    /// Current inventory alerts that have not recovered, by SKU then
    /// warehouse, at most `limit`.
    fn alerts(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// The SKU's current alert per warehouse (and total), `RECOVERED`
    /// ones included.
    fn sku_alerts(
        &self,
        sku: &str,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// The levels of the first `skus` SKUs after `after_sku` (from the
    /// first without), by SKU then warehouse: every warehouse of a SKU
    /// or none of them.
    fn inventory_page(
        &self,
        after_sku: Option<&str>,
        skus: usize,
    ) -> impl Future<Output = Result<Vec<LevelRow>, StoreError>> + Send;

    /// Ids of the orders whose current details or lines match `value`
    /// by `by` (see [`SearchField::key`]), newest first (creation time;
    /// for a SKU, the version of the lines), at most `limit`. Never an
    /// order that matched only before an edit.
    fn find_orders(
        &self,
        by: SearchField,
        value: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

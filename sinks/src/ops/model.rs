//! Sink records -> versioned row mutations of the operational store. Pure:
//! both stores (embedded and Scylla) apply the same mutations with the
//! same rule, so they answer the same.
//!
//! # The rule
//!
//! Every mutation carries a version; a store keeps, per row *and column
//! group*, the highest version it was given (Scylla: the write timestamp,
//! `USING TIMESTAMP`). So redeliveries and replays of an event change
//! nothing, an older event never overwrites a newer one, and the groups of
//! one row (an order's details and its status; a shipment's plan, label
//! and sync-back) are written independently by the stages that own them.
//! Row *sets* that an event replaces as a whole (an order's lines, its
//! reservations) are replaced only by a newer version.
//!
//! Versions are [`crate::event::version`] (event time in microseconds);
//! an order's pipeline status additionally ranks the stages, so that
//! stages stamped with the same input time order as the pipeline does
//! (received < allocated < routed < labeled < shipped; cancelled last).
//! Inventory levels use the SKU's movement sequence (`seq`).
//!
//! # What the operator console reads
//!
//! - An exception is kept per UTC day of each raising and by its id (the
//!   latest raising wins); an operator's action on it ([`ActionRow`]) is
//!   kept in the audit log of its day, in the order's history, and as
//!   the exception's current [`ExceptionState`] (the newest action wins).
//!   An action is keyed by its id and time, so a re-submission (the same
//!   record) changes nothing.
//! - Inventory alerts: the current one per SKU x warehouse (`*`: the
//!   SKU's total), `RECOVERED` included; listings show the others.
//! - Search keys of an order ([`number_key`], [`email_key`], its lines'
//!   SKUs) come from its details and lines. A store answers a search with
//!   the orders that match *now*: entries an edit left behind are removed
//!   when the edit is written (embedded) or checked against the order
//!   when read (Scylla, which writes without reading).

use conveyor_schemas::records::{
    ActionKind, AllocationResult, AllocationStatus, DlqRecord, ErrorKind, ExceptionRecord,
    InventoryAlert, LabelStatus, LabeledShipment, OperatorAction, OrderEvent, OrderEventKind,
    PlanStatus, PlannedShipment, StockMovement, SyncOutcome, SyncedShipment,
};
use serde::{Deserialize, Serialize};

use crate::event::{event_index, SinkEvent};

/// The pipeline status of an order, as the status API reports it.
pub mod status {
    pub const RECEIVED: &str = "RECEIVED";
    pub const ALLOCATED: &str = "ALLOCATED";
    pub const PARTIALLY_ALLOCATED: &str = "PARTIALLY_ALLOCATED";
    pub const BACKORDERED: &str = "BACKORDERED";
    pub const FULFILLED_BY_CHANNEL: &str = "FULFILLED_BY_CHANNEL";
    pub const ROUTED: &str = "ROUTED";
    pub const LABELED: &str = "LABELED";
    pub const SHIPPED: &str = "SHIPPED";
    pub const CANCELLED: &str = "CANCELLED";
    pub const ALL: &[&str] = &[
        RECEIVED,
        ALLOCATED,
        PARTIALLY_ALLOCATED,
        BACKORDERED,
        FULFILLED_BY_CHANNEL,
        ROUTED,
        LABELED,
        SHIPPED,
        CANCELLED,
    ];
}

/// An amount as exact decimal text (`"19.99"`).
pub type Amount = String;

/// The canonical text of an amount: trailing zeros dropped, at least two
/// decimals (`19.99`, `4.00`, `0.0125`), whatever scale it travelled in.
pub fn amount(d: &rust_decimal::Decimal) -> Amount {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    pub order_id: String,
    pub channel: String,
    pub external_id: String,
    pub external_number: Option<String>,
    pub customer_name: String,
    pub customer_email: Option<String>,
    pub currency: String,
    pub subtotal: Amount,
    pub shipping: Amount,
    pub tax: Amount,
    pub total: Amount,
    pub priority: String,
    pub channel_status: String,
    pub ship_city: String,
    pub ship_region: Option<String>,
    pub ship_postal_code: String,
    pub ship_country: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRow {
    pub line_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: Amount,
    pub total: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub order_id: String,
    pub at: i64,
    pub event_id: String,
    /// normalize, allocate, route, label, syncback, or the exception's stage.
    pub stage: String,
    /// What happened, e.g. `ALLOCATED`, `LABELED`, `EXCEPTION`.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRow {
    pub sku: String,
    pub warehouse_id: String,
    pub quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlanCells {
    pub warehouse_id: String,
    pub carrier: String,
    pub service: String,
    pub rate: Amount,
    pub currency: String,
    pub zone: Option<String>,
    pub plan_status: String,
    pub estimated_delivery: Option<i64>,
    pub planned_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LabelCells {
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub label_cost: Amount,
    pub label_status: String,
    pub label_uri: String,
    pub packing_slip_uri: String,
    pub labeled_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncCells {
    pub sync_outcome: String,
    pub channel_reference: Option<String>,
    pub synced_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingRow {
    pub tracking_number: String,
    pub order_id: String,
    pub shipment_id: String,
    pub carrier: String,
    pub service: String,
    pub label_status: String,
    pub labeled_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRow {
    pub sku: String,
    pub warehouse_id: String,
    pub on_hand: i32,
    pub reserved: i32,
    pub held: i32,
    pub available: i32,
    pub seq: i64,
    pub as_of: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementRow {
    pub sku: String,
    pub seq: i64,
    pub event_id: String,
    pub warehouse_id: String,
    pub kind: String,
    pub quantity: i32,
    pub order_id: Option<String>,
    pub available: i32,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRow {
    pub exception_id: String,
    /// `YYYY-MM-DD` (UTC) of `raised_at`.
    pub day: String,
    pub raised_at: i64,
    pub order_id: String,
    pub shipment_id: Option<String>,
    pub stage: String,
    pub code: String,
    pub reason: String,
    pub action: String,
    /// The failed record's coordinates (what a retry re-publishes). Rows
    /// written before they were kept read as `""`, 0, 0.
    #[serde(default)]
    pub source_topic: String,
    #[serde(default)]
    pub source_partition: i32,
    #[serde(default)]
    pub source_offset: i64,
}

/// What an operator did about an exception (the console's audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRow {
    pub action_id: String,
    pub exception_id: String,
    pub order_id: String,
    pub shipment_id: Option<String>,
    /// `RETRY`, `CANCEL` or `RESOLVE`.
    pub kind: String,
    pub actor: String,
    /// The actor's role when acting: viewer, operator, admin.
    pub role: String,
    /// The operator's why.
    pub reason: String,
    /// What the console did (no personal data).
    pub detail: String,
    pub at: i64,
    /// `YYYY-MM-DD` (UTC) of `at`.
    pub day: String,
}

/// An exception's current state: the newest action taken on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionState {
    /// `RETRIED`, `CANCELLED` or `RESOLVED` (see [`state`]).
    pub state: String,
    pub actor: String,
    pub at: i64,
    pub reason: String,
    pub action_id: String,
}

/// The states an action leaves an exception in.
pub mod state {
    pub const RETRIED: &str = "RETRIED";
    pub const CANCELLED: &str = "CANCELLED";
    pub const RESOLVED: &str = "RESOLVED";
}

/// The current inventory alert of a SKU at a warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRow {
    pub sku: String,
    /// The warehouse, or [`ALL_WAREHOUSES`] for the SKU's total.
    pub warehouse_id: String,
    /// `LOW_STOCK`, `OUT_OF_STOCK` or `RECOVERED`.
    pub kind: String,
    pub available: i32,
    pub reorder_point: i32,
    pub occurred_at: i64,
}

/// The `warehouse_id` of an alert on a SKU's total across warehouses.
pub const ALL_WAREHOUSES: &str = "*";

/// The alert kind that ends an alert.
pub const RECOVERED: &str = "RECOVERED";

/// What an order search looks in (see [`crate::ops::OperationalStore::find_orders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchField {
    /// The channel's order number (`#1001`): exact, case-insensitive, a
    /// leading `#` optional (see [`number_key`]).
    Number,
    /// The customer's email, case-insensitive (see [`email_key`]).
    Email,
    /// A SKU on one of the order's current lines (exact).
    Sku,
}

impl SearchField {
    /// The key `value` is looked up by: [`number_key`], [`email_key`],
    /// or the SKU trimmed.
    pub fn key(self, value: &str) -> String {
        match self {
            SearchField::Number => number_key(value),
            SearchField::Email => email_key(value),
            SearchField::Sku => value.trim().to_string(),
        }
    }
}

/// The search key of a channel order number: trimmed, without a leading
/// `#`, lowercased (`#AB-1001` and `ab-1001` find the same order).
pub fn number_key(number: &str) -> String {
    let n = number.trim();
    n.strip_prefix('#').unwrap_or(n).trim().to_lowercase()
}

/// The search key of an email: trimmed and lowercased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The distinct SKUs of `lines`, sorted.
pub fn line_skus(lines: &[LineRow]) -> Vec<&str> {
    let mut skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    skus.sort_unstable();
    skus.dedup();
    skus
}

impl OrderDetails {
    /// The key this order is found under by `by` (none for a field it
    /// lacks; SKUs are its lines', see [`line_skus`]).
    pub fn search_key(&self, by: SearchField) -> Option<String> {
        match by {
            SearchField::Number => self.external_number.as_deref().map(number_key),
            SearchField::Email => self.customer_email.as_deref().map(email_key),
            SearchField::Sku => None,
        }
        .filter(|k| !k.is_empty())
    }
}

/// One versioned change to the operational store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    OrderDetails {
        details: OrderDetails,
        version: i64,
    },
    OrderStatus {
        order_id: String,
        status: String,
        at: i64,
        version: i64,
    },
    /// Replaces the order's lines (older versions' lines are gone).
    Lines {
        order_id: String,
        lines: Vec<LineRow>,
        version: i64,
    },
    History(HistoryEntry),
    /// Replaces the order's reservations (empty: none left).
    Reservations {
        order_id: String,
        rows: Vec<ReservationRow>,
        version: i64,
    },
    Plan {
        order_id: String,
        shipment_id: String,
        cells: PlanCells,
        version: i64,
    },
    Label {
        order_id: String,
        shipment_id: String,
        cells: LabelCells,
        version: i64,
    },
    Sync {
        order_id: String,
        shipment_id: String,
        cells: SyncCells,
        version: i64,
    },
    Tracking {
        row: TrackingRow,
        version: i64,
    },
    /// Levels after a movement; the highest `seq` wins.
    Level(LevelRow),
    Movement(MovementRow),
    /// A raising of an exception: kept in its day's list and, the
    /// highest version winning, as the exception's row by id.
    Exception {
        row: ExceptionRow,
        version: i64,
    },
    /// An operator action in its day's audit log (keyed by its time and
    /// id: a repeated action is the same entry).
    Action(ActionRow),
    /// The exception's state after an action; the highest version wins.
    ExceptionState {
        exception_id: String,
        state: ExceptionState,
        version: i64,
    },
    /// The current alert of a SKU at a warehouse; the highest version
    /// wins, and a `RECOVERED` one takes it off the alert listing.
    Alert {
        row: AlertRow,
        version: i64,
    },
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The status version: event time (µs) with the stage's rank in the
/// hundreds, so same-millisecond stages order as the pipeline runs.
pub fn status_version(event_ms: i64, rank: i64, event_id: &str) -> i64 {
    event_ms
        .max(0)
        .saturating_mul(1000)
        .saturating_add(rank * 100 + event_index(event_id).min(99) as i64)
        .saturating_mul(crate::event::GENERATIONS)
}

/// A UTC day `YYYY-MM-DD` of millis.
pub fn day_of(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

fn history(
    order_id: &str,
    at: i64,
    event_id: &str,
    stage: &str,
    status: &str,
    detail: String,
) -> Mutation {
    Mutation::History(HistoryEntry {
        order_id: order_id.to_string(),
        at,
        event_id: event_id.to_string(),
        stage: stage.to_string(),
        status: status.to_string(),
        detail,
    })
}

/// The mutations of one sink record, its versions raised by the replay
/// generation that wrote it (see [`crate::event::with_generation`]).
pub fn located_mutations(l: &crate::event::Located) -> Vec<Mutation> {
    let mut m = mutations(&l.event);
    if l.generation > 0 {
        for m in &mut m {
            m.raise(l.generation);
        }
    }
    m
}

impl Mutation {
    /// Adds replay `generation` to the version (levels and movements are
    /// ordered by their per-SKU sequence instead; history entries are
    /// keyed by event id).
    fn raise(&mut self, generation: u16) {
        let version = match self {
            Mutation::OrderDetails { version, .. }
            | Mutation::OrderStatus { version, .. }
            | Mutation::Lines { version, .. }
            | Mutation::Reservations { version, .. }
            | Mutation::Plan { version, .. }
            | Mutation::Label { version, .. }
            | Mutation::Sync { version, .. }
            | Mutation::Tracking { version, .. }
            | Mutation::Exception { version, .. }
            | Mutation::ExceptionState { version, .. }
            | Mutation::Alert { version, .. } => version,
            Mutation::History(_)
            | Mutation::Level(_)
            | Mutation::Movement(_)
            | Mutation::Action(_) => return,
        };
        *version = crate::event::with_generation(*version, generation);
    }
}

/// The mutations of one sink event (raw inventory feed events have no
/// operational rows: the movements they cause do; a dead letter is an
/// exception in the queue unless it is an exception's twin).
pub fn mutations(event: &SinkEvent) -> Vec<Mutation> {
    let version = event.version();
    match event {
        SinkEvent::Order(e) => order(e, version),
        SinkEvent::Allocation(e) => allocation(e, version),
        SinkEvent::Planned(e) => plan(e, version),
        SinkEvent::Labeled(e) => label(e, version),
        SinkEvent::Synced(e) => sync(e, version),
        SinkEvent::Movement(e) => movement(e),
        SinkEvent::Exception(e) => exception(e, version),
        SinkEvent::Action(e) => action(e, version),
        SinkEvent::Alert(e) => alert(e, version),
        SinkEvent::Dlq(e) => dead_letter(e, version),
        SinkEvent::Inventory(_) => vec![],
    }
}

fn order(e: &OrderEvent, version: i64) -> Vec<Mutation> {
    let o = &e.order;
    let a = &o.shipping_address;
    let cancelled = e.kind == OrderEventKind::Cancelled || e.cancellation.is_some();
    // A cancellation ends the order, whenever it comes. A creation says
    // the order was received, at its time. Any other order event (an
    // update the channel sends after sync-back, a tag edit) only fills a
    // status no stage has reported yet: versioned at time 0, it never
    // takes a later stage's status back. An edit that changes what was
    // allocated gets a new allocation outcome, which speaks.
    let (st, rank, status_ms) = if cancelled {
        (status::CANCELLED, 9, e.occurred_at)
    } else if e.kind == OrderEventKind::Created {
        (status::RECEIVED, 1, e.occurred_at)
    } else {
        (status::RECEIVED, 1, 0)
    };
    let kind = if cancelled {
        status::CANCELLED.to_string()
    } else {
        name(&e.kind)
    };
    let detail = match (&e.kind, &e.cancellation) {
        (_, Some(c)) => format!("cancelled: {}", c.reason),
        (OrderEventKind::Created, _) => format!(
            "{} lines, total {} {}",
            o.lines.len(),
            amount(&o.totals.total.amount),
            o.currency
        ),
        _ => format!(
            "updated: {} lines, total {} {}",
            o.lines.len(),
            amount(&o.totals.total.amount),
            o.currency
        ),
    };
    vec![
        Mutation::OrderDetails {
            details: OrderDetails {
                order_id: e.order_id.clone(),
                channel: o.channel.clone(),
                external_id: o.external_id.clone(),
                external_number: o.external_number.clone(),
                customer_name: o.customer.name.clone(),
                customer_email: o.customer.email.clone(),
                currency: o.currency.clone(),
                subtotal: amount(&o.totals.subtotal.amount),
                shipping: amount(&o.totals.shipping.amount),
                tax: amount(&o.totals.tax.amount),
                total: amount(&o.totals.total.amount),
                priority: name(&o.priority),
                channel_status: name(&o.status),
                ship_city: a.city.clone(),
                ship_region: a.region.clone(),
                ship_postal_code: a.postal_code.clone(),
                ship_country: a.country.clone(),
                created_at: o.created_at,
                updated_at: o.updated_at,
            },
            version,
        },
        Mutation::OrderStatus {
            order_id: e.order_id.clone(),
            status: st.to_string(),
            at: e.occurred_at,
            version: status_version(status_ms, rank, &e.event_id),
        },
        Mutation::Lines {
            order_id: e.order_id.clone(),
            lines: o
                .lines
                .iter()
                .map(|l| LineRow {
                    line_id: l.line_id.clone(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: amount(&l.unit_price.amount),
                    total: amount(&l.total.amount),
                })
                .collect(),
            version,
        },
        history(
            &e.order_id,
            e.occurred_at,
            &e.event_id,
            "normalize",
            &kind,
            detail,
        ),
    ]
}

fn allocation(e: &AllocationResult, version: i64) -> Vec<Mutation> {
    let st = match e.status {
        AllocationStatus::Allocated => Some(status::ALLOCATED),
        AllocationStatus::PartiallyAllocated => Some(status::PARTIALLY_ALLOCATED),
        AllocationStatus::Backordered => Some(status::BACKORDERED),
        AllocationStatus::FulfilledByChannel => Some(status::FULFILLED_BY_CHANNEL),
        // Stock released (a cancellation, an edit): the order's own event
        // says what became of it.
        AllocationStatus::Released => None,
    };
    let warehouses: Vec<&str> = e
        .allocations
        .iter()
        .map(|w| w.warehouse_id.as_str())
        .collect();
    let backordered: i32 = e.backordered.iter().map(|l| l.quantity).sum();
    let detail = match e.status {
        AllocationStatus::Released => "stock released".to_string(),
        _ if backordered > 0 && warehouses.is_empty() => format!("{backordered} units backordered"),
        _ if backordered > 0 => format!(
            "from {}; {backordered} units backordered",
            warehouses.join(", ")
        ),
        _ => format!("from {} (policy {})", warehouses.join(", "), e.policy),
    };
    let mut out = vec![];
    if let Some(st) = st {
        out.push(Mutation::OrderStatus {
            order_id: e.order_id.clone(),
            status: st.to_string(),
            at: e.decided_at,
            version: status_version(e.decided_at, 2, &e.event_id),
        });
    }
    out.push(Mutation::Reservations {
        order_id: e.order_id.clone(),
        rows: e
            .allocations
            .iter()
            .flat_map(|w| {
                w.lines.iter().map(|l| ReservationRow {
                    sku: l.sku.clone(),
                    warehouse_id: w.warehouse_id.clone(),
                    quantity: l.quantity,
                })
            })
            .collect(),
        version,
    });
    out.push(history(
        &e.order_id,
        e.decided_at,
        &e.event_id,
        "allocate",
        &name(&e.status),
        detail,
    ));
    out
}

fn plan(e: &PlannedShipment, version: i64) -> Vec<Mutation> {
    let live = e.status == PlanStatus::Planned;
    let mut out = vec![Mutation::Plan {
        order_id: e.order_id.clone(),
        shipment_id: e.shipment_id.clone(),
        cells: PlanCells {
            warehouse_id: e.warehouse_id.clone(),
            carrier: e.carrier.clone(),
            service: e.service.clone(),
            rate: amount(&e.rate.amount),
            currency: e.rate.currency.as_str().to_string(),
            zone: e.zone.clone(),
            plan_status: name(&e.status),
            estimated_delivery: e.estimated_delivery,
            planned_at: e.planned_at,
        },
        version,
    }];
    if live {
        out.push(Mutation::OrderStatus {
            order_id: e.order_id.clone(),
            status: status::ROUTED.to_string(),
            at: e.planned_at,
            version: status_version(e.planned_at, 3, &e.event_id),
        });
    }
    let detail = if live {
        format!(
            "{}: {} {} from {}, {} {}",
            e.shipment_id,
            e.carrier,
            e.service,
            e.warehouse_id,
            amount(&e.rate.amount),
            e.rate.currency.as_str()
        )
    } else {
        format!("{}: plan cancelled", e.shipment_id)
    };
    out.push(history(
        &e.order_id,
        e.planned_at,
        &e.event_id,
        "route",
        if live {
            status::ROUTED
        } else {
            "PLAN_CANCELLED"
        },
        detail,
    ));
    out
}

fn label(e: &LabeledShipment, version: i64) -> Vec<Mutation> {
    let live = e.status == LabelStatus::Labeled;
    let mut out = vec![
        Mutation::Label {
            order_id: e.order_id.clone(),
            shipment_id: e.shipment_id.clone(),
            cells: LabelCells {
                tracking_number: e.tracking_number.clone(),
                tracking_url: e.tracking_url.clone(),
                label_cost: amount(&e.label_cost.amount),
                label_status: name(&e.status),
                label_uri: e.label.uri.clone(),
                packing_slip_uri: e.packing_slip.uri.clone(),
                labeled_at: e.labeled_at,
            },
            version,
        },
        Mutation::Tracking {
            row: TrackingRow {
                tracking_number: e.tracking_number.clone(),
                order_id: e.order_id.clone(),
                shipment_id: e.shipment_id.clone(),
                carrier: e.carrier.clone(),
                service: e.service.clone(),
                label_status: name(&e.status),
                labeled_at: e.labeled_at,
            },
            version,
        },
    ];
    if live {
        out.push(Mutation::OrderStatus {
            order_id: e.order_id.clone(),
            status: status::LABELED.to_string(),
            at: e.labeled_at,
            version: status_version(e.labeled_at, 4, &e.event_id),
        });
    }
    let detail = format!(
        "{}: {} {} {}",
        e.shipment_id,
        e.carrier,
        e.tracking_number,
        if live { "label bought" } else { "label voided" }
    );
    out.push(history(
        &e.order_id,
        e.labeled_at,
        &e.event_id,
        "label",
        &name(&e.status),
        detail,
    ));
    out
}

fn sync(e: &SyncedShipment, version: i64) -> Vec<Mutation> {
    let shipped = matches!(
        e.outcome,
        SyncOutcome::Confirmed | SyncOutcome::AlreadyConfirmed
    );
    let mut out = vec![Mutation::Sync {
        order_id: e.order_id.clone(),
        shipment_id: e.shipment_id.clone(),
        cells: SyncCells {
            sync_outcome: name(&e.outcome),
            channel_reference: e.channel_reference.clone(),
            synced_at: e.synced_at,
        },
        version,
    }];
    if shipped {
        out.push(Mutation::OrderStatus {
            order_id: e.order_id.clone(),
            status: status::SHIPPED.to_string(),
            at: e.synced_at,
            version: status_version(e.synced_at, 5, &e.event_id),
        });
    }
    let detail = format!(
        "{}: {} told {} ({})",
        e.shipment_id,
        e.channel,
        e.tracking_number,
        name(&e.outcome)
    );
    out.push(history(
        &e.order_id,
        e.synced_at,
        &e.event_id,
        "syncback",
        &name(&e.outcome),
        detail,
    ));
    out
}

fn movement(e: &StockMovement) -> Vec<Mutation> {
    vec![
        Mutation::Level(LevelRow {
            sku: e.sku.clone(),
            warehouse_id: e.warehouse_id.clone(),
            on_hand: e.on_hand,
            reserved: e.reserved,
            held: e.held,
            available: e.available,
            seq: e.seq,
            as_of: e.occurred_at,
        }),
        Mutation::Movement(MovementRow {
            sku: e.sku.clone(),
            seq: e.seq,
            event_id: e.event_id.clone(),
            warehouse_id: e.warehouse_id.clone(),
            kind: name(&e.kind),
            quantity: e.quantity,
            order_id: e.order_id.clone(),
            available: e.available,
            occurred_at: e.occurred_at,
        }),
    ]
}

fn exception(e: &ExceptionRecord, version: i64) -> Vec<Mutation> {
    vec![
        Mutation::Exception {
            row: ExceptionRow {
                exception_id: e.exception_id.clone(),
                day: day_of(e.raised_at),
                raised_at: e.raised_at,
                order_id: e.order_id.clone(),
                shipment_id: e.shipment_id.clone(),
                stage: e.stage.clone(),
                code: e.code.clone(),
                reason: e.reason.clone(),
                action: e.action.clone(),
                source_topic: e.source_topic.clone(),
                source_partition: e.source_partition,
                source_offset: e.source_offset,
            },
            version,
        },
        history(
            &e.order_id,
            e.raised_at,
            &e.event_id,
            &e.stage,
            "EXCEPTION",
            format!("{}: {} ({})", e.code, e.reason, e.action),
        ),
    ]
}

/// The stages whose exceptions come with a dead letter of the same record
/// (see `conveyor_processors::exceptions`): their `Processing` dead letters
/// are the exception's twin, already in the queue.
const RAISE_EXCEPTIONS: &[&str] = &["label", "syncback"];

/// A dead letter, in the exceptions queue: `dlq:<its event id>`, its
/// stage, `dlq_<kind>` and reason, what to do, and where the record is
/// (a retry re-publishes it from there). The order is the record's key,
/// when it has one.
fn dead_letter(d: &DlqRecord, version: i64) -> Vec<Mutation> {
    if d.error_kind == ErrorKind::Processing && RAISE_EXCEPTIONS.contains(&d.stage.as_str()) {
        return vec![];
    }
    let action = match d.error_kind {
        ErrorKind::Decode | ErrorKind::UnknownSchema => {
            "The record could not be read (its bytes or its schema): fix the producer or register the schema, then retry (re-publishes the original) or mark resolved."
        }
        ErrorKind::Validation => {
            "The record broke a rule (see the reason): fix the data at its source or the mapping, then retry (re-publishes the original) or mark resolved."
        }
        ErrorKind::Processing => {
            "The stage could not process it (see the reason): fix the cause, then retry (re-publishes the original) or mark resolved."
        }
    };
    let raised_at = d.source_timestamp.unwrap_or(0);
    vec![Mutation::Exception {
        row: ExceptionRow {
            exception_id: format!("dlq:{}", d.event_id),
            day: day_of(raised_at),
            raised_at,
            order_id: d
                .original_key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            shipment_id: None,
            stage: d.stage.clone(),
            code: format!("dlq_{}", name(&d.error_kind).to_ascii_lowercase()),
            reason: d.reason.clone(),
            action: action.to_string(),
            source_topic: d.source_topic.clone(),
            source_partition: d.source_partition,
            source_offset: d.source_offset,
        },
        version,
    }]
}

fn action(e: &OperatorAction, version: i64) -> Vec<Mutation> {
    let (st, verb) = match e.kind {
        ActionKind::Retry => (state::RETRIED, "retried"),
        ActionKind::Cancel => (state::CANCELLED, "cancelled"),
        ActionKind::Resolve => (state::RESOLVED, "resolved"),
    };
    vec![
        Mutation::Action(ActionRow {
            action_id: e.action_id.clone(),
            exception_id: e.exception_id.clone(),
            order_id: e.order_id.clone(),
            shipment_id: e.shipment_id.clone(),
            kind: e.kind.as_str().to_string(),
            actor: e.actor.clone(),
            role: e.role.clone(),
            reason: e.reason.clone(),
            detail: e.detail.clone(),
            at: e.at,
            day: day_of(e.at),
        }),
        Mutation::ExceptionState {
            exception_id: e.exception_id.clone(),
            state: ExceptionState {
                state: st.to_string(),
                actor: e.actor.clone(),
                at: e.at,
                reason: e.reason.clone(),
                action_id: e.action_id.clone(),
            },
            version,
        },
        history(
            &e.order_id,
            e.at,
            &e.event_id,
            "console",
            e.kind.as_str(),
            format!("{} ({}) {verb}: {}", e.actor, e.role, e.reason),
        ),
    ]
}

fn alert(e: &InventoryAlert, version: i64) -> Vec<Mutation> {
    vec![Mutation::Alert {
        row: AlertRow {
            sku: e.sku.clone(),
            warehouse_id: e
                .warehouse_id
                .clone()
                .unwrap_or_else(|| ALL_WAREHOUSES.to_string()),
            kind: name(&e.kind),
            available: e.available,
            reorder_point: e.reorder_point,
            occurred_at: e.occurred_at,
        },
        version,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_one_text_whatever_their_scale() {
        use std::str::FromStr;
        let a = |s: &str| amount(&rust_decimal::Decimal::from_str(s).unwrap());
        assert_eq!(a("150.0500"), "150.05");
        assert_eq!(a("150.05"), "150.05");
        assert_eq!(a("4"), "4.00");
        assert_eq!(a("0.0000"), "0.00");
        assert_eq!(a("0.0125"), "0.0125");
        assert_eq!(a("-3.1000"), "-3.10");
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_737_600_000), "2026-11-27");
        assert_eq!(day_of(1_795_737_600_000 - 1), "2026-11-26");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn search_keys_ignore_case_and_a_leading_hash() {
        assert_eq!(number_key(" #AB-1001 "), "ab-1001");
        assert_eq!(number_key("ab-1001"), "ab-1001");
        assert_eq!(number_key("# 1001"), "1001");
        assert_eq!(number_key("#"), "");
        assert_eq!(email_key(" Jane.Doe@Example.COM"), "jane.doe@example.com");
        let lines: Vec<LineRow> = ["B", "A", "B"]
            .iter()
            .enumerate()
            .map(|(i, sku)| LineRow {
                line_id: i.to_string(),
                sku: sku.to_string(),
                name: String::new(),
                quantity: 1,
                unit_price: "1.00".into(),
                total: "1.00".into(),
            })
            .collect();
        assert_eq!(line_skus(&lines), ["A", "B"]);
    }

    #[test]
    fn an_action_is_an_audit_entry_a_state_and_a_history_entry() {
        let a = conveyor_schemas::samples::operator_action(0, 1_795_737_600_000);
        assert_eq!(a.kind, ActionKind::Retry);
        let m = mutations(&SinkEvent::Action(a.clone()));
        assert_eq!(m.len(), 3);
        let Mutation::Action(row) = &m[0] else {
            panic!("{m:?}")
        };
        assert_eq!(
            (row.kind.as_str(), row.day.as_str(), row.at),
            ("RETRY", "2026-11-27", a.at)
        );
        let Mutation::ExceptionState {
            exception_id,
            state: st,
            version,
        } = &m[1]
        else {
            panic!("{m:?}")
        };
        assert_eq!(exception_id, &a.exception_id);
        assert_eq!(st.state, state::RETRIED);
        assert_eq!(*version, crate::event::version(a.at, &a.event_id));
        let Mutation::History(h) = &m[2] else {
            panic!("{m:?}")
        };
        assert_eq!(h.stage, "console");
        assert_eq!(h.status, "RETRY");
        assert_eq!(
            h.detail,
            "alice (operator) retried: customer confirmed the address by phone"
        );
        assert_eq!(h.event_id, a.action_id, "keyed by the action");
    }

    #[test]
    fn an_alert_on_the_total_is_under_every_warehouse() {
        let mut a = conveyor_schemas::samples::inventory_alert(1, 0);
        a.warehouse_id = None;
        a.kind = conveyor_schemas::records::AlertKind::Recovered;
        let m = mutations(&SinkEvent::Alert(a));
        let [Mutation::Alert { row, .. }] = m.as_slice() else {
            panic!("{m:?}")
        };
        assert_eq!(
            (row.warehouse_id.as_str(), row.kind.as_str()),
            (ALL_WAREHOUSES, RECOVERED)
        );
    }

    #[test]
    fn stages_of_the_same_millisecond_order_as_the_pipeline() {
        let v = |rank| status_version(1_000, rank, "x/0");
        assert!(v(1) < v(2) && v(2) < v(3) && v(3) < v(4) && v(4) < v(5) && v(5) < v(9));
        assert!(
            status_version(1_001, 1, "x/0") > v(9),
            "a later event wins over any stage"
        );
    }
}

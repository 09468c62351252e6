//! Sink records -> rows of the fact tables (deploy/clickhouse/001_facts.sql).
//! Pure: the same events give the same rows, in the same order.
//!
//! Amounts are `Decimal(38, 4)` (unscaled `i128`), times `DateTime64(3)`
//! (UTC millis), versions [`crate::event::version`]. No PII reaches a row.

use clickhouse::Row;
use conveyor_schemas::records::{
    AllocationResult, DlqRecord, ExceptionRecord, InventoryAlert, InventoryEvent, LabeledShipment,
    OrderEvent, OrderEventKind, PlannedShipment, StockMovement, SyncedShipment,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::event::{version, with_generation, Located, SinkEvent};

/// An amount as the unscaled value of `Decimal(38, 4)` (rounded half to
/// even past 4 decimals; the wire format never has more).
pub fn dec4(d: &Decimal) -> i128 {
    let r = d.round_dp(4);
    r.mantissa() * 10i128.pow(4 - r.scale())
}

/// An enum's wire name (`SCREAMING_SNAKE_CASE`).
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn ver(ms: i64, event_id: &str) -> u64 {
    version(ms, event_id) as u64
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub channel: String,
    pub external_id: String,
    pub external_number: String,
    pub event_kind: String,
    pub channel_status: String,
    pub priority: String,
    pub currency: String,
    pub customer_id: String,
    pub ship_country: String,
    pub ship_region: String,
    pub ship_postal_code: String,
    pub fulfilled_by_channel: bool,
    pub cancelled: bool,
    pub cancel_reason: String,
    pub subtotal: i128,
    pub discount: i128,
    pub shipping: i128,
    pub tax: i128,
    pub total: i128,
    #[serde(rename = "lines.line_id")]
    pub line_ids: Vec<String>,
    #[serde(rename = "lines.sku")]
    pub line_skus: Vec<String>,
    #[serde(rename = "lines.quantity")]
    pub line_quantities: Vec<i32>,
    #[serde(rename = "lines.unit_price")]
    pub line_unit_prices: Vec<i128>,
    #[serde(rename = "lines.discount")]
    pub line_discounts: Vec<i128>,
    #[serde(rename = "lines.tax")]
    pub line_taxes: Vec<i128>,
    #[serde(rename = "lines.revenue")]
    pub line_revenues: Vec<i128>,
    pub order_time: i64,
    pub updated_at: i64,
    pub deliver_by: Option<i64>,
    pub event_id: String,
    pub version: u64,
}

impl OrderRow {
    pub fn from_event(e: &OrderEvent) -> Self {
        let o = &e.order;
        let a = &o.shipping_address;
        let lines = &o.lines;
        OrderRow {
            order_id: e.order_id.clone(),
            channel: o.channel.clone(),
            external_id: o.external_id.clone(),
            external_number: o.external_number.clone().unwrap_or_default(),
            event_kind: name(&e.kind),
            channel_status: name(&o.status),
            priority: name(&o.priority),
            currency: o.currency.clone(),
            customer_id: o.customer.customer_id.clone().unwrap_or_default(),
            ship_country: a.country.clone(),
            ship_region: a.region.clone().unwrap_or_default(),
            ship_postal_code: a.postal_code.clone(),
            fulfilled_by_channel: o.fulfilled_by_channel,
            cancelled: e.kind == OrderEventKind::Cancelled || e.cancellation.is_some(),
            cancel_reason: e
                .cancellation
                .as_ref()
                .map(|c| c.reason.clone())
                .unwrap_or_default(),
            subtotal: dec4(&o.totals.subtotal.amount),
            discount: dec4(&o.totals.discount.amount),
            shipping: dec4(&o.totals.shipping.amount),
            tax: dec4(&o.totals.tax.amount),
            total: dec4(&o.totals.total.amount),
            line_ids: lines.iter().map(|l| l.line_id.clone()).collect(),
            line_skus: lines.iter().map(|l| l.sku.clone()).collect(),
            line_quantities: lines.iter().map(|l| l.quantity).collect(),
            line_unit_prices: lines.iter().map(|l| dec4(&l.unit_price.amount)).collect(),
            line_discounts: lines.iter().map(|l| dec4(&l.discount.amount)).collect(),
            line_taxes: lines.iter().map(|l| dec4(&l.tax.amount)).collect(),
            line_revenues: lines.iter().map(|l| dec4(&l.total.amount)).collect(),
            order_time: o.created_at,
            updated_at: o.updated_at,
            deliver_by: o.deliver_by,
            event_id: e.event_id.clone(),
            version: ver(e.occurred_at, &e.event_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct AllocationRow {
    pub order_id: String,
    pub status: String,
    pub policy: String,
    pub config_version: String,
    pub warehouses: Vec<String>,
    #[serde(rename = "allocated.line_id")]
    pub allocated_line_ids: Vec<String>,
    #[serde(rename = "allocated.sku")]
    pub allocated_skus: Vec<String>,
    #[serde(rename = "allocated.warehouse_id")]
    pub allocated_warehouses: Vec<String>,
    #[serde(rename = "allocated.quantity")]
    pub allocated_quantities: Vec<i32>,
    #[serde(rename = "backordered.line_id")]
    pub backordered_line_ids: Vec<String>,
    #[serde(rename = "backordered.sku")]
    pub backordered_skus: Vec<String>,
    #[serde(rename = "backordered.quantity")]
    pub backordered_quantities: Vec<i32>,
    pub order_version: i64,
    pub decided_at: i64,
    pub event_id: String,
    pub version: u64,
}

impl AllocationRow {
    pub fn from_event(e: &AllocationResult) -> Self {
        let mut row = AllocationRow {
            order_id: e.order_id.clone(),
            status: name(&e.status),
            policy: e.policy.clone(),
            config_version: e.config_version.clone(),
            warehouses: e
                .allocations
                .iter()
                .map(|w| w.warehouse_id.clone())
                .collect(),
            allocated_line_ids: vec![],
            allocated_skus: vec![],
            allocated_warehouses: vec![],
            allocated_quantities: vec![],
            backordered_line_ids: e.backordered.iter().map(|l| l.line_id.clone()).collect(),
            backordered_skus: e.backordered.iter().map(|l| l.sku.clone()).collect(),
            backordered_quantities: e.backordered.iter().map(|l| l.quantity).collect(),
            order_version: e.order_version,
            decided_at: e.decided_at,
            event_id: e.event_id.clone(),
            version: ver(e.decided_at, &e.event_id),
        };
        for w in &e.allocations {
            for l in &w.lines {
                row.allocated_line_ids.push(l.line_id.clone());
                row.allocated_skus.push(l.sku.clone());
                row.allocated_warehouses.push(w.warehouse_id.clone());
                row.allocated_quantities.push(l.quantity);
            }
        }
        row
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct PlanRow {
    pub shipment_id: String,
    pub order_id: String,
    pub status: String,
    pub warehouse_id: String,
    pub carrier: String,
    pub service: String,
    pub zone: String,
    pub box_type: String,
    pub weight_grams: i32,
    pub units: i32,
    pub rate: i128,
    pub currency: String,
    pub meets_sla: bool,
    pub ship_to_country: String,
    pub ordered_at: i64,
    pub ship_by: Option<i64>,
    pub estimated_delivery: Option<i64>,
    pub planned_at: i64,
    pub config_version: String,
    pub event_id: String,
    pub version: u64,
}

impl PlanRow {
    pub fn from_event(e: &PlannedShipment) -> Self {
        PlanRow {
            shipment_id: e.shipment_id.clone(),
            order_id: e.order_id.clone(),
            status: name(&e.status),
            warehouse_id: e.warehouse_id.clone(),
            carrier: e.carrier.clone(),
            service: e.service.clone(),
            zone: e.zone.clone().unwrap_or_default(),
            box_type: e.parcel.box_type.clone(),
            weight_grams: e.parcel.weight_grams,
            units: e.lines.iter().map(|l| l.quantity).sum(),
            rate: dec4(&e.rate.amount),
            currency: e.rate.currency.as_str().to_string(),
            meets_sla: e.meets_sla,
            ship_to_country: e.ship_to.country.clone(),
            // A shipment's order time never changes: its partition key.
            ordered_at: e.ordered_at.unwrap_or(e.planned_at),
            ship_by: e.ship_by,
            estimated_delivery: e.estimated_delivery,
            planned_at: e.planned_at,
            config_version: e.config_version.clone(),
            event_id: e.event_id.clone(),
            version: ver(e.planned_at, &e.event_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct LabelRow {
    pub shipment_id: String,
    pub order_id: String,
    pub status: String,
    pub carrier: String,
    pub service: String,
    pub tracking_number: String,
    pub label_cost: i128,
    pub currency: String,
    pub units: i32,
    pub labeled_at: i64,
    pub event_id: String,
    pub version: u64,
}

impl LabelRow {
    pub fn from_event(e: &LabeledShipment) -> Self {
        LabelRow {
            shipment_id: e.shipment_id.clone(),
            order_id: e.order_id.clone(),
            status: name(&e.status),
            carrier: e.carrier.clone(),
            service: e.service.clone(),
            tracking_number: e.tracking_number.clone(),
            label_cost: dec4(&e.label_cost.amount),
            currency: e.label_cost.currency.as_str().to_string(),
            units: e.lines.iter().map(|l| l.quantity).sum(),
            labeled_at: e.labeled_at,
            event_id: e.event_id.clone(),
            version: ver(e.labeled_at, &e.event_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SyncRow {
    pub shipment_id: String,
    pub order_id: String,
    pub channel: String,
    pub outcome: String,
    pub carrier: String,
    pub synced_at: i64,
    pub event_id: String,
    pub version: u64,
}

impl SyncRow {
    pub fn from_event(e: &SyncedShipment) -> Self {
        SyncRow {
            shipment_id: e.shipment_id.clone(),
            order_id: e.order_id.clone(),
            channel: e.channel.clone(),
            outcome: name(&e.outcome),
            carrier: e.carrier.clone(),
            synced_at: e.synced_at,
            event_id: e.event_id.clone(),
            version: ver(e.synced_at, &e.event_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct MovementRow {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub kind: String,
    pub quantity: i32,
    pub order_id: String,
    pub on_hand: i32,
    pub reserved: i32,
    pub held: i32,
    pub available: i32,
    pub seq: i64,
    pub occurred_at: i64,
}

impl MovementRow {
    pub fn from_event(e: &StockMovement) -> Self {
        MovementRow {
            event_id: e.event_id.clone(),
            sku: e.sku.clone(),
            warehouse_id: e.warehouse_id.clone(),
            kind: name(&e.kind),
            quantity: e.quantity,
            order_id: e.order_id.clone().unwrap_or_default(),
            on_hand: e.on_hand,
            reserved: e.reserved,
            held: e.held,
            available: e.available,
            seq: e.seq,
            occurred_at: e.occurred_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct InventoryEventRow {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub kind: String,
    pub quantity: i32,
    pub to_warehouse_id: String,
    pub reason: String,
    pub reference: String,
    pub occurred_at: i64,
}

impl InventoryEventRow {
    pub fn from_event(e: &InventoryEvent) -> Self {
        InventoryEventRow {
            event_id: e.event_id.clone(),
            sku: e.sku.clone(),
            warehouse_id: e.warehouse_id.clone(),
            kind: name(&e.kind),
            quantity: e.quantity,
            to_warehouse_id: e.to_warehouse_id.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            reference: e.reference.clone().unwrap_or_default(),
            occurred_at: e.occurred_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct AlertRow {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub kind: String,
    pub available: i32,
    pub reorder_point: i32,
    pub occurred_at: i64,
}

impl AlertRow {
    pub fn from_event(e: &InventoryAlert) -> Self {
        AlertRow {
            event_id: e.event_id.clone(),
            sku: e.sku.clone(),
            warehouse_id: e.warehouse_id.clone().unwrap_or_default(),
            kind: name(&e.kind),
            available: e.available,
            reorder_point: e.reorder_point,
            occurred_at: e.occurred_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct DlqRow {
    pub event_id: String,
    pub stage: String,
    pub error_kind: String,
    pub reason: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub source_time: i64,
}

impl DlqRow {
    pub fn from_event(e: &DlqRecord) -> Self {
        DlqRow {
            event_id: e.event_id.clone(),
            stage: e.stage.clone(),
            error_kind: name(&e.error_kind),
            reason: e.reason.clone(),
            source_topic: e.source_topic.clone(),
            source_partition: e.source_partition,
            source_offset: e.source_offset,
            source_time: e.source_timestamp.unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ExceptionRow {
    pub exception_id: String,
    pub order_id: String,
    pub shipment_id: String,
    pub stage: String,
    pub code: String,
    pub reason: String,
    pub action: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub raised_at: i64,
    pub event_id: String,
    pub version: u64,
}

impl ExceptionRow {
    pub fn from_event(e: &ExceptionRecord) -> Self {
        ExceptionRow {
            exception_id: e.exception_id.clone(),
            order_id: e.order_id.clone(),
            shipment_id: e.shipment_id.clone().unwrap_or_default(),
            stage: e.stage.clone(),
            code: e.code.clone(),
            reason: e.reason.clone(),
            action: e.action.clone(),
            source_topic: e.source_topic.clone(),
            source_partition: e.source_partition,
            source_offset: e.source_offset,
            raised_at: e.raised_at,
            event_id: e.event_id.clone(),
            version: ver(e.raised_at, &e.event_id),
        }
    }
}

/// A batch's rows, per table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tables {
    pub orders: Vec<OrderRow>,
    pub allocations: Vec<AllocationRow>,
    pub shipment_plans: Vec<PlanRow>,
    pub labels: Vec<LabelRow>,
    pub syncs: Vec<SyncRow>,
    pub inventory_movements: Vec<MovementRow>,
    pub inventory_events: Vec<InventoryEventRow>,
    pub inventory_alerts: Vec<AlertRow>,
    pub dlq: Vec<DlqRow>,
    pub exceptions: Vec<ExceptionRow>,
}

impl Tables {
    pub fn from_events(batch: &[Located]) -> Self {
        let mut t = Tables::default();
        for l in batch {
            t.push_generation(&l.event, l.generation);
        }
        t
    }

    pub fn push(&mut self, event: &SinkEvent) {
        self.push_generation(event, 0)
    }

    /// Adds the row of `event`, written by replay `generation` (see
    /// [`crate::event::with_generation`]). Facts keyed by their event id
    /// (movements, feed events, alerts, DLQ records) have no version: a
    /// replay writes them again identical.
    pub fn push_generation(&mut self, event: &SinkEvent, generation: u16) {
        fn raise<R>(mut row: R, version: impl FnOnce(&mut R) -> &mut u64, g: u16) -> R {
            let v = version(&mut row);
            *v = with_generation(*v as i64, g) as u64;
            row
        }
        let g = generation;
        match event {
            SinkEvent::Order(e) => {
                self.orders
                    .push(raise(OrderRow::from_event(e), |r| &mut r.version, g))
            }
            SinkEvent::Allocation(e) => {
                self.allocations
                    .push(raise(AllocationRow::from_event(e), |r| &mut r.version, g))
            }
            SinkEvent::Planned(e) => {
                self.shipment_plans
                    .push(raise(PlanRow::from_event(e), |r| &mut r.version, g))
            }
            SinkEvent::Labeled(e) => {
                self.labels
                    .push(raise(LabelRow::from_event(e), |r| &mut r.version, g))
            }
            SinkEvent::Synced(e) => {
                self.syncs
                    .push(raise(SyncRow::from_event(e), |r| &mut r.version, g))
            }
            SinkEvent::Movement(e) => self.inventory_movements.push(MovementRow::from_event(e)),
            SinkEvent::Inventory(e) => self.inventory_events.push(InventoryEventRow::from_event(e)),
            SinkEvent::Alert(e) => self.inventory_alerts.push(AlertRow::from_event(e)),
            SinkEvent::Dlq(e) => self.dlq.push(DlqRow::from_event(e)),
            SinkEvent::Exception(e) => {
                self.exceptions
                    .push(raise(ExceptionRow::from_event(e), |r| &mut r.version, g))
            }
            // The operator console's actions are operational state (the
            // Scylla sink's); analytics has no table for them.
            SinkEvent::Action(_) => {}
        }
    }

    pub fn rows(&self) -> u64 {
        (self.orders.len()
            + self.allocations.len()
            + self.shipment_plans.len()
            + self.labels.len()
            + self.syncs.len()
            + self.inventory_movements.len()
            + self.inventory_events.len()
            + self.inventory_alerts.len()
            + self.dlq.len()
            + self.exceptions.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_keep_four_decimals_exactly() {
        assert_eq!(dec4(&Decimal::from_str("19.99").unwrap()), 199_900);
        assert_eq!(dec4(&Decimal::from_str("-0.0001").unwrap()), -1);
        assert_eq!(dec4(&Decimal::from_str("3").unwrap()), 30_000);
        assert_eq!(dec4(&Decimal::from_str("1.00005").unwrap()), 10_000);
    }

    #[test]
    fn an_order_row_carries_no_pii() {
        let e = conveyor_schemas::samples::order_event(3, 1_700_000_000_000);
        let row = OrderRow::from_event(&e);
        let text = format!("{row:?}");
        let c = &e.order.customer;
        for pii in [Some(&c.name), c.email.as_ref(), c.phone.as_ref()]
            .into_iter()
            .flatten()
            .chain([
                &e.order.shipping_address.line1,
                &e.order.shipping_address.name,
            ])
        {
            assert!(
                !pii.is_empty() && !text.contains(pii.as_str()),
                "{pii} leaked into {text}"
            );
        }
        assert_eq!(row.line_ids.len(), e.order.lines.len());
        assert_eq!(row.version, version(e.occurred_at, &e.event_id) as u64);
    }

    #[test]
    fn an_operator_action_maps_to_no_rows() {
        let a = conveyor_schemas::samples::operator_action(1, 1_700_000_000_000);
        let batch = [Located::first_run(
            SinkEvent::Action(a),
            "operator.actions",
            0,
            0,
        )];
        assert_eq!(Tables::from_events(&batch).rows(), 0);
    }
}

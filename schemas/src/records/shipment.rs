//! Planned and labeled shipments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Address, Document, LineQty, Money};
use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlanStatus {
    /// To be labeled and shipped.
    #[default]
    Planned,
    /// Superseded by a later plan, or released with the order.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LabelStatus {
    /// Bought, good to ship.
    #[default]
    Labeled,
    /// Refunded after its plan was cancelled: not to be used.
    Voided,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub box_type: String,
    pub weight_grams: i32,
    pub length_mm: i32,
    pub width_mm: i32,
    pub height_mm: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateQuote {
    pub carrier: String,
    pub service: String,
    pub rate: Money,
    pub transit_days: i32,
    pub meets_sla: bool,
    pub rejected_because: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedShipment {
    pub event_id: String,
    pub shipment_id: String,
    pub order_id: String,
    pub warehouse_id: String,
    pub lines: Vec<LineQty>,
    pub ship_to: Address,
    pub parcel: Parcel,
    pub carrier: String,
    pub service: String,
    pub rate: Money,
    pub zone: Option<String>,
    pub ship_by: Option<i64>,
    pub estimated_delivery: Option<i64>,
    pub meets_sla: bool,
    pub alternatives: Vec<RateQuote>,
    pub config_version: String,
    pub planned_at: i64,
    pub order_number: Option<String>,
    pub ordered_at: Option<i64>,
    pub gift_message: Option<String>,
    pub line_names: BTreeMap<String, String>,
    pub bins: BTreeMap<String, String>,
    pub status: PlanStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabeledShipment {
    pub event_id: String,
    pub shipment_id: String,
    pub order_id: String,
    pub carrier: String,
    pub service: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub label_cost: Money,
    pub idempotency_key: String,
    pub label: Document,
    pub packing_slip: Document,
    pub combined: Option<Document>,
    pub labeled_at: i64,
    pub lines: Vec<LineQty>,
    pub status: LabelStatus,
}

avro_record!(Parcel {
    box_type,
    weight_grams,
    length_mm,
    width_mm,
    height_mm
});
avro_record!(RateQuote {
    carrier,
    service,
    rate,
    transit_days,
    meets_sla,
    rejected_because
});
avro_record!(PlannedShipment {
    event_id,
    shipment_id,
    order_id,
    warehouse_id,
    lines,
    ship_to,
    parcel,
    carrier,
    service,
    rate,
    zone,
    ship_by,
    estimated_delivery,
    meets_sla,
    alternatives,
    config_version,
    planned_at,
    order_number,
    ordered_at,
    gift_message,
    line_names,
    bins,
    status,
});
avro_record!(LabeledShipment {
    event_id,
    shipment_id,
    order_id,
    carrier,
    service,
    tracking_number,
    tracking_url,
    label_cost,
    idempotency_key,
    label,
    packing_slip,
    combined,
    labeled_at,
    lines,
    status,
});
avro_enum!(PlanStatus { Planned, Cancelled });
avro_enum!(LabelStatus { Labeled, Voided });

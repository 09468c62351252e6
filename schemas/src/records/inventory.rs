//! Inventory events, stock movements and alerts.

use serde::{Deserialize, Serialize};

use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InventoryEventKind {
    Restock,
    Adjustment,
    Count,
    Transfer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEvent {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub kind: InventoryEventKind,
    pub quantity: i32,
    pub to_warehouse_id: Option<String>,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MovementKind {
    Reserved,
    Released,
    Shipped,
    Received,
    Adjusted,
    Counted,
    TransferredOut,
    TransferredIn,
    /// Units promised to an order whose decision is pending.
    Held,
    /// A claim taken back because stock was lost under it.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockMovement {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub kind: MovementKind,
    pub quantity: i32,
    pub order_id: Option<String>,
    pub on_hand: i32,
    pub reserved: i32,
    pub available: i32,
    pub occurred_at: i64,
    pub held: i32,
    pub seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertKind {
    LowStock,
    OutOfStock,
    Recovered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryAlert {
    pub event_id: String,
    pub sku: String,
    pub warehouse_id: Option<String>,
    pub kind: AlertKind,
    pub available: i32,
    pub reorder_point: i32,
    pub occurred_at: i64,
}

avro_enum!(InventoryEventKind {
    Restock,
    Adjustment,
    Count,
    Transfer
});
avro_enum!(MovementKind {
    Reserved,
    Released,
    Shipped,
    Received,
    Adjusted,
    Counted,
    TransferredOut,
    TransferredIn,
    Held,
    Revoked
});
avro_enum!(AlertKind {
    LowStock,
    OutOfStock,
    Recovered
});
avro_record!(InventoryEvent {
    event_id,
    sku,
    warehouse_id,
    kind,
    quantity,
    to_warehouse_id,
    reason,
    reference,
    occurred_at
});
avro_record!(StockMovement {
    event_id,
    sku,
    warehouse_id,
    kind,
    quantity,
    order_id,
    on_hand,
    reserved,
    available,
    occurred_at,
    held,
    seq
});
avro_record!(InventoryAlert {
    event_id,
    sku,
    warehouse_id,
    kind,
    available,
    reorder_point,
    occurred_at
});

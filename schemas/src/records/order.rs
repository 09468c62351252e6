//! The canonical order and its events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Address, Money};
use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderEventKind {
    Created,
    Updated,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Open,
    OnHold,
    PartiallyFulfilled,
    Fulfilled,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Standard,
    Expedited,
    Overnight,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: String,
    pub order_id: String,
    pub kind: OrderEventKind,
    pub version: i64,
    pub occurred_at: i64,
    pub source_event_id: String,
    pub order: Order,
    pub cancellation: Option<Cancellation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub reason: String,
    pub cancelled_at: i64,
    pub restock: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub channel: String,
    pub external_id: String,
    pub external_number: Option<String>,
    pub status: OrderStatus,
    pub currency: String,
    pub customer: Customer,
    pub shipping_address: Address,
    pub billing_address: Option<Address>,
    pub lines: Vec<OrderLine>,
    pub totals: Totals,
    pub priority: Priority,
    pub shipping_method: Option<String>,
    pub ship_by: Option<i64>,
    pub deliver_by: Option<i64>,
    pub fulfilled_by_channel: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub tags: Vec<String>,
    pub note: Option<String>,
    pub gift_message: Option<String>,
    pub extras: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub line_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: Money,
    pub discount: Money,
    pub tax: Money,
    pub total: Money,
    pub requires_shipping: bool,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

avro_enum!(OrderEventKind {
    Created,
    Updated,
    Cancelled
});
avro_enum!(OrderStatus {
    Pending,
    Open,
    OnHold,
    PartiallyFulfilled,
    Fulfilled,
    Cancelled
});
avro_enum!(Priority {
    Standard,
    Expedited,
    Overnight
});
avro_record!(OrderEvent {
    event_id,
    order_id,
    kind,
    version,
    occurred_at,
    source_event_id,
    order,
    cancellation
});
avro_record!(Cancellation {
    reason,
    cancelled_at,
    restock
});
avro_record!(Customer {
    customer_id,
    email,
    name,
    phone
});
avro_record!(Order {
    order_id,
    channel,
    external_id,
    external_number,
    status,
    currency,
    customer,
    shipping_address,
    billing_address,
    lines,
    totals,
    priority,
    shipping_method,
    ship_by,
    deliver_by,
    fulfilled_by_channel,
    created_at,
    updated_at,
    tags,
    note,
    gift_message,
    extras,
});
avro_record!(OrderLine {
    line_id,
    sku,
    name,
    quantity,
    unit_price,
    discount,
    tax,
    total,
    requires_shipping,
    properties
});
avro_record!(Totals {
    subtotal,
    discount,
    shipping,
    tax,
    total
});

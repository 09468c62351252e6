//! Allocation outcomes.

use serde::{Deserialize, Serialize};

use super::LineQty;
use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllocationStatus {
    Allocated,
    PartiallyAllocated,
    Backordered,
    Released,
    FulfilledByChannel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseAllocation {
    pub warehouse_id: String,
    pub lines: Vec<LineQty>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationResult {
    pub event_id: String,
    pub order_id: String,
    pub order_version: i64,
    pub status: AllocationStatus,
    pub allocations: Vec<WarehouseAllocation>,
    pub backordered: Vec<LineQty>,
    pub policy: String,
    pub config_version: String,
    pub decided_at: i64,
}

avro_enum!(AllocationStatus {
    Allocated,
    PartiallyAllocated,
    Backordered,
    Released,
    FulfilledByChannel
});
avro_record!(WarehouseAllocation {
    warehouse_id,
    lines
});
avro_record!(AllocationResult {
    event_id,
    order_id,
    order_version,
    status,
    allocations,
    backordered,
    policy,
    config_version,
    decided_at,
});

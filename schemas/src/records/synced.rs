//! Tracking pushed back to the sales channel (topic `shipments.synced`).

use serde::{Deserialize, Serialize};

use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncOutcome {
    /// This run told the channel.
    Confirmed,
    /// The channel had this tracking number already.
    AlreadyConfirmed,
    /// No channel API to tell, or sync-back is off for the channel.
    NotSynced,
    /// The label was voided after the channel was told; the channel's
    /// fulfillment was cancelled.
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedShipment {
    pub event_id: String,
    pub shipment_id: String,
    pub order_id: String,
    pub channel: String,
    pub external_order_id: String,
    pub carrier: String,
    pub tracking_number: String,
    pub outcome: SyncOutcome,
    pub channel_reference: Option<String>,
    pub note: Option<String>,
    pub synced_at: i64,
}

avro_enum!(SyncOutcome {
    Confirmed,
    AlreadyConfirmed,
    NotSynced,
    Withdrawn
});
avro_record!(SyncedShipment {
    event_id,
    shipment_id,
    order_id,
    channel,
    external_order_id,
    carrier,
    tracking_number,
    outcome,
    channel_reference,
    note,
    synced_at,
});

//! The raw envelope: a channel payload exactly as received.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::avro_bytes;
use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RawSource {
    Webhook,
    Poller,
    Import,
    Replay,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOrder {
    pub event_id: String,
    pub channel: String,
    pub external_order_id: String,
    pub external_order_number: Option<String>,
    pub source: RawSource,
    pub topic_hint: Option<String>,
    pub received_at: i64,
    pub content_type: String,
    #[serde(with = "avro_bytes")]
    pub payload: Vec<u8>,
    pub source_headers: BTreeMap<String, String>,
}

avro_enum!(RawSource {
    Webhook,
    Poller,
    Import,
    Replay
});
avro_record!(RawOrder {
    event_id,
    channel,
    external_order_id,
    external_order_number,
    source,
    topic_hint,
    received_at,
    content_type,
    payload as bytes,
    source_headers,
});

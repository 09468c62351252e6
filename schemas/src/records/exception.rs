//! Exceptions: failures an operator must act on (topic `exceptions`).

use serde::{Deserialize, Serialize};

use crate::wire::avro_record;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRecord {
    pub event_id: String,
    pub exception_id: String,
    pub order_id: String,
    pub shipment_id: Option<String>,
    pub stage: String,
    pub code: String,
    pub reason: String,
    pub action: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub raised_at: i64,
}

avro_record!(ExceptionRecord {
    event_id,
    exception_id,
    order_id,
    shipment_id,
    stage,
    code,
    reason,
    action,
    source_topic,
    source_partition,
    source_offset,
    raised_at,
});

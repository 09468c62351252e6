//! Dead-letter records.

use serde::{Deserialize, Serialize};

use super::{avro_bytes, avro_bytes_opt};
use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// Bytes that are not a valid record (bad magic byte, truncated, corrupt).
    Decode,
    /// A schema id the registry does not know.
    UnknownSchema,
    /// A well-formed record that breaks a business rule.
    Validation,
    /// The processor failed on it permanently.
    Processing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    #[serde(with = "avro_bytes")]
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqRecord {
    pub event_id: String,
    pub stage: String,
    pub error_kind: ErrorKind,
    pub reason: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub source_timestamp: Option<i64>,
    pub schema_id: Option<i32>,
    #[serde(with = "avro_bytes_opt")]
    pub original_key: Option<Vec<u8>>,
    #[serde(with = "avro_bytes_opt")]
    pub original_value: Option<Vec<u8>>,
    pub original_headers: Vec<Header>,
    pub attempts: i32,
}

avro_enum!(ErrorKind {
    Decode,
    UnknownSchema,
    Validation,
    Processing
});
avro_record!(Header { key, value as bytes });
avro_record!(DlqRecord {
    event_id,
    stage,
    error_kind,
    reason,
    source_topic,
    source_partition,
    source_offset,
    source_timestamp,
    schema_id,
    original_key as bytes_opt,
    original_value as bytes_opt,
    original_headers,
    attempts,
});

impl DlqRecord {
    /// The DLQ record for `rec`, which `stage` could not process. Its id is
    /// derived from the stage and the record's coordinates, so a
    /// re-processing after a crash dead-letters it under the same id.
    pub fn for_record(
        stage: &str,
        error_kind: ErrorKind,
        reason: impl Into<String>,
        rec: &conveyor_runtime::kafka::InRecord,
        schema_id: Option<u32>,
        attempts: i32,
    ) -> DlqRecord {
        DlqRecord {
            event_id: format!("{stage}:{}:{}:{}", rec.topic, rec.partition, rec.offset),
            stage: stage.to_string(),
            error_kind,
            reason: reason.into(),
            source_topic: rec.topic.clone(),
            source_partition: rec.partition,
            source_offset: rec.offset,
            source_timestamp: rec.timestamp_ms,
            schema_id: schema_id.and_then(|id| i32::try_from(id).ok()),
            original_key: rec.key.clone(),
            original_value: rec.payload.clone(),
            original_headers: rec
                .headers
                .iter()
                .map(|(key, value)| Header {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            attempts,
        }
    }

    /// The DLQ record for a record that failed to decode.
    pub fn for_decode_error(
        stage: &str,
        err: &crate::codec::DecodeError,
        rec: &conveyor_runtime::kafka::InRecord,
    ) -> DlqRecord {
        Self::for_record(
            stage,
            err.dlq_kind(),
            err.to_string(),
            rec,
            err.schema_id,
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Source};
    use conveyor_runtime::kafka::InRecord;

    #[tokio::test]
    async fn decode_failures_become_dlq_records_with_coordinates() {
        let rec = InRecord {
            topic: "orders.normalized".into(),
            partition: 4,
            offset: 1234,
            key: Some(b"shopify:1".to_vec()),
            payload: Some(vec![9, 9, 9]),
            headers: vec![("channel".into(), b"shopify".to_vec())],
            timestamp_ms: Some(1_763_800_000_000),
        };
        // No registry is needed to reject a bad magic byte.
        let codec = Codec::new("http://127.0.0.1:1").unwrap();
        let at = Source {
            topic: &rec.topic,
            partition: rec.partition,
            offset: rec.offset,
        };
        let err = codec
            .decode::<crate::records::OrderEvent>(rec.payload.as_deref(), at)
            .await
            .unwrap_err();
        let dlq = DlqRecord::for_decode_error("allocate", &err, &rec);
        assert_eq!(dlq.event_id, "allocate:orders.normalized:4:1234");
        assert_eq!(dlq.error_kind, ErrorKind::Decode);
        assert!(
            dlq.reason.contains("orders.normalized[4]@1234"),
            "{}",
            dlq.reason
        );
        assert_eq!(dlq.original_value.as_deref(), Some(&[9u8, 9, 9][..]));
        assert_eq!(dlq.original_headers[0].key, "channel");
        assert_eq!(dlq.source_timestamp, Some(1_763_800_000_000));
    }
}

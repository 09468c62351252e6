//! Dead-letter records.

use serde::{Deserialize, Serialize};

use super::{avro_bytes, avro_bytes_opt};

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

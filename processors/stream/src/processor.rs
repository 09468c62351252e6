//! The processor API: a processor is a function of (input record, keyed
//! state) to output records, in the manner of Kafka Streams' Processor API.
//!
//! The contract a processor keeps, because effectively-once depends on it
//! (see the crate docs): its outputs and state writes are a function of the
//! input record, the state it reads and its own configuration. No wall
//! clock, no random numbers, no lookups outside the state. Output event ids
//! derive from the input's id and the output's index ([`event_id`]), never
//! from offsets at which outputs land. The runtime stamps every output with
//! the input record's timestamp, so a re-emission is byte-identical.

use std::future::Future;
use std::pin::Pin;

use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::codec::{Codec, DecodeError, EncodeError, Source};
use conveyor_schemas::records::Record;

use crate::state::{Committed, State, StateError};

/// What a processor consumes: decoded by the runtime before `process`, so a
/// record that does not decode goes to the DLQ without reaching it.
pub trait Input: Sized + Send + Sync + 'static {
    fn decode(
        codec: &Codec,
        rec: &InRecord,
    ) -> impl Future<Output = Result<Self, DecodeError>> + Send;
}

/// The record as received (channel payloads, test fixtures): the processor
/// reads `rec.payload` itself and rejects what it cannot parse with
/// [`ProcessError::Invalid`].
#[derive(Debug, Clone, Copy)]
pub struct Raw;

impl Input for Raw {
    async fn decode(_: &Codec, _: &InRecord) -> Result<Self, DecodeError> {
        Ok(Raw)
    }
}

/// An Avro record in the Confluent wire format, decoded with the registry.
#[derive(Debug, Clone)]
pub struct Avro<T>(pub T);

impl<T: Record> Input for Avro<T> {
    async fn decode(codec: &Codec, rec: &InRecord) -> Result<Self, DecodeError> {
        let at = Source {
            topic: &rec.topic,
            partition: rec.partition,
            offset: rec.offset,
        };
        codec
            .decode::<T>(rec.payload.as_deref(), at)
            .await
            .map(Avro)
    }
}

/// A value the runtime encodes for its topic before producing it.
pub trait Encode: Send + Sync {
    fn encode<'a>(
        &'a self,
        codec: &'a Codec,
        topic: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, EncodeError>> + Send + 'a>>;
}

impl<T: Record> Encode for T {
    fn encode<'a>(
        &'a self,
        codec: &'a Codec,
        topic: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, EncodeError>> + Send + 'a>> {
        Box::pin(codec.encode(topic, self))
    }
}

/// An output value.
pub enum Payload {
    /// Already encoded (JSON, raw pass-through).
    Bytes(Vec<u8>),
    /// An Avro record, encoded by the runtime (subject `<topic>-value`).
    Avro(Box<dyn Encode>),
    /// A tombstone (deletes the key on a compacted topic).
    Tombstone,
}

/// One record a processor emits. The topic is a resolved topic name; the
/// partition follows the key (so one key stays in order, G5).
pub struct Output {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Payload,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Output {
    pub fn bytes(topic: impl Into<String>, key: impl Into<Vec<u8>>, value: Vec<u8>) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
            payload: Payload::Bytes(value),
            headers: Vec::new(),
        }
    }

    pub fn avro<T: Record>(topic: impl Into<String>, key: impl Into<Vec<u8>>, value: T) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
            payload: Payload::Avro(Box::new(value)),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
}

/// The header every output carries with its deterministic event id, so a
/// consumer can drop duplicates without decoding.
pub const EVENT_ID_HEADER: &str = "event_id";

/// The id of the `index`-th output derived from the input event `input_id`.
pub fn event_id(input_id: &str, index: usize) -> String {
    format!("{input_id}/{index}")
}

/// The id of a record that has none of its own (a raw record): its
/// coordinates, which a re-delivery repeats.
pub fn source_id(rec: &InRecord) -> String {
    format!("{}:{}:{}", rec.topic, rec.partition, rec.offset)
}

/// Why a processor did not handle a record.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The record is well-formed but not acceptable (missing field, unknown
    /// SKU...): to the DLQ as VALIDATION.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// The processor cannot handle this record, ever: to the DLQ as
    /// PROCESSING.
    #[error("processing failed: {0}")]
    Failed(String),
    /// Something outside the record failed and may recover: the runtime
    /// backs off and retries the same record, never skipping it.
    #[error("retryable failure: {0}")]
    Retry(String),
    /// The local state failed: the job stops (a disk problem is not fixed by
    /// skipping records).
    #[error(transparent)]
    State(#[from] StateError),
}

/// A stream processor. One instance handles every partition the job is
/// assigned; per-partition state lives in [`State`], never in `self`.
/// `Sync` so that a running job can be spawned onto any runtime thread.
pub trait Processor: Send + Sync + 'static {
    type In: Input;

    /// Handles one record: reads and writes `state`, pushes outputs to `out`.
    /// On error nothing it wrote or pushed is kept.
    fn process(
        &mut self,
        input: &Self::In,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError>;

    /// Whether [`Processor::prepare`] does anything: the runtime then
    /// decodes a batch in full before processing it.
    const PREPARES: bool = false;

    /// Called once per batch, before `process` sees any of it, with the
    /// inputs that decoded and are not already applied, in batch order, and
    /// the state as committed before the batch. For slow work that does not
    /// depend on the batch's order (a label purchase that is idempotent at
    /// the API): the processor starts it for many records at once, keeps
    /// the results, and `process` takes them instead of calling out one
    /// record at a time.
    ///
    /// Only ever a cache: `process` must give the same outputs and writes
    /// whether or not `prepare` ran, or ran for a record (a failed batch is
    /// retried in full, prepare included; a record may be dropped as a
    /// duplicate after it was prepared). Anything it keeps for a record
    /// `process` did not take must be dropped by the next `prepare`.
    fn prepare<'a>(
        &'a mut self,
        batch: &'a [(&'a Self::In, &'a InRecord)],
        state: Committed<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let _ = (batch, state);
        Box::pin(async {})
    }
}

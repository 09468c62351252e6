//! Encode and decode records in the Confluent wire format: one magic byte
//! (0), the schema id (4 bytes, big-endian), then the Avro binary datum.
//!
//! The registry is reached through `schema_registry_converter`: a subject's
//! schema is registered (or found) once per (topic, type) with its
//! `post_schema`, and a writer schema is fetched once per id by its cached
//! `AvroDecoder`, so the hot path makes no HTTP call. On top of that this codec
//! keeps, per (schema id, Rust type), a ready datum reader, and per (topic,
//! type) a ready datum writer, so encoding and decoding a record is pure CPU.
//!
//! Encoding always writes with the schema compiled into this binary
//! (registered under `<topic>-value`, TopicNameStrategy; the registry
//! refuses it with 409 if it is incompatible). Decoding reads whatever
//! schema the record was written with: when it is the same (same normalized
//! JSON, see [`crate::contracts::normalized_json`]) as
//! the type's own, bytes go straight into the Rust type; otherwise the datum
//! is resolved with Avro's schema-resolution rules (new fields take their
//! defaults, unknown fields are skipped), so consumers and producers can be
//! upgraded in either order within BACKWARD/FORWARD compatibility.
//!
//! Bad input never panics: it is a [`DecodeError`] naming the topic,
//! partition, offset and schema id, which says whether to retry (the
//! registry failed or is unreachable) or to dead-letter the record (bad
//! bytes, or a schema id the registry answers 404 for;
//! [`DecodeError::dlq_kind`]).

use std::any::TypeId;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::Schema;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use crate::records::{ErrorKind, Record};

/// The wire format's first byte.
pub const MAGIC: u8 = 0;
/// Magic byte + schema id.
pub const HEADER_LEN: usize = 5;

/// Where a record came from, for error messages and DLQ records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// No value, fewer than 5 bytes, or a magic byte other than 0.
    Framing,
    /// The registry does not know the schema id.
    UnknownSchema,
    /// The registry failed or could not be reached; retry.
    Registry,
    /// The bytes do not decode with the writer schema, or do not fit the
    /// type.
    Data,
}

/// A record that could not be decoded, with its coordinates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {topic}[{partition}]@{offset}{}: {message}", .schema_id.map(|i| format!(" (schema id {i})")).unwrap_or_default())]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub schema_id: Option<u32>,
    pub message: String,
}

impl DecodeError {
    fn new(
        kind: DecodeErrorKind,
        at: Source<'_>,
        schema_id: Option<u32>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            topic: at.topic.to_string(),
            partition: at.partition,
            offset: at.offset,
            schema_id,
            message: message.into(),
        }
    }

    /// Worth retrying later (the record may be fine).
    pub fn is_retryable(&self) -> bool {
        self.kind == DecodeErrorKind::Registry
    }

    /// The DLQ error kind for a non-retryable failure.
    pub fn dlq_kind(&self) -> ErrorKind {
        match self.kind {
            DecodeErrorKind::UnknownSchema => ErrorKind::UnknownSchema,
            _ => ErrorKind::Decode,
        }
    }
}

/// A record that could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("schema registry, subject {subject}: {message}")]
    Registry {
        subject: String,
        message: String,
        retryable: bool,
    },
    #[error("{record} does not fit its schema: {message}")]
    Data {
        record: &'static str,
        message: String,
    },
}

impl EncodeError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            EncodeError::Registry {
                retryable: true,
                ..
            }
        )
    }
}

/// A writer schema: parsed (leaked once per id) and its normalized text.
type WriterSchema = (&'static Schema, Arc<str>);

/// The writers of one type, by topic.
type TopicWriters = Vec<(String, Arc<Writer>)>;

struct Writer {
    id: u32,
    /// Size of the last record written: the next buffer's capacity, so a
    /// record is written without reallocating.
    size_hint: std::sync::atomic::AtomicUsize,
}

enum Reader {
    /// The writer schema is the type's own: decode with [`AvroBinary`].
    Direct,
    /// Another version: decode with the writer schema, resolve to the type's.
    Resolving(GenericDatumReader<'static>),
}

/// Encoder/decoder for every [`Record`] type; share one per process.
pub struct Codec {
    settings: SrSettings,
    decoder: AvroDecoder,
    /// Per type, the writers by topic (a type is written to few topics).
    writers: RwLock<HashMap<TypeId, TopicWriters, KeyHasher>>,
    readers: RwLock<HashMap<(u32, TypeId), Arc<Reader>, KeyHasher>>,
    /// Writer schemas by id, leaked once each (bounded by the number of
    /// schema ids a process ever sees) so datum readers can borrow them.
    writer_schemas: RwLock<HashMap<u32, WriterSchema>>,
}

impl Codec {
    /// A codec for the registry at `url`.
    pub fn new(url: &str) -> Result<Self, SRCError> {
        let settings = || {
            SrSettings::new_builder(url.trim_end_matches('/').to_string())
                .set_timeout(Duration::from_secs(10))
                .build()
        };
        Ok(Self {
            settings: settings()?,
            decoder: AvroDecoder::new(settings()?),
            writers: RwLock::default(),
            readers: RwLock::default(),
            writer_schemas: RwLock::default(),
        })
    }

    /// Encodes `value` for `topic` (subject `<topic>-value`).
    pub async fn encode<T: Record>(&self, topic: &str, value: &T) -> Result<Vec<u8>, EncodeError> {
        let writer = self.writer::<T>(topic).await?;
        let hint = writer.size_hint.load(std::sync::atomic::Ordering::Relaxed);
        let mut out = Vec::with_capacity(hint + hint / 4 + 16);
        out.push(MAGIC);
        out.extend_from_slice(&writer.id.to_be_bytes());
        value.write(&mut out).map_err(|e| EncodeError::Data {
            record: T::NAME,
            message: e.0,
        })?;
        writer
            .size_hint
            .store(out.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    async fn writer<T: Record>(&self, topic: &str) -> Result<Arc<Writer>, EncodeError> {
        if let Some(w) = read(&self.writers)
            .get(&TypeId::of::<T>())
            .and_then(|ws| ws.iter().find(|(t, _)| t == topic))
        {
            return Ok(w.1.clone());
        }
        let subject = crate::contracts::value_subject(topic);
        // Registered (or looked up, when already there) once per (topic,
        // type): the converter's own encoder caches by subject only, which
        // would hand a second type on the same topic the first one's id.
        let supplied = SuppliedSchema::new(
            Some(T::NAME.to_string()),
            SchemaType::Avro,
            T::avsc().to_string(),
        );
        let registered = post_schema(&self.settings, subject.clone(), supplied)
            .await
            .map_err(|e| EncodeError::Registry {
                subject: subject.clone(),
                message: src_message(&e),
                // Incompatible (409) or invalid (422) schemas need a fix;
                // anything else (5xx, 429, auth, network) may pass later.
                retryable: !matches!(http_status(&e), Some(409 | 422)),
            })?;
        let w = Arc::new(Writer {
            id: registered.id,
            size_hint: std::sync::atomic::AtomicUsize::new(256),
        });
        write(&self.writers)
            .entry(TypeId::of::<T>())
            .or_default()
            .push((topic.to_string(), w.clone()));
        Ok(w)
    }

    /// Decodes a record value written in the wire format into `T`.
    pub async fn decode<T: Record>(
        &self,
        bytes: Option<&[u8]>,
        at: Source<'_>,
    ) -> Result<T, DecodeError> {
        let (id, body) = split_header(bytes)
            .map_err(|m| DecodeError::new(DecodeErrorKind::Framing, at, None, m))?;
        let reader = self.reader::<T>(id, at).await?;
        let data_err =
            |m: String| DecodeError::new(DecodeErrorKind::Data, at, Some(id), concise(m));
        let (value, rest) = match reader.as_ref() {
            Reader::Direct => {
                let mut input = body;
                let v = T::read(&mut input).map_err(|e| data_err(e.0))?;
                (v, input.len())
            }
            Reader::Resolving(r) => {
                let mut cursor = Cursor::new(body);
                let mut v = r
                    .read_value(&mut cursor)
                    .map_err(|e| data_err(e.to_string()))?;
                widen_decimals(&mut v).map_err(data_err)?;
                let v = v
                    .resolve(T::schema())
                    .map_err(|e| data_err(e.to_string()))?;
                let v = apache_avro::from_value::<T>(&v).map_err(|e| data_err(e.to_string()))?;
                (v, body.len() - cursor.position() as usize)
            }
        };
        if rest != 0 {
            return Err(data_err(format!("{rest} trailing bytes after the record")));
        }
        Ok(value)
    }

    async fn reader<T: Record>(&self, id: u32, at: Source<'_>) -> Result<Arc<Reader>, DecodeError> {
        let key = (id, TypeId::of::<T>());
        if let Some(r) = read(&self.readers).get(&key) {
            return Ok(r.clone());
        }
        let writer_schema = self.writer_schema(id, at).await?;
        let build_err = |e: apache_avro::Error| {
            DecodeError::new(DecodeErrorKind::Data, at, Some(id), e.to_string())
        };
        let reader = if *writer_schema.1 == crate::contracts::normalized_json(T::avsc()) {
            Reader::Direct
        } else {
            // Resolution to `own` happens after widening decimals, see
            // [`widen_decimals`].
            Reader::Resolving(
                GenericDatumReader::builder(writer_schema.0)
                    .build()
                    .map_err(build_err)?,
            )
        };
        let reader = Arc::new(reader);
        write(&self.readers).insert(key, reader.clone());
        Ok(reader)
    }

    async fn writer_schema(&self, id: u32, at: Source<'_>) -> Result<WriterSchema, DecodeError> {
        if let Some(s) = read(&self.writer_schemas).get(&id) {
            return Ok(s.clone());
        }
        let fetched = self.decoder.get_schema(id).await.map_err(|e| {
            // Only "no such id" (404) condemns the record. Any other failure
            // (5xx, 429, auth, network) is the registry's, and the record
            // waits for it; the converter caches non-retriable errors, so
            // forget them to fetch again on the next attempt.
            let status = http_status(&e);
            let unknown = status == Some(404) || (status.is_none() && !e.retriable);
            if unknown {
                DecodeError::new(
                    DecodeErrorKind::UnknownSchema,
                    at,
                    Some(id),
                    src_message(&e),
                )
            } else {
                self.decoder.remove_errors_from_cache();
                DecodeError::new(DecodeErrorKind::Registry, at, Some(id), src_message(&e))
            }
        })?;
        let mut map = write(&self.writer_schemas);
        let entry = map.entry(id).or_insert_with(|| {
            let parsed: &'static Schema = Box::leak(Box::new(fetched.parsed.clone()));
            (
                parsed,
                crate::contracts::normalized_json(&fetched.raw).into(),
            )
        });
        Ok(entry.clone())
    }

    /// Forgets cached registry failures (e.g. after the registry came back).
    pub fn clear_errors(&self) {
        self.decoder.remove_errors_from_cache();
    }
}

/// apache-avro 0.22 refuses to resolve a bytes-backed decimal whose byte
/// length could not hold the schema's full precision, although Avro writes
/// decimals as minimal two's-complement bytes (so 1.00 at scale 4 is 2
/// bytes). Sign-extending every decimal to 16 bytes before resolution keeps
/// the value and satisfies the check, for data from any producer.
fn widen_decimals(v: &mut apache_avro::types::Value) -> Result<(), String> {
    use apache_avro::types::Value;
    match v {
        Value::Decimal(d) => {
            let bytes = Vec::<u8>::try_from(&*d).map_err(|e| e.to_string())?;
            if bytes.len() < 16 {
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xff
                } else {
                    0x00
                };
                let mut wide = vec![fill; 16 - bytes.len()];
                wide.extend_from_slice(&bytes);
                *d = apache_avro::Decimal::from(wide);
            }
        }
        Value::Record(fields) => {
            for (_, f) in fields {
                widen_decimals(f)?;
            }
        }
        Value::Array(items) => {
            for i in items {
                widen_decimals(i)?;
            }
        }
        Value::Map(m) => {
            for i in m.values_mut() {
                widen_decimals(i)?;
            }
        }
        Value::Union(_, inner) => widen_decimals(inner)?,
        _ => {}
    }
    Ok(())
}

/// Splits the wire-format header off: (schema id, Avro body).
pub fn split_header(bytes: Option<&[u8]>) -> Result<(u32, &[u8]), String> {
    let b = bytes.ok_or("the record has no value (tombstone)")?;
    if b.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes is too short for the wire format (magic byte + 4-byte schema id)",
            b.len()
        ));
    }
    if b[0] != MAGIC {
        return Err(format!(
            "magic byte is {:#04x}, expected 0x00: not Confluent wire format",
            b[0]
        ));
    }
    let id = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
    Ok((id, &b[HEADER_LEN..]))
}

/// apache-avro's messages embed whole schemas (`RecordSchema { .. }`); keep
/// the path and the reason, drop the schema dumps.
fn concise(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len().min(512));
    let mut rest = text.as_str();
    while let Some(start) = rest.find("RecordSchema {") {
        out.push_str(&rest[..start]);
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push_str("..");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The HTTP status of a failed registry call, from the converter's message
/// ("... failed with status 404 Not Found").
fn http_status(e: &SRCError) -> Option<u16> {
    let text = format!("{} {}", e.error, e.cause.as_deref().unwrap_or(""));
    let at = text.find("status ")? + "status ".len();
    text.get(at..at + 3)?.parse().ok()
}

fn src_message(e: &SRCError) -> String {
    match &e.cause {
        Some(c) => format!("{}: {c}", e.error),
        None => e.error.clone(),
    }
}

/// A hasher for the codec's small in-process keys (type ids, schema ids):
/// no untrusted input reaches these maps, so SipHash's flood resistance is
/// not needed on this per-record path.
#[derive(Default, Clone, Copy)]
struct KeyHasher;

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_dumps_are_cut_from_messages() {
        let m = concise(
            "Failed field 'a' of record RecordSchema { name: X { y: 1 }, f: [] }: bad value",
        );
        assert_eq!(m, "Failed field 'a' of record ..: bad value");
    }

    #[test]
    fn header_errors_are_clear() {
        assert!(split_header(None).unwrap_err().contains("tombstone"));
        assert!(split_header(Some(&[0, 0, 1]))
            .unwrap_err()
            .contains("too short"));
        assert!(split_header(Some(&[1, 0, 0, 0, 7, 2]))
            .unwrap_err()
            .contains("magic byte is 0x01"));
        assert_eq!(
            split_header(Some(&[0, 0, 0, 1, 2, 9])).unwrap(),
            (258, &[9u8][..])
        );
    }
}

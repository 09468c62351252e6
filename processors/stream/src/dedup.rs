//! Dropping duplicates that arrive at new offsets.
//!
//! A job that redoes a batch after a crash re-emits its outputs: identical
//! records, but at new offsets of the next topic, where the next job's
//! position check (offset < position) cannot see that they are repeats.
//! So every output carries [`SOURCE_HEADER`]: the job that wrote it, the
//! input partition and offset it came from, and its index among that
//! input's outputs. A job reads each input partition in order and emits in
//! order, so at any partition downstream the `(offset, index)` pairs of one
//! `(job, topic, partition)` only grow; a stateful job keeps the highest
//! pair per source in its state (table [`SOURCE_TABLE`], one small entry per
//! upstream partition, changelogged with the rest) and drops any record at
//! or below it: a re-emission, whose first copy it already applied.
//!
//! Scope: this covers re-emission by the job right upstream. A job that
//! is itself being replayed (`conveyor replay`) processes its range again
//! on purpose, so it drops nothing by mark there, and its marks never move
//! back. A stateful job reading a replayed job's output directly drops
//! the re-emitted records by mark (their source coordinates are the
//! same); behind a stateless feed (which stamps its own, new coordinates)
//! they reach the job's logic, which must treat a version it already has
//! as such (allocate and route do). Stateless jobs do not drop
//! duplicates; their consumers do (sinks upsert by natural key).

use crate::state::{table_key, StateError};

/// Header naming where an output came from: `job/topic/partition/offset/index`.
pub const SOURCE_HEADER: &str = "conveyor.src";
/// State table of the highest `(offset, index)` applied per source.
pub const SOURCE_TABLE: &str = "__src";

/// The header value for output `index` of the input at `topic[partition]@offset`.
pub fn header_value(job: &str, topic: &str, partition: i32, offset: i64, index: usize) -> Vec<u8> {
    format!("{job}/{topic}/{partition}/{offset}/{index}").into_bytes()
}

/// A parsed source header: `(job/topic/partition, (offset, index))`.
pub fn parse(value: &[u8]) -> Option<(&str, (i64, u32))> {
    let s = std::str::from_utf8(value).ok()?;
    let mut it = s.rsplitn(3, '/');
    let index: u32 = it.next()?.parse().ok()?;
    let offset: i64 = it.next()?.parse().ok()?;
    let source = it.next()?;
    // job/topic/partition: three non-empty parts, a numeric partition.
    let mut parts = source.rsplitn(2, '/');
    parts.next()?.parse::<i32>().ok()?;
    let job_topic = parts.next()?;
    if !job_topic.contains('/') {
        return None;
    }
    Some((source, (offset, index)))
}

/// The stored key of a source's high-water mark.
pub fn state_key(source: &str) -> Result<Vec<u8>, StateError> {
    table_key(SOURCE_TABLE, source.as_bytes())
}

pub fn encode_mark(mark: (i64, u32)) -> Vec<u8> {
    let mut v = mark.0.to_be_bytes().to_vec();
    v.extend_from_slice(&mark.1.to_be_bytes());
    v
}

pub fn decode_mark(v: &[u8]) -> Option<(i64, u32)> {
    let o: [u8; 8] = v.get(..8)?.try_into().ok()?;
    let i: [u8; 4] = v.get(8..12)?.try_into().ok()?;
    Some((i64::from_be_bytes(o), u32::from_be_bytes(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_marks_order() {
        let h = header_value("allocate", "orders.normalized", 3, 1234, 1);
        assert_eq!(parse(&h), Some(("allocate/orders.normalized/3", (1234, 1))));
        assert_eq!(parse(b"garbage"), None);
        assert_eq!(parse(b"a/b/x/1/2"), None);
        assert_eq!(parse(b"b/3/1/2"), None);
        assert_eq!(decode_mark(&encode_mark((7, 2))), Some((7, 2)));
        assert!((7, 2) > (7, 1) && (8, 0) > (7, 9));
        assert_eq!(decode_mark(b"short"), None);
    }
}

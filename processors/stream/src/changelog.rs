//! Changelog records and restoring a partition's store from them.
//!
//! A stateful job's changelog is a compacted topic with as many partitions
//! as its input; partition `p` of the changelog belongs to input partition
//! `p`. A batch writes, in order: one record per key it changed (key =
//! `<table> NUL <key>`, value = the new value, or a tombstone for a
//! delete), then one position marker (key [`MARKER_KEY`], value = the next
//! input offset, 8 bytes big-endian). The marker is produced only after every
//! entry of the batch is acknowledged, so a marker vouches for everything
//! before it.
//!
//! Restoring reads the changelog partition up to its high watermark and
//! applies entries only up to the last marker: entries after it belong to a
//! batch whose producer crashed before finishing; they are not applied, and
//! the batch is processed again from the marker's position (re-writing the
//! same entries, since processing is deterministic). Compaction keeps the
//! last value per key, including the last marker, so a compacted changelog
//! restores the same state as the full one.
//!
//! Hazard, documented rather than hidden: if compaction ran while a crashed
//! batch's entries were still after the last marker, it could drop an older
//! value of the same key that the restore then needs. The changelog topics
//! are created with `min.compaction.lag.ms` of 7 days, so this needs a
//! partition left unprocessed for a week after a crash mid-batch.

use std::path::Path;
use std::time::{Duration, Instant};

use conveyor_runtime::config::KafkaConfig;
use conveyor_runtime::kafka::{Consumer, KafkaError, OutRecord};

use crate::state::{PartitionStore, StoreError, Writes};

/// The key of the position marker (no table name starts with NUL).
pub const MARKER_KEY: &[u8] = b"\0position";

/// Entries applied per store commit while restoring.
const RESTORE_COMMIT_EVERY: usize = 20_000;

/// The changelog records of one batch: its writes, then its marker.
pub fn batch_records(
    topic: &str,
    partition: i32,
    writes: &Writes,
    next_position: i64,
    timestamp_ms: Option<i64>,
) -> (Vec<OutRecord>, OutRecord) {
    let entry = |key: &[u8], value: Option<&Vec<u8>>| OutRecord {
        topic: topic.to_string(),
        key: Some(key.to_vec()),
        payload: value.cloned(),
        headers: Vec::new(),
        timestamp_ms,
        partition: Some(partition),
    };
    let entries = writes
        .iter()
        .map(|(k, v)| entry(k, v.as_ref()))
        .collect();
    let marker = entry(MARKER_KEY, Some(&next_position.to_be_bytes().to_vec()));
    (entries, marker)
}

fn marker_position(value: Option<&[u8]>) -> Option<i64> {
    let bytes: [u8; 8] = value?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("restoring from {topic}[{partition}]: {source}")]
    Kafka {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error("restoring from {topic}[{partition}]: no record for {waited:?} before offset {high} (broker unavailable?)")]
    Stalled {
        topic: String,
        partition: i32,
        waited: Duration,
        high: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RestoreError {
    /// Broker trouble may pass; a local store failure does not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, RestoreError::Store(_))
    }
}

/// How a partition's store was brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreKind {
    /// The local store was current.
    UpToDate,
    /// The local store was behind: read its changelog from where it was.
    CatchUp,
    /// No usable local store: rebuilt from the whole changelog.
    Full,
}

#[derive(Debug, Clone, Copy)]
pub struct Restored {
    pub kind: RestoreKind,
    /// Changelog records read.
    pub records: u64,
    pub position: Option<i64>,
    pub elapsed: Duration,
}

/// Opens the store at `path` for `changelog[partition]`, restoring or
/// catching it up from the changelog as needed (see module docs).
pub async fn restore(
    kafka: &KafkaConfig,
    group_id: &str,
    store_label: &str,
    path: &Path,
    changelog: &str,
    partition: i32,
) -> Result<(PartitionStore, Restored), RestoreError> {
    let started = Instant::now();
    let kerr = |source| RestoreError::Kafka {
        topic: changelog.to_string(),
        partition,
        source,
    };
    // A group id is required by the client; this reader never commits.
    let reader = Consumer::new(kafka, "restore", &format!("{group_id}.restore")).map_err(kerr)?;
    let wm_reader = &reader;
    let (low, high) = wm_reader
        .watermarks(changelog, partition, Duration::from_secs(10))
        .map_err(kerr)?;

    let existed = path.exists();
    let mut store = PartitionStore::open(path)?;
    let meta = store.meta()?;
    let (kind, from) = match meta.changelog_end {
        Some(end) if existed && end >= low && end <= high => {
            if end == high {
                (RestoreKind::UpToDate, end)
            } else {
                (RestoreKind::CatchUp, end)
            }
        }
        None if existed && meta.position.is_none() && low == high => {
            (RestoreKind::UpToDate, high)
        }
        _ => {
            // Missing, empty or from another life of the changelog.
            drop(store);
            PartitionStore::remove(path)?;
            store = PartitionStore::open(path)?;
            (RestoreKind::Full, low)
        }
    };
    let labels = [
        ("store", store_label.to_string()),
        ("partition", partition.to_string()),
    ];
    let remaining = metrics::gauge!("conveyor_state_restore_remaining_records", &labels);
    remaining.set((high - from) as f64);
    let mut records = 0u64;
    let mut position = meta.position;
    if from < high {
        tracing::info!(
            store = store_label,
            partition,
            from,
            to = high,
            kind = ?kind,
            "restoring state from changelog"
        );
        reader
            .assign(&[(changelog, partition, Some(from))])
            .map_err(kerr)?;
        // Entries since the last marker (not yet vouched for).
        let mut tail = Writes::new();
        // Entries vouched for by a marker, not yet committed to the store.
        let mut ready = Writes::new();
        let mut ready_marker: Option<(i64, i64)> = None;
        let stall = Duration::from_secs(30);
        let counter = metrics::counter!("conveyor_state_restore_records_total", &labels);
        loop {
            let rec = match tokio::time::timeout(stall, reader.recv()).await {
                Ok(r) => r.map_err(kerr)?,
                Err(_) => {
                    return Err(RestoreError::Stalled {
                        topic: changelog.to_string(),
                        partition,
                        waited: stall,
                        high,
                    })
                }
            };
            records += 1;
            counter.increment(1);
            remaining.set((high - rec.offset - 1).max(0) as f64);
            let Some(key) = rec.key else { continue };
            if key == MARKER_KEY {
                if let Some(p) = marker_position(rec.payload.as_deref()) {
                    ready.append(&mut tail);
                    ready_marker = Some((p, rec.offset + 1));
                    if ready.len() >= RESTORE_COMMIT_EVERY {
                        store.commit(&ready, Some(p), Some(rec.offset + 1))?;
                        ready.clear();
                        position = Some(p);
                    }
                }
            } else {
                tail.insert(key, rec.payload);
            }
            if rec.offset + 1 >= high {
                break;
            }
        }
        if let Some((p, end)) = ready_marker {
            store.commit(&ready, Some(p), Some(end))?;
            position = Some(p);
        }
        if !tail.is_empty() {
            tracing::info!(
                store = store_label,
                partition,
                entries = tail.len(),
                "changelog ends with an unfinished batch; it will be processed again"
            );
        }
    }
    remaining.set(0.0);
    reader.close();
    let elapsed = started.elapsed();
    metrics::counter!("conveyor_state_restores_total", "store" => store_label.to_string(), "kind" => format!("{kind:?}")).increment(1);
    Ok((
        store,
        Restored {
            kind,
            records,
            position,
            elapsed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_its_entries_then_its_marker() {
        let mut w = Writes::new();
        w.insert(b"t\0a".to_vec(), Some(b"1".to_vec()));
        w.insert(b"t\0b".to_vec(), None);
        let (entries, marker) = batch_records("cl", 3, &w, 42, Some(7));
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.partition == Some(3)));
        assert_eq!(entries[1].payload, None);
        assert_eq!(marker.key.as_deref(), Some(MARKER_KEY));
        assert_eq!(marker_position(marker.payload.as_deref()), Some(42));
        assert_eq!(marker_position(Some(b"short")), None);
    }
}

//! Changelog records and restoring a partition's store from them.
//!
//! A stateful job's changelog is a compacted topic with as many partitions
//! as its input; partition `p` of the changelog belongs to input partition
//! `p`. A batch writes, in order: one record per key it changed (key =
//! `<table> NUL <key>`, value = the new value, or a tombstone for a
//! delete), then one position marker (key [`MARKER_KEY`], value = the next
//! input offset, 8 bytes big-endian). The marker is produced only after every
//! entry of the batch (and every output) is acknowledged. Every entry
//! carries its batch's end position in a header ([`VERSION_HEADER`]).
//!
//! Restoring reads the changelog partition up to its high watermark and
//! applies an entry only once a marker at or past its batch end has been
//! read ([`Replay`]). A batch whose producer crashed before its marker
//! leaves entries that no marker vouches for yet; the batch is processed
//! again from the last marker (possibly cut into different batches), which
//! rewrites the same keys later in the log with the same values, so those
//! stale entries either wait until a marker reaches their batch end (and
//! are then superseded) or are dropped at the end of the log. Compaction
//! keeps the last value per key, including the last marker, so a compacted
//! changelog restores the same state as the full one.
//!
//! # Epochs: a replay moves the position back
//!
//! `conveyor replay` re-runs a job over input it has already processed.
//! With the state kept, the position must move back while the state stays;
//! with the state reset, every key must go too. Both are written as one
//! *rewind* batch under a new **epoch** (the replay's generation): for a
//! reset, a tombstone for every key; for a kept state, the vouched value
//! again for every key that an unfinished batch touched (so that batch can
//! never surface later, even after compaction removed the markers around
//! it); then a marker `(epoch, from)`. Positions compare as `(epoch,
//! offset)`: the rewind marker wins over every older marker although its
//! offset is lower, the job writes its next markers and entries under the
//! new epoch ([`EPOCH_HEADER`]), and a zombie still writing under the old
//! epoch is ignored as before. At a marker of a newer epoch, every pending
//! entry of an older epoch applies (in log order, so the rewind's own
//! entries, written after them, override them). See [`rewind_records`].
//!
//! Hazard, documented rather than hidden: if compaction ran while a crashed
//! batch's entries were still after the last marker, it could drop an older
//! value of the same key that the restore then needs. The changelog topics
//! are created with `min.compaction.lag.ms` of 7 days, so this needs a
//! partition left unprocessed for a week after a crash mid-batch.

use std::path::Path;
use std::time::{Duration, Instant};

use conveyor_runtime::config::KafkaConfig;
use conveyor_runtime::kafka::{consumer_config, InRecord, KafkaError, OutRecord};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::state::{PartitionStore, StoreError, Writes};

/// The key of the position marker (no table name starts with NUL).
pub const MARKER_KEY: &[u8] = b"\0position";

/// Header of every changelog record: the position its batch ends at
/// (8 bytes big-endian), i.e. the marker that vouches for it.
pub const VERSION_HEADER: &str = "conveyor.batch_end";

/// Header of changelog records written under a replay epoch (8 bytes
/// big-endian; absent = epoch 0).
pub const EPOCH_HEADER: &str = "conveyor.epoch";

/// A local store untouched for longer than this is rebuilt from the
/// changelog instead of caught up (well inside `min.compaction.lag.ms`).
const STALE_STORE_AGE: Duration = Duration::from_secs(24 * 3600);

/// Entries applied per store commit while restoring.
const RESTORE_COMMIT_EVERY: usize = 20_000;

/// The changelog records of one batch: its writes, then its marker, under
/// replay `epoch` (0 outside replays).
pub fn batch_records(
    topic: &str,
    partition: i32,
    writes: &Writes,
    next_position: i64,
    epoch: i64,
    timestamp_ms: Option<i64>,
) -> (Vec<OutRecord>, OutRecord) {
    let mut headers = vec![(
        VERSION_HEADER.to_string(),
        next_position.to_be_bytes().to_vec(),
    )];
    if epoch != 0 {
        headers.push((EPOCH_HEADER.to_string(), epoch.to_be_bytes().to_vec()));
    }
    let entry = |key: &[u8], value: Option<Vec<u8>>| OutRecord {
        topic: topic.to_string(),
        key: Some(key.to_vec()),
        payload: value,
        headers: headers.clone(),
        timestamp_ms,
        partition: Some(partition),
    };
    let entries = writes.iter().map(|(k, v)| entry(k, v.clone())).collect();
    let marker = entry(MARKER_KEY, Some(encode_marker(epoch, next_position)));
    (entries, marker)
}

/// The rewind batch of a replay (see the module docs): moves the position
/// of `changelog[partition]`, restored as `restored`, back to `from` under
/// `epoch`. With `reset`, every key is deleted; otherwise every key an
/// unfinished batch touched is written again with its vouched value.
/// Refuses an epoch that is not newer than the changelog's.
pub fn rewind_records(
    topic: &str,
    partition: i32,
    restored: &Replay,
    vouched: &Writes,
    from: i64,
    epoch: i64,
    reset: bool,
) -> Result<(Vec<OutRecord>, OutRecord), String> {
    let current = restored.marker.map(|m| m.epoch).unwrap_or(0);
    if epoch <= current {
        return Err(format!(
            "{topic}[{partition}] is already at replay epoch {current}; a rewind needs a newer one than {epoch}"
        ));
    }
    let mut writes = Writes::new();
    if reset {
        for k in vouched
            .keys()
            .chain(restored.pending.iter().map(|(k, _, _)| k))
        {
            writes.insert(k.clone(), None);
        }
    } else {
        for (k, _, _) in &restored.pending {
            writes.insert(k.clone(), vouched.get(k).cloned().flatten());
        }
    }
    Ok(batch_records(topic, partition, &writes, from, epoch, None))
}

/// The last marker read: where processing stands and where it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub epoch: i64,
    pub position: i64,
    /// The changelog offset right after the marker.
    pub next_offset: i64,
}

impl Marker {
    fn at(&self) -> (i64, i64) {
        (self.epoch, self.position)
    }
}

/// Applies changelog records in log order under the marker rule: an entry
/// takes effect at the first marker whose position is at least the entry's
/// batch end. Entries of a batch that crashed before its marker have a
/// batch end beyond the markers the redo writes next, so they wait; by the
/// time a marker reaches their batch end, the redo has rewritten every key
/// they touch later in the log (processing is deterministic), so applying
/// them then, in log order, changes nothing. Entries still waiting at the end
/// are dropped: their batch will be processed again.
/// A changelog entry waiting for its marker: key, value, (epoch, batch end).
type Pending = (Vec<u8>, Option<Vec<u8>>, (i64, i64));

#[derive(Debug, Default)]
pub struct Replay {
    /// Entries not yet vouched for, in log order.
    pending: Vec<Pending>,
    /// Vouched entries not yet written to the store.
    pub ready: Writes,
    /// The last marker.
    pub marker: Option<Marker>,
    /// Records ignored as written behind the position (zombie writes).
    pub stale: u64,
}

impl Replay {
    /// One changelog record at `offset`; `version` is its (epoch, batch
    /// end) from the headers.
    pub fn record(
        &mut self,
        offset: i64,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        version: Option<(i64, i64)>,
    ) {
        let current = self.marker.map(|m| m.at());
        if key == MARKER_KEY {
            let Some((epoch, p)) = decode_marker(value.as_deref()) else {
                return;
            };
            if current.is_some_and(|c| (epoch, p) < c) {
                // A writer behind the log (a zombie that lost the
                // partition): its marker does not move the position back.
                self.stale += 1;
                return;
            }
            let mut waiting = Vec::new();
            for (k, v, (ee, end)) in self.pending.drain(..) {
                // An older epoch's entries were settled by the rewind that
                // started this one (it rewrote every key they touched).
                if ee < epoch || (ee == epoch && end <= p) {
                    self.ready.insert(k, v);
                } else {
                    waiting.push((k, v, (ee, end)));
                }
            }
            self.pending = waiting;
            self.marker = Some(Marker {
                epoch,
                position: p,
                next_offset: offset + 1,
            });
        } else {
            // A live writer's batch always ends past the current marker;
            // an entry that does not was written by a zombie: ignore it.
            if let (Some(v), Some(c)) = (version, current) {
                if v <= c {
                    self.stale += 1;
                    return;
                }
            }
            // Without a version (not written by this runtime), the next
            // marker vouches for it.
            self.pending
                .push((key, value, version.unwrap_or((i64::MIN, i64::MIN))));
        }
    }

    /// Entries no marker has vouched for yet.
    pub fn unfinished(&self) -> usize {
        self.pending.len()
    }
}

/// A marker's value: the position (8 bytes big-endian), then its epoch
/// when not 0 (8 more).
pub fn encode_marker(epoch: i64, position: i64) -> Vec<u8> {
    let mut v = position.to_be_bytes().to_vec();
    if epoch != 0 {
        v.extend_from_slice(&epoch.to_be_bytes());
    }
    v
}

/// `(epoch, position)` of a marker's value.
pub fn decode_marker(value: Option<&[u8]>) -> Option<(i64, i64)> {
    let v = value?;
    let p = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    match v.len() {
        8 => Some((0, p)),
        16 => Some((i64::from_be_bytes(v[8..].try_into().ok()?), p)),
        _ => None,
    }
}

/// `(epoch, batch end)` of a changelog entry, from its headers.
pub fn entry_version(rec: &InRecord) -> Option<(i64, i64)> {
    let end = i64::from_be_bytes(rec.header(VERSION_HEADER)?.try_into().ok()?);
    let epoch = match rec.header(EPOCH_HEADER) {
        Some(e) => i64::from_be_bytes(e.try_into().ok()?),
        None => 0,
    };
    Some((epoch, end))
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
    /// The position's replay epoch.
    pub epoch: i64,
    pub elapsed: Duration,
}

/// The client that reads changelogs for restores. It never joins the
/// group or commits (the group id is only required by the client), and it
/// reports the end of a partition, so a compacted-away last record does not
/// leave a restore waiting for an offset that no longer exists.
pub fn reader(kafka: &KafkaConfig, group_id: &str) -> Result<StreamConsumer, KafkaError> {
    let mut cc = consumer_config(kafka, "restore", &format!("{group_id}.restore"));
    cc.set("enable.partition.eof", "true");
    cc.create()
}

/// Opens the store at `path` for `changelog[partition]`, restoring or
/// catching it up from the changelog as needed (see module docs), reading
/// with `reader` (see [`reader`]).
pub async fn restore(
    reader: &StreamConsumer,
    store_label: &str,
    path: &Path,
    changelog: &str,
    partition: i32,
    progress: Option<&std::sync::atomic::AtomicU64>,
) -> Result<(PartitionStore, Restored), RestoreError> {
    let started = Instant::now();
    let kerr = |source| RestoreError::Kafka {
        topic: changelog.to_string(),
        partition,
        source,
    };
    let (low, high) = reader
        .fetch_watermarks(changelog, partition, Duration::from_secs(10))
        .map_err(kerr)?;

    // A store left alone for long may predate compactions that removed
    // tombstones it never saw: rebuild it rather than catch it up.
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let existed = path.exists() && age.is_none_or(|a| a < STALE_STORE_AGE);
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
        None if existed && meta.position.is_none() && low == high => (RestoreKind::UpToDate, high),
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
    let mut position = if kind == RestoreKind::Full {
        None
    } else {
        meta.position.map(|p| (meta.epoch, p))
    };
    let mut records = 0u64;
    if from < high {
        tracing::info!(
            store = store_label,
            partition,
            from,
            to = high,
            kind = ?kind,
            "restoring state from changelog"
        );
        let mut replay = Replay::default();
        if kind == RestoreKind::CatchUp {
            // Entries written behind the store's own position are stale.
            replay.marker = position.map(|(epoch, p)| Marker {
                epoch,
                position: p,
                next_offset: from,
            });
        }
        let counter = metrics::counter!("conveyor_state_restore_records_total", &labels);
        records = scan(reader, changelog, partition, from, high, |rec| {
            counter.increment(1);
            remaining.set((high - rec.offset - 1).max(0) as f64);
            if let Some(p) = progress {
                p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let version = entry_version(&rec);
            if let Some(key) = rec.key {
                replay.record(rec.offset, key, rec.payload, version);
            }
            if replay.ready.len() >= RESTORE_COMMIT_EVERY {
                if let Some(m) = replay.marker {
                    store.commit(
                        &std::mem::take(&mut replay.ready),
                        Some((m.epoch, m.position)),
                        Some(m.next_offset),
                    )?;
                    position = Some((m.epoch, m.position));
                }
            }
            Ok(())
        })
        .await?;
        if let Some(m) = replay.marker {
            store.commit(
                &replay.ready,
                Some((m.epoch, m.position)),
                Some(m.next_offset),
            )?;
            position = Some((m.epoch, m.position));
        }
        if replay.unfinished() > 0 {
            tracing::info!(
                store = store_label,
                partition,
                entries = replay.unfinished(),
                "changelog ends with an unfinished batch; it will be processed again"
            );
        }
    }
    remaining.set(0.0);
    if from < high {
        // Best effort: the next restore assigns its own partition anyway.
        let _ = reader.unassign();
    }
    let elapsed = started.elapsed();
    metrics::counter!("conveyor_state_restores_total", "store" => store_label.to_string(), "kind" => format!("{kind:?}")).increment(1);
    Ok((
        store,
        Restored {
            kind,
            records,
            position: position.map(|p| p.1),
            epoch: position.map_or(0, |p| p.0),
            elapsed,
        },
    ))
}

/// Reads `changelog[partition]` from `from` to `high` with `reader`,
/// handing each record to `f`; returns how many it read.
async fn scan(
    reader: &StreamConsumer,
    changelog: &str,
    partition: i32,
    from: i64,
    high: i64,
    mut f: impl FnMut(InRecord) -> Result<(), StoreError>,
) -> Result<u64, RestoreError> {
    let kerr = |source| RestoreError::Kafka {
        topic: changelog.to_string(),
        partition,
        source,
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(changelog, partition, Offset::Offset(from))
        .map_err(kerr)?;
    reader.assign(&tpl).map_err(kerr)?;
    let stall = Duration::from_secs(30);
    let mut records = 0u64;
    loop {
        let rec = match tokio::time::timeout(stall, reader.recv()).await {
            Ok(Ok(m)) => InRecord::from_message(&m),
            Ok(Err(KafkaError::PartitionEOF(_))) => break,
            Ok(Err(e)) => return Err(kerr(e)),
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
        let last = rec.offset + 1 >= high;
        f(rec)?;
        if last {
            break;
        }
    }
    Ok(records)
}

/// A whole changelog partition read into memory, as a restore would see
/// it: the vouched state (every key's value, tombstones dropped) and what
/// is still pending. `conveyor replay` plans its rewinds from this.
pub struct Snapshot {
    pub replay: Replay,
    pub state: Writes,
    pub records: u64,
}

pub async fn snapshot(
    reader: &StreamConsumer,
    changelog: &str,
    partition: i32,
) -> Result<Snapshot, RestoreError> {
    let (low, high) = reader
        .fetch_watermarks(changelog, partition, Duration::from_secs(10))
        .map_err(|source| RestoreError::Kafka {
            topic: changelog.to_string(),
            partition,
            source,
        })?;
    let mut replay = Replay::default();
    let mut state = Writes::new();
    let mut records = 0;
    if low < high {
        records = scan(reader, changelog, partition, low, high, |rec| {
            let version = entry_version(&rec);
            if let Some(key) = rec.key {
                replay.record(rec.offset, key, rec.payload, version);
            }
            for (k, v) in std::mem::take(&mut replay.ready) {
                match v {
                    Some(v) => state.insert(k, Some(v)),
                    None => state.remove(&k),
                };
            }
            Ok(())
        })
        .await?;
        let _ = reader.unassign();
    }
    Ok(Snapshot {
        replay,
        state,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(r: &mut Replay, off: i64, k: &str, v: &str, batch_end: i64) {
        r.record(
            off,
            k.as_bytes().to_vec(),
            Some(v.as_bytes().to_vec()),
            Some((0, batch_end)),
        );
    }
    fn marker(r: &mut Replay, off: i64, pos: i64) {
        r.record(off, MARKER_KEY.to_vec(), Some(encode_marker(0, pos)), None);
    }
    fn at(r: &Replay) -> Option<(i64, i64, i64)> {
        r.marker.map(|m| (m.epoch, m.position, m.next_offset))
    }
    /// Applies a rewind batch the way a restore reads it.
    fn apply(r: &mut Replay, first_offset: i64, (entries, marker): (Vec<OutRecord>, OutRecord)) {
        for (off, rec) in (first_offset..).zip(entries.into_iter().chain([marker])) {
            let version = rec
                .headers
                .iter()
                .find(|(k, _)| k == VERSION_HEADER)
                .map(|(_, v)| {
                    let epoch = rec
                        .headers
                        .iter()
                        .find(|(k, _)| k == EPOCH_HEADER)
                        .map_or(0, |(_, e)| i64::from_be_bytes(e[..].try_into().unwrap()));
                    (epoch, i64::from_be_bytes(v[..].try_into().unwrap()))
                });
            let key = rec.key.unwrap();
            let version = if key == MARKER_KEY { None } else { version };
            r.record(off, key, rec.payload, version);
        }
    }

    #[test]
    fn an_unfinished_batch_waits_for_a_marker_past_its_end() {
        // Batch [0,10) done; batch [10,30) crashed after writing a=3 (its
        // value after offset 25); the redo goes in smaller batches.
        let mut r = Replay::default();
        entry(&mut r, 0, "a", "1", 10);
        marker(&mut r, 1, 10);
        entry(&mut r, 2, "a", "3", 30); // unfinished
        entry(&mut r, 3, "b", "1", 20); // redo [10,20)
        marker(&mut r, 4, 20);
        // Restoring here must not see a=3: position 20 is before offset 25.
        assert_eq!(r.ready.get(&b"a"[..]), Some(&Some(b"1".to_vec())));
        assert_eq!(at(&r), Some((0, 20, 5)));
        assert_eq!(r.unfinished(), 1);
        entry(&mut r, 5, "a", "3", 30); // redo [20,30) rewrites a
        entry(&mut r, 6, "b", "2", 30);
        marker(&mut r, 7, 30);
        assert_eq!(r.ready.get(&b"a"[..]), Some(&Some(b"3".to_vec())));
        assert_eq!(r.ready.get(&b"b"[..]), Some(&Some(b"2".to_vec())));
        assert_eq!(r.unfinished(), 0);
        // A trailing unfinished batch is left out.
        entry(&mut r, 8, "c", "9", 40);
        assert_eq!(r.ready.get(&b"c"[..]), None);
        assert_eq!(at(&r), Some((0, 30, 8)));
    }

    #[test]
    fn writes_behind_the_position_are_ignored() {
        let mut r = Replay::default();
        entry(&mut r, 0, "a", "5", 50);
        marker(&mut r, 1, 50);
        // A zombie that still thinks it is at 30 finishes a batch.
        entry(&mut r, 2, "a", "3", 40);
        marker(&mut r, 3, 40);
        assert_eq!(at(&r), Some((0, 50, 2)));
        assert_eq!(r.stale, 2);
        entry(&mut r, 4, "a", "6", 60);
        marker(&mut r, 5, 60);
        assert_eq!(r.ready.get(&b"a"[..]), Some(&Some(b"6".to_vec())));
    }

    #[test]
    fn after_compaction_later_markers_vouch_for_earlier_batches() {
        // Compaction removed the marker of batch [0,10) (a later one
        // exists); its entry must still apply.
        let mut r = Replay::default();
        entry(&mut r, 0, "a", "1", 10);
        entry(&mut r, 5, "b", "1", 20);
        marker(&mut r, 6, 20);
        assert_eq!(r.ready.len(), 2);
    }

    #[test]
    fn a_batch_is_its_entries_then_its_marker() {
        let mut w = Writes::new();
        w.insert(b"t\0a".to_vec(), Some(b"1".to_vec()));
        w.insert(b"t\0b".to_vec(), None);
        let (entries, marker) = batch_records("cl", 3, &w, 42, 0, Some(7));
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.partition == Some(3)));
        assert_eq!(entries[1].payload, None);
        assert_eq!(marker.key.as_deref(), Some(MARKER_KEY));
        assert_eq!(decode_marker(marker.payload.as_deref()), Some((0, 42)));
        assert_eq!(
            marker.payload.as_ref().map(Vec::len),
            Some(8),
            "epoch 0 keeps the old 8-byte marker"
        );
        assert_eq!(decode_marker(Some(&encode_marker(3, 42))), Some((3, 42)));
        assert_eq!(decode_marker(Some(b"short")), None);
    }

    /// The log of a store at position 50 whose batch [50,60) crashed after
    /// writing b=9: a = 5 vouched, b pending.
    fn crashed_at_50() -> Replay {
        let mut r = Replay::default();
        entry(&mut r, 0, "a", "5", 50);
        entry(&mut r, 1, "b", "1", 50);
        marker(&mut r, 2, 50);
        entry(&mut r, 3, "b", "9", 60);
        r
    }

    #[test]
    fn a_kept_state_rewind_moves_the_position_back_and_settles_unfinished_batches() {
        let mut r = crashed_at_50();
        let vouched: Writes = [
            (b"a".to_vec(), Some(b"5".to_vec())),
            (b"b".to_vec(), Some(b"1".to_vec())),
        ]
        .into();
        let rewind = rewind_records("cl", 0, &r, &vouched, 10, 1, false).unwrap();
        assert_eq!(rewind.0.len(), 1, "only the key of the unfinished batch");
        apply(&mut r, 4, rewind);
        assert_eq!(at(&r), Some((1, 10, 6)), "the position moved back");
        assert_eq!(r.ready.get(&b"b"[..]), Some(&Some(b"1".to_vec())));
        assert_eq!(r.unfinished(), 0);
        // The zombie of epoch 0 finishing [50,60) is ignored.
        entry(&mut r, 6, "b", "9", 60);
        marker(&mut r, 7, 60);
        assert_eq!(at(&r), Some((1, 10, 6)));
        assert_eq!(r.stale, 2);
        // The replay's own batches (epoch 1) move on from 10.
        let (e, m) = batch_records(
            "cl",
            0,
            &[(b"a".to_vec(), Some(b"7".to_vec()))].into(),
            20,
            1,
            None,
        );
        apply(&mut r, 8, (e, m));
        assert_eq!(at(&r), Some((1, 20, 10)));
        assert_eq!(r.ready.get(&b"a"[..]), Some(&Some(b"7".to_vec())));
        // The same epoch cannot rewind twice.
        assert!(rewind_records("cl", 0, &r, &Writes::new(), 0, 1, false).is_err());
    }

    #[test]
    fn a_reset_rewind_deletes_every_key_even_after_compaction() {
        let mut r = crashed_at_50();
        let vouched: Writes = [
            (b"a".to_vec(), Some(b"5".to_vec())),
            (b"b".to_vec(), Some(b"1".to_vec())),
        ]
        .into();
        let rewind = rewind_records("cl", 0, &r, &vouched, 0, 2, true).unwrap();
        // Compacted: only the last record per key survives, the rewind's.
        let mut compacted = Replay::default();
        apply(
            &mut compacted,
            10,
            rewind_records("cl", 0, &r, &vouched, 0, 2, true).unwrap(),
        );
        apply(&mut r, 4, rewind);
        for rep in [&r, &compacted] {
            assert_eq!(at(rep).map(|m| (m.0, m.1)), Some((2, 0)));
            assert_eq!(rep.ready.get(&b"a"[..]), Some(&None));
            assert_eq!(rep.ready.get(&b"b"[..]), Some(&None));
            assert_eq!(rep.unfinished(), 0);
        }
    }
}

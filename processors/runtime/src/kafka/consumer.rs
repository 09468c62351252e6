//! Consumer-group member with explicit commits.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{client_config, KafkaError};
use crate::config::KafkaConfig;

/// A consumed record, detached from the client's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

impl InRecord {
    /// Copies a consumed message out of the client's buffers. Header names
    /// that are not UTF-8 (another producer's) are kept, lossily converted,
    /// instead of panicking as rdkafka's header accessor does.
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let headers = read_headers(m);
        InRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: m.timestamp().to_millis(),
        }
    }

    /// The first header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// A consumer-group member. Auto-commit is off: call [`Consumer::commit`]
/// with the position after the last record whose effects are durable.
/// Without a committed offset a partition starts at its earliest record, so
/// a new group misses nothing.
pub struct Consumer {
    inner: StreamConsumer,
    group: String,
    component: String,
}

/// Settings of every conveyor consumer: group member, auto-commit off,
/// a new group starts at the earliest record.
pub fn consumer_config(cfg: &KafkaConfig, component: &str, group_id: &str) -> ClientConfig {
    let mut c = client_config(cfg, component);
    c.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    if !cfg.properties.contains_key("session.timeout.ms") {
        c.set("session.timeout.ms", "6000");
    }
    c
}

impl Consumer {
    pub fn new(cfg: &KafkaConfig, component: &str, group_id: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            inner: consumer_config(cfg, component, group_id).create()?,
            group: group_id.to_string(),
            component: component.to_string(),
        })
    }

    pub fn group_id(&self) -> &str {
        &self.group
    }

    pub fn subscribe(&self, topics: &[&str]) -> Result<(), KafkaError> {
        self.inner.subscribe(topics)
    }

    /// Reads the given partitions directly, without group membership, from
    /// `Some(offset)` or from the beginning (`None`).
    pub fn assign(&self, parts: &[(&str, i32, Option<i64>)]) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, from) in parts {
            let off = from.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(topic, *partition, off)?;
        }
        self.inner.assign(&tpl)
    }

    /// The next record. Errors are the broker's or the network's; the caller
    /// decides whether to back off and retry.
    pub async fn recv(&self) -> Result<InRecord, KafkaError> {
        let m = self.inner.recv().await?;
        metrics::counter!(
            "conveyor_kafka_consumed_total",
            "component" => self.component.clone(),
            "topic" => m.topic().to_string()
        )
        .increment(1);
        Ok(InRecord::from_message(&m))
    }

    /// Commits, synchronously, `next_offset` for each `(topic, partition)`:
    /// the offset of the first record not yet processed.
    pub fn commit(&self, positions: &[(&str, i32, i64)]) -> Result<(), KafkaError> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in positions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        self.inner.commit(&tpl, CommitMode::Sync)
    }

    /// Commits the position right after `rec`.
    pub fn commit_after(&self, rec: &InRecord) -> Result<(), KafkaError> {
        self.commit(&[(rec.topic.as_str(), rec.partition, rec.offset + 1)])
    }

    /// The group's committed offsets for the current assignment.
    pub fn committed(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(String, i32, Option<i64>)>, KafkaError> {
        let tpl = self.inner.committed(timeout)?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| {
                let off = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (e.topic().to_string(), e.partition(), off)
            })
            .collect())
    }

    /// This consumer's group's committed offsets for `topic`'s partitions
    /// `0..partitions` (0 where nothing is committed), without joining the
    /// group: how far a running component has come.
    pub fn group_committed(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<Vec<i64>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let got = self.inner.committed_offsets(tpl, timeout)?;
        Ok((0..partitions)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            })
            .collect())
    }

    /// The live members of this consumer's group, as `client_id@host` (or
    /// the member id when the broker does not say), empty when nothing
    /// consumes as the group; without joining it.
    pub fn group_members(&self, timeout: Duration) -> Result<Vec<String>, KafkaError> {
        let list = self.inner.fetch_group_list(Some(&self.group), timeout)?;
        Ok(list
            .groups()
            .iter()
            .filter(|g| g.name() == self.group)
            .flat_map(|g| g.members())
            .map(|m| match (m.client_id(), m.client_host()) {
                ("", "") => format!("member {}", m.id()),
                (c, h) => format!("{c}@{h}"),
            })
            .collect())
    }

    /// The group's committed offsets for `parts` (None where nothing is
    /// committed), without joining the group.
    pub fn committed_for(
        &self,
        parts: &[(String, i32)],
        timeout: Duration,
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in parts {
            tpl.add_partition(t, *p);
        }
        let got = self.inner.committed_offsets(tpl, timeout)?;
        Ok(parts
            .iter()
            .map(|(t, p)| {
                let off = match got.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                };
                ((t.clone(), *p), off)
            })
            .collect())
    }

    /// For each of `parts`, the offset of the first record with a
    /// timestamp at or after `ts_ms` (None: no such record yet, i.e. the
    /// end of the partition).
    pub fn offsets_for_time(
        &self,
        parts: &[(String, i32)],
        ts_ms: i64,
        timeout: Duration,
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in parts {
            tpl.add_partition_offset(t, *p, Offset::Offset(ts_ms))?;
        }
        let got = self.inner.offsets_for_times(tpl, timeout)?;
        Ok(parts
            .iter()
            .map(|(t, p)| {
                let off = match got.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o >= 0 => Some(o),
                    _ => None,
                };
                ((t.clone(), *p), off)
            })
            .collect())
    }

    /// The end (high watermark) of each of `parts`, in one ListOffsets
    /// round instead of a request per partition (0 where the broker gives
    /// none).
    pub fn end_offsets(
        &self,
        parts: &[(String, i32)],
        timeout: Duration,
    ) -> Result<BTreeMap<(String, i32), i64>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in parts {
            // As a timestamp, End (-1) asks for the latest offset.
            tpl.add_partition_offset(t, *p, Offset::End)?;
        }
        let got = self.inner.offsets_for_times(tpl, timeout)?;
        let mut out = BTreeMap::new();
        for (t, p) in parts {
            let off = match got.find_partition(t, *p) {
                Some(e) => {
                    // A partition the broker could not answer for is an
                    // error, not an empty partition.
                    e.error()?;
                    match e.offset() {
                        Offset::Offset(o) if o >= 0 => o,
                        _ => 0,
                    }
                }
                None => 0,
            };
            out.insert((t.clone(), *p), off);
        }
        Ok(out)
    }

    /// Low and high watermarks of a partition.
    pub fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<(i64, i64), KafkaError> {
        self.inner.fetch_watermarks(topic, partition, timeout)
    }

    /// The sum of the high watermarks of `topic`'s partitions `0..partitions`:
    /// how many records were ever written to a topic nothing deleted from.
    pub fn end_offsets_total(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<i64, KafkaError> {
        let mut total = 0;
        for p in 0..partitions {
            total += self.watermarks(topic, p, timeout)?.1;
        }
        Ok(total)
    }

    /// Leaves the group cleanly so its partitions move at once.
    pub fn close(self) {
        self.inner.unsubscribe();
    }
}

/// A message's headers through librdkafka directly (see `from_message`).
fn read_headers(m: &BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    use rdkafka::bindings as rd;
    let mut out = Vec::new();
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is the live message `m` borrows; librdkafka owns
    // the headers and everything read here is copied before `m` goes away.
    unsafe {
        if rd::rd_kafka_message_headers(m.ptr(), &mut hdrs)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            || hdrs.is_null()
        {
            return out;
        }
        let mut idx = 0;
        loop {
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            let mut value: *const std::os::raw::c_void = std::ptr::null();
            let mut size: usize = 0;
            let err = rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size);
            if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                break;
            }
            let key = std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned();
            let v = if value.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec()
            };
            out.push((key, v));
            idx += 1;
        }
    }
    out
}

//! The sink loop: consume the sink input topics in batches, decode, hand
//! each batch to a [`Writer`], and commit the group's offsets only once
//! the writer has made the batch durable.
//!
//! # Guarantees
//!
//! - *At least once into the store, exactly once in effect.* Offsets are
//!   committed after the write succeeds, so a crash (or SIGKILL) between
//!   the write and the commit redelivers the batch; the writers upsert by
//!   natural key and version ([`crate::event::version`]), so a redelivered
//!   record changes nothing.
//! - *A store that is down pauses the sink.* A failed write is retried,
//!   with backoff, on the same batch until it succeeds or the sink is shut
//!   down; nothing is committed meanwhile and nothing new is fetched (back
//!   pressure: the broker keeps the backlog). `conveyor_sink_stalled` is 1
//!   and the readiness check fails while it lasts; the sink catches up
//!   after. If the stall outlasts `max.poll.interval.ms` the member leaves
//!   the group and rejoins afterwards; with nothing committed, the records
//!   come again (duplicates, which the writers absorb).
//! - *Bad input never stops the sink.* A record that does not decode goes
//!   to the DLQ (stage = the sink's name) with its coordinates; the batch
//!   goes on. A registry that cannot be reached is retried, not
//!   dead-lettered.
//! - *Shutdown* finishes or abandons the batch in hand (abandoned = not
//!   committed, so redelivered) and leaves the group.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runtime::backoff::Backoff;
use conveyor_runtime::config::KafkaConfig;
use conveyor_runtime::kafka::{Consumer, InRecord, KafkaError, OutRecord, Producer};
use conveyor_runtime::observability::Health;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::DlqRecord;
use tokio_util::sync::CancellationToken;

use crate::event::{Inputs, Located};

/// A sink's store side: makes a batch durable, idempotently.
pub trait Writer: Send {
    /// Writes every record of `batch` (in order; later versions win) and
    /// returns the number of rows written. An error means nothing is known
    /// to be durable: the feed retries the same batch.
    fn write(&mut self, batch: &[Located]) -> impl Future<Output = Result<u64, WriteError>> + Send;
}

/// A failed write, with the store's message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(pub String);

#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// The sink's name: consumer client id, DLQ stage, metrics label.
    pub name: String,
    pub group_id: String,
    pub dlq_topic: String,
    /// Most records per batch.
    pub max_records: usize,
    /// How long a batch waits for more records after its first.
    pub max_wait: Duration,
    /// Rebuilds (`conveyor replay rebuild --sink`): stop once every listed
    /// `(topic, partition)` is written up to this offset.
    pub until: Option<BTreeMap<(String, i32), i64>>,
    /// Records written so far, for progress bars.
    pub progress: Option<Arc<std::sync::atomic::AtomicU64>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedSummary {
    pub records: u64,
    pub rows: u64,
    pub batches: u64,
    pub dead_lettered: u64,
    /// Failed write attempts (each retried).
    pub write_failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("sink {sink}: kafka client: {source}")]
    Kafka { sink: String, source: KafkaError },
}

/// The readiness check a feed reports to.
pub fn check_name(sink: &str) -> String {
    format!("sink:{sink}")
}

/// Runs the feed until `shutdown`.
pub async fn run<W: Writer>(
    kafka: &KafkaConfig,
    codec: Arc<Codec>,
    inputs: &Inputs,
    spec: &FeedSpec,
    writer: &mut W,
    shutdown: CancellationToken,
    health: Option<Health>,
) -> Result<FeedSummary, FeedError> {
    let kerr = |source| FeedError::Kafka {
        sink: spec.name.clone(),
        source,
    };
    let consumer = Consumer::new(kafka, &spec.name, &spec.group_id).map_err(kerr)?;
    let topics = inputs.topics();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs).map_err(kerr)?;
    let producer = Producer::new(kafka, &spec.name).map_err(kerr)?;
    let check = check_name(&spec.name);
    let report = |ready: bool, detail: String| {
        if let Some(h) = &health {
            h.set(&check, ready, detail);
        }
    };
    report(true, "consuming".into());
    let label = spec.name.clone();
    metrics::gauge!("conveyor_sink_stalled", "sink" => label.clone()).set(0.0);
    // Exported at 0 from the start (alerts on their rate see a flat series).
    metrics::counter!("conveyor_sink_write_errors_total", "sink" => label.clone()).increment(0);
    metrics::counter!("conveyor_dlq_total", "stage" => label.clone()).increment(0);
    let mut summary = FeedSummary::default();
    let mut recv_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut reached: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let done = |reached: &BTreeMap<(String, i32), i64>| {
        spec.until.as_ref().is_some_and(|until| {
            until
                .iter()
                .all(|(tp, u)| reached.get(tp).is_some_and(|r| r >= u))
        })
    };

    'batches: while !done(&reached) {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = consumer.recv() => r,
        };
        let first = match first {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(sink = %spec.name, error = %e, "consume failed; retrying");
                tokio::time::sleep(recv_backoff.next_delay()).await;
                continue;
            }
        };
        recv_backoff.reset();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + spec.max_wait;
        while batch.len() < spec.max_records {
            tokio::select! {
                r = consumer.recv() => match r {
                    Ok(rec) => batch.push(rec),
                    Err(e) => {
                        tracing::warn!(sink = %spec.name, error = %e, "consume failed mid-batch");
                        break;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let started = Instant::now();

        // Decode; what cannot be decoded goes to the DLQ.
        let mut events = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for rec in &batch {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
            loop {
                match inputs.decode(&codec, rec).await {
                    Ok(l) => events.push(l),
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(sink = %spec.name, error = %e, "registry unavailable; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break 'batches,
                            _ = tokio::time::sleep(backoff.next_delay()) => continue,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(sink = %spec.name, error = %e, "undecodable record to the DLQ");
                        dead.push(DlqRecord::for_decode_error(&spec.name, &e, rec));
                    }
                }
                break;
            }
        }
        if !dead.is_empty() {
            if !dead_letter(&producer, &codec, &spec.dlq_topic, &dead, &shutdown).await {
                break;
            }
            summary.dead_lettered += dead.len() as u64;
            metrics::counter!("conveyor_dlq_total", "stage" => label.clone())
                .increment(dead.len() as u64);
        }

        // Write, retrying the same batch until it is durable.
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
        let rows = loop {
            match writer.write(&events).await {
                Ok(rows) => break rows,
                Err(e) => {
                    summary.write_failures += 1;
                    metrics::counter!("conveyor_sink_write_errors_total", "sink" => label.clone())
                        .increment(1);
                    metrics::gauge!("conveyor_sink_stalled", "sink" => label.clone()).set(1.0);
                    report(false, format!("store unavailable, retrying: {e}"));
                    tracing::warn!(sink = %spec.name, error = %e, records = events.len(),
                        "write failed; the sink pauses and retries the batch");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'batches,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        };
        if backoff.attempts() > 0 {
            metrics::gauge!("conveyor_sink_stalled", "sink" => label.clone()).set(0.0);
            report(true, "consuming".into());
            tracing::info!(sink = %spec.name, "store back; the sink resumes");
        }

        let next = positions(&batch);
        if let Err(e) = consumer.commit(&next) {
            // Not fatal: the records come again and the writers absorb them.
            tracing::warn!(sink = %spec.name, error = %e, "offset commit failed");
        }
        if spec.until.is_some() {
            for (t, p, o) in next {
                let r = reached.entry((t.to_string(), p)).or_insert(o);
                *r = (*r).max(o);
            }
        }
        if let Some(p) = &spec.progress {
            p.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        summary.records += batch.len() as u64;
        summary.rows += rows;
        summary.batches += 1;
        metrics::counter!("conveyor_sink_records_total", "sink" => label.clone())
            .increment(batch.len() as u64);
        metrics::counter!("conveyor_sink_rows_total", "sink" => label.clone()).increment(rows);
        metrics::histogram!("conveyor_sink_batch_seconds", "sink" => label.clone())
            .record(started.elapsed().as_secs_f64());
    }
    consumer.close();
    Ok(summary)
}

/// The offset after the last record of each partition in `batch`.
fn positions(batch: &[InRecord]) -> Vec<(&str, i32, i64)> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    next.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

/// Publishes `dead` to the DLQ, retrying until acknowledged; `false` when
/// shut down first (the batch is then not committed).
async fn dead_letter(
    producer: &Producer,
    codec: &Codec,
    topic: &str,
    dead: &[DlqRecord],
    shutdown: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let mut records = Vec::with_capacity(dead.len());
        let mut failed = None;
        for d in dead {
            match codec.encode(topic, d).await {
                Ok(bytes) => {
                    let mut r = OutRecord::new(topic).payload(bytes);
                    if let Some(k) = &d.original_key {
                        r = r.key(k.clone());
                    }
                    records.push(r.header(conveyor_stream::EVENT_ID_HEADER, d.event_id.clone()));
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if failed.is_none() {
            let results = producer.send_batch(&records).await;
            failed = results
                .into_iter()
                .find_map(|r| r.err())
                .map(|e| e.to_string());
        }
        let Some(e) = failed else { return true };
        tracing::warn!(topic, error = %e, "cannot write to the DLQ; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, partition: i32, offset: i64) -> InRecord {
        InRecord {
            topic: topic.into(),
            partition,
            offset,
            key: None,
            payload: None,
            headers: vec![],
            timestamp_ms: None,
        }
    }

    #[test]
    fn commits_the_offset_after_each_partitions_last_record() {
        let batch = [
            rec("a", 0, 5),
            rec("b", 1, 9),
            rec("a", 0, 7),
            rec("a", 1, 2),
        ];
        assert_eq!(
            positions(&batch),
            vec![("a", 0, 8), ("a", 1, 3), ("b", 1, 10)]
        );
    }
}

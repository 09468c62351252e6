//! The job loop: consume a batch, process it, produce outputs, write the
//! changelog, commit the store, commit the consumer offsets. See the crate
//! docs for the protocol and the failures it covers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runtime::backoff::Backoff;
use conveyor_runtime::config::KafkaConfig;
use conveyor_runtime::kafka::{consumer_config, Admin, InRecord, KafkaError, OutRecord, Producer};
use conveyor_runtime::observability::Health;
use conveyor_schemas::codec::{Codec, DecodeError};
use conveyor_schemas::records::{DlqRecord, ErrorKind};
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::changelog::{self, RestoreError};
use crate::dedup;
use crate::merge::MergeClock;
use crate::processor::{Input, Output, Payload, ProcessError, Processor, EVENT_ID_HEADER};
use crate::rebalance::{Event, JobContext};
use crate::state::{Committed, PartitionStore, Reader, State, StoreError, Writes};

/// What a job runs.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The processor's name: DLQ stage, metrics label, client id.
    pub name: String,
    pub group_id: String,
    /// Input topics (exactly one for a stateful job: one log per state).
    pub inputs: Vec<String>,
    pub store: Option<StoreSpec>,
    /// Where rejected records go.
    pub dlq_topic: String,
    pub batch: BatchSpec,
    /// Readiness to report to (check `state`: not ready while a store is
    /// being restored, so an orchestrator sees a restoring instance).
    pub health: Option<Health>,
    /// Set when `conveyor replay` runs the job over a bounded range.
    pub replay: Option<ReplayRun>,
}

/// A bounded re-run of a job by `conveyor replay` (see docs/replay.md).
#[derive(Debug, Clone, Default)]
pub struct ReplayRun {
    /// Stamped on every output ([`GENERATION_HEADER`]), so the sinks let
    /// a replay's records supersede the first run's (same event time,
    /// higher generation).
    pub generation: u16,
    /// Per input `(topic, partition)`: the offset to stop before. The job
    /// ends once every listed partition is done; records of unlisted
    /// partitions are left to the live job (not processed, not committed).
    pub until: BTreeMap<(String, i32), i64>,
    /// Input records handled so far (processed, skipped or dead-lettered),
    /// for progress bars.
    pub progress: Arc<std::sync::atomic::AtomicU64>,
    /// Not bounded: the job follows its input until shutdown, as the live
    /// job would (it drops re-emissions by source mark), stamping the
    /// generation. An internal job of a replayed stage (allocate,
    /// inventory, route read command topics the replayed feeds write).
    pub follow: bool,
    /// Shared by the bounded jobs of one replay: they process their inputs
    /// in event-time order across jobs (see [`crate::merge`]).
    pub clock: Option<Arc<MergeClock>>,
}

/// Header of outputs written by a replay: its generation, ASCII decimal
/// (absent outside replays: generation 0).
pub const GENERATION_HEADER: &str = "conveyor.generation";

/// A stateful job's store.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// `<processor>.<store>`, as `conveyor state get` names it.
    pub name: String,
    /// Changelog topic (compacted, as many partitions as the input).
    pub changelog: String,
    /// Directory of the partition files (`p<partition>.redb`).
    pub dir: PathBuf,
}

impl StoreSpec {
    pub fn partition_path(&self, partition: i32) -> PathBuf {
        partition_path(&self.dir, partition)
    }
}

/// The file of `partition` in a store directory.
pub fn partition_path(dir: &std::path::Path, partition: i32) -> PathBuf {
    dir.join(format!("p{partition}.redb"))
}

#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    /// Most records per batch.
    pub max_records: usize,
    /// How long to wait for more records once a batch has one.
    pub max_wait: Duration,
}

impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            max_records: 2000,
            max_wait: Duration::from_millis(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {0}: a stateful job reads exactly one input topic (one log per state)")]
    Inputs(String),
    #[error("job {job}: kafka client: {source}")]
    Kafka { job: String, source: KafkaError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job {job}: state: {message}")]
    State { job: String, message: String },
    #[error("job {job}: {message}")]
    Producer { job: String, message: String },
    #[error("{0}")]
    Changelog(String),
    #[error("job {job}: cannot write to the DLQ {topic}: {message}")]
    Dlq {
        job: String,
        topic: String,
        message: String,
    },
}

/// Totals of a finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub processed: u64,
    /// Re-deliveries dropped by position (offsets already applied).
    pub skipped: u64,
    /// Re-emissions dropped by source high-water mark (see [`crate::dedup`]).
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub outputs: u64,
    pub batches: u64,
    pub restores: u64,
}

struct Part {
    store: PartitionStore,
    position: Option<i64>,
    /// Replay epoch of the position (see [`changelog`]).
    epoch: i64,
}

/// Runs `processor` until `shutdown` fires, then finishes the batch in
/// hand, flushes and commits.
pub async fn run<P: Processor>(
    kafka: &KafkaConfig,
    codec: Arc<Codec>,
    spec: JobSpec,
    processor: P,
    shutdown: CancellationToken,
) -> Result<Summary, JobError> {
    if spec.store.is_some() && spec.inputs.len() != 1 {
        return Err(JobError::Inputs(spec.name.clone()));
    }
    let kerr = |source| JobError::Kafka {
        job: spec.name.clone(),
        source,
    };
    if let Some(store) = &spec.store {
        // Changelog partition p backs input partition p: check it before
        // the first restore instead of retrying a missing one forever.
        let topics = Admin::new(kafka)
            .map_err(kerr)?
            .list_topics()
            .await
            .map_err(kerr)?;
        let input = topics.get(&spec.inputs[0]).map(|t| t.0);
        match (input, topics.get(&store.changelog).map(|t| t.0)) {
            (_, None) => {
                return Err(JobError::Changelog(format!(
                    "changelog topic {} does not exist (create it with `conveyor topics create`)",
                    store.changelog
                )))
            }
            (Some(i), Some(c)) if c < i => {
                return Err(JobError::Changelog(format!(
                    "changelog {} has {c} partitions but input {} has {i}: give the changelog as many partitions as the input",
                    store.changelog, spec.inputs[0]
                )))
            }
            _ => {}
        }
    }
    let mut cc = consumer_config(kafka, &spec.name, &spec.group_id);
    // Backpressure: the loop takes a batch only once the previous one is
    // produced and committed, and librdkafka fetches ahead of it at most
    // `queued.max.messages.kbytes` (64 MB per consumer by default; tune it
    // in kafka.properties), so a 100x burst waits on the broker, not in
    // this process's memory. Smaller prefetch limits measured slower here.
    if !kafka.properties.contains_key("statistics.interval.ms") {
        cc.set("statistics.interval.ms", "5000");
    }
    let consumer: StreamConsumer<JobContext> = cc
        .create_with_context(JobContext::new(&spec.name))
        .map_err(kerr)?;
    let topics: Vec<&str> = spec.inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(kerr)?;
    let producer = Producer::new(kafka, &spec.name).map_err(kerr)?;
    let restorer = changelog::reader(kafka, &spec.group_id).map_err(kerr)?;
    let mut job = Job {
        restorer,
        codec,
        spec,
        processor,
        consumer,
        producer,
        parts: HashMap::new(),
        summary: Summary::default(),
        reached: BTreeMap::new(),
        ended: Vec::new(),
        held: BTreeMap::new(),
        last_ts: BTreeMap::new(),
        bounds_checked: Instant::now(),
        shutdown,
    };
    let res = job.run_loop().await;
    if let Some(c) = job.spec.replay.as_ref().and_then(|r| r.clock.as_ref()) {
        c.leave(&job.spec.name);
    }
    job.finish();
    res.map(|()| job.summary)
}

struct Job<P: Processor> {
    /// Reads changelogs when a partition's store is restored (one client
    /// for the job's life, assigned one changelog partition at a time).
    restorer: StreamConsumer,
    codec: Arc<Codec>,
    spec: JobSpec,
    processor: P,
    consumer: StreamConsumer<JobContext>,
    producer: Producer,
    /// Open stores by input partition (stateful jobs only).
    parts: HashMap<i32, Part>,
    summary: Summary,
    /// Replays: the next offset per input partition handled so far.
    reached: BTreeMap<(String, i32), i64>,
    /// Replays: partitions that hit their bound in the batch in hand;
    /// done once that batch is.
    ended: Vec<((String, i32), i64)>,
    /// Replays in event-time order: records past the clock's fence, held
    /// back (their partition paused) in offset order.
    held: BTreeMap<(String, i32), VecDeque<InRecord>>,
    /// Replays in event-time order: the newest event time processed per
    /// partition.
    last_ts: BTreeMap<(String, i32), i64>,
    /// Bounded replays: when emptied ranges were last looked for.
    bounds_checked: Instant,
    shutdown: CancellationToken,
}

/// Why a batch did not complete.
enum BatchFailure {
    /// Broker or registry trouble: back off and run the same batch again.
    Retry(String),
    /// Shutdown arrived while retrying: leave the batch unprocessed.
    Interrupted,
    /// The group revoked the partitions meanwhile: drop the batch, rejoin.
    Lost,
    Fatal(JobError),
}

impl<P: Processor> Job<P> {
    fn set_state_health(&self, ready: bool, detail: String) {
        if let Some(h) = &self.spec.health {
            h.set(&state_check(&self.spec.name), ready, detail);
        }
    }

    async fn run_loop(&mut self) -> Result<(), JobError> {
        self.set_state_health(true, "no partition restoring".into());
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        while !self.shutdown.is_cancelled() && !self.replay_done() {
            let mut batch = self.gather().await?;
            self.bound_batch(&mut batch);
            self.merge(&mut batch);
            if batch.is_empty() {
                self.end_emptied_ranges();
                self.note_reached(&batch);
                continue;
            }
            loop {
                match self.process_batch(&batch).await {
                    Ok(()) => {
                        backoff.reset();
                        self.note_reached(&batch);
                        break;
                    }
                    Err(BatchFailure::Retry(why)) => {
                        if self.check_assignment().is_err() {
                            self.forget_in_flight();
                            break;
                        }
                        let d = backoff.next_delay();
                        tracing::warn!(processor = %self.spec.name, error = %why, retry_in = ?d, "batch failed; retrying it");
                        metrics::counter!("conveyor_processor_batch_retries_total", "processor" => self.spec.name.clone()).increment(1);
                        if self.sleep(d).await {
                            return Ok(());
                        }
                    }
                    Err(BatchFailure::Interrupted) => return Ok(()),
                    Err(BatchFailure::Lost) => {
                        self.forget_in_flight();
                        break;
                    }
                    Err(BatchFailure::Fatal(e)) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A replay's job is done when every bounded partition reached its end.
    fn replay_done(&self) -> bool {
        let Some(r) = &self.spec.replay else {
            return false;
        };
        !r.until.is_empty()
            && self.held.is_empty()
            && r.until
                .iter()
                .all(|(tp, u)| self.reached.get(tp).is_some_and(|got| got >= u))
    }

    /// A replay's batch that will not complete (its partitions were lost):
    /// what it marked as ended and what the clock held back are dropped
    /// (not processed, so not committed: fetched again after the rejoin),
    /// and the held partitions resumed.
    fn forget_in_flight(&mut self) {
        self.ended.clear();
        let mut tpl = TopicPartitionList::new();
        for (t, p) in std::mem::take(&mut self.held).into_keys() {
            tpl.add_partition(&t, p);
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.resume(&tpl) {
                tracing::debug!(processor = %self.spec.name, error = %e, "resuming held partitions");
            }
        }
    }

    /// A bounded partition whose remaining range was removed meanwhile
    /// (retention after the plan, or before a resume) yields no record to
    /// end it: once its first retained offset is at or past the bound, it
    /// is done. Looked at on idle gathers, at most every 5 s.
    fn end_emptied_ranges(&mut self) {
        let Some(r) = self.spec.replay.as_ref().filter(|r| !r.follow) else {
            return;
        };
        if self.bounds_checked.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.bounds_checked = Instant::now();
        for ((t, p), u) in &r.until {
            let tp = (t.clone(), *p);
            if self.reached.get(&tp).is_some_and(|got| got >= u) || self.held.contains_key(&tp) {
                continue;
            }
            if let Ok((low, _)) = self
                .consumer
                .fetch_watermarks(t, *p, Duration::from_secs(1))
            {
                if low >= *u {
                    self.reached.insert(tp, *u);
                }
            }
        }
    }

    /// Drops records at or past a replay's bound (the live job processes
    /// them later) and pauses partitions that reached it.
    fn bound_batch(&mut self, batch: &mut Vec<InRecord>) {
        let Some(r) = self.spec.replay.as_ref().filter(|r| !r.follow) else {
            return;
        };
        let mut ended = Vec::new();
        batch.retain(|rec| {
            let tp = (rec.topic.clone(), rec.partition);
            match r.until.get(&tp) {
                Some(u) if rec.offset >= *u => {
                    ended.push((tp, Some(*u)));
                    false
                }
                // A partition the replay has nothing to do on.
                None => {
                    ended.push((tp, None));
                    false
                }
                _ => true,
            }
        });
        if ended.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), u) in ended {
            tpl.add_partition(&t, p);
            if let Some(u) = u {
                // Done only once the records before it in this batch are.
                self.ended.push(((t, p), u));
            }
        }
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::debug!(processor = %self.spec.name, error = %e, "pausing finished replay partitions");
        }
    }

    /// After a batch: a replay's progress, the offsets (and, under a
    /// clock, event times) each bounded partition reached, and the bounds
    /// met once nothing before them is left (in the batch or held back).
    fn note_reached(&mut self, batch: &[InRecord]) {
        let Some(r) = &self.spec.replay else {
            return;
        };
        r.progress
            .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if r.follow {
            return;
        }
        let clocked = r.clock.is_some();
        let (pending, met): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ended)
            .into_iter()
            .partition(|(tp, _)| self.held.contains_key(tp));
        self.ended = pending;
        for (tp, u) in met {
            let got = self.reached.entry(tp).or_insert(u);
            *got = (*got).max(u);
        }
        // Per partition: the next offset and the newest event time.
        let mut last: BTreeMap<(&str, i32), (i64, Option<i64>)> = BTreeMap::new();
        for rec in batch {
            let e = last
                .entry((rec.topic.as_str(), rec.partition))
                .or_insert((0, None));
            e.0 = e.0.max(rec.offset + 1);
            if clocked {
                e.1 = e.1.max(rec.timestamp_ms);
            }
        }
        for ((t, p), (next, ts)) in last {
            let tp = (t.to_string(), p);
            if let Some(ts) = ts {
                let l = self.last_ts.entry(tp.clone()).or_insert(ts);
                *l = (*l).max(ts);
            }
            let got = self.reached.entry(tp).or_insert(0);
            *got = (*got).max(next);
        }
        self.report_low();
    }

    /// Replays in event-time order: hands back held records the clock now
    /// lets through (before anything newer of their partition), holds the
    /// batch's records past the fence, pauses partitions that hold records
    /// and resumes those that no longer do.
    fn merge(&mut self, batch: &mut Vec<InRecord>) {
        let Some(clock) = self.spec.replay.as_ref().and_then(|r| r.clock.clone()) else {
            return;
        };
        let fence = clock.fence(&self.spec.name);
        let within = |r: &InRecord| r.timestamp_ms.is_none_or(|t| t <= fence);
        let mut out = Vec::with_capacity(batch.len());
        let mut freed = Vec::new();
        for (tp, q) in self.held.iter_mut() {
            while q.front().is_some_and(within) {
                out.extend(q.pop_front());
            }
            if q.is_empty() {
                freed.push(tp.clone());
            }
        }
        for tp in &freed {
            self.held.remove(tp);
        }
        let mut newly = Vec::new();
        for rec in batch.drain(..) {
            let tp = (rec.topic.clone(), rec.partition);
            if let Some(q) = self.held.get_mut(&tp) {
                q.push_back(rec);
            } else if within(&rec) {
                out.push(rec);
            } else {
                newly.push(tp.clone());
                self.held.entry(tp).or_default().push_back(rec);
            }
        }
        *batch = out;
        let (mut pause, mut resume) = (TopicPartitionList::new(), TopicPartitionList::new());
        for (t, p) in &newly {
            pause.add_partition(t, *p);
        }
        // Not those paused at their bound (their records after it are the
        // live job's).
        let at_bound = |tp: &(String, i32)| self.ended.iter().any(|(x, _)| x == tp);
        for (t, p) in freed
            .iter()
            .filter(|tp| !self.held.contains_key(*tp) && !at_bound(tp))
        {
            resume.add_partition(t, *p);
        }
        if pause.count() > 0 {
            if let Err(e) = self.consumer.pause(&pause) {
                tracing::debug!(processor = %self.spec.name, error = %e, "pausing held partitions");
            }
        }
        if resume.count() > 0 {
            if let Err(e) = self.consumer.resume(&resume) {
                tracing::debug!(processor = %self.spec.name, error = %e, "resuming released partitions");
            }
        }
        // The low is reported once the released records are processed
        // (`note_reached`): until then the previous one still holds.
    }

    /// Replays in event-time order: tells the clock the oldest event time
    /// this job may still process (its unfinished partitions' held heads or
    /// last processed times; unknown before a partition's first record).
    fn report_low(&self) {
        let Some(r) = self.spec.replay.as_ref() else {
            return;
        };
        let Some(clock) = &r.clock else {
            return;
        };
        let low = r
            .until
            .iter()
            .filter(|(tp, u)| self.reached.get(*tp).is_none_or(|got| got < *u))
            .map(|(tp, _)| {
                match self
                    .held
                    .get(tp)
                    .and_then(|q| q.front())
                    .and_then(|r| r.timestamp_ms)
                {
                    Some(ts) => ts,
                    None => self.last_ts.get(tp).copied().unwrap_or(i64::MIN),
                }
            })
            .min();
        match low {
            Some(low) => clock.report(&self.spec.name, low),
            None => clock.leave(&self.spec.name),
        }
    }

    /// Sleeps `d`; true if shutdown fired meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }

    /// Up to `max_records` records, applying rebalance events as they come.
    async fn gather(&mut self) -> Result<Vec<InRecord>, JobError> {
        let mut buf: Vec<InRecord> = Vec::new();
        let mut deadline: Option<Instant> = None;
        loop {
            let wait = match deadline {
                // Holding records for a replay's clock: look again soon.
                None if !self.held.is_empty() => Duration::from_millis(20),
                None => Duration::from_millis(250),
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if wait.is_zero() {
                break;
            }
            let got = tokio::select! {
                _ = self.shutdown.cancelled(), if buf.is_empty() => None,
                r = tokio::time::timeout(wait, self.consumer.recv()) => {
                    Some(r.map(|r| r.map(|m| InRecord::from_message(&m))))
                }
            };
            match got {
                None => break,
                Some(Err(_elapsed)) => break,
                Some(Ok(Err(e))) => {
                    tracing::warn!(processor = %self.spec.name, error = %e, "consume error");
                    if buf.is_empty() {
                        self.sleep(Duration::from_millis(200)).await;
                    }
                    break;
                }
                Some(Ok(Ok(m))) => {
                    self.apply_events(&mut buf).await?;
                    buf.push(m);
                    deadline.get_or_insert_with(|| Instant::now() + self.spec.batch.max_wait);
                    if buf.len() >= self.spec.batch.max_records {
                        break;
                    }
                }
            }
        }
        self.apply_events(&mut buf).await?;
        Ok(buf)
    }

    async fn apply_events(&mut self, buf: &mut Vec<InRecord>) -> Result<(), JobError> {
        for ev in self.consumer.context().take_events() {
            match ev {
                Event::Revoked(parts) => {
                    buf.retain(|r| {
                        !parts
                            .iter()
                            .any(|(t, p)| *t == r.topic && *p == r.partition)
                    });
                    let revoked = |t: &String, p: i32| parts.iter().any(|x| x.0 == *t && x.1 == p);
                    self.held.retain(|(t, p), _| !revoked(t, *p));
                    self.ended.retain(|((t, p), _)| !revoked(t, *p));
                    for (_, p) in parts {
                        // Every batch is committed: closing is dropping.
                        self.parts.remove(&p);
                    }
                }
                Event::Assigned(parts) => {
                    if self.spec.store.is_some() {
                        for (_, p) in parts {
                            self.open_partition(p).await?
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens (restoring as needed) the store of input partition `p`.
    async fn open_partition(&mut self, p: i32) -> Result<(), JobError> {
        if self.parts.contains_key(&p) {
            return Ok(());
        }
        let Some(store) = self.spec.store.clone() else {
            return Ok(());
        };
        self.set_state_health(false, format!("restoring {} partition {p}", store.name));
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match changelog::restore(
                &self.restorer,
                &store.name,
                &store.partition_path(p),
                &store.changelog,
                p,
                None,
            )
            .await
            {
                Ok((s, restored)) => {
                    tracing::info!(
                        store = %store.name,
                        partition = p,
                        kind = ?restored.kind,
                        changelog_records = restored.records,
                        position = ?restored.position,
                        epoch = restored.epoch,
                        elapsed_ms = restored.elapsed.as_millis() as u64,
                        "state store ready"
                    );
                    self.summary.restores += u64::from(restored.records > 0);
                    self.set_state_health(
                        true,
                        format!("{} partitions open", self.parts.len() + 1),
                    );
                    self.parts.insert(
                        p,
                        Part {
                            store: s,
                            position: restored.position,
                            epoch: restored.epoch,
                        },
                    );
                    return Ok(());
                }
                Err(RestoreError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    let d = backoff.next_delay();
                    tracing::warn!(store = %store.name, partition = p, error = %e, retry_in = ?d, "restore failed; retrying");
                    if self.sleep(d).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn process_batch(&mut self, batch: &[InRecord]) -> Result<(), BatchFailure> {
        let started = Instant::now();
        self.check_assignment()?;
        let stateful = self.spec.store.is_some();
        let mut in_batch: Vec<i32> = batch.iter().map(|r| r.partition).collect();
        in_batch.sort_unstable();
        in_batch.dedup();
        if stateful {
            for &p in &in_batch {
                self.open_partition(p).await.map_err(BatchFailure::Fatal)?;
                if !self.parts.contains_key(&p) {
                    return Err(BatchFailure::Interrupted);
                }
            }
        }
        let readers: HashMap<i32, Reader> = if stateful {
            let mut m = HashMap::new();
            for (p, part) in self.parts.iter().filter(|(p, _)| in_batch.contains(p)) {
                m.insert(
                    *p,
                    part.store
                        .reader()
                        .map_err(|e| BatchFailure::Fatal(e.into()))?,
                );
            }
            m
        } else {
            HashMap::new()
        };
        let mut writes: BTreeMap<i32, Writes> = BTreeMap::new();
        // Next offset per (topic, partition) covered by this batch.
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut last_ts: BTreeMap<i32, Option<i64>> = BTreeMap::new();
        let mut outputs: Vec<OutRecord> = Vec::new();
        let (mut processed, mut skipped, mut dlq, mut duplicates) = (0u64, 0u64, 0u64, 0u64);
        let name = self.spec.name.clone();
        let mut decoded = self.prepare(batch, &readers).await?;
        for (i, rec) in batch.iter().enumerate() {
            let p = rec.partition;
            if stateful {
                let pos = self.parts.get(&p).and_then(|x| x.position);
                if pos.is_some_and(|pos| rec.offset < pos) {
                    // Already applied to the store (a re-delivery after a
                    // restart or rebalance): its outputs were confirmed.
                    skipped += 1;
                    continue;
                }
            }
            next.insert((rec.topic.clone(), p), rec.offset + 1);
            last_ts.insert(p, rec.timestamp_ms);
            // A re-emission by the upstream job: already applied.
            let source = if stateful {
                rec.header(dedup::SOURCE_HEADER).and_then(dedup::parse)
            } else {
                None
            };
            if let Some((src, mark)) = source {
                let key =
                    dedup::state_key(src).map_err(|e| BatchFailure::Fatal(state_err(&name, e)))?;
                let seen = match writes.get(&p).and_then(|w| w.get(&key)) {
                    Some(v) => v.clone(),
                    None => match readers.get(&p) {
                        Some(r) => r.get(&key).map_err(|e| BatchFailure::Fatal(e.into()))?,
                        None => None,
                    },
                };
                let seen = seen.as_deref().and_then(dedup::decode_mark);
                // A replay re-runs what was applied on purpose: nothing in
                // its range is a duplicate; the mark never moves back.
                let live = self.spec.replay.as_ref().is_none_or(|r| r.follow);
                if live && seen.is_some_and(|m| mark <= m) {
                    duplicates += 1;
                    continue;
                }
                writes.entry(p).or_default().insert(
                    key,
                    Some(dedup::encode_mark(seen.map_or(mark, |m| m.max(mark)))),
                );
            }
            let got = match decoded.get_mut(i).and_then(Option::take) {
                Some(d) => d,
                None => self.decode(rec).await?,
            };
            let input = match got {
                Ok(v) => v,
                Err(e) => {
                    let d = DlqRecord::for_decode_error(&name, &e, rec);
                    outputs.push(self.dlq_record(rec, d).await?);
                    dlq += 1;
                    dlq_metric(&name, p, "decode");
                    continue;
                }
            };
            let batch_writes = writes.entry(p).or_default();
            let mut attempt = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            loop {
                let mut state = State::new(readers.get(&p), batch_writes);
                let mut outs = Vec::new();
                let res = self.processor.process(&input, rec, &mut state, &mut outs);
                let record_writes = state.into_writes();
                let rejected = match res {
                    Ok(()) => match self.encode_outputs(rec, outs).await? {
                        Ok(encoded) => {
                            outputs.extend(encoded);
                            batch_writes.extend(record_writes);
                            processed += 1;
                            None
                        }
                        Err(reason) => Some((ErrorKind::Processing, reason)),
                    },
                    Err(ProcessError::Invalid(m)) => Some((ErrorKind::Validation, m)),
                    Err(ProcessError::Failed(m)) => Some((ErrorKind::Processing, m)),
                    Err(ProcessError::Retry(m)) => {
                        self.check_assignment()?;
                        let d = attempt.next_delay();
                        tracing::warn!(processor = %name, partition = p, offset = rec.offset, error = %m, retry_in = ?d, "retryable processing error");
                        if self.sleep(d).await {
                            return Err(BatchFailure::Interrupted);
                        }
                        continue;
                    }
                    Err(ProcessError::State(e)) => {
                        return Err(BatchFailure::Fatal(JobError::State {
                            job: name.clone(),
                            message: e.to_string(),
                        }))
                    }
                };
                if let Some((kind, reason)) = rejected {
                    let label = match kind {
                        ErrorKind::Validation => "validation",
                        _ => "processing",
                    };
                    let d = DlqRecord::for_record(&name, kind, reason, rec, None, 1);
                    outputs.push(self.dlq_record(rec, d).await?);
                    dlq += 1;
                    dlq_metric(&name, p, label);
                }
                break;
            }
        }

        // 1-2. Outputs (DLQ records included) and changelog entries, all
        // acknowledged; then one changelog marker per partition. Entries
        // may go out beside the outputs: without their marker they are
        // ignored by a restore. The marker must wait for both.
        let output_count = outputs.len();
        let mut changelog_end: BTreeMap<i32, i64> = BTreeMap::new();
        if let Some(store) = &self.spec.store {
            let mut entries = Vec::new();
            let mut markers = Vec::new();
            for ((_, p), pos) in &next {
                let empty = Writes::new();
                let w = writes.get(p).unwrap_or(&empty);
                let ts = last_ts.get(p).copied().flatten();
                let epoch = self.parts.get(p).map_or(0, |x| x.epoch);
                let (e, m) = changelog::batch_records(&store.changelog, *p, w, *pos, epoch, ts);
                entries.extend(e);
                markers.push((*p, m));
            }
            outputs.extend(entries);
            self.produce_all(&outputs).await?;
            outputs.truncate(output_count);
            self.check_assignment()?;
            let ms: Vec<OutRecord> = markers.iter().map(|(_, m)| m.clone()).collect();
            let delivered = self.produce_all(&ms).await?;
            for ((p, _), d) in markers.iter().zip(delivered) {
                changelog_end.insert(*p, d + 1);
            }
            // 3. The store: writes, position and changelog end in one commit.
            for ((_, p), pos) in &next {
                let part = self.parts.get_mut(p).ok_or_else(|| {
                    BatchFailure::Fatal(JobError::State {
                        job: name.clone(),
                        message: format!("partition {p} has no open store"),
                    })
                })?;
                let empty = Writes::new();
                part.store
                    .commit(
                        writes.get(p).unwrap_or(&empty),
                        Some((part.epoch, *pos)),
                        changelog_end.get(p).copied(),
                    )
                    .map_err(|e| BatchFailure::Fatal(e.into()))?;
                part.position = Some(*pos);
            }
        }
        if self.spec.store.is_none() {
            self.produce_all(&outputs).await?;
        }
        // 4. The group's offsets (a hint for where fetching resumes; the
        // store's position is the truth for stateful jobs).
        self.commit_offsets(&next, CommitMode::Async);

        let secs = started.elapsed().as_secs_f64();
        metrics::histogram!("conveyor_processor_batch_seconds", "processor" => name.clone())
            .record(secs);
        metrics::histogram!("conveyor_processor_batch_records", "processor" => name.clone())
            .record(batch.len() as f64);
        let now_ms = now_ms();
        let mut per_part: BTreeMap<i32, u64> = BTreeMap::new();
        let latency =
            metrics::histogram!("conveyor_processor_latency_seconds", "processor" => name.clone());
        for rec in batch {
            *per_part.entry(rec.partition).or_default() += 1;
            if let Some(ts) = rec.timestamp_ms {
                latency.record(now_ms.saturating_sub(ts).max(0) as f64 / 1000.0);
            }
        }
        for (p, n) in per_part {
            metrics::counter!("conveyor_processor_records_total", "processor" => name.clone(), "partition" => p.to_string())
                .increment(n);
        }
        if skipped > 0 {
            metrics::counter!("conveyor_processor_skipped_total", "processor" => name.clone())
                .increment(skipped);
        }
        if duplicates > 0 {
            metrics::counter!("conveyor_processor_duplicates_total", "processor" => name.clone())
                .increment(duplicates);
        }
        metrics::counter!("conveyor_processor_outputs_total", "processor" => name.clone())
            .increment(outputs.len() as u64);
        self.summary.processed += processed;
        self.summary.skipped += skipped;
        self.summary.duplicates += duplicates;
        self.summary.dead_lettered += dlq;
        self.summary.outputs += outputs.len() as u64;
        self.summary.batches += 1;
        Ok(())
    }

    /// For a processor that prepares ([`Processor::PREPARES`]): decodes
    /// the whole batch and hands [`Processor::prepare`] the inputs that
    /// decoded and that the loop will process: not already applied (by
    /// position) and, in a live job, not a re-emission its source mark
    /// drops (the same test as the loop's, against the committed marks
    /// and the batch's earlier records). The decoded inputs, by batch
    /// index, for the processing loop. Otherwise nothing (the loop decodes
    /// record by record).
    async fn prepare(
        &mut self,
        batch: &[InRecord],
        readers: &HashMap<i32, Reader>,
    ) -> Result<Vec<Option<Result<P::In, DecodeError>>>, BatchFailure> {
        if !P::PREPARES {
            return Ok(Vec::new());
        }
        let live = self.spec.replay.as_ref().is_none_or(|r| r.follow);
        let stateful = self.spec.store.is_some();
        // Source marks as the loop will have them: committed, then raised
        // by the batch's earlier records.
        let mut marks: HashMap<(i32, Vec<u8>), (i64, u32)> = HashMap::new();
        let mut decoded = Vec::with_capacity(batch.len());
        for rec in batch {
            let applied = self
                .parts
                .get(&rec.partition)
                .and_then(|x| x.position)
                .is_some_and(|pos| rec.offset < pos);
            let mut duplicate = false;
            if stateful && !applied {
                if let Some((src, mark)) = rec.header(dedup::SOURCE_HEADER).and_then(dedup::parse) {
                    let key = dedup::state_key(src)
                        .map_err(|e| BatchFailure::Fatal(state_err(&self.spec.name, e)))?;
                    let k = (rec.partition, key);
                    let seen = match marks.get(&k) {
                        Some(m) => Some(*m),
                        None => match readers.get(&rec.partition) {
                            Some(r) => r
                                .get(&k.1)
                                .map_err(|e| BatchFailure::Fatal(e.into()))?
                                .as_deref()
                                .and_then(dedup::decode_mark),
                            None => None,
                        },
                    };
                    duplicate = live && seen.is_some_and(|m| mark <= m);
                    if !duplicate {
                        marks.insert(k, seen.map_or(mark, |m| m.max(mark)));
                    }
                }
            }
            decoded.push(if applied || duplicate {
                None
            } else {
                Some(self.decode(rec).await?)
            });
        }
        let inputs: Vec<(&P::In, &InRecord)> = decoded
            .iter()
            .zip(batch)
            .filter_map(|(d, rec)| match d {
                Some(Ok(input)) => Some((input, rec)),
                _ => None,
            })
            .collect();
        let started = Instant::now();
        self.processor
            .prepare(&inputs, Committed::new(readers))
            .await;
        metrics::histogram!("conveyor_processor_prepare_seconds", "processor" => self.spec.name.clone())
            .record(started.elapsed().as_secs_f64());
        drop(inputs);
        Ok(decoded)
    }

    /// Decodes with retries for registry trouble; `Ok(Err)` is a record for
    /// the DLQ.
    async fn decode(&self, rec: &InRecord) -> Result<Result<P::In, DecodeError>, BatchFailure> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            match P::In::decode(&self.codec, rec).await {
                Ok(v) => return Ok(Ok(v)),
                Err(e) if e.is_retryable() => {
                    let d = backoff.next_delay();
                    tracing::warn!(processor = %self.spec.name, error = %e, retry_in = ?d, "decode needs the registry; retrying");
                    if self.sleep(d).await {
                        return Err(BatchFailure::Interrupted);
                    }
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    /// Encodes a record's outputs; `Ok(Err(reason))` rejects the record.
    async fn encode_outputs(
        &self,
        rec: &InRecord,
        outs: Vec<Output>,
    ) -> Result<Result<Vec<OutRecord>, String>, BatchFailure> {
        let mut encoded = Vec::with_capacity(outs.len());
        let traceparent = rec.header(TRACEPARENT_HEADER);
        for (index, mut o) in outs.into_iter().enumerate() {
            o.headers.retain(|(k, _)| k != dedup::SOURCE_HEADER);
            // The trace continues through this stage (W3C trace context).
            if let Some(tp) = traceparent {
                if !o.headers.iter().any(|(k, _)| k == TRACEPARENT_HEADER) {
                    o.headers
                        .push((TRACEPARENT_HEADER.to_string(), tp.to_vec()));
                }
            }
            o.headers.push((
                dedup::SOURCE_HEADER.to_string(),
                dedup::header_value(
                    &self.spec.name,
                    &rec.topic,
                    rec.partition,
                    rec.offset,
                    index,
                ),
            ));
            if let Some(r) = self.spec.replay.as_ref().filter(|r| r.generation > 0) {
                o.headers.retain(|(k, _)| k != GENERATION_HEADER);
                o.headers.push((
                    GENERATION_HEADER.to_string(),
                    r.generation.to_string().into_bytes(),
                ));
            }
            let payload = match o.payload {
                Payload::Bytes(b) => Some(b),
                Payload::Tombstone => None,
                Payload::Avro(v) => {
                    let mut backoff =
                        Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
                    loop {
                        match v.encode(&self.codec, &o.topic).await {
                            Ok(b) => break Some(b),
                            Err(e) if e.is_retryable() => {
                                let d = backoff.next_delay();
                                tracing::warn!(processor = %self.spec.name, error = %e, retry_in = ?d, "encode needs the registry; retrying");
                                if self.sleep(d).await {
                                    return Err(BatchFailure::Interrupted);
                                }
                            }
                            Err(e) => return Ok(Err(format!("output to {}: {e}", o.topic))),
                        }
                    }
                }
            };
            encoded.push(OutRecord {
                topic: o.topic,
                key: Some(o.key),
                payload,
                headers: o.headers,
                timestamp_ms: rec.timestamp_ms,
                partition: None,
            });
        }
        Ok(Ok(encoded))
    }

    async fn dlq_record(&self, rec: &InRecord, d: DlqRecord) -> Result<OutRecord, BatchFailure> {
        tracing::warn!(
            processor = %self.spec.name,
            topic = %rec.topic,
            partition = rec.partition,
            offset = rec.offset,
            kind = ?d.error_kind,
            reason = %d.reason,
            "record dead-lettered"
        );
        let topic = self.spec.dlq_topic.clone();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let payload = loop {
            match self.codec.encode(&topic, &d).await {
                Ok(b) => break b,
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    if self.sleep(delay).await {
                        return Err(BatchFailure::Interrupted);
                    }
                }
                Err(e) => {
                    return Err(BatchFailure::Fatal(JobError::Dlq {
                        job: self.spec.name.clone(),
                        topic,
                        message: e.to_string(),
                    }))
                }
            }
        };
        let key = rec
            .key
            .clone()
            .unwrap_or_else(|| d.event_id.clone().into_bytes());
        Ok(OutRecord {
            topic,
            key: Some(key),
            payload: Some(payload),
            headers: vec![
                (EVENT_ID_HEADER.to_string(), d.event_id.into_bytes()),
                (
                    dedup::SOURCE_HEADER.to_string(),
                    dedup::header_value(&self.spec.name, &rec.topic, rec.partition, rec.offset, 0),
                ),
            ],
            timestamp_ms: rec.timestamp_ms,
            partition: None,
        })
    }

    /// Produces `records` (pipelined) and waits for every acknowledgement;
    /// returns their offsets. Any failure fails the batch, which is then
    /// produced again in full and in order (identical records).
    async fn produce_all(&self, records: &[OutRecord]) -> Result<Vec<i64>, BatchFailure> {
        let results = self.producer.send_batch(records).await;
        let mut offsets = Vec::with_capacity(results.len());
        for (rec, r) in records.iter().zip(results) {
            match r {
                Ok(d) => offsets.push(d.offset),
                Err(e) => {
                    if let Some(fatal) = self.producer.fatal_error() {
                        return Err(BatchFailure::Fatal(JobError::Producer {
                            job: self.spec.name.clone(),
                            message: format!("fatal producer error (restart the process): {fatal}"),
                        }));
                    }
                    if let Some(why) = permanent(&e) {
                        return Err(BatchFailure::Fatal(JobError::Producer {
                            job: self.spec.name.clone(),
                            message: format!("cannot write to {}: {why} ({e})", rec.topic),
                        }));
                    }
                    return Err(BatchFailure::Retry(format!(
                        "produce to {}: {e}",
                        rec.topic
                    )));
                }
            }
        }
        Ok(offsets)
    }

    /// Stops here if the group took the partitions away while this batch
    /// was being retried (a member that does not poll for
    /// `max.poll.interval.ms` is removed): the new owner redoes the batch,
    /// and this one must not write a marker or commit behind it.
    fn check_assignment(&mut self) -> Result<(), BatchFailure> {
        if self.consumer.assignment_lost() {
            tracing::warn!(processor = %self.spec.name, "assignment lost while the batch was retried; abandoning it");
            self.parts.clear();
            return Err(BatchFailure::Lost);
        }
        Ok(())
    }

    fn commit_offsets(&self, next: &BTreeMap<(String, i32), i64>, mode: CommitMode) {
        if next.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
                return;
            }
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            tracing::debug!(processor = %self.spec.name, error = %e, "offset commit failed (the next batch commits again)");
        }
    }

    /// Graceful end: durable stores, committed positions, leave the group.
    fn finish(&mut self) {
        // A replay's stateless job: where it got, for a resume.
        let bounded = self.spec.replay.as_ref().is_some_and(|r| !r.follow);
        let mut positions = if bounded && self.spec.store.is_none() {
            self.reached.clone()
        } else {
            BTreeMap::new()
        };
        for (p, part) in &self.parts {
            if let (Some(pos), Some(input)) = (part.position, self.spec.inputs.first()) {
                positions.insert((input.clone(), *p), pos);
            }
        }
        self.commit_offsets(&positions, CommitMode::Sync);
        self.consumer.unsubscribe();
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            tracing::warn!(error = %e, "producer flush at shutdown");
        }
        self.parts.clear();
    }
}

/// The readiness check job `job` reports to (see [`JobSpec::health`]):
/// `state:<job>`, so several jobs in one process each have their own.
pub fn state_check(job: &str) -> String {
    format!("state:{job}")
}

/// W3C trace context header, copied from each input to its outputs.
pub const TRACEPARENT_HEADER: &str = "traceparent";

fn dlq_metric(processor: &str, partition: i32, kind: &'static str) {
    metrics::counter!(
        "conveyor_processor_dlq_total",
        "processor" => processor.to_string(),
        "partition" => partition.to_string(),
        "kind" => kind
    )
    .increment(1);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why a produce error will not pass by retrying, if it will not.
fn permanent(e: &KafkaError) -> Option<&'static str> {
    use rdkafka::types::RDKafkaErrorCode as C;
    match e.rdkafka_error_code()? {
        C::MessageSizeTooLarge => Some("the record is larger than the broker accepts (message.max.bytes)"),
        C::UnknownPartition => Some("the partition does not exist (does the changelog have as many partitions as the input?)"),
        C::TopicAuthorizationFailed => Some("not authorized to write to the topic"),
        C::InvalidRecord | C::InvalidMessage => Some("the broker rejected the record as invalid"),
        _ => None,
    }
}

fn state_err(job: &str, e: crate::state::StateError) -> JobError {
    JobError::State {
        job: job.to_string(),
        message: e.to_string(),
    }
}

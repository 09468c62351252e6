//! Replay jobs on `conveyor.replays` (compacted, key = replay id, JSON):
//! the plan and generation are written before anything moves, and the
//! status after each step, so an interrupted replay can be resumed and
//! `conveyor replay status` (and the console) can show what ran.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Consumer, OutRecord, Producer};
use conveyor_runtime::topology::Topology;
use serde::{Deserialize, Serialize};

use super::plan::PartPlan;

/// What a replay job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Re-run a stage into the live outputs.
    Live,
    /// Recreate a sink's tables from the topics.
    RebuildSink,
    /// Recreate a local state store from its changelog.
    RebuildStore,
    /// Run the pipeline into a sandbox namespace.
    Sandbox,
}

/// Where a replay job stands. Each step is idempotent, so a resume redoes
/// the step it was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded; nothing moved yet.
    Planned,
    /// Stores rewound (or tables cleared) and offsets moved: running.
    Prepared,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayJob {
    pub id: String,
    pub kind: Kind,
    /// The stage (live), sink or store it works on.
    pub target: String,
    /// Replay generation: stamped on the outputs, epoch of the rewinds.
    pub generation: u16,
    pub reset_state: bool,
    /// The range as the user gave it.
    pub from: String,
    pub to: String,
    pub parts: Vec<PartPlan>,
    pub status: Status,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Messages re-run when it finished, and how long the run took.
    pub messages: u64,
    pub run_ms: u64,
    /// A sandbox's topic namespace.
    #[serde(default)]
    pub namespace: String,
    /// Event-time window the stage's feeds may be out of order within
    /// (allocate, route; see `conveyor_stream::merge`).
    #[serde(default)]
    pub window_ms: u64,
}

impl ReplayJob {
    /// A job as planned: nothing done yet, recorded now.
    pub fn new(kind: Kind, target: &str, generation: u16, parts: Vec<PartPlan>) -> ReplayJob {
        let now = now_ms();
        let label = match kind {
            Kind::Sandbox => format!("sandbox-{target}"),
            _ => target.to_string(),
        };
        ReplayJob {
            id: new_id(generation, &label),
            kind,
            target: target.to_string(),
            generation,
            reset_state: false,
            from: "earliest".into(),
            to: "now".into(),
            parts,
            status: Status::Planned,
            created_at_ms: now,
            updated_at_ms: now,
            messages: 0,
            run_ms: 0,
            namespace: String::new(),
            window_ms: 0,
        }
    }

    pub fn total_messages(&self) -> i64 {
        self.parts.iter().map(PartPlan::messages).sum()
    }

    /// Distinct consumer groups it moves.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.parts.iter().map(|p| p.group.clone()).collect();
        g.sort();
        g.dedup();
        g
    }
}

fn topic(config: &Config) -> anyhow::Result<String> {
    Topology::resolve(config)
        .topic_name("control_replays")
        .map(str::to_string)
        .context("the topology has no replays topic")
}

/// Every replay job recorded, oldest first.
pub async fn load(config: &Config) -> anyhow::Result<Vec<ReplayJob>> {
    let name = topic(config)?;
    super::super::stage::ensure_topics(config, &["control_replays"]).await?;
    let c = Consumer::new(&config.kafka, "replay", "conveyor-replay-reader")?;
    let t = Duration::from_secs(10);
    let parts = conveyor_runtime::kafka::Admin::new(&config.kafka)?
        .list_topics()
        .await?
        .get(&name)
        .map_or(1, |x| x.0);
    let mut ends = BTreeMap::new();
    let mut assign = Vec::new();
    for p in 0..parts {
        let (low, high) = c.watermarks(&name, p, t)?;
        if high > low {
            ends.insert(p, high);
            assign.push((name.as_str(), p, Some(low)));
        }
    }
    let mut by_id: BTreeMap<String, Option<ReplayJob>> = BTreeMap::new();
    if !assign.is_empty() {
        c.assign(&assign)?;
        while !ends.is_empty() {
            let rec = tokio::time::timeout(t, c.recv())
                .await
                .context("reading the replays topic timed out")??;
            if ends
                .get(&rec.partition)
                .is_some_and(|e| rec.offset + 1 >= *e)
            {
                ends.remove(&rec.partition);
            }
            let Some(key) = rec.key.as_deref().map(String::from_utf8_lossy) else {
                continue;
            };
            let job = match rec.payload.as_deref() {
                None => None,
                Some(b) => match serde_json::from_slice::<ReplayJob>(b) {
                    Ok(j) => Some(j),
                    Err(e) => {
                        tracing::warn!(id = %key, error = %e, "unreadable replay record skipped");
                        continue;
                    }
                },
            };
            by_id.insert(key.into_owned(), job);
        }
    }
    let mut jobs: Vec<ReplayJob> = by_id.into_values().flatten().collect();
    jobs.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    Ok(jobs)
}

/// Writes (or updates) `job`, acknowledged by the broker.
pub async fn save(config: &Config, job: &mut ReplayJob) -> anyhow::Result<()> {
    job.updated_at_ms = now_ms();
    let producer = Producer::new(&config.kafka, "replay")?;
    let rec = OutRecord::new(topic(config)?)
        .key(job.id.clone())
        .payload(serde_json::to_vec(job)?);
    producer
        .send(&rec)
        .await
        .context("cannot record the replay on the replays topic")?;
    Ok(())
}

/// The next generation: one above every recorded replay's. Generations
/// past 1023 share 1023 in the sinks' versions (a warning says so).
pub fn next_generation(jobs: &[ReplayJob]) -> u16 {
    jobs.iter()
        .map(|j| j.generation)
        .max()
        .unwrap_or(0)
        .saturating_add(1)
}

pub use conveyor_connectors::publish::now_ms;

/// A replay id: time, what, generation (`r7-20261130T064500Z-normalize`).
pub fn new_id(generation: u16, target: &str) -> String {
    let t = jiff::Timestamp::from_millisecond(now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("r{generation}-{}-{target}", t.strftime("%Y%m%dT%H%M%SZ"))
}

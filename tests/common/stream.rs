//! Helpers for the stream runtime's integration tests: topics, keyed input,
//! reading topics back, the crash-free expectation of the example counter,
//! and the counter run as a child process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use conveyor_runtime::config::{CleanupPolicy, Config};
use conveyor_runtime::kafka::{Admin, Consumer, InRecord, OutRecord, Producer, TopicState};
use conveyor_runtime::topology::{TopicSpec, Topology};
use conveyor_schemas::codec::Codec;
use conveyor_stream::examples::COUNT_TABLE;
use conveyor_stream::state::{table_key, Inspector};
use conveyor_stream::{BatchSpec, JobSpec, Processor, StoreSpec, Summary};
use tokio_util::sync::CancellationToken;

use super::process::Process;

pub const PARTITIONS: i32 = 6;

/// A test's own namespace, with its input and output topics (and the
/// namespace's DLQ) created, and a probe to count records.
pub struct Setup {
    pub ns: String,
    pub config: Config,
    pub input: String,
    pub output: String,
    probe: Consumer,
}

impl Setup {
    pub async fn new(prefix: &str) -> Setup {
        let ns = super::unique(prefix);
        let mut config = super::config();
        config.topics.namespace = ns.clone();
        super::require_broker(&config).await;
        let (input, output) = (format!("{ns}.in"), format!("{ns}.out"));
        create(&config, &[&input, &output]).await;
        let probe = Consumer::new(&config.kafka, "test-probe", &format!("{ns}.probe")).unwrap();
        Setup {
            ns,
            config,
            input,
            output,
            probe,
        }
    }

    /// Records written to `topic` so far (0 while the broker does not
    /// answer, e.g. during an outage test).
    pub fn count(&self, topic: &str) -> i64 {
        self.probe
            .end_offsets_total(topic, PARTITIONS, Duration::from_secs(10))
            .unwrap_or(0)
    }

    /// Runs `processor` in this process (reading the input, DLQ of the
    /// namespace) until the output holds `outputs` records, then stops it
    /// the graceful way and returns its totals.
    pub async fn run_until<P: Processor>(
        &self,
        name: &str,
        store: Option<StoreSpec>,
        processor: P,
        outputs: i64,
    ) -> Summary {
        let spec = JobSpec {
            name: name.into(),
            group_id: format!("{}.{name}", self.ns),
            inputs: vec![self.input.clone()],
            store,
            dlq_topic: Topology::resolve(&self.config)
                .topic_name("orders_dlq")
                .unwrap()
                .to_string(),
            batch: BatchSpec::default(),
            health: None,
            replay: None,
        };
        let codec = Arc::new(Codec::new(&self.config.schema_registry.url).unwrap());
        let token = CancellationToken::new();
        let job = {
            let (k, t) = (self.config.kafka.clone(), token.clone());
            tokio::spawn(async move { conveyor_stream::run(&k, codec, spec, processor, t).await })
        };
        let what = format!("{outputs} outputs");
        wait_until(&what, Duration::from_secs(60), || {
            self.count(&self.output) >= outputs
        })
        .await;
        token.cancel();
        job.await.unwrap().unwrap()
    }
}

/// Creates delete-policy topics with [`PARTITIONS`] partitions, and the DLQ.
pub async fn create(config: &Config, names: &[&str]) {
    let admin = Admin::new(&config.kafka).unwrap();
    let mut specs: Vec<TopicSpec> = names
        .iter()
        .map(|n| TopicSpec::adhoc(n, PARTITIONS, 1, CleanupPolicy::Delete))
        .collect();
    let topo = Topology::resolve(config);
    specs.extend(topo.topics.iter().filter(|t| t.id == "orders_dlq").cloned());
    for r in admin.ensure_topics(&specs).await.unwrap() {
        assert!(!matches!(r.state, TopicState::Failed(_)), "{r:?}");
    }
}

/// Produces `n` keyed text records (keys `k0..k{keys}`, seeded) to `topic`.
pub async fn produce_keyed(config: &Config, topic: &str, from: usize, n: usize, keys: usize) {
    let producer = Producer::new(&config.kafka, "test").unwrap();
    let mut rng = fastrand::Rng::with_seed(from as u64 + 1);
    let mut i = from;
    while i < from + n {
        let m = (from + n - i).min(5000);
        let batch: Vec<OutRecord> = (i..i + m)
            .map(|j| {
                OutRecord::new(topic)
                    .key(format!("k{}", rng.usize(..keys)))
                    .payload(format!("record {j}"))
            })
            .collect();
        for r in futures::future::join_all(batch.iter().map(|r| producer.send(r))).await {
            r.unwrap();
        }
        i += m;
    }
}

/// Every record of `topic`, read from the beginning to the high watermarks.
pub async fn read_all(config: &Config, topic: &str) -> Vec<InRecord> {
    read_partitions(config, topic, PARTITIONS).await
}

/// Every record of partitions `0..partitions` of `topic`, from the
/// beginning to the high watermarks.
pub async fn read_partitions(config: &Config, topic: &str, partitions: i32) -> Vec<InRecord> {
    let c = Consumer::new(&config.kafka, "test-reader", &super::unique("reader")).unwrap();
    let mut highs = BTreeMap::new();
    let mut parts = Vec::new();
    for p in 0..partitions {
        let (_, high) = c.watermarks(topic, p, Duration::from_secs(10)).unwrap();
        if high > 0 {
            highs.insert(p, high);
            parts.push((topic, p, None));
        }
    }
    let total: i64 = highs.values().sum();
    let mut out = Vec::with_capacity(total as usize);
    if total == 0 {
        return out;
    }
    c.assign(&parts).unwrap();
    let mut done: BTreeSet<i32> = BTreeSet::new();
    while done.len() < highs.len() {
        let r = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .expect("records up to the high watermark")
            .unwrap();
        if r.offset + 1 >= highs[&r.partition] {
            done.insert(r.partition);
        }
        if r.offset < highs[&r.partition] {
            out.push(r);
        }
    }
    out
}

/// An output's id: the runtime's source header (job, input coordinates,
/// output index), the same on every re-emission.
pub fn event_id(r: &InRecord) -> String {
    let h = r
        .header(conveyor_stream::dedup::SOURCE_HEADER)
        .expect("source header");
    String::from_utf8(h.to_vec()).unwrap()
}

/// What a crash-free counter run emits for `input`: `k=<n>` where n is the
/// key's occurrence number in its partition's order, by event id.
pub fn expected_outputs(input: &[InRecord]) -> (BTreeMap<String, String>, HashMap<String, u64>) {
    let mut sorted: Vec<&InRecord> = input.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut out = BTreeMap::new();
    for r in sorted {
        let k = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let c = counts.entry(k.clone()).or_default();
        *c += 1;
        out.insert(
            format!("counter/{}/{}/{}/0", r.topic, r.partition, r.offset),
            format!("{k}={c}"),
        );
    }
    (out, counts)
}

/// Checks the counter's output against the crash-free run: every input has
/// exactly one distinct output (duplicates are byte-identical), with the
/// crash-free value.
pub fn check_outputs(output: &[InRecord], expected: &BTreeMap<String, String>) {
    let mut seen: BTreeMap<String, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut dups = 0usize;
    for r in output {
        let id = event_id(r);
        let this = (r.key.clone().unwrap(), r.payload.clone().unwrap());
        if let Some(prev) = seen.get(&id) {
            assert_eq!(prev, &this, "duplicate of {id} differs");
            dups += 1;
        } else {
            seen.insert(id, this);
        }
    }
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "inputs without output (skipped): {missing:?}..."
    );
    assert_eq!(seen.len(), expected.len(), "outputs for unknown inputs");
    let mut wrong = 0;
    for (id, want) in expected {
        let got = String::from_utf8(seen[id].1.clone()).unwrap();
        if &got != want {
            wrong += 1;
            assert!(wrong > 3, "{id}: got {got}, crash-free run gives {want}");
        }
    }
    assert_eq!(wrong, 0, "outputs differing from the crash-free run");
    eprintln!(
        "{} outputs, {} distinct, {dups} identical duplicates",
        output.len(),
        seen.len()
    );
}

/// The final counts in the store files under `dir`, per key.
pub fn stored_counts(dir: &Path, keys: usize) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for p in 0..PARTITIONS {
        let path = dir.join(format!("p{p}.redb"));
        if !path.exists() {
            continue;
        }
        let i = Inspector::open(&path).unwrap();
        for k in 0..keys {
            let key = format!("k{k}");
            if let Some(v) = i
                .get(&table_key(COUNT_TABLE, key.as_bytes()).unwrap())
                .unwrap()
            {
                let n: u64 = String::from_utf8(v).unwrap().parse().unwrap();
                assert!(
                    out.insert(key.clone(), n).is_none(),
                    "{key} in two partitions"
                );
            }
        }
    }
    out
}

/// `conveyor dev run-example counter` as its own process.
pub struct Instance(Process);

impl Instance {
    pub fn start(ns: &str, state_dir: &Path, input: &str, output: &str, log: &Path) -> Self {
        Instance(Process::spawn(
            &[
                "dev",
                "run-example",
                "counter",
                "--input",
                input,
                "--output",
                output,
                "--name",
                "counter",
                "--observability-bind",
                "127.0.0.1:0",
            ],
            &[
                ("CONVEYOR_TOPICS__NAMESPACE", OsStr::new(ns)),
                ("CONVEYOR_STATE__DIR", state_dir.as_os_str()),
                ("CONVEYOR_STATE__BATCH_MAX_RECORDS", OsStr::new("500")),
            ],
            log,
        ))
    }

    pub fn kill9(self) {
        self.0.kill9()
    }

    /// SIGTERM, wait for the graceful exit, return its summary line.
    pub fn stop(self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stop()).expect("summary JSON on stdout")
    }
}

pub async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Distinct event ids in `topic` (via a full read).
pub async fn distinct_outputs(config: &Config, topic: &str) -> usize {
    read_all(config, topic)
        .await
        .iter()
        .map(event_id)
        .collect::<BTreeSet<_>>()
        .len()
}

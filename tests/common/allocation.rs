//! Helpers for the allocation tests: a namespace with the topology's topics
//! on 4 partitions, publishing a workload, `conveyor run allocate` as a
//! child process, waiting for rest, and reading logs and stores back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use conveyor_processors::allocate::harness::{self, Watch};
use conveyor_processors::allocate::jobs::{ORDERS_TABLE, STOCK_TABLE};
use conveyor_processors::allocate::order::OrderState;
use conveyor_processors::allocate::workload::Workload;
use conveyor_processors::inventory::sku::SkuState;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, Consumer, InRecord, TopicState};
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::{Codec, Source};
use conveyor_stream::state::{split_key, table_key, Inspector};

use super::process::Process;

pub const PARTITIONS: i32 = 4;

pub struct Setup {
    pub ns: String,
    pub config: Config,
    pub topo: Topology,
    probe: Consumer,
}

impl Setup {
    /// A fresh namespace with every topic of the topology created.
    pub async fn new(prefix: &str) -> Setup {
        let ns = super::unique(prefix);
        let mut config = super::config();
        config.topics.namespace = ns.clone();
        config.topics.partitions = PARTITIONS;
        super::require_broker(&config).await;
        let topo = Topology::resolve(&config);
        let admin = Admin::new(&config.kafka).unwrap();
        for r in admin.ensure_topics(&topo.topics).await.unwrap() {
            assert!(!matches!(r.state, TopicState::Failed(_)), "{r:?}");
        }
        let probe = Consumer::new(&config.kafka, "test-probe", &format!("{ns}.probe")).unwrap();
        Setup {
            ns,
            config,
            topo,
            probe,
        }
    }

    pub fn topic(&self, id: &str) -> String {
        self.topo.topic_name(id).unwrap().to_string()
    }

    /// Records written to a topic so far.
    pub fn count(&self, id: &str) -> i64 {
        self.probe
            .end_offsets_total(&self.topic(id), PARTITIONS, Duration::from_secs(10))
            .unwrap_or(0)
    }

    /// Publishes the stock, then the orders, as Avro with the registry.
    pub async fn publish(&self, w: &Workload) {
        harness::publish(&self.config, w).await.unwrap();
    }

    /// Waits until every job has consumed everything and the command logs
    /// stopped growing.
    pub async fn wait_for_rest(&self, limit: Duration) {
        Watch::new(&self.config)
            .unwrap()
            .wait_for_rest(limit, |_| {})
            .await
            .unwrap();
    }

    /// Every record of a topic, per partition in offset order.
    pub async fn read(&self, id: &str) -> Vec<InRecord> {
        let mut out =
            super::stream::read_partitions(&self.config, &self.topic(id), PARTITIONS).await;
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

/// A job run crash-free over its log: each command once (by id), in log
/// order, through `step` (a refused command changes nothing); state per key.
pub fn fold<C: serde::de::DeserializeOwned, S: Clone>(
    log: &[InRecord],
    id_and_key: impl Fn(&C) -> (String, String),
    mut step: impl FnMut(Option<S>, &C) -> Option<S>,
) -> BTreeMap<String, S> {
    let mut seen = BTreeSet::new();
    let mut states: BTreeMap<String, S> = BTreeMap::new();
    for r in log {
        let cmd: C = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
        let (id, key) = id_and_key(&cmd);
        if !seen.insert(id) {
            continue;
        }
        if let Some(next) = step(states.get(&key).cloned(), &cmd) {
            states.insert(key, next);
        }
    }
    states
}

pub async fn decode_all<T: conveyor_schemas::records::Record>(s: &Setup, id: &str) -> Vec<T> {
    let codec = Codec::new(&s.config.schema_registry.url).unwrap();
    let mut out = Vec::new();
    for r in s.read(id).await {
        let at = Source {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
        };
        out.push(codec.decode::<T>(r.payload.as_deref(), at).await.unwrap());
    }
    out
}

/// `conveyor run allocate` (or another stage) as a child process.
pub struct Instance(Process);

impl Instance {
    pub fn start(ns: &str, state_dir: &Path, log: &Path) -> Instance {
        Instance::stage("allocate", ns, state_dir, log)
    }

    /// `conveyor run <stage>`.
    pub fn stage(stage: &str, ns: &str, state_dir: &Path, log: &Path) -> Instance {
        Instance::stage_with(stage, ns, state_dir, log, &[])
    }

    /// `conveyor run <stage>` with more environment (config overrides).
    pub fn stage_with(
        stage: &str,
        ns: &str,
        state_dir: &Path,
        log: &Path,
        env: &[(&str, &OsStr)],
    ) -> Instance {
        let partitions = PARTITIONS.to_string();
        let mut vars: Vec<(&str, &OsStr)> = vec![
            ("CONVEYOR_TOPICS__NAMESPACE", OsStr::new(ns)),
            ("CONVEYOR_TOPICS__PARTITIONS", OsStr::new(&partitions)),
            ("CONVEYOR_STATE__DIR", state_dir.as_os_str()),
            ("CONVEYOR_STATE__BATCH_MAX_RECORDS", OsStr::new("500")),
        ];
        vars.extend_from_slice(env);
        Instance(Process::spawn(
            &["run", stage, "--observability-bind", "127.0.0.1:0"],
            &vars,
            log,
        ))
    }

    pub fn kill9(self) {
        self.0.kill9()
    }

    /// SIGTERM, wait for the graceful exit; returns the jobs' summaries.
    pub fn stop(self) -> BTreeMap<String, serde_json::Value> {
        String::from_utf8_lossy(&self.0.stop())
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(job, json)| (job.to_string(), serde_json::from_str(json).unwrap()))
            .collect()
    }
}

/// Every value of `table` in a store directory (all partition files).
pub fn store<T: serde::de::DeserializeOwned>(dir: &Path, table: &str) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let prefix = table_key(table, b"").unwrap();
    for p in 0..PARTITIONS {
        let path = dir.join(format!("p{p}.redb"));
        if !path.exists() {
            continue;
        }
        let i = Inspector::open(&path).unwrap();
        for (k, v) in i.scan(&prefix, usize::MAX).unwrap() {
            let (_, key) = split_key(&k).unwrap();
            let key = String::from_utf8(key.to_vec()).unwrap();
            let value = serde_json::from_slice(&v).unwrap();
            assert!(
                out.insert(key.clone(), value).is_none(),
                "{key} in two partitions"
            );
        }
    }
    out
}

pub fn orders(state: &Path) -> HashMap<String, OrderState> {
    store(&state.join("allocate.orders"), ORDERS_TABLE)
        .into_iter()
        .collect()
}

pub fn skus(state: &Path) -> BTreeMap<String, SkuState> {
    store(&state.join("inventory.stock"), STOCK_TABLE)
}

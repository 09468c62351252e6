//! `conveyor bench pipeline`: the whole pipeline on this machine against the
//! real broker and ClickHouse, driven by the load generator, measured from
//! the outside.
//!
//! What runs: every component as its own process (as the compose stack
//! and Kubernetes run them): the Shopify webhook receiver, normalize,
//! allocate, route, label (buying from the carrier simulator, its quota
//! lifted), sync-back and both sinks, in a fresh namespace with its own
//! topics, ClickHouse database, state stores and operational store.
//!
//! Phases:
//! 1. **Ceiling.** The broker's own raw consume+produce loop (no decoding,
//!    no state) chained over [`HOPS`] topics, the hops an order takes from
//!    its raw record to its label (normalize; allocate's feed, hold,
//!    answer and decision; route's feed and plan; label), all hops
//!    running at once as in the pipeline: records/s through the chain is
//!    what this broker on this machine allows at most.
//! 2. **Throughput.** `--orders` new orders (plus loadgen's updates,
//!    cancellations and bad payloads) offered at once, Shopify's through
//!    the webhook receiver, the rest into the raw topics: a burst. The
//!    sustained rate is the orders divided by the time from the first
//!    send until everything is at rest: every group has committed the
//!    end of every topic it reads (both sinks included: their commits
//!    follow their writes) and nothing grew for three samples.
//! 3. **Latency.** At a fixed offered load (`--latency-rate` orders/s for
//!    `--latency-seconds`), each new order's webhook/broker
//!    acknowledgement is matched with the moment its first label appears
//!    on `shipments.labeled` (a consumer reading the topic's tail) and the
//!    moment a poll of ClickHouse's `labels` table first returns it.
//!
//! Every second it samples each process's CPU and memory (`/proc`) and
//! counters (`/metrics`), each consumer group's lag, and the topics' ends:
//! the timeline behind the JSON file and the SVG plot.

mod procs;
mod report;
pub(crate) use report::loadavg;
mod steady;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer};
use conveyor_runtime::topology::{self, Topology, SINK_INPUTS};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::LabeledShipment;
use conveyor_sinks::clickhouse as ch;

use super::loadgen::{self, Drive, Spec, Target};
use procs::Proc;
pub use report::Report;

/// Consume+produce hops from an order's raw record to its label.
pub const HOPS: usize = 8;

/// The benchmark's knobs (`conveyor bench pipeline --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub orders: u64,
    pub partitions: i32,
    pub latency_rate: f64,
    pub latency_seconds: u64,
    pub ceiling_records: usize,
    pub stock: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub max_wait: Duration,
    pub keep: bool,
    /// The config file the benchmark was started with: the children read
    /// the same one (then the run's overrides).
    pub config_path: Option<PathBuf>,
    /// Processes per processor stage (scale-out: the groups split the partitions).
    pub instances: usize,
    /// Run against a broker of the run's own with in-memory storage
    /// instead of the dev broker (what the pipeline does when the
    /// broker's storage is not the limit; not durable).
    pub memory_broker: bool,
    /// Each label purchase's latency at the carrier simulator, ms.
    pub carrier_latency_ms: u64,
}

/// State directory of processor instance `i`.
fn dir_of(run: &std::path::Path, i: usize) -> PathBuf {
    if i <= 1 {
        run.join("stores")
    } else {
        run.join(format!("stores-{i}"))
    }
}

/// A (group, topic) pair the rest check and the lag series watch.
struct Watched {
    stage: &'static str,
    group: String,
    topic: String,
    consumer: Arc<Consumer>,
}

/// The groups of every component, each with the topics it reads.
fn watched(config: &Config) -> anyhow::Result<Vec<Watched>> {
    let topo = Topology::resolve(config);
    let mut pairs: Vec<(&'static str, String, String)> = Vec::new();
    for ch in &config.channels.enabled {
        if let Some(t) = topo.raw_topic(ch) {
            pairs.push(("normalize", format!("normalize-{ch}"), t.to_string()));
        }
    }
    let jobs: Vec<(&'static str, &str, &str)> = conveyor_processors::allocate::jobs::JOBS
        .iter()
        .map(|(j, t)| ("allocate", *j, *t))
        .chain(
            conveyor_processors::allocate::harness::ROUTE_JOBS
                .iter()
                .map(|(j, t)| ("route", *j, *t)),
        )
        .chain([
            (
                "label",
                conveyor_processors::label::jobs::LABEL,
                "shipments_planned",
            ),
            ("syncback", "syncback", "shipments_labeled"),
        ])
        .collect();
    for (stage, job, id) in jobs {
        let t = topo
            .topic_name(id)
            .with_context(|| format!("no topic {id}"))?;
        pairs.push((stage, job.to_string(), t.to_string()));
    }
    for (stage, sink) in [
        ("sink-clickhouse", super::sink::CLICKHOUSE),
        ("sink-scylla", super::sink::SCYLLA),
    ] {
        for id in SINK_INPUTS {
            if let Some(t) = topo.topic_name(id) {
                pairs.push((stage, sink.to_string(), t.to_string()));
            }
        }
    }
    let mut consumers: HashMap<String, Arc<Consumer>> = HashMap::new();
    let mut out = Vec::new();
    for (stage, job, topic) in pairs {
        let group = topology::group_id(config, &job);
        let consumer = match consumers.get(&group) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(Consumer::new(&config.kafka, "bench-watch", &group)?);
                consumers.insert(group.clone(), c.clone());
                c
            }
        };
        out.push(Watched {
            stage,
            group,
            topic,
            consumer,
        });
    }
    Ok(out)
}

/// Records not yet committed, per stage.
type StageLags = BTreeMap<&'static str, i64>;
/// Records ever written, per topic.
type TopicEnds = HashMap<String, i64>;

/// Records not yet committed per stage, and each topic's end: one
/// ListOffsets round for every partition's end and one committed-offsets
/// request per group, so that sampling each second does not itself load a
/// busy broker (one request per partition took tens of seconds).
fn lags(
    topo: &Topology,
    default_partitions: i32,
    watched: &[Watched],
    probe: &Consumer,
    extra: &[&str],
) -> anyhow::Result<(StageLags, TopicEnds)> {
    // Each topic's own partition count (a topic may override the default).
    let count = |name: &str| {
        topo.topics
            .iter()
            .find(|t| t.name == name)
            .map_or(default_partitions, |t| t.partitions)
    };
    let mut topics: Vec<&str> = watched
        .iter()
        .map(|w| w.topic.as_str())
        .chain(extra.iter().copied())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let all: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| (0..count(t)).map(move |p| (t.to_string(), p)))
        .collect();
    let got = probe.end_offsets(&all, Duration::from_secs(30))?;
    let mut ends: HashMap<String, i64> = HashMap::new();
    for ((t, _), off) in got {
        *ends.entry(t).or_default() += off;
    }
    let mut by_group: BTreeMap<&str, Vec<&Watched>> = BTreeMap::new();
    for w in watched {
        by_group.entry(w.group.as_str()).or_default().push(w);
    }
    let mut out: BTreeMap<&'static str, i64> = BTreeMap::new();
    for (group, ws) in by_group {
        let parts_of: Vec<(String, i32)> = ws
            .iter()
            .flat_map(|w| (0..count(&w.topic)).map(move |p| (w.topic.clone(), p)))
            .collect();
        let committed = ws[0]
            .consumer
            .committed_for(&parts_of, Duration::from_secs(30))
            .with_context(|| format!("committed offsets of {group}"))?;
        for w in ws {
            let done: i64 = (0..count(&w.topic))
                .map(|p| {
                    committed
                        .get(&(w.topic.clone(), p))
                        .copied()
                        .flatten()
                        .unwrap_or(0)
                })
                .sum();
            let end = ends.get(&w.topic).copied().unwrap_or(0);
            *out.entry(w.stage).or_default() += (end - done).max(0);
        }
    }
    Ok((out, ends))
}

/// One second of the timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Seconds since the phase started.
    pub t: f64,
    /// Orders acknowledged to the load generator so far.
    pub sent: u64,
    /// Records on shipments.labeled so far.
    pub labeled: i64,
    /// Records not yet committed, per stage.
    pub lag: BTreeMap<String, i64>,
    /// Resident memory per process, MiB.
    pub rss_mib: BTreeMap<String, f64>,
    /// CPU seconds per process so far.
    pub cpu_s: BTreeMap<String, f64>,
    /// Records each process has handled so far (its own counters).
    pub records: BTreeMap<String, f64>,
}

/// Records handled per process, from its own counters.
fn handled(name: &str, metrics: &str) -> f64 {
    use procs::metric_sum;
    match name {
        "connect-shopify" => metric_sum(metrics, "conveyor_webhook_requests_total", &[]),
        "sink-clickhouse" | "sink-scylla" => {
            metric_sum(metrics, "conveyor_sink_records_total", &[])
        }
        _ => metric_sum(metrics, "conveyor_processor_records_total", &[]),
    }
}

/// The running pipeline.
struct Pipeline {
    config: Config,
    /// The run's topology, resolved once.
    topo: Topology,
    procs: Vec<Proc>,
    /// The run's own in-memory broker (`--memory-broker`), measured in
    /// place of the dev broker.
    broker: Option<u32>,
    webhooks: String,
    /// The run's stores, documents and logs; removed at the end unless kept.
    dir: PathBuf,
    keep: bool,
    logs: PathBuf,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Stop the processes before their files go.
        procs::stop_all(&mut self.procs);
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The run's topics and database go too: partitions left behind cost
        // an idle broker CPU (Nisshi maintains each one), which would tax
        // every later run on this machine. On a thread of its own: drop
        // runs inside the async runtime.
        let config = self.config.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(remove_namespace(&config))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("warning: the run's topics or database were not removed: {e:#}")
            }
            Err(_) => eprintln!("warning: removing the run's topics and database failed"),
        }
    }
}

/// Deletes the run's topics and drops its ClickHouse database.
async fn remove_namespace(config: &Config) -> anyhow::Result<()> {
    let topo = Topology::resolve(config);
    let names: Vec<&str> = topo.topics.iter().map(|t| t.name.as_str()).collect();
    Admin::new(&config.kafka)?.delete_topics(&names).await?;
    ch::server_client(&config.clickhouse)
        .query(&format!(
            "DROP DATABASE IF EXISTS `{}`",
            config.clickhouse.database
        ))
        .execute()
        .await?;
    Ok(())
}

const SECRET: &str = "bench-pipeline-webhook-secret";

/// `--memory-broker`: the dev broker's Nisshi binary, on a free port, with
/// `memory://` storage, for the run only.
struct MemoryBroker {
    address: String,
    proc: Proc,
    /// Holds its log; removed on drop.
    dir: PathBuf,
}

impl Drop for MemoryBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MemoryBroker {
    fn start() -> anyhow::Result<MemoryBroker> {
        let paths = crate::dev::Paths::from_env()?;
        let bin = crate::dev::nisshi::ensure_installed(&paths.cache)?;
        let port = procs::free_port()?;
        let dir =
            std::env::temp_dir().join(format!("conveyor-bench-broker-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let args = crate::dev::nisshi::args(port, "memory://nisshi/");
        let proc = Proc::spawn(&bin, "broker", &args, &[], &dir, 0)?;
        let address = format!("127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&address).is_err() {
            if Instant::now() > until {
                anyhow::bail!(
                    "the in-memory broker did not listen on {address}:\n{}",
                    proc.tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(MemoryBroker { address, proc, dir })
    }
}

impl Pipeline {
    /// Fresh namespace, topics, database, catalog and stock; then every
    /// component, ready.
    async fn start(base: &Config, a: &Args, spec: &Spec) -> anyhow::Result<Pipeline> {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let ns = format!("bench-pipeline-{run}");
        let dir = std::env::temp_dir().join(format!("conveyor-{ns}"));
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let (carrier, webhooks, api) = (
            procs::free_port()?,
            procs::free_port()?,
            procs::free_port()?,
        );
        let db = ns.replace('-', "_");
        let channels = r#"["shopify","amazon","tiktok","ebay","csv"]"#;
        let mut env: Vec<(String, OsString)> = vec![
            ("CONVEYOR_TOPICS__NAMESPACE".into(), ns.clone().into()),
            // The benchmark's broker (`--memory-broker` changes it).
            (
                "CONVEYOR_KAFKA__BROKERS".into(),
                base.kafka.brokers.clone().into(),
            ),
            (
                "CONVEYOR_TOPICS__PARTITIONS".into(),
                a.partitions.to_string().into(),
            ),
            ("CONVEYOR_STATE__DIR".into(), dir.join("stores").into()),
            ("CONVEYOR_CHANNELS__ENABLED".into(), channels.into()),
            ("CONVEYOR_SYNCBACK__CHANNELS".into(), "[]".into()),
            (
                "CONVEYOR_CHANNELS__SHOPIFY__WEBHOOK_SECRETS".into(),
                format!(r#"["{SECRET}"]"#).into(),
            ),
            ("CONVEYOR_CLICKHOUSE__DATABASE".into(), db.clone().into()),
            ("CONVEYOR_STORE__PATH".into(), dir.join("ops.redb").into()),
            (
                "CONVEYOR_HTTP__STATUS_API_BIND".into(),
                format!("127.0.0.1:{api}").into(),
            ),
            (
                "CONVEYOR_LABEL__API_URL".into(),
                format!("http://127.0.0.1:{carrier}").into(),
            ),
            (
                "CONVEYOR_LABEL__DOCUMENTS".into(),
                dir.join("documents").into(),
            ),
            // The simulator's quota is lifted, so is the job's own limit:
            // the benchmark measures the pipeline, not a carrier's quota.
            ("CONVEYOR_LABEL__RATE_PER_SEC".into(), "1000000".into()),
            ("CONVEYOR_LABEL__BURST".into(), "100000".into()),
        ];
        if let Some(path) = &a.config_path {
            let path = std::fs::canonicalize(path)
                .with_context(|| format!("config file {}", path.display()))?;
            env.push(("CONVEYOR_CONFIG".into(), path.into()));
        }
        let mut config = base.clone();
        config.topics.namespace = ns.clone();
        config.topics.partitions = a.partitions;
        config.state.dir = dir.join("stores").to_string_lossy().into_owned();
        config.channels.enabled = ["shopify", "amazon", "tiktok", "ebay", "csv"]
            .map(String::from)
            .to_vec();
        config.syncback.channels = Vec::new();
        config.channels.shopify.webhook_secrets =
            vec![conveyor_runtime::config::Secret::new(SECRET)];
        config.clickhouse.database = db;
        config.label.api_url = format!("http://127.0.0.1:{carrier}");
        config.label.rate_per_sec = 1_000_000.0;
        config.label.burst = 100_000;
        // The guard first: whatever fails below, its drop removes what
        // was made.
        let wh = format!("127.0.0.1:{webhooks}");
        let mut p = Pipeline {
            topo: Topology::resolve(&config),
            config,
            procs: Vec::new(),
            broker: None,
            webhooks: format!("http://{wh}/webhooks/shopify"),
            dir,
            keep: a.keep,
            logs,
        };
        Admin::new(&p.config.kafka)?
            .ensure_topics(&p.topo.topics)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "creating the run's topics: {e} (is the broker up? `conveyor dev up`)"
                )
            })?;
        ch::migrate::migrate(&p.config.clickhouse)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "ClickHouse at {}: {e} (is it up? `conveyor dev up`)",
                    p.config.clickhouse.url
                )
            })?;
        let (skus, restocks) = loadgen::prepare(&p.config, spec, a.stock).await?;
        println!("  namespace {ns}: {} topics x {} partitions, ClickHouse database {}, {skus} SKUs, {restocks} restocks ({:.0}% of demand)",
            p.topo.topics.len(), a.partitions, p.config.clickhouse.database, a.stock * 100.0);
        let carrier_bind = format!("127.0.0.1:{carrier}");
        let carrier_latency = a.carrier_latency_ms.to_string();
        p.spawn(
            "sim-carrier",
            &[
                "simulate",
                "carrier",
                "--bind",
                &carrier_bind,
                "--rate",
                "1000000",
                "--latency-ms",
                &carrier_latency,
            ],
            &env,
            false,
        )?;
        for (name, args) in [
            (
                "connect-shopify",
                vec!["connect", "shopify", "--bind", wh.as_str()],
            ),
            ("sink-clickhouse", vec!["sink", "clickhouse"]),
            ("sink-scylla", vec!["sink", "scylla"]),
        ] {
            p.spawn(name, &args, &env, true)?;
        }
        // The processors, `--instances` of each in its groups, each
        // instance with a state directory of its own (as on separate
        // machines: a partition's store moves by its changelog).
        for stage in ["normalize", "allocate", "route", "label", "syncback"] {
            for i in 1..=a.instances.max(1) {
                let name = if a.instances > 1 {
                    format!("{stage}#{i}")
                } else {
                    stage.to_string()
                };
                let mut env = env.clone();
                for (k, v) in &mut env {
                    if k == "CONVEYOR_STATE__DIR" {
                        *v = dir_of(&p.dir, i).into();
                    }
                }
                p.spawn(&name, &["run", stage], &env, true)?;
            }
        }
        let http = reqwest::Client::new();
        procs::wait_ready(&http, &mut p.procs, Duration::from_secs(180))
            .await
            .with_context(|| format!("logs in {}", p.logs.display()))?;
        Ok(p)
    }

    fn spawn(
        &mut self,
        name: &str,
        args: &[&str],
        env: &[(String, OsString)],
        observed: bool,
    ) -> anyhow::Result<()> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let port = if observed {
            let port = procs::free_port()?;
            a.push("--observability-bind".into());
            a.push(format!("127.0.0.1:{port}"));
            port
        } else {
            0
        };
        self.procs.push(Proc::spawn(
            &std::env::current_exe()?,
            name,
            &a,
            env,
            &self.logs,
            port,
        )?);
        Ok(())
    }

    /// Every process measured: the components, and the local services
    /// they share (`conveyor dev`'s broker, ClickHouse and registry, when
    /// their pid files are there): the broker's CPU is part of the cost.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = self
            .procs
            .iter()
            .map(|p| (p.name.clone(), p.pid()))
            .collect();
        if let Some(pid) = self.broker {
            out.push(("broker (memory)".to_string(), pid));
        }
        if let Ok(paths) = crate::dev::Paths::from_env() {
            for svc in ["broker", "clickhouse", "registry"] {
                if svc == "broker" && self.broker.is_some() {
                    continue;
                }
                let pid = std::fs::read_to_string(paths.state.join(format!("{svc}.pid")))
                    .ok()
                    .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok());
                if let Some(pid) = pid.filter(|pid| procs::stat(*pid).is_some()) {
                    out.push((format!("{svc} (dev)"), pid));
                }
            }
        }
        out
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for p in &mut self.procs {
            if !p.alive() {
                anyhow::bail!("{} exited during the run:\n{}", p.name, p.tail(20));
            }
        }
        Ok(())
    }
}

/// Samples the pipeline each second until told to stop.
struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl Sampler {
    fn new() -> Sampler {
        Sampler {
            samples: Arc::new(Mutex::new(Vec::new())),
            sent: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// One sample now.
    async fn sample(
        &self,
        p: &Pipeline,
        watched: &[Watched],
        probe: &Consumer,
        http: &reqwest::Client,
        t0: Instant,
    ) -> anyhow::Result<Sample> {
        let metrics = procs::scrape(http, &p.procs).await;
        let labeled_topic = p.topo.topic_name("shipments_labeled").unwrap_or_default();
        // Blocking broker calls: off the async workers' hands, so that the
        // label tail and the load generator keep their timestamps honest.
        let (lag, ends) = tokio::task::block_in_place(|| {
            lags(
                &p.topo,
                p.config.topics.partitions,
                watched,
                probe,
                &[labeled_topic],
            )
        })?;
        let labeled = ends.get(labeled_topic).copied().unwrap_or(0);
        let mut s = Sample {
            t: t0.elapsed().as_secs_f64(),
            sent: self.sent.load(std::sync::atomic::Ordering::Relaxed),
            labeled,
            lag: lag.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            rss_mib: BTreeMap::new(),
            cpu_s: BTreeMap::new(),
            records: BTreeMap::new(),
        };
        for (name, pid) in p.pids() {
            if let Some(st) = procs::stat(pid) {
                s.rss_mib
                    .insert(name.clone(), st.rss_bytes as f64 / 1048576.0);
                s.cpu_s.insert(name.clone(), st.cpu_s);
            }
            if let Some(m) = metrics.get(&name) {
                s.records.insert(name.clone(), handled(&name, m));
            }
        }
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s.clone());
        Ok(s)
    }
}

/// `conveyor bench pipeline`.
pub async fn run(base: &Config, a: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench pipeline`");
    }
    let load_before = report::loadavg();
    println!(
        "pipeline benchmark: {} orders (seed {}), {} partitions, broker {}, ClickHouse {}; load average before {:.2} {:.2} {:.2}, {} cores",
        a.orders, a.seed, a.partitions, base.kafka.brokers, base.clickhouse.url,
        load_before[0], load_before[1], load_before[2], report::cores()
    );
    let mut r = Report::new(&a, load_before);
    // Declared before the pipeline: dropped (stopped) after it.
    let memory_broker = if a.memory_broker {
        Some(MemoryBroker::start()?)
    } else {
        None
    };
    let mut base = base.clone();
    if let Some(b) = &memory_broker {
        base.kafka.brokers = b.address.clone();
        println!(
            "  broker: the run's own Nisshi with in-memory storage at {} (not the dev broker)",
            b.address
        );
    }
    let base = &base;

    println!(
        "\n[1/3] broker ceiling: raw consume+produce over {HOPS} hops, {} records",
        a.ceiling_records
    );
    let ceiling = ceiling(base, a.partitions, a.ceiling_records).await?;
    println!("  {ceiling:.0} records/s through all {HOPS} hops");
    r.ceiling_per_s = ceiling;

    println!("\n[2/3] throughput: {} orders offered at once", a.orders);
    let mut spec = Spec::new(a.seed, a.orders);
    // Orders of the latency phase come after the burst's.
    let latency_orders = (a.latency_rate * a.latency_seconds as f64).ceil() as u64;
    spec.orders = a.orders + latency_orders;
    let mut p = Pipeline::start(base, &a, &spec).await?;
    p.broker = memory_broker.as_ref().map(|b| b.proc.pid());
    spec.orders = a.orders;
    println!(
        "  {} processes ready; logs in {}",
        p.procs.len(),
        p.logs.display()
    );
    let watched = watched(&p.config)?;
    let probe = Consumer::new(
        &p.config.kafka,
        "bench-watch",
        &topology::group_id(&p.config, "bench-probe"),
    )?;
    let http = reqwest::Client::new();
    let sampler = Sampler::new();
    let before = sampler
        .sample(&p, &watched, &probe, &http, Instant::now())
        .await?;
    let t0 = Instant::now();
    let drive_task = {
        let (config, spec, target) = (
            p.config.clone(),
            spec.clone(),
            Target::Webhooks {
                shopify: p.webhooks.clone(),
            },
        );
        let (tap, mut acked) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let sent = sampler.sent.clone();
        tokio::spawn(async move {
            while acked.recv().await.is_some() {
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        tokio::spawn(async move {
            let how = Drive {
                rate: 0.0,
                duration: None,
                concurrency: 256,
                progress: false,
                tap: Some(tap),
            };
            loadgen::drive(&config, &spec, &target, &how).await
        })
    };
    let mut offered: Option<loadgen::Outcome> = None;
    let mut quiet = 0;
    let mut last_labeled = -1;
    let mut rest_at = None;
    // The sample taken when things last moved: CPU and records are read
    // over the same window the rate is.
    let mut rest_sample: Option<Sample> = None;
    let deadline = t0 + a.max_wait;
    let mut drive_task = Some(drive_task);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        p.check_alive()?;
        if let Some(t) = drive_task.as_ref() {
            if t.is_finished() {
                let out = drive_task.take().expect("checked").await??;
                println!("  offered: {} events in {:.1} s ({} new orders), {} refused at the edge, {} failed; ack p50 {:.1} ms, p99 {:.1} ms",
                    out.events(), out.elapsed.as_secs_f64(), out.creates.len(), out.refused, out.failed,
                    out.ack_percentile(50.0).as_secs_f64() * 1e3, out.ack_percentile(99.0).as_secs_f64() * 1e3);
                if out.failed > 0 {
                    anyhow::bail!(
                        "{} events not acknowledged: {}",
                        out.failed,
                        out.first_failure.clone().unwrap_or_default()
                    );
                }
                offered = Some(out);
            }
        }
        let s = sampler.sample(&p, &watched, &probe, &http, t0).await?;
        let lag: i64 = s.lag.values().sum();
        println!(
            "  {:>5.0} s  labeled {:>7}  lag {:>7} ({})",
            s.t,
            s.labeled,
            lag,
            s.lag
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if offered.is_some() && lag == 0 && s.labeled == last_labeled {
            quiet += 1;
            if quiet >= 3 {
                break;
            }
        } else {
            quiet = 0;
            rest_at = Some(Instant::now());
            rest_sample = Some(s.clone());
        }
        last_labeled = s.labeled;
        if Instant::now() > deadline {
            r.note(format!(
                "did not come to rest within {} s; the numbers are for what was done by then",
                a.max_wait.as_secs()
            ));
            break;
        }
    }
    let offered = offered.context("the load generator did not finish")?;
    let end = rest_at.unwrap_or_else(Instant::now);
    let after = rest_sample.unwrap_or_else(|| before.clone());
    let names: Vec<String> = p.pids().into_iter().map(|(n, _)| n).collect();
    r.throughput(&offered, end.duration_since(t0), &before, &after, &names);
    if latency_orders > 0 {
        println!(
            "\n[3/3] latency at {:.0} orders/s offered for {} s",
            a.latency_rate, a.latency_seconds
        );
        let lat = latency(&mut p, &a, &spec, &sampler, &watched, &probe, &http, t0).await?;
        r.latency = Some(lat);
    }
    // The totals, whatever the number of instances: every acknowledged
    // order in ClickHouse once, no order labeled beyond its allocation.
    // Purchases the label jobs made (their own counters), next to the
    // shipments ClickHouse holds a label for: two instances buying one
    // shipment's label would show as more purchases than shipments (the
    // labels table keeps one row per shipment, so it alone cannot tell).
    let metrics = procs::scrape(&http, &p.procs).await;
    let bought: f64 = metrics
        .iter()
        .filter(|(name, _)| name.starts_with("label"))
        .map(|(_, m)| procs::metric_sum(m, "conveyor_labels_bought_total", &[]))
        .sum();
    match outcome_counts(&p.config).await {
        Ok(mut counts) => {
            let acked = r.offered_orders + r.latency.as_ref().map_or(0, |l| l.orders as u64);
            let stored = counts.get("orders in ClickHouse").copied().unwrap_or(0);
            let over = counts
                .get("orders labeled beyond their allocation")
                .copied()
                .unwrap_or(0);
            let shipments = counts.get("labels in ClickHouse").copied().unwrap_or(0);
            counts.insert("labels bought (label jobs' counters)".into(), bought as u64);
            r.exact = stored == acked && over == 0 && bought as u64 == shipments;
            if stored != acked {
                r.note(format!(
                    "{acked} new orders acknowledged, {stored} in ClickHouse"
                ));
            }
            if bought as u64 != shipments {
                r.note(format!(
                    "{bought} labels bought for {shipments} shipments in ClickHouse"
                ));
            }
            r.counts = counts;
        }
        Err(e) => r.note(format!("counting outcomes in ClickHouse failed: {e:#}")),
    }
    for (name, pid) in p.pids() {
        if let Some(st) = procs::stat(pid) {
            r.peak_rss_mib
                .insert(name, st.peak_rss_bytes as f64 / 1048576.0);
        }
    }
    r.timeline = std::mem::take(&mut *sampler.samples.lock().unwrap_or_else(|e| e.into_inner()));
    println!();
    print!("{}", r.render());
    std::fs::create_dir_all(&a.out)?;
    let stamp = report::stamp();
    let json = a.out.join(format!("pipeline-{stamp}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&r)?)?;
    let svg = a.out.join(format!("pipeline-{stamp}.svg"));
    std::fs::write(&svg, r.svg())?;
    println!("\nwritten: {} and {}", json.display(), svg.display());
    if a.keep {
        println!(
            "kept: namespace {} (stores and logs in {})",
            p.config.topics.namespace,
            p.dir.display()
        );
    }
    Ok(())
}

/// Final outcome counts from ClickHouse and the topics.
async fn outcome_counts(config: &Config) -> anyhow::Result<BTreeMap<String, u64>> {
    let client = ch::client(&config.clickhouse);
    let mut out = BTreeMap::new();
    for (name, sql) in [
        (
            "orders in ClickHouse",
            "SELECT count() FROM (SELECT order_id FROM orders GROUP BY order_id)",
        ),
        (
            "labels in ClickHouse",
            "SELECT count() FROM (SELECT shipment_id FROM labels GROUP BY shipment_id)",
        ),
        ("dead letters in ClickHouse", "SELECT count() FROM dlq"),
        (
            "orders allocated",
            "SELECT countIf(s = 'ALLOCATED') FROM (SELECT argMax(status, version) AS s FROM allocations GROUP BY order_id)",
        ),
        (
            "orders backordered",
            "SELECT countIf(s = 'BACKORDERED') FROM (SELECT argMax(status, version) AS s FROM allocations GROUP BY order_id)",
        ),
        (
            "orders labeled beyond their allocation",
            "SELECT countIf(l.u > a.q) FROM \
             (SELECT order_id, sum(units) AS u FROM labels FINAL WHERE status = 'LABELED' GROUP BY order_id) AS l \
             INNER JOIN (SELECT order_id, arraySum(argMax(allocated.quantity, version)) AS q FROM allocations GROUP BY order_id) AS a \
             USING (order_id)",
        ),
    ] {
        let n: u64 = client
            .query(sql)
            .fetch_one()
            .await
            .with_context(|| name.to_string())?;
        out.insert(name.to_string(), n);
    }
    Ok(out)
}

/// A ClickHouse string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Phase 1: the raw loop over `HOPS` topics at once.
async fn ceiling(base: &Config, partitions: i32, records: usize) -> anyhow::Result<f64> {
    let mut config = base.clone();
    let run = std::process::id();
    config.topics.partitions = partitions;
    let names: Vec<String> = (0..=HOPS)
        .map(|i| format!("bench-ceiling-{run}-{i}"))
        .collect();
    let admin = Admin::new(&config.kafka)?;
    let specs: Vec<_> = names
        .iter()
        .map(|n| {
            conveyor_runtime::topology::TopicSpec::adhoc(
                n,
                partitions,
                config.topics.replication_factor,
                conveyor_runtime::config::CleanupPolicy::Delete,
            )
        })
        .collect();
    admin
        .ensure_topics(&specs)
        .await
        .map_err(|e| anyhow::anyhow!("ceiling topics: {e}"))?;
    // Records the size of a raw order envelope (~1.5 KiB), keyed like orders.
    let producer = Producer::new(&config.kafka, "bench-ceiling")?;
    let payload = vec![b'x'; 1536];
    let recs: Vec<OutRecord> = (0..records)
        .map(|i| {
            OutRecord::new(&names[0])
                .key(format!("order-{i}"))
                .payload(payload.clone())
        })
        .collect();
    for chunk in recs.chunks(5000) {
        for r in futures::future::join_all(chunk.iter().map(|r| producer.send(r))).await {
            r?;
        }
    }
    // Each hop on a thread of its own (its commits block), timed from its
    // first record to its last: the chain's rate is set by its slowest
    // hop, with the groups' joins left out as `bench runtime` does.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..HOPS {
        let (config, input, output) = (config.clone(), names[i].clone(), names[i + 1].clone());
        let id = format!("bench-ceiling-{run}-hop{i}");
        let handle = tokio::runtime::Handle::current();
        set.spawn_blocking(move || {
            handle.block_on(super::bench_runtime::raw_stage(
                &config, &input, &output, &id, records,
            ))
        });
    }
    let mut slowest: f64 = 0.0;
    let mut failed = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((_, secs))) => slowest = slowest.max(secs),
            Ok(Err(e)) => failed = Some(e),
            Err(e) => failed = Some(e.into()),
        }
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&refs).await;
    if let Some(e) = failed {
        return Err(e.context("the broker ceiling"));
    }
    Ok(records as f64 / slowest.max(1e-9))
}

/// Phase 3: a steady offered load; latency from acknowledgement to label
/// and to ClickHouse for every new order.
#[allow(clippy::too_many_arguments)]
async fn latency(
    p: &mut Pipeline,
    a: &Args,
    spec: &Spec,
    sampler: &Sampler,
    watched: &[Watched],
    probe: &Consumer,
    http: &reqwest::Client,
    since: Instant,
) -> anyhow::Result<report::Latency> {
    let mut spec = spec.clone();
    spec.first += a.orders;
    spec.orders = (a.latency_rate * a.latency_seconds as f64).ceil() as u64;
    spec.seed = spec.seed.wrapping_add(1);
    // Loadgen's rate counts every event; new orders are about 92% of them.
    let rate = a.latency_rate / (1.0 - spec.updates - spec.cancels - spec.bad);
    let labeled = tail_labels(&p.config).await?;
    let phase_from = since.elapsed().as_secs_f64();
    let log_from: Vec<u64> = p.procs.iter().map(|x| steady::log_len(&x.log)).collect();
    let mut load_end = None;
    let target = Target::Webhooks {
        shopify: p.webhooks.clone(),
    };
    let (tap, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let how = Drive {
        rate,
        duration: None,
        concurrency: 256,
        progress: false,
        tap: Some(tap),
    };
    let drive = {
        let (config, spec) = (p.config.clone(), spec.clone());
        tokio::spawn(async move { loadgen::drive(&config, &spec, &target, &how).await })
    };
    // ClickHouse visibility: poll for the acknowledged orders not seen
    // there yet; done when every one is there or the pipeline is at rest.
    let client = ch::client(&p.config.clickhouse);
    let mut seen_ch: HashMap<String, Instant> = HashMap::new();
    // In acknowledgement order; each poll asks for the oldest 1,000 (a
    // bounded query however far behind the pipeline is).
    let mut pending: Vec<String> = Vec::new();
    let mut poll_errors = 0u64;
    let mut out = None;
    let mut drive = Some(drive);
    let deadline = Instant::now() + a.max_wait;
    let mut last_sample = Instant::now();
    let mut quiet = 0;
    loop {
        if let Some(d) = drive.as_ref() {
            if d.is_finished() {
                out = Some(drive.take().expect("checked").await??);
                load_end = Some(since.elapsed().as_secs_f64());
            }
        }
        while let Ok((id, _)) = acked.try_recv() {
            pending.push(id);
            sampler
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if !pending.is_empty() {
            let list: Vec<String> = pending
                .iter()
                .take(1_000)
                .map(|id| sql_string(id))
                .collect();
            let sql = format!(
                "SELECT DISTINCT order_id FROM labels WHERE order_id IN ({})",
                list.join(",")
            );
            match client.query(&sql).fetch_all::<String>().await {
                Ok(rows) => {
                    let now = Instant::now();
                    let found: std::collections::HashSet<String> = rows.into_iter().collect();
                    pending.retain(|id| !found.contains(id));
                    for o in found {
                        seen_ch.entry(o).or_insert(now);
                    }
                }
                Err(e) => {
                    poll_errors += 1;
                    if poll_errors == 1 {
                        eprintln!("  warning: polling ClickHouse failed: {e}");
                    }
                }
            }
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            p.check_alive()?;
            let s = sampler.sample(p, watched, probe, http, since).await?;
            let lag: i64 = s.lag.values().sum();
            println!(
                "  {:>5.0} s  acknowledged {:>6}  labels {:>7}  in ClickHouse {:>6}  lag {:>6}",
                s.t,
                seen_ch.len() + pending.len(),
                s.labeled,
                seen_ch.len(),
                lag
            );
            quiet = if out.is_some() && lag == 0 {
                quiet + 1
            } else {
                0
            };
        }
        if out.is_some() && (pending.is_empty() || quiet >= 3 || Instant::now() > deadline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = out.context("the load generator did not finish")?;
    let labels = labeled.stop().await;
    let mut l = report::Latency::from(a.latency_rate, a.latency_seconds, &out, &labels, &seen_ch);
    l.clickhouse_poll_errors = poll_errors;
    // The pipeline's own processes; not the carrier simulator (it keeps
    // every label it sold, as the API it stands in for would).
    let ours: Vec<String> = p
        .procs
        .iter()
        .map(|x| x.name.clone())
        .filter(|n| !n.starts_with("sim-"))
        .collect();
    let mut st = steady::Steady::of(
        &sampler.samples.lock().unwrap_or_else(|e| e.into_inner()),
        phase_from,
        load_end.unwrap_or(f64::MAX),
        &ours,
    );
    st.failed_sends = out.failed;
    for (proc, from) in p.procs.iter().zip(log_from) {
        let n = steady::error_lines(&proc.log, from);
        if n > 0 {
            st.error_lines.insert(proc.name.clone(), n);
        }
    }
    l.steady = Some(st);
    Ok(l)
}

/// First sighting of each order on shipments.labeled from now on.
struct LabelTail {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LabelTail {
    async fn stop(self) -> HashMap<String, Instant> {
        self.stop.cancel();
        let _ = self.task.await;
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn tail_labels(config: &Config) -> anyhow::Result<LabelTail> {
    let topic = Topology::resolve(config)
        .topic_name("shipments_labeled")
        .context("no shipments.labeled")?
        .to_string();
    let group = topology::group_id(config, &format!("bench-tail-{}", std::process::id()));
    let consumer = Consumer::new(&config.kafka, "bench-tail", &group)?;
    // From the current end of every partition.
    let mut starts = Vec::new();
    for p in 0..config.topics.partitions {
        let (_, high) = consumer.watermarks(&topic, p, Duration::from_secs(10))?;
        starts.push((topic.as_str(), p, Some(high)));
    }
    consumer.assign(&starts)?;
    let codec = Codec::new(&config.schema_registry.url)?;
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = {
        let (seen, stop) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let rec = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = consumer.recv() => r,
                };
                let now = Instant::now();
                let Ok(rec) = rec else { continue };
                let at = conveyor_schemas::codec::Source {
                    topic: &rec.topic,
                    partition: rec.partition,
                    offset: rec.offset,
                };
                if let Ok(l) = codec
                    .decode::<LabeledShipment>(rec.payload.as_deref(), at)
                    .await
                {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(l.order_id)
                        .or_insert(now);
                }
            }
        })
    };
    Ok(LabelTail { seen, stop, task })
}

//! The command line: every subcommand of `conveyor`, declared with clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "conveyor",
    version,
    about = "Order operations over Kafka: channels in, labeled parcels out",
    after_help = "Start here: `conveyor demo` runs everything locally. Config: --config FILE or CONVEYOR_CONFIG, \
                  overrides via CONVEYOR_<SECTION>__<KEY> (see docs/config.md)."
)]
pub struct Cli {
    /// Config file (TOML). Default: ./conveyor.toml when present, else built-in dev defaults.
    #[arg(long, global = true, env = "CONVEYOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one component of the pipeline, or `all` of them in one process.
    Run {
        /// normalize, allocate, route, label, syncback, sink-scylla, sink-clickhouse, or all
        component: String,
        /// Where /metrics, /healthz and /readyz listen (default: http.observability_bind).
        #[arg(long, value_name = "ADDR")]
        observability_bind: Option<SocketAddr>,
    },
    /// Run a channel connector (webhooks / pollers) publishing raw orders.
    Connect {
        /// shopify, amazon, tiktok, ebay
        channel: String,
        /// Where webhooks are received (default: http.webhooks_bind).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
        /// Where /metrics, /healthz and /readyz listen (default: http.observability_bind).
        #[arg(long, value_name = "ADDR")]
        observability_bind: Option<SocketAddr>,
    },
    /// Local simulators of the channel APIs (for the demo, tests and trying things out).
    Simulate {
        #[command(subcommand)]
        what: SimulateCommand,
    },
    /// Import order exports (CSV from POS systems and marketplaces).
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// SKU master data on the catalog.skus topic.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run a sink (`--migrate`: apply its DDL and exit).
    Sink {
        #[arg(value_enum)]
        target: SinkTarget,
        /// Create the database/keyspace and apply the pending DDL of deploy/, then exit.
        #[arg(long)]
        migrate: bool,
        /// Where /metrics, /healthz and /readyz listen (default: http.observability_bind).
        #[arg(long, value_name = "ADDR")]
        observability_bind: Option<SocketAddr>,
    },
    /// Re-run a stage over a time or offset range into the live outputs, or rebuild a store or a sink from the topics (docs/replay.md).
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// Create or inspect the topology's topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Register the Avro contracts or check them for compatibility.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Print the topology: topics, components, who reads and writes what.
    Topology {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The operator console: orders, exceptions (retry, cancel, resolve), inventory, pipeline health (docs/console.md).
    #[command(args_conflicts_with_subcommands = true)]
    Console {
        #[command(subcommand)]
        command: Option<ConsoleCommand>,
        /// Where the console listens (default: console.bind).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
        /// Where /metrics, /healthz and /readyz listen (default: http.observability_bind).
        #[arg(long, value_name = "ADDR")]
        observability_bind: Option<SocketAddr>,
        /// Add dev-viewer, dev-operator and dev-admin users with random passwords, printed once (local runs only).
        #[arg(long)]
        dev_users: bool,
    },
    /// Start the local services and run the pipeline end to end on sample data.
    Demo,
    /// Seeded, realistic order traffic for every channel in its raw format (skewed SKUs, updates, cancellations, bad payloads), at a rate or as fast as acknowledged, into the raw topics or through the Shopify webhook receiver.
    Loadgen(LoadgenArgs),
    /// Benchmarks that print a table: `codec` (encode/decode per record type), `runtime` (stream runtime vs the raw broker); the end-to-end pipeline benchmark comes with the pipeline.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Local services for development, demo and CI (broker, registry, ClickHouse).
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// The built-in Confluent-compatible schema registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Inspect the processors' local state stores (also while they run).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Validate or print the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Read a password on stdin; print its argon2id hash for [[console.users]] password_hash.
    HashPassword,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Shopify: serves the Admin REST orders endpoint (pagination, rate limits); with --webhooks, delivers signed orders/create webhooks instead.
    Shopify {
        /// Where the Admin API simulator listens.
        #[arg(long, default_value = "127.0.0.1:8091")]
        bind: SocketAddr,
        /// Orders in the simulated shop.
        #[arg(long, default_value_t = 1000)]
        orders: u64,
        /// Deliver this many webhooks (orders 0..N) and exit.
        #[arg(long)]
        webhooks: Option<u64>,
        /// First order number of the webhooks.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Webhook URL (default: http://<http.webhooks_bind>/webhooks/shopify).
        #[arg(long)]
        target: Option<String>,
        /// Webhooks in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Amazon SP-API: Login with Amazon token refresh, getOrders and getOrderItems with paging and quotas (credentials from channels.amazon).
    Amazon(SimArgs),
    /// eBay: OAuth refresh and the Fulfillment API's getOrders with paging (credentials from channels.ebay).
    Ebay(SimArgs),
    /// A Shippo-style label API (POST /transactions, instalabel): sells 4x6 PDF labels with tracking numbers, honours Idempotency-Key, counts purchases (token from label.api_token).
    Carrier {
        /// Where it listens (default: label.api_url's port on 127.0.0.1).
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Calls per second before it answers 429.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Every Nth call answers 503 (0 = never).
        #[arg(long, default_value_t = 0)]
        fail_every: u64,
        /// Milliseconds each purchase takes.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// TikTok Shop: the signed Get Order Detail API (credentials from channels.tiktok); with --webhooks, delivers signed ORDER_STATUS_CHANGE notifications instead.
    Tiktok {
        #[command(flatten)]
        sim: SimArgs,
        /// Deliver this many notifications (orders 0..N) and exit.
        #[arg(long)]
        webhooks: Option<u64>,
        /// First order number of the notifications.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Webhook URL (default: http://<http.webhooks_bind>/webhooks/tiktok).
        #[arg(long)]
        target: Option<String>,
        /// Notifications in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

/// `conveyor simulate tiktok --webhooks N`: what to deliver and where.
#[derive(Debug, Clone)]
pub struct WebhookBurst {
    pub count: u64,
    pub from: u64,
    pub target: Option<String>,
    pub concurrency: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// New orders to send (updates, cancellations and bad payloads come on top); 0 = until --seconds.
    #[arg(long, default_value_t = 10_000)]
    pub orders: u64,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Events per second offered; 0 = as fast as acknowledgements allow.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distinct SKUs (SKU-0000..), popularity skewed toward the first.
    #[arg(long, default_value_t = 500)]
    pub skus: usize,
    /// Channel weights.
    #[arg(long, default_value = "shopify=45,amazon=25,tiktok=15,ebay=10,csv=5")]
    pub mix: String,
    /// Share of events that update a recent order.
    #[arg(long, default_value_t = 0.05)]
    pub updates: f64,
    /// Share of events that cancel a recent order.
    #[arg(long, default_value_t = 0.02)]
    pub cancels: f64,
    /// Share of events that are payloads normalize refuses (truncated JSON, no lines).
    #[arg(long, default_value_t = 0.01)]
    pub bad: f64,
    /// Example number of the first order: the same seed and --first send the same ids again.
    #[arg(long, default_value_t = 1_000_000)]
    pub first: u64,
    /// Send Shopify orders as signed webhooks to this URL (a running `conveyor connect shopify`); the other channels go to the raw topics.
    #[arg(long, value_name = "URL")]
    pub shopify_webhooks: Option<String>,
    /// Events in flight at most.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Also write the catalog of the generated SKUs to catalog.skus and restock them for this share of the expected demand (0 = do not).
    #[arg(long, default_value_t = 0.0)]
    pub stock: f64,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SimArgs {
    /// Where the simulator listens (default: the channel's api_url port on 127.0.0.1).
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Orders the simulated seller has.
    #[arg(long, default_value_t = 1000)]
    pub orders: u64,
    /// Published rate limits instead of fast ones (Amazon getOrders: one call a minute; TikTok: 50 calls/s).
    #[arg(long)]
    pub real_limits: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a CSV export: rows grouped into orders by order number; a bad row imports nothing (or only the good orders with --skip-bad-orders).
    Csv {
        file: PathBuf,
        /// The source the orders come from, e.g. tcgplayer, binderpos, manual (order ids become <source>:<number>).
        #[arg(long)]
        channel: String,
        /// The column mapping (TOML; see docs/connectors.md).
        #[arg(long)]
        mapping: PathBuf,
        /// Import the orders whose rows are all good; report the rest.
        #[arg(long)]
        skip_bad_orders: bool,
        /// Check and report only; publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Publish SKUs from a CSV (sku, name, weight_grams, ...; see docs/connectors.md) or from the Shopify products API.
    Load {
        /// The catalog CSV.
        #[arg(required_unless_present = "from_shopify")]
        file: Option<PathBuf>,
        /// Read the SKUs from the Shopify Admin API (channels.shopify) instead of a file.
        #[arg(long, conflicts_with = "file")]
        from_shopify: bool,
        /// Currency of the shop's prices (declared values) with --from-shopify.
        #[arg(long, default_value = "USD")]
        currency: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encode + decode throughput of every record type on one core (registry caches warm). Build with --release.
    Codec {
        /// Records per type.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Only record types whose name contains this (e.g. OrderEvent).
        #[arg(long)]
        only: Option<String>,
    },
    /// The whole pipeline end to end on this machine (every component a process, the real broker and ClickHouse), driven by the load generator: broker ceiling, sustained orders/s, per-stage rates, CPU and memory, latency at a fixed load; a table, JSON and an SVG plot. Build with --release; needs `conveyor dev up`.
    Pipeline {
        /// New orders offered at once in the throughput phase (updates, cancellations and bad payloads come on top).
        #[arg(long, default_value_t = 20_000)]
        orders: u64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Orders/s offered in the latency phase (0 = skip it).
        #[arg(long, default_value_t = 1_000.0)]
        latency_rate: f64,
        #[arg(long, default_value_t = 20)]
        latency_seconds: u64,
        /// Records pushed through the raw broker chain for the ceiling.
        #[arg(long, default_value_t = 20_000)]
        ceiling_records: usize,
        /// Stock for this share of the expected demand.
        #[arg(long, default_value_t = 1.3)]
        stock: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the JSON and the SVG go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// Give up waiting for the pipeline to come to rest after this many seconds.
        #[arg(long, default_value_t = 1800)]
        max_wait: u64,
        /// Keep the run's namespace, stores and logs.
        #[arg(long)]
        keep: bool,
        /// Processes per processor stage (normalize, allocate, route, label, syncback): scale-out within their consumer groups.
        #[arg(long, default_value_t = 1)]
        instances: usize,
        /// Run against a broker of the run's own with in-memory storage (Nisshi memory://, not durable) instead of the dev broker: what the pipeline does when the broker's storage is not the limit.
        #[arg(long)]
        memory_broker: bool,
        /// Milliseconds each label purchase takes at the carrier simulator (a real carrier API takes ~300).
        #[arg(long, default_value_t = 0)]
        carrier_latency_ms: u64,
    },
    /// Allocation: decide() decisions/s on one core, both jobs' state machines in memory, end to end through the broker, and the quality report (policy vs brute-force optimum). Build with --release.
    Allocate {
        #[arg(long, default_value_t = 50_000)]
        orders: usize,
        #[arg(long, default_value_t = 500)]
        skus: usize,
        /// Skip the end-to-end run through the broker.
        #[arg(long)]
        no_broker: bool,
    },
    /// Labels: packing slips rendered per second on one core (3 and 40 lines, and the combined label + slip), and labels/s end to end against the carrier simulator through the broker. Build with --release.
    Label {
        #[arg(long, default_value_t = 2_000)]
        slips: usize,
        #[arg(long, default_value_t = 2_000)]
        labels: usize,
        /// Skip the end-to-end run through the broker.
        #[arg(long)]
        no_broker: bool,
        /// Also write the sample slips, label and combined PDF to this directory.
        #[arg(long)]
        samples: Option<PathBuf>,
    },
    /// Sync-back: parcels/s told to the four channel simulators (check, then create), one at a time and N orders in flight, rate limits lifted. Build with --release.
    Syncback {
        /// Orders per channel and round.
        #[arg(long, default_value_t = 2000)]
        orders: u64,
        /// Orders in flight in the second round.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Sinks: rows/s into ClickHouse (batched, a scratch database), records/s into the embedded operational store, and the status API's latency percentiles over it. Build with --release.
    Sinks {
        /// Orders to generate (about 8 sink records each).
        #[arg(long, default_value_t = 25_000)]
        orders: u64,
        /// Status API requests (4 connections).
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Records per ClickHouse batch (the sink's `clickhouse.batch_max_records`).
        #[arg(long, default_value_t = 50_000)]
        batch: usize,
    },
    /// The operator console's pages (p50/p99/max each) over an embedded store of N orders, through the status API as deployed. Build with --release.
    Console {
        #[arg(long, default_value_t = 1_000_000)]
        orders: u64,
        /// Requests per page (2 connections).
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
    },
    /// Routing: plans/s of the pure planner (pack, zone, rate shop) on one core, over a seeded workload's parcels. Build with --release.
    Route {
        #[arg(long, default_value_t = 50_000)]
        shipments: usize,
    },
    /// Replay throughput next to normal processing: normalize over N raw Shopify orders through the broker, then replayed with its state kept (unchanged, and with a mapping fix) and reset. Build with --release.
    Replay {
        #[arg(long, default_value_t = 50_000)]
        orders: u64,
    },
    /// normalize's pure mapping per channel on one core (no broker). Build with --release.
    Normalize {
        /// Distinct example orders per channel.
        #[arg(long, default_value_t = 4096)]
        orders: usize,
        /// One channel only.
        #[arg(long)]
        channel: Option<String>,
    },
    /// Shopify webhook ingestion with durable acks, driven by wrk (must be installed). Build with --release.
    Webhooks {
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        connections: u32,
    },
    /// Stream runtime throughput: pass-through and stateful processors next to the broker's raw consume+produce rate. Build with --release.
    Runtime {
        /// Records to push through each stage.
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Distinct keys (the stateful processor keeps one count per key).
        #[arg(long, default_value_t = 10_000)]
        keys: usize,
        /// Rounds of the three stages; the table shows the median.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Stores on this machine with each partition's position, changelog offset, key count and size.
    List {
        /// One store (`<processor>.<store>`); default: all.
        store: Option<String>,
    },
    /// A key's value in a store, from whichever local partition holds it.
    Get {
        /// `<processor>.<store>`, as `state list` shows.
        store: String,
        key: String,
        /// Only this table of the store (default: every table).
        #[arg(long)]
        table: Option<String>,
    },
}

/// The stream runtime's example processors.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Example {
    /// Stateless: copies each record to the output.
    Passthrough,
    /// Stateful: counts records per key (store `<name>.counts`), emits `key=count`.
    Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkTarget {
    Scylla,
    Clickhouse,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Re-run a stage's jobs over a range of their input into the live outputs (prints the plan; --yes runs it).
    Live {
        /// normalize, allocate, route, label or syncback
        stage: String,
        /// Only this channel's normalize job.
        #[arg(long)]
        channel: Option<String>,
        /// Where to start: earliest, an RFC 3339 time, UTC millis, a duration ago (2h, 3d), or offsets (0=120,1=340).
        #[arg(long, default_value = "earliest")]
        from: String,
        /// Where to stop: now (the end when planned), or as --from.
        #[arg(long, default_value = "now")]
        to: String,
        /// Start the jobs from empty state stores (default: keep their state).
        #[arg(long)]
        reset_state: bool,
        /// allocate, route: how far apart in event time the stage's inputs may be re-read (0: in event-time order; e.g. 5s trades order for speed).
        #[arg(long, default_value = "0s")]
        window: String,
        /// Run it (without: print the plan and change nothing).
        #[arg(long)]
        yes: bool,
    },
    /// Run the pipeline (normalize, allocate, route, both sinks; no labels bought) over a time range under this config into a sandbox: its own topics, stores and ClickHouse database (prints the plan; --yes runs it).
    Sandbox {
        /// The sandbox's name (a-z, 0-9, - and _): ClickHouse database <database>_sandbox_<name>.
        name: String,
        /// Where the orders start (raw topics): as for `replay live`.
        #[arg(long, default_value = "earliest")]
        from: String,
        /// Where they end.
        #[arg(long, default_value = "now")]
        to: String,
        /// Drop an earlier run of this sandbox (topics, database, state) first.
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        yes: bool,
    },
    /// Compare a sandbox with live: orders whose allocation or route changed, shipping cost, parcels, split rate, SLA misses (table; every changed order to a CSV).
    Diff {
        name: String,
        /// Where the changed orders go (default: sandbox-<name>-diff.csv).
        #[arg(long)]
        csv: Option<String>,
        /// The totals as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Continue an interrupted replay or sink rebuild (default: the newest unfinished).
    Resume { id: Option<String> },
    /// Every recorded replay and rebuild, with its progress.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Recreate a state store from its changelog, or a sink's tables from the topics.
    Rebuild {
        /// A stateful job's store, as `<job>.<store>` (e.g. normalize-shopify.versions).
        #[arg(long, conflicts_with = "sink")]
        store: Option<String>,
        /// A sink: clickhouse or scylla (the operational store).
        #[arg(long, value_enum)]
        sink: Option<SinkTarget>,
        /// Run it (without: print the plan and change nothing).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create every topic of the topology (idempotent; reports drift).
    Create,
    /// Show each topic as the broker has it, and how it compares to the config.
    Describe,
}

#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// Check every topic's schema against the registry's latest version (BACKWARD); exit 1 on a breaking change.
    Check {
        /// Read the .avsc files from DIR instead of the ones built into this binary.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Register every topic's schema under <topic>-value (TopicNameStrategy).
    Register {
        /// Read the .avsc files from DIR instead of the ones built into this binary.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Install (first time, cached) and start the local services on 127.0.0.1.
    Up,
    /// Stop exactly what `up` started.
    Down,
    /// Show what runs, where, and where its logs are.
    Status,
    /// Run an example processor of the stream runtime (smoke test; used by the runtime's tests and benchmark).
    RunExample {
        #[arg(value_enum)]
        example: Example,
        /// Input topic (must exist).
        #[arg(long)]
        input: String,
        /// Output topic (created with the input's partition count).
        #[arg(long)]
        output: String,
        /// Processor name: consumer group, store and DLQ stage. Default: the example's name.
        #[arg(long)]
        name: Option<String>,
        /// Where /metrics, /healthz, /readyz listen (port 0: any free port, logged). Default: http.observability_bind.
        #[arg(long)]
        observability_bind: Option<SocketAddr>,
    },
    /// Write each channel's example payloads as fuzzing seeds: DIR/<target>/<n>.json (used by fuzz/run).
    #[command(hide = true)]
    FuzzSeeds { dir: PathBuf },
    /// Internal: run ClickHouse from libchdb in this process (started by `up`).
    #[command(hide = true)]
    ClickhouseServer {
        #[arg(long)]
        lib: PathBuf,
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        http_port: u16,
        #[arg(long)]
        tcp_port: u16,
        #[arg(long)]
        log: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve the registry API (and /metrics, /healthz, /readyz).
    Serve {
        /// Listen address. Default: host and port of `schema_registry.url`.
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the config; exit non-zero with every problem found.
    Check,
    /// Print the effective config (file + environment), secrets masked.
    Show,
}

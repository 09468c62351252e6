//! `conveyor replay` against the real broker, registry and ClickHouse, with
//! the pipeline's stages and both sinks as child processes and the carrier
//! simulator in this process (docs/replay.md).
//!
//! The fix test: 20,000 Shopify orders (`REPLAY_TEST_ORDERS` to
//! change it) run through normalize, allocate, route, label and both sinks
//! while normalize maps the order number from the wrong field (the "bug":
//! `order_number_field = "order_number"`). Then the raw topic is replayed
//! live from the start with the fix (`name`), the state kept:
//! - a replay while normalize still runs is refused, naming the members;
//! - every affected order shows the fixed number in ClickHouse (FINAL) and
//!   in the operational store, and keeps its pipeline status;
//! - unaffected orders (no `name` field: both mappings agree) are not
//!   re-emitted and their rows are unchanged;
//! - no stock moved (the inventory store is identical, no new movement),
//!   no label was bought again (the simulator's sales are unchanged, no
//!   duplicate), allocations and labels unchanged;
//! - the replay is recorded as done with every message;
//! - rebuilding ClickHouse from the topics gives the same answers.
//!
//! The resume test: a reset-state replay SIGKILLed mid-run, resumed, then
//! the store rebuilt from its changelog: normalize's state equals the
//! first run's at every step, and every order's newest event is unchanged.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::allocation::{Setup, PARTITIONS};
use common::process::Process;
use conveyor_connectors::publish::RawPublisher;
use conveyor_connectors::simulate::carrier;
use conveyor_processors::allocate::harness::Watch;
use conveyor_processors::allocate::jobs::STOCK_TABLE;
use conveyor_processors::allocate::sim::check_stock;
use conveyor_processors::catalog::Catalog;
use conveyor_processors::inventory::sku::SkuState;
use conveyor_processors::normalize::processor::VERSIONS_TABLE;
use conveyor_processors::normalize::{example_raw, normalize};
use conveyor_runtime::kafka::{Consumer, OutRecord, Producer};
use conveyor_runtime::topology::{self, SINK_INPUTS};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{CatalogSku, InventoryEvent, InventoryEventKind, RawOrder};
use conveyor_sinks::event::GENERATIONS;

fn orders_wanted() -> u64 {
    std::env::var("REPLAY_TEST_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// Variants of each example SKU: 6 x 50 = 300 SKUs, so that demand
/// spreads like a real catalog's instead of piling on six.
const VARIANTS: u64 = 50;

/// Raw Shopify orders over the 300 SKUs; every tenth has no `name` (both
/// mappings agree).
fn raw_orders(n: u64, now: i64) -> Vec<RawOrder> {
    (0..n)
        .map(|i| {
            let mut raw = example_raw("shopify", i).unwrap();
            let mut v: serde_json::Value = serde_json::from_slice(&raw.payload).unwrap();
            if i % 10 == 0 {
                v.as_object_mut().unwrap().remove("name");
            }
            for (l, item) in v["line_items"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                let sku = item["sku"].as_str().unwrap().to_string();
                let k = (i * 7 + l as u64 * 13) % VARIANTS;
                item["sku"] = format!("{sku}-{k}").into();
                item.as_object_mut().unwrap().remove("variant_id");
            }
            raw.payload = serde_json::to_vec(&v).unwrap();
            raw.received_at = now;
            raw
        })
        .collect()
}

/// The example catalog's SKUs in their 50 variants each.
fn catalog() -> Vec<CatalogSku> {
    let csv =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/catalog.csv")).unwrap();
    let base = conveyor_connectors::catalog_load::parse(&csv, 1).unwrap();
    base.iter()
        .flat_map(|b| {
            (0..VARIANTS).map(move |k| {
                let mut s = b.clone();
                s.sku = format!("{}-{k}", b.sku);
                s.listings.clear();
                s
            })
        })
        .collect()
}

/// Stock for `percent` of the orders' demand, spread over the warehouses.
fn stock(s: &Setup, raws: &[RawOrder], skus: &[CatalogSku], percent: i64) -> Vec<InventoryEvent> {
    let cat = Catalog::from_skus(skus.to_vec());
    let mut demand: BTreeMap<String, i64> = BTreeMap::new();
    for r in raws {
        for l in normalize(r, &cat).unwrap().order.lines {
            *demand.entry(l.sku).or_default() += i64::from(l.quantity);
        }
    }
    let whs: Vec<&str> = s.config.warehouses.iter().map(|w| w.id.as_str()).collect();
    let mut out = Vec::new();
    for (sku, d) in demand {
        let units = d * percent / 100;
        for (k, w) in whs.iter().enumerate() {
            let share = units / whs.len() as i64 + i64::from(k == 0) * (units % whs.len() as i64);
            out.push(InventoryEvent {
                event_id: format!("test:{sku}:{w}"),
                sku: sku.clone(),
                warehouse_id: w.to_string(),
                kind: InventoryEventKind::Restock,
                quantity: share as i32,
                to_warehouse_id: None,
                reason: Some("test receipt".into()),
                reference: None,
                occurred_at: 1,
            });
        }
    }
    out
}

struct Pipeline {
    s: Setup,
    env: Vec<(&'static str, OsString)>,
    logs: tempfile::TempDir,
    state: tempfile::TempDir,
    api: String,
    db: String,
}

impl Pipeline {
    async fn new(prefix: &str, carrier_url: &str) -> Pipeline {
        let s = Setup::new(prefix).await;
        common::require_clickhouse(&s.config).await;
        let state = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let db = s.ns.replace('-', "_");
        let api_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = format!("127.0.0.1:{api_port}");
        let env: Vec<(&'static str, OsString)> = vec![
            ("CONVEYOR_TOPICS__NAMESPACE", s.ns.clone().into()),
            ("CONVEYOR_TOPICS__PARTITIONS", PARTITIONS.to_string().into()),
            ("CONVEYOR_STATE__DIR", state.path().join("stores").into()),
            ("CONVEYOR_STATE__BATCH_MAX_RECORDS", "500".into()),
            ("CONVEYOR_CHANNELS__ENABLED", r#"["shopify"]"#.into()),
            ("CONVEYOR_CLICKHOUSE__DATABASE", db.clone().into()),
            ("CONVEYOR_STORE__PATH", state.path().join("ops.redb").into()),
            ("CONVEYOR_HTTP__STATUS_API_BIND", api.clone().into()),
            ("CONVEYOR_LABEL__API_URL", carrier_url.into()),
            (
                "CONVEYOR_LABEL__DOCUMENTS",
                state.path().join("docs").into(),
            ),
        ];
        let mut ch = s.config.clone();
        ch.clickhouse.database = db.clone();
        conveyor_sinks::clickhouse::migrate::migrate(&ch.clickhouse)
            .await
            .unwrap();
        Pipeline {
            s,
            env,
            logs,
            state,
            api: format!("http://{api}"),
            db,
        }
    }

    fn env_with(&self, field: &str) -> Vec<(&'static str, OsString)> {
        let mut e = self.env.clone();
        e.push((
            "CONVEYOR_CHANNELS__SHOPIFY__ORDER_NUMBER_FIELD",
            field.into(),
        ));
        e
    }

    /// `conveyor <args>` as a long-running child.
    fn start(&self, args: &[&str], log: &str, field: &str) -> Process {
        let mut a = args.to_vec();
        a.extend(["--observability-bind", "127.0.0.1:0"]);
        Process::spawn(&a, &self.env_with(field), &self.logs.path().join(log))
    }

    /// `conveyor <args>` to completion: (success, stdout, stderr).
    fn run(&self, args: &[&str], field: &str) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
        cmd.args(args);
        for (k, v) in self.env_with(field) {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        eprintln!("$ conveyor {}\n{o}{}", args.join(" "), tail(&e, 2000));
        (out.status.success(), o, e)
    }

    fn stores(&self) -> std::path::PathBuf {
        self.state.path().join("stores")
    }

    /// Every sink input consumed by both sinks.
    fn sinks_lag(&self) -> i64 {
        let c = &self.s.config;
        let mut lag = 0;
        for sink in ["sink-clickhouse", "sink-scylla"] {
            let g = Consumer::new(&c.kafka, "test", &topology::group_id(c, sink)).unwrap();
            for id in SINK_INPUTS {
                let t = self.s.topic(id);
                let end: i64 = g
                    .end_offsets_total(&t, PARTITIONS, Duration::from_secs(10))
                    .unwrap();
                let done: i64 = g
                    .group_committed(&t, PARTITIONS, Duration::from_secs(10))
                    .unwrap()
                    .iter()
                    .sum();
                lag += end - done;
            }
        }
        lag
    }

    /// Until `orders.normalized` holds `n` records (`what` failing after `limit`).
    async fn wait_normalized(&self, n: i64, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        while self.s.count("orders_normalized") < n {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Allocation, route and label (if it runs) at rest, then both sinks
    /// caught up.
    async fn wait_for_rest(&self) {
        self.wait_for_rest_of(true).await
    }

    async fn wait_for_rest_of(&self, label: bool) {
        let w = if label {
            Watch::with_label(&self.s.config)
        } else {
            Watch::with_route(&self.s.config)
        };
        w.unwrap()
            .wait_for_rest(Duration::from_secs(1200), |_| {})
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.sinks_lag() > 0 {
            assert!(Instant::now() < deadline, "the sinks did not catch up");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn ch(&self, sql: &str) -> Vec<Vec<String>> {
        let url = format!("{}/?database={}", self.s.config.clickhouse.url, self.db);
        let body = reqwest::Client::new()
            .post(url)
            .body(format!("{sql} FORMAT TabSeparated"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        body.lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// order id -> (external number, version) in ClickHouse, FINAL.
    async fn ch_orders(&self) -> BTreeMap<String, (String, String)> {
        self.ch("SELECT order_id, external_number, version FROM orders FINAL")
            .await
            .into_iter()
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
            .collect()
    }

    async fn ch_count(&self, table: &str) -> i64 {
        self.ch(&format!("SELECT count() FROM {table} FINAL")).await[0][0]
            .parse()
            .unwrap()
    }

    async fn api_order(&self, http: &reqwest::Client, id: &str) -> serde_json::Value {
        http.get(format!("{}/orders/{id}", self.api))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The carrier simulator on a free port: (simulator, address, its stop).
async fn carrier_sim() -> (
    Arc<carrier::Sim>,
    std::net::SocketAddr,
    tokio_util::sync::CancellationToken,
) {
    let token = common::config().label.api_token.expose().to_string();
    let sim = Arc::new(carrier::Sim::new(&token));
    let stop = tokio_util::sync::CancellationToken::new();
    let (addr, _server) = carrier::serve(sim.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
        .await
        .unwrap();
    (sim, addr, stop)
}

fn tail(s: &str, n: usize) -> &str {
    &s[s.len().saturating_sub(n)..]
}

/// Order ids of normalized events on the topic, with how many each has.
async fn normalized_per_order(s: &Setup) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in s.read("orders_normalized").await {
        let k = String::from_utf8(r.key.unwrap()).unwrap();
        *m.entry(k).or_default() += 1;
    }
    m
}

async fn publish_inputs(p: &Pipeline, raws: &[RawOrder], stock_percent: i64) {
    let codec = Arc::new(Codec::new(&p.s.config.schema_registry.url).unwrap());
    let skus = catalog();
    conveyor_connectors::catalog_load::publish(&p.s.config, codec.clone(), &skus)
        .await
        .unwrap();
    let producer = Producer::new(&p.s.config.kafka, "test").unwrap();
    let inv = p.s.topic("inventory_events");
    // The stock was received before the orders (in event time too, which
    // an allocate replay follows).
    let received = raws.iter().map(|r| r.received_at).min().unwrap_or(0) - 1_000;
    let mut recs = Vec::new();
    for e in stock(&p.s, raws, &skus, stock_percent) {
        let b = codec.encode(&inv, &e).await.unwrap();
        recs.push(
            OutRecord::new(&inv)
                .key(e.sku.clone())
                .payload(b)
                .timestamp_ms(received),
        );
    }
    for r in producer.send_batch(&recs).await {
        r.unwrap();
    }
    let publisher = RawPublisher::new(&p.s.config, codec, "shopify", "test").unwrap();
    for chunk in raws.chunks(2000) {
        publisher.publish_all(chunk).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_normalize_fix_replayed_live_reaches_every_store_and_buys_nothing_twice() {
    let n = orders_wanted();
    let (sim, addr, stop) = carrier_sim().await;
    let p = Pipeline::new("replay-fix", &format!("http://{addr}")).await;
    let raws = raw_orders(n, conveyor_connectors::publish::now_ms());
    publish_inputs(&p, &raws, 110).await;

    // The first run, with the bug.
    let bug = "order_number";
    let normalizer = p.start(&["run", "normalize"], "normalize.log", bug);
    let _others: Vec<Process> = [
        (&["run", "allocate"][..], "allocate.log"),
        (&["run", "route"], "route.log"),
        (&["run", "label"], "label.log"),
        (&["sink", "scylla"], "sink-scylla.log"),
    ]
    .into_iter()
    .map(|(a, log)| p.start(a, log, bug))
    .collect();
    let ch_sink = p.start(&["sink", "clickhouse"], "sink-clickhouse.log", bug);
    p.wait_normalized(
        n as i64,
        Duration::from_secs(900),
        "normalize did not finish",
    )
    .await;
    p.wait_for_rest().await;

    let before = p.ch_orders().await;
    assert_eq!(before.len() as u64, n, "every order in ClickHouse");
    let bare = |i: u64| format!("{}", 1000 + i);
    let fixed = |i: u64| format!("#{}", 1000 + i);
    let cat = Catalog::from_skus(catalog());
    let ids: Vec<String> = raws
        .iter()
        .map(|r| normalize(r, &cat).unwrap().order.order_id)
        .collect();
    let id_of = |i: u64| ids[i as usize].clone();
    for i in [1, 2, 10, n - 1] {
        assert_eq!(before[&id_of(i)].0, bare(i), "the bug maps the bare number");
    }
    let allocations = p.ch_count("allocations").await;
    let labels = p.ch_count("labels").await;
    let movements = p.ch("SELECT count() FROM inventory_movements").await[0][0].clone();
    assert!(
        labels > 0 && allocations > 0,
        "the pipeline ran: {allocations} allocations, {labels} labels"
    );
    let stock_before: BTreeMap<String, serde_json::Value> =
        common::allocation::store(&p.stores().join("inventory.stock"), STOCK_TABLE);
    let sold_before = sim.purchases();
    let per_order_before = normalized_per_order(&p.s).await;
    let http = reqwest::Client::new();
    let sample: Vec<u64> = (0..n).step_by(97).chain([1, 10, n - 1]).collect();
    let mut views_before = BTreeMap::new();
    for &i in &sample {
        views_before.insert(i, p.api_order(&http, &id_of(i)).await);
    }

    // A replay while normalize runs is refused, naming its members.
    let args = [
        "replay",
        "live",
        "normalize",
        "--channel",
        "shopify",
        "--yes",
    ];
    let (ok, _, err) = p.run(&args, "name");
    assert!(
        !ok && err.contains("live members"),
        "a live group must refuse the replay"
    );
    normalizer.stop();

    // Without --yes: the plan, and nothing changes.
    let (ok, out, _) = p.run(&args[..5], "name");
    assert!(ok && out.contains("nothing changed"), "{out}");
    assert!(
        out.contains(&format!("{n}")),
        "the plan counts every message: {out}"
    );

    // The fix, replayed live with the state kept.
    let (ok, out, _) = p.run(&args, "name");
    assert!(ok, "the replay failed");
    assert!(out.contains("done"), "{out}");
    p.wait_for_rest().await;

    let after = p.ch_orders().await;
    assert_eq!(after.len(), before.len());
    let per_order_after = normalized_per_order(&p.s).await;
    let (mut affected, mut unaffected) = (0, 0);
    for i in 0..n {
        let id = id_of(i);
        if i % 10 == 0 {
            unaffected += 1;
            assert_eq!(after[&id], before[&id], "order {i} has no name: untouched");
            assert_eq!(
                per_order_after[&id], per_order_before[&id],
                "order {i} re-emitted"
            );
        } else {
            affected += 1;
            assert_eq!(after[&id].0, fixed(i), "order {i} not fixed in ClickHouse");
            let v = |x: &(String, String)| x.1.parse::<u64>().unwrap();
            assert!(
                v(&after[&id]) > v(&before[&id]),
                "order {i}: the fix has a higher version"
            );
            assert_eq!(per_order_after[&id], per_order_before[&id] + 1);
        }
    }
    eprintln!("{affected} orders fixed, {unaffected} untouched");
    for (&i, was) in &views_before {
        let now = p.api_order(&http, &id_of(i)).await;
        let want = if i % 10 == 0 { bare(i) } else { fixed(i) };
        assert_eq!(
            now["details"]["external_number"], want,
            "order {i} in the operational store"
        );
        let mut expected = was.clone();
        expected["details"]["external_number"] = want.into();
        // Status, lines, shipments, reservations and history as they were:
        // the creation replayed is still the creation.
        assert_eq!(now, expected, "order {i}: only the number changed");
    }
    // Nothing moved, nothing was bought again.
    let stock_after: BTreeMap<String, serde_json::Value> =
        common::allocation::store(&p.stores().join("inventory.stock"), STOCK_TABLE);
    assert_eq!(stock_after, stock_before, "the replay moved stock");
    assert_eq!(
        p.ch("SELECT count() FROM inventory_movements").await[0][0],
        movements
    );
    assert_eq!(p.ch_count("allocations").await, allocations);
    assert_eq!(p.ch_count("labels").await, labels);
    let sold = sim.purchases();
    assert_eq!(sold.duplicates, 0, "a label was bought twice");
    assert_eq!(
        sold.purchases, sold_before.purchases,
        "the replay bought labels"
    );

    // Recorded as done, with every message.
    let (ok, out, _) = p.run(&["replay", "status", "--json"], "name");
    assert!(ok);
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let job = &jobs.as_array().unwrap()[0];
    assert_eq!(job["status"], "done");
    assert_eq!(job["messages"], n);
    assert_eq!(job["generation"], 1);

    // Rebuilding ClickHouse from the topics gives the same answers.
    ch_sink.stop();
    let (ok, out, _) = p.run(
        &["replay", "rebuild", "--sink", "clickhouse", "--yes"],
        "name",
    );
    assert!(ok && out.contains("rebuilt"), "{out}");
    assert_eq!(p.ch_orders().await, after, "a rebuild answers as before");
    assert_eq!(p.ch_count("labels").await, labels);
    stop.cancel();
}

/// normalize's `versions` store, all partitions.
fn versions(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    common::allocation::store(&dir.join("normalize-shopify.versions"), VERSIONS_TABLE)
}

/// The newest normalized event per order (payload bytes after the
/// schema id), from the topic.
async fn newest_events(s: &Setup) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for r in s.read("orders_normalized").await {
        m.insert(
            String::from_utf8(r.key.unwrap()).unwrap(),
            r.payload.unwrap()[5..].to_vec(),
        );
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_reset_replay_resumes_and_a_rebuilt_store_matches() {
    let n = 3_000;
    let p = Pipeline::new("replay-resume", "http://127.0.0.1:9").await;
    let raws = raw_orders(n, conveyor_connectors::publish::now_ms());
    publish_inputs(&p, &raws, 100).await;
    let normalize = p.start(&["run", "normalize"], "normalize.log", "name");
    p.wait_normalized(
        n as i64,
        Duration::from_secs(600),
        "normalize did not finish",
    )
    .await;
    normalize.stop();
    let state = versions(&p.stores());
    assert_eq!(state.len() as u64, n);
    let events = newest_events(&p.s).await;

    // A reset replay, killed once it has re-emitted some orders.
    let mut env = p.env_with("name");
    env.push(("CONVEYOR_STATE__BATCH_MAX_RECORDS", "100".into()));
    let replay = Process::spawn(
        &["replay", "live", "normalize", "--reset-state", "--yes"],
        &env,
        &p.logs.path().join("replay.log"),
    );
    p.wait_normalized(
        n as i64 + 500,
        Duration::from_secs(300),
        "the replay made no progress",
    )
    .await;
    replay.kill9();
    let (ok, out, _) = p.run(&["replay", "status"], "name");
    assert!(
        ok && out.contains("prepared"),
        "an interrupted replay shows as prepared: {out}"
    );
    // The killed process is a member until its session times out: until
    // then, everything refuses.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, _, err) = p.run(&["replay", "live", "normalize", "--yes"], "name");
        assert!(!ok);
        if err.contains("unfinished") {
            break; // a new replay over the same jobs waits for this one
        }
        assert!(err.contains("live members"), "{err}");
        assert!(Instant::now() < deadline, "the killed member never left");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let (ok, out, _) = p.run(&["replay", "resume"], "name");
    assert!(ok && out.contains("done"), "{out}");
    assert_eq!(
        versions(&p.stores()),
        state,
        "a reset replay rebuilds the same state"
    );
    assert_eq!(
        newest_events(&p.s).await,
        events,
        "every order's newest event is unchanged"
    );
    let total = p.s.count("orders_normalized");
    assert!(
        total >= 2 * n as i64,
        "a reset replay re-emits every order: {total}"
    );

    // Losing the store: rebuilt from its changelog, the same state.
    std::fs::remove_dir_all(p.stores().join("normalize-shopify.versions")).unwrap();
    let (ok, out, _) = p.run(
        &[
            "replay",
            "rebuild",
            "--store",
            "normalize-shopify.versions",
            "--yes",
        ],
        "name",
    );
    assert!(ok && out.contains("rebuilt"), "{out}");
    assert_eq!(versions(&p.stores()), state);

    // And normalize goes on from where the replay ended: nothing new.
    let normalize = p.start(&["run", "normalize"], "normalize-2.log", "name");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let summary = String::from_utf8_lossy(&normalize.stop()).into_owned();
    assert_eq!(p.s.count("orders_normalized"), total, "{summary}");
}

/// Per order: (allocation signature, route signature, parcels, cost, SLA
/// misses), from the topics of `config`'s namespace, the newest version
/// of each allocation and plan: what the diff reads from ClickHouse.
async fn facts_from_topics(
    config: &conveyor_runtime::config::Config,
) -> BTreeMap<String, (String, String, u32, rust_decimal::Decimal, u32)> {
    use conveyor_schemas::records::{AllocationResult, PlanStatus, PlannedShipment};
    use conveyor_sinks::event::version;
    let topo = conveyor_runtime::topology::Topology::resolve(config);
    let codec = Codec::new(&config.schema_registry.url).unwrap();
    async fn decode<T: conveyor_schemas::records::Record>(
        config: &conveyor_runtime::config::Config,
        codec: &Codec,
        topic: &str,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for r in common::stream::read_partitions(config, topic, PARTITIONS).await {
            let at = conveyor_schemas::codec::Source {
                topic: &r.topic,
                partition: r.partition,
                offset: r.offset,
            };
            out.push(codec.decode::<T>(r.payload.as_deref(), at).await.unwrap());
        }
        out
    }
    let mut allocs: BTreeMap<String, (i64, AllocationResult)> = BTreeMap::new();
    for id in ["orders_allocated", "orders_backordered"] {
        for a in decode::<AllocationResult>(config, &codec, topo.topic_name(id).unwrap()).await {
            let v = version(a.decided_at, &a.event_id);
            if allocs.get(&a.order_id).is_none_or(|(w, _)| v >= *w) {
                allocs.insert(a.order_id.clone(), (v, a));
            }
        }
    }
    let mut plans: BTreeMap<String, (i64, PlannedShipment)> = BTreeMap::new();
    for p in decode::<PlannedShipment>(
        config,
        &codec,
        topo.topic_name("shipments_planned").unwrap(),
    )
    .await
    {
        let v = version(p.planned_at, &p.event_id);
        if plans.get(&p.shipment_id).is_none_or(|(w, _)| v >= *w) {
            plans.insert(p.shipment_id.clone(), (v, p));
        }
    }
    let mut out: BTreeMap<String, (String, String, u32, rust_decimal::Decimal, u32)> =
        BTreeMap::new();
    for (id, (_, a)) in allocs {
        let mut lines: Vec<String> = a
            .allocations
            .iter()
            .flat_map(|w| {
                w.lines
                    .iter()
                    .map(move |l| format!("{}@{} x{}", l.sku, w.warehouse_id, l.quantity))
            })
            .collect();
        lines.sort();
        out.entry(id).or_default().0 = format!("{:?} {}", a.status, lines.join(", "));
    }
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, (_, p)) in plans {
        if p.status != PlanStatus::Planned {
            continue;
        }
        routes
            .entry(p.order_id.clone())
            .or_default()
            .push(format!("{}:{} {}", p.warehouse_id, p.carrier, p.service));
        let e = out.entry(p.order_id.clone()).or_default();
        e.2 += 1;
        e.3 += p.rate.amount;
        e.4 += u32::from(!p.meets_sla);
    }
    for (id, mut r) in routes {
        r.sort();
        out.entry(id).or_default().1 = r.join(", ");
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_with_another_policy_diffs_against_live_exactly() {
    let n = 2_000;
    let p = Pipeline::new("replay-sandbox", "http://127.0.0.1:9").await;
    let raws = raw_orders(n, conveyor_connectors::publish::now_ms());
    publish_inputs(&p, &raws, 80).await;
    let field = "name";
    let _live: Vec<Process> = [
        (&["run", "normalize"][..], "normalize.log"),
        (&["run", "allocate"], "allocate.log"),
        (&["run", "route"], "route.log"),
        (&["sink", "clickhouse"], "sink-clickhouse.log"),
        (&["sink", "scylla"], "sink-scylla.log"),
    ]
    .into_iter()
    .map(|(a, log)| p.start(a, log, field))
    .collect();
    p.wait_normalized(
        n as i64,
        Duration::from_secs(600),
        "normalize did not finish",
    )
    .await;
    p.wait_for_rest_of(false).await;

    // The alternative: ship complete or wait, and a 2-day promise.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    cmd.args(["replay", "sandbox", "alt", "--yes"]);
    for (k, v) in p.env_with(field) {
        cmd.env(k, v);
    }
    cmd.env("CONVEYOR_ALLOCATION__DEFAULT_POLICY__SPLIT", "false")
        .env("CONVEYOR_ALLOCATION__DEFAULT_POLICY__MAX_PARCELS", "1")
        .env("CONVEYOR_ROUTING__PROMISE_DAYS__STANDARD", "2");
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{text}{}",
        tail(&String::from_utf8_lossy(&out.stderr), 3000)
    );
    assert!(out.status.success(), "the sandbox failed");
    assert!(text.contains("sandbox alt done"), "{text}");

    let csv = p.logs.path().join("diff.csv");
    let (ok, out, _) = p.run(
        &[
            "replay",
            "diff",
            "alt",
            "--json",
            "--csv",
            csv.to_str().unwrap(),
        ],
        field,
    );
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();

    // The same from the topics, directly.
    let (ok, status, _) = p.run(&["replay", "status", "--json"], field);
    assert!(ok);
    let jobs: serde_json::Value = serde_json::from_str(&status).unwrap();
    let ns = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "sandbox")
        .unwrap()["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    let mut sb_config = p.s.config.clone();
    sb_config.topics.namespace = ns;
    let live = facts_from_topics(&p.s.config).await;
    let sandbox = facts_from_topics(&sb_config).await;
    let orders: std::collections::BTreeSet<String> = {
        let topo = conveyor_runtime::topology::Topology::resolve(&sb_config);
        common::stream::read_partitions(
            &sb_config,
            topo.topic_name("orders_normalized").unwrap(),
            PARTITIONS,
        )
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.key.unwrap()).unwrap())
        .collect()
    };
    assert_eq!(orders.len() as u64, n, "the sandbox ran every order");
    let none = Default::default();
    let (mut alloc_changed, mut route_changed, mut changed) = (0u64, 0u64, 0usize);
    let mut totals = [(rust_decimal::Decimal::ZERO, 0u64, 0u64, 0u64, 0u64); 2];
    for id in &orders {
        let sides = [
            live.get(id).unwrap_or(&none),
            sandbox.get(id).unwrap_or(&none),
        ];
        for (t, s) in totals.iter_mut().zip(sides) {
            t.0 += s.3;
            t.1 += u64::from(s.2);
            t.2 += u64::from(s.2 > 0);
            t.3 += u64::from(s.2 > 1);
            t.4 += u64::from(s.4);
        }
        let (l, s) = (sides[0], sides[1]);
        alloc_changed += u64::from(l.0 != s.0);
        route_changed += u64::from(l.1 != s.1);
        changed += usize::from(l.0 != s.0 || l.1 != s.1 || l.3 != s.3 || l.4 != s.4);
    }
    eprintln!("direct: {alloc_changed} allocations and {route_changed} routes changed, {totals:?}");
    assert_eq!(report["orders"], n);
    assert_eq!(report["allocation_changed"], alloc_changed);
    assert_eq!(report["route_changed"], route_changed);
    assert!(
        alloc_changed > 0 && route_changed > 0,
        "the policy changed something"
    );
    for (side, t) in ["live", "sandbox"].iter().zip(totals) {
        let r = &report[side];
        assert_eq!(
            r["cost"].as_str().unwrap(),
            t.0.normalize().to_string(),
            "{side} cost"
        );
        assert_eq!(
            (
                r["parcels"].as_u64().unwrap(),
                r["routed"].as_u64().unwrap()
            ),
            (t.1, t.2),
            "{side}"
        );
        assert_eq!(
            (
                r["split"].as_u64().unwrap(),
                r["sla_misses"].as_u64().unwrap()
            ),
            (t.3, t.4),
            "{side}"
        );
    }
    let rows = csv::Reader::from_path(&csv).unwrap().records().count();
    assert_eq!(rows, changed, "one CSV row per changed order");
    // Live is untouched: its database still answers as before.
    assert_eq!(p.ch_count("orders").await, n as i64);
}

/// order id -> (allocation: status and sku@warehouse x qty, generation).
async fn ch_allocations(p: &Pipeline) -> BTreeMap<String, (String, u64)> {
    p.ch(&format!("SELECT order_id, concat(status, ' ', arrayStringConcat(arraySort(arrayMap((s, w, q) -> concat(s, '@', w, ' x', toString(q)), allocated.sku, allocated.warehouse_id, allocated.quantity)), ', ')), version % {GENERATIONS} FROM allocations FINAL"))
        .await
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].parse().unwrap())))
        .collect()
}

/// shipment id -> (status warehouse carrier service rate, generation).
async fn ch_plans(p: &Pipeline) -> BTreeMap<String, (String, u64)> {
    p.ch(&format!("SELECT shipment_id, concat(status, ' ', warehouse_id, ' ', carrier, ' ', service, ' ', toString(rate)), version % {GENERATIONS} FROM shipment_plans FINAL"))
        .await
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].parse().unwrap())))
        .collect()
}

/// The inventory store, per SKU.
fn stock_levels(p: &Pipeline) -> BTreeMap<String, SkuState> {
    common::allocation::store(&p.stores().join("inventory.stock"), STOCK_TABLE)
}

/// Per SKU: units on hand and reserved, over every warehouse.
fn per_sku(m: &BTreeMap<String, SkuState>) -> BTreeMap<String, (i64, i64)> {
    m.iter()
        .map(|(sku, s)| {
            let (mut on_hand, mut reserved) = (0, 0);
            for (_, l) in s.stock.levels() {
                on_hand += l.on_hand;
                reserved += l.reserved;
            }
            (sku.clone(), (on_hand, reserved))
        })
        .collect()
}

/// The allocate and route test: the pipeline runs 2,000 orders (stock
/// for all of them), then allocation and routing are each replayed from
/// scratch (`--reset-state`: every order decided again) while the stages
/// after them keep running:
/// - a replay with the state kept is refused (it would change nothing);
/// - every order is decided again (a generation-1 decision on the topic)
///   and allocated; the stock on hand and the units reserved per SKU are
///   the first run's, nothing is oversold (which warehouse serves an order
///   may differ where holds contend: printed, not asserted);
/// - routing from scratch afterwards, over both generations of
///   allocations, plans every shipment as live route did (every row
///   superseded by its generation), every allocated unit once, and buys
///   no label;
/// - no label is ever bought twice.
#[tokio::test(flavor = "multi_thread")]
async fn allocate_and_route_replayed_from_scratch_decide_the_same_and_buy_nothing() {
    let n: u64 = 2_000;
    let (sim, addr, stop) = carrier_sim().await;
    let p = Pipeline::new("replay-alloc", &format!("http://{addr}")).await;
    let raws = raw_orders(n, conveyor_connectors::publish::now_ms());
    publish_inputs(&p, &raws, 110).await;
    let field = "name";
    let allocate = p.start(&["run", "allocate"], "allocate.log", field);
    let route = p.start(&["run", "route"], "route.log", field);
    let _others: Vec<Process> = [
        (&["run", "normalize"][..], "normalize.log"),
        (&["run", "label"], "label.log"),
        (&["sink", "scylla"], "sink-scylla.log"),
        (&["sink", "clickhouse"], "sink-clickhouse.log"),
    ]
    .into_iter()
    .map(|(a, log)| p.start(a, log, field))
    .collect();
    p.wait_normalized(
        n as i64,
        Duration::from_secs(900),
        "normalize did not finish",
    )
    .await;
    p.wait_for_rest().await;
    let allocations = ch_allocations(&p).await;
    let stock = stock_levels(&p);
    let sold = sim.purchases();
    assert_eq!(allocations.len() as u64, n, "every order allocated");
    assert!(!ch_plans(&p).await.is_empty() && sold.purchases > 0);
    assert!(allocations
        .values()
        .all(|a| a.1 == 0 && a.0.starts_with("ALLOCATED")));

    // Allocation, from scratch, while route, label and the sinks run.
    allocate.stop();
    let (ok, _, err) = p.run(&["replay", "live", "allocate", "--yes"], field);
    assert!(!ok && err.contains("would change nothing"), "{err}");
    let (ok, out, _) = p.run(
        &["replay", "live", "allocate", "--reset-state", "--yes"],
        field,
    );
    assert!(ok && out.contains("done"), "{out}");
    assert!(
        out.contains("until rest"),
        "the plan shows the internal jobs: {out}"
    );
    p.wait_for_rest().await;
    let again = ch_allocations(&p).await;
    assert_eq!(again.len(), allocations.len());
    assert!(
        again.values().all(|a| a.0.starts_with("ALLOCATED")),
        "every order allocated again"
    );
    // Every order decided again: a decision of generation 1 on the topic.
    let mut regenerated = std::collections::BTreeSet::new();
    for r in p.s.read("orders_allocated").await {
        let gen = r
            .headers
            .iter()
            .find(|(k, _)| k == conveyor_stream::GENERATION_HEADER)
            .map(|(_, v)| v.clone());
        if gen.as_deref() == Some(&b"1"[..]) {
            regenerated.insert(String::from_utf8(r.key.unwrap()).unwrap());
        }
    }
    assert_eq!(
        regenerated.len(),
        allocations.len(),
        "every order re-decided"
    );
    let changed = again
        .iter()
        .filter(|(id, a)| allocations[*id].0 != a.0)
        .count();
    let superseded = again.values().filter(|a| a.1 == 1).count();
    eprintln!(
        "allocate replay: {changed} of {n} orders allocated differently (contention between holds); {superseded} rows superseded by generation 1"
    );
    // The same stock, the same units reserved per SKU, nothing oversold.
    let stock_again = stock_levels(&p);
    check_stock(&stock_again).unwrap();
    assert_eq!(
        per_sku(&stock_again),
        per_sku(&stock),
        "stock or reservations moved"
    );
    let bought = sim.purchases();
    assert_eq!(bought.duplicates, 0, "a label was bought twice");
    eprintln!(
        "labels bought for changed allocations: {}",
        bought.purchases - sold.purchases
    );

    // Routing, from scratch, over both generations of allocations: the
    // same plans as live route made from them, every row superseded by
    // generation 2, nothing bought.
    let plans = ch_plans(&p).await;
    route.stop();
    let (ok, out, _) = p.run(
        &["replay", "live", "route", "--reset-state", "--yes"],
        field,
    );
    assert!(ok && out.contains("done"), "{out}");
    p.wait_for_rest().await;
    let replanned = ch_plans(&p).await;
    assert_eq!(replanned.len(), plans.len());
    let differ: Vec<_> = replanned
        .iter()
        .filter(|(id, (plan, _))| plans[*id].0 != *plan)
        .take(5)
        .map(|(id, now)| format!("{id}: {:?} -> {now:?}", plans[id]))
        .collect();
    assert!(differ.is_empty(), "plans changed: {differ:?}");
    assert!(
        replanned.values().all(|(_, g)| *g == 2),
        "every plan superseded by generation 2"
    );
    // Every allocated unit has exactly one live plan.
    let units = |rows: Vec<Vec<String>>| -> BTreeMap<String, i64> {
        rows.into_iter()
            .map(|r| (r[0].clone(), r[1].parse().unwrap()))
            .collect()
    };
    let allocated = units(p.ch("SELECT order_id, sum(arraySum(allocated.quantity)) FROM allocations FINAL GROUP BY order_id").await);
    let planned = units(p.ch("SELECT order_id, sum(units) FROM shipment_plans FINAL WHERE status = 'PLANNED' GROUP BY order_id").await);
    assert_eq!(planned, allocated, "allocated units planned once");
    let now = sim.purchases();
    assert_eq!(now.duplicates, 0, "a label was bought twice");
    assert_eq!(
        now.purchases, bought.purchases,
        "the route replay bought labels"
    );
    check_stock(&stock_levels(&p)).unwrap();
    let (ok, out, _) = p.run(&["replay", "status", "--json"], field);
    assert!(ok);
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let done: Vec<_> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["target"].as_str().unwrap(), j["status"].as_str().unwrap()))
        .collect();
    assert_eq!(done, [("allocate", "done"), ("route", "done")]);
    stop.cancel();
}

//! The ClickHouse sink against the real ClickHouse engine (and, for the
//! crash test, the real broker): the migrations, the ten analyst queries
//! of docs/analytics.md on known data, replays that change no answer, and
//! a sink killed mid-batch and cut off from ClickHouse that loses nothing
//! and counts nothing twice.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::OutRecord;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::records::{AllocationStatus, LabelStatus, OrderEventKind, PlanStatus};
use conveyor_sinks::clickhouse::{self as ch, migrate, sink::ClickHouseWriter};
use conveyor_sinks::event::{Located, SinkEvent};
use conveyor_sinks::feed::Writer;
use conveyor_sinks::sample;
use rust_decimal::Decimal;
use serde_json::Value;

/// 2026-11-27T00:00:00Z.
const DAY0_MS: i64 = 1_795_737_600_000;

async fn database(prefix: &str) -> Config {
    let mut config = common::config();
    common::require_clickhouse(&config).await;
    config.clickhouse.database = common::unique(prefix).replace('-', "_");
    config
}

fn located(events: &[SinkEvent]) -> Vec<Located> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Located::first_run(e.clone(), "t", 0, i as i64))
        .collect()
}

async fn write_all(config: &Config, events: &[SinkEvent], batch: usize) {
    let mut w = ClickHouseWriter::new(&config.clickhouse);
    for chunk in located(events).chunks(batch) {
        w.write(chunk).await.unwrap();
    }
}

/// The queries of docs/analytics.md: (name, title, sql).
fn doc_queries() -> Vec<(String, String, String)> {
    ch::queries::analyst_queries()
        .into_iter()
        .map(|q| (q.name, q.title, q.sql))
        .collect()
}

fn pinned(sql: &str, day: &str) -> String {
    ch::queries::pin_today(sql, day)
}

async fn query(config: &Config, sql: &str, format: &str) -> String {
    let url = format!(
        "{}/?database={}&default_format={format}&output_format_json_quote_decimals=1&output_format_json_quote_64bit_integers=0",
        config.clickhouse.url, config.clickhouse.database
    );
    let resp = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{sql}\n-> {status}: {text}");
    text
}

async fn rows(config: &Config, sql: &str) -> Vec<serde_json::Map<String, Value>> {
    query(config, sql, "JSONEachRow")
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap(),
        other => panic!("not a number: {other}"),
    }
}
fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}
fn text(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}
fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// What ReplacingMergeTree keeps: per key, the highest version, the last
/// written among equals.
fn latest<T: Clone>(items: impl Iterator<Item = (String, i64, T)>) -> BTreeMap<String, T> {
    let mut m: BTreeMap<String, (i64, T)> = BTreeMap::new();
    for (k, v, t) in items {
        match m.get(&k) {
            Some((have, _)) if *have > v => {}
            _ => {
                m.insert(k, (v, t));
            }
        }
    }
    m.into_iter().map(|(k, (_, t))| (k, t)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_and_refuse_an_edited_file() {
    let config = database("ch_mig").await;
    let first = migrate::migrate(&config.clickhouse).await.unwrap();
    assert!(first.iter().all(|(_, a)| *a == migrate::Applied::Now));
    let again = migrate::migrate(&config.clickhouse).await.unwrap();
    assert!(again.iter().all(|(_, a)| *a == migrate::Applied::Already));
    migrate::check(&config.clickhouse).await.unwrap();

    // A database that was never migrated is refused by the sink's check.
    let mut other = config.clone();
    other.clickhouse.database = format!("{}_none", config.clickhouse.database);
    let err = migrate::check(&other.clickhouse).await.unwrap_err();
    assert!(err.to_string().contains("--migrate"), "{err}");

    // An applied file whose text changed is refused.
    ch::client(&config.clickhouse)
        .query("INSERT INTO schema_migrations (version, name, checksum) VALUES (1, '001_facts.sql', 'edited')")
        .execute()
        .await
        .unwrap();
    let err = migrate::migrate(&config.clickhouse).await.unwrap_err();
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ten_analyst_queries_answer_known_data() {
    let config = database("ch_q").await;
    migrate::migrate(&config.clickhouse).await.unwrap();
    // 120 orders, 30 s apart, on 2026-11-27 (00:00 to 01:00).
    let events = sample::orders(0..120, DAY0_MS);
    write_all(&config, &events, 97).await;
    ch::refresh_views(&config.clickhouse).await.unwrap();
    let queries = doc_queries();
    assert_eq!(queries.len(), 10, "docs/analytics.md has ten queries");
    let q: HashMap<String, String> = queries
        .iter()
        .map(|(n, _, sql)| (n.clone(), pinned(sql, "2026-11-27")))
        .collect();

    // The direct computation.
    let orders = latest(events.iter().filter_map(|e| match e {
        SinkEvent::Order(o) => Some((o.order_id.clone(), e.version(), o.clone())),
        _ => None,
    }));
    let live: Vec<_> = orders
        .values()
        .filter(|o| o.kind != OrderEventKind::Cancelled)
        .collect();
    let allocations = latest(events.iter().filter_map(|e| match e {
        SinkEvent::Allocation(a) => Some((a.order_id.clone(), e.version(), a.clone())),
        _ => None,
    }));
    let plans = latest(events.iter().filter_map(|e| match e {
        SinkEvent::Planned(p) => Some((p.shipment_id.clone(), e.version(), p.clone())),
        _ => None,
    }));
    let labels = latest(events.iter().filter_map(|e| match e {
        SinkEvent::Labeled(l) => Some((l.shipment_id.clone(), e.version(), l.clone())),
        _ => None,
    }));

    // q1: orders, units, revenue per channel (one day).
    let mut want: BTreeMap<String, (u64, i64, Decimal)> = BTreeMap::new();
    for o in &live {
        let e = want.entry(o.order.channel.clone()).or_default();
        e.0 += 1;
        e.1 += o
            .order
            .lines
            .iter()
            .map(|l| i64::from(l.quantity))
            .sum::<i64>();
        e.2 += o.order.totals.total.amount;
    }
    let got: BTreeMap<String, (u64, i64, Decimal)> = rows(&config, &q["q1"])
        .await
        .iter()
        .map(|r| {
            assert_eq!(text(&r["day"]), "2026-11-27");
            (
                text(&r["channel"]),
                (
                    num(&r["orders"]) as u64,
                    num(&r["units"]) as i64,
                    dec(&r["revenue"]),
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "q1");

    // q2: the same orders and revenue, per hour.
    let mut per_channel: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    let q2 = rows(&config, &q["q2"]).await;
    for r in &q2 {
        let e = per_channel.entry(text(&r["channel"])).or_default();
        e.0 += num(&r["orders"]) as u64;
        e.1 += dec(&r["revenue"]);
    }
    let want2: BTreeMap<String, (u64, Decimal)> = want
        .iter()
        .map(|(c, (o, _, r))| (c.clone(), (*o, *r)))
        .collect();
    assert_eq!(per_channel, want2, "q2");
    let hours: BTreeSet<String> = q2.iter().map(|r| text(&r["hour"])).collect();
    assert_eq!(
        hours.len(),
        1,
        "120 orders 30 s apart fall in one hour: {hours:?}"
    );

    // q3: labels per carrier, service, zone.
    type Lane = (String, String, String);
    let mut want3: BTreeMap<Lane, (u64, BTreeSet<String>, Decimal)> = BTreeMap::new();
    for l in labels.values().filter(|l| l.status == LabelStatus::Labeled) {
        let p = &plans[&l.shipment_id];
        let e = want3
            .entry((
                p.carrier.clone(),
                p.service.clone(),
                p.zone.clone().unwrap(),
            ))
            .or_default();
        e.0 += 1;
        e.1.insert(l.order_id.clone());
        e.2 += l.label_cost.amount;
    }
    let got3: BTreeMap<Lane, (u64, u64, Decimal)> = rows(&config, &q["q3"])
        .await
        .iter()
        .map(|r| {
            (
                (text(&r["carrier"]), text(&r["service"]), text(&r["zone"])),
                (
                    num(&r["shipments"]) as u64,
                    num(&r["orders"]) as u64,
                    dec(&r["label_cost"]),
                ),
            )
        })
        .collect();
    let want3: BTreeMap<_, _> = want3
        .into_iter()
        .map(|(k, (s, o, c))| (k, (s, o.len() as u64, c)))
        .collect();
    assert_eq!(got3, want3, "q3");

    // q4: split and backorder rates per channel.
    let mut want4: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for o in &live {
        let e = want4.entry(o.order.channel.clone()).or_default();
        e[0] += 1;
        if let Some(a) = allocations.get(&o.order_id) {
            e[1] += u64::from(a.status == AllocationStatus::Allocated && a.allocations.len() == 1);
            e[2] += u64::from(a.allocations.len() > 1);
            e[3] += u64::from(matches!(
                a.status,
                AllocationStatus::Backordered | AllocationStatus::PartiallyAllocated
            ));
        }
    }
    let got4 = rows(&config, &q["q4"]).await;
    assert_eq!(got4.len(), want4.len(), "q4");
    for r in &got4 {
        let w = want4[&text(&r["channel"])];
        assert_eq!(num(&r["orders"]) as u64, w[0], "q4 orders");
        for (col, i) in [
            ("one_warehouse_rate", 1),
            ("split_rate", 2),
            ("backorder_rate", 3),
        ] {
            let want = round(w[i] as f64 / w[0] as f64, 4);
            assert!(
                (num(&r[col]) - want).abs() < 1e-9,
                "q4 {col}: {} vs {want}",
                r[col]
            );
        }
    }
    assert!(
        got4.iter().any(|r| num(&r["split_rate"]) > 0.0)
            && got4.iter().any(|r| num(&r["backorder_rate"]) > 0.0),
        "the data has splits and backorders"
    );

    // q5: latency per carrier: counts and maxima.
    let mut want5: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for l in labels.values().filter(|l| l.status == LabelStatus::Labeled) {
        let p = &plans[&l.shipment_id];
        let secs = (l.labeled_at - p.ordered_at.unwrap()) as f64 / 1000.0;
        let e = want5.entry(l.carrier.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.max(secs);
    }
    let got5 = rows(&config, &q["q5"]).await;
    assert_eq!(got5.len(), want5.len(), "q5");
    for r in &got5 {
        let w = want5[&text(&r["carrier"])];
        assert_eq!(num(&r["shipments"]) as u64, w.0, "q5 shipments");
        assert!((num(&r["max_seconds"]) - w.1).abs() < 1e-6, "q5 max");
        let p = [
            num(&r["p50_seconds"]),
            num(&r["p90_seconds"]),
            num(&r["p99_seconds"]),
            num(&r["max_seconds"]),
        ];
        assert!(
            p.windows(2).all(|w| w[0] <= w[1]),
            "q5 percentiles ordered: {p:?}"
        );
    }

    // q6: top 10 SKUs by revenue.
    let mut per_sku: BTreeMap<String, (i64, Decimal)> = BTreeMap::new();
    for o in &live {
        for l in &o.order.lines {
            let e = per_sku.entry(l.sku.clone()).or_default();
            e.0 += i64::from(l.quantity);
            e.1 += l.total.amount;
        }
    }
    let mut want6: Vec<(String, i64, Decimal)> = per_sku
        .iter()
        .map(|(s, (u, r))| (s.clone(), *u, *r))
        .collect();
    want6.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    want6.truncate(10);
    let got6: Vec<(String, i64, Decimal)> = rows(&config, &q["q6"])
        .await
        .iter()
        .map(|r| (text(&r["sku"]), num(&r["units"]) as i64, dec(&r["revenue"])))
        .collect();
    assert_eq!(got6, want6, "q6");

    // q7: days of cover from the latest levels per sku x warehouse.
    let levels = latest(events.iter().filter_map(|e| match e {
        SinkEvent::Movement(m) => Some((format!("{}|{}", m.sku, m.warehouse_id), m.seq, m.clone())),
        _ => None,
    }));
    let mut stock: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for m in levels.values() {
        let e = stock.entry(m.sku.clone()).or_default();
        e.0 += i64::from(m.on_hand);
        e.1 += i64::from(m.available);
    }
    let got7 = rows(&config, &q["q7"]).await;
    assert_eq!(got7.len(), stock.len().min(20), "q7");
    for r in &got7 {
        let sku = text(&r["sku"]);
        let (on_hand, available) = stock[&sku];
        assert_eq!(num(&r["on_hand"]) as i64, on_hand, "q7 on_hand {sku}");
        assert_eq!(num(&r["available"]) as i64, available, "q7 available {sku}");
        let daily = per_sku[&sku].0 as f64 / 30.0;
        let cover = round(available as f64 / daily, 1);
        assert!(
            (num(&r["days_of_cover"]) - cover).abs() < 0.051,
            "q7 cover {sku}: {} vs {cover}",
            r["days_of_cover"]
        );
    }

    // q8: turnover = units ordered / closing on-hand (one day of data).
    let got8 = rows(&config, &q["q8"]).await;
    assert_eq!(got8.len(), stock.len().min(20), "q8");
    for r in &got8 {
        let sku = text(&r["sku"]);
        assert_eq!(
            num(&r["units_ordered"]) as i64,
            per_sku[&sku].0,
            "q8 units {sku}"
        );
        assert_eq!(
            num(&r["avg_on_hand"]) as i64,
            stock[&sku].0,
            "q8 on hand {sku}"
        );
    }

    // q9: promises at risk per carrier and service.
    let mut want9: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    for p in plans.values().filter(|p| p.status == PlanStatus::Planned) {
        let e = want9
            .entry((p.carrier.clone(), p.service.clone()))
            .or_default();
        e[0] += 1;
        e[1] += u64::from(!p.meets_sla);
        let promised = orders[&p.order_id].order.deliver_by;
        e[2] += u64::from(matches!((promised, p.estimated_delivery), (Some(d), Some(e)) if e > d));
    }
    let got9: BTreeMap<(String, String), [u64; 3]> = rows(&config, &q["q9"])
        .await
        .iter()
        .map(|r| {
            (
                (text(&r["carrier"]), text(&r["service"])),
                [
                    num(&r["shipments"]) as u64,
                    num(&r["planned_to_miss_sla"]) as u64,
                    num(&r["later_than_promised"]) as u64,
                ],
            )
        })
        .collect();
    assert_eq!(got9, want9, "q9");
    assert!(
        want9.values().any(|w| w[1] > 0 && w[2] > 0),
        "the data has promises at risk"
    );

    // q10: dead letters and exceptions.
    let dlq = events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Dlq(_)))
        .count() as u64;
    let exc = events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Exception(_)))
        .count() as u64;
    let got10 = rows(&config, &q["q10"]).await;
    let count = |source: &str| -> u64 {
        got10
            .iter()
            .filter(|r| r["source"] == source)
            .map(|r| num(&r["records"]) as u64)
            .sum()
    };
    assert_eq!((count("dlq"), count("exception")), (dlq, exc), "q10");
    assert!(dlq > 0 && exc > 0);
}

/// Every query's answer, as text, plus each table's distinct keys.
async fn answers(config: &Config, day: &str) -> BTreeMap<String, String> {
    ch::refresh_views(&config.clickhouse).await.unwrap();
    let mut out = BTreeMap::new();
    for (name, _, sql) in doc_queries() {
        out.insert(name, query(config, &pinned(&sql, day), "TSV").await);
    }
    for table in ch::FACT_TABLES {
        let n = query(config, &format!("SELECT count() FROM {table} FINAL"), "TSV").await;
        out.insert(table.to_string(), n);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_100k_events_twice_changes_no_answer() {
    let config = database("ch_replay").await;
    migrate::migrate(&config.clickhouse).await.unwrap();
    // About 100k events: 15,500 orders over 5.4 days.
    let events = sample::orders(0..15_500, DAY0_MS);
    assert!(events.len() >= 100_000, "{} events", events.len());
    write_all(&config, &events, 50_000).await;
    let day = "2026-12-02";
    let first = answers(&config, day).await;
    assert_ne!(first["q1"], "", "q1 has rows");

    // The same events again, batched differently, and a third time the
    // first half of one batch (a sink killed mid-batch, redelivered).
    write_all(&config, &events, 7_919).await;
    write_all(&config, &events[..25_000], 25_000).await;
    let raw: u64 = query(&config, "SELECT count() FROM orders", "TSV")
        .await
        .trim()
        .parse()
        .unwrap();
    let distinct: u64 = first["orders"].trim().parse().unwrap();
    assert!(
        raw > distinct,
        "duplicates were written ({raw} rows for {distinct} orders)"
    );
    let second = answers(&config, day).await;
    for (k, v) in &first {
        assert_eq!(&second[k], v, "{k} changed after the replay");
    }

    // A newer version supersedes: cancel one order after the fact.
    let Some(SinkEvent::Order(o)) = events.first().cloned() else {
        panic!("the first event is an order")
    };
    let mut c = o.clone();
    c.kind = OrderEventKind::Cancelled;
    c.occurred_at += 3_600_000;
    c.event_id = format!("{}:late-cancel/0", o.order_id);
    write_all(&config, &[SinkEvent::Order(c)], 1).await;
    let third = answers(&config, day).await;
    assert_eq!(third["orders"], first["orders"], "still one row per order");
    assert_ne!(
        third["q1"], first["q1"],
        "the cancelled order left the revenue"
    );
    // ...and replaying the old version afterwards changes nothing.
    write_all(&config, &events[..1], 1).await;
    assert_eq!(answers(&config, day).await, third);
}

/// A TCP forwarder to ClickHouse that can be switched off (connections
/// refused and cut) to play a ClickHouse outage.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        Proxy { port, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

async fn count_final(config: &Config, table: &str) -> u64 {
    query(config, &format!("SELECT count() FROM {table} FINAL"), "TSV")
        .await
        .trim()
        .parse()
        .unwrap()
}

/// Distinct orders, labels and movements in `events`.
fn expected(events: &[SinkEvent]) -> [u64; 3] {
    let orders: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            SinkEvent::Order(o) => Some(o.order_id.as_str()),
            _ => None,
        })
        .collect();
    let count = |f: fn(&SinkEvent) -> bool| events.iter().filter(|e| f(e)).count() as u64;
    [
        orders.len() as u64,
        count(|e| matches!(e, SinkEvent::Labeled(_))),
        count(|e| matches!(e, SinkEvent::Movement(_))),
    ]
}

async fn counts(config: &Config) -> [u64; 3] {
    [
        count_final(config, "orders").await,
        count_final(config, "labels").await,
        count_final(config, "inventory_movements").await,
    ]
}

async fn caught_up(config: &Config, want: [u64; 3], limit: Duration, logs: &std::path::Path) {
    let started = Instant::now();
    loop {
        let got = counts(config).await;
        if got == want {
            return;
        }
        assert!(
            got.iter().zip(want).all(|(g, w)| *g <= w),
            "more rows than keys: {got:?} > {want:?}"
        );
        assert!(
            started.elapsed() < limit,
            "the sink did not catch up ({got:?} of {want:?}): see {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_killed_mid_batch_and_cut_off_loses_nothing_and_counts_nothing_twice() {
    let mut config = database("ch_kill").await;
    common::require_broker(&config).await;
    let ns = common::unique("chsink");
    config.topics.namespace = ns.clone();
    config.topics.partitions = 4;
    migrate::migrate(&config.clickhouse).await.unwrap();
    let topo = Topology::resolve(&config);
    common::sinks::create_topics(&config).await;

    // Wave A: ~24k events, and one record that no contract decodes
    // (dead-lettered, not blocking).
    let wave_a = sample::orders(0..3_000, DAY0_MS);
    let bad = OutRecord::new(topo.topic_name("orders_normalized").unwrap())
        .key("bad")
        .payload(b"not avro".to_vec());
    common::sinks::publish(&config, &wave_a, vec![bad]).await;

    let target: std::net::SocketAddr = config
        .clickhouse
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    // Kept after the test: the sink's logs.
    let dir = tempfile::Builder::new()
        .prefix("ch-sink-")
        .tempdir()
        .unwrap()
        .keep();
    let env: Vec<(&str, String)> = vec![
        ("CONVEYOR_TOPICS__NAMESPACE", ns.clone()),
        ("CONVEYOR_TOPICS__PARTITIONS", "4".into()),
        (
            "CONVEYOR_CLICKHOUSE__URL",
            format!("http://127.0.0.1:{}", proxy.port),
        ),
        (
            "CONVEYOR_CLICKHOUSE__DATABASE",
            config.clickhouse.database.clone(),
        ),
        ("CONVEYOR_CLICKHOUSE__BATCH_MAX_RECORDS", "1500".into()),
        ("CONVEYOR_CLICKHOUSE__BATCH_MAX_WAIT_MS", "200".into()),
    ];
    let spawn = |log: &str| {
        common::process::Process::spawn(
            &["sink", "clickhouse", "--observability-bind", "127.0.0.1:0"],
            &env,
            &dir.join(log),
        )
    };

    // 1. Killed with SIGKILL once it has written part of wave A.
    let want_a = expected(&wave_a);
    let sink = spawn("sink-1.log");
    let started = Instant::now();
    loop {
        let n = count_final(&config, "orders").await;
        if n > 0 && n < want_a[0] {
            break;
        }
        assert!(
            n < want_a[0],
            "the sink finished before it could be killed; batches too big?"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sink wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.kill9();

    // 2. Restarted while ClickHouse is unreachable: it waits and writes
    // nothing; ClickHouse comes back and it catches up on wave A.
    proxy.set(false);
    // An insert the killed sink had sent may still complete: let it land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = counts(&config).await;
    let sink = spawn("sink-2.log");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(counts(&config).await, before, "no writes while cut off");
    proxy.set(true);
    caught_up(&config, want_a, Duration::from_secs(180), &dir).await;

    // 3. ClickHouse goes away mid-stream while wave B arrives: the sink
    // pauses (retries its batch, commits nothing) and catches up after.
    proxy.set(false);
    let wave_b = sample::orders(3_000..4_500, DAY0_MS);
    common::sinks::publish(&config, &wave_b, vec![]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        counts(&config).await,
        want_a,
        "no writes while ClickHouse is down"
    );
    proxy.set(true);
    let all: Vec<SinkEvent> = wave_a.iter().chain(&wave_b).cloned().collect();
    caught_up(&config, expected(&all), Duration::from_secs(180), &dir).await;
    let out = String::from_utf8_lossy(&sink.stop()).to_string();
    let log = std::fs::read_to_string(dir.join("sink-2.log")).unwrap();
    assert!(
        log.contains("write failed"),
        "the outage was seen and retried:\n{log}"
    );
    let summary: Value = serde_json::from_str(out.trim().split_once(": ").unwrap().1).unwrap();
    assert!(summary["write_failures"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["dead_lettered"].as_u64(), Some(1), "{summary}");

    // Exact: the same answers as a direct write of the same events.
    let direct = database("ch_direct").await;
    migrate::migrate(&direct.clickhouse).await.unwrap();
    write_all(&direct, &all, 10_000).await;
    let mut got = answers(&config, "2026-11-28").await;
    let mut want = answers(&direct, "2026-11-28").await;
    // The sink also consumed its own dead letter (orders.dlq is an input).
    let dlq_rows = |a: &mut BTreeMap<String, String>| -> u64 {
        a.remove("q10");
        a.remove("dlq").unwrap().trim().parse().unwrap()
    };
    assert_eq!(dlq_rows(&mut got), dlq_rows(&mut want) + 1);
    assert_eq!(
        got, want,
        "the killed, cut-off sink's answers equal a direct write's"
    );
    let dlq =
        common::stream::read_partitions(&config, topo.topic_name("orders_dlq").unwrap(), 4).await;
    assert!(
        dlq.iter()
            .any(|r| r.key.as_deref() == Some(b"bad".as_slice())),
        "the bad record is dead-lettered"
    );
}

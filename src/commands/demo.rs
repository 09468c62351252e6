//! `conveyor demo`: brings up the local services and runs everything that is
//! built, end to end, printing each step. It grows with the pipeline: each
//! stage, once built, shows up here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer};
use conveyor_runtime::topology::{Status, TopicSpec, Topology, NODES};
use conveyor_sinks::clickhouse as ch;
use serde::Deserialize;

use crate::dev;

const SAMPLE_ORDERS: usize = 200;

pub async fn run(config: &Config, config_file: Option<&Path>) -> anyhow::Result<()> {
    let started = Instant::now();
    step(1, "local services");
    let paths = dev::Paths::from_env()?;
    dev::up(config, &paths, config_file).await?;

    step(2, "topics");
    super::topics::create(config).await?;

    step(3, "topology");
    let topology = Topology::resolve(config);
    for n in &topology.nodes {
        let status = if n.status == Status::Built {
            "built"
        } else {
            "planned"
        };
        println!("  {:<16} {status:<8} {}", n.name, n.doc);
    }

    step(
        4,
        "broker round trip through the runtime (keyed records with headers)",
    );
    let smoke = smoke_topic(config);
    let admin = Admin::new(&config.kafka)?;
    admin.ensure_topics(std::slice::from_ref(&smoke)).await?;
    let producer = Producer::new(&config.kafka, "demo")?;
    let run_id = format!("demo-{}", std::process::id());
    let t0 = Instant::now();
    let mut sends = Vec::with_capacity(SAMPLE_ORDERS);
    for i in 0..SAMPLE_ORDERS {
        let channel = ["shopify", "amazon", "tiktok", "ebay", "csv"][i % 5];
        let order = format!("{channel}-{}", 1000 + i / 5);
        let rec = OutRecord::new(smoke.name.clone())
            .key(order.clone())
            .payload(format!(
                r#"{{"order":"{order}","seq":{i},"total_cents":{}}}"#,
                1999 + i * 7
            ))
            .header("channel", channel)
            .header("run", run_id.clone());
        let p = producer.clone();
        sends.push(tokio::spawn(async move { p.send(&rec).await }));
    }
    for s in sends {
        s.await??;
    }
    let produce_secs = t0.elapsed().as_secs_f64();
    println!(
        "  produced {SAMPLE_ORDERS} records to {} (acks=all, idempotent) in {:.0} ms",
        smoke.name,
        produce_secs * 1000.0
    );
    let consumer = Consumer::new(
        &config.kafka,
        "demo",
        &format!("{}.{run_id}", config.kafka.group_prefix),
    )?;
    consumer.subscribe(&[&smoke.name])?;
    let mut rows = Vec::new();
    let t1 = Instant::now();
    while rows.len() < SAMPLE_ORDERS {
        let rec = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("timed out consuming the demo records")??;
        if rec.header("run") != Some(run_id.as_bytes()) {
            continue; // an earlier demo run's records
        }
        let channel =
            String::from_utf8_lossy(rec.header("channel").unwrap_or_default()).into_owned();
        let key = String::from_utf8_lossy(rec.key.as_deref().unwrap_or_default()).into_owned();
        let total: u64 = serde_json::from_slice::<serde_json::Value>(
            rec.payload.as_deref().unwrap_or_default(),
        )?["total_cents"]
            .as_u64()
            .unwrap_or(0);
        rows.push(DemoRow {
            run: run_id.clone(),
            order_key: key,
            channel,
            partition: rec.partition as u32,
            offset: rec.offset as u64,
            total_cents: total,
        });
        consumer.commit_after(&rec)?;
    }
    consumer.close();
    println!(
        "  consumed {} records back in {:.0} ms (group commit after each record)",
        rows.len(),
        t1.elapsed().as_secs_f64() * 1000.0
    );

    step(5, "ClickHouse");
    let version = ch::ensure_database(&config.clickhouse).await?;
    let client = ch::client(&config.clickhouse);
    client
        .query(
            "CREATE TABLE IF NOT EXISTS demo_roundtrip (
                run LowCardinality(String), order_key String, channel LowCardinality(String),
                partition UInt32, offset UInt64, total_cents UInt64
             ) ENGINE = ReplacingMergeTree ORDER BY (run, partition, offset)",
        )
        .execute()
        .await?;
    let mut insert = client.insert::<DemoRow>("demo_roundtrip").await?;
    for r in &rows {
        insert.write(r).await?;
    }
    insert.end().await?;
    println!(
        "  ClickHouse {version} at {}: wrote {} rows to {}.demo_roundtrip",
        config.clickhouse.url,
        rows.len(),
        config.clickhouse.database
    );
    let sql = "SELECT channel, count() AS orders, sum(total_cents) / 100 AS revenue \
               FROM demo_roundtrip FINAL WHERE run = ? GROUP BY channel ORDER BY channel";
    println!("  analyst query: {sql}");
    let result = client
        .query(sql)
        .bind(&run_id)
        .fetch_all::<ChannelRow>()
        .await?;
    println!("    {:<10} {:>7} {:>10}", "channel", "orders", "revenue");
    for r in &result {
        println!("    {:<10} {:>7} {:>10.2}", r.channel, r.orders, r.revenue);
    }
    let per_partition: BTreeMap<u32, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.partition).or_default() += 1;
        m
    });
    println!("  records per partition: {per_partition:?}");

    step(6, "what is not built yet");
    let planned: Vec<_> = NODES
        .iter()
        .filter(|n| n.status == Status::Planned)
        .map(|n| n.name)
        .collect();
    println!("  planned components: {}", planned.join(", "));
    println!(
        "\ndemo finished in {:.1}s. Services keep running: `conveyor dev status`, `conveyor dev down`.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

fn smoke_topic(config: &Config) -> TopicSpec {
    let prefix = if config.topics.namespace.is_empty() {
        String::new()
    } else {
        format!("{}.", config.topics.namespace)
    };
    TopicSpec {
        id: "demo",
        channel: None,
        name: format!("{prefix}conveyor.demo.roundtrip"),
        partitions: config.topics.partitions,
        replication_factor: config.topics.replication_factor,
        configs: [
            ("cleanup.policy".to_string(), "delete".to_string()),
            ("retention.ms".to_string(), "86400000".to_string()),
        ]
        .into(),
        writers: vec!["demo"],
        readers: vec!["demo"],
    }
}

#[derive(Debug, clickhouse::Row, serde::Serialize)]
struct DemoRow {
    run: String,
    order_key: String,
    channel: String,
    partition: u32,
    offset: u64,
    total_cents: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ChannelRow {
    channel: String,
    orders: u64,
    revenue: f64,
}

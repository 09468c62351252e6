//! `conveyor demo`: brings up the local services and runs everything that is
//! built, end to end, printing each step. It grows with the pipeline: each
//! stage, once built, shows up here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer, TopicState};
use conveyor_runtime::topology::{Status, TopicSpec, Topology, NODES};
use conveyor_schemas::codec::{split_header, Codec, Source};
use conveyor_schemas::records::OrderEvent;
use conveyor_schemas::samples;

use crate::dev;

const SAMPLE_ORDERS: usize = 200;

pub async fn run(config: &Config, config_file: Option<&Path>) -> anyhow::Result<()> {
    let started = Instant::now();
    step(1, "local services");
    let paths = dev::Paths::from_env()?;
    dev::up(config, &paths, config_file).await?;

    step(2, "topics");
    super::topics::create(config).await?;

    step(
        3,
        "event contracts (Avro schemas in the registry, TopicNameStrategy)",
    );
    super::schemas::register(config, None).await?;
    super::schemas::check(config, None).await?;

    step(4, "topology");
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
        5,
        "orders through the broker: Avro in the Confluent wire format, keyed by order id",
    );
    let (rows, schema_id) = round_trip(config).await?;
    println!("  every record decoded with schema id {schema_id}, committed after processing");
    let per_partition: BTreeMap<u32, usize> = rows.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(*p).or_default() += 1;
        m
    });
    println!("  orders per partition: {per_partition:?}");

    step(
        6,
        "stream runtime: a stateful processor with a local store, a changelog and a DLQ",
    );
    let run_id = format!("{}-{}", std::process::id(), now_ms());
    super::demo_stream::run(config, &run_id, SAMPLE_ORDERS).await?;

    step(
        7,
        "channels in: catalog, Shopify webhooks + poller, TikTok Shop webhooks, Amazon and eBay pollers (simulated APIs), a CSV export, normalize",
    );
    let (orders, catalog, webhook_orders) = super::demo_channels::run(config).await?;

    step(
        8,
        "allocation and routing: hold, decide, commit across 3 warehouses (never oversold), backorders released by a restock; each parcel boxed, zoned and rate-shopped, its label bought and its packing slip rendered",
    );
    let pipeline = super::demo_allocate::run(config, &orders, &catalog, webhook_orders).await?;

    step(
        9,
        "sinks: ClickHouse analytics (fact tables, refreshable views), the operational store with the order status API, and the operator console over it",
    );
    super::demo_sinks::run(&pipeline).await?;

    step(
        10,
        "replay: a normalize fix replayed live through the pipeline, then a sandbox under another policy diffed against live",
    );
    super::demo_replay::run(config).await?;

    step(
        11,
        "deployment: the compose stack, Kubernetes manifests, alert rules and dashboards, validated",
    );
    deploy_check();

    step(
        12,
        "peak: the load generator's burst of every channel's orders through every component as its own process, measured (a small `conveyor bench pipeline`)",
    );
    super::bench_pipeline::run(
        config,
        super::bench_pipeline::Args {
            orders: 400,
            partitions: 4,
            latency_rate: 40.0,
            latency_seconds: 5,
            ceiling_records: 2_000,
            stock: 1.3,
            seed: 1,
            out: std::path::PathBuf::from("target/bench/demo"),
            max_wait: std::time::Duration::from_secs(600),
            keep: false,
            config_path: config_file.map(Path::to_path_buf),
            instances: 1,
            memory_broker: false,
            carrier_latency_ms: 0,
        },
    )
    .await?;

    step(13, "what is not built yet");
    let planned: Vec<_> = NODES
        .iter()
        .filter(|n| n.status == Status::Planned)
        .map(|n| n.name)
        .collect();
    if planned.is_empty() {
        println!("  every component of the topology is built; still to come: `conveyor run all`");
    } else {
        println!("  planned components: {}", planned.join(", "));
    }
    println!(
        "\ndemo finished in {:.1}s. Services keep running: `conveyor dev status`, `conveyor dev down`.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Publishes sample order events through the codec and the idempotent
/// producer, reads them back with a consumer group, and returns one row per
/// order plus the schema id they were written with.
async fn round_trip(config: &Config) -> anyhow::Result<(Vec<u32>, u32)> {
    let topic = demo_topic(config);
    let report = Admin::new(&config.kafka)?
        .ensure_topics(std::slice::from_ref(&topic))
        .await?;
    if let Some(TopicState::Failed(e)) = report.first().map(|r| &r.state) {
        anyhow::bail!("cannot create the demo topic {}: {e}", topic.name);
    }
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let producer = Producer::new(&config.kafka, "demo")?;
    let run = format!("demo-{}-{}", std::process::id(), now_ms());
    let base_ms = now_ms();
    let t0 = Instant::now();
    let mut sends = Vec::with_capacity(SAMPLE_ORDERS);
    for i in 0..SAMPLE_ORDERS as u64 {
        let event = samples::order_event(i, base_ms);
        let value = codec.encode(&topic.name, &event).await?;
        let rec = OutRecord::new(topic.name.clone())
            .key(event.order_id.clone())
            .payload(value)
            .header("channel", event.order.channel.clone())
            .header("event_id", event.event_id.clone())
            .header("run", run.clone());
        let p = producer.clone();
        sends.push(tokio::spawn(async move { p.send(&rec).await }));
    }
    for s in sends {
        s.await??;
    }
    println!(
        "  produced {SAMPLE_ORDERS} OrderEvent records to {} (acks=all, idempotent) in {:.0} ms",
        topic.name,
        t0.elapsed().as_secs_f64() * 1000.0
    );

    let consumer = Consumer::new(
        &config.kafka,
        "demo",
        &format!("{}.{run}", config.kafka.group_prefix),
    )?;
    consumer.subscribe(&[&topic.name])?;
    let mut rows = Vec::with_capacity(SAMPLE_ORDERS);
    let mut schema_id = 0;
    let t1 = Instant::now();
    while rows.len() < SAMPLE_ORDERS {
        let rec = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("timed out consuming the demo records")??;
        if rec.header("run") != Some(run.as_bytes()) {
            continue; // an earlier demo run's records
        }
        let at = Source {
            topic: &rec.topic,
            partition: rec.partition,
            offset: rec.offset,
        };
        let event: OrderEvent = codec.decode(rec.payload.as_deref(), at).await?;
        schema_id = split_header(rec.payload.as_deref()).map_or(0, |(id, _)| id);
        anyhow::ensure!(
            event.order_id.as_bytes() == rec.key.as_deref().unwrap_or_default(),
            "record keyed by something else than its order id"
        );
        rows.push(rec.partition as u32);
        consumer.commit_after(&rec)?;
    }
    consumer.close();
    println!(
        "  consumed and decoded {} records in {:.0} ms",
        rows.len(),
        t1.elapsed().as_secs_f64() * 1000.0
    );
    Ok((rows, schema_id))
}

/// Runs `deploy/check` (Compose and Kubernetes schemas, promtool, wiring)
/// when its validators are installed (the test suite installs them) and
/// prints its verdict; otherwise says how to run it. The demo itself never
/// downloads them.
fn deploy_check() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = repo.join("deploy/check");
    let installed = crate::dev::Paths::from_env().is_ok_and(|p| {
        let tools = p.cache.join("deploy-tools");
        tools.join("venv/.complete").exists() && tools.join("promtool").exists()
    });
    if !script.exists() || !installed {
        println!("  validate them with `deploy/check` (installs its validators on first use; the tests run it)");
        println!("  run them: `docker compose --profile demo up -d --build` (README, Production); runbook: docs/operations.md");
        return;
    }
    println!("  docker-compose.yml, Dockerfile, deploy/k8s (overlays dev, production), deploy/prometheus, deploy/grafana");
    match std::process::Command::new(&script).output() {
        Ok(out) if out.status.success() => {
            print!("  {}", String::from_utf8_lossy(&out.stdout));
            println!("  run it: `docker compose --profile demo up -d --build` (README, Production); runbook: docs/operations.md");
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            println!("  deploy/check failed:");
            for l in tail.into_iter().rev() {
                println!("    {l}");
            }
        }
        Err(e) => println!("  deploy/check could not run ({e}); skipped"),
    }
}

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

/// The demo's own topic: it carries OrderEvent like orders.normalized, but
/// keeps sample data out of the pipeline's topics.
fn demo_topic(config: &Config) -> TopicSpec {
    let prefix = if config.topics.namespace.is_empty() {
        String::new()
    } else {
        format!("{}.", config.topics.namespace)
    };
    TopicSpec {
        id: "demo",
        channel: None,
        name: format!("{prefix}conveyor.demo.orders"),
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

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

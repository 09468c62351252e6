//! `conveyor bench replay`: how fast a replay re-runs a stage, next to the
//! stage's normal processing of the same backlog. normalize over N raw
//! Shopify orders in a namespace of the run's own, against this machine's
//! broker and registry:
//!
//! 1. normal: `run normalize` over the backlog (every order emitted);
//! 2. replay, state kept, config unchanged (every order a duplicate:
//!    nothing emitted);
//! 3. replay, state kept, after a mapping fix (the order number from
//!    `name`: 90% of the orders emitted again, the rest have no `name`);
//! 4. replay, state reset (every order emitted again).
//!
//! Each row: messages, outputs, seconds, messages/s. The replays' times
//! are their run step (jobs started, restored, run to the end), as
//! `conveyor replay status` reports them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_connectors::publish::RawPublisher;
use conveyor_processors::normalize::{example_raw, OrderNumberField};
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;

use super::stage::RunCtx;

pub async fn run(config: &Config, orders: u64) -> anyhow::Result<()> {
    if orders == 0 {
        anyhow::bail!("--orders must be at least 1");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench replay`");
    }
    let run = super::demo::now_ms();
    let mut config = config.clone();
    config.topics.namespace = format!("bench-replay-{run}");
    config.channels.enabled = vec!["shopify".into()];
    config.channels.shopify.order_number_field = OrderNumberField::OrderNumber;
    let state = std::env::temp_dir().join(&config.topics.namespace);
    config.state.dir = state.display().to_string();
    super::stage::ensure_topics(
        &config,
        &[
            "orders_raw",
            "orders_normalized",
            "orders_dlq",
            "catalog_skus",
            "changelog_normalize_versions",
            "control_replays",
        ],
    )
    .await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    if let Ok(csv) = std::fs::read("examples/catalog.csv") {
        let skus = conveyor_connectors::catalog_load::parse(&csv, 1)
            .map_err(|_| anyhow::anyhow!("examples/catalog.csv does not parse"))?;
        conveyor_connectors::catalog_load::publish(&config, codec.clone(), &skus)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let publisher = RawPublisher::new(&config, codec, "shopify", "bench")?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..orders {
        let mut raw = example_raw("shopify", i).expect("shopify examples");
        if i % 10 == 0 {
            let mut v: serde_json::Value = serde_json::from_slice(&raw.payload)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("name");
            }
            raw.payload = serde_json::to_vec(&v)?;
        }
        raw.received_at = run;
        batch.push(raw);
        if batch.len() == 5000 || i + 1 == orders {
            publisher.publish_all(&batch).await?;
            batch.clear();
        }
    }
    eprintln!(
        "published {orders} raw Shopify orders to {} in {:.1}s",
        publisher.topic(),
        started.elapsed().as_secs_f64()
    );
    let topo = Topology::resolve(&config);
    let normalized = topo
        .topic_name("orders_normalized")
        .unwrap_or("orders.normalized")
        .to_string();
    let probe = Consumer::new(&config.kafka, "bench", "conveyor-bench-replay")?;
    let parts = config.topics.partitions;
    let written = || probe.end_offsets_total(&normalized, parts, Duration::from_secs(10));

    // 1. Normal processing of the backlog.
    let shutdown = Shutdown::new();
    let t0 = Instant::now();
    let job = {
        let (c, s) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { super::normalize::run(&c, &s, RunCtx::default()).await })
    };
    while written()? < orders as i64 {
        if job.is_finished() {
            job.await??;
            anyhow::bail!("normalize stopped before it finished");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let normal = t0.elapsed();
    shutdown.trigger();
    job.await??;
    let mut rows = vec![(
        "normal processing (backlog)".to_string(),
        orders,
        orders as i64,
        normal,
    )];

    // 2-4. Replays.
    let mut fixed = config.clone();
    fixed.channels.shopify.order_number_field = OrderNumberField::Name;
    for (label, cfg, reset) in [
        ("replay, state kept, nothing changed", &config, false),
        ("replay, state kept, mapping fixed", &fixed, false),
        ("replay, state reset", &fixed, true),
    ] {
        let before = written()?;
        super::replay::live(
            cfg,
            "normalize",
            None,
            &super::replay::Range::all(reset),
            true,
        )
        .await?;
        let jobs = super::replay::recorded(cfg).await?;
        let last = jobs
            .last()
            .ok_or_else(|| anyhow::anyhow!("no replay recorded"))?;
        rows.push((
            label.to_string(),
            last.0,
            written()? - before,
            Duration::from_millis(last.1),
        ));
    }

    println!();
    println!(
        "replay vs normal processing: normalize, {orders} Shopify orders, {parts} partitions, batches of {}",
        config.state.batch_max_records
    );
    let _ = std::fs::remove_dir_all(&state);
    println!("| run | messages | outputs | seconds | messages/s |");
    println!("|---|---:|---:|---:|---:|");
    for (label, msgs, outs, d) in &rows {
        let secs = d.as_secs_f64();
        println!(
            "| {label} | {msgs} | {outs} | {secs:.2} | {:.0} |",
            *msgs as f64 / secs.max(1e-6)
        );
    }
    Ok(())
}

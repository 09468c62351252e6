//! The demo's stream-runtime step: a stateful processor counts order lines
//! per SKU with its state in a local store and a changelog, dead-letters two
//! poison records, then loses its store and restores it from the changelog.

use std::collections::HashMap;

use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runtime::config::{CleanupPolicy, Config};
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer};
use conveyor_runtime::topology::TopicSpec;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::samples;
use conveyor_stream::examples::{KeyCounter, COUNT_TABLE};
use conveyor_stream::{inspect, Summary};
use tokio_util::sync::CancellationToken;

use super::demo::now_ms;
use super::stream::{ensure_example_topics, example_spec, ExampleArgs};
use crate::cli::Example;

pub async fn run(config: &Config, run: &str, orders: usize) -> anyhow::Result<()> {
    let prefix = if config.topics.namespace.is_empty() {
        String::new()
    } else {
        format!("{}.", config.topics.namespace)
    };
    let input = format!("{prefix}conveyor.demo.{run}.lines");
    let output = format!("{prefix}conveyor.demo.{run}.sku-counts");
    let admin = Admin::new(&config.kafka)?;
    let spec_in = TopicSpec::adhoc(
        &input,
        config.topics.partitions,
        config.topics.replication_factor,
        CleanupPolicy::Delete,
    );
    super::stream::ensure_job_topics(config, &admin, vec![spec_in]).await?;
    let mut demo_config = config.clone();
    let state_root = Path::new(&config.state.dir).join(format!("demo-{run}"));
    demo_config.state.dir = state_root.to_string_lossy().into_owned();
    let args = ExampleArgs {
        which: Example::Counter,
        input: input.clone(),
        output: output.clone(),
        name: "sku-counter".into(),
    };
    let mut spec = example_spec(&demo_config, &args);
    spec.group_id = format!("{}.demo.{run}", config.kafka.group_prefix);
    if let Some(store) = spec.store.as_mut() {
        store.changelog = format!("{prefix}conveyor.demo.{run}.sku-counts.changelog");
    }
    ensure_example_topics(config, &spec, &output).await?;
    let store = spec
        .store
        .clone()
        .context("the counter example declares no store")?;

    // Order lines keyed by SKU, and two poison records.
    let producer = Producer::new(&config.kafka, "demo")?;
    let base = now_ms();
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut recs = Vec::new();
    for i in 0..orders as u64 {
        let e = samples::order_event(i, base);
        for l in &e.order.lines {
            *expected.entry(l.sku.clone()).or_default() += 1;
            recs.push(
                OutRecord::new(input.clone())
                    .key(l.sku.clone())
                    .payload(e.order_id.clone())
                    .timestamp_ms(base),
            );
        }
    }
    let valid = recs.len();
    recs.push(OutRecord::new(input.clone()).payload("a line without a SKU key"));
    recs.push(
        OutRecord::new(input.clone())
            .key("SKU-POISON")
            .payload(vec![0xff, 0xfe, 0x00]),
    );
    for r in futures::future::join_all(recs.iter().map(|r| producer.send(r))).await {
        r?;
    }
    println!(
        "  produced {valid} order lines keyed by SKU ({} SKUs) + 2 poison records to {input}",
        expected.len()
    );

    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let t0 = Instant::now();
    let summary = run_until(config, &codec, &spec, &args, |probe| {
        Ok(
            probe.end_offsets_total(&output, config.topics.partitions, Duration::from_secs(5))?
                >= valid as i64,
        )
    })
    .await?;
    println!(
        "  processor sku-counter: {} processed, {} dead-lettered to {}, {} outputs, {} batches in {:.0} ms",
        summary.processed,
        summary.dead_lettered,
        spec.dlq_topic,
        summary.outputs,
        summary.batches,
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let probe = Consumer::new(&config.kafka, "demo", &format!("demo.{run}.probe"))?;
    println!(
        "  state: store {} in {} ({} changelog records in {})",
        store.name,
        store.dir.display(),
        probe.end_offsets_total(
            &store.changelog,
            config.topics.partitions,
            Duration::from_secs(5)
        )?,
        store.changelog
    );
    let mut top: Vec<(&String, &u64)> = expected.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let show = |label: &str| -> anyhow::Result<()> {
        for (sku, want) in top.iter().take(3) {
            let hits = inspect::get(&store.dir, sku.as_bytes(), Some(COUNT_TABLE))?;
            let got = hits
                .first()
                .map(|h| inspect::display_value(&h.value))
                .unwrap_or_else(|| "-".into());
            println!("    {label}count/{sku} = {got} (lines sent: {want})");
        }
        Ok(())
    };
    println!(
        "  state as `conveyor state get {} <sku>` reads it:",
        store.name
    );
    show("")?;

    // Lose the store; the next run rebuilds it from the changelog.
    std::fs::remove_dir_all(&store.dir)?;
    let t1 = Instant::now();
    let partitions = config.topics.partitions as usize;
    let dir = store.dir.clone();
    let again = run_until(config, &codec, &spec, &args, |probe| {
        // Restored: every partition's store has applied its whole changelog.
        let Ok(parts) = inspect::partitions(&dir) else {
            return Ok(false);
        };
        if parts.len() < partitions {
            return Ok(false);
        }
        for p in parts {
            let (_, high) =
                probe.watermarks(&store.changelog, p.partition, Duration::from_secs(5))?;
            if p.meta.changelog_end.unwrap_or(0) != high {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    println!(
        "  store deleted and restored from the changelog in {:.0} ms ({} partitions restored, {} records reprocessed):",
        t1.elapsed().as_secs_f64() * 1000.0,
        again.restores,
        again.processed
    );
    show("restored ")?;
    let _ = admin
        .delete_topics(&[&input, &output, &store.changelog])
        .await;
    let _ = std::fs::remove_dir_all(&state_root);
    Ok(())
}

/// Runs the counter until `done` says so (checked every 100 ms, 60 s max).
async fn run_until(
    config: &Config,
    codec: &Arc<Codec>,
    spec: &conveyor_stream::JobSpec,
    args: &ExampleArgs,
    done: impl Fn(&Consumer) -> anyhow::Result<bool>,
) -> anyhow::Result<Summary> {
    let token = CancellationToken::new();
    let job = {
        let (k, c, s, t) = (
            config.kafka.clone(),
            codec.clone(),
            spec.clone(),
            token.clone(),
        );
        let p = KeyCounter {
            output: args.output.clone(),
        };
        tokio::spawn(async move { conveyor_stream::run(&k, c, s, p, t).await })
    };
    let probe = Consumer::new(&config.kafka, "demo", &format!("{}.probe", spec.group_id))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&probe)? {
        if job.is_finished() {
            let res = job.await?;
            anyhow::bail!("the demo processor stopped early: {res:?}");
        }
        if Instant::now() > deadline {
            token.cancel();
            let res = job.await?;
            anyhow::bail!("the demo processor did not get there within 60 s: {res:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    Ok(job.await??)
}

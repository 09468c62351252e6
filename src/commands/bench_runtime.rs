//! `conveyor bench runtime`: records/s through the stream runtime (a
//! pass-through and a stateful processor) next to the broker's raw
//! consume+produce rate over the same hop, on fresh topics.
//!
//! Each stage reads the same input topic with its own consumer group and
//! writes its own output topic. Its rate is counted from the first output
//! record to the last, so group-join time is not in it. The raw stage is
//! what any consumer-producer loop gets from this broker here: consume,
//! produce pipelined in batches, wait for acks, commit offsets; no state,
//! no decoding. The ratio runtime/raw is the figure of merit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::{CleanupPolicy, Config};
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer, TopicState};
use conveyor_runtime::topology::{Topology, TopicSpec};
use conveyor_stream::examples::{KeyCounter, PassThrough};
use conveyor_stream::{BatchSpec, JobSpec, StoreSpec};
use tokio_util::sync::CancellationToken;

use crate::usage;

struct Row {
    stage: &'static str,
    records: u64,
    seconds: f64,
}

pub async fn run(config: &Config, records: usize, keys: usize) -> anyhow::Result<()> {
    if records == 0 || keys == 0 {
        return Err(usage("--records and --keys must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench runtime`");
    }
    let run_id = format!(
        "bench-rt-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let partitions = config.topics.partitions;
    let t = |s: &str| format!("{run_id}.{s}");
    let (input, raw_out, pass_out, count_out, changelog) = (
        t("in"),
        t("raw-out"),
        t("pass-out"),
        t("count-out"),
        t("counts.changelog"),
    );
    let admin = Admin::new(&config.kafka)?;
    let mk = |name: &str, cleanup: CleanupPolicy| {
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), cleanup.as_str().to_string());
        TopicSpec {
            id: "bench",
            channel: None,
            name: name.to_string(),
            partitions,
            replication_factor: config.topics.replication_factor,
            configs,
            writers: vec![],
            readers: vec![],
        }
    };
    let mut specs: Vec<TopicSpec> = [&input, &raw_out, &pass_out, &count_out]
        .iter()
        .map(|n| mk(n, CleanupPolicy::Delete))
        .collect();
    specs.push(mk(&changelog, CleanupPolicy::Compact));
    let topo = Topology::resolve(config);
    specs.extend(topo.topics.iter().filter(|t| t.id == "orders_dlq").cloned());
    for r in admin.ensure_topics(&specs).await? {
        if let TopicState::Failed(e) = r.state {
            anyhow::bail!("cannot create {}: {e}", r.name);
        }
    }
    println!(
        "runtime benchmark: {records} records (~200 B, {keys} keys) on {partitions} partitions, broker {}",
        config.kafka.brokers
    );

    // Input.
    let producer = Producer::new(&config.kafka, "bench")?;
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(7);
    let body = "x".repeat(190);
    let mut sent = 0usize;
    while sent < records {
        let n = (records - sent).min(5000);
        let batch: Vec<OutRecord> = (0..n)
            .map(|i| {
                OutRecord::new(input.clone())
                    .key(format!("k{}", rng.usize(..keys)))
                    .payload(format!("{}:{body}", sent + i))
            })
            .collect();
        for r in futures::future::join_all(batch.iter().map(|r| producer.send(r))).await {
            r.context("producing the benchmark input")?;
        }
        sent += n;
    }
    let produce_secs = started.elapsed().as_secs_f64();
    println!(
        "input produced in {produce_secs:.1} s ({:.0} records/s)",
        records as f64 / produce_secs
    );

    let state_dir = std::path::Path::new(&config.state.dir).join(&run_id);
    let mut rows = vec![Row {
        stage: "broker produce only",
        records: records as u64,
        seconds: produce_secs,
    }];
    let (n, secs) = raw_stage(config, &input, &raw_out, &run_id, records).await?;
    rows.push(Row {
        stage: "raw consume+produce",
        records: n,
        seconds: secs,
    });
    let batch = BatchSpec {
        max_records: config.state.batch_max_records,
        max_wait: Duration::from_millis(config.state.batch_max_wait_ms),
    };
    let dlq = topo
        .topic_name("orders_dlq")
        .unwrap_or("orders.dlq")
        .to_string();
    let spec = |name: &str, store: Option<StoreSpec>| JobSpec {
        name: name.to_string(),
        group_id: format!("{run_id}.{name}"),
        inputs: vec![input.clone()],
        store,
        dlq_topic: dlq.clone(),
        batch,
    };
    let probe = Consumer::new(&config.kafka, "bench-probe", &format!("{run_id}.probe"))?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let (n, secs) = timed_job(&probe, &pass_out, partitions, records, |token| {
        let p = PassThrough {
            output: pass_out.clone(),
        };
        let (k, c, s) = (config.kafka.clone(), codec.clone(), spec("pass", None));
        tokio::spawn(async move { conveyor_stream::run(&k, c, s, p, token).await })
    })
    .await?;
    rows.push(Row {
        stage: "runtime pass-through",
        records: n,
        seconds: secs,
    });
    let store = StoreSpec {
        name: "count.counts".into(),
        changelog: changelog.clone(),
        dir: state_dir.join("count.counts"),
    };
    let (n, secs) = timed_job(&probe, &count_out, partitions, records, |token| {
        let p = KeyCounter {
            output: count_out.clone(),
        };
        let (k, c, s) = (config.kafka.clone(), codec.clone(), spec("count", Some(store)));
        tokio::spawn(async move { conveyor_stream::run(&k, c, s, p, token).await })
    })
    .await?;
    rows.push(Row {
        stage: "runtime stateful (count per key)",
        records: n,
        seconds: secs,
    });
    let changelog_records = high_sum(&probe, &changelog, partitions)?;

    let raw_rate = rows[1].records as f64 / rows[1].seconds;
    println!();
    println!(
        "{:<34} {:>10} {:>9} {:>12} {:>9}",
        "stage", "records", "seconds", "records/s", "vs raw"
    );
    for r in &rows {
        let rate = r.records as f64 / r.seconds;
        println!(
            "{:<34} {:>10} {:>9.2} {:>12.0} {:>9.2}",
            r.stage,
            r.records,
            r.seconds,
            rate,
            rate / raw_rate
        );
    }
    println!(
        "\nstateful stage wrote {changelog_records} changelog records ({:.2} per input record; one per changed key per batch + one marker per partition per batch)",
        changelog_records as f64 / records as f64
    );
    println!("rates count from each stage's first output to its last (group join excluded); batch max {} records / {} ms", batch.max_records, batch.max_wait.as_millis());
    let _ = admin
        .delete_topics(&[&input, &raw_out, &pass_out, &count_out, &changelog])
        .await;
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(())
}

/// The raw loop: consume a batch, produce it pipelined, wait, commit.
async fn raw_stage(
    config: &Config,
    input: &str,
    output: &str,
    run_id: &str,
    records: usize,
) -> anyhow::Result<(u64, f64)> {
    let consumer = Consumer::new(&config.kafka, "bench-raw", &format!("{run_id}.raw"))?;
    consumer.subscribe(&[input])?;
    let producer = Producer::new(&config.kafka, "bench-raw")?;
    let mut done = 0usize;
    let mut first: Option<Instant> = None;
    let max = config.state.batch_max_records;
    let wait = Duration::from_millis(config.state.batch_max_wait_ms);
    while done < records {
        let mut batch = Vec::with_capacity(max);
        let rec = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("raw stage: no record for 60 s")??;
        first.get_or_insert_with(Instant::now);
        batch.push(rec);
        let deadline = Instant::now() + wait;
        while batch.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(r) => batch.push(r?),
                Err(_) => break,
            }
        }
        let outs: Vec<OutRecord> = batch
            .iter()
            .map(|r| OutRecord {
                topic: output.to_string(),
                key: r.key.clone(),
                payload: r.payload.clone(),
                headers: r.headers.clone(),
                timestamp_ms: r.timestamp_ms,
                partition: None,
            })
            .collect();
        for r in futures::future::join_all(outs.iter().map(|o| producer.send(o))).await {
            r?;
        }
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for r in &batch {
            next.insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        let pos: Vec<(&str, i32, i64)> = next
            .iter()
            .map(|((t, p), o)| (t.as_str(), *p, *o))
            .collect();
        consumer.commit(&pos)?;
        done += batch.len();
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    consumer.close();
    Ok((done as u64, secs))
}

/// Starts a job, waits until its output topic holds `records`, stops it.
async fn timed_job<F>(
    probe: &Consumer,
    output: &str,
    partitions: i32,
    records: usize,
    start: F,
) -> anyhow::Result<(u64, f64)>
where
    F: FnOnce(
        CancellationToken,
    )
        -> tokio::task::JoinHandle<Result<conveyor_stream::Summary, conveyor_stream::JobError>>,
{
    let token = CancellationToken::new();
    let handle = start(token.clone());
    let mut first: Option<(Instant, u64)> = None;
    let mut last_progress = Instant::now();
    let mut last_n = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A busy broker may time a probe out; the next tick asks again.
        let Ok(n) = high_sum(probe, output, partitions) else {
            continue;
        };
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n != last_n {
            last_n = n;
            last_progress = Instant::now();
        }
        if n >= records as u64 {
            break;
        }
        if handle.is_finished() || last_progress.elapsed() > Duration::from_secs(60) {
            token.cancel();
            let res = handle.await?;
            anyhow::bail!("stage stopped at {n} of {records} outputs: {res:?}");
        }
    }
    let (t0, n0) = first.unwrap_or((Instant::now(), 0));
    let secs = t0.elapsed().as_secs_f64();
    token.cancel();
    handle.await??;
    Ok((records as u64 - n0, secs))
}

/// Records in `topic` (sum of high watermarks).
fn high_sum(probe: &Consumer, topic: &str, partitions: i32) -> anyhow::Result<u64> {
    let mut total = 0i64;
    for p in 0..partitions {
        total += probe.watermarks(topic, p, Duration::from_secs(5))?.1;
    }
    Ok(total as u64)
}

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
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer};
use conveyor_runtime::topology::{TopicSpec, Topology};
use conveyor_stream::examples::{KeyCounter, PassThrough};
use conveyor_stream::{BatchSpec, JobSpec, StoreSpec};
use tokio_util::sync::CancellationToken;

use crate::usage;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(
    config: &Config,
    records: usize,
    keys: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    if records == 0 || keys == 0 || rounds == 0 {
        return Err(usage(
            "--records, --keys and --rounds must be at least 1".into(),
        ));
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
    let rf = config.topics.replication_factor;
    let mk = |name: &str, cleanup| TopicSpec::adhoc(name, partitions, rf, cleanup);
    let specs: Vec<TopicSpec> = [&input, &raw_out, &pass_out, &count_out]
        .iter()
        .map(|n| mk(n, CleanupPolicy::Delete))
        .collect();
    super::stream::ensure_job_topics(config, &admin, specs).await?;
    let topo = Topology::resolve(config);
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
        health: None,
        replay: None,
    };
    let probe = Consumer::new(&config.kafka, "bench-probe", &format!("{run_id}.probe"))?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    // Each round runs the three stages again on the same input (new groups,
    // a new store and changelog), so a broker hiccup in one run does not
    // decide the result; the table shows the median round.
    let mut raw = Vec::new();
    let mut pass = Vec::new();
    let mut count = Vec::new();
    let mut changelog_records = 0;
    for round in 0..rounds {
        let (n, secs) = raw_stage(
            config,
            &input,
            &raw_out,
            &format!("{run_id}.r{round}"),
            records,
        )
        .await?;
        raw.push(n as f64 / secs);
        let (n, secs) = timed_job(&probe, &pass_out, partitions, records, |token| {
            let p = PassThrough {
                output: pass_out.clone(),
            };
            let s = spec(&format!("pass{round}"), None);
            let (k, c) = (config.kafka.clone(), codec.clone());
            tokio::spawn(async move { conveyor_stream::run(&k, c, s, p, token).await })
        })
        .await?;
        pass.push(n as f64 / secs);
        let changelog_r = format!("{changelog}.{round}");
        let cl = mk(&changelog_r, CleanupPolicy::Compact);
        super::stream::ensure_job_topics(config, &admin, vec![cl]).await?;
        let store = StoreSpec {
            name: "count.counts".into(),
            changelog: changelog_r.clone(),
            dir: state_dir.join(format!("count{round}.counts")),
        };
        let (n, secs) = timed_job(&probe, &count_out, partitions, records, |token| {
            let p = KeyCounter {
                output: count_out.clone(),
            };
            let s = spec(&format!("count{round}"), Some(store));
            let (k, c) = (config.kafka.clone(), codec.clone());
            tokio::spawn(async move { conveyor_stream::run(&k, c, s, p, token).await })
        })
        .await?;
        count.push(n as f64 / secs);
        changelog_records =
            probe.end_offsets_total(&changelog_r, partitions, Duration::from_secs(5))? as u64;
        let _ = admin.delete_topics(&[&changelog_r]).await;
        println!(
            "round {}: raw {:.0}/s, pass-through {:.0}/s, stateful {:.0}/s",
            round + 1,
            raw[round],
            pass[round],
            count[round]
        );
    }
    let rows = [
        ("broker produce only", records as f64 / produce_secs, vec![]),
        ("raw consume+produce", median(&raw), raw),
        ("runtime pass-through", median(&pass), pass),
        ("runtime stateful (count per key)", median(&count), count),
    ];
    let raw_rate = rows[1].1;
    println!();
    println!(
        "{:<34} {:>12} {:>9} {:>26}",
        "stage", "records/s", "vs raw", "rounds"
    );
    for (stage, rate, all) in &rows {
        let all: Vec<String> = all.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{stage:<34} {rate:>12.0} {:>9.2} {:>26}",
            rate / raw_rate,
            all.join(" ")
        );
    }
    println!(
        "\nstateful stage wrote {changelog_records} changelog records ({:.2} per input record; one per changed key per batch + one marker per partition per batch)",
        changelog_records as f64 / records as f64
    );
    println!("rates count from each stage's first output to its last (group join excluded); median of {rounds} rounds; batch max {} records / {} ms", batch.max_records, batch.max_wait.as_millis());
    let _ = admin
        .delete_topics(&[&input, &raw_out, &pass_out, &count_out])
        .await;
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(())
}

/// The raw loop: consume a batch, produce it pipelined, wait, commit.
pub(crate) async fn raw_stage(
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
    ) -> tokio::task::JoinHandle<
        Result<conveyor_stream::Summary, conveyor_stream::JobError>,
    >,
{
    let base = probe.end_offsets_total(output, partitions, Duration::from_secs(5))? as u64;
    let records = base + records as u64;
    let token = CancellationToken::new();
    let handle = start(token.clone());
    let mut first: Option<(Instant, u64)> = None;
    let mut last_progress = Instant::now();
    let mut last_n = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A busy broker may time a probe out; the next tick asks again.
        let Ok(n) = probe.end_offsets_total(output, partitions, Duration::from_secs(5)) else {
            continue;
        };
        let n = n as u64;
        if n > base && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n != last_n {
            last_n = n;
            last_progress = Instant::now();
        }
        if n >= records {
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
    Ok((records - n0, secs))
}

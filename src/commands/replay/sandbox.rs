//! `conveyor replay sandbox NAME`: the pipeline re-run over a time range
//! under the config given (an alternative allocation or routing policy),
//! into its own topics, state stores, operational store and ClickHouse
//! database, never touching live state and never buying labels.
//!
//! 1. The sandbox namespace: topics `sandbox-NAME.*` (under the live
//!    namespace, if any), groups and state under it, ClickHouse database
//!    `<database>_sandbox_NAME`, operational store `<state>/sandbox-NAME/
//!    ops.redb` (or keyspace `<keyspace>_sandbox_NAME`).
//! 2. Copies from the live topics: the raw orders of every enabled channel
//!    in `[from, to)`, every inventory event before `to` (the stock the
//!    orders met), and the whole catalog.
//! 3. Runs normalize, allocate and route, and both sinks, in this process
//!    until everything is at rest. Label is not run: a sandbox never calls
//!    a carrier; a parcel's cost is route's rate-card quote (the rate on
//!    its plan), which is what the live label was bought at.
//!
//! Stock caveat: orders before `from` did not consume stock in the sandbox
//! (their inventory events are copied, their orders are not), so a
//! sandbox from `earliest` compares like for like.
//! `conveyor replay diff NAME` then compares it with live (see [`super::diff`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_processors::allocate::harness::Watch;
use conveyor_runtime::config::{Config, StoreBackend};
use conveyor_runtime::kafka::{Admin, Consumer, OutRecord, Producer, TopicState};
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology, SINK_INPUTS};

use super::super::stage::RunCtx;
use super::plan::{self, Bound, JobInput};
use super::progress::{self, Progress};
use super::record::{self, Kind, ReplayJob, Status};
use crate::cli::SinkTarget;

/// The sandbox's config: `live`'s (with its policies) under the sandbox's
/// namespace, state, database and store. Topics and groups are named
/// after the run too (`sandbox-NAME-<run>`), so a sandbox run again never
/// meets the offsets its groups committed last time.
pub fn config(live: &Config, name: &str, run: i64) -> anyhow::Result<Config> {
    // One name, one database: `-` is left out, as it would map to `_`.
    if name.is_empty()
        || name.len() > 40
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        anyhow::bail!("sandbox name `{name}`: 1-40 characters of a-z, 0-9 and _");
    }
    let mut c = live.clone();
    c.topics.namespace = if live.topics.namespace.is_empty() {
        format!("sandbox-{name}-{run}")
    } else {
        format!("{}.sandbox-{name}-{run}", live.topics.namespace)
    };
    let dir = std::path::Path::new(&live.state.dir)
        .join(format!("sandbox-{name}"))
        .join(run.to_string());
    c.state.dir = dir.join("stores").display().to_string();
    c.store.path = dir.join("ops.redb").display().to_string();
    c.clickhouse.database = format!("{}_sandbox_{name}", live.clickhouse.database);
    c.scylla.keyspace = format!("{}_sandbox_{name}", live.scylla.keyspace);
    Ok(c)
}

pub async fn run(
    live: &Config,
    name: &str,
    from: &str,
    to: &str,
    replace: bool,
    yes: bool,
) -> anyhow::Result<()> {
    let now = record::now_ms();
    let sb = config(live, name, now)?;
    let (from_b, to_b) = (Bound::parse(from, now)?, Bound::parse(to, now)?);
    let topo = Topology::resolve(live);
    let raw: Vec<String> = live
        .channels
        .enabled
        .iter()
        .filter_map(|c| topo.raw_topic(c).map(str::to_string))
        .collect();
    let name_of = |id: &str| -> anyhow::Result<String> {
        topo.topic_name(id)
            .map(str::to_string)
            .with_context(|| format!("no topic {id}"))
    };
    let copier = |inputs: Vec<String>| JobInput {
        job: "sandbox-copy".into(),
        group: topology::group_id(&sb, "sandbox-copy"),
        inputs,
        changelog: None,
        follow: false,
    };
    let mut parts = plan::build(live, &[copier(raw)], &from_b, &to_b, false).await?;
    parts.extend(
        plan::build(
            live,
            &[copier(vec![name_of("inventory_events")?])],
            &Bound::Earliest,
            &to_b,
            false,
        )
        .await?,
    );
    parts.extend(
        plan::build(
            live,
            &[copier(vec![name_of("catalog_skus")?])],
            &Bound::Earliest,
            &Bound::Now,
            false,
        )
        .await?,
    );
    let sb_topo = Topology::resolve(&sb);
    let previous: Vec<ReplayJob> = record::load(live)
        .await?
        .into_iter()
        .filter(|j| j.kind == Kind::Sandbox && j.target == name)
        .collect();
    let exists = !previous.is_empty() || database_exists(&sb).await?;
    println!(
        "sandbox {name}: the pipeline (normalize, allocate, route, both sinks; no labels bought) from {from} to {to} under this config"
    );
    println!(
        "  into topics {}.*, ClickHouse database {}, state {}",
        sb.topics.namespace, sb.clickhouse.database, sb.state.dir
    );
    plan::print(&parts);
    if exists && !replace {
        anyhow::bail!(
            "sandbox {name} exists: pass --replace to drop it and run again, or pick another name"
        );
    }
    if !yes {
        println!("nothing changed: run again with --yes to run the sandbox");
        return Ok(());
    }
    if exists {
        drop_sandbox(live, &sb, &previous).await?;
    }
    // Recorded before it starts, so a failed run is dropped by --replace.
    let mut job = ReplayJob {
        reset_state: true,
        from: from.to_string(),
        to: to.to_string(),
        namespace: sb.topics.namespace.clone(),
        ..ReplayJob::new(Kind::Sandbox, name, 0, parts.clone())
    };
    record::save(live, &mut job).await?;
    let started = Instant::now();
    for r in Admin::new(&sb.kafka)?
        .ensure_topics(&sb_topo.topics)
        .await?
    {
        if let TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create sandbox topic {}: {e}", r.name);
        }
    }
    conveyor_sinks::clickhouse::migrate::migrate(&sb.clickhouse).await?;
    if sb.store.backend == StoreBackend::Scylla {
        conveyor_sinks::scylla::migrate(&sb.scylla).await?;
    }

    // Copy the inputs.
    let total: i64 = parts.iter().map(|p| p.messages()).sum();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut bar = Progress::new(&format!("sandbox {name}: copy"), total as u64);
    let copy = copy_inputs(live, &sb, &parts, counter.clone());
    let (res, copied) = progress::track(&mut bar, std::slice::from_ref(&counter), copy).await;
    bar.finish(copied);
    res?;

    run_to_rest(&sb).await?;
    conveyor_sinks::clickhouse::refresh_views(&sb.clickhouse).await?;
    let elapsed = started.elapsed();
    let w = Watch::with_route(&sb)?;
    println!(
        "sandbox {name} done in {:.1}s: {} orders normalized, {} allocated, {} backordered, {} shipment plans; compare with `conveyor replay diff {name}`",
        elapsed.as_secs_f64(),
        w.written("orders_normalized"),
        w.written("orders_allocated"),
        w.written("orders_backordered"),
        w.written("shipments_planned"),
    );
    job.status = Status::Done;
    job.messages = copied;
    job.run_ms = elapsed.as_millis() as u64;
    record::save(live, &mut job).await
}

/// Runs normalize, allocate, route and both sinks of `config` in this
/// process until every record is processed and written, then stops them.
pub(crate) async fn run_to_rest(config: &Config) -> anyhow::Result<()> {
    let sb = config;
    let shutdown = Shutdown::on_signals();
    let mut tasks = tokio::task::JoinSet::new();
    for stage in ["normalize", "allocate", "route"] {
        let (c, s) = (sb.clone(), shutdown.clone());
        tasks.spawn(async move {
            let r = match stage {
                "normalize" => super::super::normalize::run(&c, &s, RunCtx::default()).await,
                "allocate" => super::super::allocate::run(&c, &s, RunCtx::default()).await,
                _ => super::super::route::run(&c, &s, RunCtx::default()).await,
            };
            r.map(|_| ())
                .with_context(|| format!("{stage} in {}", c.topics.namespace))
        });
    }
    for sink in [SinkTarget::Clickhouse, SinkTarget::Scylla] {
        let (c, s) = (sb.clone(), shutdown.clone());
        tasks.spawn(async move {
            let spec = super::rebuild::feed_spec(&c, sink)?;
            super::rebuild::feed(&c, sink, &spec, &s).await?;
            anyhow::Ok(())
        });
    }
    let rest = wait_for_rest(sb, &shutdown);
    let outcome = tokio::select! {
        r = rest => r,
        Some(joined) = tasks.join_next() => match joined {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Err(anyhow::anyhow!("a stage stopped early")),
            Err(e) => Err(anyhow::anyhow!("a stage panicked: {e}")),
        },
    };
    shutdown.trigger();
    while let Some(j) = tasks.join_next().await {
        if let Ok(Err(e)) = j {
            tracing::warn!(error = %e, "stage at shutdown");
        }
    }
    outcome
}

/// Copies each planned partition range from the live topic to the
/// sandbox's topic of the same id (same key, payload, headers, time).
async fn copy_inputs(
    live: &Config,
    sb: &Config,
    parts: &[plan::PartPlan],
    counter: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    let live_topo = Topology::resolve(live);
    let sb_topo = Topology::resolve(sb);
    let target = |live_name: &str| -> Option<String> {
        let spec = live_topo.topics.iter().find(|t| t.name == live_name)?;
        sb_topo
            .topics
            .iter()
            .find(|t| t.id == spec.id && t.channel == spec.channel)
            .map(|t| t.name.clone())
    };
    let producer = Producer::new(&sb.kafka, "sandbox-copy")?;
    let flush = |batch: Vec<OutRecord>| {
        let (producer, counter) = (&producer, &counter);
        async move {
            for r in producer.send_batch(&batch).await {
                r.context("copy to the sandbox")?;
            }
            counter.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            anyhow::Ok(())
        }
    };
    for p in parts.iter().filter(|p| p.messages() > 0) {
        let to_topic =
            target(&p.topic).with_context(|| format!("no sandbox topic for {}", p.topic))?;
        // Reports the end of the partition (on a compacted topic the
        // record at `to - 1` may be gone). A client per partition, so no
        // end-of-partition event of another one can cut this copy short.
        let c = conveyor_stream::changelog::reader(&live.kafka, &p.group)?;
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&p.topic, p.partition, rdkafka::Offset::Offset(p.from))?;
        rdkafka::consumer::Consumer::assign(&c, &tpl)?;
        let mut batch = Vec::new();
        let mut next = p.from;
        while next < p.to {
            let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
                .await
                .with_context(|| {
                    format!("reading {}[{}] timed out at {next}", p.topic, p.partition)
                })?;
            let rec = match m {
                Ok(m) => conveyor_runtime::kafka::InRecord::from_message(&m),
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => break,
                Err(e) => return Err(e).context("copy from live"),
            };
            next = rec.offset + 1;
            if rec.offset >= p.to {
                break;
            }
            let mut out = OutRecord::new(to_topic.clone());
            out.key = rec.key;
            out.payload = rec.payload;
            out.headers = rec.headers;
            out.timestamp_ms = rec.timestamp_ms;
            batch.push(out);
            if batch.len() >= 2000 {
                flush(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            flush(batch).await?;
        }
    }
    Ok(())
}

/// Until normalize consumed every raw record, allocation and route are at
/// rest, and both sinks have every record.
async fn wait_for_rest(sb: &Config, shutdown: &Shutdown) -> anyhow::Result<()> {
    let topo = Topology::resolve(sb);
    let parts = sb.topics.partitions;
    let t = Duration::from_secs(10);
    let lag = |c: &Consumer, topics: &[String]| -> anyhow::Result<i64> {
        let mut lag = 0;
        for topic in topics {
            let n = topo
                .topics
                .iter()
                .find(|x| &x.name == topic)
                .map_or(parts, |x| x.partitions);
            let end = c.end_offsets_total(topic, n, t)?;
            let done: i64 = c.group_committed(topic, n, t)?.iter().sum();
            lag += end - done;
        }
        Ok(lag)
    };
    let watch = Watch::with_route(sb)?;
    let sink_topics: Vec<String> = SINK_INPUTS
        .iter()
        .filter_map(|id| topo.topic_name(id).map(str::to_string))
        .collect();
    // (group's client, the topics it reads): normalize per channel, sinks.
    let mut groups: Vec<(Consumer, Vec<String>)> = Vec::new();
    for c in &sb.channels.enabled {
        if let Some(raw) = topo.raw_topic(c) {
            let g = topology::group_id(sb, &format!("normalize-{c}"));
            groups.push((
                Consumer::new(&sb.kafka, "sandbox-watch", &g)?,
                vec![raw.to_string()],
            ));
        }
    }
    for sink in [super::super::sink::CLICKHOUSE, super::super::sink::SCYLLA] {
        let g = topology::group_id(sb, sink);
        groups.push((
            Consumer::new(&sb.kafka, "sandbox-watch", &g)?,
            sink_topics.clone(),
        ));
    }
    let mut quiet = 0;
    while !shutdown.is_triggered() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut behind = watch.lag()?;
        for (c, topics) in &groups {
            behind += lag(c, topics)?;
        }
        quiet = if behind == 0 { quiet + 1 } else { 0 };
        if quiet >= 4 {
            return Ok(());
        }
    }
    anyhow::bail!("interrupted")
}

async fn database_exists(sb: &Config) -> anyhow::Result<bool> {
    let n: u64 = conveyor_sinks::clickhouse::server_client(&sb.clickhouse)
        .query("SELECT count() FROM system.databases WHERE name = ?")
        .bind(&sb.clickhouse.database)
        .fetch_one()
        .await
        .context("asking ClickHouse for the sandbox database")?;
    Ok(n > 0)
}

/// Deletes what earlier runs of a sandbox left: their topics, the
/// database and the local state.
async fn drop_sandbox(live: &Config, sb: &Config, previous: &[ReplayJob]) -> anyhow::Result<()> {
    let admin = Admin::new(&sb.kafka)?;
    let existing = admin.list_topics().await?;
    let mut names: Vec<String> = Vec::new();
    for j in previous {
        let mut old = sb.clone();
        old.topics.namespace = j.namespace.clone();
        names.extend(
            Topology::resolve(&old)
                .topics
                .into_iter()
                .map(|t| t.name)
                .filter(|n| existing.contains_key(n)),
        );
    }
    if !names.is_empty() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        admin.delete_topics(&refs).await?;
    }
    conveyor_sinks::clickhouse::server_client(&sb.clickhouse)
        .query(&format!(
            "DROP DATABASE IF EXISTS {}",
            sb.clickhouse.database
        ))
        .execute()
        .await
        .context("dropping the sandbox database")?;
    if sb.store.backend == StoreBackend::Scylla {
        conveyor_sinks::scylla::connect(&sb.scylla)
            .await?
            .query_unpaged(
                format!("DROP KEYSPACE IF EXISTS {}", sb.scylla.keyspace),
                &[],
            )
            .await
            .context("dropping the sandbox keyspace")?;
    }
    let name = previous.first().map_or("", |j| j.target.as_str());
    let dir = std::path::Path::new(&live.state.dir).join(format!("sandbox-{name}"));
    if !name.is_empty() && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    println!(
        "dropped the earlier sandbox: {} topics, database {}",
        names.len(),
        sb.clickhouse.database
    );
    Ok(())
}

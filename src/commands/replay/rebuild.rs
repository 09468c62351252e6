//! `conveyor replay rebuild`: recreate what the topics can recreate.
//!
//! - `--store <job>.<store>`: a stateful job's local store, from its
//!   changelog (after losing a node's disk, or to move a job): the files
//!   are deleted and restored partition by partition, as the job itself
//!   would on start, but up front and with progress.
//! - `--sink clickhouse|scylla`: a sink's tables, from the sink input
//!   topics (as far back as they retain): the tables are emptied, the
//!   sink's group goes back to the earliest offsets, and the sink runs to
//!   the end offsets of the plan; ClickHouse's materialized views are then
//!   refreshed. Resumable: the run continues from the group's offsets.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context as _;
use conveyor_runtime::config::{Config, StoreBackend};
use conveyor_runtime::kafka::{Admin, Consumer};
use conveyor_sinks::clickhouse::sink::ClickHouseWriter;
use conveyor_sinks::event::Inputs;
use conveyor_sinks::feed::FeedSpec;
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::writer::StoreWriter;
use conveyor_sinks::scylla::ScyllaStore;
use conveyor_stream::changelog;
use conveyor_stream::state::PartitionStore;
use conveyor_stream::JobSpec;

use super::plan::{self, Bound, JobInput};
use super::progress::{self, Progress};
use super::record::{self, Kind, ReplayJob, Status};
use super::sink_name;
use crate::cli::SinkTarget;

/// Every stateful job of the pipeline.
fn stateful_jobs(config: &Config) -> anyhow::Result<Vec<JobSpec>> {
    let mut all = Vec::new();
    for c in &config.channels.enabled {
        all.push(super::super::normalize::job_spec(config, c)?);
    }
    all.extend(super::super::allocate::job_specs(config)?);
    all.extend(super::super::route::job_specs(config)?);
    all.push(super::super::label::job_spec(config)?);
    all.push(super::super::syncback::job_spec(config)?);
    all.retain(|j| j.store.is_some());
    Ok(all)
}

pub async fn store(config: &Config, name: &str, yes: bool) -> anyhow::Result<()> {
    let jobs = stateful_jobs(config)?;
    let Some(spec) = jobs
        .iter()
        .find(|j| j.store.as_ref().is_some_and(|s| s.name == name))
    else {
        let names: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.store.as_ref().map(|s| s.name.as_str()))
            .collect();
        anyhow::bail!("no store `{name}`; the stores are: {}", names.join(", "));
    };
    let store = spec.store.clone().context("stateful")?;
    plan::ensure_idle(
        config,
        std::slice::from_ref(&spec.group_id),
        "rebuild the store",
    )?;
    let partitions = Admin::new(&config.kafka)?
        .list_topics()
        .await?
        .get(&store.changelog)
        .map(|t| t.0)
        .with_context(|| format!("changelog {} does not exist", store.changelog))?;
    let probe = Consumer::new(&config.kafka, "replay", "conveyor-replay")?;
    let mut total = 0u64;
    for p in 0..partitions {
        let (low, high) =
            probe.watermarks(&store.changelog, p, std::time::Duration::from_secs(10))?;
        total += (high - low).max(0) as u64;
    }
    println!(
        "rebuild store {name}: {partitions} partitions in {} from {} ({total} changelog records)",
        store.dir.display(),
        store.changelog
    );
    if !yes {
        println!(
            "nothing changed: run again with --yes to delete the local files and restore them"
        );
        return Ok(());
    }
    let reader = changelog::reader(&config.kafka, &spec.group_id)?;
    let counter = Arc::new(AtomicU64::new(0));
    let mut bar = Progress::new(&format!("rebuild {name}"), total);
    let restore_all = async {
        let mut out = Vec::new();
        for p in 0..partitions {
            let path = store.partition_path(p);
            PartitionStore::remove(&path)?;
            let (_, r) =
                changelog::restore(&reader, name, &path, &store.changelog, p, Some(&counter))
                    .await?;
            out.push((p, r));
        }
        anyhow::Ok(out)
    };
    let (res, done) = progress::track(&mut bar, std::slice::from_ref(&counter), restore_all).await;
    let (elapsed, rate) = bar.finish(done);
    for (p, r) in res? {
        println!(
            "  partition {p}: {} changelog records, position {} (epoch {})",
            r.records,
            r.position.map_or("-".into(), |x| x.to_string()),
            r.epoch
        );
    }
    println!(
        "store {name} rebuilt: {done} records in {:.1}s ({rate:.0}/s)",
        elapsed.as_secs_f64()
    );
    let mut job = ReplayJob {
        status: Status::Done,
        messages: done,
        run_ms: elapsed.as_millis() as u64,
        ..ReplayJob::new(Kind::RebuildStore, name, 0, vec![])
    };
    record::save(config, &mut job).await
}

pub(super) fn feed_spec(config: &Config, sink: SinkTarget) -> anyhow::Result<FeedSpec> {
    match sink {
        SinkTarget::Clickhouse => super::super::sink::clickhouse_spec(config),
        SinkTarget::Scylla => super::super::sink::scylla_spec(config),
    }
}

fn sink_of(target: &str) -> anyhow::Result<SinkTarget> {
    match target {
        super::super::sink::CLICKHOUSE => Ok(SinkTarget::Clickhouse),
        super::super::sink::SCYLLA => Ok(SinkTarget::Scylla),
        _ => anyhow::bail!("`{target}` is not a sink"),
    }
}

/// What emptying the sink's tables means, in words.
fn what_is_cleared(config: &Config, sink: SinkTarget) -> String {
    match (sink, config.store.backend) {
        (SinkTarget::Clickhouse, _) => format!(
            "ClickHouse {}: TRUNCATE the {} fact tables (views are recomputed)",
            config.clickhouse.database,
            conveyor_sinks::clickhouse::FACT_TABLES.len()
        ),
        (SinkTarget::Scylla, StoreBackend::Embedded) => {
            format!("embedded operational store {}: deleted", config.store.path)
        }
        (SinkTarget::Scylla, StoreBackend::Scylla) => format!(
            "Scylla keyspace {}: TRUNCATE every table",
            config.scylla.keyspace
        ),
    }
}

pub async fn sink(config: &Config, sink: SinkTarget, yes: bool) -> anyhow::Result<()> {
    let spec = feed_spec(config, sink)?;
    plan::ensure_idle(
        config,
        std::slice::from_ref(&spec.group_id),
        "rebuild the sink",
    )?;
    let reads = conveyor_runtime::topology::sink_reads(&spec.name);
    super::super::stage::ensure_topics(config, reads).await?;
    let input = JobInput {
        job: spec.name.clone(),
        group: spec.group_id.clone(),
        inputs: Inputs::resolve(config, reads).topics(),
        changelog: None,
        follow: false,
    };
    let parts = plan::build(config, &[input], &Bound::Earliest, &Bound::Now, false).await?;
    let jobs = record::load(config).await?;
    if let Some(open) = jobs
        .iter()
        .find(|j| j.status != Status::Done && j.target == spec.name)
    {
        anyhow::bail!(
            "rebuild {} of this sink is unfinished: `conveyor replay resume {}`",
            open.id,
            open.id
        );
    }
    let mut job = ReplayJob {
        reset_state: true,
        ..ReplayJob::new(Kind::RebuildSink, &spec.name, 0, parts)
    };
    println!("rebuild {} ({})", spec.name, job.id);
    println!("  clears {}", what_is_cleared(config, sink));
    plan::print(&job.parts);
    if !yes {
        println!("nothing changed: run again with --yes to clear the tables and refill them");
        return Ok(());
    }
    record::save(config, &mut job).await?;
    resume_sink(config, &mut job).await
}

/// The steps of a sink rebuild not done yet.
pub async fn resume_sink(config: &Config, job: &mut ReplayJob) -> anyhow::Result<()> {
    let sink = sink_of(&job.target)?;
    if job.status == Status::Planned {
        clear(config, sink).await?;
        let offsets: Vec<_> = job
            .parts
            .iter()
            .map(|p| (p.group.clone(), p.topic.clone(), p.partition, p.from))
            .collect();
        plan::commit(config, &offsets)?;
        job.status = Status::Prepared;
        record::save(config, job).await?;
    }
    if job.status == Status::Prepared {
        let at = plan::committed(config, &job.parts)?;
        let mut until = std::collections::BTreeMap::new();
        let mut total = 0u64;
        for p in &job.parts {
            let pos = p.position(&at);
            if pos < p.to {
                until.insert((p.topic.clone(), p.partition), p.to);
                total += (p.to - pos) as u64;
            }
        }
        if !until.is_empty() {
            let counter = Arc::new(AtomicU64::new(0));
            let mut spec = feed_spec(config, sink)?;
            spec.until = Some(until);
            spec.progress = Some(counter.clone());
            let shutdown = conveyor_runtime::shutdown::Shutdown::on_signals();
            let mut bar = Progress::new(&format!("rebuild {}", job.target), total);
            let run = feed(config, sink, &spec, &shutdown);
            let (res, done) = progress::track(&mut bar, &[counter], run).await;
            let (elapsed, rate) = bar.finish(done);
            let summary = res?;
            job.messages += done;
            job.run_ms += elapsed.as_millis() as u64;
            println!(
                "  {done} messages in {:.1}s ({rate:.0}/s): {} rows, {} dead-lettered",
                elapsed.as_secs_f64(),
                summary.rows,
                summary.dead_lettered
            );
            if shutdown.is_triggered() {
                record::save(config, job).await?;
                anyhow::bail!(
                    "rebuild {} interrupted; continue it with `conveyor replay resume {}`",
                    job.id,
                    job.id
                );
            }
        }
        if sink == SinkTarget::Clickhouse {
            conveyor_sinks::clickhouse::refresh_views(&config.clickhouse).await?;
        }
        job.status = Status::Done;
        record::save(config, job).await?;
    }
    println!(
        "{} rebuilt from the topics ({} messages); start the sink again to follow new records",
        sink_name(sink),
        job.messages
    );
    Ok(())
}

/// Empties the sink's tables (keeping the schema and its migrations).
async fn clear(config: &Config, sink: SinkTarget) -> anyhow::Result<()> {
    match (sink, config.store.backend) {
        (SinkTarget::Clickhouse, _) => {
            conveyor_sinks::clickhouse::migrate::check(&config.clickhouse).await?;
            conveyor_sinks::clickhouse::truncate_facts(&config.clickhouse).await?;
        }
        (SinkTarget::Scylla, StoreBackend::Embedded) => {
            EmbeddedStore::remove(std::path::Path::new(&config.store.path))?;
        }
        (SinkTarget::Scylla, StoreBackend::Scylla) => {
            conveyor_sinks::scylla::truncate(&config.scylla).await?;
        }
    }
    println!("  cleared {}", what_is_cleared(config, sink));
    Ok(())
}

pub(super) async fn feed(
    config: &Config,
    sink: SinkTarget,
    spec: &FeedSpec,
    shutdown: &conveyor_runtime::shutdown::Shutdown,
) -> anyhow::Result<conveyor_sinks::feed::FeedSummary> {
    let token = shutdown.token();
    match (sink, config.store.backend) {
        (SinkTarget::Clickhouse, _) => {
            let mut w = ClickHouseWriter::new(&config.clickhouse);
            super::super::sink::run_feed(config, spec, &mut w, token, None).await
        }
        (SinkTarget::Scylla, StoreBackend::Embedded) => {
            let store = EmbeddedStore::open(std::path::Path::new(&config.store.path))?;
            let mut w = StoreWriter::new(Arc::new(store));
            super::super::sink::run_feed(config, spec, &mut w, token, None).await
        }
        (SinkTarget::Scylla, StoreBackend::Scylla) => {
            let store = ScyllaStore::connect(&config.scylla).await?;
            let mut w = StoreWriter::new(Arc::new(store));
            super::super::sink::run_feed(config, spec, &mut w, token, None).await
        }
    }
}

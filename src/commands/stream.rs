//! `conveyor state list|get` (inspect state stores) and `conveyor dev
//! run-example` (run the stream runtime's example processors: the tests'
//! and the benchmark's workhorse, and a smoke test of a deployment).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_runtime::config::{CleanupPolicy, Config};
use conveyor_runtime::kafka::Admin;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, TopicSpec, Topology};
use conveyor_stream::examples::{KeyCounter, PassThrough};
use conveyor_stream::{inspect, BatchSpec, JobSpec, StoreSpec, Summary};

use crate::cli::Example;
use crate::usage;

/// `conveyor state list [STORE]`.
pub fn list(config: &Config, store: Option<&str>) -> anyhow::Result<()> {
    let root = Path::new(&config.state.dir);
    let stores = match store {
        Some(s) => vec![s.to_string()],
        None => inspect::stores(root),
    };
    if stores.is_empty() {
        println!("no state stores under {}", root.display());
        return Ok(());
    }
    for s in stores {
        let dir = store_dir(root, &s)?;
        println!("store {s} ({})", dir.display());
        println!(
            "  {:>9}  {:>12}  {:>14}  {:>10}  {:>10}",
            "partition", "position", "changelog_end", "keys", "bytes"
        );
        for p in inspect::partitions(&dir)? {
            let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            println!(
                "  {:>9}  {:>12}  {:>14}  {:>10}  {:>10}",
                p.partition,
                opt(p.meta.position),
                opt(p.meta.changelog_end),
                p.keys,
                p.bytes
            );
        }
    }
    Ok(())
}

/// `conveyor state get STORE KEY [--table T]`.
pub fn get(config: &Config, store: &str, key: &str, table: Option<&str>) -> anyhow::Result<()> {
    let dir = store_dir(Path::new(&config.state.dir), store)?;
    let hits = inspect::get(&dir, key.as_bytes(), table)?;
    if hits.is_empty() {
        anyhow::bail!(
            "key `{key}` not found in store {store}{} (the store holds the partitions this machine processed)",
            table.map(|t| format!(", table {t}")).unwrap_or_default()
        );
    }
    for h in hits {
        println!(
            "partition {}  {}/{}  {}",
            h.partition,
            h.table,
            String::from_utf8_lossy(&h.key),
            inspect::display_value(&h.value)
        );
    }
    Ok(())
}

fn store_dir(root: &Path, store: &str) -> anyhow::Result<PathBuf> {
    if store.is_empty() || store.contains('/') || store.contains("..") {
        return Err(usage(format!(
            "`{store}` is not a store name (`<processor>.<store>`)"
        )));
    }
    let dir = root.join(store);
    if !dir.is_dir() {
        let known = inspect::stores(root);
        return Err(usage(format!(
            "no store `{store}` under {}; known: {}",
            root.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(dir)
}

/// What `run-example` needs besides the processor.
pub struct ExampleArgs {
    pub which: Example,
    pub input: String,
    pub output: String,
    pub name: String,
}

/// The job spec of an example: group, DLQ and (for the counter) the store
/// and its changelog, named from the config's namespace.
pub fn example_spec(config: &Config, a: &ExampleArgs) -> JobSpec {
    let topo = Topology::resolve(config);
    let dlq = topo
        .topic_name("orders_dlq")
        .unwrap_or("orders.dlq")
        .to_string();
    let store = matches!(a.which, Example::Counter).then(|| {
        let store = format!("{}.counts", a.name);
        let mut changelog = format!("conveyor.{store}.changelog");
        if !config.topics.namespace.is_empty() {
            changelog = format!("{}.{changelog}", config.topics.namespace);
        }
        StoreSpec {
            dir: Path::new(&config.state.dir).join(&store),
            name: store,
            changelog,
        }
    });
    JobSpec {
        name: a.name.clone(),
        group_id: topology::group_id(config, &a.name),
        inputs: vec![a.input.clone()],
        store,
        dlq_topic: dlq,
        batch: BatchSpec {
            max_records: config.state.batch_max_records,
            max_wait: Duration::from_millis(config.state.batch_max_wait_ms),
        },
        health: None,
        replay: None,
    }
}

/// Creates the example's output, changelog and DLQ topics (the input must
/// exist; the others get its partition count).
pub async fn ensure_example_topics(
    config: &Config,
    spec: &JobSpec,
    output: &str,
) -> anyhow::Result<()> {
    let admin = Admin::new(&config.kafka)?;
    let topics = admin.list_topics().await?;
    let input = &spec.inputs[0];
    let (partitions, rf) = *topics
        .get(input)
        .with_context(|| format!("input topic `{input}` does not exist; create it first"))?;
    let mut output_spec = TopicSpec::adhoc(output, partitions, rf, CleanupPolicy::Delete);
    output_spec
        .configs
        .insert("retention.ms".into(), (7 * 86_400_000i64).to_string());
    let mut specs = vec![output_spec];
    if let Some(s) = &spec.store {
        specs.push(TopicSpec::adhoc(
            &s.changelog,
            partitions,
            rf,
            CleanupPolicy::Compact,
        ));
    }
    ensure_job_topics(config, &admin, specs).await
}

/// Creates `specs` and the topology's DLQ topic (where a job's rejected
/// records go); fails naming any topic that could not be created.
pub async fn ensure_job_topics(
    config: &Config,
    admin: &Admin,
    mut specs: Vec<TopicSpec>,
) -> anyhow::Result<()> {
    let topo = Topology::resolve(config);
    specs.extend(topo.topics.iter().filter(|t| t.id == "orders_dlq").cloned());
    for r in admin.ensure_topics(&specs).await? {
        if let conveyor_runtime::kafka::TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create topic {}: {e}", r.name);
        }
    }
    Ok(())
}

/// Runs an example processor until `shutdown`; returns its totals.
pub async fn run_example(
    config: &Config,
    a: &ExampleArgs,
    shutdown: &Shutdown,
    health: Option<conveyor_runtime::observability::Health>,
) -> anyhow::Result<Summary> {
    let mut spec = example_spec(config, a);
    spec.health = health;
    ensure_example_topics(config, &spec, &a.output).await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let token = shutdown.token();
    let summary = match a.which {
        Example::Passthrough => {
            let p = PassThrough {
                output: a.output.clone(),
            };
            conveyor_stream::run(&config.kafka, codec, spec, p, token).await?
        }
        Example::Counter => {
            let p = KeyCounter {
                output: a.output.clone(),
            };
            conveyor_stream::run(&config.kafka, codec, spec, p, token).await?
        }
    };
    Ok(summary)
}

/// Waits for a set of jobs; the first one that fails (or panics) stops the
/// others through `shutdown`, since a half-running stage would look healthy
/// while its input piles up. Returns each job's totals, sorted by name.
pub async fn join_jobs(
    mut jobs: tokio::task::JoinSet<(
        String,
        Result<conveyor_stream::Summary, conveyor_stream::JobError>,
    )>,
    shutdown: &conveyor_runtime::shutdown::Shutdown,
    stage: &str,
) -> anyhow::Result<Vec<(String, conveyor_stream::Summary)>> {
    let mut out = Vec::new();
    let mut first_err = None;
    while let Some(joined) = jobs.join_next().await {
        match joined {
            Ok((name, Ok(s))) => out.push((name, s)),
            Ok((name, Err(e))) => {
                shutdown.trigger();
                first_err.get_or_insert_with(|| anyhow::anyhow!("{name}: {e}"));
            }
            Err(e) => {
                shutdown.trigger();
                first_err.get_or_insert_with(|| anyhow::anyhow!("a {stage} job panicked: {e}"));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

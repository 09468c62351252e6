//! What every multi-job stage (`run allocate`, `run route`) shares: the
//! job specs from the topology, topic creation, and spawning a job.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, TopicState};
use conveyor_runtime::observability::Health;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_stream::{BatchSpec, JobError, JobSpec, Processor, StoreSpec, Summary};

/// The set of a stage's running jobs.
pub type Jobs = tokio::task::JoinSet<(String, Result<Summary, JobError>)>;

/// The resolved name of topic `id`.
/// Where a stage raises exceptions and dead-letters what it refuses.
pub fn exception_sinks(config: &Config) -> anyhow::Result<conveyor_processors::exceptions::Sinks> {
    let topo = Topology::resolve(config);
    Ok(conveyor_processors::exceptions::Sinks {
        exceptions: topic(&topo, "exceptions")?,
        dlq: topic(&topo, "orders_dlq")?,
    })
}

pub fn topic(topo: &Topology, id: &str) -> anyhow::Result<String> {
    topo.topic_name(id)
        .map(str::to_string)
        .with_context(|| format!("the topology has no topic `{id}`"))
}

/// The spec of job `job` reading topic `input` (an id), with `store`
/// (name, changelog topic id) when it is stateful.
pub fn job_spec(
    config: &Config,
    job: &str,
    input: &str,
    store: Option<(&str, &str)>,
) -> anyhow::Result<JobSpec> {
    let topo = Topology::resolve(config);
    Ok(JobSpec {
        name: job.to_string(),
        group_id: topology::group_id(config, job),
        inputs: vec![topic(&topo, input)?],
        store: match store {
            Some((store, changelog)) => Some(StoreSpec {
                name: format!("{job}.{store}"),
                changelog: topic(&topo, changelog)?,
                dir: Path::new(&config.state.dir).join(format!("{job}.{store}")),
            }),
            None => None,
        },
        dlq_topic: topic(&topo, "orders_dlq")?,
        batch: BatchSpec {
            max_records: config.state.batch_max_records,
            max_wait: Duration::from_millis(config.state.batch_max_wait_ms),
        },
        health: None,
        replay: None,
    })
}

/// Creates the topics with these ids (idempotent).
pub async fn ensure_topics(config: &Config, ids: &[&str]) -> anyhow::Result<()> {
    let topo = Topology::resolve(config);
    let admin = Admin::new(&config.kafka)?;
    let wanted: Vec<_> = topo
        .topics
        .iter()
        .filter(|t| ids.contains(&t.id))
        .cloned()
        .collect();
    for r in admin.ensure_topics(&wanted).await? {
        if let TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create topic {}: {e}", r.name);
        }
    }
    Ok(())
}

/// How a stage's jobs run: as a service (reporting to `health`), or as a
/// replay's bounded re-run (`conveyor replay`).
#[derive(Clone, Default)]
pub struct RunCtx {
    pub health: Option<Health>,
    /// By job name: the jobs a replay re-runs, and how far. A job not
    /// listed does not start.
    pub replay: Option<Arc<std::collections::BTreeMap<String, conveyor_stream::ReplayRun>>>,
}

impl RunCtx {
    /// A long-running stage reporting to `health`.
    pub fn service(health: Health) -> Self {
        Self {
            health: Some(health),
            replay: None,
        }
    }

    /// Prepares `spec` to run under this context; `false` if the job is
    /// not to run (a replay that does not include it).
    pub fn apply(&self, spec: &mut JobSpec) -> bool {
        spec.health = self.health.clone();
        match &self.replay {
            None => true,
            Some(jobs) => match jobs.get(&spec.name) {
                Some(r) => {
                    spec.replay = Some(r.clone());
                    true
                }
                None => false,
            },
        }
    }
}

/// Starts `processor` as job `spec` in `jobs` (unless `ctx` leaves it out).
pub fn spawn<P: Processor>(
    jobs: &mut Jobs,
    config: &Config,
    codec: &Arc<conveyor_schemas::codec::Codec>,
    mut spec: JobSpec,
    processor: P,
    ctx: &RunCtx,
    shutdown: &Shutdown,
) {
    if !ctx.apply(&mut spec) {
        return;
    }
    let (kafka, codec, token) = (config.kafka.clone(), codec.clone(), shutdown.token());
    let name = spec.name.clone();
    jobs.spawn(async move {
        (
            name,
            conveyor_stream::run(&kafka, codec, spec, processor, token).await,
        )
    });
}

/// Runs one job (`spec`, `processor`) until `shutdown`, as a stage that
/// is a single job does (label, syncback); returns its totals.
pub async fn run_one<P: Processor>(
    config: &Config,
    spec: JobSpec,
    processor: P,
    ctx: RunCtx,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<(String, Summary)>> {
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let name = spec.name.clone();
    let mut set = Jobs::new();
    spawn(&mut set, config, &codec, spec, processor, &ctx, shutdown);
    super::stream::join_jobs(set, shutdown, &name).await
}

/// Loads the catalog to its end (reported as readiness check `catalog`)
/// and keeps following it until `shutdown`.
pub async fn start_catalog(
    config: &Config,
    codec: &Arc<conveyor_schemas::codec::Codec>,
    component: &str,
    health: &Option<Health>,
    shutdown: &Shutdown,
) -> anyhow::Result<conveyor_processors::catalog_feed::CatalogFeed> {
    let topo = Topology::resolve(config);
    let spec = topo
        .spec("catalog_skus", None)
        .context("no catalog topic")?;
    let feed = conveyor_processors::catalog_feed::CatalogFeed::start(
        &config.kafka,
        codec.clone(),
        &spec.name,
        spec.partitions,
        component,
        Duration::from_secs(120),
        shutdown.token(),
    )
    .await?;
    let skus = feed.catalog.read().map(|c| c.len()).unwrap_or(0);
    if let Some(h) = health {
        h.set("catalog", true, format!("{skus} SKUs loaded"));
    }
    Ok(feed)
}

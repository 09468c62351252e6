//! `conveyor run allocate`: the four jobs of allocation in one process
//! (docs/allocation.md): the two stateless forwarders, the inventory job
//! (keyed by SKU, store `inventory.stock`) and the allocate job (keyed by
//! order, store `allocate.orders`). Each has its own consumer group, so
//! instances started on several machines split every job's partitions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_processors::allocate::jobs::{
    self, AllocateJob, Counts, InventoryJob, OrderFeed, StockFeed, Topics, ALLOCATE, INVENTORY,
    ORDER_FEED, STOCK_FEED,
};
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, TopicState};
use conveyor_runtime::observability::Health;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_stream::{BatchSpec, JobSpec, StoreSpec, Summary};

/// Topics the jobs read or write.
const TOPIC_IDS: &[&str] = &[
    "orders_normalized",
    "inventory_events",
    "commands_allocate",
    "commands_inventory",
    "orders_allocated",
    "orders_backordered",
    "allocation_events",
    "inventory_alerts",
    "orders_dlq",
    "changelog_allocate_orders",
    "changelog_inventory_stock",
];

fn name(topo: &Topology, id: &str) -> anyhow::Result<String> {
    topo.topic_name(id)
        .map(str::to_string)
        .with_context(|| format!("the topology has no topic `{id}`"))
}

/// The four job specs: (order feed, stock feed, inventory, allocate).
pub fn job_specs(config: &Config) -> anyhow::Result<[JobSpec; 4]> {
    let topo = Topology::resolve(config);
    let batch = BatchSpec {
        max_records: config.state.batch_max_records,
        max_wait: Duration::from_millis(config.state.batch_max_wait_ms),
    };
    let dlq = name(&topo, "orders_dlq")?;
    let spec = |job: &str, input: String, store: Option<(&str, &str)>| -> anyhow::Result<JobSpec> {
        Ok(JobSpec {
            name: job.to_string(),
            group_id: topology::group_id(config, job),
            inputs: vec![input],
            store: match store {
                Some((store, changelog)) => Some(StoreSpec {
                    name: format!("{job}.{store}"),
                    changelog: name(&topo, changelog)?,
                    dir: Path::new(&config.state.dir).join(format!("{job}.{store}")),
                }),
                None => None,
            },
            dlq_topic: dlq.clone(),
            batch,
            health: None,
        })
    };
    Ok([
        spec(ORDER_FEED, name(&topo, "orders_normalized")?, None)?,
        spec(STOCK_FEED, name(&topo, "inventory_events")?, None)?,
        spec(
            INVENTORY,
            name(&topo, "commands_inventory")?,
            Some(("stock", "changelog_inventory_stock")),
        )?,
        spec(
            ALLOCATE,
            name(&topo, "commands_allocate")?,
            Some(("orders", "changelog_allocate_orders")),
        )?,
    ])
}

/// Readiness checks of `conveyor run allocate`.
pub fn checks() -> Vec<String> {
    [INVENTORY, ALLOCATE]
        .iter()
        .map(|j| conveyor_stream::job::state_check(j))
        .collect()
}

/// Creates the topics the jobs need (idempotent).
pub async fn ensure_topics(config: &Config) -> anyhow::Result<()> {
    let topo = Topology::resolve(config);
    let admin = Admin::new(&config.kafka)?;
    let wanted: Vec<_> = topo
        .topics
        .iter()
        .filter(|t| TOPIC_IDS.contains(&t.id))
        .cloned()
        .collect();
    for r in admin.ensure_topics(&wanted).await? {
        if let TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create topic {}: {e}", r.name);
        }
    }
    Ok(())
}

/// Runs the four jobs until `shutdown` (or until one fails, which stops
/// them all); returns each job's totals.
pub async fn run(
    config: &Config,
    shutdown: &Shutdown,
    health: Option<Health>,
) -> anyhow::Result<Vec<(String, Summary)>> {
    ensure_topics(config).await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let topics = Topics::resolve(&Topology::resolve(config));
    let [order_feed, stock_feed, inventory, allocate] = job_specs(config)?;
    let mut set = tokio::task::JoinSet::new();
    macro_rules! spawn {
        ($spec:expr, $p:expr) => {{
            let mut spec = $spec;
            spec.health = health.clone();
            let (kafka, codec, token) = (config.kafka.clone(), codec.clone(), shutdown.token());
            let name = spec.name.clone();
            let p = $p;
            set.spawn(async move {
                (
                    name,
                    conveyor_stream::run(&kafka, codec, spec, p, token).await,
                )
            });
        }};
    }
    spawn!(
        order_feed,
        OrderFeed {
            topics: topics.clone()
        }
    );
    spawn!(
        stock_feed,
        StockFeed {
            topics: topics.clone()
        }
    );
    spawn!(
        inventory,
        InventoryJob {
            rules: jobs::rules(config),
            topics: topics.clone(),
        }
    );
    spawn!(
        allocate,
        AllocateJob {
            plan: jobs::plan(config),
            topics: topics.clone(),
            counts: Counts::default(),
        }
    );
    super::stream::join_jobs(set, shutdown, "allocation").await
}

//! `conveyor run allocate`: the four jobs of allocation in one process
//! (docs/allocation.md): the two stateless forwarders, the inventory job
//! (keyed by SKU, store `inventory.stock`) and the allocate job (keyed by
//! order, store `allocate.orders`). Each has its own consumer group, so
//! instances started on several machines split every job's partitions.

use std::sync::Arc;

use super::stage::RunCtx;
use conveyor_processors::allocate::jobs::{
    self, AllocateJob, Counts, InventoryJob, OrderFeed, StockFeed, Topics, ALLOCATE, INVENTORY,
    ORDER_FEED, STOCK_FEED,
};
use conveyor_runtime::config::Config;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_stream::{JobSpec, Summary};

use super::stage;

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

/// The four job specs: (order feed, stock feed, inventory, allocate).
pub fn job_specs(config: &Config) -> anyhow::Result<[JobSpec; 4]> {
    Ok([
        stage::job_spec(config, ORDER_FEED, "orders_normalized", None)?,
        stage::job_spec(config, STOCK_FEED, "inventory_events", None)?,
        stage::job_spec(
            config,
            INVENTORY,
            "commands_inventory",
            Some(("stock", "changelog_inventory_stock")),
        )?,
        stage::job_spec(
            config,
            ALLOCATE,
            "commands_allocate",
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
    stage::ensure_topics(config, TOPIC_IDS).await
}

/// Runs the four jobs until `shutdown` (or until one fails, which stops
/// them all); returns each job's totals.
pub async fn run(
    config: &Config,
    shutdown: &Shutdown,
    ctx: RunCtx,
) -> anyhow::Result<Vec<(String, Summary)>> {
    ensure_topics(config).await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let topics = Topics::resolve(&Topology::resolve(config));
    let [order_feed, stock_feed, inventory, allocate] = job_specs(config)?;
    let mut set = stage::Jobs::new();
    let feed_topics = || topics.clone();
    stage::spawn(
        &mut set,
        config,
        &codec,
        order_feed,
        OrderFeed {
            topics: feed_topics(),
        },
        &ctx,
        shutdown,
    );
    stage::spawn(
        &mut set,
        config,
        &codec,
        stock_feed,
        StockFeed {
            topics: feed_topics(),
        },
        &ctx,
        shutdown,
    );
    let inventory_job = InventoryJob {
        rules: jobs::rules(config),
        topics: topics.clone(),
    };
    stage::spawn(
        &mut set,
        config,
        &codec,
        inventory,
        inventory_job,
        &ctx,
        shutdown,
    );
    let allocate_job = AllocateJob {
        plan: jobs::plan(config),
        topics: topics.clone(),
        counts: Counts::default(),
    };
    stage::spawn(
        &mut set,
        config,
        &codec,
        allocate,
        allocate_job,
        &ctx,
        shutdown,
    );
    super::stream::join_jobs(set, shutdown, "allocation").await
}

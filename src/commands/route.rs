//! `conveyor run route`: the three jobs of routing in one process
//! (docs/routing.md): the two stateless forwarders into `route.commands`
//! and the route job (keyed by order, store `route.shipments`), which
//! plans every allocated parcel against the live catalog.

use std::sync::Arc;

use super::stage::RunCtx;
use conveyor_processors::route::jobs::{
    AllocationFeed, Counts, OrderFeed, RouteJob, Topics, ALLOCATION_FEED, ORDER_FEED, ROUTE,
};
use conveyor_processors::route::plan::Router;
use conveyor_runtime::config::Config;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_stream::{JobSpec, Summary};

use super::stage;

/// Topics the jobs read or write.
const TOPIC_IDS: &[&str] = &[
    "orders_normalized",
    "orders_allocated",
    "commands_route",
    "shipments_planned",
    "catalog_skus",
    "orders_dlq",
    "changelog_route_shipments",
];

/// The three job specs: (order feed, allocation feed, route).
pub fn job_specs(config: &Config) -> anyhow::Result<[JobSpec; 3]> {
    Ok([
        stage::job_spec(config, ORDER_FEED, "orders_normalized", None)?,
        stage::job_spec(config, ALLOCATION_FEED, "orders_allocated", None)?,
        stage::job_spec(
            config,
            ROUTE,
            "commands_route",
            Some(("shipments", "changelog_route_shipments")),
        )?,
    ])
}

/// Readiness checks of `conveyor run route`.
pub fn checks() -> Vec<String> {
    vec![
        conveyor_stream::job::state_check(ROUTE),
        "catalog".to_string(),
    ]
}

/// Creates the topics the jobs need (idempotent).
pub async fn ensure_topics(config: &Config) -> anyhow::Result<()> {
    stage::ensure_topics(config, TOPIC_IDS).await
}

/// Runs the three jobs until `shutdown` (or until one fails, which stops
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
    let feed = stage::start_catalog(config, &codec, "route", &ctx.health, shutdown).await?;
    let topics = Topics::resolve(&Topology::resolve(config));
    let [orders, allocations, route] = job_specs(config)?;
    let mut set = stage::Jobs::new();
    let order_feed = OrderFeed {
        topics: topics.clone(),
    };
    stage::spawn(&mut set, config, &codec, orders, order_feed, &ctx, shutdown);
    let allocation_feed = AllocationFeed {
        topics: topics.clone(),
    };
    stage::spawn(
        &mut set,
        config,
        &codec,
        allocations,
        allocation_feed,
        &ctx,
        shutdown,
    );
    let job = RouteJob {
        router: Router::new(config.routing.clone(), &config.warehouses),
        catalog: feed.catalog.clone(),
        topics,
        counts: Counts::default(),
    };
    stage::spawn(&mut set, config, &codec, route, job, &ctx, shutdown);
    let result = super::stream::join_jobs(set, shutdown, "route").await;
    feed.stop();
    result
}

//! `conveyor run syncback`: the sync-back job (keyed by order, store
//! `syncback.synced`): tells each labeled shipment's sales channel its
//! carrier and tracking number (Shopify fulfillment, Amazon
//! confirmShipment, TikTok Mark Package As Shipped, eBay shipping
//! fulfillment) and publishes `shipments.synced` (docs/syncback.md).

use std::sync::Arc;

use super::stage::RunCtx;
use conveyor_connectors::syncback::job::{SyncJob, SYNCBACK};
use conveyor_connectors::syncback::Channels;
use conveyor_runtime::config::Config;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_stream::{JobSpec, Summary};

use super::stage;

const TOPIC_IDS: &[&str] = &[
    "shipments_labeled",
    "shipments_synced",
    "exceptions",
    "orders_dlq",
    "changelog_syncback_synced",
];

pub fn job_spec(config: &Config) -> anyhow::Result<JobSpec> {
    stage::job_spec(
        config,
        SYNCBACK,
        "shipments_labeled",
        Some(("synced", "changelog_syncback_synced")),
    )
}

/// Readiness checks of `conveyor run syncback`.
pub fn checks() -> Vec<String> {
    vec![conveyor_stream::job::state_check(SYNCBACK)]
}

pub async fn ensure_topics(config: &Config) -> anyhow::Result<()> {
    stage::ensure_topics(config, TOPIC_IDS).await
}

/// The sync-back job over `config`'s channels.
pub fn job(config: &Config) -> anyhow::Result<SyncJob> {
    let output = stage::topic(&Topology::resolve(config), "shipments_synced")?;
    Ok(SyncJob::new(
        Arc::new(Channels::new(config)),
        output,
        stage::exception_sinks(config)?,
    ))
}

/// Runs the sync-back job until `shutdown`; returns its totals.
pub async fn run(
    config: &Config,
    shutdown: &Shutdown,
    ctx: RunCtx,
) -> anyhow::Result<Vec<(String, Summary)>> {
    ensure_topics(config).await?;
    stage::run_one(config, job_spec(config)?, job(config)?, ctx, shutdown).await
}

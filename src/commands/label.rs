//! `conveyor run label`: the label job (keyed by order, store
//! `label.labels`): buys each planned shipment's label from the label API
//! (`[label]`), renders the packing slip and the combined PDF, stores the
//! three documents and publishes `shipments.labeled` (docs/labels.md).

use std::sync::Arc;

use super::stage::RunCtx;
use anyhow::Context as _;
use conveyor_processors::label::carrier::CarrierApi;
use conveyor_processors::label::documents::DocumentStore;
use conveyor_processors::label::jobs::{LabelJob, LABEL};
use conveyor_runtime::config::Config;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_stream::{JobSpec, Summary};

use super::stage;

const TOPIC_IDS: &[&str] = &[
    "shipments_planned",
    "shipments_labeled",
    "exceptions",
    "orders_dlq",
    "changelog_label_labels",
];

pub fn job_spec(config: &Config) -> anyhow::Result<JobSpec> {
    stage::job_spec(
        config,
        LABEL,
        "shipments_planned",
        Some(("labels", "changelog_label_labels")),
    )
}

/// Readiness checks of `conveyor run label`.
pub fn checks() -> Vec<String> {
    vec![conveyor_stream::job::state_check(LABEL)]
}

pub async fn ensure_topics(config: &Config) -> anyhow::Result<()> {
    stage::ensure_topics(config, TOPIC_IDS).await
}

/// Runs the label job until `shutdown`; returns its totals.
pub async fn run(
    config: &Config,
    shutdown: &Shutdown,
    ctx: RunCtx,
) -> anyhow::Result<Vec<(String, Summary)>> {
    ensure_topics(config).await?;
    // Exported at 0 from the start, per carrier the rate cards know.
    metrics::counter!("conveyor_label_refused_total").increment(0);
    for c in &config.routing.carriers {
        metrics::counter!("conveyor_labels_bought_total", "carrier" => c.id.clone()).increment(0);
        metrics::counter!("conveyor_labels_voided_total", "carrier" => c.id.clone()).increment(0);
    }
    let api = Arc::new(CarrierApi::new(&config.label).context("label API client")?);
    let store = Arc::new(DocumentStore::open(&config.label.documents).map_err(anyhow::Error::msg)?);
    let output = stage::topic(&Topology::resolve(config), "shipments_labeled")?;
    let job = LabelJob::new(
        api,
        store,
        &config.label,
        &config.warehouses,
        output,
        stage::exception_sinks(config)?,
    );
    stage::run_one(config, job_spec(config)?, job, ctx, shutdown).await
}

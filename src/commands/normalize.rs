//! `conveyor run normalize`: one normalize job per enabled channel (each its
//! own consumer group and `versions` store), sharing one live catalog.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::stage::RunCtx;
use anyhow::Context as _;
use conveyor_processors::normalize::processor::Normalize;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Admin;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_stream::{BatchSpec, JobSpec, StoreSpec, Summary};

/// The job of one channel.
pub fn job_spec(config: &Config, channel: &str) -> anyhow::Result<JobSpec> {
    let topo = Topology::resolve(config);
    let input = topo
        .raw_topic(channel)
        .with_context(|| format!("channel `{channel}` is not enabled"))?;
    let changelog = topo
        .channel_topic("changelog_normalize_versions", channel)
        .context("the topology has no normalize changelog")?;
    let name = format!("normalize-{channel}");
    Ok(JobSpec {
        group_id: topology::group_id(config, &name),
        inputs: vec![input.to_string()],
        store: Some(StoreSpec {
            name: format!("{name}.versions"),
            changelog: changelog.to_string(),
            dir: Path::new(&config.state.dir).join(format!("{name}.versions")),
        }),
        dlq_topic: topo
            .topic_name("orders_dlq")
            .unwrap_or("orders.dlq")
            .to_string(),
        batch: BatchSpec {
            max_records: config.state.batch_max_records,
            max_wait: Duration::from_millis(config.state.batch_max_wait_ms),
        },
        health: None,
        replay: None,
        name,
    })
}

/// Readiness checks of `conveyor run normalize`.
pub fn checks(config: &Config) -> Vec<String> {
    config
        .channels
        .enabled
        .iter()
        .map(|c| conveyor_stream::job::state_check(&format!("normalize-{c}")))
        .chain(["catalog".to_string()])
        .collect()
}

/// Runs normalize for every enabled channel until `shutdown`; returns each
/// job's totals.
pub async fn run(
    config: &Config,
    shutdown: &Shutdown,
    ctx: RunCtx,
) -> anyhow::Result<Vec<(String, Summary)>> {
    let topo = Topology::resolve(config);
    let admin = Admin::new(&config.kafka)?;
    let wanted: Vec<_> = topo
        .topics
        .iter()
        .filter(|t| {
            matches!(
                t.id,
                "orders_raw"
                    | "orders_normalized"
                    | "orders_dlq"
                    | "catalog_skus"
                    | "changelog_normalize_versions"
            )
        })
        .cloned()
        .collect();
    for r in admin.ensure_topics(&wanted).await? {
        if let conveyor_runtime::kafka::TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create topic {}: {e}", r.name);
        }
    }
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let feed =
        super::stage::start_catalog(config, &codec, "normalize", &ctx.health, shutdown).await?;
    let output = topo
        .topic_name("orders_normalized")
        .unwrap_or("orders.normalized")
        .to_string();
    let mut jobs = tokio::task::JoinSet::new();
    for channel in &config.channels.enabled {
        let mut spec = job_spec(config, channel)?;
        if !ctx.apply(&mut spec) {
            continue;
        }
        let p = Normalize::new(channel, &output, feed.catalog.clone())
            .with_mapping(conveyor_processors::normalize::Mapping::from_config(config));
        let (kafka, codec, token) = (config.kafka.clone(), codec.clone(), shutdown.token());
        let name = spec.name.clone();
        jobs.spawn(async move {
            (
                name,
                conveyor_stream::run(&kafka, codec, spec, p, token).await,
            )
        });
    }
    let result = super::stream::join_jobs(jobs, shutdown, "normalize").await;
    feed.stop();
    result
}

//! `conveyor sink clickhouse [--migrate]` (also `conveyor run
//! sink-clickhouse`): the analytics sink as a service, or its DDL applied.

use std::sync::Arc;
use std::time::Duration;

use conveyor_runtime::config::Config;
use conveyor_runtime::service::Service;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_sinks::clickhouse::migrate::{self, Applied};
use conveyor_sinks::clickhouse::sink::ClickHouseWriter;
use conveyor_sinks::event::Inputs;
use conveyor_sinks::feed::{self, FeedSpec, FeedSummary};

use super::stage;

pub const CLICKHOUSE: &str = "sink-clickhouse";

/// Applies the pending ClickHouse migrations and says what it did.
pub async fn migrate_clickhouse(config: &Config) -> anyhow::Result<()> {
    let done = migrate::migrate(&config.clickhouse).await?;
    for (name, applied) in done {
        let what = match applied {
            Applied::Now => "applied",
            Applied::Already => "already applied",
        };
        println!(
            "clickhouse {}/{}: {name} {what}",
            config.clickhouse.url, config.clickhouse.database
        );
    }
    Ok(())
}

/// The feed spec of the ClickHouse sink.
pub fn clickhouse_spec(config: &Config) -> anyhow::Result<FeedSpec> {
    Ok(FeedSpec {
        name: CLICKHOUSE.into(),
        group_id: topology::group_id(config, CLICKHOUSE),
        dlq_topic: stage::topic(&Topology::resolve(config), "orders_dlq")?,
        max_records: config.clickhouse.batch_max_records,
        max_wait: Duration::from_millis(config.clickhouse.batch_max_wait_ms),
    })
}

/// Runs the ClickHouse sink until `shutdown`.
pub async fn clickhouse_feed(
    config: &Config,
    shutdown: &Shutdown,
    health: Option<conveyor_runtime::observability::Health>,
) -> anyhow::Result<FeedSummary> {
    if !wait_for_schema(config, shutdown, health.as_ref()).await? {
        return Ok(FeedSummary::default());
    }
    stage::ensure_topics(config, topology::SINK_INPUTS).await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let mut writer = ClickHouseWriter::new(&config.clickhouse);
    let summary = feed::run(
        &config.kafka,
        codec,
        &Inputs::resolve(config),
        &clickhouse_spec(config)?,
        &mut writer,
        shutdown.token(),
        health,
    )
    .await?;
    Ok(summary)
}

/// Waits until ClickHouse answers and has every migration applied
/// (a sink started before its database waits for it; pending migrations
/// stop it with the instruction). `false` when shut down first.
async fn wait_for_schema(
    config: &Config,
    shutdown: &Shutdown,
    health: Option<&conveyor_runtime::observability::Health>,
) -> anyhow::Result<bool> {
    let mut backoff = conveyor_runtime::backoff::Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(10),
    );
    let token = shutdown.token();
    loop {
        match migrate::check(&config.clickhouse).await {
            Ok(()) => return Ok(true),
            Err(e @ migrate::MigrateError::Pending { .. }) => return Err(e.into()),
            Err(e) => {
                if let Some(h) = health {
                    h.set(
                        &feed::check_name(CLICKHOUSE),
                        false,
                        format!("waiting for ClickHouse: {e}"),
                    );
                }
                tracing::warn!(error = %e, "ClickHouse unavailable; waiting");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(false),
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// `conveyor sink clickhouse`: the sink as a service with /metrics,
/// /healthz and /readyz; prints its totals when stopped.
pub async fn run_clickhouse(
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let check = feed::check_name(CLICKHOUSE);
    let service = Service::start(
        CLICKHOUSE,
        config.clone(),
        observability_bind.unwrap_or(config.http.observability_bind),
        axum::Router::new(),
        &[check.as_str()],
        Shutdown::on_signals(),
    )
    .await?;
    let result = clickhouse_feed(config, &service.shutdown, Some(service.health.clone())).await;
    service.finish().await;
    let s = result?;
    println!(
        "{CLICKHOUSE}: {}",
        serde_json::json!({
            "records": s.records,
            "rows": s.rows,
            "batches": s.batches,
            "dead_lettered": s.dead_lettered,
            "write_failures": s.write_failures,
        })
    );
    Ok(())
}

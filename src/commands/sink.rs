//! `conveyor sink clickhouse|scylla [--migrate]` (also `conveyor run
//! sink-clickhouse|sink-scylla`): the sinks as services (the Scylla sink
//! with the order status API), or their DDL applied.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_runtime::config::{Config, StoreBackend};
use conveyor_runtime::observability::Health;
use conveyor_runtime::service::Service;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_sinks::clickhouse::migrate::{self, Applied};
use conveyor_sinks::clickhouse::sink::ClickHouseWriter;
use conveyor_sinks::event::Inputs;
use conveyor_sinks::feed::{self, FeedSpec, FeedSummary, Writer};
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::writer::StoreWriter;
use conveyor_sinks::ops::OperationalStore;
use conveyor_sinks::scylla::ScyllaStore;
use std::future::IntoFuture as _;

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

/// The feed spec of `sink`, batching as configured for its store.
fn feed_spec(
    config: &Config,
    sink: &str,
    max_records: usize,
    max_wait_ms: u64,
) -> anyhow::Result<FeedSpec> {
    Ok(FeedSpec {
        name: sink.into(),
        group_id: topology::group_id(config, sink),
        dlq_topic: stage::topic(&Topology::resolve(config), "orders_dlq")?,
        max_records,
        max_wait: Duration::from_millis(max_wait_ms),
        until: None,
        progress: None,
    })
}

/// The feed spec of the ClickHouse sink.
pub fn clickhouse_spec(config: &Config) -> anyhow::Result<FeedSpec> {
    let c = &config.clickhouse;
    feed_spec(config, CLICKHOUSE, c.batch_max_records, c.batch_max_wait_ms)
}

/// Runs the topics sink `spec.name` reads through `writer` as `spec`
/// until `shutdown` (creating the topics when missing).
pub async fn run_feed<W: Writer>(
    config: &Config,
    spec: &FeedSpec,
    writer: &mut W,
    shutdown: tokio_util::sync::CancellationToken,
    health: Option<Health>,
) -> anyhow::Result<FeedSummary> {
    let reads = topology::sink_reads(&spec.name);
    stage::ensure_topics(config, reads).await?;
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let inputs = Inputs::resolve(config, reads);
    Ok(feed::run(
        &config.kafka,
        codec,
        &inputs,
        spec,
        writer,
        shutdown,
        health,
    )
    .await?)
}

/// Runs the ClickHouse sink until `shutdown`.
pub async fn clickhouse_feed(
    config: &Config,
    shutdown: &Shutdown,
    health: Option<Health>,
) -> anyhow::Result<FeedSummary> {
    if !wait_for_schema(config, shutdown, health.as_ref()).await? {
        return Ok(FeedSummary::default());
    }
    let mut writer = ClickHouseWriter::new(&config.clickhouse);
    run_feed(
        config,
        &clickhouse_spec(config)?,
        &mut writer,
        shutdown.token(),
        health,
    )
    .await
}

/// Waits until ClickHouse answers and has every migration applied
/// (a sink started before its database waits for it; pending migrations
/// stop it with the instruction). `false` when shut down first.
async fn wait_for_schema(
    config: &Config,
    shutdown: &Shutdown,
    health: Option<&Health>,
) -> anyhow::Result<bool> {
    let ready = wait_for(CLICKHOUSE, "ClickHouse", health, shutdown, || async {
        match migrate::check(&config.clickhouse).await {
            Ok(()) => Ok(()),
            Err(e @ migrate::MigrateError::Pending { .. }) => Err(Wait::Fatal(e.into())),
            Err(e) => Err(Wait::Again(e.to_string())),
        }
    })
    .await?;
    Ok(ready.is_some())
}

/// `conveyor sink clickhouse`: the sink as a service with /metrics,
/// /healthz and /readyz; prints its totals when stopped.
pub async fn run_clickhouse(
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    as_service(
        CLICKHOUSE,
        config,
        observability_bind,
        |shutdown, health| async move { clickhouse_feed(config, &shutdown, Some(health)).await },
    )
    .await
}

/// Runs `run` as sink `sink`'s service (/metrics, /healthz, /readyz with
/// its readiness check, signals to shutdown) and prints its totals.
async fn as_service<F, Fut>(
    sink: &'static str,
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Shutdown, Health) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<FeedSummary>>,
{
    let check = feed::check_name(sink);
    let service = Service::start(
        sink,
        config.clone(),
        observability_bind.unwrap_or(config.http.observability_bind),
        axum::Router::new(),
        &[check.as_str()],
        Shutdown::on_signals(),
    )
    .await?;
    let result = run(service.shutdown.clone(), service.health.clone()).await;
    service.finish().await;
    print_summary(sink, &result?);
    Ok(())
}

pub const SCYLLA: &str = "sink-scylla";

/// `conveyor sink scylla --migrate`: the keyspace and tables (Scylla), or
/// the store file (embedded, which needs no DDL).
pub async fn migrate_scylla(config: &Config) -> anyhow::Result<()> {
    match config.store.backend {
        StoreBackend::Embedded => {
            let path = std::path::Path::new(&config.store.path);
            EmbeddedStore::open(path)?;
            println!(
                "embedded operational store ready at {} (store.backend = \"embedded\" needs no DDL; set it to \"scylla\" to migrate a cluster)",
                path.display()
            );
        }
        StoreBackend::Scylla => {
            for (name, now) in conveyor_sinks::scylla::migrate(&config.scylla).await? {
                println!(
                    "scylla {}/{}: {name} {}",
                    config.scylla.nodes.join(","),
                    config.scylla.keyspace,
                    if now { "applied" } else { "already applied" }
                );
            }
        }
    }
    Ok(())
}

/// The feed spec of the operational sink.
pub fn scylla_spec(config: &Config) -> anyhow::Result<FeedSpec> {
    let c = &config.store;
    feed_spec(config, SCYLLA, c.batch_max_records, c.batch_max_wait_ms)
}

/// `conveyor sink scylla` (also `conveyor run sink-scylla`): the
/// operational sink on the configured store, and the order status API
/// on `api_bind` (default `http.status_api_bind`) served from it.
pub async fn run_scylla(
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    as_service(
        SCYLLA,
        config,
        observability_bind,
        |shutdown, health| async move {
            match config.store.backend {
                StoreBackend::Embedded => {
                    let store = EmbeddedStore::open(std::path::Path::new(&config.store.path))?;
                    serve_store(config, Arc::new(store), &shutdown, health).await
                }
                StoreBackend::Scylla => match connect_scylla(config, &shutdown, &health).await? {
                    Some(store) => serve_store(config, Arc::new(store), &shutdown, health).await,
                    None => Ok(FeedSummary::default()),
                },
            }
        },
    )
    .await
}

/// A sink's totals, one JSON line (`<sink>: {...}`) as the stages print theirs.
fn print_summary(sink: &str, s: &FeedSummary) {
    println!(
        "{sink}: {}",
        serde_json::json!({
            "records": s.records,
            "rows": s.rows,
            "batches": s.batches,
            "dead_lettered": s.dead_lettered,
            "write_failures": s.write_failures,
        })
    );
}

/// Calls `attempt` until it succeeds, backing off and reporting the
/// sink's readiness check as not ready with the reason; `Ok(None)` when
/// shut down first. An `Err(Fatal)` ends the wait at once.
async fn wait_for<T, F, Fut>(
    sink: &str,
    what: &str,
    health: Option<&Health>,
    shutdown: &Shutdown,
    mut attempt: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Wait>>,
{
    let token = shutdown.token();
    let mut backoff = conveyor_runtime::backoff::Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(15),
    );
    loop {
        match attempt().await {
            Ok(v) => return Ok(Some(v)),
            Err(Wait::Fatal(e)) => return Err(e),
            Err(Wait::Again(e)) => {
                if let Some(h) = health {
                    h.set(
                        &feed::check_name(sink),
                        false,
                        format!("waiting for {what}: {e}"),
                    );
                }
                tracing::warn!(sink, error = %e, "{what} unavailable; waiting");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(None),
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

enum Wait {
    /// May pass: retry.
    Again(String),
    /// Will not pass by waiting (e.g. migrations missing).
    Fatal(anyhow::Error),
}

/// Connects to the Scylla keyspace, waiting for the cluster; `None` when
/// shut down first.
async fn connect_scylla(
    config: &Config,
    shutdown: &Shutdown,
    health: &Health,
) -> anyhow::Result<Option<ScyllaStore>> {
    wait_for(SCYLLA, "Scylla", Some(health), shutdown, || async {
        ScyllaStore::connect(&config.scylla)
            .await
            .map_err(|e| Wait::Again(e.to_string()))
    })
    .await
}

/// Runs the operational sink into `store` and serves the status API from
/// it until shutdown.
async fn serve_store<S: OperationalStore>(
    config: &Config,
    store: Arc<S>,
    shutdown: &Shutdown,
    health: Health,
) -> anyhow::Result<FeedSummary> {
    let bind = config.http.status_api_bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen for the status API on {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %store.describe(), "order status API: GET /orders/{{id}}, /orders, /search, /inventory/{{sku}}, /inventory, /tracking/{{number}}, /exceptions, /exceptions/{{id}}, /actions, /alerts");
    let stop = shutdown.token();
    let api = tokio::spawn(
        axum::serve(listener, conveyor_sinks::status_api::router(store.clone()))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .into_future(),
    );
    let mut writer = StoreWriter::new(store);
    let summary = run_feed(
        config,
        &scylla_spec(config)?,
        &mut writer,
        shutdown.token(),
        Some(health),
    )
    .await;
    shutdown.trigger();
    let _ = api.await;
    summary
}

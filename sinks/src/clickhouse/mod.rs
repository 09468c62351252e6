//! The ClickHouse sink: analytics facts (deploy/clickhouse), written by
//! [`sink::ClickHouseWriter`] from the sink feed, schema applied by
//! [`migrate`]. docs/analytics.md is the analysts' side.
//!
//! Every client sets `async_insert=0`, so an insert returns only once the
//! rows are written (some servers, e.g. chdb's, default to async inserts,
//! which would acknowledge rows before they are durable).

pub mod migrate;
pub mod queries;
pub mod rows;
pub mod sink;

use clickhouse::Client;
use conveyor_runtime::config::ClickHouseConfig;

pub use clickhouse::Row;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse at {url}: {source}")]
    Query {
        url: String,
        #[source]
        source: clickhouse::error::Error,
    },
}

/// A client bound to no database (for DDL such as `CREATE DATABASE`).
pub fn server_client(cfg: &ClickHouseConfig) -> Client {
    let mut c = Client::default()
        .with_url(&cfg.url)
        .with_user(&cfg.user)
        .with_setting("async_insert", "0");
    if !cfg.password.is_empty() {
        c = c.with_password(cfg.password.expose());
    }
    c
}

/// A client for conveyor's database.
pub fn client(cfg: &ClickHouseConfig) -> Client {
    server_client(cfg).with_database(&cfg.database)
}

/// Creates the database when missing and returns the server version.
pub async fn ensure_database(cfg: &ClickHouseConfig) -> Result<String, ClickHouseError> {
    let err = |source| ClickHouseError::Query {
        url: cfg.url.clone(),
        source,
    };
    let server = server_client(cfg);
    // The database name is validated as an identifier by the config.
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS `{}`", cfg.database))
        .execute()
        .await
        .map_err(err)?;
    server
        .query("SELECT version()")
        .fetch_one::<String>()
        .await
        .map_err(err)
}

/// The fact tables of deploy/clickhouse/001_facts.sql.
pub const FACT_TABLES: &[&str] = &[
    "orders",
    "allocations",
    "shipment_plans",
    "labels",
    "syncs",
    "inventory_movements",
    "inventory_events",
    "inventory_alerts",
    "dlq",
    "exceptions",
];

/// The refreshable materialized views of deploy/clickhouse/002_views.sql.
pub const MATERIALIZED_VIEWS: &[&str] = &[
    "channel_hourly",
    "shipping_cost_daily",
    "fulfillment_daily",
    "label_latency_daily",
    "sku_daily",
];

/// Empties every fact table (a rebuild from the topics); the schema and
/// its migrations stay.
pub async fn truncate_facts(cfg: &ClickHouseConfig) -> Result<(), ClickHouseError> {
    let c = client(cfg);
    for t in FACT_TABLES {
        c.query(&format!("TRUNCATE TABLE IF EXISTS {t}"))
            .execute()
            .await
            .map_err(|source| ClickHouseError::Query {
                url: cfg.url.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Refreshes every materialized view now and waits for the refreshes
/// (they otherwise refresh every minute): for tests, the demo and an
/// analyst who wants the last minute too.
pub async fn refresh_views(cfg: &ClickHouseConfig) -> Result<(), ClickHouseError> {
    let c = client(cfg);
    let err = |source| ClickHouseError::Query {
        url: cfg.url.clone(),
        source,
    };
    for v in MATERIALIZED_VIEWS {
        c.query(&format!("SYSTEM REFRESH VIEW {v}"))
            .execute()
            .await
            .map_err(err)?;
    }
    for v in MATERIALIZED_VIEWS {
        c.query(&format!("SYSTEM WAIT VIEW {v}"))
            .execute()
            .await
            .map_err(err)?;
    }
    Ok(())
}

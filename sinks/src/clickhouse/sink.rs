//! The ClickHouse sink's writer: one batch of sink records becomes one
//! insert per fact table (RowBinary, lz4, synchronous: `async_insert=0`).
//!
//! A batch is durable when every insert has returned. A failure part-way
//! leaves some tables written; the feed retries the whole batch and the
//! ReplacingMergeTree keys absorb the rows written twice (see
//! deploy/clickhouse/001_facts.sql), so nothing is lost or counted twice.

use std::time::Duration;

use clickhouse::{Client, Row};
use conveyor_runtime::config::ClickHouseConfig;
use serde::Serialize;

use super::rows::Tables;
use crate::event::Located;
use crate::feed::{WriteError, Writer};

pub struct ClickHouseWriter {
    client: Client,
    url: String,
}

impl ClickHouseWriter {
    pub fn new(cfg: &ClickHouseConfig) -> Self {
        Self {
            client: super::client(cfg),
            url: cfg.url.clone(),
        }
    }

    /// Inserts every table's rows of `t`, the tables concurrently (one
    /// HTTP insert each: ClickHouse parses and writes them in parallel).
    pub async fn insert_tables(&self, t: &Tables) -> Result<(), WriteError> {
        futures::try_join!(
            self.insert("orders", &t.orders),
            self.insert("allocations", &t.allocations),
            self.insert("shipment_plans", &t.shipment_plans),
            self.insert("labels", &t.labels),
            self.insert("syncs", &t.syncs),
            self.insert("inventory_movements", &t.inventory_movements),
            self.insert("inventory_events", &t.inventory_events),
            self.insert("inventory_alerts", &t.inventory_alerts),
            self.insert("dlq", &t.dlq),
            self.insert("exceptions", &t.exceptions),
        )
        .map(|_| ())
    }

    async fn insert<R>(&self, table: &str, rows: &[R]) -> Result<(), WriteError>
    where
        R: Row + Serialize + for<'a> Row<Value<'a> = R>,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let err = |e: clickhouse::error::Error| {
            WriteError(format!("insert into {table} at {}: {e}", self.url))
        };
        let mut insert = self
            .client
            .insert::<R>(table)
            .await
            .map_err(err)?
            .with_timeouts(
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(120)),
            );
        for r in rows {
            insert.write(r).await.map_err(err)?;
        }
        insert.end().await.map_err(err)
    }
}

impl Writer for ClickHouseWriter {
    async fn write(&mut self, batch: &[Located]) -> Result<u64, WriteError> {
        let t = Tables::from_events(batch);
        self.insert_tables(&t).await?;
        Ok(t.rows())
    }
}

//! The operational store on ScyllaDB (or Apache Cassandra 4): the tables
//! of deploy/scylla, written and read with the `scylla` driver.
//!
//! Every statement is prepared once (so the driver routes it token-aware
//! to a replica of its partition) and idempotent (retried by the driver's
//! policy on timeouts). A batch's statements run concurrently, at most
//! `scylla.concurrency` in flight. Writes carry `USING TIMESTAMP` =
//! the mutation's version (see [`crate::ops::model`]): the cluster keeps
//! the newest version of each cell whatever order writes arrive in, which
//! is what makes concurrent, redelivered and replayed writes safe without
//! lightweight transactions. Row sets replaced whole (lines,
//! reservations) are deleted at `version - 1` and rewritten at `version`.
//!
//! Since writes never read, search index entries an edit leaves behind
//! (an order's old email, number or SKUs) stay in their tables;
//! [`OperationalStore::find_orders`] checks each entry it reads against
//! the order's current row and skips those that no longer match.

use std::collections::HashMap;
use std::str::FromStr;

use conveyor_runtime::config::ScyllaConfig;
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlDecimal, CqlTimestamp, CqlValue, Row};
use sha2::{Digest, Sha256};

use crate::ops::model::{
    line_skus, ActionRow, AlertRow, ExceptionRow, ExceptionState, HistoryEntry, LabelCells,
    LevelRow, LineRow, MovementRow, Mutation, OrderDetails, PlanCells, ReservationRow, SearchField,
    SyncCells, TrackingRow, RECOVERED,
};
use crate::ops::{IndexEntry, OperationalStore, OrderRecord, ShipmentRecord, StoreError};

/// The CQL migrations, applied in order.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "001_tables.cql",
        include_str!("../../deploy/scylla/001_tables.cql"),
    ),
    (
        2,
        "002_console.cql",
        include_str!("../../deploy/scylla/002_console.cql"),
    ),
];

/// The table and column of `ALTER TABLE <table> ADD <column> <type>` (one
/// column), which the migration runner skips when the column exists:
/// Cassandra 4 has no `ADD IF NOT EXISTS`.
fn added_column(stmt: &str) -> Option<(String, String)> {
    let words: Vec<&str> = stmt.split_whitespace().collect();
    match words.as_slice() {
        [alter, table_kw, table, add, column, _ty]
            if alter.eq_ignore_ascii_case("ALTER")
                && table_kw.eq_ignore_ascii_case("TABLE")
                && add.eq_ignore_ascii_case("ADD") =>
        {
            Some((table.to_lowercase(), column.to_lowercase()))
        }
        _ => None,
    }
}

/// The bucket of a SKU in `levels_by_bucket`: its first two characters
/// (a prefix, so bucket order is SKU order).
fn level_bucket(sku: &str) -> String {
    sku.chars().take(2).collect()
}

/// Search index entries one [`OperationalStore::find_orders`] checks at
/// most (a key whose entries are mostly stale answers short).
const MAX_SEARCH_CANDIDATES: usize = 2_000;

type V = Option<CqlValue>;

fn text(s: &str) -> V {
    Some(CqlValue::Text(s.to_string()))
}
fn opt_text(s: &Option<String>) -> V {
    s.as_ref().map(|s| CqlValue::Text(s.clone()))
}
fn int(i: i32) -> V {
    Some(CqlValue::Int(i))
}
fn big(i: i64) -> V {
    Some(CqlValue::BigInt(i))
}
fn ts(ms: i64) -> V {
    Some(CqlValue::Timestamp(CqlTimestamp(ms)))
}
fn opt_ts(ms: Option<i64>) -> V {
    ms.map(|m| CqlValue::Timestamp(CqlTimestamp(m)))
}

/// An exact decimal string as a CQL `decimal` (null if it does not parse,
/// which the model never produces).
fn decimal(s: &str) -> V {
    let d = Decimal::from_str(s).ok()?;
    let m = d.mantissa().to_be_bytes();
    // Shortest two's-complement big-endian form.
    let mut start = 0;
    while start < m.len() - 1
        && ((m[start] == 0 && m[start + 1] & 0x80 == 0)
            || (m[start] == 0xff && m[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    Some(CqlValue::Decimal(
        CqlDecimal::from_signed_be_bytes_slice_and_exponent(&m[start..], d.scale() as i32),
    ))
}

fn decimal_text(v: &Option<CqlValue>) -> String {
    let Some(CqlValue::Decimal(d)) = v else {
        return String::new();
    };
    let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
    if bytes.len() > 16 || !(0..=28).contains(&scale) {
        return String::new();
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Decimal::try_from_i128_with_scale(i128::from_be_bytes(buf), scale as u32)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn col_text(r: &Row, i: usize) -> String {
    r.columns
        .get(i)
        .and_then(|c| c.as_ref())
        .and_then(|c| c.as_text().cloned())
        .unwrap_or_default()
}
fn col_opt_text(r: &Row, i: usize) -> Option<String> {
    r.columns
        .get(i)
        .and_then(|c| c.as_ref())
        .and_then(|c| c.as_text().cloned())
}
fn col_int(r: &Row, i: usize) -> i32 {
    r.columns
        .get(i)
        .and_then(|c| c.as_ref())
        .and_then(CqlValue::as_int)
        .unwrap_or_default()
}
fn col_big(r: &Row, i: usize) -> i64 {
    r.columns
        .get(i)
        .and_then(|c| c.as_ref())
        .and_then(CqlValue::as_bigint)
        .unwrap_or_default()
}
fn col_opt_ts(r: &Row, i: usize) -> Option<i64> {
    r.columns
        .get(i)
        .and_then(|c| c.as_ref())
        .and_then(CqlValue::as_cql_timestamp)
        .map(|t| t.0)
}
fn col_ts(r: &Row, i: usize) -> i64 {
    col_opt_ts(r, i).unwrap_or_default()
}
fn col_dec(r: &Row, i: usize) -> String {
    decimal_text(r.columns.get(i).unwrap_or(&None))
}

const HOUR_MS: i64 = 3_600_000;

struct Prepared {
    order_details: PreparedStatement,
    order_status: PreparedStatement,
    order_index: PreparedStatement,
    order_hour: PreparedStatement,
    lines_delete: PreparedStatement,
    line_insert: PreparedStatement,
    history_insert: PreparedStatement,
    reservations_delete: PreparedStatement,
    reservation_insert: PreparedStatement,
    plan: PreparedStatement,
    label: PreparedStatement,
    sync: PreparedStatement,
    tracking: PreparedStatement,
    level: PreparedStatement,
    movement: PreparedStatement,
    exception: PreparedStatement,
    exception_by_id: PreparedStatement,
    exception_state: PreparedStatement,
    action: PreparedStatement,
    alert: PreparedStatement,
    alert_active: PreparedStatement,
    alert_recovered: PreparedStatement,
    level_by_bucket: PreparedStatement,
    level_bucket: PreparedStatement,
    by_number: PreparedStatement,
    by_email: PreparedStatement,
    by_sku: PreparedStatement,
    get_order: PreparedStatement,
    get_lines: PreparedStatement,
    get_history: PreparedStatement,
    get_shipments: PreparedStatement,
    get_reservations: PreparedStatement,
    get_tracking: PreparedStatement,
    get_hours: PreparedStatement,
    get_hour: PreparedStatement,
    get_levels: PreparedStatement,
    get_movements: PreparedStatement,
    get_exceptions: PreparedStatement,
    get_exception: PreparedStatement,
    get_exception_state: PreparedStatement,
    get_actions: PreparedStatement,
    get_alerts: PreparedStatement,
    get_sku_alerts: PreparedStatement,
    get_level_buckets: PreparedStatement,
    get_bucket_levels: PreparedStatement,
    find_by_number: PreparedStatement,
    find_by_email: PreparedStatement,
    find_by_sku: PreparedStatement,
}

pub struct ScyllaStore {
    session: Session,
    p: Prepared,
    nodes: String,
    concurrency: usize,
}

fn err(nodes: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("scylla {nodes}"), e)
}

/// A session to the cluster (no keyspace).
pub async fn connect(cfg: &ScyllaConfig) -> Result<Session, StoreError> {
    let nodes = cfg.nodes.join(",");
    let mut b = SessionBuilder::new()
        .known_nodes(&cfg.nodes)
        .connection_timeout(std::time::Duration::from_secs(5));
    if !cfg.user.is_empty() {
        b = b.user(cfg.user.clone(), cfg.password.expose().to_string());
    }
    if cfg.tls {
        let tls = tls_context(cfg).map_err(|e| err(&nodes, e))?;
        b = b.tls_context(Some(scylla::client::session::TlsContext::OpenSsl010Config(
            tls,
        )));
    }
    b.build().await.map_err(|e| err(&nodes, e))
}

/// TLS for `scylla.tls`: OpenSSL's connector defaults (peer verification
/// on, safe protocol versions and ciphers), trusting `ca_file` when set,
/// else the system store. The driver checks each node's certificate against
/// the node's IP address: node certificates need IP subject alternative
/// names (docs/config.md).
fn tls_context(cfg: &ScyllaConfig) -> Result<scylla::client::session::OpenSsl010Config, String> {
    use openssl::ssl::{SslConnector, SslMethod};
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    if !cfg.ca_file.is_empty() {
        b.set_ca_file(&cfg.ca_file)
            .map_err(|e| format!("scylla.ca_file {}: {e}", cfg.ca_file))?;
    }
    Ok(scylla::client::session::OpenSsl010Config::new(b))
}

/// The tables the migrations create (`CREATE TABLE IF NOT EXISTS <name>`).
pub fn tables() -> Vec<&'static str> {
    MIGRATIONS
        .iter()
        .flat_map(|(_, _, cql)| cql.split("CREATE TABLE IF NOT EXISTS ").skip(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|t| t.trim_end_matches('('))
        .collect()
}

/// Empties every table of the keyspace (a rebuild from the topics); the
/// schema and its migrations stay.
pub async fn truncate(cfg: &ScyllaConfig) -> Result<(), StoreError> {
    let nodes = cfg.nodes.join(",");
    let session = connect(cfg).await?;
    for t in tables() {
        session
            .query_unpaged(format!("TRUNCATE {}.{t}", cfg.keyspace), &[])
            .await
            .map_err(|x| err(&nodes, x))?;
    }
    Ok(())
}

/// Creates the keyspace and applies the pending migrations; returns each
/// migration's name and whether it was applied now.
pub async fn migrate(cfg: &ScyllaConfig) -> Result<Vec<(&'static str, bool)>, StoreError> {
    let nodes = cfg.nodes.join(",");
    let e = |x: &dyn std::fmt::Display| err(&nodes, x);
    let session = connect(cfg).await?;
    // The keyspace name is validated as an identifier by the config.
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'NetworkTopologyStrategy', 'replication_factor': {}}}",
                cfg.keyspace, cfg.replication_factor
            ),
            &[],
        )
        .await
        .map_err(|x| e(&x))?;
    session
        .use_keyspace(&cfg.keyspace, false)
        .await
        .map_err(|x| e(&x))?;
    session
        .query_unpaged(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text, checksum text, applied_at timestamp)",
            &[],
        )
        .await
        .map_err(|x| e(&x))?;
    session.await_schema_agreement().await.map_err(|x| e(&x))?;
    let mut out = Vec::new();
    let keyspace = cfg.keyspace.to_lowercase();
    for (version, name, cql) in MIGRATIONS {
        let sum: String = Sha256::digest(cql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let have = session
            .query_unpaged(
                "SELECT checksum FROM schema_migrations WHERE version = ?",
                (*version,),
            )
            .await
            .map_err(|x| e(&x))?
            .into_rows_result()
            .map_err(|x| e(&x))?
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|x| e(&x))?;
        if let Some((Some(was),)) = have {
            if was != sum {
                return Err(e(&format!(
                    "migration {name} changed after it was applied (checksum {was}, now {sum}): add a new migration file instead"
                )));
            }
            out.push((*name, false));
            continue;
        }
        for stmt in crate::clickhouse::migrate::statements(cql) {
            if let Some((table, column)) = added_column(&stmt) {
                let exists = session
                    .query_unpaged(
                        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
                        (&keyspace, &table, &column),
                    )
                    .await
                    .map_err(|x| e(&x))?
                    .into_rows_result()
                    .map_err(|x| e(&x))?
                    .rows_num()
                    > 0;
                if exists {
                    continue;
                }
            }
            session.query_unpaged(stmt, &[]).await.map_err(|x| e(&x))?;
        }
        session.await_schema_agreement().await.map_err(|x| e(&x))?;
        session
            .query_unpaged(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, toTimestamp(now()))",
                (*version, *name, sum),
            )
            .await
            .map_err(|x| e(&x))?;
        out.push((*name, true));
    }
    Ok(out)
}

impl ScyllaStore {
    /// Connects to the keyspace (migrated beforehand) and prepares every
    /// statement.
    pub async fn connect(cfg: &ScyllaConfig) -> Result<Self, StoreError> {
        let nodes = cfg.nodes.join(",");
        let session = connect(cfg).await?;
        session
            .use_keyspace(&cfg.keyspace, false)
            .await
            .map_err(|e| {
                err(
                    &nodes,
                    format!("{e} (run `conveyor sink scylla --migrate` first)"),
                )
            })?;
        let prep = |cql: &'static str| {
            let s = &session;
            let nodes = nodes.clone();
            async move {
                let mut p = s
                    .prepare(cql)
                    .await
                    .map_err(|e| err(&nodes, format!("{e}: {cql}")))?;
                p.set_is_idempotent(true);
                Ok::<_, StoreError>(p)
            }
        };
        let p = Prepared {
            order_details: prep("UPDATE orders USING TIMESTAMP ? SET channel = ?, external_id = ?, external_number = ?, customer_name = ?, customer_email = ?, currency = ?, subtotal = ?, shipping = ?, tax = ?, total = ?, priority = ?, channel_status = ?, ship_city = ?, ship_region = ?, ship_postal_code = ?, ship_country = ?, created_at = ?, updated_at = ? WHERE order_id = ?").await?,
            order_status: prep("UPDATE orders USING TIMESTAMP ? SET status = ?, status_at = ? WHERE order_id = ?").await?,
            order_index: prep("INSERT INTO orders_by_hour (hour, created_at, order_id, channel) VALUES (?, ?, ?, ?)").await?,
            order_hour: prep("INSERT INTO order_hours (shard, hour) VALUES (0, ?)").await?,
            lines_delete: prep("DELETE FROM order_lines USING TIMESTAMP ? WHERE order_id = ?").await?,
            line_insert: prep("INSERT INTO order_lines (order_id, line_id, sku, name, quantity, unit_price, total) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?").await?,
            history_insert: prep("INSERT INTO order_history (order_id, at, event_id, stage, status, detail) VALUES (?, ?, ?, ?, ?, ?)").await?,
            reservations_delete: prep("DELETE FROM reservations USING TIMESTAMP ? WHERE order_id = ?").await?,
            reservation_insert: prep("INSERT INTO reservations (order_id, sku, warehouse_id, quantity) VALUES (?, ?, ?, ?) USING TIMESTAMP ?").await?,
            plan: prep("UPDATE shipments_by_order USING TIMESTAMP ? SET warehouse_id = ?, carrier = ?, service = ?, rate = ?, currency = ?, zone = ?, plan_status = ?, estimated_delivery = ?, planned_at = ? WHERE order_id = ? AND shipment_id = ?").await?,
            label: prep("UPDATE shipments_by_order USING TIMESTAMP ? SET tracking_number = ?, tracking_url = ?, label_cost = ?, label_status = ?, label_uri = ?, packing_slip_uri = ?, labeled_at = ? WHERE order_id = ? AND shipment_id = ?").await?,
            sync: prep("UPDATE shipments_by_order USING TIMESTAMP ? SET sync_outcome = ?, channel_reference = ?, synced_at = ? WHERE order_id = ? AND shipment_id = ?").await?,
            tracking: prep("UPDATE shipments_by_tracking USING TIMESTAMP ? SET order_id = ?, shipment_id = ?, carrier = ?, service = ?, label_status = ?, labeled_at = ? WHERE tracking_number = ?").await?,
            level: prep("UPDATE inventory_levels USING TIMESTAMP ? SET on_hand = ?, reserved = ?, held = ?, available = ?, seq = ?, as_of = ? WHERE sku = ? AND warehouse_id = ?").await?,
            movement: prep("INSERT INTO inventory_movements (sku, seq, event_id, warehouse_id, kind, quantity, order_id, available, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").await?,
            exception: prep("INSERT INTO exceptions_by_day (day, raised_at, exception_id, order_id, shipment_id, stage, code, reason, action, source_topic, source_partition, source_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?").await?,
            exception_by_id: prep("UPDATE exceptions_by_id USING TIMESTAMP ? SET day = ?, raised_at = ?, order_id = ?, shipment_id = ?, stage = ?, code = ?, reason = ?, action = ?, source_topic = ?, source_partition = ?, source_offset = ? WHERE exception_id = ?").await?,
            exception_state: prep("UPDATE exception_states USING TIMESTAMP ? SET state = ?, actor = ?, at = ?, reason = ?, action_id = ? WHERE exception_id = ?").await?,
            action: prep("INSERT INTO actions_by_day (day, at, action_id, exception_id, order_id, shipment_id, kind, actor, role, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").await?,
            alert: prep("UPDATE alerts_by_sku USING TIMESTAMP ? SET kind = ?, available = ?, reorder_point = ?, occurred_at = ? WHERE sku = ? AND warehouse_id = ?").await?,
            alert_active: prep("INSERT INTO alerts_active (shard, sku, warehouse_id, kind, available, reorder_point, occurred_at) VALUES (0, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?").await?,
            alert_recovered: prep("DELETE FROM alerts_active USING TIMESTAMP ? WHERE shard = 0 AND sku = ? AND warehouse_id = ?").await?,
            level_by_bucket: prep("UPDATE levels_by_bucket USING TIMESTAMP ? SET on_hand = ?, reserved = ?, held = ?, available = ?, seq = ?, as_of = ? WHERE bucket = ? AND sku = ? AND warehouse_id = ?").await?,
            level_bucket: prep("INSERT INTO level_buckets (shard, bucket) VALUES (0, ?)").await?,
            by_number: prep("INSERT INTO orders_by_number (number, created_at, order_id) VALUES (?, ?, ?)").await?,
            by_email: prep("INSERT INTO orders_by_email (email, created_at, order_id) VALUES (?, ?, ?)").await?,
            by_sku: prep("INSERT INTO orders_by_sku (sku, version, order_id) VALUES (?, ?, ?)").await?,
            get_order: prep("SELECT channel, external_id, external_number, customer_name, customer_email, currency, subtotal, shipping, tax, total, priority, channel_status, ship_city, ship_region, ship_postal_code, ship_country, created_at, updated_at, status, status_at FROM orders WHERE order_id = ?").await?,
            get_lines: prep("SELECT line_id, sku, name, quantity, unit_price, total FROM order_lines WHERE order_id = ?").await?,
            get_history: prep("SELECT at, event_id, stage, status, detail FROM order_history WHERE order_id = ?").await?,
            get_shipments: prep("SELECT shipment_id, warehouse_id, carrier, service, rate, currency, zone, plan_status, estimated_delivery, planned_at, tracking_number, tracking_url, label_cost, label_status, label_uri, packing_slip_uri, labeled_at, sync_outcome, channel_reference, synced_at FROM shipments_by_order WHERE order_id = ?").await?,
            get_reservations: prep("SELECT sku, warehouse_id, quantity FROM reservations WHERE order_id = ?").await?,
            get_tracking: prep("SELECT order_id, shipment_id, carrier, service, label_status, labeled_at FROM shipments_by_tracking WHERE tracking_number = ?").await?,
            get_hours: prep("SELECT hour FROM order_hours WHERE shard = 0 AND hour >= ?").await?,
            get_hour: prep("SELECT created_at, order_id, channel FROM orders_by_hour WHERE hour = ? AND created_at >= ?").await?,
            get_levels: prep("SELECT warehouse_id, on_hand, reserved, held, available, seq, as_of FROM inventory_levels WHERE sku = ?").await?,
            get_movements: prep("SELECT seq, event_id, warehouse_id, kind, quantity, order_id, available, occurred_at FROM inventory_movements WHERE sku = ? LIMIT ?").await?,
            get_exceptions: prep("SELECT raised_at, exception_id, order_id, shipment_id, stage, code, reason, action, source_topic, source_partition, source_offset, day FROM exceptions_by_day WHERE day = ?").await?,
            get_exception: prep("SELECT raised_at, exception_id, order_id, shipment_id, stage, code, reason, action, source_topic, source_partition, source_offset, day FROM exceptions_by_id WHERE exception_id = ?").await?,
            get_exception_state: prep("SELECT state, actor, at, reason, action_id FROM exception_states WHERE exception_id = ?").await?,
            get_actions: prep("SELECT day, at, action_id, exception_id, order_id, shipment_id, kind, actor, role, reason, detail FROM actions_by_day WHERE day = ?").await?,
            get_alerts: prep("SELECT sku, warehouse_id, kind, available, reorder_point, occurred_at FROM alerts_active WHERE shard = 0 LIMIT ?").await?,
            get_sku_alerts: prep("SELECT sku, warehouse_id, kind, available, reorder_point, occurred_at FROM alerts_by_sku WHERE sku = ?").await?,
            get_level_buckets: prep("SELECT bucket FROM level_buckets WHERE shard = 0 AND bucket >= ?").await?,
            get_bucket_levels: prep("SELECT sku, warehouse_id, on_hand, reserved, held, available, seq, as_of FROM levels_by_bucket WHERE bucket = ? AND sku > ?").await?,
            find_by_number: prep("SELECT created_at, order_id FROM orders_by_number WHERE number = ?").await?,
            find_by_email: prep("SELECT created_at, order_id FROM orders_by_email WHERE email = ?").await?,
            find_by_sku: prep("SELECT version, order_id FROM orders_by_sku WHERE sku = ?").await?,
        };
        Ok(Self {
            session,
            p,
            nodes,
            concurrency: cfg.concurrency.max(1),
        })
    }

    fn statements(&self, m: Mutation) -> Vec<(&PreparedStatement, Vec<V>)> {
        let p = &self.p;
        match m {
            Mutation::OrderDetails {
                details: d,
                version,
            } => {
                let number = d.search_key(SearchField::Number);
                let email = d.search_key(SearchField::Email);
                let OrderDetails {
                    order_id,
                    channel,
                    external_id,
                    external_number,
                    customer_name,
                    customer_email,
                    currency,
                    subtotal,
                    shipping,
                    tax,
                    total,
                    priority,
                    channel_status,
                    ship_city,
                    ship_region,
                    ship_postal_code,
                    ship_country,
                    created_at,
                    updated_at,
                } = d;
                let hour = created_at.div_euclid(HOUR_MS) * HOUR_MS;
                let mut out = vec![
                    (
                        &p.order_details,
                        vec![
                            big(version),
                            text(&channel),
                            text(&external_id),
                            opt_text(&external_number),
                            text(&customer_name),
                            opt_text(&customer_email),
                            text(&currency),
                            decimal(&subtotal),
                            decimal(&shipping),
                            decimal(&tax),
                            decimal(&total),
                            text(&priority),
                            text(&channel_status),
                            text(&ship_city),
                            opt_text(&ship_region),
                            text(&ship_postal_code),
                            text(&ship_country),
                            ts(created_at),
                            ts(updated_at),
                            text(&order_id),
                        ],
                    ),
                    (
                        &p.order_index,
                        vec![ts(hour), ts(created_at), text(&order_id), text(&channel)],
                    ),
                    (&p.order_hour, vec![ts(hour)]),
                ];
                for (p, k) in [(&p.by_number, number), (&p.by_email, email)] {
                    if let Some(k) = k {
                        out.push((p, vec![text(&k), ts(created_at), text(&order_id)]));
                    }
                }
                out
            }
            Mutation::OrderStatus {
                order_id,
                status,
                at,
                version,
            } => {
                vec![(
                    &p.order_status,
                    vec![big(version), text(&status), ts(at), text(&order_id)],
                )]
            }
            Mutation::Lines {
                order_id,
                lines,
                version,
            } => {
                let mut out = vec![(&p.lines_delete, vec![big(version - 1), text(&order_id)])];
                for sku in line_skus(&lines) {
                    out.push((&p.by_sku, vec![text(sku), big(version), text(&order_id)]));
                }
                for l in lines {
                    out.push((
                        &p.line_insert,
                        vec![
                            text(&order_id),
                            text(&l.line_id),
                            text(&l.sku),
                            text(&l.name),
                            int(l.quantity),
                            decimal(&l.unit_price),
                            decimal(&l.total),
                            big(version),
                        ],
                    ));
                }
                out
            }
            Mutation::History(h) => vec![(
                &p.history_insert,
                vec![
                    text(&h.order_id),
                    ts(h.at),
                    text(&h.event_id),
                    text(&h.stage),
                    text(&h.status),
                    text(&h.detail),
                ],
            )],
            Mutation::Reservations {
                order_id,
                rows,
                version,
            } => {
                let mut out = vec![(
                    &p.reservations_delete,
                    vec![big(version - 1), text(&order_id)],
                )];
                for r in rows {
                    out.push((
                        &p.reservation_insert,
                        vec![
                            text(&order_id),
                            text(&r.sku),
                            text(&r.warehouse_id),
                            int(r.quantity),
                            big(version),
                        ],
                    ));
                }
                out
            }
            Mutation::Plan {
                order_id,
                shipment_id,
                cells: c,
                version,
            } => vec![(
                &p.plan,
                vec![
                    big(version),
                    text(&c.warehouse_id),
                    text(&c.carrier),
                    text(&c.service),
                    decimal(&c.rate),
                    text(&c.currency),
                    opt_text(&c.zone),
                    text(&c.plan_status),
                    opt_ts(c.estimated_delivery),
                    ts(c.planned_at),
                    text(&order_id),
                    text(&shipment_id),
                ],
            )],
            Mutation::Label {
                order_id,
                shipment_id,
                cells: c,
                version,
            } => vec![(
                &p.label,
                vec![
                    big(version),
                    text(&c.tracking_number),
                    opt_text(&c.tracking_url),
                    decimal(&c.label_cost),
                    text(&c.label_status),
                    text(&c.label_uri),
                    text(&c.packing_slip_uri),
                    ts(c.labeled_at),
                    text(&order_id),
                    text(&shipment_id),
                ],
            )],
            Mutation::Sync {
                order_id,
                shipment_id,
                cells: c,
                version,
            } => vec![(
                &p.sync,
                vec![
                    big(version),
                    text(&c.sync_outcome),
                    opt_text(&c.channel_reference),
                    ts(c.synced_at),
                    text(&order_id),
                    text(&shipment_id),
                ],
            )],
            Mutation::Tracking { row: t, version } => vec![(
                &p.tracking,
                vec![
                    big(version),
                    text(&t.order_id),
                    text(&t.shipment_id),
                    text(&t.carrier),
                    text(&t.service),
                    text(&t.label_status),
                    ts(t.labeled_at),
                    text(&t.tracking_number),
                ],
            )],
            Mutation::Level(l) => {
                let bucket = level_bucket(&l.sku);
                let cells = vec![
                    big(l.seq.max(0)),
                    int(l.on_hand),
                    int(l.reserved),
                    int(l.held),
                    int(l.available),
                    big(l.seq),
                    ts(l.as_of),
                ];
                let mut level = cells.clone();
                level.extend([text(&l.sku), text(&l.warehouse_id)]);
                let mut paged = cells;
                paged.extend([text(&bucket), text(&l.sku), text(&l.warehouse_id)]);
                vec![
                    (&p.level, level),
                    (&p.level_by_bucket, paged),
                    (&p.level_bucket, vec![text(&bucket)]),
                ]
            }
            Mutation::Movement(m) => vec![(
                &p.movement,
                vec![
                    text(&m.sku),
                    big(m.seq),
                    text(&m.event_id),
                    text(&m.warehouse_id),
                    text(&m.kind),
                    int(m.quantity),
                    opt_text(&m.order_id),
                    int(m.available),
                    ts(m.occurred_at),
                ],
            )],
            Mutation::Exception { row: x, version } => vec![
                (
                    &p.exception,
                    vec![
                        text(&x.day),
                        ts(x.raised_at),
                        text(&x.exception_id),
                        text(&x.order_id),
                        opt_text(&x.shipment_id),
                        text(&x.stage),
                        text(&x.code),
                        text(&x.reason),
                        text(&x.action),
                        text(&x.source_topic),
                        int(x.source_partition),
                        big(x.source_offset),
                        big(version),
                    ],
                ),
                (
                    &p.exception_by_id,
                    vec![
                        big(version),
                        text(&x.day),
                        ts(x.raised_at),
                        text(&x.order_id),
                        opt_text(&x.shipment_id),
                        text(&x.stage),
                        text(&x.code),
                        text(&x.reason),
                        text(&x.action),
                        text(&x.source_topic),
                        int(x.source_partition),
                        big(x.source_offset),
                        text(&x.exception_id),
                    ],
                ),
            ],
            Mutation::Action(a) => vec![(
                &p.action,
                vec![
                    text(&a.day),
                    ts(a.at),
                    text(&a.action_id),
                    text(&a.exception_id),
                    text(&a.order_id),
                    opt_text(&a.shipment_id),
                    text(&a.kind),
                    text(&a.actor),
                    text(&a.role),
                    text(&a.reason),
                    text(&a.detail),
                ],
            )],
            Mutation::ExceptionState {
                exception_id,
                state: s,
                version,
            } => vec![(
                &p.exception_state,
                vec![
                    big(version),
                    text(&s.state),
                    text(&s.actor),
                    ts(s.at),
                    text(&s.reason),
                    text(&s.action_id),
                    text(&exception_id),
                ],
            )],
            Mutation::Alert { row: a, version } => {
                let current = (
                    &p.alert,
                    vec![
                        big(version),
                        text(&a.kind),
                        int(a.available),
                        int(a.reorder_point),
                        ts(a.occurred_at),
                        text(&a.sku),
                        text(&a.warehouse_id),
                    ],
                );
                // Active until a newer RECOVERED deletes it (a delete at
                // a version shadows every write at or below it).
                let active = if a.kind == RECOVERED {
                    (
                        &p.alert_recovered,
                        vec![big(version), text(&a.sku), text(&a.warehouse_id)],
                    )
                } else {
                    (
                        &p.alert_active,
                        vec![
                            text(&a.sku),
                            text(&a.warehouse_id),
                            text(&a.kind),
                            int(a.available),
                            int(a.reorder_point),
                            ts(a.occurred_at),
                            big(version),
                        ],
                    )
                };
                vec![current, active]
            }
        }
    }

    /// Calls `f` with each row of `p`, fetching page by page, until it
    /// returns false.
    async fn each_row(
        &self,
        p: &PreparedStatement,
        values: Vec<V>,
        mut f: impl FnMut(Row) -> bool,
    ) -> Result<(), StoreError> {
        let mut rows = self
            .session
            .execute_iter(p.clone(), values)
            .await
            .map_err(|e| err(&self.nodes, e))?
            .rows_stream::<Row>()
            .map_err(|e| err(&self.nodes, e))?;
        while let Some(r) = rows.try_next().await.map_err(|e| err(&self.nodes, e))? {
            if !f(r) {
                break;
            }
        }
        Ok(())
    }

    /// Whether order `order_id` still matches search `key` by `by` (an
    /// index entry an edit left behind does not): its current lines hold
    /// the SKU, or its current details have the key and the entry's
    /// creation time.
    async fn still_matches(
        &self,
        by: SearchField,
        key: &str,
        created_at: i64,
        order_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(match by {
            SearchField::Sku => self.lines(order_id).await?.iter().any(|l| l.sku == key),
            SearchField::Number | SearchField::Email => self
                .order(order_id)
                .await?
                .and_then(|o| o.details)
                .is_some_and(|d| {
                    d.created_at == created_at && d.search_key(by).as_deref() == Some(key)
                }),
        })
    }

    async fn rows(&self, p: &PreparedStatement, values: Vec<V>) -> Result<Vec<Row>, StoreError> {
        self.session
            .execute_iter(p.clone(), values)
            .await
            .map_err(|e| err(&self.nodes, e))?
            .rows_stream::<Row>()
            .map_err(|e| err(&self.nodes, e))?
            .try_collect()
            .await
            .map_err(|e| err(&self.nodes, e))
    }
}

impl OperationalStore for ScyllaStore {
    fn describe(&self) -> String {
        format!("scylla {}", self.nodes)
    }

    async fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        type Write<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>,
        >;
        let mut writes: Vec<Write<'_>> = Vec::new();
        for m in batch {
            for (p, values) in self.statements(m) {
                writes.push(Box::pin(async move {
                    self.session
                        .execute_unpaged(p, values)
                        .await
                        .map(|_| ())
                        .map_err(|e| err(&self.nodes, e))
                }));
            }
        }
        futures::stream::iter(writes)
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let Some(r) = self
            .rows(&self.p.get_order, vec![text(order_id)])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let details = col_opt_text(&r, 0).map(|channel| OrderDetails {
            order_id: order_id.to_string(),
            channel,
            external_id: col_text(&r, 1),
            external_number: col_opt_text(&r, 2),
            customer_name: col_text(&r, 3),
            customer_email: col_opt_text(&r, 4),
            currency: col_text(&r, 5),
            subtotal: col_dec(&r, 6),
            shipping: col_dec(&r, 7),
            tax: col_dec(&r, 8),
            total: col_dec(&r, 9),
            priority: col_text(&r, 10),
            channel_status: col_text(&r, 11),
            ship_city: col_text(&r, 12),
            ship_region: col_opt_text(&r, 13),
            ship_postal_code: col_text(&r, 14),
            ship_country: col_text(&r, 15),
            created_at: col_ts(&r, 16),
            updated_at: col_ts(&r, 17),
        });
        let status = col_opt_text(&r, 18);
        if details.is_none() && status.is_none() {
            return Ok(None);
        }
        Ok(Some(OrderRecord {
            details,
            status,
            status_at: col_opt_ts(&r, 19),
        }))
    }

    async fn lines(&self, order_id: &str) -> Result<Vec<LineRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_lines, vec![text(order_id)])
            .await?
            .iter()
            .map(|r| LineRow {
                line_id: col_text(r, 0),
                sku: col_text(r, 1),
                name: col_text(r, 2),
                quantity: col_int(r, 3),
                unit_price: col_dec(r, 4),
                total: col_dec(r, 5),
            })
            .collect())
    }

    async fn history(&self, order_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self
            .rows(&self.p.get_history, vec![text(order_id)])
            .await?
            .iter()
            .map(|r| HistoryEntry {
                order_id: order_id.to_string(),
                at: col_ts(r, 0),
                event_id: col_text(r, 1),
                stage: col_text(r, 2),
                status: col_text(r, 3),
                detail: col_text(r, 4),
            })
            .collect())
    }

    async fn shipments(&self, order_id: &str) -> Result<Vec<ShipmentRecord>, StoreError> {
        Ok(self
            .rows(&self.p.get_shipments, vec![text(order_id)])
            .await?
            .iter()
            .map(|r| ShipmentRecord {
                shipment_id: col_text(r, 0),
                plan: col_opt_text(r, 1).map(|warehouse_id| PlanCells {
                    warehouse_id,
                    carrier: col_text(r, 2),
                    service: col_text(r, 3),
                    rate: col_dec(r, 4),
                    currency: col_text(r, 5),
                    zone: col_opt_text(r, 6),
                    plan_status: col_text(r, 7),
                    estimated_delivery: col_opt_ts(r, 8),
                    planned_at: col_ts(r, 9),
                }),
                label: col_opt_text(r, 10).map(|tracking_number| LabelCells {
                    tracking_number,
                    tracking_url: col_opt_text(r, 11),
                    label_cost: col_dec(r, 12),
                    label_status: col_text(r, 13),
                    label_uri: col_text(r, 14),
                    packing_slip_uri: col_text(r, 15),
                    labeled_at: col_ts(r, 16),
                }),
                sync: col_opt_text(r, 17).map(|sync_outcome| SyncCells {
                    sync_outcome,
                    channel_reference: col_opt_text(r, 18),
                    synced_at: col_ts(r, 19),
                }),
            })
            .collect())
    }

    async fn reservations(&self, order_id: &str) -> Result<Vec<ReservationRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_reservations, vec![text(order_id)])
            .await?
            .iter()
            .map(|r| ReservationRow {
                sku: col_text(r, 0),
                warehouse_id: col_text(r, 1),
                quantity: col_int(r, 2),
            })
            .collect())
    }

    async fn tracking(&self, tracking_number: &str) -> Result<Option<TrackingRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_tracking, vec![text(tracking_number)])
            .await?
            .first()
            .filter(|r| col_opt_text(r, 0).is_some())
            .map(|r| TrackingRow {
                tracking_number: tracking_number.to_string(),
                order_id: col_text(r, 0),
                shipment_id: col_text(r, 1),
                carrier: col_text(r, 2),
                service: col_text(r, 3),
                label_status: col_text(r, 4),
                labeled_at: col_ts(r, 5),
            }))
    }

    async fn orders_since(
        &self,
        since: i64,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let from = after.as_ref().map_or(since, |(at, _)| (*at).max(since));
        let hours = self
            .rows(
                &self.p.get_hours,
                vec![ts(from.div_euclid(HOUR_MS) * HOUR_MS)],
            )
            .await?;
        let mut out = Vec::new();
        for h in hours {
            let hour = col_ts(&h, 0);
            for r in self
                .rows(&self.p.get_hour, vec![ts(hour), ts(from)])
                .await?
            {
                let e = IndexEntry {
                    created_at: col_ts(&r, 0),
                    order_id: col_text(&r, 1),
                    channel: col_text(&r, 2),
                };
                if after
                    .as_ref()
                    .is_some_and(|(at, id)| (e.created_at, &e.order_id) <= (*at, id))
                {
                    continue;
                }
                out.push(e);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    async fn levels(&self, sku: &str) -> Result<Vec<LevelRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_levels, vec![text(sku)])
            .await?
            .iter()
            .map(|r| LevelRow {
                sku: sku.to_string(),
                warehouse_id: col_text(r, 0),
                on_hand: col_int(r, 1),
                reserved: col_int(r, 2),
                held: col_int(r, 3),
                available: col_int(r, 4),
                seq: col_big(r, 5),
                as_of: col_ts(r, 6),
            })
            .collect())
    }

    async fn movements(&self, sku: &str, limit: usize) -> Result<Vec<MovementRow>, StoreError> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        Ok(self
            .rows(&self.p.get_movements, vec![text(sku), int(limit)])
            .await?
            .iter()
            .map(|r| MovementRow {
                sku: sku.to_string(),
                seq: col_big(r, 0),
                event_id: col_text(r, 1),
                warehouse_id: col_text(r, 2),
                kind: col_text(r, 3),
                quantity: col_int(r, 4),
                order_id: col_opt_text(r, 5),
                available: col_int(r, 6),
                occurred_at: col_ts(r, 7),
            })
            .collect())
    }

    async fn exceptions_on(&self, day: &str) -> Result<Vec<ExceptionRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_exceptions, vec![text(day)])
            .await?
            .iter()
            .map(exception_row)
            .collect())
    }

    async fn exception(&self, exception_id: &str) -> Result<Option<ExceptionRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_exception, vec![text(exception_id)])
            .await?
            .first()
            .filter(|r| col_opt_text(r, 2).is_some())
            .map(exception_row))
    }

    async fn exception_states(
        &self,
        exception_ids: &[String],
    ) -> Result<HashMap<String, ExceptionState>, StoreError> {
        // Owned ids: the futures must not borrow a closure argument.
        let reads =
            exception_ids.iter().cloned().map(|id| async move {
                let rows = self
                    .rows(&self.p.get_exception_state, vec![text(&id)])
                    .await?;
                Ok::<_, StoreError>(rows.first().filter(|r| col_opt_text(r, 0).is_some()).map(
                    |r| {
                        (
                            id,
                            ExceptionState {
                                state: col_text(r, 0),
                                actor: col_text(r, 1),
                                at: col_ts(r, 2),
                                reason: col_text(r, 3),
                                action_id: col_text(r, 4),
                            },
                        )
                    },
                ))
            });
        let found: Vec<_> = futures::stream::iter(reads)
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn actions_on(&self, day: &str) -> Result<Vec<ActionRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_actions, vec![text(day)])
            .await?
            .iter()
            .map(|r| ActionRow {
                day: col_text(r, 0),
                at: col_ts(r, 1),
                action_id: col_text(r, 2),
                exception_id: col_text(r, 3),
                order_id: col_text(r, 4),
                shipment_id: col_opt_text(r, 5),
                kind: col_text(r, 6),
                actor: col_text(r, 7),
                role: col_text(r, 8),
                reason: col_text(r, 9),
                detail: col_text(r, 10),
            })
            .collect())
    }

    async fn alerts(&self, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        Ok(self
            .rows(&self.p.get_alerts, vec![int(limit)])
            .await?
            .iter()
            .map(alert_row)
            .collect())
    }

    async fn sku_alerts(&self, sku: &str) -> Result<Vec<AlertRow>, StoreError> {
        Ok(self
            .rows(&self.p.get_sku_alerts, vec![text(sku)])
            .await?
            .iter()
            .filter(|r| col_opt_text(r, 2).is_some())
            .map(alert_row)
            .collect())
    }

    async fn inventory_page(
        &self,
        after_sku: Option<&str>,
        skus: usize,
    ) -> Result<Vec<LevelRow>, StoreError> {
        let after = after_sku.unwrap_or_default();
        let buckets = self
            .rows(&self.p.get_level_buckets, vec![text(&level_bucket(after))])
            .await?;
        let mut out: Vec<LevelRow> = Vec::new();
        let mut seen = 0;
        let mut full = false;
        for b in buckets {
            // Every SKU of a later bucket sorts after `after` too.
            self.each_row(
                &self.p.get_bucket_levels,
                vec![text(&col_text(&b, 0)), text(after)],
                |r| {
                    let row = LevelRow {
                        sku: col_text(&r, 0),
                        warehouse_id: col_text(&r, 1),
                        on_hand: col_int(&r, 2),
                        reserved: col_int(&r, 3),
                        held: col_int(&r, 4),
                        available: col_int(&r, 5),
                        seq: col_big(&r, 6),
                        as_of: col_ts(&r, 7),
                    };
                    if out.last().is_none_or(|l| l.sku != row.sku) {
                        if seen == skus {
                            full = true;
                            return false;
                        }
                        seen += 1;
                    }
                    out.push(row);
                    true
                },
            )
            .await?;
            if full {
                break;
            }
        }
        Ok(out)
    }

    async fn find_orders(
        &self,
        by: SearchField,
        value: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let key = by.key(value);
        if key.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let p = match by {
            SearchField::Number => &self.p.find_by_number,
            SearchField::Email => &self.p.find_by_email,
            SearchField::Sku => &self.p.find_by_sku,
        };
        let mut rows = self
            .session
            .execute_iter(p.clone(), vec![text(&key)])
            .await
            .map_err(|e| err(&self.nodes, e))?
            .rows_stream::<Row>()
            .map_err(|e| err(&self.nodes, e))?;
        // Entries come newest first; each order's first entry is its
        // newest. Check them a batch at a time, concurrently, in order.
        let batch = limit.clamp(8, 100);
        let mut out: Vec<String> = Vec::new();
        let mut pending: Vec<(i64, String)> = Vec::new();
        let mut examined = 0;
        loop {
            let next = if examined < MAX_SEARCH_CANDIDATES {
                rows.try_next().await.map_err(|e| err(&self.nodes, e))?
            } else {
                None
            };
            let end = next.is_none();
            if let Some(r) = next {
                examined += 1;
                let created_at = match by {
                    SearchField::Sku => 0,
                    SearchField::Number | SearchField::Email => col_ts(&r, 0),
                };
                let id = col_text(&r, 1);
                if !out.contains(&id) && !pending.iter().any(|(_, p)| *p == id) {
                    pending.push((created_at, id));
                }
            }
            if pending.len() >= batch || (end && !pending.is_empty()) {
                let key = key.as_str();
                let checks = pending.drain(..).map(|(at, id)| async move {
                    let ok = self.still_matches(by, key, at, &id).await?;
                    Ok::<_, StoreError>(ok.then_some(id))
                });
                for id in futures::future::try_join_all(checks)
                    .await?
                    .into_iter()
                    .flatten()
                {
                    if out.len() < limit && !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
            if end || out.len() >= limit {
                return Ok(out);
            }
        }
    }
}

/// An exception row of `exceptions_by_day` or `exceptions_by_id` (the
/// columns of `get_exceptions`).
fn exception_row(r: &Row) -> ExceptionRow {
    ExceptionRow {
        raised_at: col_ts(r, 0),
        exception_id: col_text(r, 1),
        order_id: col_text(r, 2),
        shipment_id: col_opt_text(r, 3),
        stage: col_text(r, 4),
        code: col_text(r, 5),
        reason: col_text(r, 6),
        action: col_text(r, 7),
        source_topic: col_text(r, 8),
        source_partition: col_int(r, 9),
        source_offset: col_big(r, 10),
        day: col_text(r, 11),
    }
}

fn alert_row(r: &Row) -> AlertRow {
    AlertRow {
        sku: col_text(r, 0),
        warehouse_id: col_text(r, 1),
        kind: col_text(r, 2),
        available: col_int(r, 3),
        reorder_point: col_int(r, 4),
        occurred_at: col_ts(r, 5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_truncates_every_table_the_ddl_creates() {
        let t = tables();
        assert_eq!(t.len(), 21, "{t:?}");
        for name in [
            "orders",
            "order_lines",
            "inventory_levels",
            "exceptions_by_day",
            "exceptions_by_id",
            "actions_by_day",
            "alerts_active",
            "orders_by_sku",
        ] {
            assert!(t.contains(&name), "{name} missing from {t:?}");
        }
        assert!(t
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
    }

    #[test]
    fn decimals_round_trip_through_cql() {
        for s in [
            "0",
            "19.99",
            "-0.01",
            "123456789012.3456",
            "-128",
            "127",
            "255.5",
            "-32768",
        ] {
            assert_eq!(
                decimal_text(&decimal(s)),
                Decimal::from_str(s).unwrap().to_string(),
                "{s}"
            );
        }
    }

    #[test]
    fn every_cql_statement_is_idempotent_ddl() {
        for (_, name, cql) in MIGRATIONS {
            for s in crate::clickhouse::migrate::statements(cql) {
                // A column added is skipped by the runner when it exists.
                assert!(
                    s.contains("IF NOT EXISTS") || added_column(&s).is_some(),
                    "{name}: {s}"
                );
                assert!(!s.contains("IF EXISTS") || s.contains("IF NOT EXISTS"));
            }
        }
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        assert_eq!(versions, (1..=MIGRATIONS.len() as i32).collect::<Vec<_>>());
    }

    #[test]
    fn added_columns_are_recognised_one_per_statement() {
        assert_eq!(
            added_column("ALTER TABLE exceptions_by_day ADD source_topic text"),
            Some(("exceptions_by_day".into(), "source_topic".into()))
        );
        assert_eq!(
            added_column("alter table T\n  add Col bigint"),
            Some(("t".into(), "col".into()))
        );
        assert_eq!(added_column("ALTER TABLE t ADD (a int, b int)"), None);
        assert_eq!(added_column("ALTER TABLE t DROP a"), None);
        assert_eq!(added_column("CREATE TABLE IF NOT EXISTS t (a int)"), None);
    }

    #[test]
    fn level_buckets_order_as_their_skus() {
        let mut skus = vec![
            "", "A", "A-1", "AB", "ABC", "AC", "B", "Z9", "ab", "é1", "éé",
        ];
        skus.sort_unstable();
        let buckets: Vec<String> = skus.iter().map(|s| level_bucket(s)).collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert_eq!(level_bucket("MTG-DMU"), "MT");
        assert_eq!(level_bucket("é"), "é");
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn tls_trusts_the_system_store_or_the_named_ca() {
        let mut cfg = ScyllaConfig {
            tls: true,
            ..ScyllaConfig::default()
        };
        assert!(tls_context(&cfg).is_ok(), "the system trust store");
        cfg.ca_file = "/nonexistent/ca.pem".into();
        let err = tls_context(&cfg)
            .err()
            .expect("a missing CA file is an error");
        assert!(err.contains("scylla.ca_file /nonexistent/ca.pem"), "{err}");
        // A real CA certificate (generated here) is accepted.
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "conveyor test CA").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, b.build().to_pem().unwrap()).unwrap();
        cfg.ca_file = ca.to_str().unwrap().into();
        assert!(tls_context(&cfg).is_ok(), "the CA file");
    }
}

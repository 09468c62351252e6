//! `conveyor replay diff NAME`: a sandbox next to live, over the orders the
//! sandbox ran, from both ClickHouse databases (FINAL, so replays and
//! redeliveries count once):
//!
//! - orders whose allocation changed (status, or which SKU ships from
//!   which warehouse in what quantity);
//! - orders whose route changed (the planned parcels' warehouse, carrier
//!   and service);
//! - shipping cost (the planned parcels' rates), parcels, split rate (the
//!   share of routed orders shipping in more than one parcel) and SLA
//!   misses (planned parcels that miss the order's promise), live and
//!   sandbox, with the deltas;
//!
//! as a table, JSON (`--json`) and a CSV of every changed order.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use rust_decimal::Decimal;
use serde::Serialize;

use super::record::{self, Kind};

/// One order on one side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    /// Allocation status and sorted `sku@warehouse x qty` (None: no decision).
    pub allocation: Option<String>,
    /// Sorted `warehouse:carrier service` of the planned parcels.
    pub route: String,
    pub parcels: u32,
    pub cost: Decimal,
    pub sla_misses: u32,
}

/// Amounts as exact decimal strings.
fn dec<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.normalize().to_string())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    #[serde(serialize_with = "dec")]
    pub cost: Decimal,
    pub parcels: u64,
    /// Orders with at least one planned parcel.
    pub routed: u64,
    /// Routed orders with more than one parcel.
    pub split: u64,
    pub sla_misses: u64,
}

impl Totals {
    fn add(&mut self, s: &Side) {
        self.cost += s.cost;
        self.parcels += u64::from(s.parcels);
        self.routed += u64::from(s.parcels > 0);
        self.split += u64::from(s.parcels > 1);
        self.sla_misses += u64::from(s.sla_misses);
    }

    pub fn split_rate(&self) -> f64 {
        if self.routed == 0 {
            0.0
        } else {
            self.split as f64 / self.routed as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub order_id: String,
    pub live_allocation: String,
    pub sandbox_allocation: String,
    pub live_route: String,
    pub sandbox_route: String,
    pub live_parcels: u32,
    pub sandbox_parcels: u32,
    #[serde(serialize_with = "dec")]
    pub live_cost: Decimal,
    #[serde(serialize_with = "dec")]
    pub sandbox_cost: Decimal,
    pub live_sla_misses: u32,
    pub sandbox_sla_misses: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub orders: u64,
    pub allocation_changed: u64,
    pub route_changed: u64,
    pub live: Totals,
    pub sandbox: Totals,
    pub changed: Vec<Changed>,
}

/// The report over `orders` (the sandbox's), from each side's per-order
/// facts (an order missing on a side counts as nothing there).
pub fn compare(
    orders: &BTreeSet<String>,
    live: &BTreeMap<String, Side>,
    sandbox: &BTreeMap<String, Side>,
) -> Report {
    let mut r = Report {
        orders: orders.len() as u64,
        ..Report::default()
    };
    let none = Side::default();
    for id in orders {
        let (l, s) = (
            live.get(id).unwrap_or(&none),
            sandbox.get(id).unwrap_or(&none),
        );
        r.live.add(l);
        r.sandbox.add(s);
        let alloc = l.allocation != s.allocation;
        let route = l.route != s.route;
        r.allocation_changed += u64::from(alloc);
        r.route_changed += u64::from(route);
        if alloc || route || l.cost != s.cost || l.sla_misses != s.sla_misses {
            r.changed.push(Changed {
                order_id: id.clone(),
                live_allocation: l.allocation.clone().unwrap_or_default(),
                sandbox_allocation: s.allocation.clone().unwrap_or_default(),
                live_route: l.route.clone(),
                sandbox_route: s.route.clone(),
                live_parcels: l.parcels,
                sandbox_parcels: s.parcels,
                live_cost: l.cost,
                sandbox_cost: s.cost,
                live_sla_misses: l.sla_misses,
                sandbox_sla_misses: s.sla_misses,
            });
        }
    }
    r
}

async fn query(config: &Config, db: &str, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut cfg = config.clickhouse.clone();
    cfg.database = db.to_string();
    let text = conveyor_sinks::clickhouse::client(&cfg)
        .query(sql)
        .fetch_bytes("TabSeparated")
        .with_context(|| format!("querying {db}"))?
        .collect()
        .await
        .with_context(|| format!("querying {db}"))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// Per-order facts of one database.
async fn sides(config: &Config, db: &str) -> anyhow::Result<BTreeMap<String, Side>> {
    let mut out: BTreeMap<String, Side> = BTreeMap::new();
    for r in query(
        config,
        db,
        "SELECT order_id, concat(status, ' ', arrayStringConcat(arraySort(arrayMap((s, w, q) -> concat(s, '@', w, ' x', toString(q)), allocated.sku, allocated.warehouse_id, allocated.quantity)), ', ')) FROM allocations FINAL",
    )
    .await?
    {
        if let [id, a] = &r[..] {
            out.entry(id.clone()).or_default().allocation = Some(a.trim().to_string());
        }
    }
    for r in query(
        config,
        db,
        "SELECT order_id, count(), arrayStringConcat(arraySort(groupArray(concat(warehouse_id, ':', carrier, ' ', service))), ', '), toString(sum(rate)), countIf(NOT meets_sla) FROM shipment_plans FINAL WHERE status = 'PLANNED' GROUP BY order_id",
    )
    .await?
    {
        if let [id, n, route, cost, misses] = &r[..] {
            let s = out.entry(id.clone()).or_default();
            s.parcels = n.parse().unwrap_or(0);
            s.route = route.clone();
            s.cost = Decimal::from_str(cost).unwrap_or_default().normalize();
            s.sla_misses = misses.parse().unwrap_or(0);
        }
    }
    Ok(out)
}

pub async fn run(config: &Config, name: &str, csv: Option<&str>, json: bool) -> anyhow::Result<()> {
    let jobs = record::load(config).await?;
    let job = jobs
        .iter()
        .rev()
        .find(|j| j.kind == Kind::Sandbox && j.target == name && j.status == record::Status::Done)
        .with_context(|| {
            format!("no sandbox `{name}` (run `conveyor replay sandbox {name}` first)")
        })?;
    let sb = super::sandbox::config(config, name, 0)?;
    let (live_db, sb_db) = (
        config.clickhouse.database.clone(),
        sb.clickhouse.database.clone(),
    );
    let orders: BTreeSet<String> =
        query(config, &sb_db, "SELECT DISTINCT order_id FROM orders FINAL")
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
    let report = compare(
        &orders,
        &sides(config, &live_db).await?,
        &sides(config, &sb_db).await?,
    );
    let path = csv
        .map(str::to_string)
        .unwrap_or_else(|| format!("sandbox-{name}-diff.csv"));
    write_csv(&path, &report.changed)?;
    if json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("changed");
            o.insert("csv".into(), path.clone().into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "sandbox {name} ({} to {}, run {}) vs live: {} orders ({} in ClickHouse, {} vs {})",
        job.from, job.to, job.id, report.orders, config.clickhouse.url, sb_db, live_db
    );
    print_table(&report);
    println!("{} changed orders written to {path}", report.changed.len());
    Ok(())
}

fn print_table(r: &Report) {
    let (l, s) = (&r.live, &r.sandbox);
    println!("| metric | live | sandbox | delta |");
    println!("|---|---:|---:|---:|");
    println!("| orders | {} | {} | |", r.orders, r.orders);
    println!("| allocation changed | | | {} |", r.allocation_changed);
    println!("| route changed | | | {} |", r.route_changed);
    println!(
        "| shipping cost | {} | {} | {:+} |",
        l.cost.round_dp(2),
        s.cost.round_dp(2),
        (s.cost - l.cost).round_dp(2)
    );
    println!(
        "| parcels | {} | {} | {:+} |",
        l.parcels,
        s.parcels,
        s.parcels as i64 - l.parcels as i64
    );
    println!(
        "| split rate | {:.1}% | {:.1}% | {:+.1} pp |",
        100.0 * l.split_rate(),
        100.0 * s.split_rate(),
        100.0 * (s.split_rate() - l.split_rate())
    );
    println!(
        "| SLA misses | {} | {} | {:+} |",
        l.sla_misses,
        s.sla_misses,
        s.sla_misses as i64 - l.sla_misses as i64
    );
}

fn write_csv(path: &str, rows: &[Changed]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {path}"))?;
    for r in rows {
        w.serialize(r)?;
    }
    if rows.is_empty() {
        w.write_record([
            "order_id",
            "live_allocation",
            "sandbox_allocation",
            "live_route",
            "sandbox_route",
            "live_parcels",
            "sandbox_parcels",
            "live_cost",
            "sandbox_cost",
            "live_sla_misses",
            "sandbox_sla_misses",
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(alloc: &str, route: &str, parcels: u32, cost: &str, misses: u32) -> Side {
        Side {
            allocation: Some(alloc.into()),
            route: route.into(),
            parcels,
            cost: Decimal::from_str(cost).unwrap(),
            sla_misses: misses,
        }
    }

    #[test]
    fn totals_and_changes_over_the_sandbox_orders_only() {
        let orders: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let live: BTreeMap<String, Side> = [
            (
                "a".to_string(),
                side("ALLOCATED x", "W1:ups ground", 1, "10.00", 0),
            ),
            (
                "b".to_string(),
                side("ALLOCATED y", "W1:ups ground, W2:ups ground", 2, "20.50", 1),
            ),
            ("z".to_string(), side("ALLOCATED q", "W9:x y", 1, "99", 0)),
        ]
        .into();
        let sandbox: BTreeMap<String, Side> = [
            (
                "a".to_string(),
                side("ALLOCATED x", "W1:ups ground", 1, "10.00", 0),
            ),
            (
                "b".to_string(),
                side("ALLOCATED y2", "W2:fedex home", 1, "12.25", 0),
            ),
            ("c".to_string(), side("BACKORDERED ", "", 0, "0", 0)),
        ]
        .into();
        let r = compare(&orders, &live, &sandbox);
        assert_eq!(r.orders, 3);
        assert_eq!((r.allocation_changed, r.route_changed), (2, 1));
        assert_eq!(r.live.cost, Decimal::from_str("30.50").unwrap());
        assert_eq!(r.sandbox.cost, Decimal::from_str("22.25").unwrap());
        assert_eq!((r.live.split, r.live.routed), (1, 2));
        assert_eq!((r.sandbox.split, r.sandbox.routed), (0, 2));
        assert_eq!((r.live.sla_misses, r.sandbox.sla_misses), (1, 0));
        let ids: Vec<&str> = r.changed.iter().map(|c| c.order_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"], "z is not a sandbox order; a is unchanged");
    }
}

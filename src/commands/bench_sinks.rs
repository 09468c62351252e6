//! `conveyor bench sinks`: what the sinks sustain on this machine.
//!
//! 1. ClickHouse: the sample stream (orders, allocations, plans, labels,
//!    syncs, movements, ...) mapped to rows and inserted in `--batch`-record
//!    batches (one insert per table, concurrently) into a scratch database on the configured server (dropped
//!    after): rows/s and records/s, mapping included.
//! 2. The embedded operational store: the same records as versioned
//!    mutations, 5,000-record batches, one durable commit each.
//! 3. The status API over that store: GET /orders/{id} (80%), the paged
//!    list (10%) and GET /inventory/{sku} (10%) from 4 connections;
//!    p50 / p99 / max per route.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_runtime::config::Config;
use conveyor_sinks::clickhouse::{self as ch, rows::Tables, sink::ClickHouseWriter};
use conveyor_sinks::event::Located;
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::model::located_mutations;
use conveyor_sinks::ops::testkit::BASE_MS;
use conveyor_sinks::ops::OperationalStore;
use conveyor_sinks::sample;

use crate::usage;

fn located(events: Vec<conveyor_sinks::event::SinkEvent>) -> Vec<Located> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Located::first_run(event, "bench", 0, i as i64))
        .collect()
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

pub async fn run(
    config: &Config,
    orders: u64,
    requests: usize,
    batch: usize,
) -> anyhow::Result<()> {
    if orders == 0 || batch == 0 {
        return Err(usage("--orders and --batch must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench sinks`");
    }
    let events = located(sample::orders(0..orders, BASE_MS));
    let rows = Tables::from_events(&events).rows();
    println!(
        "sink benchmark: {orders} orders = {} records = {rows} ClickHouse rows; load average {}",
        events.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // 1. ClickHouse.
    let mut chc = config.clickhouse.clone();
    chc.database = format!("conveyor_bench_{}", std::process::id());
    ch::migrate::migrate(&chc).await?;
    let writer = ClickHouseWriter::new(&chc);
    let started = Instant::now();
    let mut map_secs = 0.0;
    for chunk in events.chunks(batch) {
        let t = Instant::now();
        let tables = Tables::from_events(chunk);
        map_secs += t.elapsed().as_secs_f64();
        writer.insert_tables(&tables).await?;
    }
    let ch_secs = started.elapsed().as_secs_f64();
    let counted: u64 = ch::client(&chc)
        .query(&format!(
            "SELECT toUInt64(sum(c)) FROM ({})",
            ch::FACT_TABLES
                .iter()
                .map(|t| format!("SELECT count() AS c FROM {t}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        ))
        .fetch_one()
        .await?;
    ch::server_client(&chc)
        .query(&format!("DROP DATABASE IF EXISTS `{}`", chc.database))
        .execute()
        .await?;
    // Background merges may already have replaced superseded versions.
    anyhow::ensure!(
        counted > 0 && counted <= rows,
        "ClickHouse holds {counted} rows, {rows} written"
    );

    // 2. The embedded operational store.
    let dir = tempfile_dir()?;
    let store = Arc::new(EmbeddedStore::open(&dir.join("ops.redb"))?);
    let started = Instant::now();
    let mut muts = 0usize;
    for batch in events.chunks(5_000) {
        let m: Vec<_> = batch.iter().flat_map(located_mutations).collect();
        muts += m.len();
        store.apply(m).await?;
    }
    let ops_secs = started.elapsed().as_secs_f64();

    println!();
    println!("| sink | records | rows / mutations | seconds | records/s | rows/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| ClickHouse ({batch}-record batches, one insert per table) | {} | {rows} | {ch_secs:.2} | {:.0} | {:.0} |",
        events.len(),
        events.len() as f64 / ch_secs,
        rows as f64 / ch_secs
    );
    println!("| ClickHouse, of which mapping records to rows | | | {map_secs:.2} | | |");
    println!(
        "| embedded store (5k-record commits) | {} | {muts} | {ops_secs:.2} | {:.0} | {:.0} |",
        events.len(),
        events.len() as f64 / ops_secs,
        muts as f64 / ops_secs
    );

    // 3. The status API over the store.
    if requests > 0 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = conveyor_sinks::status_api::router(store.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let skus = [
            "MTG-DMU-BOOSTER",
            "PKM-SV1-ETB",
            "SLEEVE-DS-100",
            "DICE-CHX-7",
            "BINDER-9P",
        ];
        let per = requests.div_ceil(4);
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat: [Vec<Duration>; 3] = Default::default();
                for n in 0..per as u64 {
                    let k = n * 4 + t;
                    let (route, path) = match k % 10 {
                        0 => (1, "/orders?limit=50&status=SHIPPED".to_string()),
                        1 => (
                            2,
                            format!("/inventory/{}", skus[(k / 10) as usize % skus.len()]),
                        ),
                        _ => (
                            0,
                            format!("/orders/{}", order_id(k.wrapping_mul(7919) % orders)),
                        ),
                    };
                    let started = Instant::now();
                    let r = http.get(format!("http://{addr}{path}")).send().await?;
                    let ok = r.status().is_success();
                    let _ = r.bytes().await?;
                    anyhow::ensure!(ok, "GET {path} failed");
                    lat[route].push(started.elapsed());
                }
                Ok::<_, anyhow::Error>(lat)
            }));
        }
        let mut all: [Vec<Duration>; 3] = Default::default();
        for t in tasks {
            for (i, l) in t.await??.into_iter().enumerate() {
                all[i].extend(l);
            }
        }
        server.abort();
        println!();
        println!("status API over the embedded store ({orders} orders), 4 connections:");
        println!();
        println!("| route | requests | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|");
        for (name, l) in [
            "GET /orders/{id}",
            "GET /orders?status=&limit=50",
            "GET /inventory/{sku}",
        ]
        .iter()
        .zip(all.iter_mut())
        {
            l.sort();
            println!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} |",
                l.len(),
                pct(l, 0.5),
                pct(l, 0.99),
                l.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn order_id(i: u64) -> String {
    conveyor_sinks::ops::testkit::order_id(i)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("conveyor-bench-sinks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

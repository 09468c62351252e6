//! The demo's sinks step: both sinks read everything the pipeline run
//! just wrote (its namespace's topics) until caught up; then the analysts'
//! side (rows per table, queries from docs/analytics.md) and the
//! operators' side (the order status API over the operational store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology, SINK_INPUTS};
use conveyor_sinks::clickhouse as ch;
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::writer::StoreWriter;
use serde_json::Value;

use super::sink;

/// Every sink input topic's end offsets reached by `group`'s commits.
fn caught_up(config: &Config, group: &str) -> anyhow::Result<bool> {
    let topo = Topology::resolve(config);
    let c = Consumer::new(&config.kafka, "demo", group)?;
    for id in SINK_INPUTS {
        let Some(spec) = topo.spec(id, None) else {
            continue;
        };
        let committed = c.group_committed(&spec.name, spec.partitions, Duration::from_secs(10))?;
        for (p, done) in committed.iter().enumerate() {
            let end = c
                .watermarks(&spec.name, p as i32, Duration::from_secs(10))?
                .1;
            if *done < end {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    // The run's own analytics database, recreated each run, so that the
    // queries below show this run's orders only.
    let mut config = config.clone();
    config.clickhouse.database = format!("{}_demo", config.clickhouse.database);
    let config = &config;
    ch::server_client(&config.clickhouse)
        .query(&format!(
            "DROP DATABASE IF EXISTS `{}`",
            config.clickhouse.database
        ))
        .execute()
        .await?;
    ch::migrate::migrate(&config.clickhouse).await?;
    // The run's own operational store: each demo run is a world of its own
    // (its namespace's inventory starts afresh, and a store keeps the levels
    // of the highest movement sequence it has seen).
    let store_path =
        std::env::temp_dir().join(format!("{}-operational.redb", config.topics.namespace));
    let store =
        Arc::new(EmbeddedStore::open(&store_path).context("the embedded operational store")?);
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let ch_task = {
        let (config, token) = (config.clone(), shutdown.token());
        tokio::spawn(async move {
            let mut w = ch::sink::ClickHouseWriter::new(&config.clickhouse);
            sink::run_feed(
                &config,
                &sink::clickhouse_spec(&config)?,
                &mut w,
                token,
                None,
            )
            .await
        })
    };
    let ops_task = {
        let (config, token, store) = (config.clone(), shutdown.token(), store.clone());
        tokio::spawn(async move {
            let mut w = StoreWriter::new(store);
            sink::run_feed(&config, &sink::scylla_spec(&config)?, &mut w, token, None).await
        })
    };
    let groups = [
        topology::group_id(config, sink::CLICKHOUSE),
        topology::group_id(config, sink::SCYLLA),
    ];
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if groups.iter().all(|g| caught_up(config, g).unwrap_or(false)) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(180),
            "the sinks did not catch up within 3 minutes"
        );
    }
    shutdown.trigger();
    let ch_sum = ch_task.await??;
    let ops_sum = ops_task.await??;
    println!(
        "  both sinks caught up in {:.1}s: ClickHouse {} records -> {} rows in {} batches; operational store {} records -> {} row mutations",
        started.elapsed().as_secs_f64(),
        ch_sum.records,
        ch_sum.rows,
        ch_sum.batches,
        ops_sum.records,
        ops_sum.rows
    );

    // The analysts' side.
    let client = ch::client(&config.clickhouse);
    ch::refresh_views(&config.clickhouse).await?;
    let mut counts = Vec::new();
    for t in ch::FACT_TABLES {
        let n: u64 = client
            .query(&format!("SELECT count() FROM {t} FINAL"))
            .fetch_one()
            .await?;
        counts.push(format!("{t} {n}"));
    }
    println!(
        "  ClickHouse {}/{} (FINAL, one row per key): {}",
        config.clickhouse.url,
        config.clickhouse.database,
        counts.join(", ")
    );
    // The simulators date their orders on fixed days: read "today" as the
    // data's last day, so the windows of the queries cover the run.
    let last_day: String = client
        .query("SELECT toString(toDate(max(order_time))) FROM orders FINAL")
        .fetch_one()
        .await?;
    let per_channel = client
        .query("SELECT channel, sum(orders) AS orders, sum(units) AS units, sum(revenue) AS revenue FROM channel_hourly GROUP BY channel ORDER BY channel")
        .fetch_bytes("PrettyCompactMonoBlock")?
        .collect()
        .await?;
    println!("  orders per channel, all days (from the channel_hourly view):");
    for line in String::from_utf8_lossy(&per_channel).lines() {
        println!("    {line}");
    }
    println!("  (the queries' today() is the data's last order day, {last_day})");
    let queries = ch::queries::analyst_queries();
    for q in ["q1", "q4", "q3"] {
        let Some(doc) = queries.iter().find(|d| d.name == q) else {
            continue;
        };
        let sql = ch::queries::pin_today(&doc.sql, &last_day);
        println!("  analyst query {q} (docs/analytics.md): {}", doc.title);
        let out = client
            .query(&sql)
            .fetch_bytes("PrettyCompactMonoBlock")?
            .collect()
            .await?;
        for line in String::from_utf8_lossy(&out).lines().take(14) {
            println!("    {line}");
        }
    }

    // The operators' side: the status API over the store.
    let listener = match tokio::net::TcpListener::bind(config.http.status_api_bind).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let base = format!("http://{}", listener.local_addr()?);
    let api = tokio::spawn(async move {
        axum::serve(listener, conveyor_sinks::status_api::router(store)).await
    });
    let http = reqwest::Client::new();
    let get = |path: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.get(format!("{base}{path}")).send().await?;
            anyhow::Ok(r.json::<Value>().await?)
        }
    };
    let page = get("/orders?status=SHIPPED&limit=1".into()).await?;
    println!(
        "  order status API on {base} (store {}):",
        config.store.path
    );
    if let Some(id) = page["orders"][0]["order_id"].as_str() {
        let o = get(format!("/orders/{id}")).await?;
        println!(
            "    GET /orders/{id} -> {} ({} lines, {} shipments)",
            o["status"].as_str().unwrap_or("?"),
            o["lines"].as_array().map_or(0, Vec::len),
            o["shipments"].as_array().map_or(0, Vec::len)
        );
        for h in o["history"].as_array().into_iter().flatten() {
            println!(
                "      {:<10} {:<20} {}",
                h["stage"].as_str().unwrap_or(""),
                h["status"].as_str().unwrap_or(""),
                h["detail"].as_str().unwrap_or("")
            );
        }
        if let Some(t) = o["shipments"][0]["label"]["tracking_number"].as_str() {
            let s = get(format!("/tracking/{t}")).await?;
            println!(
                "    GET /tracking/{t} -> order {}, shipment {}",
                s["order_id"].as_str().unwrap_or("?"),
                s["shipment_id"].as_str().unwrap_or("?")
            );
        }
        if let Some(sku) = o["lines"][0]["sku"].as_str() {
            let inv = get(format!("/inventory/{sku}")).await?;
            println!(
                "    GET /inventory/{sku} -> on hand {}, reserved {}, available {} across {} warehouses",
                inv["on_hand"], inv["reserved"], inv["available"],
                inv["warehouses"].as_array().map_or(0, Vec::len)
            );
        }
    }
    if let Some(id) = page["orders"][0]["order_id"].as_str() {
        let o = get(format!("/orders/{id}")).await?;
        super::demo_console::run(config, &base, id, o["details"]["customer_email"].as_str())
            .await?;
    }
    let shipped = get("/orders?status=SHIPPED&limit=500".into()).await?;
    let backordered = get("/orders?status=BACKORDERED&limit=500".into()).await?;
    println!(
        "    GET /orders?status=SHIPPED -> {} orders on the first page; ?status=BACKORDERED -> {}",
        shipped["orders"].as_array().map_or(0, Vec::len),
        backordered["orders"].as_array().map_or(0, Vec::len)
    );
    api.abort();
    let _ = api.await;
    let _ = std::fs::remove_file(&store_path);
    Ok(())
}

//! Demo step: replay. In a namespace of the run's own, 600 Shopify orders
//! (one in ten without a `name`) go through normalize, allocation, routing
//! and both sinks while normalize maps the order number from the wrong
//! field (`order_number`); then the fix is replayed live (the plan, a
//! progress bar, the summary) and an order's number is shown before and
//! after in ClickHouse, with the stock untouched; last, a sandbox runs the
//! same orders under another policy (ship complete or wait, a 2-day
//! promise) and is diffed against live.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_connectors::publish::RawPublisher;
use conveyor_processors::catalog::Catalog;
use conveyor_processors::normalize::{example_raw, normalize, OrderNumberField};
use conveyor_runtime::config::{Config, StoreBackend};
use conveyor_runtime::kafka::{Admin, OutRecord, Producer};
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{InventoryEvent, InventoryEventKind, RawOrder};

const ORDERS: u64 = 600;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let run = super::demo::now_ms();
    let mut c = config.clone();
    c.topics.namespace = format!("demo-replay-{run}");
    c.channels.enabled = vec!["shopify".into()];
    c.channels.shopify.order_number_field = OrderNumberField::OrderNumber;
    let dir = std::env::temp_dir().join(&c.topics.namespace);
    c.state.dir = dir.join("stores").display().to_string();
    c.store.backend = StoreBackend::Embedded;
    c.store.path = dir.join("ops.redb").display().to_string();
    c.clickhouse.database = "conveyor_demo_replay".into();
    conveyor_sinks::clickhouse::server_client(&c.clickhouse)
        .query("DROP DATABASE IF EXISTS conveyor_demo_replay")
        .execute()
        .await?;
    conveyor_sinks::clickhouse::migrate::migrate(&c.clickhouse).await?;
    let topo = Topology::resolve(&c);
    Admin::new(&c.kafka)?.ensure_topics(&topo.topics).await?;

    // Inputs: the catalog, stock for every order, the raw orders.
    let codec = Arc::new(Codec::new(&c.schema_registry.url)?);
    let skus =
        conveyor_connectors::catalog_load::parse(&std::fs::read("examples/catalog.csv")?, run)
            .map_err(|_| anyhow::anyhow!("examples/catalog.csv does not parse"))?;
    conveyor_connectors::catalog_load::publish(&c, codec.clone(), &skus)
        .await
        .map_err(anyhow::Error::msg)?;
    let raws: Vec<RawOrder> = (0..ORDERS)
        .filter_map(|i| {
            let mut raw = example_raw("shopify", i)?;
            if i % 10 == 0 {
                let mut v: serde_json::Value = serde_json::from_slice(&raw.payload).ok()?;
                v.as_object_mut()?.remove("name");
                raw.payload = serde_json::to_vec(&v).ok()?;
            }
            raw.event_id = format!("shopify:demo-replay:{run}:{i}");
            raw.received_at = run;
            Some(raw)
        })
        .collect();
    let cat = Catalog::from_skus(skus.clone());
    let mut demand: BTreeMap<String, i64> = BTreeMap::new();
    let mut ids = Vec::new();
    for r in &raws {
        let n = normalize(r, &cat).map_err(|e| anyhow::anyhow!("{}", e.0))?;
        for l in &n.order.lines {
            *demand.entry(l.sku.clone()).or_default() += i64::from(l.quantity);
        }
        ids.push(n.order.order_id);
    }
    let inv = topo
        .topic_name("inventory_events")
        .unwrap_or("inventory.events");
    let producer = Producer::new(&c.kafka, "demo")?;
    let mut recs = Vec::new();
    for (sku, d) in &demand {
        let n = c.warehouses.len().max(1) as i64;
        for (k, w) in c.warehouses.iter().enumerate() {
            let units = *d;
            let share = units / n + if k == 0 { units % n } else { 0 };
            let e = InventoryEvent {
                event_id: format!("demo-replay:{run}:{sku}:{}", w.id),
                sku: sku.clone(),
                warehouse_id: w.id.clone(),
                kind: InventoryEventKind::Restock,
                quantity: share as i32,
                to_warehouse_id: None,
                reason: Some("demo receipt".into()),
                reference: None,
                occurred_at: run,
            };
            recs.push(
                OutRecord::new(inv)
                    .key(sku.clone())
                    .payload(codec.encode(inv, &e).await?),
            );
        }
    }
    for r in producer.send_batch(&recs).await {
        r?;
    }
    RawPublisher::new(&c, codec, "shopify", "demo")?
        .publish_all(&raws)
        .await?;
    println!(
        "  namespace {}: {ORDERS} raw Shopify orders (one in ten without `name`), stock for all of them; normalize maps the order number from `order_number` (the bug)",
        c.topics.namespace
    );
    super::replay::run_to_rest(&c).await?;
    let sample = &ids[7];
    let number = |db: &'static str| {
        let c = c.clone();
        let id = sample.clone();
        async move {
            let mut cfg = c.clickhouse.clone();
            cfg.database = db.into();
            conveyor_sinks::clickhouse::client(&cfg)
                .query("SELECT external_number FROM orders FINAL WHERE order_id = ?")
                .bind(id)
                .fetch_one::<String>()
                .await
        }
    };
    let stock = |db: &'static str| {
        let c = c.clone();
        async move {
            let mut cfg = c.clickhouse.clone();
            cfg.database = db.into();
            conveyor_sinks::clickhouse::client(&cfg)
                .query("SELECT sum(reserved), count() FROM inventory_levels")
                .fetch_one::<(i64, u64)>()
                .await
        }
    };
    let before = number("conveyor_demo_replay").await?;
    let reserved = stock("conveyor_demo_replay").await?;
    println!(
        "  the pipeline at rest (ClickHouse database conveyor_demo_replay): order {sample} has number {before:?}; {} units reserved",
        reserved.0
    );

    println!("  the fix (order_number_field = \"name\"), replayed live with the state kept:");
    let mut fixed = c.clone();
    fixed.channels.shopify.order_number_field = OrderNumberField::Name;
    super::replay::live(
        &fixed,
        "normalize",
        Some("shopify"),
        &super::replay::Range::all(false),
        true,
    )
    .await?;
    super::replay::run_to_rest(&fixed).await?;
    let after = number("conveyor_demo_replay").await?;
    let reserved_after = stock("conveyor_demo_replay").await?;
    println!(
        "  order {sample}: {before:?} -> {after:?} in ClickHouse (FINAL); reserved units {} -> {} (nothing reserved twice)",
        reserved.0, reserved_after.0
    );

    println!(
        "  allocation decided again from scratch (--reset-state), its inputs in event-time order:"
    );
    super::replay::live(
        &fixed,
        "allocate",
        None,
        &super::replay::Range::all(true),
        true,
    )
    .await?;
    super::replay::run_to_rest(&fixed).await?;
    let mut cfg = c.clickhouse.clone();
    cfg.database = "conveyor_demo_replay".into();
    let (redecided, total): (u64, u64) = conveyor_sinks::clickhouse::client(&cfg)
        .query(&format!(
            "SELECT countIf(version % {} > 0), count() FROM allocations FINAL",
            conveyor_sinks::event::GENERATIONS
        ))
        .fetch_one()
        .await?;
    let reserved_again = stock("conveyor_demo_replay").await?;
    println!(
        "  {redecided} of {total} allocations in ClickHouse are the replay's; reserved units {} -> {}",
        reserved_after.0, reserved_again.0
    );

    println!(
        "  a sandbox of the same orders: ship complete or wait, and a 2-day standard promise:"
    );
    let mut alt = fixed.clone();
    alt.allocation.default_policy.split = false;
    alt.allocation.default_policy.max_parcels = 1;
    alt.routing.promise_days.standard = 2;
    super::replay::sandbox_run(&alt, "demo", "earliest", "now", true, true).await?;
    let csv = dir.join("sandbox-demo-diff.csv");
    super::replay::diff_run(&alt, "demo", csv.to_str(), false).await?;
    Ok(())
}

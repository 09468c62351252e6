//! Demo step: allocation of the orders that just came in through the
//! channels, in a namespace of the run's own. Stock for about 80% of their demand arrives on
//! `inventory.events`, the four allocation jobs run in this process, and
//! the step prints what was allocated where (and how far it travels),
//! what was backordered, the stock ledger of one SKU and the alerts; then
//! a restock releases backordered orders in order of arrival. The route
//! jobs run alongside: every allocated parcel is boxed, zoned and
//! rate-shopped, and the step prints the carrier mix, what the labels will
//! cost, how many meet their SLA, and one plan with its alternatives. The
//! label job runs too, buying from the carrier simulator: labels, packing
//! slips and combined PDFs land in the document store. Last, the sync-back
//! job tells the channel simulators each parcel's tracking.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_processors::allocate::candidates::rank;
use conveyor_processors::allocate::harness::Watch;
use conveyor_processors::allocate::protocol::OrderRequest;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Consumer, OutRecord, Producer};
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{
    AllocationResult, AllocationStatus, CatalogSku, ExceptionRecord, InventoryAlert,
    InventoryEvent, InventoryEventKind, LabelStatus, LabeledShipment, OrderEvent, PlanStatus,
    PlannedShipment, StockMovement, SyncedShipment,
};
use rust_decimal::Decimal;

use super::demo_channels::{ends, read_from};

pub async fn run(
    config: &Config,
    orders: &[OrderEvent],
    catalog: &[CatalogSku],
    webhook_orders: std::ops::Range<u64>,
) -> anyhow::Result<Config> {
    // Its own namespace and state, so that this run's orders meet this
    // run's stock (the live topics keep every earlier demo's orders, which
    // would rank first as older).
    let run = super::demo::now_ms();
    let mut config = config.clone();
    config.topics.namespace = format!("demo-alloc-{run}");
    let state = std::env::temp_dir().join(&config.topics.namespace);
    config.state.dir = state.display().to_string();
    let config = &config;
    super::allocate::ensure_topics(config).await?;
    super::route::ensure_topics(config).await?;
    super::label::ensure_topics(config).await?;
    super::syncback::ensure_topics(config).await?;
    let topo = Topology::resolve(config);
    let name = |id: &str| topo.topic_name(id).unwrap_or(id).to_string();
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let probe = Consumer::new(
        &config.kafka,
        "demo",
        &format!("{}.demo-probe", config.kafka.group_prefix),
    )?;
    let parts = config.topics.partitions;
    let watched = [
        "shipments_synced",
        "exceptions",
        "shipments_labeled",
        "shipments_planned",
        "orders_allocated",
        "orders_backordered",
        "allocation_events",
        "inventory_alerts",
    ];
    let mut start = BTreeMap::new();
    for id in watched {
        start.insert(id, ends(&probe, &name(id), parts)?);
    }

    // The catalog route packs by; stock, then orders, below.
    conveyor_connectors::catalog_load::publish(config, codec.clone(), catalog)
        .await
        .map_err(anyhow::Error::msg)?;
    // Stock for ~80% of what these orders ask, spread over the warehouses.
    let requests: Vec<OrderRequest> = orders.iter().map(OrderRequest::from_event).collect();
    let mut demand: BTreeMap<String, i64> = BTreeMap::new();
    for r in requests
        .iter()
        .filter(|r| !r.fulfilled_by_channel && !r.cancelled)
    {
        for l in &r.lines {
            *demand.entry(l.sku.clone()).or_default() += l.quantity;
        }
    }
    let warehouses: Vec<&str> = config.warehouses.iter().map(|w| w.id.as_str()).collect();
    let mut stock = Vec::new();
    for (i, (sku, d)) in demand.iter().enumerate() {
        let units = (*d as f64 * 0.8).round() as i64;
        let n = warehouses.len().max(1);
        // Uneven: the i-th SKU keeps half or more in warehouse i mod n.
        let each = if n > 1 { units / 2 / (n as i64 - 1) } else { 0 };
        for (k, w) in warehouses.iter().enumerate() {
            let share = if k == i % n {
                units - each * (n as i64 - 1)
            } else {
                each
            };
            if share > 0 {
                stock.push(restock(run, sku, w, share, "demo receipt"));
            }
        }
    }
    publish(config, &codec, &name("inventory_events"), &stock).await?;
    println!(
        "  stock: {} restocks for {} SKUs ({} units, ~80% of the {} units ordered) to {}",
        stock.len(),
        demand.len(),
        stock.iter().map(|e| i64::from(e.quantity)).sum::<i64>(),
        demand.values().sum::<i64>(),
        name("inventory_events")
    );

    // Then the orders, as normalize emitted them.
    let producer = Producer::new(&config.kafka, "demo")?;
    let normalized = name("orders_normalized");
    for e in orders {
        let bytes = codec.encode(&normalized, e).await?;
        producer
            .send(
                &OutRecord::new(&normalized)
                    .key(e.order_id.clone())
                    .payload(bytes),
            )
            .await
            .map_err(|e| anyhow::anyhow!("publish order: {e}"))?;
    }
    println!(
        "  namespace {}: the {} orders normalize just emitted, copied to {normalized}",
        config.topics.namespace,
        orders.len()
    );

    let shutdown = Shutdown::new();
    let jobs = {
        let (c, s) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { super::allocate::run(&c, &s, Default::default()).await })
    };
    let route_jobs = {
        let (c, s) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { super::route::run(&c, &s, Default::default()).await })
    };
    // The label API: the carrier simulator, in this process.
    let sim = Arc::new(conveyor_connectors::simulate::carrier::Sim::new(
        config.label.api_token.expose(),
    ));
    let (sim_addr, _sim_task) = conveyor_connectors::simulate::carrier::serve(
        sim.clone(),
        ([127, 0, 0, 1], 0).into(),
        shutdown.token(),
    )
    .await?;
    let label_jobs = {
        let mut c = config.clone();
        c.label.api_url = format!("http://{sim_addr}");
        let s = shutdown.clone();
        tokio::spawn(async move { super::label::run(&c, &s, Default::default()).await })
    };
    // Sync-back: the channel simulators, in this process.
    let (sync_config, shops) =
        super::demo_syncback::start(config, webhook_orders, shutdown.token()).await?;
    let sync_jobs = {
        let s = shutdown.clone();
        tokio::spawn(
            async move { super::syncback::run(&sync_config, &s, Default::default()).await },
        )
    };
    let watch = Watch::with_syncback(config)?;
    let t = Instant::now();
    watch
        .wait_for_rest(Duration::from_secs(300), |_| {})
        .await?;
    let took = t.elapsed();

    let allocated: Vec<AllocationResult> = read_from(
        config,
        &codec,
        &name("orders_allocated"),
        &start["orders_allocated"],
    )
    .await?;
    let backordered: Vec<AllocationResult> = read_from(
        config,
        &codec,
        &name("orders_backordered"),
        &start["orders_backordered"],
    )
    .await?;
    let mine: BTreeMap<&str, &OrderRequest> =
        requests.iter().map(|r| (r.order_id.as_str(), r)).collect();
    // Each order's newest outcome: the last on `orders.allocated` (the
    // order's outcome log, in order: a backorder that supersedes an
    // allocation is there too), else its backorder.
    let mut last: BTreeMap<String, &AllocationResult> = BTreeMap::new();
    for r in backordered.iter().chain(&allocated) {
        if mine.contains_key(r.order_id.as_str()) {
            last.insert(r.order_id.clone(), r);
        }
    }
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut parcels = 0;
    let mut complete = 0;
    for r in last.values() {
        *by_status.entry(format!("{:?}", r.status)).or_default() += 1;
        if r.status == AllocationStatus::Allocated && !r.allocations.is_empty() {
            parcels += r.allocations.len();
            complete += usize::from(r.allocations.len() == 1);
        }
    }
    println!(
        "  allocate + inventory ran in this process (4 jobs, {} partitions) and came to rest in {:.1} s: {by_status:?}",
        parts,
        took.as_secs_f64()
    );
    let n_alloc = by_status.get("Allocated").copied().unwrap_or(0);
    if n_alloc > 0 {
        println!(
            "    {complete} of {n_alloc} allocated orders ship complete from one warehouse; {:.2} parcels per order",
            parcels as f64 / n_alloc as f64
        );
    }
    if let Some(r) = last
        .values()
        .find(|r| r.status == AllocationStatus::Allocated && r.allocations.len() > 1)
        .or_else(|| {
            last.values()
                .find(|r| r.status == AllocationStatus::Allocated)
        })
    {
        describe(config, r, mine[r.order_id.as_str()]);
    }
    let waiting: Vec<&AllocationResult> = last
        .values()
        .copied()
        .filter(|r| r.status == AllocationStatus::Backordered)
        .collect();
    if let Some(r) = waiting.first() {
        println!(
            "    e.g. {} backordered ({}): waiting for {}",
            r.order_id,
            r.policy,
            r.backordered
                .iter()
                .map(|l| format!("{} x{}", l.sku, l.quantity))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let movements: Vec<StockMovement> = read_from(
        config,
        &codec,
        &name("allocation_events"),
        &start["allocation_events"],
    )
    .await?;
    let alerts: Vec<InventoryAlert> = read_from(
        config,
        &codec,
        &name("inventory_alerts"),
        &start["inventory_alerts"],
    )
    .await?;
    println!(
        "  {} stock movements to {} (held, reserved, released, received: the ledger) and {} alerts to {}",
        movements.len(),
        name("allocation_events"),
        alerts.len(),
        name("inventory_alerts")
    );
    if let Some(a) = alerts.first() {
        println!(
            "    e.g. {:?} {} at {}: {} available (reorder point {})",
            a.kind,
            a.sku,
            a.warehouse_id.as_deref().unwrap_or("all"),
            a.available,
            a.reorder_point
        );
    }

    // A restock releases backordered orders, most urgent then oldest first.
    if let Some(sku) = waiting
        .first()
        .and_then(|r| r.backordered.first())
        .map(|l| l.sku.clone())
    {
        let wanted: i64 = waiting
            .iter()
            .flat_map(|r| &r.backordered)
            .filter(|l| l.sku == sku)
            .map(|l| i64::from(l.quantity))
            .sum();
        let before = ends(&probe, &name("orders_allocated"), parts)?;
        let receipt = restock(
            run + 1,
            &sku,
            warehouses.first().copied().unwrap_or("main"),
            wanted + 5,
            "demo PO receipt",
        );
        publish(config, &codec, &name("inventory_events"), &[receipt]).await?;
        watch
            .wait_for_rest(Duration::from_secs(120), |_| {})
            .await?;
        let released: Vec<AllocationResult> =
            read_from(config, &codec, &name("orders_allocated"), &before).await?;
        let released: Vec<&str> = released
            .iter()
            .filter(|r| {
                r.status == AllocationStatus::Allocated && mine.contains_key(r.order_id.as_str())
            })
            .map(|r| r.order_id.as_str())
            .collect();
        println!(
            "  restock of {} x{} at {}: {} backordered orders allocated (the queue serves the most urgent, then the oldest, first fit), e.g. {}",
            sku,
            wanted + 5,
            warehouses.first().copied().unwrap_or("main"),
            released.len(),
            released
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let plans: Vec<PlannedShipment> = read_from(
        config,
        &codec,
        &name("shipments_planned"),
        &start["shipments_planned"],
    )
    .await?;
    // The outcomes again, the restock's included.
    let allocated_now: Vec<AllocationResult> = read_from(
        config,
        &codec,
        &name("orders_allocated"),
        &start["orders_allocated"],
    )
    .await?;
    let backordered_now: Vec<AllocationResult> = read_from(
        config,
        &codec,
        &name("orders_backordered"),
        &start["orders_backordered"],
    )
    .await?;
    let mut last: BTreeMap<String, &AllocationResult> = BTreeMap::new();
    for r in backordered_now.iter().chain(&allocated_now) {
        if mine.contains_key(r.order_id.as_str()) {
            last.insert(r.order_id.clone(), r);
        }
    }
    let live: BTreeMap<&str, &AllocationResult> = last
        .iter()
        .filter(|(_, r)| r.status == AllocationStatus::Allocated)
        .map(|(id, r)| (id.as_str(), *r))
        .collect();
    describe_plans(&plans, &live, &name("shipments_planned"));
    let labeled: Vec<LabeledShipment> = read_from(
        config,
        &codec,
        &name("shipments_labeled"),
        &start["shipments_labeled"],
    )
    .await?;
    describe_labels(&labeled, &sim.purchases(), &name("shipments_labeled"));
    let synced: Vec<SyncedShipment> = read_from(
        config,
        &codec,
        &name("shipments_synced"),
        &start["shipments_synced"],
    )
    .await?;
    let raised: Vec<ExceptionRecord> =
        read_from(config, &codec, &name("exceptions"), &start["exceptions"]).await?;
    super::demo_syncback::describe(&synced, &raised, &shops, &name("shipments_synced"));
    shutdown.trigger();
    let mut summaries = jobs.await??;
    summaries.extend(route_jobs.await??);
    summaries.extend(label_jobs.await??);
    summaries.extend(sync_jobs.await??);
    for (job, s) in summaries {
        if s.dead_lettered > 0 {
            println!("    {job}: {} records to the DLQ", s.dead_lettered);
        }
    }
    std::fs::remove_dir_all(&state).ok();
    Ok(config.clone())
}

fn describe(config: &Config, r: &AllocationResult, req: &OrderRequest) {
    let km: BTreeMap<String, f64> = rank(
        &config.warehouses,
        &req.channel,
        &req.country,
        &req.postal_code,
    )
    .into_iter()
    .map(|c| (c.warehouse, c.cost_per_unit))
    .collect();
    println!(
        "    e.g. {} to ZIP {} ({}): {}",
        r.order_id,
        req.postal_code,
        r.policy,
        r.allocations
            .iter()
            .map(|a| format!(
                "{} ({:.0} km) <- {}",
                a.warehouse_id,
                km.get(&a.warehouse_id).copied().unwrap_or(0.0),
                a.lines
                    .iter()
                    .map(|l| format!("{} x{}", l.sku, l.quantity))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// The label step's summary: labels bought, what they cost, one
/// shipment's tracking number and documents.
fn describe_labels(
    labeled: &[LabeledShipment],
    sold: &conveyor_connectors::simulate::carrier::Purchases,
    topic: &str,
) {
    let unique: BTreeMap<&str, &LabeledShipment> = labeled
        .iter()
        .map(|l| (l.shipment_id.as_str(), l))
        .collect();
    let live: Vec<&&LabeledShipment> = unique
        .values()
        .filter(|l| l.status == LabelStatus::Labeled)
        .collect();
    let cost: Decimal = live.iter().map(|l| l.label_cost.amount).sum();
    let pages: i64 = unique
        .values()
        .map(|l| i64::from(l.packing_slip.pages))
        .sum();
    println!(
        "  label ran in this process against the carrier simulator: {} labels bought ({} shipments sold twice), {} voided and refunded after their plans were cancelled, {} to ship (${cost:.2}); {} packing slips ({pages} pages) and combined PDFs written, {} records on {topic}",
        sold.purchases,
        sold.duplicates,
        sold.refunds,
        live.len(),
        unique.len(),
        labeled.len()
    );
    if let Some(l) = live.iter().max_by_key(|l| l.packing_slip.pages) {
        println!(
            "    e.g. {}: {} {} tracking {} (${:.2})",
            l.shipment_id, l.carrier, l.service, l.tracking_number, l.label_cost.amount
        );
        for (what, d) in [
            ("label", Some(&l.label)),
            ("packing slip", Some(&l.packing_slip)),
            ("label + slip", l.combined.as_ref()),
        ] {
            if let Some(d) = d {
                println!(
                    "      {what:<13} {} ({} page{}, sha256 {}...)",
                    d.uri,
                    d.pages,
                    if d.pages == 1 { "" } else { "s" },
                    &d.sha256[..12]
                );
            }
        }
    }
}

/// The route step's summary: carrier mix, cost, SLA, one plan in full.
fn describe_plans(
    plans: &[PlannedShipment],
    allocated: &BTreeMap<&str, &AllocationResult>,
    topic: &str,
) {
    // The newest plan per order and warehouse (an order's plans are in one
    // partition, in order), of the orders allocated at the end.
    let mut newest: BTreeMap<(&str, &str), &PlannedShipment> = BTreeMap::new();
    for p in plans {
        newest.insert((p.order_id.as_str(), p.warehouse_id.as_str()), p);
    }
    newest.retain(|_, p| p.status == PlanStatus::Planned);
    let cancelled = plans
        .iter()
        .filter(|p| p.status == PlanStatus::Cancelled)
        .map(|p| p.shipment_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let latest: BTreeMap<&str, &PlannedShipment> = newest
        .into_iter()
        .filter(|((order, warehouse), _)| {
            allocated
                .get(order)
                .is_some_and(|r| r.allocations.iter().any(|a| a.warehouse_id == *warehouse))
        })
        .map(|(_, p)| (p.shipment_id.as_str(), p))
        .collect();
    let mut by_service: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    for p in latest.values() {
        let e = by_service
            .entry(format!("{}/{}", p.carrier, p.service))
            .or_default();
        e.0 += 1;
        e.1 += p.rate.amount;
    }
    let total: Decimal = latest.values().map(|p| p.rate.amount).sum();
    let met = latest.values().filter(|p| p.meets_sla).count();
    println!(
        "  route ran in this process (3 jobs): {} records on {topic}; the {} allocated orders ship {} parcels, labels ${total:.2} in all, {met} meet their SLA; {cancelled} plans cancelled (their allocation was superseded)",
        plans.len(),
        allocated.len(),
        latest.len()
    );
    println!(
        "    by service: {}",
        by_service
            .iter()
            .map(|(k, (n, cost))| format!("{k} {n} (${cost:.2})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Some(p) = latest
        .values()
        .find(|p| {
            p.alternatives
                .iter()
                .filter(|q| {
                    q.rejected_because
                        .as_deref()
                        .is_some_and(|r| r.starts_with("excluded") || r.starts_with("misses"))
                })
                .count()
                > 0
        })
        .or_else(|| latest.values().next())
    else {
        return;
    };
    println!(
        "    e.g. {} from {} to {} {}: {} box, {} g, zone {}, {} {} ${:.2}, arrives {}{}",
        p.shipment_id,
        p.warehouse_id,
        p.ship_to.region.as_deref().unwrap_or(""),
        p.ship_to.postal_code,
        p.parcel.box_type,
        p.parcel.weight_grams,
        p.zone.as_deref().unwrap_or("?"),
        p.carrier,
        p.service,
        p.rate.amount,
        p.estimated_delivery
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_string())
            .unwrap_or_default(),
        if p.meets_sla { "" } else { " (misses the SLA)" }
    );
    for q in &p.alternatives {
        if let Some(why) = &q.rejected_because {
            println!(
                "      {}/{} ${:.2}, {}d: {why}",
                q.carrier, q.service, q.rate.amount, q.transit_days
            );
        }
    }
}

fn restock(run: i64, sku: &str, warehouse: &str, quantity: i64, reason: &str) -> InventoryEvent {
    InventoryEvent {
        event_id: format!("demo:{run}:{sku}:{warehouse}"),
        sku: sku.to_string(),
        warehouse_id: warehouse.to_string(),
        kind: InventoryEventKind::Restock,
        quantity: quantity.clamp(0, i64::from(i32::MAX)) as i32,
        to_warehouse_id: None,
        reason: Some(reason.to_string()),
        reference: Some(format!("DEMO-{run}")),
        occurred_at: run,
    }
}

async fn publish(
    config: &Config,
    codec: &Codec,
    topic: &str,
    events: &[InventoryEvent],
) -> anyhow::Result<()> {
    let producer = Producer::new(&config.kafka, "demo")?;
    for e in events {
        let bytes = codec.encode(topic, e).await?;
        producer
            .send(&OutRecord::new(topic).key(e.sku.clone()).payload(bytes))
            .await
            .map_err(|e| anyhow::anyhow!("publish stock: {e}"))?;
    }
    Ok(())
}

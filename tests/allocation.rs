//! Allocation against the real broker and registry (`conveyor run
//! allocate` as a child process, 4 partitions per topic):
//!
//! - a seeded workload ends at rest with no oversell, every order
//!   allocated (exactly its quantities reserved), backordered, cancelled or
//!   fulfilled by the channel, its last outcome on the topics saying so,
//!   refused stock events in the DLQ with their reason, and alerts raised;
//! - 10k orders (50k with ALLOCATION_TEST_ORDERS=50000) over 500 SKUs
//!   with the allocation process SIGKILLed five times mid-run: the same checks, and both stores equal to a crash-free
//!   run of the two jobs over the logs they read (each key's state depends
//!   only on its own commands, in log order), so nothing was applied twice
//!   or lost.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::allocation::*;
use conveyor_processors::allocate::jobs;
use conveyor_processors::allocate::order::{self, OrderState, Phase};
use conveyor_processors::allocate::protocol::{AllocCommand, InvCommand};
use conveyor_processors::allocate::sim::{check_settled, check_stock};
use conveyor_processors::allocate::workload::{self, Workload};
use conveyor_processors::inventory::sku::SkuState;
use conveyor_schemas::records::{
    AllocationResult, AllocationStatus, DlqRecord, InventoryAlert, MovementKind, StockMovement,
};

fn warehouse_ids(s: &Setup) -> Vec<String> {
    s.config.warehouses.iter().map(|w| w.id.clone()).collect()
}

/// The checks every run ends with: no oversell, a balanced ledger, every
/// order in exactly one final state that its last outcome reports.
async fn check_at_rest(
    s: &Setup,
    w: &Workload,
    orders: &HashMap<String, OrderState>,
    skus: &BTreeMap<String, SkuState>,
) -> BTreeMap<&'static str, usize> {
    check_stock(skus).unwrap();
    check_settled(orders, skus, &jobs::plan(&s.config)).unwrap();
    let stocked: i64 = w
        .stock
        .iter()
        .filter(|e| s.config.warehouses.iter().any(|x| x.id == e.warehouse_id))
        .map(|e| i64::from(e.quantity))
        .sum();
    let on_hand: i64 = skus
        .values()
        .flat_map(|s| s.stock.levels().map(|(_, l)| l.on_hand))
        .sum();
    assert_eq!(on_hand, stocked, "nothing shipped: on hand = received");

    // What the order's state says it announced last is on the topics.
    let mut outcomes: Vec<AllocationResult> = decode_all(s, "orders_allocated").await;
    outcomes.extend(decode_all::<AllocationResult>(s, "orders_backordered").await);
    let by_fingerprint: HashMap<String, AllocationResult> = outcomes
        .into_iter()
        .map(|r| (order::fingerprint(&r), r))
        .collect();
    let mut phases: BTreeMap<&'static str, usize> = BTreeMap::new();
    for o in &w.orders {
        let st = orders
            .get(&o.order_id)
            .unwrap_or_else(|| panic!("{} never reached allocate", o.order_id));
        let (name, want) = match st.phase {
            Phase::Allocated => ("allocated", AllocationStatus::Allocated),
            Phase::Backordered => ("backordered", AllocationStatus::Backordered),
            Phase::Cancelled => ("cancelled", AllocationStatus::Released),
            Phase::FulfilledByChannel => {
                ("fulfilled_by_channel", AllocationStatus::FulfilledByChannel)
            }
            Phase::Holding => unreachable!("check_settled refuses holding orders"),
        };
        *phases.entry(name).or_default() += 1;
        let out = st
            .last_outcome
            .as_ref()
            .and_then(|f| by_fingerprint.get(f))
            .unwrap_or_else(|| panic!("{}: its last outcome was not emitted", o.order_id));
        assert_eq!(out.status, want, "{}: last outcome {out:?}", o.order_id);
        if want == AllocationStatus::Allocated {
            let units: i64 = out
                .allocations
                .iter()
                .flat_map(|a| &a.lines)
                .map(|l| i64::from(l.quantity))
                .sum();
            assert_eq!(units, o.lines.iter().map(|l| l.quantity).sum::<i64>());
        }
    }
    phases
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_comes_to_rest_allocated_backordered_or_cancelled_never_oversold() {
    let s = Setup::new("alloc").await;
    let mut w = workload::generate(11, 600, 40, &warehouse_ids(&s), 0.8, 1_700_000_000_000);
    // A stock event for a warehouse nobody configured, and a cancellation.
    let mut bad = w.stock[0].clone();
    bad.event_id = "bad-warehouse".into();
    bad.warehouse_id = "nowhere".into();
    w.stock.push(bad);
    let mut cancel = w.orders[3].clone();
    cancel.version = 2;
    cancel.cancelled = true;
    cancel.id = "cancel-3".into();
    cancel.at += 10_000;
    s.publish(&w).await;
    s.publish(&Workload {
        skus: vec![],
        stock: vec![],
        orders: vec![cancel.clone()],
    })
    .await;
    w.orders[3] = cancel;

    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let inst = Instance::start(&s.ns, state.path(), &logs.path().join("run.log"));
    s.wait_for_rest(Duration::from_secs(240)).await;
    let summary = inst.stop();
    eprintln!("{summary:?}");

    let (orders, skus) = (orders(state.path()), skus(state.path()));
    let phases = check_at_rest(&s, &w, &orders, &skus).await;
    eprintln!("phases: {phases:?}");
    assert_eq!(phases.get("cancelled"), Some(&1));
    assert!(phases["allocated"] > 400, "{phases:?}");
    assert!(phases["backordered"] > 0, "{phases:?}");

    let dlq: Vec<DlqRecord> = decode_all(&s, "orders_dlq").await;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert!(
        dlq[0].reason.contains("`nowhere` is not configured"),
        "{:?}",
        dlq[0]
    );
    assert_eq!(summary["inventory"]["dead_lettered"], 1);

    let movements: Vec<StockMovement> = decode_all(&s, "allocation_events").await;
    let received: i64 = movements
        .iter()
        .filter(|m| m.kind == MovementKind::Received)
        .map(|m| i64::from(m.quantity))
        .sum();
    let stocked: i64 = w.stock[..w.stock.len() - 1]
        .iter()
        .map(|e| i64::from(e.quantity))
        .sum();
    assert_eq!(received, stocked);
    let alerts: Vec<InventoryAlert> = decode_all(&s, "inventory_alerts").await;
    assert!(!alerts.is_empty(), "stock ran low somewhere");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_five_times_mid_run_oversells_nothing_and_changes_nothing() {
    // 10k orders in CI's debug build; ALLOCATION_TEST_ORDERS=50000 for
    // the full size (see docs/allocation.md for its timing).
    let n_orders: usize = std::env::var("ALLOCATION_TEST_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s = Setup::new("alloc-crash").await;
    let w = workload::generate(
        2026,
        n_orders,
        500,
        &warehouse_ids(&s),
        0.8,
        1_700_000_000_000,
    );
    s.publish(&w).await;
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(5);
    let decided = |s: &Setup| s.count("orders_allocated") + s.count("orders_backordered");
    for k in 0..5 {
        let inst = Instance::start(
            &s.ns,
            state.path(),
            &logs.path().join(format!("run{k}.log")),
        );
        // Somewhere in the next stretch of progress.
        let target = decided(&s) + (n_orders as i64 / 7) * rng.i64(5..15) / 10;
        let deadline = Instant::now() + Duration::from_secs(600);
        while decided(&s) < target {
            assert!(Instant::now() < deadline, "no progress in run {k}");
            tokio::time::sleep(Duration::from_millis(rng.u64(20..200))).await;
        }
        inst.kill9();
        eprintln!(
            "run {k}: killed at ~{target} outcomes after {:?}",
            started.elapsed()
        );
    }
    let last = Instance::start(&s.ns, state.path(), &logs.path().join("final.log"));
    s.wait_for_rest(Duration::from_secs(1200)).await;
    let summary = last.stop();
    eprintln!("final run: {summary:?} after {:?}", started.elapsed());

    let (orders, skus) = (orders(state.path()), skus(state.path()));
    let phases = check_at_rest(&s, &w, &orders, &skus).await;
    eprintln!("phases: {phases:?}");
    assert!(
        phases["backordered"] > 0 && phases["allocated"] > n_orders / 2,
        "{phases:?}"
    );

    // A crash-free run over the same logs reaches the same states.
    let plan = jobs::plan(&s.config);
    let rules = jobs::rules(&s.config);
    let crash_free_orders: BTreeMap<String, OrderState> = fold(
        &s.read("commands_allocate").await,
        |c: &AllocCommand| (c.id().to_string(), c.order_id().to_string()),
        |prior, c| {
            order::handle(prior, c, &plan)
                .ok()
                .and_then(|(next, _)| next)
        },
    );
    assert_eq!(crash_free_orders.len(), orders.len());
    for (id, st) in &orders {
        assert_eq!(Some(st), crash_free_orders.get(id), "order {id}");
    }
    let crash_free_skus: BTreeMap<String, SkuState> = fold(
        &s.read("commands_inventory").await,
        |c: &InvCommand| (c.id().to_string(), c.sku().to_string()),
        |prior, c| {
            let mut s: SkuState = prior.unwrap_or_default();
            s.apply(c, &rules).is_ok().then_some(s)
        },
    );
    assert_eq!(crash_free_skus, skus, "stock differs from a crash-free run");
}

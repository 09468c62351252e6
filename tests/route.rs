//! Routing against the real broker and registry: `conveyor run allocate`
//! and `conveyor run route` as child processes over a seeded workload (4
//! partitions per topic), the route process SIGKILLed twice mid-run:
//!
//! - every order allocated at rest has exactly one live planned shipment
//!   per warehouse of its last allocation, with exactly those lines;
//! - a shipment id never carries two different plans, and every re-emitted
//!   plan is identical to the first (G2);
//! - the plans and the route store equal a crash-free run of the route job
//!   over the log it read (same inputs + config => same outputs, G6);
//! - nothing went to the DLQ.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::allocation::*;
use conveyor_processors::allocate::harness::Watch;
use conveyor_processors::allocate::order::Phase;
use conveyor_processors::allocate::workload;
use conveyor_processors::catalog::Catalog;
use conveyor_processors::route::jobs::SHIPMENTS_TABLE;
use conveyor_processors::route::order::{handle, RouteCommand, RouteState};
use conveyor_processors::route::plan::Router;
use conveyor_schemas::records::{AllocationResult, DlqRecord, PlanStatus, PlannedShipment};

#[tokio::test(flavor = "multi_thread")]
async fn every_allocated_parcel_is_planned_once_and_crashes_change_no_plan() {
    let s = Setup::new("route").await;
    let warehouses: Vec<String> = s.config.warehouses.iter().map(|w| w.id.clone()).collect();
    let w = workload::generate(23, 3000, 120, &warehouses, 0.9, 1_790_000_000_000);
    s.publish(&w).await;

    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let alloc = Instance::start(&s.ns, state.path(), &logs.path().join("allocate.log"));
    let start_route = |n: usize| {
        Instance::stage(
            "route",
            &s.ns,
            state.path(),
            &logs.path().join(format!("route-{n}.log")),
        )
    };
    let mut route = start_route(0);
    // Two SIGKILLs while plans are being written.
    for (n, at) in [(1, 600), (2, 1500)] {
        let deadline = Instant::now() + Duration::from_secs(300);
        while s.count("shipments_planned") < at {
            assert!(Instant::now() < deadline, "no progress to {at} plans");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        route.kill9();
        eprintln!("route killed at ~{at} plans");
        route = start_route(n);
    }
    Watch::with_route(&s.config)
        .unwrap()
        .wait_for_rest(Duration::from_secs(300), |_| {})
        .await
        .unwrap();
    let summary = route.stop();
    alloc.stop();
    eprintln!("{summary:?}");

    // Re-emissions are identical; a shipment id has one plan, and at most
    // one cancellation, after it.
    let planned: Vec<PlannedShipment> = decode_all(&s, "shipments_planned").await;
    let mut by_event: BTreeMap<String, PlannedShipment> = BTreeMap::new();
    let mut by_shipment: BTreeMap<String, PlannedShipment> = BTreeMap::new();
    let mut cancelled: BTreeMap<String, PlannedShipment> = BTreeMap::new();
    for p in &planned {
        if let Some(first) = by_event.insert(p.event_id.clone(), p.clone()) {
            assert_eq!(&first, p, "re-emission differs");
        }
        let map = match p.status {
            PlanStatus::Planned => &mut by_shipment,
            PlanStatus::Cancelled => {
                assert!(
                    by_shipment.contains_key(&p.shipment_id),
                    "{} cancelled before it was planned",
                    p.shipment_id
                );
                &mut cancelled
            }
        };
        if let Some(first) = map.insert(p.shipment_id.clone(), p.clone()) {
            assert_eq!(&first, p, "two plans under shipment id {}", p.shipment_id);
        }
    }
    eprintln!(
        "{} plan records, {} shipments, {} cancelled",
        planned.len(),
        by_shipment.len(),
        cancelled.len()
    );

    // A crash-free run over the log the route job read gives the same
    // plans and the same store.
    let router = Router::new(s.config.routing.clone(), &s.config.warehouses);
    let catalog = Catalog::from_skus(workload::catalog(&w));
    let mut offline: Vec<PlannedShipment> = Vec::new();
    let log = s.read("commands_route").await;
    let folded: BTreeMap<String, RouteState> = fold(
        &log,
        |c: &RouteCommand| {
            let id = match c {
                RouteCommand::Order(o) => o.id.clone(),
                RouteCommand::Allocation(a) => a.event_id.clone(),
            };
            (id, c.order_id().to_string())
        },
        |prior: Option<RouteState>, c| {
            let mut st = prior.unwrap_or_default();
            offline.extend(handle(&mut st, c, &router, &catalog).expect("every plan succeeds"));
            Some(st)
        },
    );
    let split = |status: PlanStatus| -> BTreeMap<String, PlannedShipment> {
        offline
            .iter()
            .filter(|p| p.status == status)
            .map(|p| (p.shipment_id.clone(), p.clone()))
            .collect()
    };
    let (offline_planned, offline_cancelled) =
        (split(PlanStatus::Planned), split(PlanStatus::Cancelled));
    assert_eq!(offline_planned.len(), by_shipment.len());
    assert!(
        offline_planned == by_shipment,
        "online plans differ from a crash-free run"
    );
    assert!(
        offline_cancelled == cancelled,
        "online cancellations differ from a crash-free run"
    );
    let stored: BTreeMap<String, RouteState> =
        store(&state.path().join("route.shipments"), SHIPMENTS_TABLE);
    assert!(
        stored == folded,
        "the route store differs from a crash-free run"
    );

    // Every allocated order: one live shipment per warehouse of its last
    // allocation, with its lines.
    let allocations: Vec<AllocationResult> = decode_all(&s, "orders_allocated").await;
    let by_fingerprint: HashMap<String, AllocationResult> = allocations
        .into_iter()
        .map(|r| (conveyor_processors::allocate::order::fingerprint(&r), r))
        .collect();
    let mut allocated = 0;
    for (id, o) in orders(state.path()) {
        if o.phase != Phase::Allocated {
            // Not allocated in the end (backordered, cancelled,
            // channel-fulfilled): nothing of it ships.
            if let Some(st) = stored.get(&id) {
                let live: Vec<_> = st
                    .shipments
                    .values()
                    .flatten()
                    .filter(|x| !x.released)
                    .collect();
                assert!(live.is_empty(), "{id} is {:?} but ships {live:?}", o.phase);
            }
            continue;
        }
        allocated += 1;
        let last = &by_fingerprint[o.last_outcome.as_ref().unwrap()];
        let st = &stored[&id];
        for wa in &last.allocations {
            let live: Vec<_> = st.shipments[&wa.warehouse_id]
                .iter()
                .filter(|x| !x.released)
                .collect();
            assert_eq!(live.len(), 1, "{id} at {}", wa.warehouse_id);
            assert_eq!(live[0].lines, wa.lines);
            assert_eq!(by_shipment[&live[0].shipment_id].lines, wa.lines);
        }
        let live_total = st
            .shipments
            .values()
            .flatten()
            .filter(|x| !x.released)
            .count();
        assert_eq!(live_total, last.allocations.len(), "{id}");
        // Every released shipment was published cancelled; no live one was.
        for x in st.shipments.values().flatten() {
            assert_eq!(
                cancelled.contains_key(&x.shipment_id),
                x.released,
                "{}",
                x.shipment_id
            );
        }
    }
    assert!(allocated > 2000, "{allocated} allocated");
    let dlq: Vec<DlqRecord> = decode_all(&s, "orders_dlq").await;
    assert!(dlq.is_empty(), "{dlq:?}");
    // Rate shopping chose across carriers, and most plans meet their SLA.
    eprintln!(
        "carriers: {:?}",
        by_shipment
            .values()
            .fold(BTreeMap::<&str, usize>::new(), |mut m, p| {
                *m.entry(p.carrier.as_str()).or_default() += 1;
                m
            })
    );
    let carriers: std::collections::BTreeSet<&str> =
        by_shipment.values().map(|p| p.carrier.as_str()).collect();
    assert!(carriers.len() >= 2, "{carriers:?}");
    let met = by_shipment.values().filter(|p| p.meets_sla).count();
    assert!(
        met * 2 >= by_shipment.len(),
        "{met} of {} meet the SLA",
        by_shipment.len()
    );
}

//! The route job's state machine per order: join the order (from
//! `orders.normalized`) with its allocations (from `orders.allocated`),
//! both forwarded into the one log `route.commands` keyed by order id, and
//! plan one shipment per warehouse allocation.
//!
//! - The two feeds race: an allocation may arrive before the order version
//!   it was made for. It then waits in the state and is planned when that
//!   version (or a newer one) arrives.
//! - Shipment ids are `<order_id>/<warehouse_id>/<n>`. The first parcel
//!   from a warehouse is n = 1. A later allocation (an edit, a re-allocation
//!   after a revocation) that gives that warehouse the same lines plans
//!   nothing new; different lines make shipment n + 1, which supersedes n.
//!   So a re-delivered or replayed allocation never makes a second shipment
//!   (G2), and label can buy by shipment id.
//! - A release (cancellation, or an edit's release before re-allocating),
//!   and an outcome that allocates nothing (backordered after a revocation,
//!   channel-fulfilled), mark the order's shipments released; they plan
//!   nothing.
//! - A shipment superseded or released is published once more, as a
//!   CANCELLED plan, before the plans that replace it: label voids its
//!   label and sync-back withdraws its tracking (allocation outcomes can
//!   be superseded by design, docs/allocation.md, and a label bought for
//!   the first one must not ship).
//!
//! Event ids derive from the allocation's event id and the shipment's index
//! in it; `planned_at` is the allocation's event time, and a CANCELLED
//! record's is never at or before the plan it cancels (an allocation can be
//! decided later with an earlier event time, and the sinks keep the newest
//! event time per shipment).

use std::collections::BTreeMap;

use conveyor_schemas::records::{
    Address, AllocationResult, AllocationStatus, LineQty, Money, Parcel, PlanStatus,
    PlannedShipment,
};
use conveyor_stream::event_id;
use serde::{Deserialize, Serialize};

use super::plan::{plan, RouteError, Router, ShipOrder};
use crate::catalog::Catalog;

/// The route job's log, key = order id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteCommand {
    /// A version of the order (forwarded from `orders.normalized`).
    Order(Box<ShipOrder>),
    /// An allocation outcome (forwarded from `orders.allocated`).
    Allocation(AllocationResult),
}

impl RouteCommand {
    pub fn order_id(&self) -> &str {
        match self {
            RouteCommand::Order(o) => &o.order_id,
            RouteCommand::Allocation(a) => &a.order_id,
        }
    }
}

/// One shipment planned for an order from a warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: String,
    pub lines: Vec<LineQty>,
    /// Superseded by a later shipment, or released with the order.
    pub released: bool,
    /// The plan's event time (its allocation's).
    #[serde(default)]
    pub planned_at: i64,
}

/// Per order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteState {
    /// The newest version of the order seen.
    pub order: Option<ShipOrder>,
    /// An allocation waiting for the order version it was made for.
    pub pending: Option<AllocationResult>,
    /// Shipments per warehouse, oldest first.
    pub shipments: BTreeMap<String, Vec<Shipment>>,
}

/// Applies one command; returns the shipments to publish.
pub fn handle(
    state: &mut RouteState,
    cmd: &RouteCommand,
    router: &Router,
    catalog: &Catalog,
) -> Result<Vec<PlannedShipment>, RouteError> {
    match cmd {
        RouteCommand::Order(o) => {
            if state
                .order
                .as_ref()
                .is_some_and(|held| held.version > o.version)
            {
                return Ok(vec![]);
            }
            state.order = Some(o.as_ref().clone());
            match state.pending.take() {
                Some(a) if a.order_version <= o.version => plan_all(state, &a, router, catalog),
                other => {
                    state.pending = other;
                    Ok(vec![])
                }
            }
        }
        RouteCommand::Allocation(a) => match a.status {
            AllocationStatus::Allocated | AllocationStatus::PartiallyAllocated => {
                match &state.order {
                    Some(o) if o.version >= a.order_version => plan_all(state, a, router, catalog),
                    _ => {
                        state.pending = Some(a.clone());
                        Ok(vec![])
                    }
                }
            }
            // A release, and an outcome that allocates nothing (the order
            // started over after a revocation and found no stock), end
            // whatever the order shipped before.
            AllocationStatus::Released
            | AllocationStatus::Backordered
            | AllocationStatus::FulfilledByChannel => {
                state.pending = None;
                let mut out = Vec::new();
                for (w, history) in state.shipments.iter_mut() {
                    for s in history.iter_mut().filter(|s| !s.released) {
                        s.released = true;
                        out.push(cancelled(
                            router,
                            state.order.as_ref(),
                            &a.order_id,
                            w,
                            s,
                            event_id(&a.event_id, out.len()),
                            a.decided_at,
                        ));
                    }
                }
                Ok(out)
            }
        },
    }
}

fn plan_all(
    state: &mut RouteState,
    a: &AllocationResult,
    router: &Router,
    catalog: &Catalog,
) -> Result<Vec<PlannedShipment>, RouteError> {
    let Some(order) = state.order.clone() else {
        return Ok(vec![]);
    };
    let mut plans = Vec::new();
    // (warehouse, shipment) newly superseded or released.
    let mut cancels: Vec<(String, Shipment)> = Vec::new();
    let mut next = state.shipments.clone();
    for (i, wa) in a.allocations.iter().enumerate() {
        let history = next.entry(wa.warehouse_id.clone()).or_default();
        if history
            .last()
            .is_some_and(|s| !s.released && s.lines == wa.lines)
        {
            continue;
        }
        for s in history.iter_mut().filter(|s| !s.released) {
            s.released = true;
            cancels.push((wa.warehouse_id.clone(), s.clone()));
        }
        let shipment_id = format!("{}/{}/{}", a.order_id, wa.warehouse_id, history.len() + 1);
        let planned = plan(
            router,
            catalog,
            &order,
            wa,
            shipment_id.clone(),
            event_id(&a.event_id, i),
            a.decided_at,
        )?;
        history.push(Shipment {
            shipment_id,
            lines: wa.lines.clone(),
            released: false,
            planned_at: a.decided_at,
        });
        plans.push(planned);
    }
    // Warehouses this allocation no longer ships from.
    for (w, history) in next.iter_mut() {
        if !a.allocations.iter().any(|wa| &wa.warehouse_id == w) {
            for s in history.iter_mut().filter(|s| !s.released) {
                s.released = true;
                cancels.push((w.clone(), s.clone()));
            }
        }
    }
    state.shipments = next;
    // Cancels first (label voids before it buys the replacement); their
    // event ids follow the plans' indexes.
    let base = a.allocations.len();
    let mut out: Vec<PlannedShipment> = cancels
        .iter()
        .enumerate()
        .map(|(k, (w, s))| {
            cancelled(
                router,
                Some(&order),
                &a.order_id,
                w,
                s,
                event_id(&a.event_id, base + k),
                a.decided_at,
            )
        })
        .collect();
    out.extend(plans);
    Ok(out)
}

/// The CANCELLED record of a shipment superseded by a later plan or
/// released with its order: its id, warehouse, lines and the order's
/// ship-to; no carrier, service, parcel or rate (label voids its label).
fn cancelled(
    router: &Router,
    order: Option<&ShipOrder>,
    order_id: &str,
    warehouse_id: &str,
    shipment: &Shipment,
    event_id: String,
    at_ms: i64,
) -> PlannedShipment {
    // Never at or before the plan it cancels: an allocation can be decided
    // later with an earlier event time (holds revoked and taken again), and
    // the sinks keep the newer event time per shipment.
    let at_ms = at_ms.max(shipment.planned_at.saturating_add(1));
    PlannedShipment {
        event_id,
        shipment_id: shipment.shipment_id.clone(),
        order_id: order_id.to_string(),
        warehouse_id: warehouse_id.to_string(),
        lines: shipment.lines.clone(),
        ship_to: order.map(|o| o.ship_to.clone()).unwrap_or(Address {
            name: String::new(),
            company: None,
            line1: String::new(),
            line2: None,
            city: String::new(),
            region: None,
            postal_code: String::new(),
            country: String::new(),
            phone: None,
        }),
        parcel: Parcel {
            box_type: String::new(),
            weight_grams: 0,
            length_mm: 0,
            width_mm: 0,
            height_mm: 0,
        },
        carrier: String::new(),
        service: String::new(),
        rate: Money::from_cents(0, router.currency()),
        zone: None,
        ship_by: None,
        estimated_delivery: None,
        meets_sla: false,
        alternatives: Vec::new(),
        config_version: router.config_version.clone(),
        planned_at: at_ms,
        order_number: order.map(|o| o.number.clone()),
        ordered_at: order.map(|o| o.created_at),
        gift_message: None,
        line_names: BTreeMap::new(),
        bins: BTreeMap::new(),
        status: PlanStatus::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use conveyor_schemas::records::{PlanStatus, Priority, WarehouseAllocation};

    use super::*;
    use crate::route::plan::fixtures::*;

    fn allocation(
        id: &str,
        version: i64,
        status: AllocationStatus,
        parts: Vec<WarehouseAllocation>,
    ) -> RouteCommand {
        RouteCommand::Allocation(AllocationResult {
            event_id: id.into(),
            order_id: "shopify-1001".into(),
            order_version: version,
            status,
            allocations: parts,
            backordered: vec![],
            policy: "ship-complete".into(),
            config_version: "x".into(),
            decided_at: ms("2026-11-23T15:00:00Z"),
        })
    }

    fn the_order(version: i64) -> RouteCommand {
        let mut o = order(
            Priority::Standard,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        o.version = version;
        RouteCommand::Order(Box::new(o))
    }

    fn ids(v: &[PlannedShipment]) -> Vec<&str> {
        v.iter().map(|p| p.shipment_id.as_str()).collect()
    }

    #[test]
    fn an_allocation_before_its_order_waits_for_it() {
        let (r, c) = (router(), catalog());
        let mut s = RouteState::default();
        let a = allocation(
            "a1",
            2,
            AllocationStatus::Allocated,
            vec![alloc("nj-edison", "BOOSTER", 1)],
        );
        assert!(handle(&mut s, &a, &r, &c).unwrap().is_empty());
        // Version 1 is older than what the allocation was made for.
        assert!(handle(&mut s, &the_order(1), &r, &c).unwrap().is_empty());
        let out = handle(&mut s, &the_order(2), &r, &c).unwrap();
        assert_eq!(ids(&out), ["shopify-1001/nj-edison/1"]);
        assert_eq!(out[0].event_id, event_id("a1", 0));
        assert!(s.pending.is_none());
        // An older order version arriving late changes nothing.
        assert!(handle(&mut s, &the_order(1), &r, &c).unwrap().is_empty());
        assert_eq!(s.order.as_ref().unwrap().version, 2);
    }

    #[test]
    fn a_cancel_never_predates_the_plan_it_cancels() {
        let (r, c) = (router(), catalog());
        let mut s = RouteState::default();
        handle(&mut s, &the_order(1), &r, &c).unwrap();
        let at = |cmd: RouteCommand, t: &str| match cmd {
            RouteCommand::Allocation(mut a) => {
                a.decided_at = ms(t);
                RouteCommand::Allocation(a)
            }
            other => other,
        };
        let first = allocation(
            "a1",
            1,
            AllocationStatus::Allocated,
            vec![alloc("nj-edison", "BOOSTER", 1)],
        );
        let out = handle(&mut s, &at(first, "2026-11-23T17:00:00Z"), &r, &c).unwrap();
        let planned = out[0].planned_at;
        // Decided later, with an earlier event time (holds revoked and
        // taken again): the cancel sorts after the plan, the new plan keeps
        // its allocation's time.
        let second = allocation(
            "a2",
            1,
            AllocationStatus::Allocated,
            vec![alloc("tx-dallas", "BOOSTER", 1)],
        );
        let out = handle(&mut s, &at(second, "2026-11-23T08:00:00Z"), &r, &c).unwrap();
        let of = |st: PlanStatus| out.iter().find(|p| p.status == st).unwrap();
        assert!(of(PlanStatus::Cancelled).planned_at > planned);
        assert_eq!(
            of(PlanStatus::Planned).planned_at,
            ms("2026-11-23T08:00:00Z")
        );
        // Released with the order: also after the plan.
        let release = at(
            allocation("a3", 2, AllocationStatus::Released, vec![]),
            "2026-11-23T07:00:00Z",
        );
        let out = handle(&mut s, &release, &r, &c).unwrap();
        assert!(out[0].planned_at > ms("2026-11-23T08:00:00Z"));
    }

    #[test]
    fn a_repeated_allocation_plans_nothing_and_a_changed_one_supersedes() {
        let (r, c) = (router(), catalog());
        let mut s = RouteState::default();
        handle(&mut s, &the_order(1), &r, &c).unwrap();
        let split = vec![
            alloc("nj-edison", "BOOSTER", 1),
            alloc("tx-dallas", "BOOSTER", 2),
        ];
        let a = allocation("a1", 1, AllocationStatus::Allocated, split.clone());
        let out = handle(&mut s, &a, &r, &c).unwrap();
        assert_eq!(
            ids(&out),
            ["shopify-1001/nj-edison/1", "shopify-1001/tx-dallas/1"]
        );
        // The same allocation again (a replay under another event id).
        let again = allocation("a1-replayed", 1, AllocationStatus::Allocated, split);
        assert!(handle(&mut s, &again, &r, &c).unwrap().is_empty());
        // An edit: Edison now ships 3, Dallas nothing.
        let edit = allocation(
            "a2",
            1,
            AllocationStatus::Allocated,
            vec![alloc("nj-edison", "BOOSTER", 3)],
        );
        let out = handle(&mut s, &edit, &r, &c).unwrap();
        // The superseded shipments are cancelled first, then the new plan.
        assert_eq!(
            ids(&out),
            [
                "shopify-1001/nj-edison/1",
                "shopify-1001/tx-dallas/1",
                "shopify-1001/nj-edison/2"
            ]
        );
        let status: Vec<PlanStatus> = out.iter().map(|p| p.status).collect();
        assert_eq!(
            status,
            [
                PlanStatus::Cancelled,
                PlanStatus::Cancelled,
                PlanStatus::Planned
            ]
        );
        assert_eq!(out[0].lines, alloc("nj-edison", "BOOSTER", 1).lines);
        assert_eq!(out[0].carrier, "");
        // Event ids: the plan keeps index 0, the cancels follow the
        // allocation's warehouses.
        assert_eq!(out[2].event_id, event_id("a2", 0));
        assert_eq!(out[0].event_id, event_id("a2", 1));
        assert_eq!(out[1].event_id, event_id("a2", 2));
        let released = |s: &RouteState, w: &str| {
            s.shipments[w]
                .iter()
                .map(|x| x.released)
                .collect::<Vec<_>>()
        };
        assert_eq!(released(&s, "nj-edison"), [true, false]);
        assert_eq!(released(&s, "tx-dallas"), [true]);
        // Cancelled: everything released, the live shipment cancelled once.
        let cancel = allocation("a3", 2, AllocationStatus::Released, vec![]);
        let out = handle(&mut s, &cancel, &r, &c).unwrap();
        assert_eq!(ids(&out), ["shopify-1001/nj-edison/2"]);
        assert_eq!(out[0].status, PlanStatus::Cancelled);
        assert_eq!(released(&s, "nj-edison"), [true, true]);
        assert!(handle(&mut s, &cancel, &r, &c).unwrap().is_empty());
    }

    #[test]
    fn a_backorder_after_an_allocation_cancels_what_it_shipped() {
        // The order committed, lost its hold to a higher-ranked order,
        // started over and found no stock (docs/allocation.md).
        let (r, c) = (router(), catalog());
        let mut s = RouteState::default();
        handle(&mut s, &the_order(1), &r, &c).unwrap();
        let a = allocation(
            "a1",
            1,
            AllocationStatus::Allocated,
            vec![alloc("nj-edison", "BOOSTER", 1)],
        );
        assert_eq!(handle(&mut s, &a, &r, &c).unwrap().len(), 1);
        let b = allocation("b1", 1, AllocationStatus::Backordered, vec![]);
        let out = handle(&mut s, &b, &r, &c).unwrap();
        assert_eq!(ids(&out), ["shopify-1001/nj-edison/1"]);
        assert_eq!(out[0].status, PlanStatus::Cancelled);
        assert_eq!(out[0].event_id, event_id("b1", 0));
        // Allocated again later (a restock): a new shipment.
        let again = allocation(
            "a2",
            1,
            AllocationStatus::Allocated,
            vec![alloc("nj-edison", "BOOSTER", 1)],
        );
        assert_eq!(
            ids(&handle(&mut s, &again, &r, &c).unwrap()),
            ["shopify-1001/nj-edison/2"]
        );
    }

    #[test]
    fn backorders_plan_nothing_and_a_failed_plan_changes_nothing() {
        let (r, c) = (router(), catalog());
        let mut s = RouteState::default();
        handle(&mut s, &the_order(1), &r, &c).unwrap();
        let b = allocation("b1", 1, AllocationStatus::Backordered, vec![]);
        assert!(handle(&mut s, &b, &r, &c).unwrap().is_empty());
        let before = s.clone();
        let bad = allocation(
            "a1",
            1,
            AllocationStatus::Allocated,
            vec![
                alloc("nj-edison", "BOOSTER", 1),
                alloc("tx-dallas", "UNKNOWN", 1),
            ],
        );
        assert_eq!(
            handle(&mut s, &bad, &r, &c).unwrap_err(),
            RouteError::Sku("UNKNOWN".into())
        );
        assert_eq!(s, before);
    }
}

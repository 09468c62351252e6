//! A deterministic, coherent stream of sink events for the sinks' tests
//! and benchmarks: each order has its order event, an allocation (one
//! warehouse, split, or backordered), a plan, label and sync-back per
//! parcel, stock movements; a share of updates, cancellations, DLQ
//! records, exceptions, inventory events and alerts. The same index gives
//! the same events.

use conveyor_schemas::records::{
    AllocationStatus, ExceptionRecord, LineQty, Money, OrderEventKind, SyncOutcome, SyncedShipment,
    WarehouseAllocation,
};
use conveyor_schemas::samples;

use crate::event::SinkEvent;

const WAREHOUSES: &[&str] = &["AUS-1", "PDX-1", "CMH-1"];
const CARRIERS: &[(&str, &str)] = &[
    ("usps", "ground_advantage"),
    ("ups", "ground"),
    ("fedex", "home"),
];

/// Milliseconds between two consecutive orders' times (100k orders span
/// about five weeks).
pub const ORDER_SPACING_MS: i64 = 30_000;

/// The events of order `i`, in the order the pipeline would emit them.
pub fn order(i: u64, base_ms: i64) -> Vec<SinkEvent> {
    let at = base_ms + i as i64 * ORDER_SPACING_MS;
    let mut created = samples::order_event(i, at - i as i64);
    created.occurred_at = at;
    // Every 4th order has a promised delivery: two days.
    if i.is_multiple_of(4) {
        created.order.deliver_by = Some(at + 2 * 86_400_000);
    }
    let id = created.order_id.clone();
    let lines: Vec<LineQty> = created
        .order
        .lines
        .iter()
        .map(|l| LineQty {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let mut out = vec![SinkEvent::Order(created.clone())];

    // Every 9th order is edited (a newer version, before allocation),
    // every 13th cancelled.
    if i % 9 == 4 {
        let mut upd = created.clone();
        upd.kind = OrderEventKind::Updated;
        upd.occurred_at = at + 50;
        upd.order.updated_at = at + 50;
        upd.version = at + 50;
        upd.event_id = format!("{}:upd/0", id);
        upd.order.note = Some("gift wrap".into());
        out.push(SinkEvent::Order(upd));
    }
    if i % 13 == 6 {
        let mut c = created.clone();
        c.kind = OrderEventKind::Cancelled;
        c.occurred_at = at + 9_000;
        c.version = at + 9_000;
        c.event_id = format!("{}:cancel/0", id);
        c.cancellation = Some(conveyor_schemas::records::Cancellation {
            reason: "customer".into(),
            cancelled_at: at + 9_000,
            restock: true,
        });
        out.push(SinkEvent::Order(c));
        return out;
    }

    let mut alloc = samples::allocation_result(i, at);
    alloc.order_id = id.clone();
    alloc.event_id = format!("{id}:alloc/0");
    alloc.decided_at = at + 100;
    let parcels: Vec<(String, Vec<LineQty>)> = if i % 10 == 7 {
        alloc.status = AllocationStatus::Backordered;
        alloc.allocations = vec![];
        alloc.backordered = lines.clone();
        vec![]
    } else if i % 10 == 3 && lines.len() > 1 {
        let (a, b) = lines.split_at(1);
        vec![
            (WAREHOUSES[0].to_string(), a.to_vec()),
            (WAREHOUSES[1].to_string(), b.to_vec()),
        ]
    } else {
        vec![(WAREHOUSES[(i % 3) as usize].to_string(), lines.clone())]
    };
    if !parcels.is_empty() {
        alloc.allocations = parcels
            .iter()
            .map(|(w, l)| WarehouseAllocation {
                warehouse_id: w.clone(),
                lines: l.clone(),
            })
            .collect();
    }
    out.push(SinkEvent::Allocation(alloc));

    for (n, (warehouse, plines)) in parcels.iter().enumerate() {
        for l in plines {
            let mut m = samples::stock_movement(i, at);
            m.event_id = format!("{id}:hold:{}/{n}", l.sku);
            m.sku = l.sku.clone();
            m.warehouse_id = warehouse.clone();
            m.quantity = l.quantity;
            m.order_id = Some(id.clone());
            m.occurred_at = at + 100;
            // One sequence per SKU: the order index orders them.
            m.seq = i as i64 * 4 + n as i64 + 1;
            m.on_hand = 1_000;
            m.reserved = (i % 200) as i32 + l.quantity;
            m.available = m.on_hand - m.reserved;
            out.push(SinkEvent::Movement(m));
        }
        let (carrier, service) = CARRIERS[(i as usize + n) % CARRIERS.len()];
        let shipment_id = format!("{id}/{warehouse}/{}", n + 1);
        let mut plan = samples::planned_shipment(i, at);
        plan.event_id = format!("{id}:route/{n}");
        plan.shipment_id = shipment_id.clone();
        plan.order_id = id.clone();
        plan.warehouse_id = warehouse.clone();
        plan.lines = plines.clone();
        plan.carrier = carrier.into();
        plan.service = service.into();
        plan.zone = Some(format!("{}", 2 + (i % 7)));
        plan.rate = Money::from_cents(400 + (i % 900) as i64, plan.rate.currency);
        plan.meets_sla = i % 17 != 5;
        plan.planned_at = at + 200;
        plan.ordered_at = Some(at);
        let mut label = samples::labeled_shipment(i, at);
        label.event_id = format!("{shipment_id}:label/0");
        label.shipment_id = shipment_id.clone();
        label.order_id = id.clone();
        label.carrier = carrier.into();
        label.service = service.into();
        label.label_cost = plan.rate.clone();
        label.lines = plines.clone();
        label.tracking_number = format!("1Z{:016}{n}", i);
        // Order-to-label latency: 1 s to 10 min, skewed short.
        label.labeled_at = at + 1_000 + ((i * i) % 600_000) as i64;
        let sync = SyncedShipment {
            event_id: format!("{shipment_id}:sync/0"),
            shipment_id: shipment_id.clone(),
            order_id: id.clone(),
            channel: created.order.channel.clone(),
            external_order_id: created.order.external_id.clone(),
            carrier: carrier.into(),
            tracking_number: label.tracking_number.clone(),
            outcome: SyncOutcome::Confirmed,
            channel_reference: Some(format!("F{i}")),
            note: None,
            synced_at: label.labeled_at + 500,
        };
        out.push(SinkEvent::Planned(plan));
        out.push(SinkEvent::Labeled(label));
        out.push(SinkEvent::Synced(sync));
    }

    if i % 50 == 11 {
        let mut d = samples::dlq_record(i, at);
        d.event_id = format!("normalize:orders.raw.shopify:0:{i}");
        out.push(SinkEvent::Dlq(d));
    }
    if i % 100 == 42 {
        out.push(SinkEvent::Exception(ExceptionRecord {
            event_id: format!("{id}:exception/0"),
            exception_id: format!("label:{id}/AUS-1/1"),
            order_id: id.clone(),
            shipment_id: Some(format!("{id}/AUS-1/1")),
            stage: "label".into(),
            code: "address_invalid".into(),
            reason: "the carrier cannot deliver to this address".into(),
            action: "fix the address and retry the label".into(),
            source_topic: "shipments.planned".into(),
            source_partition: (i % 4) as i32,
            source_offset: i as i64,
            raised_at: at + 300,
        }));
    }
    if i.is_multiple_of(20) {
        out.push(SinkEvent::Inventory(samples::inventory_event(i, at)));
        out.push(SinkEvent::Alert(samples::inventory_alert(i, at)));
    }
    out
}

/// The events of orders `range`.
pub fn orders(range: std::ops::Range<u64>, base_ms: i64) -> Vec<SinkEvent> {
    range.flat_map(|i| order(i, base_ms)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_with_unique_event_ids() {
        assert_eq!(order(12, 0), order(12, 0));
        let all = orders(0..500, 1_700_000_000_000);
        let mut ids: Vec<&str> = all.iter().map(SinkEvent::event_id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "event ids repeat");
        assert!(all.iter().any(|e| matches!(e, SinkEvent::Dlq(_))));
        assert!(all.iter().any(|e| matches!(e, SinkEvent::Exception(_))));
    }
}

//! Deterministic sample records for the demo and the benchmarks: realistic
//! shapes (multi-line orders, addresses, money in cents), the same for the
//! same index.

use std::collections::BTreeMap;

use crate::records::*;

const CHANNELS: &[&str] = &["shopify", "amazon", "tiktok", "ebay", "csv"];
const SKUS: &[(&str, &str, i64)] = &[
    ("MTG-DMU-BOOSTER", "Dominaria United Draft Booster", 499),
    ("PKM-SV1-ETB", "Scarlet & Violet Elite Trainer Box", 4999),
    ("SLEEVE-DS-100", "Dragon Shield Matte Sleeves (100)", 1099),
    ("DICE-CHX-7", "Chessex 7-Die Set", 1299),
    ("BINDER-9P", "9-Pocket Zip Binder", 2499),
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97205"),
    ("Columbus", "OH", "43215"),
    ("Raleigh", "NC", "27601"),
];

fn usd(cents: i64) -> Money {
    Money::from_cents(cents, Currency::USD)
}

/// The `i`-th sample order event (created at `base_ms + i`).
pub fn order_event(i: u64, base_ms: i64) -> OrderEvent {
    let channel = CHANNELS[(i % CHANNELS.len() as u64) as usize];
    let external_id = format!("{}", 100_000 + i);
    let order_id = format!("{channel}:{external_id}");
    let at = base_ms + i as i64;
    let n_lines = 1 + (i % 3) as usize;
    let lines: Vec<OrderLine> = (0..n_lines)
        .map(|l| {
            let (sku, name, price) = SKUS[(i as usize + l * 2) % SKUS.len()];
            let qty = 1 + ((i as i64 + l as i64) % 4);
            let tax = price * qty * 8 / 100;
            OrderLine {
                line_id: format!("{external_id}-{l}"),
                sku: sku.into(),
                name: name.into(),
                quantity: qty as i32,
                unit_price: usd(price),
                discount: usd(0),
                tax: usd(tax),
                total: usd(price * qty + tax),
                requires_shipping: true,
                properties: BTreeMap::new(),
            }
        })
        .collect();
    let cents = |f: fn(&OrderLine) -> &Money| -> i64 {
        lines
            .iter()
            .map(|l| {
                (f(l).amount * rust_decimal::Decimal::from(100))
                    .try_into()
                    .unwrap_or(0i64)
            })
            .sum()
    };
    let subtotal: i64 = lines
        .iter()
        .map(|l| {
            i64::from(l.quantity)
                * (l.unit_price.amount * rust_decimal::Decimal::from(100))
                    .try_into()
                    .unwrap_or(0i64)
        })
        .sum();
    let tax = cents(|l| &l.tax);
    let shipping = if subtotal > 5000 { 0 } else { 599 };
    let (city, region, zip) = CITIES[(i % CITIES.len() as u64) as usize];
    let address = Address {
        name: format!("Customer {i}"),
        company: None,
        line1: format!("{} Main St", 100 + i % 900),
        line2: None,
        city: city.into(),
        region: Some(region.into()),
        postal_code: zip.into(),
        country: "US".into(),
        phone: None,
    };
    OrderEvent {
        event_id: format!("{order_id}:{at}/0"),
        order_id: order_id.clone(),
        kind: OrderEventKind::Created,
        version: at,
        occurred_at: at,
        source_event_id: format!("{channel}-evt-{i}"),
        order: Order {
            order_id,
            channel: channel.into(),
            external_id: external_id.clone(),
            external_number: Some(format!("#{external_id}")),
            status: OrderStatus::Open,
            currency: "USD".into(),
            customer: Customer {
                customer_id: Some(format!("c{}", i % 1000)),
                email: Some(format!("customer{i}@example.com")),
                name: format!("Customer {i}"),
                phone: None,
            },
            shipping_address: address,
            billing_address: None,
            lines,
            totals: Totals {
                subtotal: usd(subtotal),
                discount: usd(0),
                shipping: usd(shipping),
                tax: usd(tax),
                total: usd(subtotal + tax + shipping),
            },
            priority: if i.is_multiple_of(10) {
                Priority::Expedited
            } else {
                Priority::Standard
            },
            shipping_method: Some(
                if i.is_multiple_of(10) {
                    "Express"
                } else {
                    "Standard"
                }
                .into(),
            ),
            ship_by: Some(at + 86_400_000),
            deliver_by: None,
            fulfilled_by_channel: channel == "amazon" && i.is_multiple_of(7),
            created_at: at,
            updated_at: at,
            tags: vec![],
            note: None,
            gift_message: None,
            extras: BTreeMap::new(),
        },
        cancellation: None,
    }
}

fn line_qty(i: u64, n: usize) -> Vec<LineQty> {
    (0..n)
        .map(|l| LineQty {
            line_id: format!("{}-{l}", 100_000 + i),
            sku: SKUS[(i as usize + l) % SKUS.len()].0.into(),
            quantity: 1 + (l as i32 % 3),
        })
        .collect()
}

fn document(kind: &str, i: u64) -> Document {
    Document {
        uri: format!("file:///var/lib/conveyor/documents/{kind}/{i}.pdf"),
        content_type: "application/pdf".into(),
        sha256: format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        pages: 1,
    }
}

/// The `i`-th sample raw envelope (a Shopify-style JSON payload).
pub fn raw_order(i: u64, base_ms: i64) -> RawOrder {
    let payload = format!(
        r##"{{"id":{},"name":"#{}","email":"customer{i}@example.com","currency":"USD","total_price":"42.00","line_items":[{{"id":1,"sku":"{}","quantity":2,"price":"21.00"}}]}}"##,
        100_000 + i,
        100_000 + i,
        SKUS[(i % SKUS.len() as u64) as usize].0
    );
    RawOrder {
        event_id: format!("b54557e4-{i:012}"),
        channel: "shopify".into(),
        external_order_id: format!("{}", 100_000 + i),
        external_order_number: Some(format!("#{}", 100_000 + i)),
        source: RawSource::Webhook,
        topic_hint: Some("orders/create".into()),
        received_at: base_ms + i as i64,
        content_type: "application/json".into(),
        payload: payload.into_bytes(),
        source_headers: [(
            "x-shopify-shop-domain".to_string(),
            "cards.myshopify.com".to_string(),
        )]
        .into(),
    }
}

pub fn dlq_record(i: u64, base_ms: i64) -> DlqRecord {
    DlqRecord {
        event_id: format!("normalize:orders.raw.shopify:0:{i}"),
        stage: "normalize".into(),
        error_kind: ErrorKind::Validation,
        reason: "line 1: quantity must be positive, got 0".into(),
        source_topic: "orders.raw.shopify".into(),
        source_partition: (i % 6) as i32,
        source_offset: i as i64,
        source_timestamp: Some(base_ms + i as i64),
        schema_id: Some(1),
        original_key: Some(format!("{}", 100_000 + i).into_bytes()),
        original_value: Some(raw_order(i, base_ms).payload),
        original_headers: vec![Header {
            key: "channel".into(),
            value: b"shopify".to_vec(),
        }],
        attempts: 1,
    }
}

pub fn inventory_event(i: u64, base_ms: i64) -> InventoryEvent {
    InventoryEvent {
        event_id: format!("wms:receipt:{i}"),
        sku: SKUS[(i % SKUS.len() as u64) as usize].0.into(),
        warehouse_id: ["AUS-1", "PDX-1"][(i % 2) as usize].into(),
        kind: InventoryEventKind::Restock,
        quantity: 24,
        to_warehouse_id: None,
        reason: Some("PO receipt".into()),
        reference: Some(format!("PO-{i}")),
        occurred_at: base_ms + i as i64,
    }
}

pub fn allocation_result(i: u64, base_ms: i64) -> AllocationResult {
    AllocationResult {
        event_id: format!("shopify:{}:{i}/0", 100_000 + i),
        order_id: format!("shopify:{}", 100_000 + i),
        order_version: base_ms + i as i64,
        status: AllocationStatus::Allocated,
        allocations: vec![WarehouseAllocation {
            warehouse_id: "AUS-1".into(),
            lines: line_qty(i, 2),
        }],
        backordered: vec![],
        policy: "ship-complete".into(),
        config_version: "2026-11-01".into(),
        decided_at: base_ms + i as i64,
    }
}

pub fn stock_movement(i: u64, base_ms: i64) -> StockMovement {
    StockMovement {
        event_id: format!("alloc:{i}/0"),
        sku: SKUS[(i % SKUS.len() as u64) as usize].0.into(),
        warehouse_id: "AUS-1".into(),
        kind: MovementKind::Reserved,
        quantity: 2,
        order_id: Some(format!("shopify:{}", 100_000 + i)),
        on_hand: 100,
        reserved: 12,
        available: 83,
        occurred_at: base_ms + i as i64,
        held: 3,
        seq: i as i64 + 1,
    }
}

pub fn inventory_alert(i: u64, base_ms: i64) -> InventoryAlert {
    InventoryAlert {
        event_id: format!("alert:{i}"),
        sku: SKUS[(i % SKUS.len() as u64) as usize].0.into(),
        warehouse_id: Some("AUS-1".into()),
        kind: AlertKind::LowStock,
        available: 4,
        reorder_point: 5,
        occurred_at: base_ms + i as i64,
    }
}

pub fn planned_shipment(i: u64, base_ms: i64) -> PlannedShipment {
    let order = order_event(i, base_ms).order;
    let quote = |carrier: &str, service: &str, cents: i64, days: i32| RateQuote {
        carrier: carrier.into(),
        service: service.into(),
        rate: usd(cents),
        transit_days: days,
        meets_sla: days <= 3,
        rejected_because: None,
    };
    PlannedShipment {
        event_id: format!("{}:route/0", order.order_id),
        shipment_id: format!("{}/AUS-1/1", order.order_id),
        order_id: order.order_id,
        warehouse_id: "AUS-1".into(),
        lines: line_qty(i, 2),
        ship_to: order.shipping_address,
        parcel: Parcel {
            box_type: "S2".into(),
            weight_grams: 450,
            length_mm: 230,
            width_mm: 150,
            height_mm: 60,
        },
        carrier: "usps".into(),
        service: "ground_advantage".into(),
        rate: usd(545),
        zone: Some("4".into()),
        ship_by: Some(base_ms + 86_400_000),
        estimated_delivery: Some(base_ms + 3 * 86_400_000),
        meets_sla: true,
        alternatives: vec![
            quote("ups", "ground", 912, 3),
            quote("fedex", "home", 987, 3),
        ],
        config_version: "rates-2026-11".into(),
        planned_at: base_ms + i as i64,
        order_number: order.external_number.clone(),
        ordered_at: Some(order.created_at),
        gift_message: i.is_multiple_of(5).then(|| "Happy holidays!".to_string()),
        line_names: order
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), l.name.clone()))
            .collect(),
        bins: [("MTG-DMU-BOOSTER".to_string(), "A-01-03".to_string())].into(),
        status: PlanStatus::Planned,
    }
}

pub fn labeled_shipment(i: u64, base_ms: i64) -> LabeledShipment {
    LabeledShipment {
        event_id: format!("shopify:{}:label/0", 100_000 + i),
        shipment_id: format!("shopify:{}/AUS-1/1", 100_000 + i),
        order_id: format!("shopify:{}", 100_000 + i),
        carrier: "usps".into(),
        service: "ground_advantage".into(),
        tracking_number: format!("9400{:018}", i),
        tracking_url: Some(format!(
            "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400{:018}",
            i
        )),
        label_cost: usd(545),
        idempotency_key: format!("label:shopify:{}/AUS-1/1", 100_000 + i),
        label: document("labels", i),
        packing_slip: document("slips", i),
        combined: Some(document("combined", i)),
        labeled_at: base_ms + i as i64,
        lines: line_qty(i, 2),
        status: LabelStatus::Labeled,
    }
}

/// The `i`-th sample operator action: a retry of a label exception after
/// an address edit, submitted at `base_ms + i`.
pub fn operator_action(i: u64, base_ms: i64) -> OperatorAction {
    let order_id = format!("shopify:{}", 100_000 + i);
    let action_id = format!("act-{i:08}");
    let kind = [ActionKind::Retry, ActionKind::Cancel, ActionKind::Resolve][(i % 3) as usize];
    OperatorAction {
        event_id: action_id.clone(),
        action_id,
        exception_id: format!("label:{order_id}/AUS-1/1"),
        shipment_id: Some(format!("{order_id}/AUS-1/1")),
        order_id,
        kind,
        actor: "alice".into(),
        role: "operator".into(),
        reason: "customer confirmed the address by phone".into(),
        detail: match kind {
            ActionKind::Retry => {
                "ship-to address edited (street1, postal_code); re-published to shipments.planned"
                    .into()
            }
            ActionKind::Cancel => "shipment cancelled; stock released".into(),
            ActionKind::Resolve => "marked resolved".into(),
        },
        at: base_ms + i as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_and_consistent() {
        assert_eq!(order_event(7, 0), order_event(7, 0));
        let o = order_event(3, 0).order;
        let sum: rust_decimal::Decimal = o.lines.iter().map(|l| l.total.amount).sum();
        assert_eq!(sum + o.totals.shipping.amount, o.totals.total.amount);
    }
}

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
    Money::from_cents(cents, "USD")
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
            priority: if i % 10 == 0 {
                Priority::Expedited
            } else {
                Priority::Standard
            },
            shipping_method: Some(if i % 10 == 0 { "Express" } else { "Standard" }.into()),
            ship_by: Some(at + 86_400_000),
            deliver_by: None,
            fulfilled_by_channel: channel == "amazon" && i % 7 == 0,
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

//! CSV imports: the `conveyor.csv.v1` document the importer publishes per
//! order (connectors' `csv_import`): fields already mapped from the file's
//! columns, dates in RFC 3339, amounts as decimal text, and the order's
//! rows exactly as in the file (kept in `extras` as their line numbers).
//!
//! The order's channel is the import's source (e.g. `tcgplayer`), so its id
//! is `<source>:<order number>` and analysts see revenue per source.

use std::collections::BTreeMap;

use conveyor_schemas::records::{
    Cancellation, Customer, Money, Order, OrderLine, OrderStatus, RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde_json::Value;

use super::fields::{self, money_opt, opt_str};
use super::shopify::priority_of;
use super::{address, json_payload, Draft, Rejection};

pub const FORMAT: &str = "conveyor.csv.v1";

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let v = json_payload(raw)?;
    if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(Rejection::new(format!(
            "csv payload is not a {FORMAT} document; import files with `conveyor import csv`"
        )));
    }
    let source =
        opt_str(&v, "source").ok_or_else(|| Rejection::new("csv import: `source` is missing"))?;
    let number = opt_str(&v, "order_number")
        .ok_or_else(|| Rejection::new("csv import: `order_number` is missing"))?;
    let ctx = |f: &str| format!("{source} order {number}: {f}");
    let cur = fields::currency(
        &ctx("currency"),
        opt_str(&v, "currency").ok_or_else(|| Rejection::new(ctx("currency is missing")))?,
    )?;
    let created_at = fields::timestamp(
        &ctx("created_at"),
        opt_str(&v, "created_at").ok_or_else(|| Rejection::new(ctx("created_at is missing")))?,
    )?;
    let updated_at = match opt_str(&v, "updated_at") {
        Some(t) => fields::timestamp(&ctx("updated_at"), t)?,
        None => created_at,
    };
    let empty = Vec::new();
    let mut lines = Vec::new();
    let mut subtotal = Decimal::ZERO;
    let mut discount_total = Decimal::ZERO;
    let mut tax_total = Decimal::ZERO;
    for (i, l) in v
        .get("lines")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let row = l
            .get("line")
            .and_then(Value::as_u64)
            .unwrap_or(i as u64 + 1);
        let f = |x: &str| ctx(&format!("file line {row}: {x}"));
        let quantity = i32::try_from(fields::int(&f("quantity"), l.get("quantity"))?)
            .map_err(|_| Rejection::new(f("quantity out of range")))?;
        let unit_price = money_opt(&f("unit_price"), l.get("unit_price"), cur)?;
        let discount = money_opt(&f("discount"), l.get("discount"), cur)?;
        let tax = money_opt(&f("tax"), l.get("tax"), cur)?;
        let gross = unit_price.amount * Decimal::from(quantity);
        subtotal += gross - discount.amount;
        discount_total += discount.amount;
        tax_total += tax.amount;
        lines.push(OrderLine {
            line_id: format!("{number}-{row}"),
            sku: opt_str(l, "sku").unwrap_or_default().to_string(),
            name: opt_str(l, "name").unwrap_or_default().to_string(),
            quantity,
            total: Money::new(gross - discount.amount + tax.amount, cur),
            unit_price,
            discount,
            tax,
            requires_shipping: true,
            properties: BTreeMap::from([("file_line".to_string(), row.to_string())]),
        });
    }
    let shipping = money_opt(&ctx("shipping"), v.get("shipping"), cur)?;
    let customer_v = v.get("customer").cloned().unwrap_or(Value::Null);
    let ship = v.get("ship_to").cloned().unwrap_or(Value::Null);
    let cancelled = opt_str(&v, "status").is_some_and(|s| {
        let s = s.to_ascii_lowercase();
        s.starts_with("cancel") || s == "void" || s == "voided"
    });
    let shipping_method = opt_str(&v, "shipping_method").map(String::from);
    let mut extras = BTreeMap::new();
    if let Some(file) = opt_str(&v, "file") {
        extras.insert("csv.file".to_string(), file.to_string());
    }
    let rows: Vec<String> = v
        .get("rows")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .filter_map(|r| r.get("line").and_then(Value::as_u64).map(|n| n.to_string()))
        .collect();
    if !rows.is_empty() {
        extras.insert("csv.lines".to_string(), rows.join(","));
    }
    if let Some(s) = opt_str(&v, "status") {
        extras.insert("csv.status".to_string(), s.to_string());
    }
    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: source.to_string(),
            external_id: number.to_string(),
            external_number: Some(number.to_string()),
            status: if cancelled {
                OrderStatus::Cancelled
            } else {
                OrderStatus::Open
            },
            currency: cur.to_string(),
            customer: Customer {
                customer_id: None,
                email: opt_str(&customer_v, "email").map(String::from),
                name: opt_str(&customer_v, "name")
                    .or_else(|| opt_str(&ship, "name"))
                    .unwrap_or_default()
                    .to_string(),
                phone: opt_str(&customer_v, "phone").map(String::from),
            },
            shipping_address: address(
                opt_str(&ship, "name"),
                opt_str(&ship, "company"),
                opt_str(&ship, "line1"),
                opt_str(&ship, "line2"),
                opt_str(&ship, "city"),
                opt_str(&ship, "region"),
                opt_str(&ship, "postal_code"),
                opt_str(&ship, "country"),
                opt_str(&ship, "phone"),
            ),
            billing_address: None,
            totals: Totals {
                subtotal: Money::new(subtotal, cur),
                discount: Money::new(discount_total, cur),
                tax: Money::new(tax_total, cur),
                total: Money::new(subtotal + tax_total + shipping.amount, cur),
                shipping,
            },
            lines,
            priority: priority_of(shipping_method.as_deref()),
            shipping_method,
            ship_by: None,
            deliver_by: None,
            fulfilled_by_channel: false,
            created_at,
            updated_at,
            tags: vec!["csv-import".into()],
            note: opt_str(&v, "note").map(String::from),
            gift_message: None,
            extras,
        },
        listing_ids: Vec::new(),
        cancellation: cancelled.then(|| Cancellation {
            reason: opt_str(&v, "status").unwrap_or("cancelled").to_string(),
            cancelled_at: updated_at,
            restock: true,
        }),
        test: false,
    })
}

const SKUS: &[(&str, &str, &str)] = &[
    ("MTG-DMU-BOOSTER", "DMU Draft Booster", "4.99"),
    ("PKM-SV1-ETB", "Scarlet & Violet ETB", "49.99"),
    ("SLEEVE-DS-100", "Dragon Shield Matte", "10.99"),
    ("DICE-CHX-7", "Chessex 7-Die Set", "12.99"),
    ("BINDER-9P", "9-Pocket Zip Binder", "24.99"),
];

/// The `n`-th example import document (as `conveyor import csv` publishes
/// it), deterministic in `n`: 1-3 lines, a US address.
pub fn example(n: u64) -> Value {
    let lines: Vec<Value> = (0..1 + n % 3)
        .map(|l| {
            let (sku, name, price) = SKUS[((n + l * 2) % SKUS.len() as u64) as usize];
            serde_json::json!({"line": 2 + l, "sku": sku, "name": name,
                "quantity": 1 + (n + l) % 4, "unit_price": price})
        })
        .collect();
    let day = 1 + n % 28;
    serde_json::json!({
        "format": FORMAT, "source": "tcgplayer", "file": "export.csv",
        "order_number": format!("TCG-{}", 100_000 + n),
        "created_at": format!("2026-11-{day:02}T10:30:00-05:00"),
        "updated_at": format!("2026-11-{day:02}T10:30:00-05:00"),
        "currency": "USD", "status": null,
        "customer": {"name": format!("Buyer {n}"), "email": format!("b{n}@example.com"), "phone": null},
        "ship_to": {"name": format!("Buyer {n}"), "line1": format!("{} Elm St", 1 + n % 900),
                    "city": "Austin", "region": "TX", "postal_code": "78701", "country": "US"},
        "shipping": "4.99", "shipping_method": "Standard",
        "lines": lines,
        "rows": []
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use crate::normalize::testing::catalog;
    use conveyor_schemas::records::RawSource;
    use serde_json::json;

    fn raw(v: Value) -> RawOrder {
        RawOrder {
            event_id: "csv:t:abc:1001".into(),
            channel: "csv".into(),
            external_order_id: "tcgplayer:1001".into(),
            external_order_number: Some("1001".into()),
            source: RawSource::Import,
            topic_hint: Some(FORMAT.into()),
            received_at: 0,
            content_type: "application/json".into(),
            payload: serde_json::to_vec(&v).unwrap(),
            source_headers: Default::default(),
        }
    }

    fn doc() -> Value {
        json!({"format": FORMAT, "source": "tcgplayer", "file": "x.csv", "order_number": "1001",
            "created_at": "2026-11-20T10:30:00-05:00", "updated_at": "2026-11-20T10:30:00-05:00",
            "currency": "USD", "status": null,
            "customer": {"name": "Ana Diaz", "email": null, "phone": null},
            "ship_to": {"name": "Ana Diaz", "line1": "1 Elm St", "city": "Austin", "region": "TX",
                        "postal_code": "78701", "country": "US"},
            "shipping": "4.99",
            "lines": [{"line": 2, "sku": "DICE-CHX-7", "name": "Dice", "quantity": 2, "unit_price": "12.99"},
                      {"line": 3, "sku": "BINDER-9P", "name": "Binder", "quantity": 1, "unit_price": "24.99", "tax": "2.06"}],
            "rows": [{"line": 2, "text": "..."}, {"line": 3, "text": "..."}]})
    }

    #[test]
    fn an_imported_order_normalizes_per_source() {
        let cat = catalog(&[("DICE-CHX-7", &[]), ("BINDER-9P", &[])]);
        let n = normalize(&raw(doc()), &cat).unwrap();
        assert_eq!(n.order.order_id, "tcgplayer:1001");
        // 10:30 at -05:00 is 15:30 UTC.
        assert_eq!(n.order.created_at, 1_795_188_600_000);
        assert_eq!(n.order.totals.total.amount, Decimal::new(5802, 2));
        assert_eq!(n.order.extras["csv.lines"], "2,3");
        let mut bad = doc();
        bad["lines"][0]["sku"] = json!("UNKNOWN");
        assert!(normalize(&raw(bad), &cat)
            .unwrap_err()
            .0
            .contains("UNKNOWN"));
        let mut not_csv = doc();
        not_csv["format"] = json!("other");
        assert!(normalize(&raw(not_csv), &cat).is_err());
    }
}

//! Shopify: the Admin REST `Order` resource, as sent by the orders/create,
//! orders/updated and orders/cancelled webhooks and returned by
//! `GET /admin/api/<version>/orders.json`.
//!
//! Amounts are decimal strings in the shop currency (`currency`); the
//! `current_*` fields reflect order edits and win over the originals when
//! present; a line removed by an edit has `current_quantity` 0 and is
//! dropped. Versioned by `updated_at`.

use std::collections::BTreeMap;

use conveyor_schemas::records::{
    Cancellation, Currency, Customer, Money, Order, OrderLine, OrderStatus, Priority, RawOrder,
    Totals,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fields::{self, id_text, money_opt, opt_str};
use super::{address, json_payload, Draft, Rejection};

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let v = json_payload(raw)?;
    let v = v.get("order").filter(|o| o.is_object()).unwrap_or(&v);
    if !v.is_object() {
        return Err(Rejection::new("shopify payload is not an order object"));
    }
    let id =
        id_text(v.get("id")).ok_or_else(|| Rejection::new("shopify order: `id` is missing"))?;
    let ctx = |field: &str| format!("shopify order {id}: {field}");
    let currency_code =
        opt_str(v, "currency").ok_or_else(|| Rejection::new(ctx("`currency` is missing")))?;
    let cur = fields::currency(&ctx("currency"), currency_code)?;
    let updated_at = fields::timestamp(
        &ctx("updated_at"),
        opt_str(v, "updated_at").ok_or_else(|| Rejection::new(ctx("`updated_at` is missing")))?,
    )?;
    let created_at = match opt_str(v, "created_at") {
        Some(t) => fields::timestamp(&ctx("created_at"), t)?,
        None => updated_at,
    };

    let mut lines = Vec::new();
    let mut listing_ids = Vec::new();
    let empty = Vec::new();
    let items = v
        .get("line_items")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let f = |name: &str| ctx(&format!("line_items[{n}].{name}"));
        let ordered = fields::int(&f("quantity"), item.get("quantity"))?;
        let quantity = match item.get("current_quantity").filter(|q| !q.is_null()) {
            Some(q) => fields::int(&f("current_quantity"), Some(q))?,
            None => ordered,
        };
        if quantity == 0 && ordered > 0 {
            continue; // removed by an order edit
        }
        let quantity = i32::try_from(quantity).map_err(|_| {
            Rejection::new(format!("{}: {quantity} is out of range", f("quantity")))
        })?;
        let unit_price = money_opt(&f("price"), item.get("price"), cur)?;
        let discount = match item.get("discount_allocations").and_then(Value::as_array) {
            Some(allocs) if !allocs.is_empty() => sum(
                allocs
                    .iter()
                    .map(|a| money_opt(&f("discount_allocations.amount"), a.get("amount"), cur)),
                cur,
            )?,
            _ => money_opt(&f("total_discount"), item.get("total_discount"), cur)?,
        };
        let tax = sum(
            item.get("tax_lines")
                .and_then(Value::as_array)
                .unwrap_or(&empty)
                .iter()
                .map(|t| money_opt(&f("tax_lines.price"), t.get("price"), cur)),
            cur,
        )?;
        let total = Money::new(
            unit_price.amount * Decimal::from(quantity) - discount.amount + tax.amount,
            cur,
        );
        let mut properties = BTreeMap::new();
        for p in item
            .get("properties")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
        {
            if let (Some(k), Some(val)) = (opt_str(p, "name"), p.get("value")) {
                let text = val
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| val.to_string());
                properties.insert(k.to_string(), text);
            }
        }
        for (k, key) in [("variant_title", "variant_title"), ("vendor", "vendor")] {
            if let Some(val) = opt_str(item, key) {
                properties.insert(k.to_string(), val.to_string());
            }
        }
        let mut ids = Vec::new();
        if let Some(variant) = id_text(item.get("variant_id")) {
            ids.push(variant);
        }
        listing_ids.push(ids);
        let gift_card = item
            .get("gift_card")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        lines.push(OrderLine {
            line_id: id_text(item.get("id")).unwrap_or_else(|| format!("{id}-{n}")),
            sku: opt_str(item, "sku").unwrap_or_default().to_string(),
            name: opt_str(item, "name")
                .or_else(|| opt_str(item, "title"))
                .unwrap_or_default()
                .to_string(),
            quantity,
            unit_price,
            discount,
            tax,
            total,
            requires_shipping: item
                .get("requires_shipping")
                .and_then(Value::as_bool)
                .unwrap_or(!gift_card),
            properties,
        });
    }

    let shipping_lines = v
        .get("shipping_lines")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let shipping = sum(
        shipping_lines.iter().map(|s| {
            money_opt(
                &ctx("shipping_lines.price"),
                s.get("discounted_price").or_else(|| s.get("price")),
                cur,
            )
        }),
        cur,
    )?;
    let shipping_method = shipping_lines
        .first()
        .and_then(|s| opt_str(s, "title").or_else(|| opt_str(s, "code")))
        .map(String::from);
    let total_field = |current: &str, original: &str| -> Result<Money, Rejection> {
        let value = v
            .get(current)
            .filter(|x| !x.is_null())
            .or_else(|| v.get(original));
        money_opt(&ctx(original), value, cur)
    };
    let totals = Totals {
        subtotal: total_field("current_subtotal_price", "subtotal_price")?,
        discount: total_field("current_total_discounts", "total_discounts")?,
        shipping,
        tax: total_field("current_total_tax", "total_tax")?,
        total: total_field("current_total_price", "total_price")?,
    };

    let customer_v = v.get("customer").filter(|c| c.is_object());
    let ship = v.get("shipping_address").filter(|a| a.is_object());
    let person = |a: &Value| {
        opt_str(a, "name").map(String::from).or_else(|| {
            let first = opt_str(a, "first_name").unwrap_or_default();
            let last = opt_str(a, "last_name").unwrap_or_default();
            let full = format!("{first} {last}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
    };
    let shipping_address = match ship {
        Some(a) => address(
            person(a).as_deref(),
            opt_str(a, "company"),
            opt_str(a, "address1"),
            opt_str(a, "address2"),
            opt_str(a, "city"),
            opt_str(a, "province_code").or_else(|| opt_str(a, "province")),
            opt_str(a, "zip"),
            opt_str(a, "country_code").or_else(|| opt_str(a, "country")),
            opt_str(a, "phone"),
        ),
        None => address(None, None, None, None, None, None, None, None, None),
    };
    let billing_address = v.get("billing_address").filter(|a| a.is_object()).map(|a| {
        address(
            person(a).as_deref(),
            opt_str(a, "company"),
            opt_str(a, "address1"),
            opt_str(a, "address2"),
            opt_str(a, "city"),
            opt_str(a, "province_code").or_else(|| opt_str(a, "province")),
            opt_str(a, "zip"),
            opt_str(a, "country_code").or_else(|| opt_str(a, "country")),
            opt_str(a, "phone"),
        )
    });
    let customer = Customer {
        customer_id: customer_v.and_then(|c| id_text(c.get("id"))),
        email: opt_str(v, "email")
            .or_else(|| opt_str(v, "contact_email"))
            .or_else(|| customer_v.and_then(|c| opt_str(c, "email")))
            .map(String::from),
        name: customer_v
            .and_then(person)
            .or_else(|| ship.and_then(person))
            .unwrap_or_default(),
        phone: opt_str(v, "phone")
            .or_else(|| customer_v.and_then(|c| opt_str(c, "phone")))
            .map(String::from),
    };

    let cancellation = match opt_str(v, "cancelled_at") {
        Some(at) => Some(Cancellation {
            reason: opt_str(v, "cancel_reason").unwrap_or("other").to_string(),
            cancelled_at: fields::timestamp(&ctx("cancelled_at"), at)?,
            restock: true,
        }),
        None => None,
    };
    let status = if cancellation.is_some() {
        OrderStatus::Cancelled
    } else {
        match (
            opt_str(v, "fulfillment_status"),
            opt_str(v, "financial_status"),
        ) {
            (Some("fulfilled"), _) => OrderStatus::Fulfilled,
            (Some("partial"), _) => OrderStatus::PartiallyFulfilled,
            (_, Some("pending")) => OrderStatus::Pending,
            _ => OrderStatus::Open,
        }
    };
    let tags = opt_str(v, "tags")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut gift_message = None;
    let mut extras = BTreeMap::new();
    for a in v
        .get("note_attributes")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        if let (Some(k), Some(val)) = (opt_str(a, "name"), a.get("value")) {
            let text = val
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| val.to_string());
            if k.eq_ignore_ascii_case("gift message") || k.eq_ignore_ascii_case("gift_message") {
                gift_message = Some(text.clone());
            }
            extras.insert(format!("note_attribute.{k}"), text);
        }
    }
    for key in [
        "financial_status",
        "fulfillment_status",
        "source_name",
        "presentment_currency",
        "customer_locale",
        "processed_at",
        "admin_graphql_api_id",
    ] {
        if let Some(val) = opt_str(v, key) {
            extras.insert(key.to_string(), val.to_string());
        }
    }
    let priority = priority_of(shipping_method.as_deref());

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "shopify".into(),
            external_id: id.clone(),
            external_number: opt_str(v, "name")
                .map(String::from)
                .or_else(|| id_text(v.get("order_number"))),
            status,
            currency: cur.to_string(),
            customer,
            shipping_address,
            billing_address,
            lines,
            totals,
            priority,
            shipping_method,
            ship_by: None,
            deliver_by: None,
            fulfilled_by_channel: false,
            created_at,
            updated_at,
            tags,
            note: opt_str(v, "note").map(String::from),
            gift_message,
            extras,
        },
        listing_ids,
        cancellation,
        test: v.get("test").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Priority from the shipping method's name, as merchants name their rates.
pub(super) fn priority_of(method: Option<&str>) -> Priority {
    let m = method.unwrap_or_default().to_ascii_lowercase();
    if ["overnight", "next day", "next-day", "nextday", "same day"]
        .iter()
        .any(|k| m.contains(k))
    {
        Priority::Overnight
    } else if [
        "express",
        "expedited",
        "priority",
        "2 day",
        "2-day",
        "two day",
        "second day",
    ]
    .iter()
    .any(|k| m.contains(k))
    {
        Priority::Expedited
    } else {
        Priority::Standard
    }
}

fn sum(
    items: impl Iterator<Item = Result<Money, Rejection>>,
    cur: Currency,
) -> Result<Money, Rejection> {
    let mut total = Decimal::ZERO;
    for m in items {
        total += m?.amount;
    }
    Ok(Money::new(total, cur))
}

const SKUS: &[(&str, &str, &str, u64)] = &[
    (
        "MTG-DMU-BOOSTER",
        "Dominaria United Draft Booster",
        "4.99",
        40_001,
    ),
    (
        "PKM-SV1-ETB",
        "Scarlet & Violet Elite Trainer Box",
        "49.99",
        40_002,
    ),
    (
        "SLEEVE-DS-100",
        "Dragon Shield Matte Sleeves (100)",
        "10.99",
        40_003,
    ),
    ("DICE-CHX-7", "Chessex 7-Die Set", "12.99", 40_004),
    ("BINDER-9P", "9-Pocket Zip Binder", "24.99", 40_005),
];
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("Austin", "Texas", "TX", "78701"),
    ("Portland", "Oregon", "OR", "97205"),
    ("Columbus", "Ohio", "OH", "43215"),
    ("Boston", "Massachusetts", "MA", "02134"),
];

/// The `n`-th example order in the shape the Admin REST API documents
/// (webhook bodies and orders.json entries), deterministic in `n`.
pub fn example(n: u64) -> Value {
    let id = 5_500_000_000_000 + n;
    let (city, province, code, zip) = PLACES[(n % PLACES.len() as u64) as usize];
    let n_lines = 1 + (n % 3) as usize;
    let mut subtotal = Decimal::ZERO;
    let mut tax_total = Decimal::ZERO;
    let items: Vec<Value> = (0..n_lines)
        .map(|l| {
            let (sku, name, price, variant) = SKUS[(n as usize + l * 2) % SKUS.len()];
            let qty = 1 + ((n + l as u64) % 3) as i64;
            let p = Decimal::from_str_exact(price).unwrap_or_default();
            let tax = (p * Decimal::from(qty) * Decimal::new(825, 4)).round_dp(2);
            subtotal += p * Decimal::from(qty);
            tax_total += tax;
            json!({
                "id": id * 10 + l as u64,
                "admin_graphql_api_id": format!("gid://shopify/LineItem/{}", id * 10 + l as u64),
                "variant_id": variant,
                "product_id": variant + 1000,
                "sku": sku,
                "name": name,
                "title": name,
                "quantity": qty,
                "current_quantity": qty,
                "fulfillable_quantity": qty,
                "price": price,
                "price_set": {"shop_money": {"amount": price, "currency_code": "USD"}},
                "total_discount": "0.00",
                "discount_allocations": [],
                "tax_lines": [{"price": tax.to_string(), "rate": 0.0825, "title": "State Tax"}],
                "requires_shipping": true,
                "taxable": true,
                "gift_card": false,
                "properties": [],
                "vendor": "Card Shop",
                "fulfillment_status": null
            })
        })
        .collect();
    let shipping = if n.is_multiple_of(7) { "14.99" } else { "4.99" };
    let method = if n.is_multiple_of(7) {
        "Express"
    } else {
        "Standard"
    };
    let total = subtotal + tax_total + Decimal::from_str_exact(shipping).unwrap_or_default();
    let ts =
        |secs: u64| fields::format_ms((1_763_000_000 + secs) as i64 * 1000).replace('Z', "+00:00");
    json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "name": format!("#{}", 1000 + n),
        "order_number": 1000 + n,
        "email": format!("buyer{n}@example.com"),
        "contact_email": format!("buyer{n}@example.com"),
        "created_at": ts(n % 100_000 * 60),
        "updated_at": ts(n % 100_000 * 60 + 5),
        "processed_at": ts(n % 100_000 * 60),
        "cancelled_at": null,
        "cancel_reason": null,
        "closed_at": null,
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": null,
        "subtotal_price": subtotal.to_string(),
        "current_subtotal_price": subtotal.to_string(),
        "total_discounts": "0.00",
        "total_tax": tax_total.to_string(),
        "total_price": total.to_string(),
        "current_total_price": total.to_string(),
        "taxes_included": false,
        "test": false,
        "tags": if n.is_multiple_of(5) { "vip, wholesale" } else { "" },
        "note": null,
        "note_attributes": [],
        "source_name": "web",
        "customer_locale": "en",
        "phone": null,
        "customer": {
            "id": 7_000_000 + n % 1000,
            "email": format!("buyer{n}@example.com"),
            "first_name": "Sam",
            "last_name": format!("Buyer{n}"),
            "phone": null
        },
        "shipping_address": {
            "first_name": "Sam",
            "last_name": format!("Buyer{n}"),
            "name": format!("Sam Buyer{n}"),
            "company": null,
            "address1": format!("{} Main St", 100 + n % 900),
            "address2": if n.is_multiple_of(4) { Value::from("Apt 4") } else { Value::Null },
            "city": city,
            "province": province,
            "province_code": code,
            "zip": zip,
            "country": "United States",
            "country_code": "US",
            "phone": "555-0100",
            "latitude": null,
            "longitude": null
        },
        "billing_address": null,
        "shipping_lines": [{
            "id": id + 7,
            "title": method,
            "code": method,
            "price": shipping,
            "discounted_price": shipping,
            "source": "shopify",
            "tax_lines": []
        }],
        "line_items": items
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::testing::catalog;
    use crate::normalize::{normalize, Rejection};
    use conveyor_schemas::records::RawSource;

    fn raw(v: &Value) -> RawOrder {
        RawOrder {
            event_id: "wh-1".into(),
            channel: "shopify".into(),
            external_order_id: "1".into(),
            external_order_number: None,
            source: RawSource::Webhook,
            topic_hint: Some("orders/create".into()),
            received_at: 0,
            content_type: "application/json".into(),
            payload: serde_json::to_vec(v).unwrap(),
            source_headers: Default::default(),
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn cat() -> crate::catalog::Catalog {
        catalog(&[
            ("MTG-DMU-BOOSTER", &[]),
            ("PKM-SV1-ETB", &[("shopify", "40002")]),
            ("SLEEVE-DS-100", &[]),
            ("DICE-CHX-7", &[]),
            ("BINDER-9P", &[]),
            ("IPOD2008BLACK", &[("shopify", "447654529")]),
        ])
    }

    /// The orders/create webhook body from Shopify's documentation (trimmed of
    /// fields conveyor does not read; values as published).
    const DOCS_WEBHOOK: &str = r##"{
      "id": 820982911946154508, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
      "email": "jon@example.com", "closed_at": null, "created_at": "2021-12-31T19:00:00-05:00",
      "updated_at": "2021-12-31T19:00:00-05:00", "number": 234, "note": null, "token": "123456abcd",
      "test": true, "total_price": "254.98", "subtotal_price": "244.98", "total_weight": 0,
      "total_tax": "0.00", "taxes_included": false, "currency": "USD", "financial_status": "voided",
      "confirmed": false, "total_discounts": "5.00", "cart_token": null, "name": "#9999",
      "cancelled_at": "2021-12-31T19:00:00-05:00", "cancel_reason": "customer",
      "phone": null, "tags": "tag1, tag2", "presentment_currency": "USD",
      "billing_address": {"first_name": "Steve", "address1": "123 Shipping Street", "phone": "555-555-SHIP",
        "city": "Shippington", "zip": "40003", "province": "Kentucky", "country": "United States",
        "last_name": "Shipper", "address2": null, "company": "Shipping Company", "latitude": null,
        "longitude": null, "name": "Steve Shipper", "country_code": "US", "province_code": "KY"},
      "shipping_address": {"first_name": "Steve", "address1": "123 Shipping Street", "phone": "555-555-SHIP",
        "city": "Shippington", "zip": "40003", "province": "Kentucky", "country": "United States",
        "last_name": "Shipper", "address2": null, "company": "Shipping Company", "latitude": null,
        "longitude": null, "name": "Steve Shipper", "country_code": "US", "province_code": "KY"},
      "customer": {"id": 115310627314723954, "email": "john@example.com", "first_name": "John",
        "last_name": "Smith", "state": "disabled", "note": null, "phone": null, "tags": "", "currency": "USD"},
      "discount_codes": [], "note_attributes": [], "fulfillments": [], "refunds": [],
      "line_items": [
        {"id": 866550311766439020, "admin_graphql_api_id": "gid://shopify/LineItem/866550311766439020",
         "fulfillable_quantity": 1, "fulfillment_service": "manual", "fulfillment_status": null,
         "gift_card": false, "grams": 567, "name": "IPod Nano - 8GB", "price": "199.00",
         "price_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}},
         "product_exists": true, "product_id": 632910392, "properties": [], "quantity": 1,
         "requires_shipping": true, "sku": "IPOD2008BLACK", "taxable": true, "title": "IPod Nano - 8GB",
         "total_discount": "0.00", "variant_id": 808950810, "variant_title": null, "vendor": null,
         "tax_lines": [], "duties": [], "discount_allocations": []},
        {"id": 141249953214522974, "admin_graphql_api_id": "gid://shopify/LineItem/141249953214522974",
         "fulfillable_quantity": 1, "fulfillment_service": "manual", "fulfillment_status": null,
         "gift_card": false, "grams": 567, "name": "IPod Nano - 8GB", "price": "199.00",
         "product_exists": true, "product_id": 632910392, "properties": [], "quantity": 1,
         "requires_shipping": true, "sku": null, "taxable": true, "title": "IPod Nano - 8GB",
         "total_discount": "5.00", "variant_id": 447654529, "variant_title": null, "vendor": null,
         "tax_lines": [], "duties": [], "discount_allocations": []}
      ],
      "shipping_lines": [{"id": 271878346596884015, "carrier_identifier": null, "code": null,
        "discounted_price": "10.00", "price": "10.00", "source": "shopify", "title": "Generic Shipping",
        "tax_lines": [], "discount_allocations": []}]
    }"##;

    #[test]
    fn the_documented_webhook_normalizes() {
        let v: Value = serde_json::from_str(DOCS_WEBHOOK).unwrap();
        let n = normalize(&raw(&v), &cat()).unwrap();
        let o = &n.order;
        assert_eq!(o.order_id, "shopify:820982911946154508");
        assert_eq!(o.external_number.as_deref(), Some("#9999"));
        // 19:00 at -05:00 is midnight UTC.
        assert_eq!(o.updated_at, 1_640_995_200_000);
        assert_eq!(n.version, o.updated_at);
        assert_eq!(o.status, OrderStatus::Cancelled);
        let c = n.cancellation.as_ref().unwrap();
        assert_eq!(c.reason, "customer");
        assert_eq!(o.lines.len(), 2);
        assert_eq!(o.lines[0].sku, "IPOD2008BLACK");
        // No SKU on the second line: resolved through its variant id.
        assert_eq!(o.lines[1].sku, "IPOD2008BLACK");
        assert_eq!(o.lines[1].discount.amount, dec("5.00"));
        assert_eq!(o.lines[1].total.amount, dec("194.00"));
        assert_eq!(o.totals.total.amount, dec("254.98"));
        assert_eq!(o.totals.shipping.amount, dec("10.00"));
        assert_eq!(o.shipping_address.region.as_deref(), Some("KY"));
        assert_eq!(o.shipping_address.country, "US");
        assert_eq!(
            o.customer.customer_id.as_deref(),
            Some("115310627314723954")
        );
        assert_eq!(o.tags, ["tag1", "tag2", "test"]);
    }

    #[test]
    fn examples_normalize_and_edits_drop_removed_lines() {
        let c = cat();
        for i in 0..60 {
            let n = normalize(&raw(&example(i)), &c).unwrap();
            assert!(!n.order.lines.is_empty());
            let sum: Decimal = n.order.lines.iter().map(|l| l.total.amount).sum();
            assert_eq!(
                sum + n.order.totals.shipping.amount,
                n.order.totals.total.amount
            );
        }
        let mut v = example(2); // three lines
        v["line_items"][1]["current_quantity"] = json!(0);
        let n = normalize(&raw(&v), &c).unwrap();
        assert_eq!(n.order.lines.len(), 2);
    }

    #[test]
    fn minimal_payloads_work_and_gaps_are_named() {
        let minimal = json!({
            "id": 1, "currency": "USD", "updated_at": "2024-05-01T10:00:00Z",
            "line_items": [{"quantity": 1, "sku": "DICE-CHX-7", "price": "12.99", "unknown": {"x": 1}}],
            "shipping_address": {"name": "A B", "address1": "1 Main", "city": "Austin",
                                 "province_code": "TX", "zip": "78701", "country_code": "US"},
            "brand_new_field": [1, 2, 3]
        });
        let n = normalize(&raw(&minimal), &cat()).unwrap();
        assert_eq!(n.order.created_at, n.order.updated_at);
        assert_eq!(n.order.totals.total.amount, Decimal::ZERO);

        let reject = |v: Value| normalize(&raw(&v), &cat()).unwrap_err().0;
        let mut v = minimal.clone();
        v["line_items"][0]["sku"] = json!("NOPE");
        assert!(reject(v).contains("SKU `NOPE` is not in the catalog"));
        let mut v = minimal.clone();
        v["line_items"][0]["quantity"] = json!(-1);
        assert!(reject(v).contains("must be greater than 0"));
        let mut v = minimal.clone();
        v["currency"] = json!("dollars");
        assert!(reject(v).contains("currency"));
        let mut v = minimal.clone();
        v["shipping_address"]["zip"] = json!("ABC");
        assert!(reject(v).contains("postal code"));
        let mut v = minimal.clone();
        v.as_object_mut().unwrap().remove("shipping_address");
        assert!(reject(v).contains("shipping address"));
        let mut v = minimal.clone();
        v["updated_at"] = json!("yesterday");
        assert!(reject(v).contains("updated_at"));
        let mut v = minimal;
        v["line_items"][0]["price"] = json!({"amount": 1});
        assert!(reject(v).contains("price"));
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bytes in [&b""[..], b"null", b"[]", b"{}", b"{\"id\":{}}", b"\xff\xfe"] {
            let mut r = raw(&Value::Null);
            r.payload = bytes.to_vec();
            let e: Rejection = normalize(&r, &cat()).unwrap_err();
            assert!(!e.0.is_empty());
        }
    }
}

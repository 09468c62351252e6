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
    Address, Cancellation, Currency, Customer, Money, Order, OrderLine, OrderStatus, Priority,
    RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;

use super::fields::{self, Scalar};
use super::OrderNumberField;
use super::{address, Draft, Rejection};

/// The fields of the Admin REST `Order` resource normalize reads; serde
/// skips the rest without building anything.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopifyOrder<'a> {
    /// `GET /orders/{id}.json` wraps the order: `{"order": {...}}`.
    order: Option<Box<ShopifyOrder<'a>>>,
    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    order_number: Scalar<'a>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    contact_email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    currency: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cancelled_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cancel_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    financial_status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    fulfillment_status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subtotal_price: Scalar<'a>,
    #[serde(borrow)]
    current_subtotal_price: Scalar<'a>,
    #[serde(borrow)]
    total_discounts: Scalar<'a>,
    #[serde(borrow)]
    current_total_discounts: Scalar<'a>,
    #[serde(borrow)]
    total_tax: Scalar<'a>,
    #[serde(borrow)]
    current_total_tax: Scalar<'a>,
    #[serde(borrow)]
    total_price: Scalar<'a>,
    #[serde(borrow)]
    current_total_price: Scalar<'a>,
    test: Option<bool>,
    #[serde(borrow)]
    tags: Option<Cow<'a, str>>,
    #[serde(borrow)]
    note: Option<Cow<'a, str>>,
    #[serde(borrow)]
    note_attributes: Option<Vec<NameValue<'a>>>,
    #[serde(borrow)]
    source_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    presentment_currency: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer_locale: Option<Cow<'a, str>>,
    #[serde(borrow)]
    processed_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    admin_graphql_api_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer: Option<ShopifyCustomer<'a>>,
    #[serde(borrow)]
    shipping_address: Option<ShopifyAddress<'a>>,
    #[serde(borrow)]
    billing_address: Option<ShopifyAddress<'a>>,
    #[serde(borrow)]
    shipping_lines: Option<Vec<ShippingLine<'a>>>,
    #[serde(borrow)]
    line_items: Option<Vec<LineItem<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopifyCustomer<'a> {
    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    first_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phone: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShopifyAddress<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    first_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    company: Option<Cow<'a, str>>,
    #[serde(borrow)]
    address1: Option<Cow<'a, str>>,
    #[serde(borrow)]
    address2: Option<Cow<'a, str>>,
    #[serde(borrow)]
    city: Option<Cow<'a, str>>,
    #[serde(borrow)]
    province: Option<Cow<'a, str>>,
    #[serde(borrow)]
    province_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    zip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phone: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ShippingLine<'a> {
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Scalar<'a>,
    #[serde(borrow)]
    discounted_price: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LineItem<'a> {
    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    variant_id: Scalar<'a>,
    #[serde(borrow)]
    sku: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    variant_title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    vendor: Option<Cow<'a, str>>,
    #[serde(borrow)]
    quantity: Scalar<'a>,
    #[serde(borrow)]
    current_quantity: Scalar<'a>,
    #[serde(borrow)]
    price: Scalar<'a>,
    #[serde(borrow)]
    total_discount: Scalar<'a>,
    #[serde(borrow)]
    discount_allocations: Option<Vec<Amount<'a>>>,
    #[serde(borrow)]
    tax_lines: Option<Vec<TaxLine<'a>>>,
    requires_shipping: Option<bool>,
    gift_card: Option<bool>,
    #[serde(borrow)]
    properties: Option<Vec<NameValue<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Amount<'a> {
    #[serde(borrow)]
    amount: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TaxLine<'a> {
    #[serde(borrow)]
    price: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameValue<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Scalar<'a>,
}

/// Trimmed, non-empty text.
fn t<'s>(v: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn person(first: &Option<Cow<'_, str>>, last: &Option<Cow<'_, str>>) -> Option<String> {
    let full = format!(
        "{} {}",
        t(first).unwrap_or_default(),
        t(last).unwrap_or_default()
    );
    let full = full.trim();
    (!full.is_empty()).then(|| full.to_string())
}

fn to_address(a: &ShopifyAddress<'_>) -> Address {
    let name = t(&a.name)
        .map(String::from)
        .or_else(|| person(&a.first_name, &a.last_name));
    address(
        name.as_deref(),
        t(&a.company),
        t(&a.address1),
        t(&a.address2),
        t(&a.city),
        t(&a.province_code).or(t(&a.province)),
        t(&a.zip),
        t(&a.country_code).or(t(&a.country)),
        t(&a.phone),
    )
}

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    parse_with(raw, OrderNumberField::Name)
}

/// [`parse`], taking the order number from `number_field` (falling back to
/// the other field when it is missing).
pub fn parse_with(raw: &RawOrder, number_field: OrderNumberField) -> Result<Draft, Rejection> {
    let mut o: ShopifyOrder = fields::typed("shopify", &raw.payload)?;
    if let Some(inner) = o.order.take() {
        o = *inner;
    }
    let id =
        o.id.owned()
            .ok_or_else(|| Rejection::new("shopify order: `id` is missing"))?;
    map(o, &id, number_field).map_err(|e| Rejection(format!("shopify order {id}: {}", e.0)))
}

fn map(o: ShopifyOrder<'_>, id: &str, number_field: OrderNumberField) -> Result<Draft, Rejection> {
    let cur = fields::currency(
        "currency",
        t(&o.currency).ok_or_else(|| Rejection::new("`currency` is missing"))?,
    )?;
    let updated_at = fields::timestamp(
        "updated_at",
        t(&o.updated_at).ok_or_else(|| Rejection::new("`updated_at` is missing"))?,
    )?;
    let created_at = match t(&o.created_at) {
        Some(x) => fields::timestamp("created_at", x)?,
        None => updated_at,
    };

    let items = o.line_items.unwrap_or_default();
    let mut lines = Vec::with_capacity(items.len());
    let mut listing_ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let at = |e: Rejection| Rejection(format!("line_items[{n}].{}", e.0));
        let ordered = item.quantity.int("quantity").map_err(at)?;
        let quantity = if item.current_quantity.is_null() {
            ordered
        } else {
            item.current_quantity.int("current_quantity").map_err(at)?
        };
        if quantity == 0 && ordered > 0 {
            continue; // removed by an order edit
        }
        let quantity = i32::try_from(quantity)
            .map_err(|_| at(Rejection(format!("quantity: {quantity} is out of range"))))?;
        let unit_price = item.price.money("price", cur).map_err(at)?;
        let discount = match item.discount_allocations.as_deref() {
            Some(allocs) if !allocs.is_empty() => sum(
                allocs
                    .iter()
                    .map(|a| a.amount.money("discount_allocations.amount", cur)),
                cur,
            )
            .map_err(at)?,
            _ => item
                .total_discount
                .money("total_discount", cur)
                .map_err(at)?,
        };
        let tax = sum(
            item.tax_lines
                .iter()
                .flatten()
                .map(|x| x.price.money("tax_lines.price", cur)),
            cur,
        )
        .map_err(at)?;
        let total = Money::new(
            unit_price.amount * Decimal::from(quantity) - discount.amount + tax.amount,
            cur,
        );
        let mut properties = BTreeMap::new();
        for p in item.properties.iter().flatten() {
            if let (Some(k), Some(v)) = (t(&p.name), p.value.text()) {
                properties.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(v) = t(&item.variant_title) {
            properties.insert("variant_title".into(), v.to_string());
        }
        if let Some(v) = t(&item.vendor) {
            properties.insert("vendor".into(), v.to_string());
        }
        listing_ids.push(item.variant_id.owned().into_iter().collect());
        let gift_card = item.gift_card.unwrap_or(false);
        lines.push(OrderLine {
            line_id: item.id.owned().unwrap_or_else(|| format!("{id}-{n}")),
            sku: t(&item.sku).unwrap_or_default().to_string(),
            name: t(&item.name)
                .or(t(&item.title))
                .unwrap_or_default()
                .to_string(),
            quantity,
            unit_price,
            discount,
            tax,
            total,
            requires_shipping: item.requires_shipping.unwrap_or(!gift_card),
            properties,
        });
    }

    let shipping_lines = o.shipping_lines.unwrap_or_default();
    let shipping = sum(
        shipping_lines.iter().map(|s| {
            if s.discounted_price.is_null() {
                s.price.money("shipping_lines.price", cur)
            } else {
                s.discounted_price
                    .money("shipping_lines.discounted_price", cur)
            }
        }),
        cur,
    )?;
    let shipping_method = shipping_lines
        .first()
        .and_then(|s| t(&s.title).or(t(&s.code)))
        .map(String::from);
    let pick = |current: &Scalar<'_>, original: &Scalar<'_>, field: &'static str| {
        if current.is_null() {
            original.money(field, cur)
        } else {
            current.money(field, cur)
        }
    };
    let totals = Totals {
        subtotal: pick(
            &o.current_subtotal_price,
            &o.subtotal_price,
            "subtotal_price",
        )?,
        discount: pick(
            &o.current_total_discounts,
            &o.total_discounts,
            "total_discounts",
        )?,
        shipping,
        tax: pick(&o.current_total_tax, &o.total_tax, "total_tax")?,
        total: pick(&o.current_total_price, &o.total_price, "total_price")?,
    };

    let shipping_address = match &o.shipping_address {
        Some(a) => to_address(a),
        None => address(None, None, None, None, None, None, None, None, None),
    };
    let billing_address = o.billing_address.as_ref().map(to_address);
    let customer_v = o.customer.as_ref();
    let customer = Customer {
        customer_id: customer_v.and_then(|c| c.id.owned()),
        email: t(&o.email)
            .or(t(&o.contact_email))
            .or_else(|| customer_v.and_then(|c| t(&c.email)))
            .map(String::from),
        name: customer_v
            .and_then(|c| person(&c.first_name, &c.last_name))
            .or_else(|| {
                o.shipping_address.as_ref().and_then(|a| {
                    t(&a.name)
                        .map(String::from)
                        .or_else(|| person(&a.first_name, &a.last_name))
                })
            })
            .unwrap_or_default(),
        phone: t(&o.phone)
            .or_else(|| customer_v.and_then(|c| t(&c.phone)))
            .map(String::from),
    };

    let cancellation = match t(&o.cancelled_at) {
        Some(at) => Some(Cancellation {
            reason: t(&o.cancel_reason).unwrap_or("other").to_string(),
            cancelled_at: fields::timestamp("cancelled_at", at)?,
            restock: true,
        }),
        None => None,
    };
    let status = if cancellation.is_some() {
        OrderStatus::Cancelled
    } else {
        match (t(&o.fulfillment_status), t(&o.financial_status)) {
            (Some("fulfilled"), _) => OrderStatus::Fulfilled,
            (Some("partial"), _) => OrderStatus::PartiallyFulfilled,
            (_, Some("pending")) => OrderStatus::Pending,
            _ => OrderStatus::Open,
        }
    };
    let tags = t(&o.tags)
        .map(|x| {
            x.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut gift_message = None;
    let mut extras = BTreeMap::new();
    for a in o.note_attributes.iter().flatten() {
        if let (Some(k), Some(v)) = (t(&a.name), a.value.text()) {
            if k.eq_ignore_ascii_case("gift message") || k.eq_ignore_ascii_case("gift_message") {
                gift_message = Some(v.to_string());
            }
            extras.insert(format!("note_attribute.{k}"), v.to_string());
        }
    }
    for (key, v) in [
        ("financial_status", &o.financial_status),
        ("fulfillment_status", &o.fulfillment_status),
        ("source_name", &o.source_name),
        ("presentment_currency", &o.presentment_currency),
        ("customer_locale", &o.customer_locale),
        ("processed_at", &o.processed_at),
        ("admin_graphql_api_id", &o.admin_graphql_api_id),
    ] {
        if let Some(v) = t(v) {
            extras.insert(key.to_string(), v.to_string());
        }
    }
    let priority = priority_of(shipping_method.as_deref());

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "shopify".into(),
            external_id: id.to_string(),
            external_number: match number_field {
                OrderNumberField::Name => t(&o.name)
                    .map(String::from)
                    .or_else(|| o.order_number.owned()),
                OrderNumberField::OrderNumber => o
                    .order_number
                    .owned()
                    .or_else(|| t(&o.name).map(String::from)),
            },
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
            note: t(&o.note).map(String::from),
            gift_message,
            extras,
        },
        listing_ids,
        cancellation,
        test: o.test.unwrap_or(false),
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
    fn the_order_number_comes_from_the_configured_field() {
        use crate::normalize::{normalize_with, Mapping};
        let c = cat();
        let v = example(7);
        let by = |f| {
            let m = Mapping {
                shopify_order_number: f,
            };
            normalize_with(&raw(&v), &c, m)
                .unwrap()
                .order
                .external_number
        };
        assert_eq!(by(OrderNumberField::Name).as_deref(), Some("#1007"));
        assert_eq!(by(OrderNumberField::OrderNumber).as_deref(), Some("1007"));
        // A missing field falls back to the other one.
        let mut bare = v.clone();
        bare.as_object_mut().unwrap().remove("order_number");
        let n = normalize_with(
            &raw(&bare),
            &c,
            Mapping {
                shopify_order_number: OrderNumberField::OrderNumber,
            },
        )
        .unwrap();
        assert_eq!(n.order.external_number.as_deref(), Some("#1007"));
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

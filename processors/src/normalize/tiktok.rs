//! TikTok Shop: one order object of the Get Order Detail response
//! (`GET /order/202309/orders`, `data.orders[]`). Versioned by
//! `update_time`.
//!
//! What the API documents (Partner Center docs, and the official SDKs
//! generated from the same OpenAPI description) and this mapper relies on:
//! - times are Unix seconds; amounts are decimal strings in
//!   `payment.currency`; every field is optional in the schema;
//! - `line_items` has ONE ENTRY PER UNIT (there is no quantity field):
//!   units with the same `sku_id`, `seller_sku` and `sale_price` become one
//!   order line with the summed quantity, `line_id` the first unit's `id`
//!   and all unit ids kept in the `line_item_ids` property. A unit whose
//!   `display_status` is `CANCELLED` in an order that is not cancelled was
//!   cancelled on its own: it is left out (its id kept in the
//!   `cancelled_line_item_ids` extra);
//! - per unit, `original_price` is the list price and `seller_discount` and
//!   `platform_discount` the discounts on it (the order-level
//!   `sub_total = original_total_product_price - seller_discount -
//!   platform_discount`): the line's unit price is the original price and
//!   its discount the sum of both discounts, so `total = unit_price x
//!   quantity - discount + tax` is what the buyer paid for the line;
//! - `recipient_address.region_code` is the country; `district_info` lists
//!   the administrative levels (`L0` country, `L1` state, ... `L3` city in
//!   the US), named by `address_level_name`;
//! - `rts_sla_time` is "the latest shipping time" (ship_by, else
//!   `tts_sla_time`, "the latest collection time"); `delivery_sla_time` is
//!   when the order "should arrive by" (deliver_by);
//! - `fulfillment_type` `FULFILLMENT_BY_TIKTOK` is Fulfilled by TikTok.
//!
//! Totals from `payment`: subtotal = `sub_total` (after product
//! discounts), discount = `seller_discount + platform_discount`, shipping =
//! `shipping_fee` (what the buyer paid, after shipping discounts), tax =
//! `tax` (else `product_tax + shipping_fee_tax`), total = `total_amount`.
//! Listing ids per line: `sku_id`, then `product_id`. `CANCELLED` is a
//! cancellation (at `cancel_time`, else `update_time`); `is_sample_order`
//! and the other flags go to `extras`, no order is a test order.

use std::collections::BTreeMap;

use conveyor_schemas::records::{
    Cancellation, Customer, Order, OrderLine, OrderStatus, RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::amazon::{checked, example_tax, flag, flat, per_unit, to_money, PLACES, SKUS};
use super::fields::{self, id_text, money_opt, opt_str};
use super::{address, json_payload, Draft, Rejection};

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let v = json_payload(raw)?;
    // The whole response or its `data` stored by mistake: take the order.
    let inner = match v
        .get("data")
        .and_then(|d| d.get("orders"))
        .or_else(|| v.get("orders"))
    {
        Some(Value::Array(orders)) if orders.len() == 1 => orders.first().cloned(),
        _ => None,
    };
    let v = inner.unwrap_or(v);
    if !v.is_object() {
        return Err(Rejection::new("tiktok payload is not an order object"));
    }
    let id = id_text(v.get("id")).ok_or_else(|| Rejection::new("tiktok order: `id` is missing"))?;
    let ctx = |field: &str| format!("tiktok order {id}: {field}");

    let updated_at = match v.get("update_time") {
        None | Some(Value::Null) => return Err(Rejection::new(ctx("`update_time` is missing"))),
        t => fields::unix_seconds(&ctx("update_time"), fields::int(&ctx("update_time"), t)?)?,
    };
    let time = |key: &str| -> Result<Option<i64>, Rejection> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            t => match fields::int(&ctx(key), t)? {
                0 => Ok(None), // unset times are sent as 0
                secs => fields::unix_seconds(&ctx(key), secs).map(Some),
            },
        }
    };
    let created_at = time("create_time")?.unwrap_or(updated_at);

    let empty = Vec::new();
    let payment = v.get("payment").filter(|p| p.is_object());
    let items = match v.get("line_items") {
        None | Some(Value::Null) => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Rejection::new(ctx("`line_items` is not a list"))),
    };
    let code = payment
        .and_then(|p| opt_str(p, "currency"))
        .map(|c| (c, "payment.currency"))
        .or_else(|| {
            items
                .iter()
                .find_map(|i| opt_str(i, "currency"))
                .map(|c| (c, "line_items.currency"))
        })
        .ok_or_else(|| Rejection::new(ctx("payment.currency is missing")))?;
    let cur = fields::currency(&ctx(code.1), code.0)?;

    let tiktok_status = opt_str(&v, "status").unwrap_or_default();
    let cancelled = tiktok_status.eq_ignore_ascii_case("CANCELLED");
    let mut groups: Vec<Group> = Vec::new();
    let mut cancelled_units = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let f = |name: &str| ctx(&format!("line_items[{n}].{name}"));
        if !item.is_object() {
            return Err(Rejection::new(ctx(&format!(
                "line_items[{n}] is not a line item object"
            ))));
        }
        let unit_id = id_text(item.get("id")).unwrap_or_else(|| format!("{id}-{n}"));
        if let Some(c) = opt_str(item, "currency") {
            let c = fields::currency(&f("currency"), c)?;
            if c != cur {
                return Err(Rejection::new(format!(
                    "{} is {c} but the order is in {cur}",
                    f("currency")
                )));
            }
        }
        if !cancelled
            && opt_str(item, "display_status").is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
        {
            cancelled_units.push(unit_id);
            continue;
        }
        let sale = money_opt(&f("sale_price"), item.get("sale_price"), cur)?.amount;
        let seller_discount =
            money_opt(&f("seller_discount"), item.get("seller_discount"), cur)?.amount;
        let platform_discount =
            money_opt(&f("platform_discount"), item.get("platform_discount"), cur)?.amount;
        let discount = checked(
            &f("seller_discount"),
            seller_discount.abs().checked_add(platform_discount.abs()),
        )?;
        let original = match item.get("original_price").filter(|p| !p.is_null()) {
            Some(p) => fields::money_json(&f("original_price"), p, cur)?.amount,
            None => checked(&f("sale_price"), sale.checked_add(discount))?,
        };
        let mut tax = Decimal::ZERO;
        match item.get("item_tax") {
            None | Some(Value::Null) => {}
            Some(Value::Array(taxes)) => {
                for t in taxes {
                    let amount = match t {
                        Value::Object(_) => {
                            money_opt(&f("item_tax.tax_amount"), t.get("tax_amount"), cur)?
                        }
                        Value::Null => continue,
                        other => {
                            return Err(Rejection::new(format!(
                                "{}: expected a tax object, got {other}",
                                f("item_tax")
                            )))
                        }
                    };
                    tax = checked(&f("item_tax"), tax.checked_add(amount.amount))?;
                }
            }
            Some(other) => {
                return Err(Rejection::new(format!(
                    "{}: expected a list, got {other}",
                    f("item_tax")
                )))
            }
        }
        let sku_id = id_text(item.get("sku_id"));
        let seller_sku = opt_str(item, "seller_sku").unwrap_or_default().to_string();
        let key = (
            sku_id.clone().unwrap_or_default(),
            seller_sku.clone(),
            sale.normalize().to_string(),
        );
        let group = match groups.iter_mut().position(|g| g.key == key) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group {
                    key,
                    ids: Vec::new(),
                    quantity: 0,
                    original: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                    sku: seller_sku,
                    name: opt_str(item, "product_name")
                        .unwrap_or_default()
                        .to_string(),
                    listing_ids: sku_id
                        .into_iter()
                        .chain(id_text(item.get("product_id")))
                        .collect(),
                    properties: BTreeMap::new(),
                });
                let at = groups.len() - 1;
                &mut groups[at]
            }
        };
        group.ids.push(unit_id);
        group.quantity += 1;
        group.original = checked(&f("original_price"), group.original.checked_add(original))?;
        group.discount = checked(&f("seller_discount"), group.discount.checked_add(discount))?;
        group.tax = checked(&f("item_tax"), group.tax.checked_add(tax))?;
        for key in ["sku_name", "product_id", "sku_id", "sku_type", "package_id"] {
            if let Some(text) = flat(item.get(key)) {
                group.properties.entry(key.to_string()).or_insert(text);
            }
        }
        if flag(item.get("is_gift")) == Some(true) {
            group.properties.insert("is_gift".into(), "true".into());
        }
    }

    let mut lines = Vec::new();
    let mut listing_ids = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        let label = format!("line {} ({})", i + 1, g.name);
        let f = |name: &str| ctx(&format!("{label}.{name}"));
        let quantity =
            i32::try_from(g.quantity).map_err(|_| Rejection::new(f("quantity is out of range")))?;
        let (unit, rounded) = per_unit(&f("original_price"), g.original, quantity)?;
        let total = checked(
            &f("original_price"),
            g.original
                .checked_sub(g.discount)
                .and_then(|t| t.checked_add(g.tax)),
        )?;
        let mut properties = g.properties;
        properties.insert("line_item_ids".into(), g.ids.join(","));
        if rounded {
            properties.insert(
                "original_price_total".into(),
                g.original.normalize().to_string(),
            );
        }
        listing_ids.push(g.listing_ids);
        lines.push(OrderLine {
            line_id: g.ids.first().cloned().unwrap_or_default(),
            sku: g.sku,
            name: g.name,
            quantity,
            unit_price: to_money(&f("original_price"), unit, cur)?,
            discount: to_money(&f("seller_discount"), g.discount, cur)?,
            tax: to_money(&f("item_tax"), g.tax, cur)?,
            total: to_money(&f("original_price"), total, cur)?,
            requires_shipping: true,
            properties,
        });
    }

    let pay = |key: &str| -> Result<Decimal, Rejection> {
        Ok(money_opt(
            &ctx(&format!("payment.{key}")),
            payment.and_then(|p| p.get(key)),
            cur,
        )?
        .amount)
    };
    let tax = match payment.and_then(|p| p.get("tax")).filter(|t| !t.is_null()) {
        Some(_) => pay("tax")?,
        None => checked(
            &ctx("payment.tax"),
            pay("product_tax")?.checked_add(pay("shipping_fee_tax")?),
        )?,
    };
    let discount = checked(
        &ctx("payment.seller_discount"),
        pay("seller_discount")?
            .abs()
            .checked_add(pay("platform_discount")?.abs()),
    )?;
    let totals = Totals {
        subtotal: to_money(&ctx("payment.sub_total"), pay("sub_total")?, cur)?,
        discount: to_money(&ctx("payment.seller_discount"), discount, cur)?,
        shipping: to_money(&ctx("payment.shipping_fee"), pay("shipping_fee")?, cur)?,
        tax: to_money(&ctx("payment.tax"), tax, cur)?,
        total: to_money(&ctx("payment.total_amount"), pay("total_amount")?, cur)?,
    };

    let recipient = v.get("recipient_address").filter(|a| a.is_object());
    let person = |a: &Value| -> Option<String> {
        opt_str(a, "name").map(String::from).or_else(|| {
            let first = opt_str(a, "first_name").unwrap_or_default();
            let last = opt_str(a, "last_name").unwrap_or_default();
            let full = format!("{first} {last}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
    };
    let shipping_address = match recipient {
        Some(a) => {
            let district = District::of(a);
            let rest: Vec<&str> = ["address_line2", "address_line3", "address_line4"]
                .iter()
                .filter_map(|k| opt_str(a, k))
                .collect();
            let rest = rest.join(", ");
            address(
                person(a).as_deref(),
                None,
                opt_str(a, "address_line1").or_else(|| opt_str(a, "address_detail")),
                Some(rest.as_str()),
                district.city.or_else(|| opt_str(a, "post_town")),
                district.state,
                opt_str(a, "postal_code"),
                opt_str(a, "region_code").or(district.country),
                opt_str(a, "phone_number"),
            )
        }
        None => address(None, None, None, None, None, None, None, None, None),
    };
    let customer = Customer {
        customer_id: id_text(v.get("user_id")),
        email: opt_str(&v, "buyer_email").map(String::from),
        name: recipient.and_then(person).unwrap_or_default(),
        phone: recipient
            .and_then(|a| opt_str(a, "phone_number"))
            .map(String::from),
    };

    let cancellation = if cancelled {
        Some(Cancellation {
            reason: opt_str(&v, "cancel_reason")
                .unwrap_or("cancelled on TikTok Shop")
                .to_string(),
            cancelled_at: time("cancel_time")?.unwrap_or(updated_at),
            restock: true,
        })
    } else {
        None
    };
    let status = match tiktok_status.to_ascii_uppercase().as_str() {
        "CANCELLED" => OrderStatus::Cancelled,
        "UNPAID" => OrderStatus::Pending,
        "ON_HOLD" => OrderStatus::OnHold,
        "PARTIALLY_SHIPPING" => OrderStatus::PartiallyFulfilled,
        // Shipped by the seller (label arranged) or beyond.
        "AWAITING_COLLECTION" | "IN_TRANSIT" | "DELIVERED" | "COMPLETED" => OrderStatus::Fulfilled,
        _ => OrderStatus::Open,
    };
    let shipping_method = opt_str(&v, "delivery_option_name").map(String::from);

    let mut extras = BTreeMap::new();
    for key in [
        "status",
        "order_type",
        "fulfillment_type",
        "shipping_type",
        "delivery_type",
        "delivery_option_id",
        "is_cod",
        "is_sample_order",
        "is_replacement_order",
        "replaced_order_id",
        "is_exchange_order",
        "exchange_source_order_id",
        "is_on_hold_order",
        "is_buyer_request_cancel",
        "cancellation_initiator",
        "commerce_platform",
        "warehouse_id",
        "payment_method_name",
        "seller_note",
        "shipping_provider",
        "tracking_number",
        "split_or_combine_tag",
        "fast_delivery_program",
        "paid_time",
    ] {
        if let Some(text) = flat(v.get(key)) {
            extras.insert(key.to_string(), text);
        }
    }
    if !cancelled_units.is_empty() {
        extras.insert("cancelled_line_item_ids".into(), cancelled_units.join(","));
    }

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "tiktok".into(),
            external_id: id.clone(),
            external_number: Some(id.clone()),
            status,
            currency: cur.to_string(),
            customer,
            shipping_address,
            billing_address: None,
            lines,
            totals,
            priority: super::shopify::priority_of(shipping_method.as_deref()),
            shipping_method,
            ship_by: time("rts_sla_time")?.or(time("tts_sla_time")?),
            deliver_by: time("delivery_sla_time")?,
            fulfilled_by_channel: opt_str(&v, "fulfillment_type") == Some("FULFILLMENT_BY_TIKTOK"),
            created_at,
            updated_at,
            tags: Vec::new(),
            note: opt_str(&v, "buyer_message").map(String::from),
            gift_message: None,
            extras,
        },
        listing_ids,
        cancellation,
        test: false,
    })
}

/// Units of one SKU at one price.
struct Group {
    key: (String, String, String),
    ids: Vec<String>,
    quantity: i64,
    original: Decimal,
    discount: Decimal,
    tax: Decimal,
    sku: String,
    name: String,
    listing_ids: Vec<String>,
    properties: BTreeMap<String, String>,
}

/// Country, state and city from `district_info`: by level name where the
/// name says it, else by level (L0 country, L1 state, L3 city).
struct District<'a> {
    country: Option<&'a str>,
    state: Option<&'a str>,
    city: Option<&'a str>,
}

impl<'a> District<'a> {
    fn of(address: &'a Value) -> District<'a> {
        let levels: Vec<(&str, &str, &str)> = address
            .get("district_info")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(|e| {
                        Some((
                            opt_str(e, "address_level").unwrap_or_default(),
                            opt_str(e, "address_level_name").unwrap_or_default(),
                            opt_str(e, "address_name")?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let find = |names: &[&str], level: &str| {
            levels
                .iter()
                .find(|(_, n, _)| names.iter().any(|x| n.eq_ignore_ascii_case(x)))
                .or_else(|| {
                    levels
                        .iter()
                        .find(|(l, _, _)| l.eq_ignore_ascii_case(level))
                })
                .map(|(_, _, name)| *name)
        };
        District {
            country: find(&["country"], "L0"),
            state: find(&["state", "province"], "L1"),
            city: find(&["city"], "L3"),
        }
    }
}

/// County of each example destination (`amazon::PLACES`), for
/// `district_info` level L2.
const COUNTIES: &[&str] = &["Travis", "Multnomah", "Franklin", "Suffolk", "Denver"];

/// The TikTok `sku_id` and `product_id` the examples list SKU number `k`
/// under.
pub fn example_ids(k: u64) -> (String, String) {
    (
        format!("17293847{:010}", 5_000_000_000 + k),
        format!("17293846{:010}", 5_000_000_000 + k),
    )
}

/// The `n`-th example order as one `data.orders[]` entry of Get Order
/// Detail (202309): awaiting shipment, seller-fulfilled, US, USD, one
/// `line_items` entry per unit.
pub fn example(n: u64) -> Value {
    let id = format!("{}", 576_461_413_038_785_752u64 + n * 1_031);
    let p = (n % PLACES.len() as u64) as usize;
    let (city, state, _, zip) = PLACES[p];
    let county = COUNTIES.get(p).copied().unwrap_or("Travis");
    let created = 1_763_000_000 + n * 60;
    let n_lines = 1 + (n % 3) as usize;
    let express = n % 7 == 3;
    let shipping = if express {
        Decimal::new(999, 2)
    } else {
        Decimal::ZERO
    };
    let (mut original_total, mut seller_total, mut sub_total, mut tax_total) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let mut units = Vec::new();
    for l in 0..n_lines {
        let (sku, title, price, k) = SKUS[(n as usize + l * 2) % SKUS.len()];
        let (sku_id, product_id) = example_ids(k);
        let original = Decimal::from_str_exact(price).unwrap_or_default();
        // Every 4th order's first line is on a 0.50-per-unit seller discount.
        let seller_discount = if n % 4 == 1 && l == 0 {
            Decimal::new(50, 2)
        } else {
            Decimal::ZERO
        };
        let sale = original - seller_discount;
        let tax = example_tax(sale);
        for u in 0..1 + (n + l as u64) % 3 {
            original_total += original;
            seller_total += seller_discount;
            sub_total += sale;
            tax_total += tax;
            units.push(json!({
                "id": format!("{}", 577_086_512_123_755_123u64 + n * 100 + l as u64 * 10 + u),
                "sku_id": sku_id,
                "seller_sku": sku,
                "product_id": product_id,
                "product_name": title,
                "sku_name": "Default",
                "sku_image": format!("https://p16-oec-va.ibyteimg.com/tos-maliva-i-o3syd03w52-us/{sku_id}~tplv-o3syd03w52-origin-jpeg.jpeg"),
                "sku_type": "NORMAL",
                "original_price": format!("{original:.2}"),
                "sale_price": format!("{sale:.2}"),
                "seller_discount": format!("{seller_discount:.2}"),
                "platform_discount": "0",
                "currency": "USD",
                "display_status": "AWAITING_SHIPMENT",
                "is_gift": false,
                "gift_retail_price": "0",
                "is_dangerous_good": false,
                "item_tax": [{"tax_type": "SALES_TAX", "tax_amount": format!("{tax:.2}"), "tax_rate": "0.0825"}],
                "retail_delivery_fee": "0",
                "package_status": "TO_FULFILL",
                "cancel_user": "",
                "cancel_reason": "",
                "tracking_number": "",
                "shipping_provider_name": "",
                "rts_time": 0
            }));
        }
    }
    let total = sub_total + shipping + tax_total;
    json!({
        "id": id,
        "status": "AWAITING_SHIPMENT",
        "order_type": "NORMAL",
        "commerce_platform": "TIKTOK_SHOP",
        "create_time": created,
        "paid_time": created + 20,
        "update_time": created + 95,
        "rts_sla_time": created + 2 * 86_400,
        "tts_sla_time": created + 3 * 86_400,
        "delivery_sla_time": created + 7 * 86_400,
        "cancel_order_sla_time": created + 3 * 86_400,
        "collection_due_time": created + 4 * 86_400,
        "delivery_due_time": created + 14 * 86_400,
        "user_id": format!("{}", 7_021_436_810_468_230_477u64 + n),
        "buyer_email": format!("v2hs6ng7wh2lhx{n:04}@scs2.tiktok.com"),
        "buyer_message": if n % 6 == 2 { "Please pack carefully" } else { "" },
        "seller_note": "",
        "cancel_reason": "",
        "cancellation_initiator": "",
        "cpf": "",
        "delivery_option_id": if express { "7091146663229654786" } else { "7091146663229654785" },
        "delivery_option_name": if express { "Express shipping" } else { "Standard shipping" },
        "delivery_type": "HOME_DELIVERY",
        "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "shipping_type": "TIKTOK",
        "shipping_provider": "",
        "shipping_provider_id": "",
        "tracking_number": "",
        "warehouse_id": "7000714532876273420",
        "split_or_combine_tag": "",
        "has_updated_recipient_address": false,
        "is_cod": false,
        "is_buyer_request_cancel": false,
        "is_on_hold_order": false,
        "is_replacement_order": false,
        "is_sample_order": false,
        "need_upload_invoice": "NO_NEED",
        "payment_method_name": "Credit/debit card",
        "packages": [],
        "payment": {
            "currency": "USD",
            "original_total_product_price": format!("{original_total:.2}"),
            "seller_discount": format!("{seller_total:.2}"),
            "platform_discount": "0",
            "sub_total": format!("{sub_total:.2}"),
            "original_shipping_fee": format!("{shipping:.2}"),
            "shipping_fee_seller_discount": "0",
            "shipping_fee_platform_discount": "0",
            "shipping_fee_cofunded_discount": "0",
            "shipping_fee": format!("{shipping:.2}"),
            "product_tax": format!("{tax_total:.2}"),
            "shipping_fee_tax": "0",
            "tax": format!("{tax_total:.2}"),
            "retail_delivery_fee": "0",
            "buyer_service_fee": "0",
            "handling_fee": "0",
            "total_amount": format!("{total:.2}")
        },
        "recipient_address": {
            "name": format!("Sam Buyer{n}"),
            "first_name": "Sam",
            "last_name": format!("Buyer{n}"),
            "phone_number": "(+1)555***0100",
            "address_line1": format!("{} Main St", 100 + n % 900),
            "address_line2": if n.is_multiple_of(4) { "Apt 4" } else { "" },
            "address_line3": "",
            "address_line4": "",
            "address_detail": if n.is_multiple_of(4) { "Apt 4" } else { "" },
            "postal_code": zip,
            "region_code": "US",
            "full_address": format!("{} Main St, {city}, {state}, {zip}, United States", 100 + n % 900),
            "district_info": [
                {"address_level": "L0", "address_level_name": "Country", "address_name": "United States"},
                {"address_level": "L1", "address_level_name": "State", "address_name": state},
                {"address_level": "L2", "address_level_name": "County", "address_name": county},
                {"address_level": "L3", "address_level_name": "City", "address_name": city}
            ],
            "delivery_preferences": {"drop_off_location": ""}
        },
        "line_items": units
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::amazon::tests::{
        dec, mutate_bytes, odd_value, raw_bytes, replace_nth, set, JSONISH,
    };
    use crate::normalize::testing::catalog;
    use crate::normalize::{normalize, Normalized};
    use conveyor_schemas::records::Priority;
    use proptest::prelude::*;

    fn raw(v: &Value) -> RawOrder {
        let mut r = raw_bytes("tiktok", serde_json::to_vec(v).unwrap());
        r.source = conveyor_schemas::records::RawSource::Webhook;
        r
    }

    fn cat() -> crate::catalog::Catalog {
        catalog(&[
            ("MTG-DMU-BOOSTER", &[]),
            ("PKM-SV1-ETB", &[]),
            ("SLEEVE-DS-100", &[]),
            ("DICE-CHX-7", &[]),
            ("BINDER-9P", &[]),
            ("CROCHET-TOP-RED", &[("tiktok", "2729382476852921560")]),
            ("CROCHET-TOP-BLUE", &[("tiktok", "1729582718312380999")]),
        ])
    }

    fn ok(v: &Value) -> Normalized {
        match normalize(&raw(v), &cat()) {
            Ok(n) => n,
            Err(e) => panic!("rejected: {e}\n{v:#}"),
        }
    }

    fn reject(v: &Value) -> String {
        normalize(&raw(v), &cat()).unwrap_err().0
    }

    /// One unit in the shape of the documented example response.
    fn unit(
        id: &str,
        sku_id: &str,
        seller_sku: &str,
        sale: &str,
        original: &str,
        discount: &str,
    ) -> Value {
        json!({
            "cancel_reason": "", "cancel_user": "", "currency": "USD", "display_status": "TO_SHIP",
            "id": id, "is_gift": false,
            "item_tax": [{"tax_amount": "0.80", "tax_rate": "0.08", "tax_type": "SALES_TAX"}],
            "original_price": original, "package_id": "1153132168123859123", "package_status": "TO_FULFILL",
            "platform_discount": "0", "product_id": "1729582718312380123",
            "product_name": "Women's Winter Crochet Clothes", "retail_delivery_fee": "0", "rts_time": 0,
            "sale_price": sale, "seller_discount": discount, "seller_sku": seller_sku,
            "shipping_provider_id": "6617675021119438849", "shipping_provider_name": "TT Virtual express",
            "sku_id": sku_id, "sku_image": "https://p16-oec-va.ibyteimg.com/tos-maliva-i-o3syd03w52-us/46123e87d14f40b69b839",
            "sku_name": "Red, M", "sku_type": "NORMAL", "tracking_number": ""
        })
    }

    /// An order in the shape of the Get Order Detail (202309) example
    /// response: field names and value formats as documented, US values.
    fn docs_order() -> Value {
        json!({
            "buyer_email": "v2hs6ng7wh2lhxmfisxgdjy7gg5f0b@scs2.tiktok.com",
            "buyer_message": "Please ship asap!",
            "cancel_order_sla_time": 1_619_611_761,
            "cancel_reason": "",
            "cancellation_initiator": "",
            "collection_due_time": 1_619_611_761,
            "commerce_platform": "TIKTOK_SHOP",
            "create_time": 1_619_611_561,
            "delivery_option_id": "7091146663229654785",
            "delivery_option_name": "Standard shipping",
            "delivery_sla_time": 1_620_216_561,
            "delivery_type": "HOME_DELIVERY",
            "fulfillment_type": "FULFILLMENT_BY_SELLER",
            "has_updated_recipient_address": false,
            "id": "576461413038785752",
            "is_buyer_request_cancel": false,
            "is_cod": false,
            "is_on_hold_order": false,
            "is_replacement_order": false,
            "is_sample_order": false,
            "line_items": [
                unit("577086512123755123", "2729382476852921560", "red_crochet_m", "9.00", "10.00", "1.00"),
                unit("577086512123755124", "2729382476852921560", "red_crochet_m", "9.00", "10.00", "1.00"),
                unit("577086512123755125", "1729582718312380999", "", "10.00", "10.00", "0")
            ],
            "order_type": "NORMAL",
            "packages": [{"id": "1153132168123859123"}],
            "paid_time": 1_619_611_563,
            "payment": {
                "currency": "USD", "original_shipping_fee": "5.99", "original_total_product_price": "30.00",
                "platform_discount": "0", "product_tax": "2.40", "retail_delivery_fee": "0",
                "seller_discount": "2.00", "shipping_fee": "5.99", "shipping_fee_platform_discount": "0",
                "shipping_fee_seller_discount": "0", "shipping_fee_tax": "0", "sub_total": "28.00",
                "tax": "2.40", "total_amount": "36.39"
            },
            "payment_method_name": "CCDC",
            "recipient_address": {
                "address_detail": "Suite 100",
                "address_line1": "5800 Bristol Pkwy",
                "address_line2": "Suite 100",
                "address_line3": "",
                "address_line4": "",
                "delivery_preferences": {"drop_off_location": "Front Door"},
                "district_info": [
                    {"address_level": "L0", "address_level_name": "Country", "address_name": "United States"},
                    {"address_level": "L1", "address_level_name": "State", "address_name": "California"},
                    {"address_level": "L2", "address_level_name": "County", "address_name": "Los Angeles"},
                    {"address_level": "L3", "address_level_name": "City", "address_name": "Culver City"}
                ],
                "first_name": "Jane",
                "full_address": "5800 Bristol Pkwy Suite 100 Culver City, CA 90230 United States",
                "last_name": "Smith",
                "name": "Jane Smith",
                "phone_number": "(+1)213-***-1234",
                "postal_code": "90230",
                "region_code": "US"
            },
            "rts_sla_time": 1_619_784_361,
            "rts_time": 0,
            "seller_note": "",
            "shipping_provider": "TT Virtual express",
            "shipping_provider_id": "6617675021119438849",
            "shipping_type": "TIKTOK",
            "split_or_combine_tag": "",
            "status": "AWAITING_SHIPMENT",
            "tracking_number": "",
            "tts_sla_time": 1_619_870_761,
            "update_time": 1_619_611_761,
            "user_id": "7021436810468230477",
            "warehouse_id": "7000714532876273420"
        })
    }

    #[test]
    fn the_documented_order_normalizes_and_units_group() {
        let n = ok(&docs_order());
        let o = &n.order;
        assert_eq!(o.order_id, "tiktok:576461413038785752");
        assert_eq!(o.status, OrderStatus::Open);
        assert_eq!(o.updated_at, 1_619_611_761_000);
        assert_eq!(o.created_at, 1_619_611_561_000);
        assert_eq!(o.ship_by, Some(1_619_784_361_000));
        assert_eq!(o.deliver_by, Some(1_620_216_561_000));
        assert_eq!(
            o.lines.len(),
            2,
            "two units of one SKU and price are one line"
        );
        let l = &o.lines[0];
        assert_eq!(l.quantity, 2);
        assert_eq!(l.line_id, "577086512123755123");
        assert_eq!(
            l.properties.get("line_item_ids").map(String::as_str),
            Some("577086512123755123,577086512123755124")
        );
        assert_eq!(
            l.sku, "CROCHET-TOP-RED",
            "seller_sku unknown: resolved by sku_id"
        );
        assert_eq!(l.unit_price.amount, dec("10.00"));
        assert_eq!(l.discount.amount, dec("2.00"));
        assert_eq!(l.tax.amount, dec("1.60"));
        assert_eq!(l.total.amount, dec("19.60"));
        assert_eq!(
            l.properties.get("sku_name").map(String::as_str),
            Some("Red, M")
        );
        let l = &o.lines[1];
        assert_eq!((l.quantity, l.sku.as_str()), (1, "CROCHET-TOP-BLUE"));
        assert_eq!(n.order.totals.subtotal.amount, dec("28.00"));
        assert_eq!(n.order.totals.discount.amount, dec("2.00"));
        assert_eq!(n.order.totals.shipping.amount, dec("5.99"));
        assert_eq!(n.order.totals.tax.amount, dec("2.40"));
        assert_eq!(n.order.totals.total.amount, dec("36.39"));
        let line_sum: Decimal = o.lines.iter().map(|l| l.total.amount).sum();
        assert_eq!(line_sum + o.totals.shipping.amount, o.totals.total.amount);
        let a = &o.shipping_address;
        assert_eq!(a.name, "Jane Smith");
        assert_eq!(
            (a.line1.as_str(), a.line2.as_deref()),
            ("5800 Bristol Pkwy", Some("Suite 100"))
        );
        assert_eq!(a.city, "Culver City");
        assert_eq!(a.region.as_deref(), Some("CA"));
        assert_eq!(
            (a.postal_code.as_str(), a.country.as_str()),
            ("90230", "US")
        );
        assert_eq!(
            o.customer.customer_id.as_deref(),
            Some("7021436810468230477")
        );
        assert_eq!(o.note.as_deref(), Some("Please ship asap!"));
        assert_eq!(o.priority, Priority::Standard);
        assert_eq!(o.shipping_method.as_deref(), Some("Standard shipping"));
        assert_eq!(
            o.extras.get("is_sample_order").map(String::as_str),
            Some("false")
        );
        assert!(!o.fulfilled_by_channel && n.cancellation.is_none());
        assert_eq!(n.version, o.updated_at);
    }

    #[test]
    fn different_prices_are_different_lines_and_cancelled_units_are_dropped() {
        let mut v = docs_order();
        set(&mut v, &["line_items", "1", "sale_price"], json!("8.00"));
        set(
            &mut v,
            &["line_items", "1", "seller_discount"],
            json!("2.00"),
        );
        assert_eq!(ok(&v).order.lines.len(), 3);
        let mut v = docs_order();
        set(
            &mut v,
            &["line_items", "1", "display_status"],
            json!("CANCELLED"),
        );
        let o = ok(&v).order;
        assert_eq!(o.lines[0].quantity, 1);
        assert_eq!(
            o.extras.get("cancelled_line_item_ids").map(String::as_str),
            Some("577086512123755124")
        );
    }

    #[test]
    fn cancelled_orders_give_a_cancellation() {
        let mut v = docs_order();
        v["status"] = json!("CANCELLED");
        v["cancel_reason"] = json!("Discount not as expected");
        v["cancellation_initiator"] = json!("BUYER");
        v["cancel_time"] = json!(1_619_621_761);
        v["recipient_address"] = Value::Null;
        for i in 0..3 {
            set(
                &mut v,
                &["line_items", &i.to_string(), "display_status"],
                json!("CANCELLED"),
            );
        }
        let n = ok(&v);
        assert_eq!(n.order.status, OrderStatus::Cancelled);
        let c = n.cancellation.unwrap();
        assert_eq!(c.reason, "Discount not as expected");
        assert_eq!(c.cancelled_at, 1_619_621_761_000);
        assert!(c.restock);
        assert_eq!(n.order.lines.len(), 2, "a cancelled order keeps its lines");
        assert_eq!(
            n.order
                .extras
                .get("cancellation_initiator")
                .map(String::as_str),
            Some("BUYER")
        );
    }

    #[test]
    fn fulfilled_by_tiktok_needs_no_address_and_optional_fields_may_be_absent() {
        let v = json!({
            "id": 42, "update_time": "1700000000", "fulfillment_type": "FULFILLMENT_BY_TIKTOK",
            "status": "IN_TRANSIT", "payment": {"currency": "usd", "total_amount": "5"},
            "line_items": [{"id": "1", "sku_id": "999", "sale_price": "5", "unknown": [1]}],
            "recipient_address": null, "create_time": null, "rts_sla_time": 0, "shiny_new_field": {}
        });
        let n = ok(&v);
        let o = &n.order;
        assert!(o.fulfilled_by_channel);
        assert_eq!(o.status, OrderStatus::Fulfilled);
        assert_eq!(o.created_at, 1_700_000_000_000);
        assert_eq!(o.ship_by, None);
        assert_eq!(o.currency, "USD");
        assert_eq!(o.lines[0].unit_price.amount, dec("5"));
        assert_eq!(o.lines[0].sku, "");
        assert_eq!(o.customer.name, "");
        // No payment at all: the currency comes from the units.
        let v = json!({"id": "1", "update_time": 1_700_000_000,
                       "line_items": [{"sale_price": "1.00", "currency": "USD", "seller_sku": "DICE-CHX-7"}],
                       "recipient_address": {"first_name": "A", "last_name": "B", "address_line1": "1 Main",
                           "postal_code": "78701", "region_code": "US",
                           "district_info": [{"address_level": "L1", "address_name": "TX"},
                                             {"address_level": "L3", "address_name": "Austin"}]}});
        let o = ok(&v).order;
        assert_eq!(o.shipping_address.name, "A B");
        assert_eq!(o.shipping_address.city, "Austin");
        assert_eq!(o.totals.total.amount, Decimal::ZERO);
        let mut v = v;
        v["line_items"][0]["currency"] = Value::Null;
        assert!(reject(&v).contains("payment.currency is missing"));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let with = |path: &[&str], value: Value| {
            let mut v = docs_order();
            set(&mut v, path, value);
            reject(&v)
        };
        assert!(with(&["update_time"], Value::Null).contains("`update_time` is missing"));
        assert!(with(&["update_time"], json!(1_619_611_761_000u64)).contains("plausible Unix time"));
        assert!(with(&["update_time"], json!("noon")).contains("update_time"));
        assert!(with(&["id"], json!([])).contains("`id` is missing"));
        assert!(with(&["payment", "currency"], json!("dollars")).contains("payment.currency"));
        assert!(
            with(&["payment", "total_amount"], json!({"v": 1})).contains("payment.total_amount")
        );
        assert!(with(&["line_items"], json!("x")).contains("`line_items` is not a list"));
        assert!(with(&["line_items", "0"], json!(3)).contains("line_items[1] is not"));
        assert!(with(&["line_items", "0", "sale_price"], json!("9,00"))
            .contains("line_items[1].sale_price"));
        assert!(with(&["line_items", "0", "currency"], json!("EUR"))
            .contains("EUR but the order is in USD"));
        assert!(with(&["line_items", "0", "item_tax"], json!(1)).contains("item_tax"));
        assert!(with(&["rts_sla_time"], json!(-5)).contains("rts_sla_time"));
        assert!(with(&["recipient_address", "postal_code"], json!("ABCDE")).contains("postal code"));
        let mut v = docs_order();
        set(&mut v, &["line_items", "2", "sku_id"], json!("1"));
        assert!(reject(&v).contains("listing id 1/1729582718312380123"));
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bytes in [
            &b""[..], b"null", b"[]", b"{}", b"{\"id\":{}}", b"\"x\"", b"\xff\xfe",
            b"{\"id\":\"1\",\"update_time\":1700000000,\"payment\":{\"currency\":\"USD\"},\"line_items\":[[]]}",
            b"{\"data\":{\"orders\":[]}}",
        ] {
            let e = normalize(&raw_bytes("tiktok", bytes.to_vec()), &cat()).unwrap_err();
            assert!(!e.0.is_empty());
        }
    }

    #[test]
    fn examples_normalize() {
        let c = cat();
        for i in 0..50 {
            let v = example(i);
            let n = normalize(&raw(&v), &c).unwrap_or_else(|e| panic!("example({i}): {e}"));
            let o = &n.order;
            assert!((1..=3).contains(&o.lines.len()), "example({i})");
            let units: i32 = o.lines.iter().map(|l| l.quantity).sum();
            assert_eq!(
                units as usize,
                v["line_items"].as_array().map_or(0, Vec::len)
            );
            let sum: Decimal = o.lines.iter().map(|l| l.total.amount).sum();
            assert_eq!(
                sum + o.totals.shipping.amount,
                o.totals.total.amount,
                "example({i})"
            );
            assert!(o.lines.iter().all(|l| SKUS.iter().any(|s| s.0 == l.sku)));
            assert!(o.shipping_address.region.is_some());
            assert_eq!(example(i), v, "deterministic");
        }
        assert_eq!(ok(&example(3)).order.priority, Priority::Expedited);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn mutated_examples_never_panic(
            n in 0u64..50,
            node in 0usize..600,
            with in odd_value(),
            edits in proptest::collection::vec((any::<usize>(), proptest::sample::select(JSONISH), any::<u8>()), 0..4),
        ) {
            let mut v = example(n);
            let mut k = node;
            replace_nth(&mut v, &mut k, &with);
            let c = cat();
            let _ = normalize(&raw(&v), &c);
            let bytes = mutate_bytes(serde_json::to_vec(&v).unwrap(), &edits);
            let _ = normalize(&raw_bytes("tiktok", bytes), &c);
        }
    }
}

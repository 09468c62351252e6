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

use std::borrow::Cow;

use conveyor_schemas::records::{
    Cancellation, Customer, Order, OrderLine, OrderStatus, RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::amazon::{example_tax, PLACES, SKUS};
use super::fields::{self, Scalar};
use super::typed::{
    checked, flag, flat, money, per_unit, s, t, to_money, within, Expecting, Obj, Text,
};
use super::{address, Draft, Rejection};

/// The fields of a Get Order Detail `data.orders[]` entry normalize reads;
/// serde skips the rest without building anything.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TikTokOrder<'a> {
    /// The whole response (`{"data": {"orders": [...]}}`) or its `data`
    /// (`{"orders": [...]}`) stored by mistake: the one order in it.
    #[serde(borrow)]
    data: Option<OrdersData<'a>>,
    #[serde(borrow)]
    orders: Option<Vec<Obj<TikTokOrder<'a>>>>,

    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    update_time: Scalar<'a>,
    #[serde(borrow)]
    create_time: Scalar<'a>,
    #[serde(borrow)]
    cancel_time: Scalar<'a>,
    #[serde(borrow)]
    rts_sla_time: Scalar<'a>,
    #[serde(borrow)]
    tts_sla_time: Scalar<'a>,
    #[serde(borrow)]
    delivery_sla_time: Scalar<'a>,
    #[serde(borrow)]
    payment: Option<Payment<'a>>,
    #[serde(borrow)]
    line_items: Option<Vec<Obj<Unit<'a>>>>,
    #[serde(borrow)]
    recipient_address: Option<Recipient<'a>>,
    #[serde(borrow)]
    user_id: Scalar<'a>,
    #[serde(borrow)]
    buyer_email: Option<Text<'a>>,
    #[serde(borrow)]
    buyer_message: Option<Text<'a>>,
    #[serde(borrow)]
    cancel_reason: Option<Text<'a>>,
    #[serde(borrow)]
    delivery_option_name: Option<Text<'a>>,
    // Read as text (`status`, `fulfillment_type`) and kept in `extras` as
    // sent.
    #[serde(borrow)]
    status: Scalar<'a>,
    #[serde(borrow)]
    order_type: Scalar<'a>,
    #[serde(borrow)]
    fulfillment_type: Scalar<'a>,
    #[serde(borrow)]
    shipping_type: Scalar<'a>,
    #[serde(borrow)]
    delivery_type: Scalar<'a>,
    #[serde(borrow)]
    delivery_option_id: Scalar<'a>,
    #[serde(borrow)]
    is_cod: Scalar<'a>,
    #[serde(borrow)]
    is_sample_order: Scalar<'a>,
    #[serde(borrow)]
    is_replacement_order: Scalar<'a>,
    #[serde(borrow)]
    replaced_order_id: Scalar<'a>,
    #[serde(borrow)]
    is_exchange_order: Scalar<'a>,
    #[serde(borrow)]
    exchange_source_order_id: Scalar<'a>,
    #[serde(borrow)]
    is_on_hold_order: Scalar<'a>,
    #[serde(borrow)]
    is_buyer_request_cancel: Scalar<'a>,
    #[serde(borrow)]
    cancellation_initiator: Scalar<'a>,
    #[serde(borrow)]
    commerce_platform: Scalar<'a>,
    #[serde(borrow)]
    warehouse_id: Scalar<'a>,
    #[serde(borrow)]
    payment_method_name: Scalar<'a>,
    #[serde(borrow)]
    seller_note: Scalar<'a>,
    #[serde(borrow)]
    shipping_provider: Scalar<'a>,
    #[serde(borrow)]
    tracking_number: Scalar<'a>,
    #[serde(borrow)]
    split_or_combine_tag: Scalar<'a>,
    #[serde(borrow)]
    fast_delivery_program: Scalar<'a>,
    #[serde(borrow)]
    paid_time: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "an object with `orders`")]
struct OrdersData<'a> {
    #[serde(borrow)]
    orders: Option<Vec<Obj<TikTokOrder<'a>>>>,
}

impl Expecting for TikTokOrder<'_> {
    const WHAT: &'static str = "an order object";
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a payment object")]
struct Payment<'a> {
    #[serde(borrow)]
    currency: Option<Text<'a>>,
    #[serde(borrow)]
    sub_total: Scalar<'a>,
    #[serde(borrow)]
    seller_discount: Scalar<'a>,
    #[serde(borrow)]
    platform_discount: Scalar<'a>,
    #[serde(borrow)]
    shipping_fee: Scalar<'a>,
    #[serde(borrow)]
    tax: Scalar<'a>,
    #[serde(borrow)]
    product_tax: Scalar<'a>,
    #[serde(borrow)]
    shipping_fee_tax: Scalar<'a>,
    #[serde(borrow)]
    total_amount: Scalar<'a>,
}

/// One `line_items` entry: one unit.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Unit<'a> {
    #[serde(borrow)]
    id: Scalar<'a>,
    #[serde(borrow)]
    currency: Option<Text<'a>>,
    #[serde(borrow)]
    display_status: Option<Text<'a>>,
    #[serde(borrow)]
    sale_price: Scalar<'a>,
    #[serde(borrow)]
    original_price: Scalar<'a>,
    #[serde(borrow)]
    seller_discount: Scalar<'a>,
    #[serde(borrow)]
    platform_discount: Scalar<'a>,
    /// Null entries are skipped.
    #[serde(borrow)]
    item_tax: Option<Vec<Option<Obj<ItemTax<'a>>>>>,
    #[serde(borrow)]
    sku_id: Scalar<'a>,
    #[serde(borrow)]
    seller_sku: Option<Text<'a>>,
    #[serde(borrow)]
    product_id: Scalar<'a>,
    #[serde(borrow)]
    product_name: Option<Text<'a>>,
    #[serde(borrow)]
    sku_name: Scalar<'a>,
    #[serde(borrow)]
    sku_type: Scalar<'a>,
    #[serde(borrow)]
    package_id: Scalar<'a>,
    #[serde(borrow)]
    is_gift: Scalar<'a>,
}

impl Expecting for Unit<'_> {
    const WHAT: &'static str = "a line item object";
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ItemTax<'a> {
    #[serde(borrow)]
    tax_amount: Scalar<'a>,
}

impl Expecting for ItemTax<'_> {
    const WHAT: &'static str = "a tax object";
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a recipient_address object")]
struct Recipient<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    first_name: Option<Text<'a>>,
    #[serde(borrow)]
    last_name: Option<Text<'a>>,
    #[serde(borrow)]
    phone_number: Option<Text<'a>>,
    #[serde(borrow)]
    address_line1: Option<Text<'a>>,
    #[serde(borrow)]
    address_line2: Option<Text<'a>>,
    #[serde(borrow)]
    address_line3: Option<Text<'a>>,
    #[serde(borrow)]
    address_line4: Option<Text<'a>>,
    #[serde(borrow)]
    address_detail: Option<Text<'a>>,
    #[serde(borrow)]
    post_town: Option<Text<'a>>,
    #[serde(borrow)]
    postal_code: Option<Text<'a>>,
    #[serde(borrow)]
    region_code: Option<Text<'a>>,
    #[serde(borrow)]
    district_info: Option<Vec<DistrictLevel<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a district_info entry object")]
struct DistrictLevel<'a> {
    #[serde(borrow)]
    address_level: Option<Text<'a>>,
    #[serde(borrow)]
    address_level_name: Option<Text<'a>>,
    #[serde(borrow)]
    address_name: Option<Text<'a>>,
}

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let Obj(mut o): Obj<TikTokOrder> = fields::typed("tiktok", &raw.payload)?;
    // The whole response or its `data` stored by mistake: take the order.
    let wrapped = match o.data.take().and_then(|d| d.orders) {
        Some(orders) => Some(orders),
        None => o.orders.take(),
    };
    if let Some(mut orders) = wrapped {
        if orders.len() == 1 {
            if let Some(Obj(inner)) = orders.pop() {
                o = inner;
            }
        }
    }
    let id =
        o.id.text()
            .ok_or_else(|| Rejection::new("tiktok order: `id` is missing"))?;
    map(&o, id).map_err(|e| Rejection(format!("tiktok order {id}: {}", e.0)))
}

/// A Unix time in seconds; null, absent and 0 (unset) are None.
fn time(field: &str, v: &Scalar<'_>) -> Result<Option<i64>, Rejection> {
    if v.is_null() {
        return Ok(None);
    }
    match v.int(field)? {
        0 => Ok(None), // unset times are sent as 0
        secs => fields::unix_seconds(field, secs).map(Some),
    }
}

/// The order; rejections name fields relative to the order (the caller
/// adds which order).
fn map(o: &TikTokOrder<'_>, id: &str) -> Result<Draft, Rejection> {
    if o.update_time.is_null() {
        return Err(Rejection::new("`update_time` is missing"));
    }
    let updated_at = fields::unix_seconds("update_time", o.update_time.int("update_time")?)?;
    let created_at = time("create_time", &o.create_time)?.unwrap_or(updated_at);

    let no_payment = Payment::default();
    let payment = o.payment.as_ref().unwrap_or(&no_payment);
    let units: &[Obj<Unit<'_>>] = o.line_items.as_deref().unwrap_or_default();
    let cur = match t(&payment.currency) {
        Some(c) => fields::currency("payment.currency", c)?,
        None => match units.iter().find_map(|u| t(&u.0.currency)) {
            Some(c) => fields::currency("line_items.currency", c)?,
            None => return Err(Rejection::new("payment.currency is missing")),
        },
    };

    let tiktok_status = s(&o.status).unwrap_or_default();
    let cancelled = tiktok_status.eq_ignore_ascii_case("CANCELLED");
    let mut groups: Vec<Group> = Vec::new();
    let mut cancelled_units: Vec<Cow<'_, str>> = Vec::new();
    for (i, Obj(item)) in units.iter().enumerate() {
        let n = i + 1;
        let at = |e: Rejection| within(format_args!("line_items[{n}]"), e);
        let unit_id = match item.id.text() {
            Some(x) => Cow::Borrowed(x),
            None => Cow::Owned(format!("{id}-{n}")),
        };
        if let Some(c) = t(&item.currency) {
            if c != cur.as_str() {
                let c = fields::currency("currency", c).map_err(at)?;
                if c != cur {
                    return Err(at(Rejection(format!(
                        "currency is {c} but the order is in {cur}"
                    ))));
                }
            }
        }
        if !cancelled
            && t(&item.display_status).is_some_and(|x| x.eq_ignore_ascii_case("CANCELLED"))
        {
            cancelled_units.push(unit_id);
            continue;
        }
        let sale = money("sale_price", &item.sale_price, cur).map_err(at)?;
        let seller_discount = money("seller_discount", &item.seller_discount, cur).map_err(at)?;
        let platform_discount =
            money("platform_discount", &item.platform_discount, cur).map_err(at)?;
        let discount = checked(
            "seller_discount",
            seller_discount.abs().checked_add(platform_discount.abs()),
        )
        .map_err(at)?;
        let original = if item.original_price.is_null() {
            checked("sale_price", sale.checked_add(discount)).map_err(at)?
        } else {
            money("original_price", &item.original_price, cur).map_err(at)?
        };
        let mut tax = Decimal::ZERO;
        for x in item.item_tax.iter().flatten().flatten() {
            let amount = money("item_tax.tax_amount", &x.0.tax_amount, cur).map_err(at)?;
            tax = checked("item_tax", tax.checked_add(amount)).map_err(at)?;
        }
        let sku_id = item.sku_id.text();
        let seller_sku = t(&item.seller_sku).unwrap_or_default();
        let key = (sku_id.unwrap_or_default(), seller_sku, sale);
        let group = match groups.iter().position(|g| g.key == key) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group {
                    key,
                    ids: Vec::new(),
                    quantity: 0,
                    original: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                    name: t(&item.product_name).unwrap_or_default(),
                    listing_ids: sku_id
                        .into_iter()
                        .chain(item.product_id.text())
                        .map(String::from)
                        .collect(),
                    properties: Vec::with_capacity(8),
                });
                let at = groups.len() - 1;
                &mut groups[at]
            }
        };
        group.ids.push(unit_id);
        group.quantity += 1;
        group.original =
            checked("original_price", group.original.checked_add(original)).map_err(at)?;
        group.discount =
            checked("seller_discount", group.discount.checked_add(discount)).map_err(at)?;
        group.tax = checked("item_tax", group.tax.checked_add(tax)).map_err(at)?;
        for (key, v) in [
            ("sku_name", &item.sku_name),
            ("product_id", &item.product_id),
            ("sku_id", &item.sku_id),
            ("sku_type", &item.sku_type),
            ("package_id", &item.package_id),
        ] {
            if !group.properties.iter().any(|(k, _)| k == key) {
                if let Some(text) = flat(v) {
                    group.properties.push((key.to_string(), text));
                }
            }
        }
        if flag(&item.is_gift) == Some(true)
            && !group.properties.iter().any(|(k, _)| k == "is_gift")
        {
            group.properties.push(("is_gift".into(), "true".into()));
        }
    }

    let mut lines = Vec::with_capacity(groups.len());
    let mut listing_ids = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        let name = g.name;
        let at = |e: Rejection| within(format_args!("line {} ({name})", i + 1), e);
        let quantity = i32::try_from(g.quantity)
            .map_err(|_| at(Rejection::new("quantity is out of range")))?;
        let (unit, rounded) = per_unit("original_price", g.original, quantity).map_err(at)?;
        let total = checked(
            "original_price",
            g.original
                .checked_sub(g.discount)
                .and_then(|x| x.checked_add(g.tax)),
        )
        .map_err(at)?;
        let mut properties = g.properties;
        properties.push(("line_item_ids".into(), g.ids.join(",")));
        if rounded {
            properties.push((
                "original_price_total".into(),
                g.original.normalize().to_string(),
            ));
        }
        listing_ids.push(g.listing_ids);
        lines.push(OrderLine {
            line_id: g.ids.first().map(|x| x.to_string()).unwrap_or_default(),
            sku: g.key.1.to_string(),
            name: name.to_string(),
            quantity,
            unit_price: to_money("original_price", unit, cur).map_err(at)?,
            discount: to_money("seller_discount", g.discount, cur).map_err(at)?,
            tax: to_money("item_tax", g.tax, cur).map_err(at)?,
            total: to_money("original_price", total, cur).map_err(at)?,
            requires_shipping: true,
            properties: properties.into_iter().collect(),
        });
    }

    let pay = |field: &'static str, v: &Scalar<'_>| money(field, v, cur);
    let tax = if payment.tax.is_null() {
        checked(
            "payment.tax",
            pay("payment.product_tax", &payment.product_tax)?
                .checked_add(pay("payment.shipping_fee_tax", &payment.shipping_fee_tax)?),
        )?
    } else {
        pay("payment.tax", &payment.tax)?
    };
    let discount = checked(
        "payment.seller_discount",
        pay("payment.seller_discount", &payment.seller_discount)?
            .abs()
            .checked_add(pay("payment.platform_discount", &payment.platform_discount)?.abs()),
    )?;
    let totals = Totals {
        subtotal: to_money(
            "payment.sub_total",
            pay("payment.sub_total", &payment.sub_total)?,
            cur,
        )?,
        discount: to_money("payment.seller_discount", discount, cur)?,
        shipping: to_money(
            "payment.shipping_fee",
            pay("payment.shipping_fee", &payment.shipping_fee)?,
            cur,
        )?,
        tax: to_money("payment.tax", tax, cur)?,
        total: to_money(
            "payment.total_amount",
            pay("payment.total_amount", &payment.total_amount)?,
            cur,
        )?,
    };

    let recipient = o.recipient_address.as_ref();
    let person = |a: &Recipient<'_>| -> Option<String> {
        t(&a.name).map(String::from).or_else(|| {
            let first = t(&a.first_name).unwrap_or_default();
            let last = t(&a.last_name).unwrap_or_default();
            let full = format!("{first} {last}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
    };
    let shipping_address = match recipient {
        Some(a) => {
            let district = District::of(a);
            let mut rest = String::new();
            for part in [&a.address_line2, &a.address_line3, &a.address_line4]
                .into_iter()
                .filter_map(t)
            {
                if !rest.is_empty() {
                    rest.push_str(", ");
                }
                rest.push_str(part);
            }
            address(
                person(a).as_deref(),
                None,
                t(&a.address_line1).or_else(|| t(&a.address_detail)),
                Some(rest.as_str()),
                district.city.or_else(|| t(&a.post_town)),
                district.state,
                t(&a.postal_code),
                t(&a.region_code).or(district.country),
                t(&a.phone_number),
            )
        }
        None => address(None, None, None, None, None, None, None, None, None),
    };
    let customer = Customer {
        customer_id: o.user_id.owned(),
        email: t(&o.buyer_email).map(String::from),
        name: recipient.and_then(person).unwrap_or_default(),
        phone: recipient.and_then(|a| t(&a.phone_number)).map(String::from),
    };

    let cancellation = if cancelled {
        Some(Cancellation {
            reason: t(&o.cancel_reason)
                .unwrap_or("cancelled on TikTok Shop")
                .to_string(),
            cancelled_at: time("cancel_time", &o.cancel_time)?.unwrap_or(updated_at),
            restock: true,
        })
    } else {
        None
    };
    let is = |names: &[&str]| names.iter().any(|x| tiktok_status.eq_ignore_ascii_case(x));
    let status = if is(&["CANCELLED"]) {
        OrderStatus::Cancelled
    } else if is(&["UNPAID"]) {
        OrderStatus::Pending
    } else if is(&["ON_HOLD"]) {
        OrderStatus::OnHold
    } else if is(&["PARTIALLY_SHIPPING"]) {
        OrderStatus::PartiallyFulfilled
    } else if is(&[
        "AWAITING_COLLECTION",
        "IN_TRANSIT",
        "DELIVERED",
        "COMPLETED",
    ]) {
        // Shipped by the seller (label arranged) or beyond.
        OrderStatus::Fulfilled
    } else {
        OrderStatus::Open
    };
    let shipping_method = t(&o.delivery_option_name).map(String::from);

    // Collected, then built in one go (no tree inserts).
    let mut extras: Vec<(String, String)> = Vec::with_capacity(32);
    for (key, v) in [
        ("status", &o.status),
        ("order_type", &o.order_type),
        ("fulfillment_type", &o.fulfillment_type),
        ("shipping_type", &o.shipping_type),
        ("delivery_type", &o.delivery_type),
        ("delivery_option_id", &o.delivery_option_id),
        ("is_cod", &o.is_cod),
        ("is_sample_order", &o.is_sample_order),
        ("is_replacement_order", &o.is_replacement_order),
        ("replaced_order_id", &o.replaced_order_id),
        ("is_exchange_order", &o.is_exchange_order),
        ("exchange_source_order_id", &o.exchange_source_order_id),
        ("is_on_hold_order", &o.is_on_hold_order),
        ("is_buyer_request_cancel", &o.is_buyer_request_cancel),
        ("cancellation_initiator", &o.cancellation_initiator),
        ("commerce_platform", &o.commerce_platform),
        ("warehouse_id", &o.warehouse_id),
        ("payment_method_name", &o.payment_method_name),
        ("seller_note", &o.seller_note),
        ("shipping_provider", &o.shipping_provider),
        ("tracking_number", &o.tracking_number),
        ("split_or_combine_tag", &o.split_or_combine_tag),
        ("fast_delivery_program", &o.fast_delivery_program),
        ("paid_time", &o.paid_time),
    ] {
        if let Some(text) = flat(v) {
            extras.push((key.to_string(), text));
        }
    }
    if !cancelled_units.is_empty() {
        extras.push(("cancelled_line_item_ids".into(), cancelled_units.join(",")));
    }
    let rts = time("rts_sla_time", &o.rts_sla_time)?;
    let tts = time("tts_sla_time", &o.tts_sla_time)?;

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "tiktok".into(),
            external_id: id.to_string(),
            external_number: Some(id.to_string()),
            status,
            currency: cur.as_str().to_string(),
            customer,
            shipping_address,
            billing_address: None,
            lines,
            totals,
            priority: super::shopify::priority_of(shipping_method.as_deref()),
            shipping_method,
            ship_by: rts.or(tts),
            deliver_by: time("delivery_sla_time", &o.delivery_sla_time)?,
            fulfilled_by_channel: s(&o.fulfillment_type) == Some("FULFILLMENT_BY_TIKTOK"),
            created_at,
            updated_at,
            tags: Vec::new(),
            note: t(&o.buyer_message).map(String::from),
            gift_message: None,
            extras: extras.into_iter().collect(),
        },
        listing_ids,
        cancellation,
        test: false,
    })
}

/// Units of one SKU at one price: `key` is (`sku_id`, `seller_sku`,
/// `sale_price`), borrowed from the payload.
struct Group<'u> {
    key: (&'u str, &'u str, Decimal),
    ids: Vec<Cow<'u, str>>,
    quantity: i64,
    original: Decimal,
    discount: Decimal,
    tax: Decimal,
    name: &'u str,
    listing_ids: Vec<String>,
    /// Each key once (the first unit's value).
    properties: Vec<(String, String)>,
}

/// Country, state and city from `district_info`: by level name where the
/// name says it, else by level (L0 country, L1 state, L3 city).
struct District<'a> {
    country: Option<&'a str>,
    state: Option<&'a str>,
    city: Option<&'a str>,
}

impl<'a> District<'a> {
    fn of(address: &'a Recipient<'_>) -> District<'a> {
        // (level, level name, name) of the levels that have a name.
        let levels = || {
            address.district_info.iter().flatten().filter_map(|e| {
                Some((
                    t(&e.address_level).unwrap_or_default(),
                    t(&e.address_level_name).unwrap_or_default(),
                    t(&e.address_name)?,
                ))
            })
        };
        let find = |names: &[&str], level: &str| {
            levels()
                .find(|(_, n, _)| names.iter().any(|x| n.eq_ignore_ascii_case(x)))
                .or_else(|| levels().find(|(l, _, _)| l.eq_ignore_ascii_case(level)))
                .map(|(_, _, name)| name)
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
        assert!(with(&["id"], json!([])).contains("id: invalid type: sequence"));
        assert!(with(&["id"], Value::Null).contains("`id` is missing"));
        assert!(with(&["payment", "currency"], json!("dollars")).contains("payment.currency"));
        assert!(
            with(&["payment", "total_amount"], json!({"v": 1})).contains("payment.total_amount")
        );
        assert!(with(&["line_items"], json!("x"))
            .contains("line_items: invalid type: string \"x\", expected a sequence"));
        assert!(with(&["line_items", "0"], json!(3))
            .contains("line_items[0]: invalid type: integer `3`, expected a line item object"));
        assert!(with(&["line_items", "0"], json!([]))
            .contains("line_items[0]: invalid type: sequence, expected a line item object"));
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
    fn a_stored_response_or_data_is_read_as_its_one_order() {
        let base = ok(&docs_order());
        assert_eq!(
            ok(&json!({"code": 0, "data": {"orders": [docs_order()]}})),
            base
        );
        assert_eq!(ok(&json!({"orders": [docs_order()]})), base);
        // Two orders: not one order object.
        assert!(
            reject(&json!({"orders": [docs_order(), docs_order()]})).contains("`id` is missing")
        );
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

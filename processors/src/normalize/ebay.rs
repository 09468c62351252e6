//! eBay: one `Order` of the Fulfillment API (`GET /sell/fulfillment/v1/order`,
//! `orders[]`; `getOrder` returns the same object). Versioned by
//! `lastModifiedDate`.
//!
//! What the API documents (sell_fulfillment_v1_oas3.json and its type
//! pages) and this mapper relies on:
//! - amounts are `Amount` objects `{value, currency}` with `value` a
//!   decimal string; discounts in `pricingSummary` (`priceDiscount`, named
//!   `priceDiscountSubtotal` in older specs, and `deliveryDiscount`) are
//!   negative numbers;
//! - `lineItemCost` is "the single unit price multiplied by the number of
//!   units": the unit price is `lineItemCost / quantity`, exact when it
//!   divides to 4 decimal places, else rounded half-even to 4 (the exact
//!   cost kept in the line's properties); a line's discount is
//!   `lineItemCost - discountedLineItemCost` when eBay sends the discounted
//!   cost, else the sum of `appliedPromotions[].discountAmount`; its tax
//!   the sum of `taxes[].amount`; its total `lineItemCost - discount + tax`
//!   (eBay's own `lineItem.total` also includes delivery);
//! - the ship-to is `fulfillmentStartInstructions[0].shippingStep.shipTo`
//!   (for Global Shipping Program and Authenticity Guarantee orders that is
//!   eBay's hub, which is where the seller ships); the country is
//!   `contactAddress.countryCode` in responses (`country` in the spec);
//! - `buyer.buyerRegistrationAddress` is the buyer's registered contact
//!   (name, email, phone, address): conveyor's customer and, lacking a
//!   billing address on eBay, the billing address;
//! - `cancelStatus.cancelState` `CANCELED` is a cancelled order;
//!   `IN_PROGRESS` (a cancel request awaiting the seller) holds it;
//! - `DIGITAL` and `PREPARE_FOR_PICKUP` fulfilments and digital gift cards
//!   ship nothing; eBay never fulfils for the seller (the Global Shipping
//!   Program only forwards).
//!
//! Totals from `pricingSummary`: subtotal = `priceSubtotal - |priceDiscount|`,
//! discount = `|priceDiscount|`, shipping = `deliveryCost -
//! |deliveryDiscount|`, tax = `tax`, total = `total` (each computed from the
//! lines when absent). Listing ids per line: `legacyVariationId` (the more
//! specific), then `legacyItemId`. ship_by is the earliest line
//! `shipByDate`, deliver_by the `maxEstimatedDeliveryDate`; the priority
//! comes from `shippingServiceCode` ("UPSNextDayAir", "USPSPriority").

use std::collections::BTreeMap;

use conveyor_schemas::records::{
    Address, Cancellation, Currency, Customer, Order, OrderLine, OrderStatus, RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::amazon::{
    checked, example_tax, flag, flat, per_unit, priority_of_code, to_money, PLACES, SKUS,
};
use super::fields::{self, id_text, opt_str};
use super::{address, json_payload, Draft, Rejection};

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let v = json_payload(raw)?;
    if !v.is_object() {
        return Err(Rejection::new("ebay payload is not an Order object"));
    }
    let id = id_text(v.get("orderId"))
        .or_else(|| id_text(v.get("legacyOrderId")))
        .ok_or_else(|| Rejection::new("ebay order: `orderId` is missing"))?;
    let ctx = |field: &str| format!("ebay order {id}: {field}");

    let updated_at = fields::timestamp(
        &ctx("lastModifiedDate"),
        opt_str(&v, "lastModifiedDate")
            .ok_or_else(|| Rejection::new(ctx("`lastModifiedDate` is missing")))?,
    )?;
    let created_at = match opt_str(&v, "creationDate") {
        Some(t) => fields::timestamp(&ctx("creationDate"), t)?,
        None => updated_at,
    };
    let not_list = |field: &str| Rejection::new(ctx(&format!("`{field}` is not a list")));
    let items = list(v.get("lineItems")).ok_or_else(|| not_list("lineItems"))?;
    let pricing = v.get("pricingSummary").filter(|p| p.is_object());
    let cur = order_currency(pricing, items, &ctx)?;

    let instructions = list(v.get("fulfillmentStartInstructions"))
        .ok_or_else(|| not_list("fulfillmentStartInstructions"))?;
    let instruction = instructions.first().filter(|i| i.is_object());
    let kind = instruction.and_then(|i| opt_str(i, "fulfillmentInstructionsType"));
    let ships = !matches!(kind, Some("DIGITAL" | "PREPARE_FOR_PICKUP"));
    let step = instruction
        .and_then(|i| i.get("shippingStep"))
        .filter(|s| s.is_object());
    let ship_to = step.and_then(|s| s.get("shipTo")).filter(|s| s.is_object());

    let cancel = v.get("cancelStatus").filter(|c| c.is_object());
    let cancel_state = cancel
        .and_then(|c| opt_str(c, "cancelState"))
        .unwrap_or_default();
    let cancelled = cancel_state.eq_ignore_ascii_case("CANCELED");

    let mut lines = Vec::new();
    let mut listing_ids = Vec::new();
    let mut gift_message = None;
    let mut ship_by: Option<i64> = None;
    let mut line_deliver_by: Option<i64> = None;
    let (mut item_total, mut item_discount, mut item_tax) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let f = |name: &str| ctx(&format!("lineItems[{n}].{name}"));
        if !item.is_object() {
            return Err(Rejection::new(ctx(&format!(
                "lineItems[{n}] is not a LineItem object"
            ))));
        }
        let qty = fields::int(&f("quantity"), item.get("quantity"))?;
        let quantity = i32::try_from(qty)
            .map_err(|_| Rejection::new(format!("{}: {qty} is out of range", f("quantity"))))?;
        let cost = amount(&f("lineItemCost"), item.get("lineItemCost"), cur)?;
        let discount = match item.get("discountedLineItemCost").filter(|d| !d.is_null()) {
            Some(d) => {
                let discounted = amount(&f("discountedLineItemCost"), Some(d), cur)?;
                checked(&f("discountedLineItemCost"), cost.checked_sub(discounted))?.abs()
            }
            None => {
                let mut sum = Decimal::ZERO;
                let promotions = list(item.get("appliedPromotions"))
                    .ok_or_else(|| not_list(&format!("lineItems[{n}].appliedPromotions")))?;
                for p in promotions {
                    let d = amount(
                        &f("appliedPromotions.discountAmount"),
                        p.get("discountAmount"),
                        cur,
                    )?;
                    sum = checked(&f("appliedPromotions"), sum.checked_add(d.abs()))?;
                }
                sum
            }
        };
        let mut tax = Decimal::ZERO;
        let taxes =
            list(item.get("taxes")).ok_or_else(|| not_list(&format!("lineItems[{n}].taxes")))?;
        for t in taxes {
            let a = amount(&f("taxes.amount"), t.get("amount"), cur)?;
            tax = checked(&f("taxes"), tax.checked_add(a))?;
        }
        let (unit, rounded) = per_unit(&f("lineItemCost"), cost, quantity)?;
        let total = checked(
            &f("lineItemCost"),
            cost.checked_sub(discount).and_then(|t| t.checked_add(tax)),
        )?;
        item_total = checked(&f("lineItemCost"), item_total.checked_add(cost))?;
        item_discount = checked(&f("appliedPromotions"), item_discount.checked_add(discount))?;
        item_tax = checked(&f("taxes"), item_tax.checked_add(tax))?;

        if let Some(fi) = item
            .get("lineItemFulfillmentInstructions")
            .filter(|x| x.is_object())
        {
            let time = |key: &str| -> Result<Option<i64>, Rejection> {
                opt_str(fi, key)
                    .map(|t| {
                        fields::timestamp(&f(&format!("lineItemFulfillmentInstructions.{key}")), t)
                    })
                    .transpose()
            };
            if let Some(t) = time("shipByDate")? {
                ship_by = Some(ship_by.map_or(t, |s| s.min(t)));
            }
            if let Some(t) = time("maxEstimatedDeliveryDate")? {
                line_deliver_by = Some(line_deliver_by.map_or(t, |s| s.min(t)));
            }
        }
        let gift = item.get("giftDetails").filter(|g| g.is_object());
        if gift_message.is_none() {
            gift_message = gift.and_then(|g| opt_str(g, "message")).map(String::from);
        }

        let mut properties = BTreeMap::new();
        for key in [
            "legacyItemId",
            "legacyVariationId",
            "soldFormat",
            "listingMarketplaceId",
            "purchaseMarketplaceId",
            "lineItemFulfillmentStatus",
        ] {
            if let Some(text) = flat(item.get(key)) {
                properties.insert(key.to_string(), text);
            }
        }
        if let Some(props) = item.get("properties").filter(|p| p.is_object()) {
            for key in ["fromBestOffer", "buyerProtection", "soldViaAdCampaign"] {
                if let Some(b) = flag(props.get(key)) {
                    properties.insert(key.to_string(), b.to_string());
                }
            }
        }
        if rounded {
            properties.insert("lineItemCost".into(), cost.normalize().to_string());
        }
        // The variation is the more specific listing: it resolves first.
        listing_ids.push(
            id_text(item.get("legacyVariationId"))
                .into_iter()
                .chain(id_text(item.get("legacyItemId")))
                .collect(),
        );
        lines.push(OrderLine {
            line_id: id_text(item.get("lineItemId")).unwrap_or_else(|| format!("{id}-{n}")),
            sku: opt_str(item, "sku").unwrap_or_default().to_string(),
            name: opt_str(item, "title").unwrap_or_default().to_string(),
            quantity,
            unit_price: to_money(&f("lineItemCost"), unit, cur)?,
            discount: to_money(&f("appliedPromotions"), discount, cur)?,
            tax: to_money(&f("taxes"), tax, cur)?,
            total: to_money(&f("lineItemCost"), total, cur)?,
            requires_shipping: ships && gift.is_none(),
            properties,
        });
    }

    let price = |key: &str| -> Result<Option<Decimal>, Rejection> {
        match pricing.and_then(|p| p.get(key)).filter(|a| !a.is_null()) {
            Some(a) => amount(&ctx(&format!("pricingSummary.{key}")), Some(a), cur).map(Some),
            None => Ok(None),
        }
    };
    let price_discount = price("priceDiscount")?
        .or(price("priceDiscountSubtotal")?)
        .map(|d| d.abs())
        .unwrap_or(item_discount);
    let subtotal = checked(
        &ctx("pricingSummary.priceSubtotal"),
        price("priceSubtotal")?
            .unwrap_or(item_total)
            .checked_sub(price_discount),
    )?;
    let shipping = checked(
        &ctx("pricingSummary.deliveryCost"),
        price("deliveryCost")?
            .unwrap_or_default()
            .checked_sub(price("deliveryDiscount")?.unwrap_or_default().abs()),
    )?;
    let tax = price("tax")?.unwrap_or(item_tax);
    let total = match price("total")? {
        Some(t) => t,
        None => checked(
            &ctx("pricingSummary.total"),
            subtotal
                .checked_add(shipping)
                .and_then(|t| t.checked_add(tax)),
        )?,
    };
    let totals = Totals {
        subtotal: to_money(&ctx("pricingSummary.priceSubtotal"), subtotal, cur)?,
        discount: to_money(&ctx("pricingSummary.priceDiscount"), price_discount, cur)?,
        shipping: to_money(&ctx("pricingSummary.deliveryCost"), shipping, cur)?,
        tax: to_money(&ctx("pricingSummary.tax"), tax, cur)?,
        total: to_money(&ctx("pricingSummary.total"), total, cur)?,
    };

    let registration = v
        .get("buyer")
        .and_then(|b| b.get("buyerRegistrationAddress"))
        .filter(|r| r.is_object());
    let shipping_address = ship_to
        .map(contact_address)
        .unwrap_or_else(|| address(None, None, None, None, None, None, None, None, None));
    let billing_address = registration
        .filter(|r| r.get("contactAddress").is_some_and(Value::is_object))
        .map(contact_address);
    let phone = |c: &Value| {
        c.get("primaryPhone")
            .and_then(|p| opt_str(p, "phoneNumber"))
            .map(String::from)
    };
    let customer = Customer {
        customer_id: v.get("buyer").and_then(|b| id_text(b.get("username"))),
        email: registration
            .and_then(|r| opt_str(r, "email"))
            .or_else(|| ship_to.and_then(|s| opt_str(s, "email")))
            .map(String::from),
        name: registration
            .and_then(|r| opt_str(r, "fullName"))
            .or_else(|| ship_to.and_then(|s| opt_str(s, "fullName")))
            .unwrap_or_default()
            .to_string(),
        phone: registration
            .and_then(phone)
            .or_else(|| ship_to.and_then(phone)),
    };

    let cancellation = if cancelled {
        let requests = list(cancel.and_then(|c| c.get("cancelRequests")))
            .ok_or_else(|| not_list("cancelStatus.cancelRequests"))?;
        let request = requests.iter().find(|r| r.is_object());
        let at = cancel
            .and_then(|c| opt_str(c, "cancelledDate"))
            .map(|t| (t, "cancelStatus.cancelledDate"))
            .or_else(|| {
                request
                    .and_then(|r| opt_str(r, "cancelCompletedDate"))
                    .map(|t| (t, "cancelStatus.cancelRequests.cancelCompletedDate"))
            });
        Some(Cancellation {
            reason: request
                .and_then(|r| opt_str(r, "cancelReason"))
                .unwrap_or("canceled on eBay")
                .to_string(),
            cancelled_at: match at {
                Some((t, field)) => fields::timestamp(&ctx(field), t)?,
                None => updated_at,
            },
            restock: true,
        })
    } else {
        None
    };
    let status = if cancelled {
        OrderStatus::Cancelled
    } else if cancel_state.eq_ignore_ascii_case("IN_PROGRESS") {
        OrderStatus::OnHold
    } else {
        match (
            opt_str(&v, "orderFulfillmentStatus").unwrap_or_default(),
            opt_str(&v, "orderPaymentStatus").unwrap_or_default(),
        ) {
            ("FULFILLED", _) => OrderStatus::Fulfilled,
            ("IN_PROGRESS", _) => OrderStatus::PartiallyFulfilled,
            (_, "PENDING" | "FAILED") => OrderStatus::Pending,
            _ => OrderStatus::Open,
        }
    };

    let service = step.and_then(|s| opt_str(s, "shippingServiceCode"));
    let deliver_by = match instruction.and_then(|i| opt_str(i, "maxEstimatedDeliveryDate")) {
        Some(t) => Some(fields::timestamp(
            &ctx("fulfillmentStartInstructions[1].maxEstimatedDeliveryDate"),
            t,
        )?),
        None => line_deliver_by,
    };

    let mut extras = BTreeMap::new();
    for key in [
        "legacyOrderId",
        "salesRecordReference",
        "sellerId",
        "orderFulfillmentStatus",
        "orderPaymentStatus",
        "ebayCollectAndRemitTax",
    ] {
        if let Some(text) = flat(v.get(key)) {
            extras.insert(key.to_string(), text);
        }
    }
    let mut extra = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            extras.insert(key.to_string(), value);
        }
    };
    extra(
        "buyer.username",
        v.get("buyer").and_then(|b| flat(b.get("username"))),
    );
    extra(
        "cancelStatus.cancelState",
        flat(cancel.and_then(|c| c.get("cancelState"))),
    );
    extra("fulfillmentInstructionsType", kind.map(String::from));
    extra(
        "ebaySupportedFulfillment",
        flat(instruction.and_then(|i| i.get("ebaySupportedFulfillment"))),
    );
    extra(
        "shippingCarrierCode",
        flat(step.and_then(|s| s.get("shippingCarrierCode"))),
    );
    extra(
        "shipToReferenceId",
        flat(step.and_then(|s| s.get("shipToReferenceId"))),
    );
    extra(
        "minEstimatedDeliveryDate",
        flat(instruction.and_then(|i| i.get("minEstimatedDeliveryDate"))),
    );
    extra(
        "totalMarketplaceFee",
        flat(v.get("totalMarketplaceFee").and_then(|f| f.get("value"))),
    );
    extra(
        "program.authenticityVerification",
        flat(
            v.get("program")
                .and_then(|p| p.get("authenticityVerification"))
                .and_then(|a| a.get("status")),
        ),
    );

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "ebay".into(),
            external_id: id.clone(),
            external_number: opt_str(&v, "salesRecordReference")
                .map(String::from)
                .or_else(|| id_text(v.get("legacyOrderId"))),
            status,
            currency: cur.to_string(),
            customer,
            shipping_address,
            billing_address,
            lines,
            totals,
            priority: priority_of_code(service.unwrap_or_default()),
            shipping_method: service.map(String::from),
            ship_by,
            deliver_by,
            fulfilled_by_channel: false,
            created_at,
            updated_at,
            tags: Vec::new(),
            note: opt_str(&v, "buyerCheckoutNotes").map(String::from),
            gift_message,
            extras,
        },
        listing_ids,
        cancellation,
        test: false,
    })
}

/// A JSON list: absent or null is empty; None when it is something else.
fn list(v: Option<&Value>) -> Option<&[Value]> {
    match v {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(a)) => Some(a),
        Some(_) => None,
    }
}

/// An `ExtendedContact` (`shipTo`, `buyerRegistrationAddress`) as an
/// address.
fn contact_address(c: &Value) -> Address {
    let a = c
        .get("contactAddress")
        .filter(|a| a.is_object())
        .unwrap_or(&Value::Null);
    address(
        opt_str(c, "fullName"),
        opt_str(c, "companyName"),
        opt_str(a, "addressLine1"),
        opt_str(a, "addressLine2"),
        opt_str(a, "city"),
        opt_str(a, "stateOrProvince"),
        opt_str(a, "postalCode"),
        opt_str(a, "countryCode").or_else(|| opt_str(a, "country")),
        c.get("primaryPhone")
            .and_then(|p| opt_str(p, "phoneNumber")),
    )
}

/// The order's currency: `pricingSummary.total`'s, else the first amount
/// that names one.
fn order_currency(
    pricing: Option<&Value>,
    items: &[Value],
    ctx: &dyn Fn(&str) -> String,
) -> Result<Currency, Rejection> {
    let from_pricing = ["total", "priceSubtotal"].iter().find_map(|k| {
        pricing
            .and_then(|p| p.get(*k))
            .and_then(|a| opt_str(a, "currency"))
            .map(|c| (c, format!("pricingSummary.{k}.currency")))
    });
    let from_items = || {
        items.iter().enumerate().find_map(|(i, item)| {
            item.get("lineItemCost")
                .and_then(|a| opt_str(a, "currency"))
                .map(|c| (c, format!("lineItems[{}].lineItemCost.currency", i + 1)))
        })
    };
    match from_pricing.or_else(from_items) {
        Some((code, field)) => fields::currency(&ctx(&field), code),
        None => Err(Rejection::new(ctx(
            "pricingSummary.total.currency is missing",
        ))),
    }
}

/// An `Amount` `{value, currency}`: absent or null is zero; a currency
/// other than the order's is refused.
fn amount(field: &str, v: Option<&Value>, cur: Currency) -> Result<Decimal, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(Value::Object(o)) => {
            if let Some(code) = o.get("currency").and_then(Value::as_str).map(str::trim) {
                if !code.is_empty() {
                    let c = fields::currency(&format!("{field}.currency"), code)?;
                    if c != cur {
                        return Err(Rejection::new(format!(
                            "{field} is in {c} but the order is in {cur}"
                        )));
                    }
                }
            }
            Ok(fields::money_opt(&format!("{field}.value"), o.get("value"), cur)?.amount)
        }
        Some(other) => Err(Rejection::new(format!(
            "{field}: expected an amount {{value, currency}}, got {other}"
        ))),
    }
}

/// The eBay `legacyItemId` the examples list SKU number `k` under.
pub fn example_item_id(k: u64) -> String {
    format!("{}", 287_403_990_000u64 + k)
}

/// The `n`-th example order as one `orders[]` entry of getOrders: paid,
/// not started, shipped to the US, USD.
pub fn example(n: u64) -> Value {
    let id = format!(
        "{:02}-{:05}-{:05}",
        10 + n % 90,
        (n * 7_919 + 14_786) % 100_000,
        (n * 104_729 + 65_872) % 100_000
    );
    let (city, _, state, zip) = PLACES[(n % PLACES.len() as u64) as usize];
    let created = 1_763_000_000 + n * 60;
    let ts = |secs: u64| fields::format_ms(secs as i64 * 1000).replace('Z', ".000Z");
    let amount = |d: Decimal| json!({"value": format!("{}", d.normalize()), "currency": "USD"});
    let n_lines = 1 + (n % 3) as usize;
    let (service, carrier, shipping) = match n % 7 {
        3 => ("UPS2ndDay", "UPS", Decimal::new(1499, 2)),
        6 => ("UPSNextDayAir", "UPS", Decimal::new(2999, 2)),
        _ => ("USPSGroundAdvantage", "USPS", Decimal::new(499, 2)),
    };
    let (mut subtotal, mut discounts, mut tax_total) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let items: Vec<Value> = (0..n_lines)
        .map(|l| {
            let (sku, title, price, k) = SKUS[(n as usize + l * 2) % SKUS.len()];
            let qty = 1 + ((n + l as u64) % 3);
            let cost = Decimal::from_str_exact(price).unwrap_or_default() * Decimal::from(qty);
            // Every 4th order's first line has a 1.00 markdown.
            let discount = if n % 4 == 1 && l == 0 { Decimal::ONE } else { Decimal::ZERO };
            let tax = example_tax(cost - discount);
            // Shipping is charged on the first line.
            let ship = if l == 0 { shipping } else { Decimal::ZERO };
            subtotal += cost;
            discounts += discount;
            tax_total += tax;
            let mut item = json!({
                "lineItemId": format!("{}", 10_084_048_110_913u64 + n * 10 + l as u64),
                "legacyItemId": example_item_id(k),
                "sku": sku,
                "title": title,
                "lineItemCost": amount(cost),
                "quantity": qty,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": "EBAY_US",
                "purchaseMarketplaceId": "EBAY_US",
                "lineItemFulfillmentStatus": "NOT_STARTED",
                "total": amount(cost - discount + tax + ship),
                "deliveryCost": {"shippingCost": amount(ship)},
                "appliedPromotions": if discount.is_zero() { json!([]) } else {
                    json!([{"discountAmount": amount(discount), "promotionId": "5143276010", "description": "Save $1.00"}])
                },
                "taxes": [{"amount": amount(tax), "taxType": "STATE_SALES_TAX"}],
                "ebayCollectAndRemitTaxes": [{"taxType": "STATE_SALES_TAX", "amount": amount(tax), "collectionMethod": "NET"}],
                "properties": {"buyerProtection": true, "soldViaAdCampaign": n.is_multiple_of(5)},
                "lineItemFulfillmentInstructions": {
                    "minEstimatedDeliveryDate": ts(created + 3 * 86_400),
                    "maxEstimatedDeliveryDate": ts(created + 6 * 86_400),
                    "shipByDate": ts(created + 2 * 86_400),
                    "guaranteedDelivery": false
                },
                "itemLocation": {"location": "Austin, Texas", "countryCode": "US", "postalCode": "78701"}
            });
            if !discount.is_zero() {
                item["discountedLineItemCost"] = amount(cost - discount);
            }
            item
        })
        .collect();
    let total = subtotal - discounts + shipping + tax_total;
    let mut pricing = json!({
        "priceSubtotal": amount(subtotal),
        "deliveryCost": amount(shipping),
        "tax": amount(tax_total),
        "total": amount(total)
    });
    if !discounts.is_zero() {
        pricing["priceDiscount"] = amount(-discounts);
    }
    let contact = json!({
        "addressLine1": format!("{} Main St", 100 + n % 900),
        "city": city,
        "stateOrProvince": state,
        "postalCode": zip,
        "countryCode": "US"
    });
    let mut ship_contact = contact.clone();
    if n.is_multiple_of(4) {
        ship_contact["addressLine2"] = json!("Apt 4");
    }
    json!({
        "orderId": id,
        "legacyOrderId": id,
        "creationDate": ts(created),
        "lastModifiedDate": ts(created + 95),
        "orderFulfillmentStatus": "NOT_STARTED",
        "orderPaymentStatus": "PAID",
        "sellerId": "conveyor_cards",
        "buyer": {
            "username": format!("sambuyer_{n}"),
            "taxAddress": {"city": city, "stateOrProvince": state, "postalCode": zip, "countryCode": "US"},
            "buyerRegistrationAddress": {
                "fullName": format!("Sam Buyer{n}"),
                "contactAddress": contact,
                "primaryPhone": {"phoneNumber": "5550100100"},
                "email": format!("{:020x}@members.ebay.com", 0x8e60_4295_2ceb_u64 + n)
            }
        },
        "pricingSummary": pricing,
        "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
        "paymentSummary": {
            "totalDueSeller": amount(total),
            "refunds": [],
            "payments": [{
                "paymentMethod": "EBAY",
                "paymentReferenceId": format!("{}_S", 420_004 + n),
                "paymentDate": ts(created),
                "amount": amount(total),
                "paymentStatus": "PAID"
            }]
        },
        "fulfillmentStartInstructions": [{
            "fulfillmentInstructionsType": "SHIP_TO",
            "minEstimatedDeliveryDate": ts(created + 3 * 86_400),
            "maxEstimatedDeliveryDate": ts(created + 6 * 86_400),
            "ebaySupportedFulfillment": false,
            "shippingStep": {
                "shipTo": {
                    "fullName": format!("Sam Buyer{n}"),
                    "contactAddress": ship_contact,
                    "primaryPhone": {"phoneNumber": "5550100100"},
                    "email": format!("{:020x}@members.ebay.com", 0x8e60_4295_2ceb_u64 + n)
                },
                "shippingCarrierCode": carrier,
                "shippingServiceCode": service
            }
        }],
        "fulfillmentHrefs": [],
        "lineItems": items,
        "salesRecordReference": format!("{}", 17_602 + n),
        "totalFeeBasisAmount": amount(total),
        "totalMarketplaceFee": amount((total * Decimal::new(1325, 4)).round_dp(2))
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
        raw_bytes("ebay", serde_json::to_vec(v).unwrap())
    }

    fn cat() -> crate::catalog::Catalog {
        catalog(&[
            ("MTG-DMU-BOOSTER", &[]),
            ("PKM-SV1-ETB", &[]),
            ("SLEEVE-DS-100", &[]),
            ("DICE-CHX-7", &[]),
            ("BINDER-9P", &[]),
            ("IPAD-10-64-SLV", &[("ebay", "287403994390")]),
            ("IPAD-10-64-BLU", &[("ebay", "650123456789")]),
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

    /// A getOrder/getOrders `Order` as eBay returns it (a real US response's
    /// shape and values, buyer contact abbreviated).
    fn docs_order() -> Value {
        json!({
            "orderId": "13-14786-65872",
            "legacyOrderId": "13-14786-65872",
            "creationDate": "2026-06-19T14:15:22.000Z",
            "lastModifiedDate": "2026-06-19T14:16:58.000Z",
            "orderFulfillmentStatus": "NOT_STARTED",
            "orderPaymentStatus": "PAID",
            "sellerId": "greenteksolutions",
            "buyer": {
                "username": "hoodsgoodscellular",
                "taxAddress": {"city": "Springdale", "stateOrProvince": "AR", "postalCode": "72764-8719", "countryCode": "US"},
                "buyerRegistrationAddress": {
                    "fullName": "Hoods Goods LLC",
                    "contactAddress": {"addressLine1": "1712 W Sunset Ave", "addressLine2": "Ste A", "city": "Springdale",
                                       "stateOrProvince": "AR", "postalCode": "72762", "countryCode": "US"},
                    "primaryPhone": {"phoneNumber": "4793182700"},
                    "email": "008e6042952ceb5c3e7e@members.ebay.com"
                }
            },
            "pricingSummary": {
                "priceSubtotal": {"value": "4085.0", "currency": "USD"},
                "deliveryCost": {"value": "0.0", "currency": "USD"},
                "total": {"value": "4085.0", "currency": "USD"}
            },
            "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
            "paymentSummary": {
                "totalDueSeller": {"value": "3807.77", "currency": "USD"},
                "refunds": [],
                "payments": [{"paymentMethod": "EBAY", "paymentReferenceId": "420004_S",
                              "paymentDate": "2026-06-19T14:15:22.915Z",
                              "amount": {"value": "3807.77", "currency": "USD"}, "paymentStatus": "PAID"}]
            },
            "fulfillmentStartInstructions": [{
                "fulfillmentInstructionsType": "SHIP_TO",
                "minEstimatedDeliveryDate": "2026-06-23T07:00:00.000Z",
                "maxEstimatedDeliveryDate": "2026-06-25T07:00:00.000Z",
                "ebaySupportedFulfillment": false,
                "shippingStep": {
                    "shipTo": {
                        "fullName": "Cody Hood",
                        "contactAddress": {"addressLine1": "2200 S Old Missouri Rd", "addressLine2": "Ste N",
                                           "city": "Springdale", "stateOrProvince": "AR",
                                           "postalCode": "72764-8719", "countryCode": "US"},
                        "primaryPhone": {"phoneNumber": "4794267518"},
                        "email": "008e6042952ceb5c3e7e@members.ebay.com"
                    },
                    "shippingCarrierCode": "UPS",
                    "shippingServiceCode": "UPSGround"
                }
            }],
            "fulfillmentHrefs": [],
            "lineItems": [{
                "lineItemId": "10084048110913",
                "legacyItemId": "287403994390",
                "sku": "UO-1781808648556",
                "title": "Apple iPad 10th Gen A2757 64GB Silver Unlocked",
                "lineItemCost": {"value": "4085.0", "currency": "USD"},
                "quantity": 19,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": "EBAY_US",
                "purchaseMarketplaceId": "EBAY_US",
                "lineItemFulfillmentStatus": "NOT_STARTED",
                "total": {"value": "4085.0", "currency": "USD"},
                "deliveryCost": {"shippingCost": {"value": "0.0", "currency": "USD"}},
                "appliedPromotions": [],
                "taxes": [{"amount": {"value": "0.0", "currency": "USD"}}],
                "properties": {"fromBestOffer": true, "buyerProtection": true, "soldViaAdCampaign": true},
                "lineItemFulfillmentInstructions": {
                    "minEstimatedDeliveryDate": "2026-06-23T07:00:00.000Z",
                    "maxEstimatedDeliveryDate": "2026-06-25T07:00:00.000Z",
                    "shipByDate": "2026-06-23T04:59:59.000Z",
                    "guaranteedDelivery": false
                },
                "itemLocation": {"location": "Stafford, Texas", "countryCode": "US", "postalCode": "77477"}
            }],
            "salesRecordReference": "17602",
            "totalFeeBasisAmount": {"value": "4085.0", "currency": "USD"},
            "totalMarketplaceFee": {"value": "277.23", "currency": "USD"}
        })
    }

    #[test]
    fn the_documented_order_normalizes() {
        let n = ok(&docs_order());
        let o = &n.order;
        assert_eq!(o.order_id, "ebay:13-14786-65872");
        assert_eq!(o.external_number.as_deref(), Some("17602"));
        assert_eq!(o.status, OrderStatus::Open);
        assert_eq!(o.created_at, 1_781_878_522_000);
        assert_eq!(o.updated_at, 1_781_878_618_000);
        assert_eq!(n.version, o.updated_at);
        assert_eq!(o.ship_by, Some(1_782_190_799_000));
        assert_eq!(o.deliver_by, Some(1_782_370_800_000));
        let l = &o.lines[0];
        assert_eq!(
            l.sku, "IPAD-10-64-SLV",
            "sku unknown: resolved by legacyItemId"
        );
        assert_eq!(l.quantity, 19);
        assert_eq!(l.unit_price.amount, dec("215"), "4085.0 / 19");
        assert_eq!(l.total.amount, dec("4085.0"));
        assert_eq!(
            l.properties.get("fromBestOffer").map(String::as_str),
            Some("true")
        );
        assert_eq!(o.totals.subtotal.amount, dec("4085"));
        assert_eq!(o.totals.shipping.amount, Decimal::ZERO);
        assert_eq!(o.totals.tax.amount, Decimal::ZERO);
        assert_eq!(o.totals.total.amount, dec("4085.00"));
        let a = &o.shipping_address;
        assert_eq!(a.name, "Cody Hood");
        assert_eq!(
            (a.line1.as_str(), a.line2.as_deref()),
            ("2200 S Old Missouri Rd", Some("Ste N"))
        );
        assert_eq!(
            (a.city.as_str(), a.region.as_deref()),
            ("Springdale", Some("AR"))
        );
        assert_eq!(
            (a.postal_code.as_str(), a.country.as_str()),
            ("72764-8719", "US")
        );
        assert_eq!(a.phone.as_deref(), Some("4794267518"));
        let b = o.billing_address.as_ref().unwrap();
        assert_eq!(
            (b.name.as_str(), b.line1.as_str()),
            ("Hoods Goods LLC", "1712 W Sunset Ave")
        );
        assert_eq!(
            o.customer.customer_id.as_deref(),
            Some("hoodsgoodscellular")
        );
        assert_eq!(o.customer.name, "Hoods Goods LLC");
        assert_eq!(o.customer.phone.as_deref(), Some("4793182700"));
        assert_eq!(o.shipping_method.as_deref(), Some("UPSGround"));
        assert_eq!(o.priority, Priority::Standard);
        assert!(!o.fulfilled_by_channel);
        assert_eq!(
            o.extras.get("orderPaymentStatus").map(String::as_str),
            Some("PAID")
        );
        assert_eq!(
            o.extras.get("shippingCarrierCode").map(String::as_str),
            Some("UPS")
        );
        assert!(n.cancellation.is_none());
    }

    #[test]
    fn promotions_taxes_and_variations() {
        let mut v = docs_order();
        set(&mut v, &["lineItems", "0", "quantity"], json!(3));
        set(
            &mut v,
            &["lineItems", "0", "lineItemCost", "value"],
            json!("100.00"),
        );
        set(
            &mut v,
            &["lineItems", "0", "appliedPromotions"],
            json!([{"discountAmount": {"value": "5.00", "currency": "USD"}, "promotionId": "1", "description": "Save"}]),
        );
        set(
            &mut v,
            &["lineItems", "0", "taxes"],
            json!([{"amount": {"value": "7.60", "currency": "USD"}, "taxType": "STATE_SALES_TAX"},
                   {"amount": {"value": "1.00", "currency": "USD"}, "taxType": "ELECTRONIC_RECYCLING_FEE"}]),
        );
        set(
            &mut v,
            &["lineItems", "0", "legacyVariationId"],
            json!("650123456789"),
        );
        set(
            &mut v,
            &["pricingSummary"],
            json!({
                "priceSubtotal": {"value": "100.00", "currency": "USD"},
                "priceDiscount": {"value": "-5.00", "currency": "USD"},
                "deliveryCost": {"value": "9.99", "currency": "USD"},
                "deliveryDiscount": {"value": "-2.00", "currency": "USD"},
                "tax": {"value": "8.60", "currency": "USD"},
                "total": {"value": "111.59", "currency": "USD"}
            }),
        );
        set(
            &mut v,
            &[
                "fulfillmentStartInstructions",
                "0",
                "shippingStep",
                "shippingServiceCode",
            ],
            json!("UPSNextDayAir"),
        );
        let o = ok(&v).order;
        let l = &o.lines[0];
        assert_eq!(
            l.sku, "IPAD-10-64-BLU",
            "the variation resolves before the listing"
        );
        assert_eq!(l.unit_price.amount, dec("33.3333"));
        assert_eq!(
            l.properties.get("lineItemCost").map(String::as_str),
            Some("100")
        );
        assert_eq!(l.discount.amount, dec("5"));
        assert_eq!(l.tax.amount, dec("8.60"));
        assert_eq!(l.total.amount, dec("103.60"));
        assert_eq!(o.totals.subtotal.amount, dec("95"));
        assert_eq!(o.totals.discount.amount, dec("5"));
        assert_eq!(o.totals.shipping.amount, dec("7.99"));
        assert_eq!(o.totals.tax.amount, dec("8.60"));
        assert_eq!(o.totals.total.amount, dec("111.59"));
        assert_eq!(o.priority, Priority::Overnight);
        // discountedLineItemCost wins over the promotions when sent.
        set(
            &mut v,
            &["lineItems", "0", "discountedLineItemCost"],
            json!({"value": "90.00", "currency": "USD"}),
        );
        assert_eq!(ok(&v).order.lines[0].discount.amount, dec("10"));
    }

    #[test]
    fn cancellations_and_cancel_requests() {
        let mut v = docs_order();
        v["cancelStatus"] = json!({
            "cancelState": "CANCELED",
            "cancelledDate": "2026-06-20T10:00:00.000Z",
            "cancelRequests": [{"cancelInitiator": "Buyer", "cancelReason": "ORDERED_BY_MISTAKE",
                                "cancelRequestedDate": "2026-06-20T09:00:00.000Z", "cancelRequestId": "5000123",
                                "cancelRequestState": "COMPLETED"}]
        });
        v["fulfillmentStartInstructions"] = json!([]);
        let n = ok(&v);
        assert_eq!(n.order.status, OrderStatus::Cancelled);
        let c = n.cancellation.unwrap();
        assert_eq!(c.reason, "ORDERED_BY_MISTAKE");
        assert_eq!(c.cancelled_at, 1_781_949_600_000);
        assert!(c.restock);
        // getOrders always sends an empty cancelRequests: no better time.
        v["cancelStatus"] = json!({"cancelState": "CANCELED", "cancelRequests": []});
        let n = ok(&v);
        let c = n.cancellation.unwrap();
        assert_eq!(
            (c.reason.as_str(), c.cancelled_at),
            ("canceled on eBay", n.order.updated_at)
        );
        // A pending request holds the order.
        let mut v = docs_order();
        v["cancelStatus"]["cancelState"] = json!("IN_PROGRESS");
        let n = ok(&v);
        assert_eq!(n.order.status, OrderStatus::OnHold);
        assert!(n.cancellation.is_none());
    }

    #[test]
    fn optional_parts_absent_or_null() {
        let v = json!({
            "orderId": "01-00000-00001", "lastModifiedDate": "2024-05-01T10:00:00Z",
            "creationDate": null, "buyer": null, "pricingSummary": null, "cancelStatus": null,
            "fulfillmentStartInstructions": [{"fulfillmentInstructionsType": "DIGITAL"}],
            "lineItems": [{"lineItemId": "1", "quantity": 1, "title": "Gift card",
                           "lineItemCost": {"value": "25.00", "currency": "USD"},
                           "giftDetails": {"message": "Happy birthday", "recipientEmail": "a@b.c"},
                           "appliedPromotions": null, "taxes": null, "mystery": true}],
            "someNewThing": {"x": 1}
        });
        let n = ok(&v);
        let o = &n.order;
        assert_eq!(o.created_at, o.updated_at);
        assert!(!o.lines[0].requires_shipping);
        assert_eq!(o.gift_message.as_deref(), Some("Happy birthday"));
        assert_eq!(o.totals.total.amount, dec("25"));
        assert_eq!(o.customer.name, "");
        assert!(o.billing_address.is_none());
        assert_eq!(o.external_number, None);
        // Nothing names the currency.
        let mut v = v;
        v["lineItems"][0]["lineItemCost"] = json!({"value": "25.00"});
        assert!(reject(&v).contains("pricingSummary.total.currency is missing"));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let with = |path: &[&str], value: Value| {
            let mut v = docs_order();
            set(&mut v, path, value);
            reject(&v)
        };
        assert!(with(&["lastModifiedDate"], Value::Null).contains("`lastModifiedDate` is missing"));
        assert!(with(&["lastModifiedDate"], json!("2026-06-19")).contains("lastModifiedDate"));
        let mut v = docs_order();
        v["orderId"] = json!(false);
        assert_eq!(
            ok(&v).order.external_id,
            "13-14786-65872",
            "legacyOrderId stands in"
        );
        v["orderId"] = Value::Null;
        v["legacyOrderId"] = Value::Null;
        assert!(reject(&v).contains("`orderId` is missing"));
        assert!(with(&["pricingSummary", "total"], json!("4085.0"))
            .contains("pricingSummary.total: expected an amount"));
        assert!(with(&["pricingSummary", "total", "currency"], json!("EUR"))
            .contains("lineItemCost is in USD but the order is in EUR"));
        assert!(with(
            &["lineItems", "0", "lineItemCost", "currency"],
            json!("GBP")
        )
        .contains("lineItems[1].lineItemCost is in GBP but the order is in USD"));
        assert!(with(
            &["lineItems", "0", "lineItemCost", "value"],
            json!("4,085.00")
        )
        .contains("lineItemCost.value"));
        assert!(with(&["lineItems", "0", "quantity"], Value::Null)
            .contains("lineItems[1].quantity is missing"));
        assert!(with(&["lineItems", "0", "quantity"], json!(0))
            .contains("quantity 0 must be greater than 0"));
        assert!(with(&["lineItems", "0", "taxes"], json!({}))
            .contains("`lineItems[1].taxes` is not a list"));
        assert!(with(&["lineItems"], json!({})).contains("`lineItems` is not a list"));
        assert!(with(&["lineItems", "0"], json!(null)).contains("lineItems[1] is not a LineItem"));
        assert!(with(&["fulfillmentStartInstructions"], json!([])).contains("shipping address"));
        assert!(with(
            &[
                "fulfillmentStartInstructions",
                "0",
                "shippingStep",
                "shipTo",
                "contactAddress",
                "stateOrProvince"
            ],
            json!("Narnia")
        )
        .contains("not a region of US"));
        assert!(with(&["lineItems", "0", "legacyItemId"], json!("1")).contains("listing id 1"));
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bytes in [
            &b""[..], b"null", b"[]", b"{}", b"{\"orderId\":{}}", b"{\"orderId\":\"1\"}", b"\xff\xfe", b"1e999",
            b"{\"orderId\":\"1\",\"lastModifiedDate\":\"2024-01-01T00:00:00Z\",\"lineItems\":[{\"quantity\":1}]}",
        ] {
            let e = normalize(&raw_bytes("ebay", bytes.to_vec()), &cat()).unwrap_err();
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
            let sum: Decimal = o.lines.iter().map(|l| l.total.amount).sum();
            assert_eq!(
                sum + o.totals.shipping.amount,
                o.totals.total.amount,
                "example({i})"
            );
            assert!(o.lines.iter().all(|l| SKUS.iter().any(|s| s.0 == l.sku)));
            assert_eq!(o.shipping_address.country, "US");
            assert!(o.ship_by.is_some() && o.deliver_by.is_some());
            assert_eq!(example(i), v, "deterministic");
        }
        assert_eq!(ok(&example(3)).order.priority, Priority::Expedited);
        assert_eq!(ok(&example(6)).order.priority, Priority::Overnight);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn mutated_examples_never_panic(
            n in 0u64..50,
            node in 0usize..320,
            with in odd_value(),
            edits in proptest::collection::vec((any::<usize>(), proptest::sample::select(JSONISH), any::<u8>()), 0..4),
        ) {
            let mut v = example(n);
            let mut k = node;
            replace_nth(&mut v, &mut k, &with);
            let c = cat();
            let _ = normalize(&raw(&v), &c);
            let bytes = mutate_bytes(serde_json::to_vec(&v).unwrap(), &edits);
            let _ = normalize(&raw_bytes("ebay", bytes), &c);
        }
    }
}

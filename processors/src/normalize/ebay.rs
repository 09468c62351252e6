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

use conveyor_schemas::records::{
    Address, Cancellation, Currency, Customer, Order, OrderLine, OrderStatus, RawOrder, Totals,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::amazon::{example_tax, PLACES, SKUS};
use super::fields::{self, Scalar};
use super::typed::{
    bool_text, checked, flag, flat, money, per_unit, priority_of_code, s, same_currency, t,
    to_money, within, Expecting, Obj, Text,
};
use super::{address, Draft, Rejection};

/// The fields of a Fulfillment API `Order` normalize reads; serde skips
/// the rest without building anything.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct EbayOrder<'a> {
    #[serde(borrow)]
    order_id: Scalar<'a>,
    #[serde(borrow)]
    legacy_order_id: Scalar<'a>,
    #[serde(borrow)]
    creation_date: Option<Text<'a>>,
    #[serde(borrow)]
    last_modified_date: Option<Text<'a>>,
    #[serde(borrow)]
    line_items: Option<Vec<Obj<LineItem<'a>>>>,
    #[serde(borrow)]
    pricing_summary: Option<PricingSummary<'a>>,
    #[serde(borrow)]
    fulfillment_start_instructions: Option<Vec<Instruction<'a>>>,
    #[serde(borrow)]
    cancel_status: Option<CancelStatus<'a>>,
    #[serde(borrow)]
    buyer: Option<Buyer<'a>>,
    #[serde(borrow)]
    buyer_checkout_notes: Option<Text<'a>>,
    #[serde(borrow)]
    total_marketplace_fee: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    program: Option<Program<'a>>,
    // Read as text (`orderFulfillmentStatus`, `orderPaymentStatus`,
    // `salesRecordReference`) and kept in `extras` as sent.
    #[serde(borrow)]
    sales_record_reference: Scalar<'a>,
    #[serde(borrow)]
    seller_id: Scalar<'a>,
    #[serde(borrow)]
    order_fulfillment_status: Scalar<'a>,
    #[serde(borrow)]
    order_payment_status: Scalar<'a>,
    #[serde(borrow)]
    ebay_collect_and_remit_tax: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LineItem<'a> {
    #[serde(borrow)]
    line_item_id: Scalar<'a>,
    #[serde(borrow)]
    legacy_item_id: Scalar<'a>,
    #[serde(borrow)]
    legacy_variation_id: Scalar<'a>,
    #[serde(borrow)]
    sku: Option<Text<'a>>,
    #[serde(borrow)]
    title: Option<Text<'a>>,
    #[serde(borrow)]
    quantity: Scalar<'a>,
    #[serde(borrow)]
    line_item_cost: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    discounted_line_item_cost: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    applied_promotions: Option<Vec<Promotion<'a>>>,
    #[serde(borrow)]
    taxes: Option<Vec<Tax<'a>>>,
    #[serde(borrow)]
    line_item_fulfillment_instructions: Option<LineFulfillment<'a>>,
    #[serde(borrow)]
    gift_details: Option<GiftDetails<'a>>,
    #[serde(borrow)]
    properties: Option<LineProperties<'a>>,
    #[serde(borrow)]
    sold_format: Scalar<'a>,
    #[serde(borrow)]
    listing_marketplace_id: Scalar<'a>,
    #[serde(borrow)]
    purchase_marketplace_id: Scalar<'a>,
    #[serde(borrow)]
    line_item_fulfillment_status: Scalar<'a>,
}

impl Expecting for EbayOrder<'_> {
    const WHAT: &'static str = "an Order object";
}

impl Expecting for LineItem<'_> {
    const WHAT: &'static str = "a LineItem object";
}

/// An `Amount` `{value, currency}`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Amount<'a> {
    #[serde(borrow)]
    value: Scalar<'a>,
    #[serde(borrow)]
    currency: Option<Text<'a>>,
}

impl Expecting for Amount<'_> {
    const WHAT: &'static str = "an amount {value, currency}";
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "an AppliedPromotion object"
)]
struct Promotion<'a> {
    #[serde(borrow)]
    discount_amount: Option<Obj<Amount<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a Tax object")]
struct Tax<'a> {
    #[serde(borrow)]
    amount: Option<Obj<Amount<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "a LineItemFulfillmentInstructions object"
)]
struct LineFulfillment<'a> {
    #[serde(borrow)]
    ship_by_date: Option<Text<'a>>,
    #[serde(borrow)]
    max_estimated_delivery_date: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a GiftDetails object")]
struct GiftDetails<'a> {
    #[serde(borrow)]
    message: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "a LineItemProperties object"
)]
struct LineProperties<'a> {
    #[serde(borrow)]
    from_best_offer: Scalar<'a>,
    #[serde(borrow)]
    buyer_protection: Scalar<'a>,
    #[serde(borrow)]
    sold_via_ad_campaign: Scalar<'a>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "a PricingSummary object"
)]
struct PricingSummary<'a> {
    #[serde(borrow)]
    price_subtotal: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    price_discount: Option<Obj<Amount<'a>>>,
    /// `priceDiscount` in older specs.
    #[serde(borrow)]
    price_discount_subtotal: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    delivery_cost: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    delivery_discount: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    tax: Option<Obj<Amount<'a>>>,
    #[serde(borrow)]
    total: Option<Obj<Amount<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "a FulfillmentStartInstruction object"
)]
struct Instruction<'a> {
    #[serde(borrow)]
    fulfillment_instructions_type: Option<Text<'a>>,
    #[serde(borrow)]
    max_estimated_delivery_date: Option<Text<'a>>,
    #[serde(borrow)]
    min_estimated_delivery_date: Scalar<'a>,
    #[serde(borrow)]
    ebay_supported_fulfillment: Scalar<'a>,
    #[serde(borrow)]
    shipping_step: Option<ShippingStep<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "a ShippingStep object")]
struct ShippingStep<'a> {
    #[serde(borrow)]
    ship_to: Option<Contact<'a>>,
    #[serde(borrow)]
    shipping_service_code: Option<Text<'a>>,
    #[serde(borrow)]
    shipping_carrier_code: Scalar<'a>,
    #[serde(borrow)]
    ship_to_reference_id: Scalar<'a>,
}

/// An `ExtendedContact` (`shipTo`, `buyerRegistrationAddress`).
#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "an ExtendedContact object"
)]
struct Contact<'a> {
    #[serde(borrow)]
    full_name: Option<Text<'a>>,
    #[serde(borrow)]
    company_name: Option<Text<'a>>,
    #[serde(borrow)]
    email: Option<Text<'a>>,
    #[serde(borrow)]
    contact_address: Option<ContactAddress<'a>>,
    #[serde(borrow)]
    primary_phone: Option<Phone<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "an Address object")]
struct ContactAddress<'a> {
    #[serde(borrow)]
    address_line1: Option<Text<'a>>,
    #[serde(borrow)]
    address_line2: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    #[serde(borrow)]
    state_or_province: Option<Text<'a>>,
    #[serde(borrow)]
    postal_code: Option<Text<'a>>,
    /// `countryCode` in responses, `country` in the spec.
    #[serde(borrow)]
    country_code: Option<Text<'a>>,
    #[serde(borrow)]
    country: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "a PhoneNumber object")]
struct Phone<'a> {
    #[serde(borrow)]
    phone_number: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "a Buyer object")]
struct Buyer<'a> {
    #[serde(borrow)]
    username: Scalar<'a>,
    #[serde(borrow)]
    buyer_registration_address: Option<Contact<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "a CancelStatus object")]
struct CancelStatus<'a> {
    #[serde(borrow)]
    cancel_state: Scalar<'a>,
    #[serde(borrow)]
    cancelled_date: Option<Text<'a>>,
    /// Null entries are skipped.
    #[serde(borrow)]
    cancel_requests: Option<Vec<Option<CancelRequest<'a>>>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "camelCase",
    expecting = "a CancelRequest object"
)]
struct CancelRequest<'a> {
    #[serde(borrow)]
    cancel_reason: Option<Text<'a>>,
    #[serde(borrow)]
    cancel_completed_date: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", expecting = "a Program object")]
struct Program<'a> {
    #[serde(borrow)]
    authenticity_verification: Option<Status<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, expecting = "an object with a `status`")]
struct Status<'a> {
    #[serde(borrow)]
    status: Scalar<'a>,
}

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let Obj(o): Obj<EbayOrder> = fields::typed("ebay", &raw.payload)?;
    let id = o
        .order_id
        .text()
        .or_else(|| o.legacy_order_id.text())
        .ok_or_else(|| Rejection::new("ebay order: `orderId` is missing"))?;
    map(&o, id).map_err(|e| Rejection(format!("ebay order {id}: {}", e.0)))
}

/// The order; rejections name fields relative to the order (the caller
/// adds which order).
fn map(o: &EbayOrder<'_>, id: &str) -> Result<Draft, Rejection> {
    let updated_at = fields::timestamp(
        "lastModifiedDate",
        t(&o.last_modified_date).ok_or_else(|| Rejection::new("`lastModifiedDate` is missing"))?,
    )?;
    let created_at = match t(&o.creation_date) {
        Some(x) => fields::timestamp("creationDate", x)?,
        None => updated_at,
    };
    let items: &[Obj<LineItem<'_>>] = o.line_items.as_deref().unwrap_or_default();
    let pricing = o.pricing_summary.as_ref();
    let cur = order_currency(pricing, items)?;

    let instruction = o
        .fulfillment_start_instructions
        .as_deref()
        .and_then(<[_]>::first);
    let kind = instruction.and_then(|i| t(&i.fulfillment_instructions_type));
    let ships = !matches!(kind, Some("DIGITAL" | "PREPARE_FOR_PICKUP"));
    let step = instruction.and_then(|i| i.shipping_step.as_ref());
    let ship_to = step.and_then(|s| s.ship_to.as_ref());

    let cancel = o.cancel_status.as_ref();
    let cancel_state = cancel.and_then(|c| s(&c.cancel_state)).unwrap_or_default();
    let cancelled = cancel_state.eq_ignore_ascii_case("CANCELED");

    let mut lines = Vec::with_capacity(items.len());
    let mut listing_ids = Vec::with_capacity(items.len());
    let mut gift_message = None;
    let mut ship_by: Option<i64> = None;
    let mut line_deliver_by: Option<i64> = None;
    let (mut item_total, mut item_discount, mut item_tax) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (i, Obj(item)) in items.iter().enumerate() {
        let n = i + 1;
        let at = |e: Rejection| within(format_args!("lineItems[{n}]"), e);
        let qty = item.quantity.int("quantity").map_err(at)?;
        let quantity = i32::try_from(qty)
            .map_err(|_| at(Rejection(format!("quantity: {qty} is out of range"))))?;
        let cost = amount("lineItemCost", &item.line_item_cost, cur).map_err(at)?;
        let discount = match &item.discounted_line_item_cost {
            Some(_) => {
                let discounted = amount(
                    "discountedLineItemCost",
                    &item.discounted_line_item_cost,
                    cur,
                )
                .map_err(at)?;
                checked("discountedLineItemCost", cost.checked_sub(discounted))
                    .map_err(at)?
                    .abs()
            }
            None => {
                let mut sum = Decimal::ZERO;
                for p in item.applied_promotions.iter().flatten() {
                    let d = amount("appliedPromotions.discountAmount", &p.discount_amount, cur)
                        .map_err(at)?;
                    sum = checked("appliedPromotions", sum.checked_add(d.abs())).map_err(at)?;
                }
                sum
            }
        };
        let mut tax = Decimal::ZERO;
        for x in item.taxes.iter().flatten() {
            let a = amount("taxes.amount", &x.amount, cur).map_err(at)?;
            tax = checked("taxes", tax.checked_add(a)).map_err(at)?;
        }
        let (unit, rounded) = per_unit("lineItemCost", cost, quantity).map_err(at)?;
        let total = checked(
            "lineItemCost",
            cost.checked_sub(discount).and_then(|x| x.checked_add(tax)),
        )
        .map_err(at)?;
        item_total = checked("lineItemCost", item_total.checked_add(cost)).map_err(at)?;
        item_discount =
            checked("appliedPromotions", item_discount.checked_add(discount)).map_err(at)?;
        item_tax = checked("taxes", item_tax.checked_add(tax)).map_err(at)?;

        if let Some(fi) = &item.line_item_fulfillment_instructions {
            let time = |key: &'static str, v: &Option<Text<'_>>| {
                t(v).map(|x| {
                    fields::timestamp(key, x)
                        .map_err(|e| at(within("lineItemFulfillmentInstructions", e)))
                })
                .transpose()
            };
            if let Some(x) = time("shipByDate", &fi.ship_by_date)? {
                ship_by = Some(ship_by.map_or(x, |s| s.min(x)));
            }
            if let Some(x) = time("maxEstimatedDeliveryDate", &fi.max_estimated_delivery_date)? {
                line_deliver_by = Some(line_deliver_by.map_or(x, |s| s.min(x)));
            }
        }
        let gift = item.gift_details.as_ref();
        if gift_message.is_none() {
            gift_message = gift.and_then(|g| t(&g.message)).map(String::from);
        }

        // Collected, then built in one go (no tree inserts).
        let mut properties: Vec<(String, String)> = Vec::with_capacity(10);
        for (key, v) in [
            ("legacyItemId", &item.legacy_item_id),
            ("legacyVariationId", &item.legacy_variation_id),
            ("soldFormat", &item.sold_format),
            ("listingMarketplaceId", &item.listing_marketplace_id),
            ("purchaseMarketplaceId", &item.purchase_marketplace_id),
            (
                "lineItemFulfillmentStatus",
                &item.line_item_fulfillment_status,
            ),
        ] {
            if let Some(text) = flat(v) {
                properties.push((key.to_string(), text));
            }
        }
        if let Some(props) = &item.properties {
            for (key, v) in [
                ("fromBestOffer", &props.from_best_offer),
                ("buyerProtection", &props.buyer_protection),
                ("soldViaAdCampaign", &props.sold_via_ad_campaign),
            ] {
                if let Some(b) = flag(v) {
                    properties.push((key.to_string(), bool_text(b)));
                }
            }
        }
        if rounded {
            properties.push(("lineItemCost".into(), cost.normalize().to_string()));
        }
        // The variation is the more specific listing: it resolves first.
        listing_ids.push(
            item.legacy_variation_id
                .owned()
                .into_iter()
                .chain(item.legacy_item_id.owned())
                .collect(),
        );
        lines.push(OrderLine {
            line_id: item
                .line_item_id
                .owned()
                .unwrap_or_else(|| format!("{id}-{n}")),
            sku: t(&item.sku).unwrap_or_default().to_string(),
            name: t(&item.title).unwrap_or_default().to_string(),
            quantity,
            unit_price: to_money("lineItemCost", unit, cur).map_err(at)?,
            discount: to_money("appliedPromotions", discount, cur).map_err(at)?,
            tax: to_money("taxes", tax, cur).map_err(at)?,
            total: to_money("lineItemCost", total, cur).map_err(at)?,
            requires_shipping: ships && gift.is_none(),
            properties: properties.into_iter().collect(),
        });
    }

    let no_pricing = PricingSummary::default();
    let p = pricing.unwrap_or(&no_pricing);
    let price =
        |key: &'static str, v: &Option<Obj<Amount<'_>>>| -> Result<Option<Decimal>, Rejection> {
            match v {
                Some(_) => amount(key, v, cur)
                    .map(Some)
                    .map_err(|e| within("pricingSummary", e)),
                None => Ok(None),
            }
        };
    let price_discount = price("priceDiscount", &p.price_discount)?
        .or(price("priceDiscountSubtotal", &p.price_discount_subtotal)?)
        .map(|d| d.abs())
        .unwrap_or(item_discount);
    let subtotal = checked(
        "pricingSummary.priceSubtotal",
        price("priceSubtotal", &p.price_subtotal)?
            .unwrap_or(item_total)
            .checked_sub(price_discount),
    )?;
    let shipping = checked(
        "pricingSummary.deliveryCost",
        price("deliveryCost", &p.delivery_cost)?
            .unwrap_or_default()
            .checked_sub(
                price("deliveryDiscount", &p.delivery_discount)?
                    .unwrap_or_default()
                    .abs(),
            ),
    )?;
    let tax = price("tax", &p.tax)?.unwrap_or(item_tax);
    let total = match price("total", &p.total)? {
        Some(x) => x,
        None => checked(
            "pricingSummary.total",
            subtotal
                .checked_add(shipping)
                .and_then(|x| x.checked_add(tax)),
        )?,
    };
    let totals = Totals {
        subtotal: to_money("pricingSummary.priceSubtotal", subtotal, cur)?,
        discount: to_money("pricingSummary.priceDiscount", price_discount, cur)?,
        shipping: to_money("pricingSummary.deliveryCost", shipping, cur)?,
        tax: to_money("pricingSummary.tax", tax, cur)?,
        total: to_money("pricingSummary.total", total, cur)?,
    };

    let registration = o
        .buyer
        .as_ref()
        .and_then(|b| b.buyer_registration_address.as_ref());
    let shipping_address = ship_to
        .map(contact_address)
        .unwrap_or_else(|| address(None, None, None, None, None, None, None, None, None));
    let billing_address = registration
        .filter(|r| r.contact_address.is_some())
        .map(contact_address);
    let phone = |c: &Contact<'_>| {
        c.primary_phone
            .as_ref()
            .and_then(|p| t(&p.phone_number))
            .map(String::from)
    };
    let customer = Customer {
        customer_id: o.buyer.as_ref().and_then(|b| b.username.owned()),
        email: registration
            .and_then(|r| t(&r.email))
            .or_else(|| ship_to.and_then(|x| t(&x.email)))
            .map(String::from),
        name: registration
            .and_then(|r| t(&r.full_name))
            .or_else(|| ship_to.and_then(|x| t(&x.full_name)))
            .unwrap_or_default()
            .to_string(),
        phone: registration
            .and_then(phone)
            .or_else(|| ship_to.and_then(phone)),
    };

    let cancellation = match cancel {
        Some(c) if cancelled => {
            let request = c.cancel_requests.iter().flatten().flatten().next();
            let at = t(&c.cancelled_date)
                .map(|x| (x, "cancelStatus.cancelledDate"))
                .or_else(|| {
                    request
                        .and_then(|r| t(&r.cancel_completed_date))
                        .map(|x| (x, "cancelStatus.cancelRequests.cancelCompletedDate"))
                });
            Some(Cancellation {
                reason: request
                    .and_then(|r| t(&r.cancel_reason))
                    .unwrap_or("canceled on eBay")
                    .to_string(),
                cancelled_at: match at {
                    Some((x, field)) => fields::timestamp(field, x)?,
                    None => updated_at,
                },
                restock: true,
            })
        }
        _ => None,
    };
    let status = if cancelled {
        OrderStatus::Cancelled
    } else if cancel_state.eq_ignore_ascii_case("IN_PROGRESS") {
        OrderStatus::OnHold
    } else {
        match (
            s(&o.order_fulfillment_status).unwrap_or_default(),
            s(&o.order_payment_status).unwrap_or_default(),
        ) {
            ("FULFILLED", _) => OrderStatus::Fulfilled,
            ("IN_PROGRESS", _) => OrderStatus::PartiallyFulfilled,
            (_, "PENDING" | "FAILED") => OrderStatus::Pending,
            _ => OrderStatus::Open,
        }
    };

    let service = step.and_then(|x| t(&x.shipping_service_code));
    let deliver_by = match instruction.and_then(|i| t(&i.max_estimated_delivery_date)) {
        Some(x) => Some(fields::timestamp(
            "fulfillmentStartInstructions[1].maxEstimatedDeliveryDate",
            x,
        )?),
        None => line_deliver_by,
    };

    let null = Scalar::Null;
    // Collected, then built in one go (no tree inserts).
    let mut extras: Vec<(String, String)> = Vec::with_capacity(16);
    for (key, v) in [
        ("legacyOrderId", &o.legacy_order_id),
        ("salesRecordReference", &o.sales_record_reference),
        ("sellerId", &o.seller_id),
        ("orderFulfillmentStatus", &o.order_fulfillment_status),
        ("orderPaymentStatus", &o.order_payment_status),
        ("ebayCollectAndRemitTax", &o.ebay_collect_and_remit_tax),
        (
            "buyer.username",
            o.buyer.as_ref().map_or(&null, |b| &b.username),
        ),
        (
            "cancelStatus.cancelState",
            cancel.map_or(&null, |c| &c.cancel_state),
        ),
        (
            "ebaySupportedFulfillment",
            instruction.map_or(&null, |i| &i.ebay_supported_fulfillment),
        ),
        (
            "shippingCarrierCode",
            step.map_or(&null, |x| &x.shipping_carrier_code),
        ),
        (
            "shipToReferenceId",
            step.map_or(&null, |x| &x.ship_to_reference_id),
        ),
        (
            "minEstimatedDeliveryDate",
            instruction.map_or(&null, |i| &i.min_estimated_delivery_date),
        ),
        (
            "totalMarketplaceFee",
            o.total_marketplace_fee
                .as_ref()
                .map_or(&null, |f| &f.0.value),
        ),
        (
            "program.authenticityVerification",
            o.program
                .as_ref()
                .and_then(|p| p.authenticity_verification.as_ref())
                .map_or(&null, |a| &a.status),
        ),
    ] {
        if let Some(text) = flat(v) {
            extras.push((key.to_string(), text));
        }
    }
    if let Some(kind) = kind {
        extras.push(("fulfillmentInstructionsType".into(), kind.to_string()));
    }

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "ebay".into(),
            external_id: id.to_string(),
            external_number: s(&o.sales_record_reference)
                .map(String::from)
                .or_else(|| o.legacy_order_id.owned()),
            status,
            currency: cur.as_str().to_string(),
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
            note: t(&o.buyer_checkout_notes).map(String::from),
            gift_message,
            extras: extras.into_iter().collect(),
        },
        listing_ids,
        cancellation,
        test: false,
    })
}

/// An `ExtendedContact` (`shipTo`, `buyerRegistrationAddress`) as an
/// address.
fn contact_address(c: &Contact<'_>) -> Address {
    let no_address = ContactAddress::default();
    let a = c.contact_address.as_ref().unwrap_or(&no_address);
    address(
        t(&c.full_name),
        t(&c.company_name),
        t(&a.address_line1),
        t(&a.address_line2),
        t(&a.city),
        t(&a.state_or_province),
        t(&a.postal_code),
        t(&a.country_code).or_else(|| t(&a.country)),
        c.primary_phone.as_ref().and_then(|p| t(&p.phone_number)),
    )
}

/// The order's currency: `pricingSummary.total`'s, else the first amount
/// that names one.
fn order_currency(
    pricing: Option<&PricingSummary<'_>>,
    items: &[Obj<LineItem<'_>>],
) -> Result<Currency, Rejection> {
    fn code<'s>(a: &'s Option<Obj<Amount<'_>>>) -> Option<&'s str> {
        a.as_ref().and_then(|a| t(&a.0.currency))
    }
    if let Some(p) = pricing {
        if let Some(c) = code(&p.total) {
            return fields::currency("pricingSummary.total.currency", c);
        }
        if let Some(c) = code(&p.price_subtotal) {
            return fields::currency("pricingSummary.priceSubtotal.currency", c);
        }
    }
    for (i, item) in items.iter().enumerate() {
        if let Some(c) = code(&item.0.line_item_cost) {
            return fields::currency("currency", c)
                .map_err(|e| within(format_args!("lineItems[{}].lineItemCost", i + 1), e));
        }
    }
    Err(Rejection::new("pricingSummary.total.currency is missing"))
}

/// An `Amount` `{value, currency}` (field `field`): absent or null is
/// zero; a currency other than the order's is refused.
fn amount(
    field: &'static str,
    v: &Option<Obj<Amount<'_>>>,
    cur: Currency,
) -> Result<Decimal, Rejection> {
    let Some(Obj(a)) = v else {
        return Ok(Decimal::ZERO);
    };
    if let Some(code) = t(&a.currency) {
        same_currency(field, "currency", code, cur)?;
    }
    money("value", &a.value, cur).map_err(|e| within(field, e))
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
        assert!(with(&["pricingSummary", "total"], json!("4085.0")).contains(
            "pricingSummary.total: invalid type: string \"4085.0\", expected an amount {value, currency}"
        ));
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
            .contains("lineItems[0].taxes: invalid type: map, expected a sequence"));
        assert!(with(&["lineItems"], json!({}))
            .contains("lineItems: invalid type: map, expected a sequence"));
        assert!(with(&["lineItems", "0"], json!(null))
            .contains("lineItems[0]: invalid type: null, expected a LineItem object"));
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

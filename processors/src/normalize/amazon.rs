//! Amazon: Selling Partner API, Orders API v0.
//!
//! The poller combines two calls into one payload:
//! `{"order": <getOrders Orders[] entry>, "items": [<getOrderItems OrderItems[] entries>]}`
//! (the shapes of `Order` and `OrderItem` in `ordersV0.json`,
//! amzn/selling-partner-api-models). Versioned by `LastUpdateDate`.
//!
//! What the model documents and this mapper relies on:
//! - amounts are `Money` objects `{CurrencyCode, Amount}` with `Amount` a
//!   decimal string; every one of them is optional;
//! - `ItemPrice` is the price of the whole order item, "the selling price
//!   of the item multiplied by the quantity ordered": the unit price is
//!   `ItemPrice / QuantityOrdered`, exact when it divides to 4 decimal
//!   places, otherwise rounded half-even to 4 places (the wire scale) and
//!   the original `ItemPrice` kept in the line's properties; the line total
//!   is computed from `ItemPrice` itself, so it stays exact;
//! - `Pending` orders carry no prices, taxes, gift status or promotions and
//!   no `ShippingAddress`: missing amounts are zero. `OrderTotal` may be
//!   absent too: the currency then comes from the items or the marketplace;
//! - `ShippingAddress` and `BuyerInfo` are restricted data (RDT): without
//!   the token only city/state/postal code/country are present;
//! - `IsGift` is the string `"true"`/`"false"` in the model (booleans are
//!   accepted too).
//!
//! Lines: discount = `PromotionDiscount`, tax = `ItemTax`, total =
//! `ItemPrice - PromotionDiscount + ItemTax`; listing id = `ASIN`. Totals:
//! subtotal = sum of `ItemPrice - PromotionDiscount`, discount = sum of
//! `PromotionDiscount`, shipping = sum of `ShippingPrice - ShippingDiscount`,
//! tax = sum of `ItemTax + ShippingTax`, total = `OrderTotal` (gift wrap,
//! COD fees and the taxes on discounts have no canonical field: they are
//! only in `OrderTotal`). `Canceled` is a cancellation (at
//! `LastUpdateDate`: the API has no cancel time); an item whose buyer asked
//! to cancel (`BuyerRequestedCancel`) holds an open order (`OnHold`).
//! `FulfillmentChannel` `AFN` is fulfilled by Amazon.

use std::fmt;
use std::marker::PhantomData;

use conveyor_schemas::records::{
    Cancellation, Currency, Customer, Order, OrderLine, OrderStatus, Priority, RawOrder, Totals,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::fields::{self, Scalar};
use super::typed::{
    bool_text, checked, flag, flat, money, per_unit, priority_of_code, s, same_currency, t,
    to_money, within, Expecting, Obj, Text,
};
use super::{address, Draft, Rejection};

/// The stored payload: `{"order": <Order>, "items": [<OrderItem>]}` (or
/// `OrderItems` for the list), read in one pass. An Order object on its own
/// (rare) is only recognized here, then read again as an [`AmazonOrder`].
#[derive(Deserialize, Default)]
#[serde(default)]
struct Payload<'a> {
    #[serde(borrow)]
    order: Option<Obj<AmazonOrder<'a>>>,
    #[serde(borrow)]
    items: Option<Items<'a>>,
    #[serde(borrow, rename = "OrderItems")]
    order_items: Option<Items<'a>>,
    /// Set when the payload is an Order object on its own (no items
    /// fetched yet).
    #[serde(rename = "AmazonOrderId")]
    amazon_order_id: Option<serde::de::IgnoredAny>,
}

/// The fields of an SP-API `Order` normalize reads (ordersV0.json); serde
/// skips the rest without building anything.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct AmazonOrder<'a> {
    #[serde(borrow)]
    amazon_order_id: Scalar<'a>,
    #[serde(borrow)]
    purchase_date: Option<Text<'a>>,
    #[serde(borrow)]
    last_update_date: Option<Text<'a>>,
    #[serde(borrow)]
    latest_ship_date: Option<Text<'a>>,
    #[serde(borrow)]
    latest_delivery_date: Option<Text<'a>>,
    #[serde(borrow)]
    order_total: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    ship_service_level: Option<Text<'a>>,
    #[serde(borrow)]
    shipment_service_level_category: Option<Text<'a>>,
    #[serde(borrow)]
    shipping_address: Option<AmazonAddress<'a>>,
    #[serde(borrow)]
    buyer_info: Option<OrderBuyerInfo<'a>>,
    /// Older responses put the buyer fields on the order itself.
    #[serde(borrow)]
    buyer_email: Option<Text<'a>>,
    #[serde(borrow)]
    buyer_name: Option<Text<'a>>,
    // Read as text (`OrderStatus`, `FulfillmentChannel`, `MarketplaceId`)
    // and kept in `extras` as sent.
    #[serde(borrow)]
    marketplace_id: Scalar<'a>,
    #[serde(borrow)]
    sales_channel: Scalar<'a>,
    #[serde(borrow)]
    order_channel: Scalar<'a>,
    #[serde(borrow)]
    order_status: Scalar<'a>,
    #[serde(borrow)]
    fulfillment_channel: Scalar<'a>,
    #[serde(borrow)]
    order_type: Scalar<'a>,
    #[serde(borrow)]
    seller_order_id: Scalar<'a>,
    #[serde(borrow)]
    payment_method: Scalar<'a>,
    #[serde(borrow)]
    is_prime: Scalar<'a>,
    #[serde(borrow)]
    is_business_order: Scalar<'a>,
    #[serde(borrow)]
    is_premium_order: Scalar<'a>,
    #[serde(borrow)]
    is_replacement_order: Scalar<'a>,
    #[serde(borrow)]
    replaced_order_id: Scalar<'a>,
    #[serde(borrow)]
    is_global_express_enabled: Scalar<'a>,
    #[serde(borrow, rename = "IsISPU")]
    is_ispu: Scalar<'a>,
    #[serde(borrow)]
    is_access_point_order: Scalar<'a>,
    #[serde(borrow)]
    has_regulated_items: Scalar<'a>,
    #[serde(borrow)]
    easy_ship_shipment_status: Scalar<'a>,
    #[serde(borrow)]
    earliest_ship_date: Scalar<'a>,
    #[serde(borrow)]
    earliest_delivery_date: Scalar<'a>,
    #[serde(borrow)]
    number_of_items_shipped: Scalar<'a>,
    #[serde(borrow)]
    number_of_items_unshipped: Scalar<'a>,
    #[serde(borrow)]
    is_gift: Scalar<'a>,
}

impl Expecting for Payload<'_> {
    const WHAT: &'static str = "{\"order\": <Order>, \"items\": [<OrderItem>]}";
}

impl Expecting for AmazonOrder<'_> {
    const WHAT: &'static str = "an Order object";
}

/// An `OrderItem` (getOrderItems), the fields normalize reads.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct AmazonItem<'a> {
    #[serde(borrow, rename = "ASIN")]
    asin: Scalar<'a>,
    #[serde(borrow)]
    order_item_id: Scalar<'a>,
    #[serde(borrow, rename = "SellerSKU")]
    seller_sku: Option<Text<'a>>,
    #[serde(borrow)]
    title: Option<Text<'a>>,
    #[serde(borrow)]
    quantity_ordered: Scalar<'a>,
    #[serde(borrow)]
    quantity_shipped: Scalar<'a>,
    #[serde(borrow)]
    condition_id: Scalar<'a>,
    #[serde(borrow)]
    condition_subtype_id: Scalar<'a>,
    #[serde(borrow)]
    condition_note: Scalar<'a>,
    #[serde(borrow)]
    item_price: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    item_tax: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    promotion_discount: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    shipping_price: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    shipping_tax: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    shipping_discount: Option<Obj<MoneyObject<'a>>>,
    #[serde(borrow)]
    promotion_ids: Option<Vec<Scalar<'a>>>,
    #[serde(borrow)]
    is_gift: Scalar<'a>,
    #[serde(borrow)]
    buyer_info: Option<ItemBuyerInfo<'a>>,
    #[serde(borrow)]
    buyer_requested_cancel: Option<BuyerRequestedCancel<'a>>,
}

impl Expecting for AmazonItem<'_> {
    const WHAT: &'static str = "an OrderItem object";
}

/// `items` as stored: the `OrderItems` list, or the whole getOrderItems
/// payload (`OrderItemsList`, `{"OrderItems": [...], ...}`) stored as is.
struct Items<'a>(Vec<AmazonItem<'a>>);

#[derive(Deserialize, Default)]
#[serde(default)]
struct OrderItemsList<'a> {
    #[serde(borrow, rename = "OrderItems")]
    order_items: Option<Vec<Obj<AmazonItem<'a>>>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of OrderItem objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Items<'a>, A::Error> {
                Vec::<Obj<AmazonItem<'a>>>::deserialize(SeqAccessDeserializer::new(seq))
                    .map(|v| Items(Obj::unwrap_all(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Items<'a>, A::Error> {
                OrderItemsList::deserialize(MapAccessDeserializer::new(map))?
                    .order_items
                    .map(|v| Items(Obj::unwrap_all(v)))
                    .ok_or_else(|| A::Error::custom("`OrderItems` is not a list"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An SP-API `Money` object.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct MoneyObject<'a> {
    #[serde(borrow)]
    currency_code: Option<Text<'a>>,
    #[serde(borrow)]
    amount: Scalar<'a>,
}

impl Expecting for MoneyObject<'_> {
    const WHAT: &'static str = "a Money object {CurrencyCode, Amount}";
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase", expecting = "an Address object")]
struct AmazonAddress<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    company_name: Option<Text<'a>>,
    #[serde(borrow)]
    address_line1: Option<Text<'a>>,
    #[serde(borrow)]
    address_line2: Option<Text<'a>>,
    #[serde(borrow)]
    address_line3: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    #[serde(borrow)]
    state_or_region: Option<Text<'a>>,
    #[serde(borrow)]
    postal_code: Option<Text<'a>>,
    #[serde(borrow)]
    country_code: Option<Text<'a>>,
    #[serde(borrow)]
    phone: Option<Text<'a>>,
    #[serde(borrow)]
    address_type: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase", expecting = "a BuyerInfo object")]
struct OrderBuyerInfo<'a> {
    #[serde(borrow)]
    buyer_email: Option<Text<'a>>,
    #[serde(borrow)]
    buyer_name: Option<Text<'a>>,
    #[serde(borrow)]
    purchase_order_number: Option<Text<'a>>,
    #[serde(borrow)]
    buyer_tax_info: Option<BuyerTaxInfo<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "PascalCase",
    expecting = "a BuyerTaxInfo object"
)]
struct BuyerTaxInfo<'a> {
    #[serde(borrow)]
    company_legal_name: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "PascalCase",
    expecting = "an ItemBuyerInfo object"
)]
struct ItemBuyerInfo<'a> {
    #[serde(borrow)]
    gift_message_text: Option<Text<'a>>,
    #[serde(borrow)]
    gift_wrap_level: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(
    default,
    rename_all = "PascalCase",
    expecting = "a BuyerRequestedCancel object"
)]
struct BuyerRequestedCancel<'a> {
    #[serde(borrow)]
    is_buyer_requested_cancel: Scalar<'a>,
    #[serde(borrow)]
    buyer_cancel_reason: Option<Text<'a>>,
}

pub fn parse(raw: &RawOrder) -> Result<Draft, Rejection> {
    let Obj(p): Obj<Payload> = fields::typed("amazon", &raw.payload)?;
    let items = p.items.or(p.order_items).map(|i| i.0).unwrap_or_default();
    let order = match p.order {
        Some(o) => o.0,
        // An Order object on its own (no items fetched yet): rare, read
        // again as an Order.
        None if p.amazon_order_id.is_some() => {
            fields::typed::<Obj<AmazonOrder>>("amazon", &raw.payload)?.0
        }
        None => {
            return Err(Rejection::new(
                "amazon payload is not {\"order\": <Order>, \"items\": [<OrderItem>]}",
            ))
        }
    };
    let id = order
        .amazon_order_id
        .text()
        .ok_or_else(|| Rejection::new("amazon order: `AmazonOrderId` is missing"))?;
    map(&order, &items, id).map_err(|e| Rejection(format!("amazon order {id}: {}", e.0)))
}

/// The order; rejections name fields relative to the order (the caller
/// adds which order).
fn map(order: &AmazonOrder<'_>, items: &[AmazonItem<'_>], id: &str) -> Result<Draft, Rejection> {
    let updated_at = fields::timestamp(
        "LastUpdateDate",
        t(&order.last_update_date).ok_or_else(|| Rejection::new("`LastUpdateDate` is missing"))?,
    )?;
    let created_at = match t(&order.purchase_date) {
        Some(x) => fields::timestamp("PurchaseDate", x)?,
        None => updated_at,
    };
    let cur = order_currency(order, items)?;
    let amazon_status = s(&order.order_status).unwrap_or_default();
    let cancelled = amazon_status.eq_ignore_ascii_case("Canceled");

    let mut lines = Vec::with_capacity(items.len());
    let mut listing_ids = Vec::with_capacity(items.len());
    let mut totals = Sums::default();
    let mut gift_message = None;
    let mut buyer_cancel: Option<Option<&str>> = None;
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let at = |e: Rejection| within(format_args!("OrderItems[{n}]"), e);
        if let Some(bc) = &item.buyer_requested_cancel {
            if buyer_cancel.is_none() && flag(&bc.is_buyer_requested_cancel) == Some(true) {
                buyer_cancel = Some(t(&bc.buyer_cancel_reason));
            }
        }
        let ordered = item.quantity_ordered.int("QuantityOrdered").map_err(at)?;
        if ordered == 0 && cancelled {
            continue; // a cancelled item of a cancelled order: nothing to record
        }
        let quantity = i32::try_from(ordered).map_err(|_| {
            at(Rejection(format!(
                "QuantityOrdered: {ordered} is out of range"
            )))
        })?;
        let m = |key: &'static str, v: &Option<Obj<MoneyObject<'_>>>| {
            money_object(key, v.as_ref().map(|o| &o.0), cur).map_err(at)
        };
        let item_price = m("ItemPrice", &item.item_price)?;
        let item_tax = m("ItemTax", &item.item_tax)?;
        let promotion = m("PromotionDiscount", &item.promotion_discount)?.abs();
        let shipping = m("ShippingPrice", &item.shipping_price)?;
        let shipping_tax = m("ShippingTax", &item.shipping_tax)?;
        let shipping_discount = m("ShippingDiscount", &item.shipping_discount)?.abs();
        let (unit, rounded) = per_unit("ItemPrice", item_price, quantity).map_err(at)?;
        let total = checked("ItemPrice", item_price.checked_sub(promotion)).map_err(at)?;
        let total = checked("ItemTax", total.checked_add(item_tax)).map_err(at)?;
        totals
            .add("ItemPrice", item_price, promotion, item_tax, total)
            .map_err(at)?;
        totals.shipping = checked(
            "ShippingPrice",
            totals
                .shipping
                .checked_add(shipping)
                .and_then(|s| s.checked_sub(shipping_discount)),
        )
        .map_err(at)?;
        totals.shipping_tax =
            checked("ShippingTax", totals.shipping_tax.checked_add(shipping_tax)).map_err(at)?;

        let buyer = item.buyer_info.as_ref();
        if gift_message.is_none() {
            gift_message = buyer
                .and_then(|b| t(&b.gift_message_text))
                .map(String::from);
        }

        // Collected in key order, then built in one go (no tree inserts).
        let mut properties: Vec<(String, String)> = Vec::with_capacity(8);
        for (key, v) in [
            ("ASIN", &item.asin),
            ("ConditionId", &item.condition_id),
            ("ConditionSubtypeId", &item.condition_subtype_id),
            ("ConditionNote", &item.condition_note),
            ("QuantityShipped", &item.quantity_shipped),
        ] {
            if let Some(text) = flat(v) {
                properties.push((key.to_string(), text));
            }
        }
        if let Some(level) = buyer.and_then(|b| t(&b.gift_wrap_level)) {
            properties.push(("GiftWrapLevel".into(), level.to_string()));
        }
        if let Some(g) = flag(&item.is_gift) {
            properties.push(("IsGift".into(), bool_text(g)));
        }
        if let Some(ids) = &item.promotion_ids {
            // The strings of the list, as sent.
            let mut joined: Option<String> = None;
            for id in ids {
                if let Scalar::Text(id) = id {
                    match &mut joined {
                        Some(j) => {
                            j.push(',');
                            j.push_str(id);
                        }
                        None => joined = Some(id.to_string()),
                    }
                }
            }
            if let Some(joined) = joined {
                properties.push(("PromotionIds".into(), joined));
            }
        }
        if rounded {
            // ItemPrice does not divide into 4-decimal unit prices: the unit
            // price is rounded half-even, the exact total is kept here.
            properties.push(("ItemPrice".into(), item_price.normalize().to_string()));
        }
        listing_ids.push(item.asin.owned().into_iter().collect());
        lines.push(OrderLine {
            line_id: item
                .order_item_id
                .owned()
                .unwrap_or_else(|| format!("{id}-{n}")),
            sku: t(&item.seller_sku).unwrap_or_default().to_string(),
            name: t(&item.title).unwrap_or_default().to_string(),
            quantity,
            unit_price: to_money("ItemPrice", unit, cur).map_err(at)?,
            discount: to_money("PromotionDiscount", promotion, cur).map_err(at)?,
            tax: to_money("ItemTax", item_tax, cur).map_err(at)?,
            total: to_money("ItemPrice", total, cur).map_err(at)?,
            requires_shipping: true,
            properties: properties.into_iter().collect(),
        });
    }

    let tax = checked("ItemTax", totals.tax.checked_add(totals.shipping_tax))?;
    let total = match &order.order_total {
        Some(Obj(t)) => money_object("OrderTotal", Some(t), cur)?,
        // Pending orders may have no OrderTotal: the sum of what is known.
        None => checked(
            "OrderTotal",
            totals
                .total
                .checked_add(totals.shipping)
                .and_then(|x| x.checked_add(totals.shipping_tax)),
        )?,
    };
    let order_totals = Totals {
        subtotal: to_money("ItemPrice", totals.subtotal, cur)?,
        discount: to_money("PromotionDiscount", totals.discount, cur)?,
        shipping: to_money("ShippingPrice", totals.shipping, cur)?,
        tax: to_money("ItemTax", tax, cur)?,
        total: to_money("OrderTotal", total, cur)?,
    };

    let ship = order.shipping_address.as_ref();
    let shipping_address = match ship {
        Some(a) => {
            // AddressLine1 is sometimes empty with the street in line 2 or 3.
            let mut street = [
                t(&a.address_line1),
                t(&a.address_line2),
                t(&a.address_line3),
            ]
            .into_iter()
            .flatten();
            let line1 = street.next();
            let mut rest = String::new();
            for part in street {
                if !rest.is_empty() {
                    rest.push_str(", ");
                }
                rest.push_str(part);
            }
            address(
                t(&a.name),
                t(&a.company_name),
                line1,
                Some(rest.as_str()),
                t(&a.city),
                t(&a.state_or_region),
                t(&a.postal_code),
                t(&a.country_code),
                t(&a.phone),
            )
        }
        None => address(None, None, None, None, None, None, None, None, None),
    };
    let buyer = order.buyer_info.as_ref();
    let customer = Customer {
        customer_id: None,
        email: buyer
            .and_then(|b| t(&b.buyer_email))
            .or_else(|| t(&order.buyer_email))
            .map(String::from),
        name: buyer
            .and_then(|b| t(&b.buyer_name))
            .or_else(|| t(&order.buyer_name))
            .or_else(|| ship.and_then(|a| t(&a.name)))
            .unwrap_or_default()
            .to_string(),
        phone: ship.and_then(|a| t(&a.phone)).map(String::from),
    };

    let cancellation = if cancelled {
        Some(Cancellation {
            reason: match buyer_cancel {
                Some(Some(reason)) => format!("buyer requested: {reason}"),
                Some(None) => "buyer requested".to_string(),
                None => "canceled on Amazon".to_string(),
            },
            cancelled_at: updated_at,
            restock: true,
        })
    } else {
        None
    };
    let mut status = match amazon_status {
        "Canceled" => OrderStatus::Cancelled,
        "Pending" | "PendingAvailability" => OrderStatus::Pending,
        "PartiallyShipped" => OrderStatus::PartiallyFulfilled,
        "Shipped" | "InvoiceUnconfirmed" => OrderStatus::Fulfilled,
        "Unfulfillable" => OrderStatus::OnHold,
        _ => OrderStatus::Open,
    };
    if buyer_cancel.is_some() && matches!(status, OrderStatus::Open | OrderStatus::Pending) {
        // The buyer asked to cancel: hold the order until the seller answers.
        status = OrderStatus::OnHold;
    }

    let level = t(&order.ship_service_level);
    let category = t(&order.shipment_service_level_category);
    let is = |c: &str, names: &[&str]| names.iter().any(|n| c.eq_ignore_ascii_case(n));
    let priority = match category {
        Some(c) if is(c, &["nextday", "sameday"]) => Priority::Overnight,
        Some(c) if is(c, &["secondday", "expedited", "priority"]) => Priority::Expedited,
        Some(c) if is(c, &["standard", "freeeconomy", "scheduled"]) => Priority::Standard,
        _ => priority_of_code(level.or(category).unwrap_or_default()),
    };

    // Collected, then built in one go (no tree inserts).
    let mut extras: Vec<(String, String)> = Vec::with_capacity(32);
    for (key, v) in [
        ("MarketplaceId", &order.marketplace_id),
        ("SalesChannel", &order.sales_channel),
        ("OrderChannel", &order.order_channel),
        ("OrderStatus", &order.order_status),
        ("FulfillmentChannel", &order.fulfillment_channel),
        ("OrderType", &order.order_type),
        ("SellerOrderId", &order.seller_order_id),
        ("PaymentMethod", &order.payment_method),
        ("IsPrime", &order.is_prime),
        ("IsBusinessOrder", &order.is_business_order),
        ("IsPremiumOrder", &order.is_premium_order),
        ("IsReplacementOrder", &order.is_replacement_order),
        ("ReplacedOrderId", &order.replaced_order_id),
        ("IsGlobalExpressEnabled", &order.is_global_express_enabled),
        ("IsISPU", &order.is_ispu),
        ("IsAccessPointOrder", &order.is_access_point_order),
        ("HasRegulatedItems", &order.has_regulated_items),
        ("EasyShipShipmentStatus", &order.easy_ship_shipment_status),
        ("EarliestShipDate", &order.earliest_ship_date),
        ("EarliestDeliveryDate", &order.earliest_delivery_date),
        ("NumberOfItemsShipped", &order.number_of_items_shipped),
        ("NumberOfItemsUnshipped", &order.number_of_items_unshipped),
        ("IsGift", &order.is_gift),
    ] {
        if let Some(text) = flat(v) {
            extras.push((key.to_string(), text));
        }
    }
    if let Some(b) = buyer {
        if let Some(po) = t(&b.purchase_order_number) {
            extras.push(("PurchaseOrderNumber".into(), po.to_string()));
        }
        if let Some(name) = b
            .buyer_tax_info
            .as_ref()
            .and_then(|x| t(&x.company_legal_name))
        {
            extras.push(("BuyerTaxInfo.CompanyLegalName".into(), name.to_string()));
        }
    }
    if let Some(kind) = ship.and_then(|a| t(&a.address_type)) {
        extras.push(("ShippingAddress.AddressType".into(), kind.to_string()));
    }
    if let Some(reason) = buyer_cancel {
        extras.push((
            "BuyerRequestedCancel".into(),
            reason.unwrap_or("true").to_string(),
        ));
    }
    let opt_time = |key: &str, v: &Option<Text<'_>>| -> Result<Option<i64>, Rejection> {
        t(v).map(|x| fields::timestamp(key, x)).transpose()
    };

    Ok(Draft {
        order: Order {
            order_id: String::new(),
            channel: "amazon".into(),
            external_id: id.to_string(),
            external_number: Some(id.to_string()),
            status,
            currency: cur.as_str().to_string(),
            customer,
            shipping_address,
            billing_address: None,
            lines,
            totals: order_totals,
            priority,
            shipping_method: level.or(category).map(String::from),
            ship_by: opt_time("LatestShipDate", &order.latest_ship_date)?,
            deliver_by: opt_time("LatestDeliveryDate", &order.latest_delivery_date)?,
            fulfilled_by_channel: s(&order.fulfillment_channel) == Some("AFN"),
            created_at,
            updated_at,
            tags: Vec::new(),
            note: None,
            gift_message,
            extras: extras.into_iter().collect(),
        },
        listing_ids,
        cancellation,
        test: false,
    })
}

/// The order's currency: `OrderTotal.CurrencyCode`, else the first item
/// amount's, else the marketplace's (Pending orders have neither).
fn order_currency(
    order: &AmazonOrder<'_>,
    items: &[AmazonItem<'_>],
) -> Result<Currency, Rejection> {
    if let Some(code) = order
        .order_total
        .as_ref()
        .and_then(|m| t(&m.0.currency_code))
    {
        return fields::currency("OrderTotal.CurrencyCode", code);
    }
    for (i, item) in items.iter().enumerate() {
        for (key, m) in [
            ("ItemPrice", &item.item_price),
            ("ItemTax", &item.item_tax),
            ("ShippingPrice", &item.shipping_price),
            ("PromotionDiscount", &item.promotion_discount),
        ] {
            if let Some(code) = m.as_ref().and_then(|m| t(&m.0.currency_code)) {
                return fields::currency("CurrencyCode", code)
                    .map_err(|e| within(format_args!("OrderItems[{}].{key}", i + 1), e));
            }
        }
    }
    let marketplace = s(&order.marketplace_id).unwrap_or_default();
    marketplace_currency(marketplace)
        .and_then(|c| Currency::new(c).ok())
        .ok_or_else(|| {
            Rejection::new(
                "OrderTotal.CurrencyCode is missing, and no item amount or known MarketplaceId \
                 gives the currency",
            )
        })
}

/// Default currency of the marketplaces conveyor sells on (SP-API
/// "Marketplace IDs" table).
fn marketplace_currency(id: &str) -> Option<&'static str> {
    Some(match id {
        "ATVPDKIKX0DER" => "USD",
        "A2EUQ1WTGCTBG2" => "CAD",
        "A1AM78C64UM0Y8" => "MXN",
        "A1F83G8C2ARO7P" => "GBP",
        "A1PA6795UKMFR9" | "A13V1IB3VIYZZH" | "APJ6JRA9NG5V4" | "A1RKKUPIHCS9HS"
        | "A1805IZSGTT6HS" => "EUR",
        "A1VC38T7YXB528" => "JPY",
        "A39IBJ37TRP1C6" => "AUD",
        _ => return None,
    })
}

/// An SP-API `Money` object `{CurrencyCode, Amount}`: absent or null is
/// zero; a currency other than the order's is refused.
fn money_object(
    field: &'static str,
    v: Option<&MoneyObject<'_>>,
    cur: Currency,
) -> Result<Decimal, Rejection> {
    let Some(m) = v else {
        return Ok(Decimal::ZERO);
    };
    if let Some(code) = t(&m.currency_code) {
        same_currency(field, "CurrencyCode", code, cur)?;
    }
    money("Amount", &m.amount, cur).map_err(|e| within(field, e))
}

#[derive(Default)]
struct Sums {
    subtotal: Decimal,
    discount: Decimal,
    tax: Decimal,
    total: Decimal,
    shipping: Decimal,
    shipping_tax: Decimal,
}

impl Sums {
    fn add(
        &mut self,
        field: &str,
        price: Decimal,
        discount: Decimal,
        tax: Decimal,
        total: Decimal,
    ) -> Result<(), Rejection> {
        self.subtotal = checked(
            field,
            self.subtotal
                .checked_add(price)
                .and_then(|s| s.checked_sub(discount)),
        )?;
        self.discount = checked(field, self.discount.checked_add(discount))?;
        self.tax = checked(field, self.tax.checked_add(tax))?;
        self.total = checked(field, self.total.checked_add(total))?;
        Ok(())
    }
}

/// The SKUs the examples sell (all three mappers): SKU, title, unit price,
/// and a stable number the channel listing ids are derived from.
pub(super) const SKUS: &[(&str, &str, &str, u64)] = &[
    (
        "MTG-DMU-BOOSTER",
        "Dominaria United Draft Booster",
        "4.99",
        1,
    ),
    (
        "PKM-SV1-ETB",
        "Scarlet & Violet Elite Trainer Box",
        "49.99",
        2,
    ),
    (
        "SLEEVE-DS-100",
        "Dragon Shield Matte Sleeves (100)",
        "10.99",
        3,
    ),
    ("DICE-CHX-7", "Chessex 7-Die Set", "12.99", 4),
    ("BINDER-9P", "9-Pocket Zip Binder", "24.99", 5),
];

/// US destinations of the examples: city, state name, state code, ZIP.
pub(super) const PLACES: &[(&str, &str, &str, &str)] = &[
    ("Austin", "Texas", "TX", "78701"),
    ("Portland", "Oregon", "OR", "97205"),
    ("Columbus", "Ohio", "OH", "43215"),
    ("Boston", "Massachusetts", "MA", "02134"),
    ("Denver", "Colorado", "CO", "80202"),
];

/// The ASIN the examples list SKU number `k` under.
pub fn example_asin(k: u64) -> String {
    format!("B0CX{k:06}")
}

/// Sales tax of the examples: 8.25%, to the cent.
pub(super) fn example_tax(amount: Decimal) -> Decimal {
    (amount * Decimal::new(825, 4))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The `n`-th example order as the poller stores it: one `Orders[]` entry of
/// getOrders and its `OrderItems[]` from getOrderItems, field for field as
/// ordersV0.json documents them. Unshipped, seller-fulfilled, US, USD.
pub fn example(n: u64) -> Value {
    let id = format!(
        "11{}-{:07}-{:07}",
        n % 10,
        (n * 7_919 + 1_234_567) % 10_000_000,
        (n * 104_729 + 7_654_321) % 10_000_000
    );
    let (city, _, state, zip) = PLACES[(n % PLACES.len() as u64) as usize];
    let ts = |secs: u64| fields::format_ms((1_763_000_000 + secs) as i64 * 1000);
    let money = |d: Decimal| json!({"CurrencyCode": "USD", "Amount": format!("{:.2}", d)});
    let n_lines = 1 + (n % 3) as usize;
    let shipping_each = if n % 7 == 3 {
        Decimal::new(799, 2)
    } else {
        Decimal::ZERO
    };
    let mut total = Decimal::ZERO;
    let items: Vec<Value> = (0..n_lines)
        .map(|l| {
            let (sku, title, price, k) = SKUS[(n as usize + l * 2) % SKUS.len()];
            let qty = 1 + ((n + l as u64) % 3);
            let unit = Decimal::from_str_exact(price).unwrap_or_default();
            let item_price = unit * Decimal::from(qty);
            // Every 4th order's first item is on a 10%-off promotion.
            let promo = if n % 4 == 1 && l == 0 {
                (item_price * Decimal::new(1, 1)).round_dp(2)
            } else {
                Decimal::ZERO
            };
            let tax = example_tax(item_price - promo);
            total += item_price - promo + tax + shipping_each;
            json!({
                "ASIN": example_asin(k),
                "SellerSKU": sku,
                "OrderItemId": format!("{:014}", 40_000_000_000_000 + n * 10 + l as u64),
                "Title": title,
                "QuantityOrdered": qty,
                "QuantityShipped": 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "ItemPrice": money(item_price),
                "ShippingPrice": money(shipping_each),
                "ItemTax": money(tax),
                "ShippingTax": money(Decimal::ZERO),
                "ShippingDiscount": money(Decimal::ZERO),
                "ShippingDiscountTax": money(Decimal::ZERO),
                "PromotionDiscount": money(promo),
                "PromotionDiscountTax": money(Decimal::ZERO),
                "PromotionIds": if promo.is_zero() { json!([]) } else { json!(["PLM-10OFF"]) },
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": false,
                "SerialNumberRequired": false,
                "BuyerRequestedCancel": {"IsBuyerRequestedCancel": "false", "BuyerCancelReason": ""}
            })
        })
        .collect();
    let (category, level) = match n % 7 {
        3 => ("Expedited", "Exp US D2D Dom"),
        6 => ("NextDay", "NextDay"),
        _ => ("Standard", "Std US D2D Dom"),
    };
    let purchased = n * 60;
    json!({
        "order": {
            "AmazonOrderId": id,
            "PurchaseDate": ts(purchased),
            "LastUpdateDate": ts(purchased + 95),
            "OrderStatus": "Unshipped",
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.com",
            "ShipServiceLevel": level,
            "OrderTotal": money(total),
            "NumberOfItemsShipped": 0,
            "NumberOfItemsUnshipped": n_lines,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "IsReplacementOrder": false,
            "MarketplaceId": "ATVPDKIKX0DER",
            "ShipmentServiceLevelCategory": category,
            "OrderType": "StandardOrder",
            "EarliestShipDate": ts(purchased + 3_600),
            "LatestShipDate": ts(purchased + 2 * 86_400),
            "EarliestDeliveryDate": ts(purchased + 3 * 86_400),
            "LatestDeliveryDate": ts(purchased + 6 * 86_400),
            "IsBusinessOrder": false,
            "IsPrime": n.is_multiple_of(5),
            "IsGlobalExpressEnabled": false,
            "IsPremiumOrder": false,
            "IsSoldByAB": false,
            "IsIBA": false,
            "IsISPU": false,
            "IsAccessPointOrder": false,
            "ShippingAddress": {
                "Name": format!("Sam Buyer{n}"),
                "AddressLine1": format!("{} Main St", 100 + n % 900),
                "AddressLine2": if n.is_multiple_of(4) { Value::from("Apt 4") } else { Value::Null },
                "City": city,
                "StateOrRegion": state,
                "PostalCode": zip,
                "CountryCode": "US",
                "Phone": "+1 555-010-0100",
                "AddressType": "Residential"
            },
            "BuyerInfo": {
                "BuyerEmail": format!("{:x}@marketplace.amazon.com", 0x5eed_0000_u64 + n),
                "BuyerName": format!("Sam Buyer{n}")
            },
            "AutomatedShippingSettings": {"HasAutomatedShippingSettings": false},
            "HasRegulatedItems": false,
            "ElectronicInvoiceStatus": "NotRequired"
        },
        "items": items
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::normalize::testing::catalog;
    use crate::normalize::{normalize, Normalized};
    use conveyor_schemas::records::RawSource;
    use proptest::prelude::*;

    pub(in crate::normalize) fn raw_bytes(channel: &str, payload: Vec<u8>) -> RawOrder {
        RawOrder {
            event_id: format!("{channel}-1"),
            channel: channel.into(),
            external_order_id: "1".into(),
            external_order_number: None,
            source: RawSource::Poller,
            topic_hint: None,
            received_at: 0,
            content_type: "application/json".into(),
            payload,
            source_headers: Default::default(),
        }
    }

    fn raw(v: &Value) -> RawOrder {
        raw_bytes("amazon", serde_json::to_vec(v).unwrap())
    }

    pub(in crate::normalize) fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn cat() -> crate::catalog::Catalog {
        catalog(&[
            ("MTG-DMU-BOOSTER", &[]),
            ("PKM-SV1-ETB", &[]),
            ("SLEEVE-DS-100", &[]),
            ("DICE-CHX-7", &[]),
            ("BINDER-9P", &[]),
            ("CARD-BOOK", &[("amazon", "B00551Q3CS")]),
            ("CBA-OTF-1", &[]),
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

    /// From ordersV0.json, values as published: the getOrders sandbox order
    /// (TEST_CASE_200) with the `ShippingAddress` and `BuyerInfo` of the
    /// getOrders response example (restricted data, present with an RDT),
    /// and the getOrderItems sandbox item.
    fn docs_payload() -> Value {
        json!({
            "order": {
                "AmazonOrderId": "902-1845936-5435065",
                "PurchaseDate": "1970-01-19T03:58:30Z",
                "LastUpdateDate": "1970-01-19T03:58:32Z",
                "OrderStatus": "Unshipped",
                "FulfillmentChannel": "MFN",
                "SalesChannel": "Amazon.com",
                "ShipServiceLevel": "Std US D2D Dom",
                "OrderTotal": {"CurrencyCode": "USD", "Amount": "11.01"},
                "NumberOfItemsShipped": 0,
                "NumberOfItemsUnshipped": 1,
                "PaymentMethod": "Other",
                "PaymentMethodDetails": ["Standard"],
                "IsReplacementOrder": false,
                "MarketplaceId": "ATVPDKIKX0DER",
                "ShipmentServiceLevelCategory": "Standard",
                "OrderType": "StandardOrder",
                "EarliestShipDate": "1970-01-19T03:59:27Z",
                "LatestShipDate": "1970-01-19T04:05:13Z",
                "EarliestDeliveryDate": "1970-01-19T04:06:39Z",
                "LatestDeliveryDate": "1970-01-19T04:15:17Z",
                "IsBusinessOrder": false,
                "IsPrime": false,
                "IsGlobalExpressEnabled": false,
                "IsPremiumOrder": false,
                "IsSoldByAB": false,
                "IsIBA": false,
                "DefaultShipFromLocationAddress": {
                    "Name": "MFNIntegrationTestMerchant", "AddressLine1": "2201 WESTLAKE AVE",
                    "City": "SEATTLE", "StateOrRegion": "WA", "PostalCode": "98121-2778",
                    "CountryCode": "US", "Phone": "+1 480-386-0930 ext. 73824", "AddressType": "Commercial"
                },
                "FulfillmentInstruction": {"FulfillmentSupplySourceId": "sampleSupplySourceId"},
                "IsISPU": false,
                "IsAccessPointOrder": false,
                "ShippingAddress": {
                    "Name": "Michigan address", "AddressLine1": "1 Cross St.", "City": "Canton",
                    "StateOrRegion": "MI", "PostalCode": "48817", "CountryCode": "US"
                },
                "BuyerInfo": {"BuyerEmail": "user@example.com", "BuyerName": "John Doe",
                              "BuyerTaxInfo": {"CompanyLegalName": "A Company Name"},
                              "PurchaseOrderNumber": "1234567890123"},
                "AutomatedShippingSettings": {"HasAutomatedShippingSettings": false},
                "EasyShipShipmentStatus": "PendingPickUp",
                "ElectronicInvoiceStatus": "NotRequired"
            },
            "items": [{
                "ASIN": "B00551Q3CS",
                "OrderItemId": "05015851154158",
                "SellerSKU": "NABetaASINB00551Q3CS",
                "Title": "B00551Q3CS [Card Book]",
                "QuantityOrdered": 1,
                "QuantityShipped": 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "ItemPrice": {"CurrencyCode": "USD", "Amount": "10.00"},
                "ItemTax": {"CurrencyCode": "USD", "Amount": "1.01"},
                "PromotionDiscount": {"CurrencyCode": "USD", "Amount": "0.00"},
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": false,
                "SerialNumberRequired": false,
                "IossNumber": "",
                "DeemedResellerCategory": "IOSS",
                "StoreChainStoreId": "ISPU_StoreId",
                "BuyerRequestedCancel": {"IsBuyerRequestedCancel": "false", "BuyerCancelReason": ""}
            }]
        })
    }

    #[test]
    fn the_documented_order_normalizes() {
        let n = ok(&docs_payload());
        let o = &n.order;
        assert_eq!(o.order_id, "amazon:902-1845936-5435065");
        assert_eq!(o.channel, "amazon");
        assert_eq!(o.status, OrderStatus::Open);
        assert_eq!(o.currency, "USD");
        // 1970-01-19T03:58:32Z
        assert_eq!(o.updated_at, 1_569_512_000);
        assert_eq!(n.version, o.updated_at);
        assert_eq!(o.created_at, 1_569_510_000);
        assert_eq!(o.ship_by, Some(1_569_913_000));
        assert_eq!(o.deliver_by, Some(1_570_517_000));
        assert_eq!(o.lines.len(), 1);
        let l = &o.lines[0];
        // SellerSKU unknown to the catalog: resolved through the ASIN.
        assert_eq!(l.sku, "CARD-BOOK");
        assert_eq!(l.line_id, "05015851154158");
        assert_eq!(l.unit_price.amount, dec("10.00"));
        assert_eq!(l.tax.amount, dec("1.01"));
        assert_eq!(l.total.amount, dec("11.01"));
        assert_eq!(
            l.properties.get("ASIN").map(String::as_str),
            Some("B00551Q3CS")
        );
        assert_eq!(o.totals.subtotal.amount, dec("10.00"));
        assert_eq!(o.totals.tax.amount, dec("1.01"));
        assert_eq!(o.totals.total.amount, dec("11.01"));
        assert_eq!(o.shipping_address.country, "US");
        assert_eq!(o.shipping_address.region.as_deref(), Some("MI"));
        assert_eq!(o.shipping_address.postal_code, "48817");
        assert_eq!(o.customer.name, "John Doe");
        assert_eq!(o.customer.email.as_deref(), Some("user@example.com"));
        assert_eq!(o.priority, Priority::Standard);
        assert_eq!(o.shipping_method.as_deref(), Some("Std US D2D Dom"));
        assert!(!o.fulfilled_by_channel);
        assert_eq!(
            o.extras.get("MarketplaceId").map(String::as_str),
            Some("ATVPDKIKX0DER")
        );
        assert_eq!(o.extras.get("IsPrime").map(String::as_str), Some("false"));
        assert_eq!(
            o.extras.get("PurchaseOrderNumber").map(String::as_str),
            Some("1234567890123")
        );
        assert!(n.cancellation.is_none());
    }

    #[test]
    fn item_price_is_for_the_quantity() {
        let mut v = docs_payload();
        v["items"][0]["QuantityOrdered"] = json!(3);
        v["items"][0]["ItemPrice"]["Amount"] = json!("29.97");
        v["items"][0]["PromotionDiscount"]["Amount"] = json!("3.00");
        v["items"][0]["ItemTax"]["Amount"] = json!("2.22");
        v["items"][0]["ShippingPrice"] = json!({"CurrencyCode": "USD", "Amount": "4.99"});
        v["items"][0]["ShippingDiscount"] = json!({"CurrencyCode": "USD", "Amount": "1.00"});
        v["order"]["OrderTotal"]["Amount"] = json!("33.18");
        let o = ok(&v).order;
        let l = &o.lines[0];
        assert_eq!(l.quantity, 3);
        assert_eq!(l.unit_price.amount, dec("9.99"));
        assert_eq!(l.discount.amount, dec("3.00"));
        assert_eq!(l.total.amount, dec("29.19"));
        assert!(!l.properties.contains_key("ItemPrice"));
        assert_eq!(o.totals.subtotal.amount, dec("26.97"));
        assert_eq!(o.totals.discount.amount, dec("3.00"));
        assert_eq!(o.totals.shipping.amount, dec("3.99"));
        assert_eq!(o.totals.total.amount, dec("33.18"));

        // 10.00 for 3 does not divide: 3.3333 (half-even, 4 places), the
        // exact ItemPrice kept, the total from the exact price.
        v["items"][0]["ItemPrice"]["Amount"] = json!("10.00");
        let o = ok(&v).order;
        let l = &o.lines[0];
        assert_eq!(l.unit_price.amount, dec("3.3333"));
        assert_eq!(
            l.properties.get("ItemPrice").map(String::as_str),
            Some("10")
        );
        assert_eq!(l.total.amount, dec("9.22"));
        assert_eq!(per_unit("p", dec("0.00005"), 2).unwrap(), (dec("0"), true));
        assert_eq!(
            per_unit("p", dec("0.00015"), 2).unwrap(),
            (dec("0.0001"), true)
        );
        assert_eq!(
            per_unit("p", dec("0.0003"), 2).unwrap(),
            (dec("0.0002"), true)
        );
    }

    #[test]
    fn pending_orders_without_prices_or_total() {
        // The getOrders example: Pending, no OrderTotal, no ShippingAddress
        // (so it is only checked by the mapper; finish needs an address to
        // ship to), items without any amounts.
        let v = json!({
            "order": {
                "AmazonOrderId": "902-3159896-1390916", "PurchaseDate": "2017-01-20T19:49:35Z",
                "LastUpdateDate": "2017-01-20T19:49:35Z", "OrderStatus": "Pending",
                "FulfillmentChannel": "MFN", "NumberOfItemsShipped": 0, "NumberOfItemsUnshipped": 0,
                "PaymentMethod": "Other", "PaymentMethodDetails": ["CreditCard", "GiftCertificate"],
                "MarketplaceId": "ATVPDKIKX0DER", "ShipmentServiceLevelCategory": "Standard",
                "OrderType": "StandardOrder", "EarliestShipDate": "2017-01-20T19:51:16Z",
                "LatestShipDate": "2017-01-25T19:49:35Z", "IsBusinessOrder": false, "IsPrime": false,
                "IsAccessPointOrder": false, "IsGlobalExpressEnabled": false, "IsPremiumOrder": false,
                "IsSoldByAB": false, "IsIBA": false
            },
            "items": [{"ASIN": "B00551Q3CS", "OrderItemId": "1", "QuantityOrdered": 2}]
        });
        let d = parse(&raw(&v)).unwrap();
        assert_eq!(d.order.status, OrderStatus::Pending);
        assert_eq!(d.order.currency, "USD", "from the marketplace");
        assert_eq!(d.order.totals.total.amount, Decimal::ZERO);
        assert_eq!(d.order.lines[0].unit_price.amount, Decimal::ZERO);
        assert_eq!(d.order.customer.name, "");
        assert_eq!(d.listing_ids, vec![vec!["B00551Q3CS".to_string()]]);
        // Unknown marketplace and no amounts anywhere: the currency is named.
        let mut v = v;
        v["order"]["MarketplaceId"] = json!("XX");
        assert!(reject(&v).contains("OrderTotal.CurrencyCode is missing"));
    }

    #[test]
    fn fba_orders_need_no_address_and_nulls_are_absent() {
        let v = json!({
            "order": {
                "AmazonOrderId": "113-0000000-0000001", "PurchaseDate": "2024-05-01T10:00:00Z",
                "LastUpdateDate": "2024-05-01T12:00:00+02:00", "OrderStatus": "Shipped",
                "FulfillmentChannel": "AFN", "OrderTotal": {"CurrencyCode": "USD", "Amount": 12.99},
                "ShippingAddress": null, "BuyerInfo": null, "ShipServiceLevel": null,
                "LatestShipDate": null, "brand_new_field": {"x": [1, 2]}
            },
            "items": [{"ASIN": "B0NOTINCAT", "OrderItemId": "9", "QuantityOrdered": 1,
                       "SellerSKU": null, "Title": null, "ItemPrice": null, "unknown": 1}]
        });
        let n = ok(&v);
        let o = &n.order;
        assert!(o.fulfilled_by_channel);
        assert_eq!(o.status, OrderStatus::Fulfilled);
        assert_eq!(o.updated_at, 1_714_557_600_000, "12:00+02:00 is 10:00 UTC");
        assert_eq!(o.totals.total.amount, dec("12.99"));
        assert_eq!(o.lines[0].sku, "", "unknown SKU kept as sent for FBA");
        assert_eq!(o.ship_by, None);
        assert_eq!(o.priority, Priority::Standard);
        assert_eq!(o.shipping_address.line1, "");
    }

    #[test]
    fn cancelled_orders_give_a_cancellation() {
        let mut v = docs_payload();
        v["order"]["OrderStatus"] = json!("Canceled");
        v["order"]["ShippingAddress"] = Value::Null;
        v["items"][0]["QuantityOrdered"] = json!(0);
        v["items"][0]["BuyerRequestedCancel"] = json!({"IsBuyerRequestedCancel": "true", "BuyerCancelReason": "Found cheaper somewhere else."});
        let n = ok(&v);
        assert_eq!(n.order.status, OrderStatus::Cancelled);
        assert!(n.order.lines.is_empty(), "the cancelled item was dropped");
        let c = n.cancellation.unwrap();
        assert_eq!(c.reason, "buyer requested: Found cheaper somewhere else.");
        assert_eq!(c.cancelled_at, n.order.updated_at);
        assert!(c.restock);
        // A zero quantity on an order that is not cancelled is kept for
        // finish to refuse.
        v["order"]["OrderStatus"] = json!("Unshipped");
        v["order"]["ShippingAddress"] = docs_payload()["order"]["ShippingAddress"].clone();
        assert!(reject(&v).contains("quantity 0 must be greater than 0"));
        // A pending buyer cancel request holds the order.
        v["items"][0]["QuantityOrdered"] = json!(1);
        let n = ok(&v);
        assert_eq!(n.order.status, OrderStatus::OnHold);
        assert!(n.cancellation.is_none());
    }

    #[test]
    fn gifts_priorities_and_addresses() {
        let mut v = docs_payload();
        v["items"][0]["IsGift"] = json!(true);
        v["items"][0]["BuyerInfo"] =
            json!({"GiftMessageText": "For you!", "GiftWrapLevel": "Classic"});
        v["order"]["ShipmentServiceLevelCategory"] = json!("NextDay");
        v["order"]["ShippingAddress"] = json!({
            "Name": "Jane Roe", "CompanyName": "Acme", "AddressLine1": "", "AddressLine2": "500 Oak Ave",
            "AddressLine3": "Floor 2", "City": "Columbus", "StateOrRegion": "Ohio",
            "PostalCode": "43215-1234", "CountryCode": "us", "Phone": "555-0100"
        });
        let o = ok(&v).order;
        assert_eq!(o.gift_message.as_deref(), Some("For you!"));
        assert_eq!(
            o.lines[0].properties.get("IsGift").map(String::as_str),
            Some("true")
        );
        assert_eq!(o.priority, Priority::Overnight);
        let a = &o.shipping_address;
        assert_eq!(
            (a.line1.as_str(), a.line2.as_deref()),
            ("500 Oak Ave", Some("Floor 2"))
        );
        assert_eq!(a.company.as_deref(), Some("Acme"));
        assert_eq!(
            (a.region.as_deref(), a.country.as_str()),
            (Some("OH"), "US")
        );
        assert_eq!(a.postal_code, "43215-1234");
        assert_eq!(o.customer.phone.as_deref(), Some("555-0100"));
        assert_eq!(priority_of_code("UPSNextDayAir"), Priority::Overnight);
        assert_eq!(
            priority_of_code("FedExPriorityOvernight"),
            Priority::Overnight
        );
        assert_eq!(priority_of_code("USPSPriority"), Priority::Expedited);
        assert_eq!(priority_of_code("UPS2ndDayAir"), Priority::Expedited);
        assert_eq!(priority_of_code("USPSGroundAdvantage"), Priority::Standard);
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let base = docs_payload();
        let with = |path: &[&str], value: Value| {
            let mut v = base.clone();
            set(&mut v, path, value);
            reject(&v)
        };
        assert!(
            with(&["order", "LastUpdateDate"], Value::Null).contains("`LastUpdateDate` is missing")
        );
        assert!(with(&["order", "LastUpdateDate"], json!("yesterday")).contains("LastUpdateDate"));
        assert!(with(&["order", "AmazonOrderId"], json!({})).contains("AmazonOrderId"));
        assert!(with(&["order", "OrderTotal"], json!("11.01"))
            .contains("order.OrderTotal: invalid type: string \"11.01\", expected a Money object"));
        assert!(
            with(&["order", "OrderTotal", "CurrencyCode"], json!("dollars"))
                .contains("OrderTotal.CurrencyCode")
        );
        assert!(with(&["items", "0", "ItemPrice", "Amount"], json!("ten"))
            .contains("OrderItems[1].ItemPrice.Amount"));
        assert!(
            with(&["items", "0", "ItemPrice", "CurrencyCode"], json!("EUR"))
                .contains("OrderItems[1].ItemPrice is in EUR but the order is in USD")
        );
        assert!(with(&["items", "0", "QuantityOrdered"], json!("many")).contains("QuantityOrdered"));
        assert!(
            with(&["items", "0", "QuantityOrdered"], json!(1u64 << 40)).contains("out of range")
        );
        assert!(with(&["items", "0"], json!("x"))
            .contains("items[0]: invalid type: string \"x\", expected an OrderItem object"));
        assert!(with(&["items"], json!(7))
            .contains("items: invalid type: integer `7`, expected a list of OrderItem objects"));
        assert!(with(&["items"], json!({"OrderItems": 7})).contains("items.OrderItems"));
        assert!(with(&["items"], json!({"NextToken": "x"})).contains("`OrderItems` is not a list"));
        assert!(with(&["order", "LatestShipDate"], json!("soon")).contains("LatestShipDate"));
        let mut v = base.clone();
        v["items"][0]["ASIN"] = json!("B0UNKNOWN");
        assert!(reject(&v).contains("listing id B0UNKNOWN"));
        let mut v = base;
        v["order"]["ShippingAddress"] = Value::Null;
        assert!(reject(&v).contains("shipping address"));
    }

    #[test]
    fn stored_shapes_all_read_the_same() {
        let base = parse(&raw(&docs_payload())).unwrap();
        // The whole getOrderItems payload stored as `items`, or the list
        // under `OrderItems`.
        let mut v = docs_payload();
        v["items"] = json!({"OrderItems": v["items"].clone(), "NextToken": null,
                            "AmazonOrderId": "902-1845936-5435065"});
        assert_eq!(parse(&raw(&v)).unwrap(), base);
        let mut v = docs_payload();
        v["OrderItems"] = v["items"].take();
        v.as_object_mut().unwrap().remove("items");
        assert_eq!(parse(&raw(&v)).unwrap(), base);
        // An Order on its own: no lines yet.
        let d = parse(&raw(&docs_payload()["order"])).unwrap();
        assert_eq!(d.order.external_id, "902-1845936-5435065");
        assert!(d.order.lines.is_empty());
        assert_eq!(d.order.totals.total.amount, dec("11.01"));
        assert!(reject(&json!({"items": []})).contains("is not {\"order\""));
        // A JSON array is not read positionally as an object.
        let d = docs_payload();
        assert!(reject(&json!([d["order"], d["items"]]))
            .contains("amazon payload is not a JSON object"));
        let mut v = docs_payload();
        v["items"][0] = json!([]);
        assert!(reject(&v).contains("items[0]: invalid type: sequence, expected an OrderItem"));
    }

    #[test]
    fn text_is_borrowed_unless_escaped() {
        use std::borrow::Cow;
        let plain: Option<Text> = serde_json::from_str(r#""Jane Roe""#).unwrap();
        assert!(matches!(plain, Some(Text(Cow::Borrowed("Jane Roe")))));
        let escaped: Option<Text> = serde_json::from_str(r#""Jane \"JR\" Ro\u00e9""#).unwrap();
        assert!(matches!(&escaped, Some(Text(Cow::Owned(s))) if s == "Jane \"JR\" Ro\u{e9}"));
        let null: Option<Text> = serde_json::from_str("null").unwrap();
        assert!(null.is_none());
        assert!(serde_json::from_str::<Option<Text>>("5").is_err());
        // Escaped text in a payload comes out as sent.
        let mut v = docs_payload();
        v["items"][0]["Title"] = json!("Card \"Book\" \u{e9}");
        assert_eq!(ok(&v).order.lines[0].name, "Card \"Book\" \u{e9}");
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bytes in [
            &b""[..], b"null", b"[]", b"{}", b"{\"order\":[]}", b"{\"order\":{}}", b"\xff\xfe",
            b"{\"order\":{\"AmazonOrderId\":\"1\",\"LastUpdateDate\":\"2024-01-01T00:00:00Z\"},\"items\":[null]}",
        ] {
            let e = normalize(&raw_bytes("amazon", bytes.to_vec()), &cat()).unwrap_err();
            assert!(!e.0.is_empty());
        }
        // Amounts near the limit: sums that would overflow are refused.
        let mut v = docs_payload();
        v["items"][0]["QuantityOrdered"] = json!(i32::MAX);
        v["items"][0]["ItemPrice"]["Amount"] = json!("99999999999999999999.9999");
        v["items"][0]["ItemTax"]["Amount"] = json!("99999999999999999999.9999");
        assert!(reject(&v).contains("decimal(24, 4)"));
    }

    #[test]
    fn examples_normalize() {
        let c = cat();
        for i in 0..50 {
            let v = example(i);
            let n = normalize(&raw(&v), &c).unwrap_or_else(|e| panic!("example({i}): {e}"));
            let o = &n.order;
            assert!((1..=3).contains(&o.lines.len()));
            let sum: Decimal = o.lines.iter().map(|l| l.total.amount).sum();
            assert_eq!(
                sum + o.totals.shipping.amount,
                o.totals.total.amount,
                "example({i})"
            );
            assert_eq!(o.shipping_address.country, "US");
            assert!(o.lines.iter().all(|l| SKUS.iter().any(|s| s.0 == l.sku)));
            assert_eq!(example(i), v, "deterministic");
        }
        assert_eq!(
            example(6)["order"]["ShipmentServiceLevelCategory"],
            "NextDay"
        );
        assert_eq!(ok(&example(6)).order.priority, Priority::Overnight);
    }

    /// Sets the value at `path` (object keys or array indices).
    pub(in crate::normalize) fn set(v: &mut Value, path: &[&str], value: Value) {
        let mut at = v;
        for p in path {
            at = match (p.parse::<usize>(), at) {
                (Ok(i), Value::Array(a)) => &mut a[i],
                (_, other) => &mut other[*p],
            };
        }
        *at = value;
    }

    /// Replaces the `k`-th node (pre-order) of `v` with `with`.
    pub(in crate::normalize) fn replace_nth(v: &mut Value, k: &mut usize, with: &Value) -> bool {
        if *k == 0 {
            *v = with.clone();
            return true;
        }
        *k -= 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, k, with)),
            Value::Object(o) => o.values_mut().any(|x| replace_nth(x, k, with)),
            _ => false,
        }
    }

    /// Values a hostile or buggy sender might put anywhere.
    pub(in crate::normalize) fn odd_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!("")),
            Just(json!("x")),
            Just(json!(true)),
            Just(json!([])),
            Just(json!({})),
            Just(json!([null, {}])),
            Just(json!(0)),
            Just(json!(-1)),
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(1.5e300)),
            Just(json!("-0.00001")),
            Just(json!("99999999999999999999.9999")),
            Just(json!("1e400")),
            Just(json!("2024-13-45T99:99:99Z")),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ]
    }

    /// Byte edits: (position, new byte, delete instead?).
    pub(in crate::normalize) fn mutate_bytes(
        mut bytes: Vec<u8>,
        edits: &[(usize, u8, u8)],
    ) -> Vec<u8> {
        for &(pos, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = pos % bytes.len();
            match kind % 3 {
                0 => bytes[at] = byte,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    }

    pub(in crate::normalize) const JSONISH: &[u8] = b"{}[]\":,0123456789.-eE tnfalsu\\";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn mutated_examples_never_panic(
            n in 0u64..50,
            node in 0usize..250,
            with in odd_value(),
            edits in proptest::collection::vec((any::<usize>(), proptest::sample::select(JSONISH), any::<u8>()), 0..4),
        ) {
            let mut v = example(n);
            let mut k = node;
            replace_nth(&mut v, &mut k, &with);
            let c = cat();
            let _ = normalize(&raw(&v), &c);
            let bytes = mutate_bytes(serde_json::to_vec(&v).unwrap(), &edits);
            let _ = normalize(&raw_bytes("amazon", bytes), &c);
        }
    }
}

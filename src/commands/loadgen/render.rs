//! Payloads in each channel's own raw format: the mapper's documented
//! example order `n` (the shape the channel's API or export produces),
//! with the load generator's choices written into it: SKUs drawn from the
//! skewed catalog, a destination, Amazon FBA, and the edits an update or a
//! cancellation makes. What normalize then reads is exactly what a real
//! connector would publish for such an order.

use serde_json::{json, Value};

/// The channels the load generator speaks.
pub const CHANNELS: &[&str] = &["shopify", "amazon", "tiktok", "ebay", "csv"];

/// One version of an order: the first, a later one that changes nothing
/// allocation reads, or its cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Create,
    /// The `k`-th update (k >= 1): update time moved k x 10 s, a note.
    Update(u32),
    /// Cancelled, update time moved past every update.
    Cancel,
}

/// A payload normalize must refuse (it goes to the DLQ with its reason;
/// a webhook receiver may refuse it at the edge with a 4xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// JSON cut off halfway.
    Truncated,
    /// A well-formed order without any line.
    NoLines,
}

/// What goes into the order beyond the example's own fields.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    /// SKUs for the example's distinct SKUs, in order of appearance
    /// (reused when the example has more distinct SKUs than given).
    pub skus: &'a [String],
    pub zip: &'a str,
    pub state: &'a str,
    /// Amazon only: fulfilled by Amazon (AFN).
    pub fba: bool,
}

/// A rendered payload with the ids a connector puts in the envelope.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The envelope's `external_order_id` (the record key).
    pub external_id: String,
    /// The id normalize gives the order: `channel:external id`, where a
    /// CSV import's channel is its source (`tcgplayer:TCG-100001`).
    pub order_id: String,
    pub payload: Vec<u8>,
}

fn ids(channel: &str, doc: &Value) -> (String, String) {
    let external = external_id(channel, doc);
    if channel == "csv" {
        let source = doc["source"].as_str().unwrap_or("csv");
        let id = format!("{source}:{external}");
        (id.clone(), id)
    } else {
        (external.clone(), format!("{channel}:{external}"))
    }
}

/// The example order `n` of `channel` shaped by `shape`, as version `v`.
/// None for an unknown channel.
pub fn order(channel: &str, n: u64, shape: &Shape<'_>, v: Version) -> Option<Rendered> {
    let mut doc = example(channel, n)?;
    let (external_id, order_id) = ids(channel, &doc);
    substitute_skus(&mut doc, sku_key(channel), shape.skus);
    substitute_place(&mut doc, shape.zip, shape.state);
    if channel == "amazon" && shape.fba {
        doc["order"]["FulfillmentChannel"] = json!("AFN");
    }
    match v {
        Version::Create => {}
        Version::Update(k) => {
            bump_updated(channel, &mut doc, i64::from(k) * 10);
            if channel == "shopify" {
                doc["note"] = json!(format!("customer asked for gift wrap (update {k})"));
            }
        }
        Version::Cancel => {
            bump_updated(channel, &mut doc, 3_600);
            cancel(channel, &mut doc);
        }
    }
    let payload = serde_json::to_vec(&doc).ok()?;
    Some(Rendered {
        external_id,
        order_id,
        payload,
    })
}

/// A payload of `channel` that normalize refuses, in the shape of order `n`.
pub fn bad(channel: &str, n: u64, kind: Bad) -> Option<Rendered> {
    let mut doc = example(channel, n)?;
    let (external_id, order_id) = ids(channel, &doc);
    let payload = match kind {
        Bad::Truncated => {
            let full = serde_json::to_vec(&doc).ok()?;
            full[..full.len() / 2].to_vec()
        }
        Bad::NoLines => {
            let lines = match channel {
                "shopify" | "tiktok" => &mut doc["line_items"],
                "amazon" => &mut doc["items"],
                "ebay" => &mut doc["lineItems"],
                _ => &mut doc["lines"],
            };
            *lines = json!([]);
            serde_json::to_vec(&doc).ok()?
        }
    };
    Some(Rendered {
        external_id,
        order_id,
        payload,
    })
}

fn example(channel: &str, n: u64) -> Option<Value> {
    conveyor_processors::normalize::example_payload(channel, n)
}

/// The channel's order id as its connector keys the raw record.
fn external_id(channel: &str, doc: &Value) -> String {
    let v = match channel {
        "amazon" => &doc["order"]["AmazonOrderId"],
        "ebay" => &doc["orderId"],
        "csv" => &doc["order_number"],
        _ => &doc["id"],
    };
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The key each channel names a line's seller SKU with.
fn sku_key(channel: &str) -> &'static str {
    match channel {
        "amazon" => "SellerSKU",
        "tiktok" => "seller_sku",
        _ => "sku",
    }
}

/// Replaces each distinct SKU under `key` with the next of `skus`, the same
/// replacement wherever the example repeats a SKU (TikTok lists one line
/// per unit).
fn substitute_skus(doc: &mut Value, key: &str, skus: &[String]) {
    if skus.is_empty() {
        return;
    }
    let mut seen: Vec<String> = Vec::new();
    walk(doc, &mut |k, v| {
        if k != key {
            return;
        }
        let Value::String(old) = v else { return };
        let i = match seen.iter().position(|s| s == old) {
            Some(i) => i,
            None => {
                seen.push(old.clone());
                seen.len() - 1
            }
        };
        *v = Value::String(skus[i % skus.len()].clone());
    });
}

/// Every postal code and state code in the order becomes the destination's
/// (the buyer's address; the examples have no other US addresses that
/// matter to allocation or routing).
fn substitute_place(doc: &mut Value, zip: &str, state: &str) {
    walk(doc, &mut |k, v| match k {
        "zip" | "PostalCode" | "postal_code" | "postalCode" => *v = json!(zip),
        "province_code" | "StateOrRegion" | "stateOrProvince" | "region" => *v = json!(state),
        _ => {}
    });
}

fn walk(v: &mut Value, f: &mut impl FnMut(&str, &mut Value)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                f(k, child);
                walk(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, f);
            }
        }
        _ => {}
    }
}

/// Moves the channel's "last updated" time `secs` later (the mappers order
/// versions by it).
fn bump_updated(channel: &str, doc: &mut Value, secs: i64) {
    let field = match channel {
        "amazon" => &mut doc["order"]["LastUpdateDate"],
        "tiktok" => {
            let t = doc["update_time"].as_i64().unwrap_or(0);
            doc["update_time"] = json!(t + secs);
            return;
        }
        "ebay" => &mut doc["lastModifiedDate"],
        _ => &mut doc["updated_at"],
    };
    if let Some(t) = field
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        let later = t.as_millisecond() + secs * 1000;
        *field = json!(conveyor_processors::normalize::fields::format_ms(later));
    }
}

fn cancel(channel: &str, doc: &mut Value) {
    match channel {
        "shopify" => {
            let at = doc["updated_at"].clone();
            doc["cancelled_at"] = at;
            doc["cancel_reason"] = json!("customer");
        }
        "amazon" => doc["order"]["OrderStatus"] = json!("Canceled"),
        "tiktok" => {
            doc["status"] = json!("CANCELLED");
            let at = doc["update_time"].clone();
            doc["cancel_time"] = at;
        }
        "ebay" => {
            doc["cancelStatus"] = json!({"cancelState": "CANCELED", "cancelRequests": []});
        }
        _ => doc["status"] = json!("cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_processors::catalog::Catalog;
    use conveyor_processors::normalize::normalize;
    use conveyor_schemas::records::{CatalogSku, RawOrder, RawSource};

    fn catalog(skus: &[String]) -> Catalog {
        Catalog::from_skus(skus.iter().map(|s| CatalogSku {
            sku: s.clone(),
            name: format!("Item {s}"),
            weight_grams: 100,
            length_mm: None,
            width_mm: None,
            height_mm: None,
            declared_value: None,
            hazmat: None,
            bin_location: None,
            listings: Vec::new(),
            updated_at: 1,
        }))
    }

    fn raw(channel: &str, r: &Rendered) -> RawOrder {
        RawOrder {
            event_id: format!("{channel}:t:{}", r.external_id),
            channel: channel.into(),
            external_order_id: r.external_id.clone(),
            external_order_number: None,
            source: RawSource::Poller,
            topic_hint: (channel == "csv")
                .then(|| conveyor_processors::normalize::csv::FORMAT.to_string()),
            received_at: 0,
            content_type: "application/json".into(),
            payload: r.payload.clone(),
            source_headers: Default::default(),
        }
    }

    fn skus() -> Vec<String> {
        vec!["SKU-0007".into(), "SKU-0100".into(), "SKU-0003".into()]
    }

    fn shape(skus: &[String], fba: bool) -> Shape<'_> {
        Shape {
            skus,
            zip: "98101",
            state: "WA",
            fba,
        }
    }

    #[test]
    fn every_channel_normalizes_with_the_chosen_skus_and_destination() {
        let skus = skus();
        let cat = catalog(&skus);
        for ch in CHANNELS {
            for n in [1_000_000u64, 1_000_001, 1_000_002] {
                let r = order(ch, n, &shape(&skus, false), Version::Create).unwrap();
                let got = normalize(&raw(ch, &r), &cat).unwrap_or_else(|e| panic!("{ch} {n}: {e}"));
                let o = &got.order;
                assert_eq!(o.order_id, r.order_id, "{ch}: the id loadgen expects");
                assert!(!o.lines.is_empty(), "{ch}");
                for l in &o.lines {
                    assert!(skus.contains(&l.sku), "{ch}: line sku {} not chosen", l.sku);
                }
                assert_eq!(o.shipping_address.postal_code, "98101", "{ch}");
                assert!(got.cancellation.is_none(), "{ch}");
            }
        }
    }

    #[test]
    fn updates_come_later_and_cancellations_cancel() {
        let skus = skus();
        let cat = catalog(&skus);
        for ch in CHANNELS {
            let s = shape(&skus, false);
            let first =
                normalize(&raw(ch, &order(ch, 5, &s, Version::Create).unwrap()), &cat).unwrap();
            let upd = normalize(
                &raw(ch, &order(ch, 5, &s, Version::Update(2)).unwrap()),
                &cat,
            )
            .unwrap();
            assert!(
                upd.order.updated_at > first.order.updated_at,
                "{ch}: update not later"
            );
            assert_eq!(upd.order.order_id, first.order.order_id, "{ch}");
            let c = normalize(&raw(ch, &order(ch, 5, &s, Version::Cancel).unwrap()), &cat).unwrap();
            assert!(c.cancellation.is_some(), "{ch}: not a cancellation");
            assert!(c.order.updated_at > upd.order.updated_at, "{ch}");
        }
    }

    #[test]
    fn fba_marks_amazon_orders_channel_fulfilled() {
        let skus = skus();
        let r = order("amazon", 9, &shape(&skus, true), Version::Create).unwrap();
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["order"]["FulfillmentChannel"], "AFN");
    }

    #[test]
    fn bad_payloads_are_refused_with_a_reason() {
        let cat = catalog(&skus());
        for ch in CHANNELS {
            for kind in [Bad::Truncated, Bad::NoLines] {
                let r = bad(ch, 11, kind).unwrap();
                let e = normalize(&raw(ch, &r), &cat).expect_err(ch);
                assert!(!e.0.is_empty(), "{ch}: {kind:?}");
            }
        }
    }
}

//! normalize: raw channel payloads to the canonical [`Order`].
//!
//! Two layers, both pure:
//! - a mapper per channel ([`shopify`], [`amazon`], [`tiktok`], [`ebay`],
//!   [`csv`]) reads the payload as the vendor documents it (optional fields
//!   absent, nulls, unknown extra fields all accepted) into a [`Draft`]:
//!   money exact, timestamps in UTC millis, text as sent;
//! - [`finish`] makes every channel's draft canonical the same way: SKUs
//!   resolved through the [`Catalog`], country/region/postal codes to ISO
//!   forms, and validation (quantity > 0, one ISO currency, a known SKU and a
//!   shippable address for shippable lines). A refusal is a [`Rejection`]
//!   whose text tells an operator what to fix; the processor sends it to
//!   `orders.dlq`.
//!
//! Which version of an order wins (updates, cancellations, redeliveries) is
//! the processor's business ([`processor`]), because it needs keyed state.

pub mod amazon;
pub mod csv;
pub mod ebay;
pub mod fields;
pub mod processor;
pub mod shopify;
pub mod tiktok;
mod typed;

use std::collections::BTreeMap;

use conveyor_schemas::records::{Address, Cancellation, Currency, Order, RawOrder};

use crate::catalog::Catalog;
pub use conveyor_runtime::config::OrderNumberField;

/// Why a payload cannot become an order: a sentence an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

impl Rejection {
    pub fn new(reason: impl Into<String>) -> Rejection {
        Rejection(reason.into())
    }
}

/// A channel mapper's output: the order as the channel describes it, before
/// catalog resolution and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// `order_id`, `channel` and `external_id` set; line SKUs as sent (maybe
    /// empty); addresses with text as sent.
    pub order: Order,
    /// Per line (same order as `order.lines`): the channel's listing ids to
    /// resolve the SKU with when the line has none the catalog knows
    /// (Shopify variant id, ASIN, TikTok sku_id, eBay legacy item id).
    pub listing_ids: Vec<Vec<String>>,
    /// Set when the channel says the order is cancelled.
    pub cancellation: Option<Cancellation>,
    /// A test order (Shopify `test`, sandbox marketplaces): flagged, still
    /// processed, so analysts can filter it out.
    pub test: bool,
}

/// A canonical order ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub order: Order,
    pub cancellation: Option<Cancellation>,
    /// The channel's version of the order: `updated_at` in millis.
    pub version: i64,
}

/// Extras key recording the catalog version a normalized order used.
pub const CATALOG_VERSION_EXTRA: &str = "conveyor.catalog_version";

/// How fields are mapped where the config offers a choice (see
/// `[channels.<channel>]`): part of the processor's config version, so a
/// change re-maps old orders only when normalize is replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mapping {
    pub shopify_order_number: OrderNumberField,
}

impl Mapping {
    pub fn from_config(config: &conveyor_runtime::config::Config) -> Mapping {
        Mapping {
            shopify_order_number: config.channels.shopify.order_number_field,
        }
    }
}

/// Maps one raw envelope with its channel's mapper, then [`finish`]es it.
pub fn normalize(raw: &RawOrder, catalog: &Catalog) -> Result<Normalized, Rejection> {
    normalize_with(raw, catalog, Mapping::default())
}

/// [`normalize`] with the configured field choices.
pub fn normalize_with(
    raw: &RawOrder,
    catalog: &Catalog,
    mapping: Mapping,
) -> Result<Normalized, Rejection> {
    let draft = match raw.channel.as_str() {
        "shopify" => shopify::parse_with(raw, mapping.shopify_order_number)?,
        "amazon" => amazon::parse(raw)?,
        "tiktok" => tiktok::parse(raw)?,
        "ebay" => ebay::parse(raw)?,
        "csv" => csv::parse(raw)?,
        other => {
            return Err(Rejection::new(format!(
                "channel `{other}` has no mapper (known: shopify, amazon, tiktok, ebay, csv)"
            )))
        }
    };
    finish(draft, catalog)
}

/// The `n`-th example raw record of `channel` (each mapper's `example`,
/// in the envelope a connector would publish): for tests, benchmarks,
/// fuzzing seeds and the demo.
pub fn example_raw(channel: &str, n: u64) -> Option<RawOrder> {
    let payload = example_payload(channel, n)?;
    Some(RawOrder {
        event_id: format!("{channel}:example:{n}"),
        channel: channel.to_string(),
        external_order_id: n.to_string(),
        external_order_number: None,
        source: conveyor_schemas::records::RawSource::Poller,
        topic_hint: None,
        received_at: 0,
        content_type: "application/json".into(),
        payload: serde_json::to_vec(&payload).unwrap_or_default(),
        source_headers: BTreeMap::new(),
    })
}

/// The `n`-th example payload of `channel` (each mapper's `example`), as
/// the channel's API or export lays it out.
pub fn example_payload(channel: &str, n: u64) -> Option<serde_json::Value> {
    Some(match channel {
        "shopify" => shopify::example(n),
        "amazon" => amazon::example(n),
        "tiktok" => tiktok::example(n),
        "ebay" => ebay::example(n),
        "csv" => csv::example(n),
        _ => return None,
    })
}

/// Parses a JSON payload, naming the channel in the error.
pub fn json_payload(raw: &RawOrder) -> Result<serde_json::Value, Rejection> {
    serde_json::from_slice(&raw.payload).map_err(|e| {
        Rejection::new(format!(
            "{} payload is not JSON ({e}); the connector stored it as received",
            raw.channel
        ))
    })
}

/// Canonical form and validation, the same for every channel.
pub fn finish(draft: Draft, catalog: &Catalog) -> Result<Normalized, Rejection> {
    let Draft {
        mut order,
        listing_ids,
        cancellation,
        test,
    } = draft;
    let cancelled = cancellation.is_some();
    if order.external_id.trim().is_empty() {
        return Err(Rejection::new("order has no channel order id"));
    }
    order.order_id = format!("{}:{}", order.channel, order.external_id);
    let currency = Currency::new(&order.currency)
        .map_err(|e| Rejection::new(format!("order currency: {e}")))?;
    if !cancelled && order.lines.is_empty() {
        return Err(Rejection::new(
            "order has no lines with a quantity; nothing to fulfil",
        ));
    }

    let mut ships = false;
    for (i, line) in order.lines.iter_mut().enumerate() {
        let n = i + 1;
        if line.quantity <= 0 {
            return Err(Rejection::new(format!(
                "order line {n} ({}): quantity {} must be greater than 0",
                describe_line(&line.sku, &line.name),
                line.quantity
            )));
        }
        for (what, m) in [
            ("unit_price", &line.unit_price),
            ("discount", &line.discount),
            ("tax", &line.tax),
            ("total", &line.total),
        ] {
            if m.currency != currency {
                return Err(Rejection::new(format!(
                    "order line {n}: {what} is in {} but the order is in {currency}",
                    m.currency
                )));
            }
        }
        let ids = listing_ids.get(i).map(Vec::as_slice).unwrap_or(&[]);
        match catalog.resolve(&order.channel, Some(&line.sku), ids) {
            Some(entry) => {
                line.sku = entry.sku.clone();
                if line.name.trim().is_empty() {
                    line.name = entry.name.clone();
                }
            }
            None if line.requires_shipping && !cancelled && !order.fulfilled_by_channel => {
                let ids = if ids.is_empty() {
                    String::new()
                } else {
                    format!(" or listing id {}", ids.join("/"))
                };
                return Err(Rejection::new(format!(
                    "order line {n} ({}): SKU `{}`{ids} is not in the catalog; add it to catalog.skus \
                     (conveyor catalog load) and retry the order from the DLQ",
                    line.name, line.sku
                )));
            }
            None => {}
        }
        ships |= line.requires_shipping;
    }
    for (what, m) in [
        ("subtotal", &order.totals.subtotal),
        ("discount", &order.totals.discount),
        ("shipping", &order.totals.shipping),
        ("tax", &order.totals.tax),
        ("total", &order.totals.total),
    ] {
        if m.currency != currency {
            return Err(Rejection::new(format!(
                "order {what} is in {} but the order is in {currency}",
                m.currency
            )));
        }
    }

    let strict = ships && !cancelled && !order.fulfilled_by_channel;
    canonical_address(&mut order.shipping_address, strict)
        .map_err(|e| Rejection::new(format!("shipping address: {}", e.0)))?;
    if let Some(b) = order.billing_address.as_mut() {
        // Billing addresses are informative: canonical when possible.
        let _ = canonical_address(b, false);
    }
    if test && !order.tags.iter().any(|t| t == "test") {
        order.tags.push("test".into());
    }
    order
        .extras
        .insert(CATALOG_VERSION_EXTRA.into(), catalog.version().to_string());
    Ok(Normalized {
        version: order.updated_at,
        order,
        cancellation,
    })
}

fn describe_line(sku: &str, name: &str) -> String {
    if sku.is_empty() {
        name.to_string()
    } else {
        format!("{sku} {name}")
    }
}

/// ISO country code, region code and postal code in place. With `strict`,
/// the address must be one a carrier can ship to.
fn canonical_address(a: &mut Address, strict: bool) -> Result<(), Rejection> {
    match fields::country_code(&a.country) {
        Some(c) => a.country = c,
        None if strict => {
            return Err(Rejection::new(if a.country.trim().is_empty() {
                "country is missing".to_string()
            } else {
                format!("`{}` is not a country (ISO 3166-1)", a.country)
            }))
        }
        None => return Ok(()),
    }
    if let Some(region) = a.region.as_deref() {
        match fields::region_code(&a.country, region) {
            Ok(r) => a.region = r,
            Err(e) if strict => return Err(e),
            Err(_) => {}
        }
    }
    match fields::postal_code(&a.country, &a.postal_code) {
        Ok(p) => a.postal_code = p,
        Err(e) if strict => return Err(e),
        Err(_) => {}
    }
    if strict {
        for (what, v) in [
            ("recipient name", &a.name),
            ("street", &a.line1),
            ("city", &a.city),
        ] {
            if v.trim().is_empty() {
                return Err(Rejection::new(format!("{what} is missing")));
            }
        }
        if matches!(a.country.as_str(), "US" | "CA") && a.region.is_none() {
            return Err(Rejection::new(format!(
                "state/province is missing for {}",
                a.country
            )));
        }
    }
    Ok(())
}

/// An address from optional parts, text trimmed, absent parts empty.
#[allow(clippy::too_many_arguments)]
pub fn address(
    name: Option<&str>,
    company: Option<&str>,
    line1: Option<&str>,
    line2: Option<&str>,
    city: Option<&str>,
    region: Option<&str>,
    postal_code: Option<&str>,
    country: Option<&str>,
    phone: Option<&str>,
) -> Address {
    let s = |v: Option<&str>| v.map(str::trim).unwrap_or_default().to_string();
    let o = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    Address {
        name: s(name),
        company: o(company),
        line1: s(line1),
        line2: o(line2),
        city: s(city),
        region: o(region),
        postal_code: s(postal_code),
        country: s(country),
        phone: o(phone),
    }
}

/// Channel fields with no canonical home, kept as `extras` (flat text).
pub fn extras<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<String>)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A catalog the mapper tests share.
    use conveyor_schemas::records::{CatalogSku, ChannelListing};

    use crate::catalog::Catalog;

    pub fn catalog(entries: &[(&str, &[(&str, &str)])]) -> Catalog {
        Catalog::from_skus(entries.iter().map(|(sku, listings)| {
            CatalogSku {
                sku: sku.to_string(),
                name: format!("{sku} (catalog)"),
                weight_grams: 250,
                length_mm: None,
                width_mm: None,
                height_mm: None,
                declared_value: None,
                hazmat: None,
                bin_location: None,
                listings: listings
                    .iter()
                    .map(|(c, l)| ChannelListing {
                        channel: c.to_string(),
                        listing_id: l.to_string(),
                    })
                    .collect(),
                updated_at: 1_700_000_000_000,
            }
        }))
    }
}

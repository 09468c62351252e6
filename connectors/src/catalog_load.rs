//! SKU master data into the compacted `catalog.skus` topic
//! (`conveyor catalog load FILE`), keyed by SKU.
//!
//! The CSV's header names the columns (any order): `sku`, `name`,
//! `weight_grams` required; `length_mm`, `width_mm`, `height_mm`,
//! `declared_value` with `currency`, `hazmat`, `bin_location`, and
//! `listings` (`channel:id` pairs separated by `;`, e.g.
//! `shopify:40001;amazon:B0C1234567`) optional. Like the order import, the
//! whole file is checked first and a bad row publishes nothing.

use std::sync::Arc;

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{CatalogSku, ChannelListing};

use crate::csv_import::BadRow;

/// Parses a catalog CSV; every SKU gets `updated_at`.
pub fn parse(bytes: &[u8], updated_at: i64) -> Result<Vec<CatalogSku>, Vec<BadRow>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![BadRow {
                line: 1,
                order_number: None,
                problems: vec![format!("no header row: {e}")],
            }])
        }
    };
    let idx = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let missing: Vec<&str> = ["sku", "name", "weight_grams"]
        .into_iter()
        .filter(|c| idx(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(vec![BadRow {
            line: 1,
            order_number: None,
            problems: vec![format!(
                "header lacks required column(s): {}",
                missing.join(", ")
            )],
        }]);
    }
    let mut skus = Vec::new();
    let mut bad = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push(BadRow {
                    line: e.position().map_or(0, |p| p.line()),
                    order_number: None,
                    problems: vec![format!("unreadable row: {e}")],
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let cell = |name: &str| {
            idx(name)
                .and_then(|i| rec.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let mut problems = Vec::new();
        let mut int = |name: &str, required: bool| -> Option<i32> {
            match cell(name) {
                None if required => {
                    problems.push(format!("{name} is empty"));
                    None
                }
                None => None,
                Some(v) => match v.parse::<i32>() {
                    Ok(n) if n >= 0 => Some(n),
                    _ => {
                        problems.push(format!("{name} `{v}` is not a whole number >= 0"));
                        None
                    }
                },
            }
        };
        let weight = int("weight_grams", true);
        let (l, w, h) = (
            int("length_mm", false),
            int("width_mm", false),
            int("height_mm", false),
        );
        let sku = cell("sku").unwrap_or_default().to_string();
        if sku.is_empty() {
            problems.push("sku is empty".into());
        } else if let Some(first) = seen.insert(sku.clone(), line) {
            problems.push(format!("sku {sku} is also on line {first}"));
        }
        let name = cell("name").unwrap_or_default().to_string();
        if name.is_empty() {
            problems.push("name is empty".into());
        }
        let declared_value = match cell("declared_value") {
            None => None,
            Some(v) => {
                let cur = cell("currency").unwrap_or("USD");
                match conveyor_processors::normalize::fields::currency("currency", cur).and_then(
                    |c| conveyor_processors::normalize::fields::money_str("declared_value", v, c),
                ) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        problems.push(e.0);
                        None
                    }
                }
            }
        };
        let mut listings = Vec::new();
        for pair in cell("listings")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match pair.split_once(':') {
                Some((c, id)) if !c.trim().is_empty() && !id.trim().is_empty() => {
                    listings.push(ChannelListing {
                        channel: c.trim().to_string(),
                        listing_id: id.trim().to_string(),
                    })
                }
                _ => problems.push(format!("listing `{pair}` is not channel:id")),
            }
        }
        if !problems.is_empty() {
            bad.push(BadRow {
                line,
                order_number: Some(sku).filter(|s| !s.is_empty()),
                problems,
            });
            continue;
        }
        skus.push(CatalogSku {
            sku,
            name,
            weight_grams: weight.unwrap_or(0),
            length_mm: l,
            width_mm: w,
            height_mm: h,
            declared_value,
            hazmat: cell("hazmat").map(String::from),
            bin_location: cell("bin_location").map(String::from),
            listings,
            updated_at,
        });
    }
    if bad.is_empty() {
        Ok(skus)
    } else {
        Err(bad)
    }
}

/// SKUs from the Shopify Admin REST products endpoint
/// (`GET /admin/api/<version>/products.json?limit=250`, Link pagination,
/// the poller's rate limiting): one SKU per variant with a `sku`, its
/// weight converted to grams, its price as declared value, and the variant
/// id as the `shopify` listing id. Variants without a SKU are skipped and
/// counted.
pub async fn from_shopify(
    config: &conveyor_runtime::config::ShopifyConfig,
    currency: conveyor_schemas::records::Currency,
    updated_at: i64,
) -> Result<(Vec<CatalogSku>, usize), String> {
    let client = crate::shopify::poller::AdminClient::new(config.clone());
    let base = format!(
        "{}/admin/api/{}/products.json",
        config.api_url.trim_end_matches('/'),
        config.api_version
    );
    let mut url =
        reqwest::Url::parse_with_params(&base, &[("limit", "250")]).map_err(|e| e.to_string())?;
    let mut stats = Default::default();
    let mut skus = Vec::new();
    let mut skipped = 0;
    loop {
        let (products, next) = client
            .fetch_list(&url, "products", &mut stats)
            .await
            .map_err(|e| e.to_string())?;
        for p in &products {
            let title = p.get("title").and_then(|t| t.as_str()).unwrap_or_default();
            for v in p
                .get("variants")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let Some(sku) = v
                    .get("sku")
                    .and_then(|s| s.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                else {
                    skipped += 1;
                    continue;
                };
                let variant_title = v
                    .get("title")
                    .and_then(|t| t.as_str())
                    .unwrap_or("Default Title");
                let name = if variant_title == "Default Title" {
                    title.to_string()
                } else {
                    format!("{title} - {variant_title}")
                };
                let weight = v.get("weight").and_then(|w| w.as_f64()).unwrap_or(0.0);
                let grams = v
                    .get("grams")
                    .and_then(|g| g.as_i64())
                    .map(|g| g as f64)
                    .unwrap_or_else(|| {
                        match v.get("weight_unit").and_then(|u| u.as_str()).unwrap_or("g") {
                            "kg" => weight * 1000.0,
                            "lb" => weight * 453.592,
                            "oz" => weight * 28.3495,
                            _ => weight,
                        }
                    });
                let declared_value = v.get("price").and_then(|x| x.as_str()).and_then(|x| {
                    conveyor_processors::normalize::fields::money_str("price", x, currency).ok()
                });
                let listings = conveyor_processors::normalize::fields::id_text(v.get("id"))
                    .map(|id| {
                        vec![ChannelListing {
                            channel: "shopify".into(),
                            listing_id: id,
                        }]
                    })
                    .unwrap_or_default();
                skus.push(CatalogSku {
                    sku: sku.to_string(),
                    name,
                    weight_grams: grams.round().clamp(0.0, i32::MAX as f64) as i32,
                    length_mm: None,
                    width_mm: None,
                    height_mm: None,
                    declared_value,
                    hazmat: None,
                    bin_location: None,
                    listings,
                    updated_at,
                });
            }
        }
        match next {
            Some(n) => url = n,
            None => return Ok((skus, skipped)),
        }
    }
}

/// Publishes `skus` to the catalog topic; returns once all are acknowledged.
pub async fn publish(
    config: &Config,
    codec: Arc<Codec>,
    skus: &[CatalogSku],
) -> Result<(), String> {
    let topic = Topology::resolve(config)
        .topic_name("catalog_skus")
        .unwrap_or("catalog.skus")
        .to_string();
    let producer = Producer::new(&config.kafka, "catalog-load").map_err(|e| e.to_string())?;
    let mut recs = Vec::with_capacity(skus.len());
    for s in skus {
        let value = codec.encode(&topic, s).await.map_err(|e| e.to_string())?;
        recs.push(
            OutRecord::new(topic.clone())
                .key(s.sku.as_bytes().to_vec())
                .payload(value),
        );
    }
    for r in producer.send_batch(&recs).await {
        r.map_err(|e| format!("catalog record not acknowledged: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listings_and_refuses_bad_rows() {
        let good =
            "sku,name,weight_grams,length_mm,declared_value,currency,listings,bin_location\n\
A,Alpha,120,100,4.99,USD,shopify:1;amazon:B0A,A-01\nB,Beta,80,,,,,\n";
        let skus = parse(good.as_bytes(), 7).unwrap();
        assert_eq!(skus.len(), 2);
        assert_eq!(skus[0].listings.len(), 2);
        assert_eq!(skus[0].bin_location.as_deref(), Some("A-01"));
        assert_eq!(skus[1].length_mm, None);
        let bad = "sku,name,weight_grams,listings\nA,Alpha,heavy,\nA,Again,1,x\n";
        let rows = parse(bad.as_bytes(), 7).unwrap_err();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert!(rows[1]
            .problems
            .iter()
            .any(|p| p.contains("also on line 2")));
        assert!(parse(b"name\nx\n", 1).unwrap_err()[0].problems[0].contains("sku"));
    }

    #[tokio::test]
    async fn skus_from_the_shopify_products_api() {
        use crate::simulate::shopify::{serve, Sim};
        let token = tokio_util::sync::CancellationToken::new();
        let sim = std::sync::Arc::new(Sim::new(0, "shpat_x"));
        let (addr, _t) = serve(sim, "127.0.0.1:0".parse().unwrap(), token.clone())
            .await
            .unwrap();
        let mut c = conveyor_runtime::config::ShopifyConfig {
            api_url: format!("http://{addr}"),
            access_token: conveyor_runtime::config::Secret::new("shpat_x"),
            ..Default::default()
        };
        let usd = conveyor_schemas::records::Currency::USD;
        let (skus, skipped) = from_shopify(&c, usd, 5).await.unwrap();
        assert_eq!((skus.len(), skipped), (5, 0));
        let etb = skus.iter().find(|s| s.sku == "PKM-SV1-ETB").unwrap();
        assert_eq!(etb.weight_grams, 850);
        assert_eq!(etb.listings[0].listing_id, "40002");
        assert_eq!(
            etb.declared_value.as_ref().unwrap().amount.to_string(),
            "49.99"
        );
        c.access_token = conveyor_runtime::config::Secret::new("wrong");
        assert!(from_shopify(&c, usd, 5)
            .await
            .unwrap_err()
            .contains("access_token"));
        token.cancel();
    }
}

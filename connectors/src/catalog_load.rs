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
}

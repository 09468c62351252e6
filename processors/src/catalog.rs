//! The SKU catalog as processors see it: an in-memory index of the
//! compacted `catalog.skus` topic, by SKU and by channel listing id.
//!
//! The catalog is reference data, not keyed state: every processor instance
//! holds the whole of it. Because a lookup outside the state is only
//! deterministic if it is recorded (DESIGN.md, "Determinism"), every output
//! that used the catalog records [`Catalog::version`]: the `updated_at` of the
//! newest SKU version applied, which a replay can compare.

use std::collections::HashMap;
use std::sync::Arc;

use conveyor_schemas::records::CatalogSku;

/// The index. Cheap to clone (entries are shared).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    by_sku: HashMap<String, Arc<CatalogSku>>,
    /// channel -> listing id -> sku.
    by_listing: HashMap<String, HashMap<String, String>>,
    version: i64,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// A catalog of these SKUs (tests, benchmarks, the demo).
    pub fn from_skus(skus: impl IntoIterator<Item = CatalogSku>) -> Catalog {
        let mut c = Catalog::new();
        for s in skus {
            c.apply(s);
        }
        c
    }

    /// Applies one SKU version. An older version than the one held (by
    /// `updated_at`) is ignored, so reading the topic twice changes nothing.
    pub fn apply(&mut self, sku: CatalogSku) {
        if let Some(held) = self.by_sku.get(&sku.sku) {
            if held.updated_at > sku.updated_at {
                return;
            }
        }
        self.remove(&sku.sku);
        for l in &sku.listings {
            self.by_listing
                .entry(l.channel.clone())
                .or_default()
                .insert(l.listing_id.clone(), sku.sku.clone());
        }
        self.version = self.version.max(sku.updated_at);
        self.by_sku.insert(sku.sku.clone(), Arc::new(sku));
    }

    /// Retires a SKU (a tombstone on the topic).
    pub fn remove(&mut self, sku: &str) {
        if let Some(old) = self.by_sku.remove(sku) {
            for l in &old.listings {
                if let Some(ids) = self.by_listing.get_mut(&l.channel) {
                    if ids.get(&l.listing_id).map(String::as_str) == Some(sku) {
                        ids.remove(&l.listing_id);
                    }
                }
            }
        }
    }

    pub fn get(&self, sku: &str) -> Option<&Arc<CatalogSku>> {
        self.by_sku.get(sku)
    }

    /// The SKU a channel's listing id stands for.
    pub fn by_listing(&self, channel: &str, listing_id: &str) -> Option<&Arc<CatalogSku>> {
        self.by_listing
            .get(channel)
            .and_then(|ids| ids.get(listing_id))
            .and_then(|s| self.by_sku.get(s))
    }

    /// Resolves an order line: its own SKU when the catalog knows it, else
    /// the first listing id the catalog knows.
    pub fn resolve<'a>(
        &'a self,
        channel: &str,
        sku: Option<&str>,
        listing_ids: &[String],
    ) -> Option<&'a Arc<CatalogSku>> {
        sku.filter(|s| !s.is_empty())
            .and_then(|s| self.get(s))
            .or_else(|| {
                listing_ids
                    .iter()
                    .find_map(|id| self.by_listing(channel, id))
            })
    }

    /// `updated_at` of the newest SKU version applied (0 when empty).
    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.by_sku.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sku.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_schemas::records::ChannelListing;

    fn sku(s: &str, at: i64, listings: &[(&str, &str)]) -> CatalogSku {
        CatalogSku {
            sku: s.into(),
            name: format!("{s} name"),
            weight_grams: 100,
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
            updated_at: at,
        }
    }

    #[test]
    fn resolves_by_sku_then_listing_and_ignores_older_versions() {
        let mut c = Catalog::from_skus([sku("A", 10, &[("amazon", "B0A")])]);
        assert_eq!(c.resolve("amazon", Some("A"), &[]).unwrap().sku, "A");
        assert_eq!(
            c.resolve("amazon", Some("nope"), &["B0A".into()])
                .unwrap()
                .sku,
            "A"
        );
        assert!(c.resolve("ebay", None, &["B0A".into()]).is_none());
        c.apply(sku("A", 5, &[("amazon", "OLD")]));
        assert!(
            c.by_listing("amazon", "OLD").is_none(),
            "older version applied"
        );
        c.apply(sku("A", 20, &[("amazon", "B0B")]));
        assert!(
            c.by_listing("amazon", "B0A").is_none(),
            "stale listing kept"
        );
        assert_eq!(c.by_listing("amazon", "B0B").unwrap().sku, "A");
        assert_eq!(c.version(), 20);
        c.remove("A");
        assert!(c.is_empty() && c.by_listing("amazon", "B0B").is_none());
    }
}

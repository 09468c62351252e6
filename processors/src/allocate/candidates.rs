//! Step 1 of the allocation protocol (docs/allocation.md): which
//! warehouses an order may ship from, best first, from the order and the
//! config only (no stock is read, so the ranking is a pure function of
//! what is logged).
//!
//! A warehouse is a candidate when it serves the order's channel
//! ([`WarehouseConfig::serves`]). Candidates are ranked by great-circle
//! distance from the warehouse to the destination's postal-code centroid
//! ([`crate::geo`]), then by `priority`, then by id. A warehouse or
//! destination that cannot be placed (a postal code outside the shipped
//! data) ranks as the farthest, at [`UNKNOWN_KM`], so known-near warehouses
//! come first and the order is still deterministic.

use conveyor_runtime::warehouses::WarehouseConfig;

use super::decide::{Candidate, MAX_CANDIDATES};
use crate::geo::{distance_km, Centroids, Point};

/// The distance given to what cannot be placed: half the earth's
/// circumference, farther than anything real.
pub const UNKNOWN_KM: f64 = 20_016.0;

/// Where a warehouse is: its coordinates, else its postal centroid.
pub fn locate_warehouse(w: &WarehouseConfig) -> Option<Point> {
    match (w.lat, w.lon) {
        (Some(lat), Some(lon)) => Some(Point { lat, lon }),
        _ => Centroids::us()
            .locate(&w.country, &w.postal_code)
            .map(|(p, _)| p),
    }
}

/// The candidates for an order of `channel` shipping to `country` /
/// `postal_code`, best first, at most [`MAX_CANDIDATES`]; the cost per
/// unit of each is its distance in km.
pub fn rank(
    warehouses: &[WarehouseConfig],
    channel: &str,
    country: &str,
    postal_code: &str,
) -> Vec<Candidate> {
    let dest = Centroids::us().locate(country, postal_code).map(|(p, _)| p);
    let mut ranked: Vec<(f64, u32, &str)> = warehouses
        .iter()
        .filter(|w| w.serves(channel))
        .map(|w| {
            let km = match (dest, locate_warehouse(w)) {
                (Some(d), Some(p)) => distance_km(p, d),
                _ => UNKNOWN_KM,
            };
            (km, w.priority, w.id.as_str())
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    ranked
        .into_iter()
        .take(MAX_CANDIDATES)
        .map(|(km, _, id)| Candidate {
            warehouse: id.to_string(),
            cost_per_unit: km,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_runtime::warehouses::sample;

    fn ids(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.warehouse.as_str()).collect()
    }

    #[test]
    fn nearest_first_among_those_serving_the_channel() {
        let w = sample();
        // Brooklyn: Edison, then Dallas, then Ontario.
        assert_eq!(
            ids(&rank(&w, "shopify", "US", "11201")),
            ["nj-edison", "tx-dallas", "ca-ontario"]
        );
        // San Diego: Ontario first.
        let c = rank(&w, "shopify", "US", "92101");
        assert_eq!(ids(&c), ["ca-ontario", "tx-dallas", "nj-edison"]);
        assert!(c[0].cost_per_unit < 200.0, "{c:?}");
        // The Dallas 3PL does not serve Amazon: a Dallas-area order goes
        // to Ontario (about 1,900 km), then Edison (about 2,200 km).
        let c = rank(&w, "amazon", "US", "75001");
        assert_eq!(ids(&c), ["ca-ontario", "nj-edison"]);
        assert!((1_800.0..2_000.0).contains(&c[0].cost_per_unit), "{c:?}");
    }

    #[test]
    fn an_unplaceable_destination_ranks_by_priority_then_id() {
        let c = rank(&sample(), "shopify", "DE", "10115");
        assert_eq!(ids(&c), ["nj-edison", "ca-ontario", "tx-dallas"]);
        assert!(c.iter().all(|c| c.cost_per_unit == UNKNOWN_KM));
    }
}

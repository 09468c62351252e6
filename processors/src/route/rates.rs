//! Zones and rate cards: what each carrier service would charge for a
//! parcel, and whether it can carry it at all.
//!
//! - Zone: the great-circle distance between the origin's and the
//!   destination's ZIP3 centroids, banded by the carrier's `zone_miles`
//!   (USPS's published bands by default: zone 1 up to 50 miles ... zone 8
//!   beyond 1,800), which is how the USPS zone charts are built.
//! - Billable weight: the greater of the actual weight and the dimensional
//!   weight (length x width x height in inches, each side rounded up to a
//!   whole inch, divided by the carrier's divisor; only above
//!   `dim_min_cubic_inches`), rounded up to a whole pound, at least one.
//! - Price: `base_cents[zone] + per_lb_cents[zone] x (billable - 1)`.
//! - Exclusions, each with its reason: destination state or ZIP prefix the
//!   carrier does not serve, a PO box for a carrier that does not deliver
//!   to them, a hazmat class the carrier does not accept, a parcel over the
//!   service's weight or length-plus-girth limit.

use conveyor_runtime::routing::{CarrierConfig, ServiceConfig, ZONES};
use conveyor_schemas::records::{Address, Parcel};

use crate::geo::{distance_km, Point};

pub const KM_PER_MILE: f64 = 1.609_344;
const MM_PER_INCH: f64 = 25.4;
const GRAMS_PER_POUND: f64 = 453.592_37;

/// Zone 1..=8 of a distance, by a carrier's upper bounds in miles.
pub fn zone(zone_miles: &[u32], km: f64) -> u8 {
    let miles = km / KM_PER_MILE;
    let below = zone_miles
        .iter()
        .take_while(|&&bound| miles > f64::from(bound))
        .count();
    (below + 1).min(ZONES) as u8
}

/// Zone between two ZIP3 centroids.
pub fn zone_between(carrier: &CarrierConfig, origin: Point, dest: Point) -> u8 {
    zone(&carrier.zone_miles, distance_km(origin, dest))
}

fn inches(mm: i32) -> u64 {
    (f64::from(mm.max(0)) / MM_PER_INCH).ceil() as u64
}

/// Dimensional weight in whole pounds (0 when it does not apply).
pub fn dim_pounds(carrier: &CarrierConfig, p: &Parcel) -> u64 {
    let cubic = inches(p.length_mm) * inches(p.width_mm) * inches(p.height_mm);
    if cubic <= u64::from(carrier.dim_min_cubic_inches) {
        return 0;
    }
    cubic.div_ceil(u64::from(carrier.dim_divisor.max(1)))
}

/// Billable pounds: max(actual, dimensional), rounded up, at least 1.
pub fn billable_pounds(carrier: &CarrierConfig, p: &Parcel) -> u64 {
    let actual = (f64::from(p.weight_grams.max(0)) / GRAMS_PER_POUND).ceil() as u64;
    actual.max(dim_pounds(carrier, p)).max(1)
}

/// Longest side plus girth, inches.
pub fn length_plus_girth(p: &Parcel) -> u64 {
    let mut d = [inches(p.length_mm), inches(p.width_mm), inches(p.height_mm)];
    d.sort_unstable_by(|a, b| b.cmp(a));
    d[0] + 2 * (d[1] + d[2])
}

/// Price in cents of `service` for `billable` pounds in `zone`.
pub fn price_cents(service: &ServiceConfig, zone: u8, billable: u64) -> u64 {
    let z = usize::from(zone.clamp(1, ZONES as u8)) - 1;
    u64::from(service.base_cents[z]) + u64::from(service.per_lb_cents[z]) * (billable - 1)
}

/// Whether an address line is a post-office box.
pub fn is_po_box(a: &Address) -> bool {
    std::iter::once(a.line1.as_str())
        .chain(a.line2.as_deref())
        .any(|l| {
            let squeezed: String = l
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            squeezed.starts_with("pobox")
                || squeezed.starts_with("postofficebox")
                || squeezed.starts_with("pob")
                    && squeezed[3..].starts_with(|c: char| c.is_ascii_digit())
        })
}

/// Why `carrier` cannot take a parcel to `to` at all (None: it can).
pub fn carrier_excluded(
    carrier: &CarrierConfig,
    to: &Address,
    hazmat: &[String],
) -> Option<String> {
    // The address's region, else the state its ZIP belongs to.
    let region = match to.region.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(r) => r.trim().to_ascii_uppercase(),
        None => crate::geo::us_state(&to.country, &to.postal_code)
            .unwrap_or("")
            .to_string(),
    };
    for e in &carrier.exclude {
        match e.strip_prefix("zip:") {
            Some(prefix) if to.postal_code.starts_with(prefix) => {
                return Some(format!("{} does not serve ZIP {}*", carrier.id, prefix));
            }
            None if *e == region => {
                return Some(format!("{} does not serve {}", carrier.id, region));
            }
            _ => {}
        }
    }
    if !carrier.po_boxes && is_po_box(to) {
        return Some(format!("{} does not deliver to PO boxes", carrier.id));
    }
    if let Some(h) = hazmat.iter().find(|h| !carrier.hazmat.contains(h)) {
        return Some(format!("{} does not accept hazmat class {h}", carrier.id));
    }
    None
}

/// Why `service` cannot carry `p` (None: it can).
pub fn service_excluded(service: &ServiceConfig, p: &Parcel) -> Option<String> {
    if i64::from(p.weight_grams) > i64::from(service.max_weight_grams) {
        return Some(format!(
            "parcel weighs {} g, over the service's {} g",
            p.weight_grams, service.max_weight_grams
        ));
    }
    let lg = length_plus_girth(p);
    if service.max_length_girth_inches > 0 && lg > u64::from(service.max_length_girth_inches) {
        return Some(format!(
            "length plus girth {lg} in, over the service's {} in",
            service.max_length_girth_inches
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_runtime::routing::sample;

    fn parcel(l: i32, w: i32, h: i32, g: i32) -> Parcel {
        Parcel {
            box_type: "t".into(),
            weight_grams: g,
            length_mm: l,
            width_mm: w,
            height_mm: h,
        }
    }

    #[test]
    fn zones_follow_the_usps_mileage_bands() {
        let bands = sample().carriers[0].zone_miles.clone();
        let km = |mi: f64| mi * KM_PER_MILE;
        assert_eq!(zone(&bands, 0.0), 1);
        assert_eq!(zone(&bands, km(50.0)), 1);
        assert_eq!(zone(&bands, km(50.5)), 2);
        assert_eq!(zone(&bands, km(600.0)), 4);
        assert_eq!(zone(&bands, km(1800.0)), 7);
        assert_eq!(zone(&bands, km(2500.0)), 8);
    }

    #[test]
    fn zone_lookup_between_real_zip3_centroids() {
        let us = crate::geo::Centroids::us();
        let at = |zip: &str| us.zip3("US", zip).unwrap();
        let usps = &sample().carriers[0];
        // Edison NJ (088) to Manhattan (100): ~30 miles, zone 1.
        assert_eq!(zone_between(usps, at("08817"), at("10001")), 1);
        // Edison to Los Angeles (900): ~2,400 miles, zone 8.
        assert_eq!(zone_between(usps, at("08817"), at("90012")), 8);
        // Dallas (752) to Houston (770): ~225 miles, zone 3.
        assert_eq!(zone_between(usps, at("75201"), at("77002")), 3);
    }

    #[test]
    fn dimensional_weight_by_hand() {
        let c = sample();
        let (usps, ups) = (&c.carriers[0], &c.carriers[1]);
        // 304 mm is 11.97 in: 12 x 12 x 12 in.
        let cube = parcel(304, 304, 304, 1000);
        // 1728 in3: USPS applies dim weight only above 1728; UPS 1728/139 =
        // 12.4 -> 13 lb.
        assert_eq!(dim_pounds(usps, &cube), 0);
        assert_eq!(dim_pounds(ups, &cube), 13);
        assert_eq!(billable_pounds(usps, &cube), 3); // 1000 g = 2.2 lb -> 3
        assert_eq!(billable_pounds(ups, &cube), 13);
        // 457 x 305 x 254 mm: 305 mm is 12.008 in and rounds up to 13, so
        // 18 x 13 x 10 = 2340 in3; USPS 2340/166 = 14.1 -> 15 lb.
        let big = parcel(457, 305, 254, 2000);
        assert_eq!((inches(457), inches(305), inches(254)), (18, 13, 10));
        assert_eq!(dim_pounds(usps, &big), 15);
        assert_eq!(billable_pounds(usps, &big), 15);
        // Light and small: one pound minimum.
        assert_eq!(billable_pounds(ups, &parcel(100, 100, 50, 10)), 1);
    }

    #[test]
    fn prices_and_limits() {
        let c = sample();
        let ground = &c.carriers[0].services[0];
        // Zone 5, 3 lb: 660 + 205 x 2.
        assert_eq!(price_cents(ground, 5, 3), 660 + 410);
        assert_eq!(price_cents(ground, 1, 1), 540);
        assert!(service_excluded(ground, &parcel(300, 200, 100, 32_000))
            .unwrap()
            .contains("over the service's 31000 g"));
        // 1,000 x 500 x 500 mm: 40 + 2 x (20 + 20) = 120 in: fits USPS's 130.
        assert_eq!(
            length_plus_girth(&parcel(1000, 500, 500, 1000)),
            40 + 2 * (20 + 20)
        );
        assert!(service_excluded(ground, &parcel(1000, 600, 600, 1000)).is_some());
    }

    #[test]
    fn exclusions_name_their_reason() {
        let c = sample();
        let (usps, ups) = (&c.carriers[0], &c.carriers[1]);
        let mut to = Address {
            name: "A".into(),
            company: None,
            line1: "P.O. Box 123".into(),
            line2: None,
            city: "Juneau".into(),
            region: Some("AK".into()),
            postal_code: "99801".into(),
            country: "US".into(),
            phone: None,
        };
        assert_eq!(carrier_excluded(usps, &to, &[]), None);
        assert_eq!(
            carrier_excluded(ups, &to, &[]).unwrap(),
            "ups does not serve AK"
        );
        // No region given: the ZIP says Alaska.
        to.region = None;
        assert_eq!(
            carrier_excluded(ups, &to, &[]).unwrap(),
            "ups does not serve AK"
        );
        to.region = Some("WA".into());
        assert_eq!(
            carrier_excluded(ups, &to, &[]).unwrap(),
            "ups does not deliver to PO boxes"
        );
        to.line1 = "12 Pobox Lane".into(); // a street, not a box
        assert!(!is_po_box(&to));
        to.line1 = "POB 7".into();
        assert!(is_po_box(&to));
        to.line1 = "1 Main St".into();
        assert_eq!(
            carrier_excluded(usps, &to, &["UN3481".into()]).unwrap(),
            "usps does not accept hazmat class UN3481"
        );
        assert_eq!(carrier_excluded(ups, &to, &["UN3481".into()]), None);
    }
}

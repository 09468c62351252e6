//! Where a postal code is, and how far apart two points are: what
//! allocation ranks warehouses by ("nearest first").
//!
//! US postal codes resolve through the Census 2021 ZCTA internal points
//! shipped in `data/postal/us-zcta-2021.csv` (public domain; provenance in
//! `data/postal/README.md`), compiled into the binary and indexed on first
//! use. A ZIP without a ZCTA (PO boxes, military, single organisations)
//! falls back to the mean of its ZIP3 area. Other countries are not
//! covered yet: [`Centroids::locate`] answers `None` and the caller ranks
//! by warehouse priority alone.

use std::collections::HashMap;
use std::sync::OnceLock;

const US_ZCTA: &str = include_str!("../../data/postal/us-zcta-2021.csv");

/// A point on the earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// How a postal code was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The ZIP5's own centroid.
    Zip5,
    /// The mean of the ZIP3 area's centroids.
    Zip3,
}

/// Centroids of US ZIP codes (ZIP5, with ZIP3 means as the fallback).
pub struct Centroids {
    zip5: HashMap<u32, Point>,
    zip3: HashMap<u32, Point>,
}

impl Centroids {
    /// The shipped US data set, parsed once per process.
    pub fn us() -> &'static Centroids {
        static US: OnceLock<Centroids> = OnceLock::new();
        US.get_or_init(|| Centroids::parse(US_ZCTA))
    }

    /// Reads `zip,lat,lon` lines (a header line and malformed lines are
    /// skipped: the file is generated and checked by `fetch-us.sh`).
    pub fn parse(csv: &str) -> Centroids {
        let mut zip5 = HashMap::with_capacity(34_000);
        let mut sums: HashMap<u32, (f64, f64, u32)> = HashMap::with_capacity(1_000);
        for line in csv.lines() {
            let mut f = line.split(',');
            let (Some(z), Some(lat), Some(lon)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Some(z), Ok(lat), Ok(lon)) = (zip_number(z), lat.parse(), lon.parse()) else {
                continue;
            };
            zip5.insert(z, Point { lat, lon });
            let s = sums.entry(z / 100).or_insert((0.0, 0.0, 0));
            s.0 += lat;
            s.1 += lon;
            s.2 += 1;
        }
        let zip3 = sums
            .into_iter()
            .map(|(k, (lat, lon, n))| {
                (
                    k,
                    Point {
                        lat: lat / f64::from(n),
                        lon: lon / f64::from(n),
                    },
                )
            })
            .collect();
        Centroids { zip5, zip3 }
    }

    /// Number of ZIP5 centroids.
    pub fn len(&self) -> usize {
        self.zip5.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zip5.is_empty()
    }

    /// Where `postal_code` of `country` (ISO alpha-2) is. US codes may be
    /// ZIP5 or ZIP+4 (`94103-1234`, `941031234`).
    pub fn locate(&self, country: &str, postal_code: &str) -> Option<(Point, Precision)> {
        let z = us_zip5(country, postal_code)?;
        if let Some(p) = self.zip5.get(&z) {
            return Some((*p, Precision::Zip5));
        }
        self.zip3.get(&(z / 100)).map(|p| (*p, Precision::Zip3))
    }

    /// The centroid of `postal_code`'s ZIP3 area (what carrier zone charts
    /// measure between), or None outside the US data set.
    pub fn zip3(&self, country: &str, postal_code: &str) -> Option<Point> {
        self.zip3
            .get(&(us_zip5(country, postal_code)? / 100))
            .copied()
    }
}

/// ZIP3 ranges of the US states and territories (USPS prefix allocation),
/// inclusive: what an address without a region is placed in.
const ZIP3_STATES: &[(u32, u32, &str)] = &[
    (5, 5, "NY"),
    (6, 7, "PR"),
    (8, 8, "VI"),
    (9, 9, "PR"),
    (10, 27, "MA"),
    (28, 29, "RI"),
    (30, 38, "NH"),
    (39, 49, "ME"),
    (50, 54, "VT"),
    (55, 55, "MA"),
    (56, 59, "VT"),
    (60, 69, "CT"),
    (70, 89, "NJ"),
    (90, 99, "AE"),
    (100, 149, "NY"),
    (150, 196, "PA"),
    (197, 199, "DE"),
    (200, 200, "DC"),
    (201, 201, "VA"),
    (202, 205, "DC"),
    (206, 219, "MD"),
    (220, 246, "VA"),
    (247, 268, "WV"),
    (270, 289, "NC"),
    (290, 299, "SC"),
    (300, 319, "GA"),
    (320, 339, "FL"),
    (340, 340, "AA"),
    (341, 349, "FL"),
    (350, 369, "AL"),
    (370, 385, "TN"),
    (386, 397, "MS"),
    (398, 399, "GA"),
    (400, 427, "KY"),
    (430, 459, "OH"),
    (460, 479, "IN"),
    (480, 499, "MI"),
    (500, 528, "IA"),
    (530, 549, "WI"),
    (550, 567, "MN"),
    (570, 577, "SD"),
    (580, 588, "ND"),
    (590, 599, "MT"),
    (600, 629, "IL"),
    (630, 658, "MO"),
    (660, 679, "KS"),
    (680, 693, "NE"),
    (700, 715, "LA"),
    (716, 729, "AR"),
    (730, 749, "OK"),
    (750, 799, "TX"),
    (800, 816, "CO"),
    (820, 831, "WY"),
    (832, 838, "ID"),
    (840, 847, "UT"),
    (850, 865, "AZ"),
    (870, 884, "NM"),
    (885, 885, "TX"),
    (889, 898, "NV"),
    (900, 961, "CA"),
    (962, 966, "AP"),
    (967, 968, "HI"),
    (969, 969, "GU"),
    (970, 979, "OR"),
    (980, 994, "WA"),
    (995, 999, "AK"),
];

/// The state (or territory, or military region) a US ZIP code belongs to,
/// from its first three digits; None outside the US or for an unassigned
/// prefix.
pub fn us_state(country: &str, postal_code: &str) -> Option<&'static str> {
    let zip3 = us_zip5(country, postal_code)? / 100;
    ZIP3_STATES
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&zip3))
        .map(|(_, _, s)| *s)
}

/// The ZIP5 of a US postal code (ZIP5 or ZIP+4, `94103-1234`); None for
/// another country or anything else.
fn us_zip5(country: &str, postal_code: &str) -> Option<u32> {
    if !country.eq_ignore_ascii_case("US") {
        return None;
    }
    let digits: String = postal_code
        .chars()
        .filter(char::is_ascii_digit)
        .take(5)
        .collect();
    zip_number(&digits)
}

/// `"02134"` -> 2134; anything but five digits -> None.
fn zip_number(s: &str) -> Option<u32> {
    (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Great-circle distance in kilometres (haversine, mean earth radius).
pub fn distance_km(a: Point, b: Point) -> f64 {
    const R: f64 = 6_371.008_8;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_zip_prefixes() {
        for (zip, state) in [
            ("99501", "AK"),
            ("96813", "HI"),
            ("00901", "PR"),
            ("10001", "NY"),
            ("08817", "NJ"),
            ("75201", "TX"),
            ("88510", "TX"),
            ("90012", "CA"),
            ("20001", "DC"),
            ("05501", "MA"),
        ] {
            assert_eq!(us_state("US", zip), Some(state), "{zip}");
        }
        assert_eq!(us_state("US", "00001"), None);
        assert_eq!(us_state("CA", "99501"), None);
        // Every ZIP3 of the shipped data set is in the table.
        let unplaced: Vec<u32> = Centroids::us()
            .zip3
            .keys()
            .copied()
            .filter(|z| us_state("US", &format!("{z:03}00")).is_none())
            .collect();
        assert!(unplaced.is_empty(), "{unplaced:?}");
    }

    #[test]
    fn the_shipped_data_set_covers_the_us() {
        let c = Centroids::us();
        assert_eq!(c.len(), 33_791);
        let (nyc, p) = c.locate("US", "10001").unwrap();
        assert_eq!(p, Precision::Zip5);
        assert!(
            (nyc.lat - 40.75).abs() < 0.05 && (nyc.lon + 74.0).abs() < 0.05,
            "{nyc:?}"
        );
        // Leading zeros, ZIP+4, lower-case country.
        assert_eq!(c.locate("us", "02134-1234").unwrap().1, Precision::Zip5);
        assert!(c.locate("US", "00601").is_some(), "Puerto Rico");
        assert!(c.locate("CA", "K1A 0B1").is_none());
        assert!(c.locate("US", "ABCDE").is_none());
    }

    #[test]
    fn zips_without_a_zcta_fall_back_to_their_zip3_area() {
        let c = Centroids::parse("zip,lat,lon\n94103,37.77,-122.41\n94105,37.79,-122.39\n");
        let (p, prec) = c.locate("US", "94188").unwrap();
        assert_eq!(prec, Precision::Zip3);
        assert!((p.lat - 37.78).abs() < 1e-9 && (p.lon + 122.40).abs() < 1e-9);
        assert!(c.locate("US", "10001").is_none());
    }

    #[test]
    fn distances_match_known_great_circles() {
        let c = Centroids::us();
        let nyc = c.locate("US", "10001").unwrap().0;
        let la = c.locate("US", "90012").unwrap().0;
        let d = distance_km(nyc, la);
        // New York to Los Angeles downtown: about 3,940 km.
        assert!((3_900.0..3_990.0).contains(&d), "{d}");
        assert_eq!(distance_km(nyc, nyc), 0.0);
        assert!((distance_km(nyc, la) - distance_km(la, nyc)).abs() < 1e-9);
    }
}

//! Boxes, carriers, services and rate cards: the `[routing]` section of
//! the config (reference: docs/config.md). Read by route
//! (docs/routing.md); checked with the rest of the config by [`validate`].
//!
//! Prices are integer cents so a rate card is exact and a plan's cost can be
//! computed by hand: `base_cents[zone] + per_lb_cents[zone] x (billable
//! pounds - 1)`, where billable pounds are the greater of the actual and
//! the dimensional weight, rounded up to a whole pound (as USPS, UPS and
//! FedEx bill).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Zones 1..=8: the number of entries a per-zone table must have.
pub const ZONES: usize = 8;

/// `[routing]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Currency of every rate card.
    pub currency: String,
    /// Business days from the order's creation to delivery that the
    /// merchant promises when the channel gives no deliver-by date.
    pub promise_days: PromiseDays,
    /// Boxes parcels are packed in, smallest first is not required: the
    /// packer picks the smallest (by volume) that fits.
    pub boxes: Vec<BoxConfig>,
    /// Carriers and their services.
    pub carriers: Vec<CarrierConfig>,
}

/// Business days to delivery per order priority.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PromiseDays {
    pub standard: u32,
    pub expedited: u32,
    pub overnight: u32,
}

impl Default for PromiseDays {
    fn default() -> Self {
        Self {
            standard: 5,
            expedited: 2,
            overnight: 1,
        }
    }
}

/// A box size.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BoxConfig {
    pub id: String,
    /// Inner dimensions in millimetres.
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
    /// Weight of the empty box with its filling.
    #[serde(default)]
    pub tare_grams: u32,
    /// Most the box may weigh packed.
    pub max_weight_grams: u32,
}

/// A carrier.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    /// `usps`, `ups`, `fedex`, ...: the id label APIs know it by.
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Dimensional-weight divisor in cubic inches per pound (USPS 166,
    /// UPS and FedEx 139).
    pub dim_divisor: u32,
    /// Dimensional weight applies only to parcels larger than this many
    /// cubic inches (USPS: 1728, one cubic foot); 0 = always.
    #[serde(default)]
    pub dim_min_cubic_inches: u32,
    /// Upper bounds in miles of zones 1..=7 (zone 8 is beyond the last),
    /// measured between the origin's and destination's ZIP3 centroids as
    /// the USPS zone charts are.
    #[serde(default = "usps_zone_miles")]
    pub zone_miles: Vec<u32>,
    /// Destinations this carrier does not serve: US state codes (`AK`)
    /// or ZIP prefixes (`zip:995`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Delivers to PO boxes (USPS only, in the US).
    #[serde(default)]
    pub po_boxes: bool,
    /// Hazmat classes it accepts (catalog `hazmat`, e.g. `ORM-D`, `UN3481`);
    /// a parcel with any other hazmat class is excluded.
    #[serde(default)]
    pub hazmat: Vec<String>,
    pub services: Vec<ServiceConfig>,
}

/// One service of a carrier, with its rate card.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// `ground`, `priority`, ...
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Business days in transit, per zone 1..=8.
    pub transit_days: Vec<u32>,
    /// Price of the first pound, per zone 1..=8, in cents.
    pub base_cents: Vec<u32>,
    /// Price of each further pound, per zone 1..=8, in cents.
    pub per_lb_cents: Vec<u32>,
    /// Heaviest billable parcel.
    pub max_weight_grams: u32,
    /// Longest side plus girth, inches (USPS 130, UPS/FedEx 165); 0 = no limit.
    #[serde(default)]
    pub max_length_girth_inches: u32,
}

fn usps_zone_miles() -> Vec<u32> {
    vec![50, 150, 300, 600, 1000, 1400, 1800]
}

impl Default for RoutingConfig {
    fn default() -> Self {
        sample()
    }
}

/// The built-in boxes and rate cards: three carriers with two to three
/// services each, shaped like their 2025 retail tables (not their prices to
/// the cent: a merchant's negotiated cards replace them).
pub fn sample() -> RoutingConfig {
    let b = |id: &str, l, w, h, tare, max| BoxConfig {
        id: id.into(),
        length_mm: l,
        width_mm: w,
        height_mm: h,
        tare_grams: tare,
        max_weight_grams: max,
    };
    let s = |id: &str,
             name: &str,
             transit: [u32; 8],
             base: [u32; 8],
             per_lb: [u32; 8],
             max_kg: u32,
             girth| {
        ServiceConfig {
            id: id.into(),
            name: name.into(),
            transit_days: transit.to_vec(),
            base_cents: base.to_vec(),
            per_lb_cents: per_lb.to_vec(),
            max_weight_grams: max_kg * 1000,
            max_length_girth_inches: girth,
        }
    };
    RoutingConfig {
        currency: "USD".into(),
        promise_days: PromiseDays::default(),
        boxes: vec![
            b("mailer-s", 230, 160, 50, 40, 2000),
            b("box-s", 230, 180, 100, 120, 5000),
            b("box-m", 305, 230, 150, 220, 10000),
            b("box-l", 410, 310, 250, 400, 20000),
            b("box-xl", 610, 460, 410, 800, 30000),
        ],
        carriers: vec![
            CarrierConfig {
                id: "usps".into(),
                name: "USPS".into(),
                dim_divisor: 166,
                dim_min_cubic_inches: 1728,
                zone_miles: usps_zone_miles(),
                exclude: vec![],
                po_boxes: true,
                hazmat: vec!["ORM-D".into()],
                services: vec![
                    s(
                        "ground_advantage",
                        "Ground Advantage",
                        [2, 2, 3, 3, 4, 4, 5, 5],
                        [540, 555, 570, 595, 660, 740, 805, 890],
                        [85, 95, 115, 150, 205, 265, 320, 380],
                        31,
                        130,
                    ),
                    s(
                        "priority",
                        "Priority Mail",
                        [1, 1, 2, 2, 2, 3, 3, 3],
                        [895, 935, 975, 1040, 1130, 1225, 1315, 1440],
                        [120, 135, 165, 235, 330, 420, 515, 620],
                        31,
                        130,
                    ),
                    s(
                        "express",
                        "Priority Mail Express",
                        [1, 1, 1, 1, 1, 2, 2, 2],
                        [2950, 3075, 3210, 3420, 3680, 3950, 4230, 4550],
                        [260, 290, 340, 420, 520, 640, 760, 880],
                        31,
                        130,
                    ),
                ],
            },
            CarrierConfig {
                id: "ups".into(),
                name: "UPS".into(),
                dim_divisor: 139,
                dim_min_cubic_inches: 0,
                zone_miles: usps_zone_miles(),
                exclude: vec!["AK".into(), "HI".into(), "PR".into()],
                po_boxes: false,
                hazmat: vec!["ORM-D".into(), "UN3481".into()],
                services: vec![
                    s(
                        "ground",
                        "UPS Ground",
                        [1, 1, 2, 3, 3, 4, 5, 5],
                        [1010, 1035, 1090, 1140, 1185, 1225, 1260, 1320],
                        [55, 70, 90, 115, 145, 175, 210, 250],
                        68,
                        165,
                    ),
                    s(
                        "2day",
                        "UPS 2nd Day Air",
                        [2, 2, 2, 2, 2, 2, 2, 2],
                        [2290, 2390, 2560, 2780, 2990, 3190, 3390, 3620],
                        [240, 290, 350, 420, 490, 560, 640, 720],
                        68,
                        165,
                    ),
                    s(
                        "next_day_air",
                        "UPS Next Day Air",
                        [1, 1, 1, 1, 1, 1, 1, 1],
                        [3390, 3620, 3950, 4310, 4690, 5010, 5320, 5680],
                        [410, 480, 560, 650, 740, 830, 920, 1010],
                        68,
                        165,
                    ),
                ],
            },
            CarrierConfig {
                id: "fedex".into(),
                name: "FedEx".into(),
                dim_divisor: 139,
                dim_min_cubic_inches: 0,
                zone_miles: usps_zone_miles(),
                exclude: vec!["PR".into()],
                po_boxes: false,
                hazmat: vec!["ORM-D".into(), "UN3481".into()],
                services: vec![
                    s(
                        "home_delivery",
                        "FedEx Home Delivery",
                        [1, 1, 2, 3, 3, 4, 5, 5],
                        [1025, 1050, 1095, 1135, 1175, 1220, 1255, 1315],
                        [60, 72, 88, 112, 142, 172, 205, 245],
                        68,
                        165,
                    ),
                    s(
                        "2day",
                        "FedEx 2Day",
                        [2, 2, 2, 2, 2, 2, 2, 2],
                        [2310, 2420, 2570, 2760, 2970, 3170, 3380, 3600],
                        [245, 295, 345, 415, 485, 555, 635, 715],
                        68,
                        165,
                    ),
                ],
            },
        ],
    }
}

/// Problems in `[routing]`, as (field, problem).
pub fn validate(routing: &RoutingConfig) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut bad = |f: String, p: String| errs.push((f, p));
    if routing.currency.len() != 3 || !routing.currency.chars().all(|c| c.is_ascii_uppercase()) {
        bad(
            "routing.currency".into(),
            format!("`{}`: an ISO 4217 code such as `USD`", routing.currency),
        );
    }
    let p = routing.promise_days;
    if p.standard == 0 || p.expedited == 0 || p.overnight == 0 {
        bad(
            "routing.promise_days".into(),
            "every priority needs at least 1 business day".into(),
        );
    }
    if routing.boxes.is_empty() {
        bad("routing.boxes".into(), "list at least one box".into());
    }
    let mut ids = BTreeSet::new();
    for (i, b) in routing.boxes.iter().enumerate() {
        let at = |f: &str| format!("routing.boxes[{i}].{f}");
        if !ident(&b.id) {
            bad(
                at("id"),
                format!("`{}`: use letters, digits, - and _", b.id),
            );
        } else if !ids.insert(b.id.as_str()) {
            bad(at("id"), format!("`{}` is used by two boxes", b.id));
        }
        if b.length_mm == 0 || b.width_mm == 0 || b.height_mm == 0 {
            bad(at("length_mm"), "every dimension must be > 0".into());
        }
        if b.max_weight_grams <= b.tare_grams {
            bad(
                at("max_weight_grams"),
                "must be more than the box's tare_grams".into(),
            );
        }
    }
    if routing.carriers.is_empty() {
        bad(
            "routing.carriers".into(),
            "list at least one carrier".into(),
        );
    }
    let mut carriers = BTreeSet::new();
    for (i, c) in routing.carriers.iter().enumerate() {
        let at = |f: &str| format!("routing.carriers[{i}].{f}");
        if !ident(&c.id) {
            bad(
                at("id"),
                format!("`{}`: use letters, digits, - and _", c.id),
            );
        } else if !carriers.insert(c.id.as_str()) {
            bad(at("id"), format!("`{}` is used by two carriers", c.id));
        }
        if c.dim_divisor == 0 {
            bad(at("dim_divisor"), "must be > 0 (e.g. 139 or 166)".into());
        }
        if c.zone_miles.len() != ZONES - 1 || c.zone_miles.windows(2).any(|w| w[0] >= w[1]) {
            bad(
                at("zone_miles"),
                format!("{} increasing upper bounds, of zones 1..=7", ZONES - 1),
            );
        }
        for e in &c.exclude {
            let ok = match e.strip_prefix("zip:") {
                Some(p) => !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()),
                None => e.len() == 2 && e.chars().all(|c| c.is_ascii_uppercase()),
            };
            if !ok {
                bad(
                    at("exclude"),
                    format!("`{e}`: a state code (`AK`) or a ZIP prefix (`zip:995`)"),
                );
            }
        }
        if c.services.is_empty() {
            bad(at("services"), "list at least one service".into());
        }
        let mut services = BTreeSet::new();
        for (j, s) in c.services.iter().enumerate() {
            let at = |f: &str| format!("routing.carriers[{i}].services[{j}].{f}");
            if !ident(&s.id) {
                bad(
                    at("id"),
                    format!("`{}`: use letters, digits, - and _", s.id),
                );
            } else if !services.insert(s.id.as_str()) {
                bad(at("id"), format!("`{}` is used twice in {}", s.id, c.id));
            }
            for (f, n) in [
                ("transit_days", s.transit_days.len()),
                ("base_cents", s.base_cents.len()),
                ("per_lb_cents", s.per_lb_cents.len()),
            ] {
                if n != ZONES {
                    bad(
                        at(f),
                        format!("one entry per zone 1..=8 ({ZONES}), not {n}"),
                    );
                }
            }
            if s.transit_days.contains(&0) {
                bad(at("transit_days"), "at least 1 day in every zone".into());
            }
            if s.max_weight_grams == 0 {
                bad(at("max_weight_grams"), "must be > 0".into());
            }
        }
    }
    errs
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_valid() {
        assert_eq!(validate(&sample()), vec![]);
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut r = sample();
        r.currency = "usd".into();
        r.boxes[1].id = r.boxes[0].id.clone();
        r.carriers[0].zone_miles = vec![50, 40];
        r.carriers[1].exclude = vec!["Alaska".into()];
        r.carriers[2].services[0].base_cents.pop();
        let fields: Vec<String> = validate(&r).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "routing.currency",
                "routing.boxes[1].id",
                "routing.carriers[0].zone_miles",
                "routing.carriers[1].exclude",
                "routing.carriers[2].services[0].base_cents",
            ]
        );
    }
}

//! Warehouses and allocation policies: the `[[warehouses]]` and
//! `[allocation]` sections of the config (reference: docs/config.md).
//! Read by allocation (docs/allocation.md); checked with the rest of the
//! config by [`validate`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Who runs a warehouse.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarehouseKind {
    /// The merchant's own warehouse.
    #[default]
    Own,
    /// A third-party logistics provider.
    #[serde(rename = "3pl")]
    ThirdParty,
    /// Fulfilled by Amazon: its stock serves only the channels listed.
    Fba,
    /// A retail store shipping online orders.
    Store,
}

/// One warehouse.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// Stable id used in stock records and events (`[A-Za-z0-9_-]`).
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: WarehouseKind,
    /// ISO 3166-1 alpha-2 country of the ship-from address.
    pub country: String,
    pub postal_code: String,
    /// Coordinates; default: the postal code's centroid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Channels this warehouse may serve; empty = every enabled channel
    /// (an FBA warehouse must list its channels).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Local time after which orders ship the next working day, `HH:MM`.
    #[serde(default = "default_cutoff")]
    pub cutoff: String,
    /// IANA time zone of the cut-off, e.g. `America/New_York`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Lower ranks first among warehouses at the same distance.
    #[serde(default)]
    pub priority: u32,
}

fn default_cutoff() -> String {
    "15:00".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

impl WarehouseConfig {
    /// Whether this warehouse may serve `channel`.
    pub fn serves(&self, channel: &str) -> bool {
        if self.channels.is_empty() {
            self.kind != WarehouseKind::Fba
        } else {
            self.channels.iter().any(|c| c == channel)
        }
    }
}

/// What an order of a channel may do.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Split into several parcels when no warehouse has everything.
    pub split: bool,
    /// Most parcels a split may use.
    pub max_parcels: u32,
    /// Units per SKU x warehouse this channel may not see (a buffer that
    /// keeps stock for other channels).
    pub buffer_units: i64,
}

/// The sample warehouses of the built-in dev config and the example file:
/// Edison NJ (own), Dallas TX (a 3PL, not serving Amazon), Ontario CA (own).
pub fn sample() -> Vec<WarehouseConfig> {
    let w = |id: &str, name: &str, kind, postal: &str, tz: &str, cutoff: &str, priority| {
        WarehouseConfig {
            id: id.into(),
            name: name.into(),
            kind,
            country: "US".into(),
            postal_code: postal.into(),
            lat: None,
            lon: None,
            channels: vec![],
            cutoff: cutoff.into(),
            timezone: tz.into(),
            priority,
        }
    };
    let mut dallas = w(
        "tx-dallas",
        "Dallas, TX (3PL)",
        WarehouseKind::ThirdParty,
        "75201",
        "America/Chicago",
        "14:00",
        1,
    );
    dallas.channels = ["shopify", "tiktok", "ebay", "csv"]
        .map(String::from)
        .to_vec();
    let mut ontario = w(
        "ca-ontario",
        "Ontario, CA",
        WarehouseKind::Own,
        "91761",
        "America/Los_Angeles",
        "13:00",
        1,
    );
    (ontario.lat, ontario.lon) = (Some(34.0355), Some(-117.6231));
    vec![
        w(
            "nj-edison",
            "Edison, NJ",
            WarehouseKind::Own,
            "08817",
            "America/New_York",
            "15:00",
            0,
        ),
        dallas,
        ontario,
    ]
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            split: true,
            max_parcels: 3,
            buffer_units: 0,
        }
    }
}

/// `[allocation]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AllocationConfig {
    /// The policy of channels without their own.
    pub default_policy: PolicyConfig,
    /// Per channel, e.g. `[allocation.policies.amazon] split = false`.
    pub policies: BTreeMap<String, PolicyConfig>,
    /// Units per SKU x warehouse never allocated.
    pub safety_stock: i64,
    /// `inventory.alerts` fires when available falls to this or below.
    pub reorder_point: i64,
    /// Per-SKU reorder points, e.g. `[allocation.reorder_points] "MTG-DMU-BOOSTER" = 40`.
    pub reorder_points: BTreeMap<String, i64>,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        Self {
            default_policy: PolicyConfig::default(),
            policies: BTreeMap::new(),
            safety_stock: 0,
            reorder_point: 10,
            reorder_points: BTreeMap::new(),
        }
    }
}

impl AllocationConfig {
    pub fn policy(&self, channel: &str) -> PolicyConfig {
        self.policies
            .get(channel)
            .copied()
            .unwrap_or(self.default_policy)
    }
}

/// Problems in `[[warehouses]]` and `[allocation]`, as (field, problem).
pub fn validate(
    warehouses: &[WarehouseConfig],
    allocation: &AllocationConfig,
    channels: &[String],
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, w) in warehouses.iter().enumerate() {
        let at = |f: &str| format!("warehouses[{i}].{f}");
        if w.id.is_empty()
            || !w
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errs.push((
                at("id"),
                format!("`{}`: use letters, digits, - and _", w.id),
            ));
        } else if !ids.insert(w.id.as_str()) {
            errs.push((at("id"), format!("`{}` is used by two warehouses", w.id)));
        }
        if w.country.len() != 2 || !w.country.chars().all(|c| c.is_ascii_uppercase()) {
            errs.push((
                at("country"),
                format!("`{}`: an ISO 3166-1 alpha-2 code such as `US`", w.country),
            ));
        }
        if w.postal_code.trim().is_empty() {
            errs.push((at("postal_code"), "must not be empty".into()));
        }
        match (w.lat, w.lon) {
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    errs.push((at("lat"), format!("({lat}, {lon}) is not on the earth")));
                }
            }
            (None, None) => {}
            _ => errs.push((at("lat"), "give both lat and lon, or neither".into())),
        }
        for c in &w.channels {
            if !channel_name(c) {
                errs.push((at("channels"), not_a_channel(c, channels)));
            }
        }
        if w.kind == WarehouseKind::Fba && w.channels.is_empty() {
            errs.push((
                at("channels"),
                "an FBA warehouse must list the channels its stock serves (e.g. [\"amazon\"])"
                    .into(),
            ));
        }
        if !valid_hhmm(&w.cutoff) {
            errs.push((
                at("cutoff"),
                format!("`{}`: a local time `HH:MM`", w.cutoff),
            ));
        }
        if w.timezone != "UTC" && !w.timezone.contains('/') {
            errs.push((
                at("timezone"),
                format!(
                    "`{}`: an IANA zone such as `America/New_York`, or `UTC`",
                    w.timezone
                ),
            ));
        }
    }
    let policies = std::iter::once(("default_policy".to_string(), &allocation.default_policy))
        .chain(
            allocation
                .policies
                .iter()
                .map(|(c, p)| (format!("policies.{c}"), p)),
        );
    for (name, p) in policies {
        if p.max_parcels == 0 {
            errs.push((
                format!("allocation.{name}.max_parcels"),
                "must be at least 1".into(),
            ));
        }
        if p.buffer_units < 0 {
            errs.push((
                format!("allocation.{name}.buffer_units"),
                "must not be negative".into(),
            ));
        }
    }
    for c in allocation.policies.keys() {
        if !channel_name(c) {
            errs.push((
                format!("allocation.policies.{c}"),
                not_a_channel(c, channels),
            ));
        }
    }
    for (sku, p) in &allocation.reorder_points {
        if sku.is_empty() || *p < 0 {
            errs.push((
                format!("allocation.reorder_points.{sku}"),
                "a SKU and a reorder point >= 0".into(),
            ));
        }
    }
    if allocation.reorder_point < 0 {
        errs.push((
            "allocation.reorder_point".into(),
            "must not be negative".into(),
        ));
    }
    if allocation.safety_stock < 0 {
        errs.push((
            "allocation.safety_stock".into(),
            "must not be negative".into(),
        ));
    }
    errs
}

/// A channel as orders carry it: a connector's channel, or a CSV source
/// (`tcgplayer`). Names only: a channel may be disabled for a while.
fn channel_name(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '-' || x == '_')
}

fn not_a_channel(c: &str, channels: &[String]) -> String {
    format!(
        "`{c}` is not a channel name (lower-case letters, digits, - and _; e.g. {})",
        channels.join(", ")
    )
}

fn valid_hhmm(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && s[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(id: &str) -> WarehouseConfig {
        WarehouseConfig {
            id: id.into(),
            name: String::new(),
            kind: WarehouseKind::Own,
            country: "US".into(),
            postal_code: "08817".into(),
            lat: None,
            lon: None,
            channels: vec![],
            cutoff: "15:00".into(),
            timezone: "America/New_York".into(),
            priority: 0,
        }
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let channels = vec!["shopify".to_string(), "amazon".to_string()];
        let mut fba = wh("fba");
        fba.kind = WarehouseKind::Fba;
        let mut bad = wh("east");
        bad.country = "usa".into();
        bad.cutoff = "3pm".into();
        bad.lat = Some(95.0);
        bad.channels = vec!["Etsy Shop".into()];
        let mut alloc = AllocationConfig::default();
        alloc.policies.insert(
            "amazon".into(),
            PolicyConfig {
                split: false,
                max_parcels: 0,
                buffer_units: 0,
            },
        );
        let errs = validate(&[wh("east"), bad, fba], &alloc, &channels);
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "warehouses[1].id",
                "warehouses[1].country",
                "warehouses[1].lat",
                "warehouses[1].channels",
                "warehouses[1].cutoff",
                "warehouses[2].channels",
                "allocation.policies.amazon.max_parcels",
            ],
            "{errs:?}"
        );
        assert!(validate(&[wh("east"), wh("west")], &alloc_ok(), &channels).is_empty());
    }

    fn alloc_ok() -> AllocationConfig {
        AllocationConfig::default()
    }

    #[test]
    fn fba_serves_only_what_it_lists_and_policies_fall_back() {
        let mut fba = wh("fba");
        fba.kind = WarehouseKind::Fba;
        assert!(!fba.serves("shopify"));
        fba.channels = vec!["amazon".into()];
        assert!(fba.serves("amazon") && !fba.serves("shopify"));
        assert!(wh("east").serves("tiktok"));
        let mut a = AllocationConfig::default();
        a.policies.insert(
            "amazon".into(),
            PolicyConfig {
                split: false,
                ..PolicyConfig::default()
            },
        );
        assert!(!a.policy("amazon").split && a.policy("ebay").split);
    }

    #[test]
    fn cutoffs_are_hh_mm() {
        assert!(valid_hhmm("00:00") && valid_hhmm("23:59"));
        assert!(!valid_hhmm("24:00") && !valid_hhmm("9:30") && !valid_hhmm("12:60"));
        assert!(!valid_hhmm("+1:30"));
    }
}

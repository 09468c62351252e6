//! The sync-back stage's settings: the `[syncback]` section of the config
//! (reference: docs/config.md). Read by `conveyor run syncback`
//! (docs/syncback.md). Credentials and API URLs are the channels' own
//! (`[channels.<channel>]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[syncback]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncbackConfig {
    /// Channels whose orders get their tracking pushed. A labeled shipment
    /// of another channel (CSV imports, a channel left out here) is
    /// recorded as NOT_SYNCED.
    pub channels: Vec<String>,
    /// Shopify: email the buyer the tracking (`notify_customer`).
    pub notify_customer: bool,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Attempts per call before the record is handed back to the runtime
    /// to retry later (never skipped).
    pub max_attempts: u32,
    /// Consecutive failed calls to one channel that open its circuit
    /// breaker, and how long it stays open before one trial call.
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    /// Channel -> calls per second toward its API (default: the channel's
    /// published standard limit: Shopify 2/s, Amazon confirmShipment 2/s,
    /// TikTok `channels.tiktok.api_rate_per_sec`, eBay 10/s). Raise it for
    /// plans with more (Shopify Plus: 20/s).
    pub rate_per_sec: BTreeMap<String, f64>,
    /// Carrier id -> the carrier's name as the channels know it (Shopify's
    /// tracking company, Amazon's carrierCode, eBay's shippingCarrierCode).
    pub carrier_names: BTreeMap<String, String>,
    /// Carrier id -> TikTok Shop `shipping_provider_id` (from Get Shipping
    /// Providers for the shop's delivery option).
    pub tiktok_provider_ids: BTreeMap<String, String>,
}

impl Default for SyncbackConfig {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Self {
            channels: ["shopify", "amazon", "tiktok", "ebay"]
                .map(String::from)
                .to_vec(),
            notify_customer: true,
            timeout_ms: 10_000,
            max_attempts: 5,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
            rate_per_sec: BTreeMap::new(),
            carrier_names: map(&[("usps", "USPS"), ("ups", "UPS"), ("fedex", "FedEx")]),
            tiktok_provider_ids: map(&[
                ("usps", "6617675021119438849"),
                ("ups", "6617675021119438850"),
                ("fedex", "6617675021119438851"),
            ]),
        }
    }
}

/// Channels sync-back can push to.
pub const CHANNELS: &[&str] = &["shopify", "amazon", "tiktok", "ebay"];

/// Problems in `[syncback]`, as (field, problem).
pub fn validate(s: &SyncbackConfig) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut bad = |f: &str, p: String| errs.push((format!("syncback.{f}"), p));
    for c in &s.channels {
        if !CHANNELS.contains(&c.as_str()) {
            bad(
                "channels",
                format!("`{c}` has no sync-back; one of {}", CHANNELS.join(", ")),
            );
        }
    }
    for (c, r) in &s.rate_per_sec {
        if !CHANNELS.contains(&c.as_str()) {
            bad("rate_per_sec", format!("`{c}` has no sync-back"));
        }
        if !(r.is_finite() && *r > 0.0) {
            bad(&format!("rate_per_sec.{c}"), "must be > 0".into());
        }
    }
    if s.timeout_ms == 0 {
        bad("timeout_ms", "must be > 0".into());
    }
    if s.max_attempts == 0 {
        bad("max_attempts", "must be >= 1".into());
    }
    if s.breaker_failures == 0 {
        bad("breaker_failures", "must be >= 1".into());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_channels_are_named() {
        assert!(validate(&SyncbackConfig::default()).is_empty());
        let s = SyncbackConfig {
            channels: vec!["csv".into()],
            max_attempts: 0,
            ..SyncbackConfig::default()
        };
        let errs = validate(&s);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].1.contains("`csv` has no sync-back"));
    }
}

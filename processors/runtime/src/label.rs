//! The label stage's settings: the `[label]` section of the config
//! (reference: docs/config.md). Read by `conveyor run label`
//! (docs/labels.md); checked with the rest of the config by [`validate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// `[label]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// Base URL of the Shippo-style label API; the default is the local
    /// simulator (`conveyor simulate carrier`).
    pub api_url: String,
    /// API token, sent as `Authorization: ShippoToken <token>`.
    pub api_token: Secret,
    /// Label format asked for (`PDF_4x6`).
    pub label_file_type: String,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Attempts per purchase before the record is handed back to the
    /// runtime to retry later (never skipped).
    pub max_attempts: u32,
    /// Requests per second toward the API, and the burst allowed.
    pub rate_per_sec: f64,
    pub burst: u32,
    /// Purchases in flight at once within a batch (1: one after another).
    /// Within the rate limit: concurrency hides the API's latency, the
    /// token bucket still caps the calls per second.
    pub concurrency: usize,
    /// Consecutive failed calls that open the circuit breaker, and how long
    /// it stays open before one trial call.
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    /// Where documents go: a directory (`file:///abs/path` or a plain
    /// path, relative to the working directory) or an HTTP(S) object-store
    /// URL that takes `PUT <url>/<name>`.
    pub documents: String,
    /// The merchant's name on packing slips.
    pub merchant_name: String,
    /// A line for the customer at the end of every slip.
    pub merchant_message: String,
    /// Carrier id -> carrier account id at the label API (default: the
    /// carrier id itself).
    pub carrier_accounts: BTreeMap<String, String>,
}

impl Default for LabelConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:8095".into(),
            api_token: Secret::new("shippo_test_conveyor"),
            label_file_type: "PDF_4x6".into(),
            timeout_ms: 10_000,
            max_attempts: 5,
            rate_per_sec: 50.0,
            burst: 20,
            concurrency: 16,
            breaker_failures: 5,
            breaker_open_ms: 10_000,
            documents: ".conveyor/documents".into(),
            merchant_name: "Card Corner".into(),
            merchant_message: "Thank you for your order! Questions: support@cardcorner.example"
                .into(),
            carrier_accounts: BTreeMap::new(),
        }
    }
}

/// Problems in `[label]`, as (field, problem).
pub fn validate(l: &LabelConfig) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut bad = |f: &str, p: &str| errs.push((format!("label.{f}"), p.to_string()));
    if !(l.api_url.starts_with("http://") || l.api_url.starts_with("https://")) {
        bad("api_url", "an http:// or https:// URL");
    }
    if l.timeout_ms == 0 {
        bad("timeout_ms", "must be > 0");
    }
    if l.max_attempts == 0 {
        bad("max_attempts", "must be >= 1");
    }
    if l.rate_per_sec <= 0.0 || l.rate_per_sec.is_nan() {
        bad("rate_per_sec", "must be > 0");
    }
    if l.breaker_failures == 0 {
        bad("breaker_failures", "must be >= 1");
    }
    if !(1..=256).contains(&l.concurrency) {
        bad("concurrency", "between 1 and 256");
    }
    if l.documents.trim().is_empty() {
        bad("documents", "a directory, file:// URL or http(s):// URL");
    }
    if l.label_file_type.trim().is_empty() {
        bad("label_file_type", "e.g. PDF_4x6");
    }
    errs
}

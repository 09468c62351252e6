//! Sync-back: tells each sales channel that a parcel left, with its
//! carrier and tracking number, in the channel's own terms (docs/syncback.md):
//!
//! - Shopify: the order's fulfillment orders (`GET
//!   /orders/{id}/fulfillment_orders.json`), then one fulfillment over the
//!   parcel's fulfillment-order line items with `tracking_info`
//!   (`POST /fulfillments.json`);
//! - Amazon SP-API: `confirmShipment` (`POST
//!   /orders/v0/orders/{id}/shipmentConfirmation`) with a package reference
//!   id derived from the shipment id and the parcel's order items;
//! - TikTok Shop: Mark Package As Shipped (`POST
//!   /fulfillment/202309/orders/{id}/packages`), seller shipping's "ship
//!   package", over the parcel's units (TikTok lists one line item per unit);
//! - eBay: `createShippingFulfillment` (`POST
//!   /sell/fulfillment/v1/order/{id}/shipping_fulfillment`).
//!
//! Idempotency (G2), per channel, because a crash can fall between the
//! channel's answer and the commit of what it said:
//! - Shopify, TikTok and eBay are asked first what they already hold (the
//!   order's fulfillments, its units' tracking numbers, its shipping
//!   fulfillments); a parcel whose tracking number is there is reported
//!   ALREADY_CONFIRMED and nothing is created. One order's parcels are
//!   handled by one worker in order (the topic is keyed by order, G5), so
//!   no other writer races the check.
//! - Amazon's packageReferenceId is deterministic: the same confirmation
//!   sent again names the same package.
//!
//! Every call goes through [`conveyor_runtime::guarded`]: the channel's
//! published rate, retries with backoff on 429/5xx/timeouts, a circuit
//! breaker per channel. A refusal that retrying will not change (unknown
//! order, units already fulfilled, a cancelled order) is returned as
//! [`CallError::Refused`] with a code; the job turns it into an exception.

pub mod amazon;
pub mod ebay;
pub mod job;
pub mod shopify;
pub mod tiktok;

use std::time::Duration;

use conveyor_runtime::config::Config;
use conveyor_runtime::guarded::{Attempt, CallError, Policy, Refusal};
use conveyor_runtime::syncback::SyncbackConfig;
use conveyor_schemas::records::{LabeledShipment, LineQty};

/// A parcel to report, as sync-back needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub shipment_id: String,
    pub order_id: String,
    pub channel: String,
    /// The channel's order id.
    pub external_order_id: String,
    pub carrier: String,
    pub service: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    /// Channel line ids and units.
    pub lines: Vec<LineQty>,
    /// When the label was bought (the ship date the channel is told).
    pub shipped_at: i64,
}

impl Parcel {
    /// The parcel of a labeled shipment: the channel and its order id come
    /// from conveyor's order id, `<channel>:<channel order id>`.
    pub fn from_labeled(l: &LabeledShipment) -> Result<Parcel, String> {
        let (channel, external) = l
            .order_id
            .split_once(':')
            .filter(|(c, e)| !c.is_empty() && !e.is_empty())
            .ok_or_else(|| format!("order id `{}` is not <channel>:<id>", l.order_id))?;
        Ok(Parcel {
            shipment_id: l.shipment_id.clone(),
            order_id: l.order_id.clone(),
            channel: channel.to_string(),
            external_order_id: external.to_string(),
            carrier: l.carrier.clone(),
            service: l.service.clone(),
            tracking_number: l.tracking_number.clone(),
            tracking_url: l.tracking_url.clone(),
            lines: l.lines.clone(),
            shipped_at: l.labeled_at,
        })
    }

    /// The ship date as RFC 3339 UTC with milliseconds.
    pub fn shipped_date(&self) -> String {
        jiff::Timestamp::from_millisecond(self.shipped_at)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
    }
}

/// What the channel holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// This call created it; the channel's id for it.
    Confirmed(String),
    /// The channel had this tracking number already (a retry after a
    /// crash); the channel's id for it.
    AlreadyConfirmed(String),
}

/// The per-channel clients, for the channels `[syncback]` lists.
pub struct Channels {
    pub shopify: Option<shopify::Client>,
    pub amazon: Option<amazon::Client>,
    pub tiktok: Option<tiktok::Client>,
    pub ebay: Option<ebay::Client>,
}

impl Channels {
    pub fn new(config: &Config) -> Channels {
        let s = &config.syncback;
        let on = |c: &str| s.channels.iter().any(|x| x == c);
        Channels {
            shopify: on("shopify").then(|| shopify::Client::new(&config.channels.shopify, s)),
            amazon: on("amazon").then(|| amazon::Client::new(&config.channels.amazon, s)),
            tiktok: on("tiktok").then(|| tiktok::Client::new(&config.channels.tiktok, s)),
            ebay: on("ebay").then(|| ebay::Client::new(&config.channels.ebay, s)),
        }
    }

    /// Reports `p` to its channel; `None` when sync-back does not cover
    /// the channel.
    pub async fn push(&self, p: &Parcel) -> Option<Result<Pushed, CallError>> {
        if p.lines.is_empty() {
            return Some(Err(CallError::Refused(Refusal::new(
                "no_lines",
                "the labeled shipment names no order lines (labeled before lines were recorded): tell the channel by hand",
            ))));
        }
        Some(match p.channel.as_str() {
            "shopify" => self.shopify.as_ref()?.push(p).await,
            "amazon" => self.amazon.as_ref()?.push(p).await,
            "tiktok" => self.tiktok.as_ref()?.push(p).await,
            "ebay" => self.ebay.as_ref()?.push(p).await,
            _ => return None,
        })
    }
}

impl Channels {
    /// Takes back the tracking of `p`, whose label was voided after the
    /// channel was told (`reference`: the channel's id for it). Shopify
    /// cancels the fulfillment; Amazon, TikTok Shop and eBay have no call
    /// to take a confirmation back: refused, for an operator to correct by
    /// hand.
    pub async fn withdraw(&self, p: &Parcel, reference: &str) -> Result<(), CallError> {
        match (p.channel.as_str(), &self.shopify) {
            ("shopify", Some(s)) => s.withdraw(reference).await,
            _ => Err(CallError::Refused(Refusal::new(
                "withdraw_by_hand",
                format!(
                    "the label of {} was voided after {} was told (reference {reference}, tracking {}); {} has no API call to take it back",
                    p.shipment_id, p.channel, p.tracking_number, p.channel
                ),
            ))),
        }
    }
}

/// The call policy of `channel`: its published rate (or `[syncback]
/// rate_per_sec`'s), `[syncback]`'s attempts and breaker.
pub(crate) fn policy(s: &SyncbackConfig, channel: &str, rate_per_sec: f64, burst: u32) -> Policy {
    let rate = s.rate_per_sec.get(channel).copied().unwrap_or(rate_per_sec);
    Policy {
        rate_per_sec: rate,
        burst: burst.max(rate.ceil() as u32),
        max_attempts: s.max_attempts,
        breaker_failures: s.breaker_failures,
        breaker_open: Duration::from_millis(s.breaker_open_ms),
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(10),
    }
}

pub(crate) fn http(s: &SyncbackConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(s.timeout_ms))
        .connect_timeout(Duration::from_millis(s.timeout_ms.min(5_000)))
        .build()
        .unwrap_or_default()
}

/// One HTTP exchange, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The start of the body, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }

    /// The attempt a non-2xx answer is: retried (429, 5xx, 401/403...) or
    /// refused, with `code` for a 404 and the channel's words.
    pub fn failed<T>(&self, not_found: &str) -> Attempt<T> {
        if self.status == 404 {
            return Attempt::Refused(Refusal::new(
                not_found,
                format!("HTTP 404: {}", self.text()),
            ));
        }
        match conveyor_runtime::guarded::classify(self.status, &self.text(), self.retry_after) {
            Attempt::Refused(r) => Attempt::Refused(Refusal::new("channel_refused", r.reason)),
            other => other,
        }
    }
}

/// Sends `req`; a transport failure is an attempt worth retrying.
pub(crate) async fn exchange(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            // Without the URL: TikTok's carries the signature.
            format!("transport: {}", e.without_url())
        }
    })?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = conveyor_runtime::guarded::retry_after(header("retry-after").as_deref());
    let location = header("location");
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?
        .to_vec();
    Ok(Answer {
        status,
        retry_after,
        location,
        body,
    })
}

/// The name the channels know `carrier` by (`[syncback.carrier_names]`,
/// else the id as given).
pub(crate) fn carrier_name(s: &SyncbackConfig, carrier: &str) -> String {
    s.carrier_names
        .get(carrier)
        .cloned()
        .unwrap_or_else(|| carrier.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_schemas::samples;

    #[test]
    fn a_parcel_comes_from_a_labeled_shipment() {
        let l = samples::labeled_shipment(3, 1_763_800_000_000);
        let p = Parcel::from_labeled(&l).unwrap();
        assert_eq!(
            (p.channel.as_str(), p.external_order_id.as_str()),
            ("shopify", "100003")
        );
        assert_eq!(p.lines, l.lines);
        assert_eq!(p.shipped_date(), "2025-11-22T08:26:40.003Z");
        let mut bad = l.clone();
        bad.order_id = "no-channel".into();
        assert!(Parcel::from_labeled(&bad)
            .unwrap_err()
            .contains("<channel>:<id>"));
    }
}

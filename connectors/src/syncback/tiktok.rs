//! TikTok Shop: Mark Package As Shipped (`POST
//! /fulfillment/202309/orders/{order_id}/packages`), how a seller-shipped
//! order's package is shipped with the seller's own carrier: the body names
//! the units (`order_line_item_ids`), the `tracking_number` and the
//! `shipping_provider_id`; the answer is the new `package_id` (and a
//! `warning` when TikTok doubts the tracking number, which is logged).
//!
//! TikTok lists one line item per unit; normalize folded units with the
//! same `sku_id`, `seller_sku` and `sale_price` into one line named by its
//! first unit's id. So the units of a parcel's line are found again in the
//! order (Get Order Detail): the unit the line is named by, then the
//! other units of its kind that carry no tracking number yet. A unit
//! already carrying this parcel's tracking number means the parcel was
//! reported before (ALREADY_CONFIRMED); too few units left is a refusal.
//!
//! Requests are signed like every TikTok Shop API call (`sign` over the
//! path, the sorted parameters and the JSON body, with the newest app
//! secret, falling back to the previous one during a rotation).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use conveyor_runtime::config::{Secret, TikTokConfig};
use conveyor_runtime::guarded::{Attempt, CallError, Guard, Made, Refusal};
use conveyor_runtime::syncback::SyncbackConfig;
use serde_json::{json, Value};

use super::{exchange, Parcel, Pushed};
use crate::tiktok::client::{codes, unix_now, ApiClient, ApiError};
use crate::tiktok::sign::api_sign;

/// The Mark Package As Shipped path of an order.
pub fn path(order_id: &str) -> String {
    format!("/fulfillment/202309/orders/{order_id}/packages")
}

pub struct Client {
    orders: Arc<ApiClient>,
    http: reqwest::Client,
    base: String,
    app_key: String,
    secrets: Vec<Secret>,
    active: AtomicUsize,
    access_token: Secret,
    shop_cipher: String,
    guard: Guard,
    config: SyncbackConfig,
}

/// What the order says about a parcel's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Units {
    /// Already shipped with this tracking number, in this package.
    Shipped(String),
    /// These unit ids are to be shipped.
    ToShip(Vec<String>),
}

impl Client {
    pub fn new(c: &TikTokConfig, s: &SyncbackConfig) -> Client {
        let rate = c.api_rate_per_sec.max(0.1);
        Client {
            orders: Arc::new(ApiClient::new(c)),
            http: super::http(s),
            base: c.api_url.trim_end_matches('/').to_string(),
            app_key: c.app_key.clone(),
            secrets: c
                .app_secrets
                .iter()
                .filter(|x| !x.is_empty())
                .cloned()
                .collect(),
            active: AtomicUsize::new(0),
            access_token: c.access_token.clone(),
            shop_cipher: c.shop_cipher.clone(),
            guard: Guard::new(
                "conveyor_syncback_api_errors_total",
                super::policy(s, "tiktok", rate, (rate.ceil() as u32).max(1)),
            ),
            config: s.clone(),
        }
    }

    /// The parcel's units as the order shows them now.
    async fn check(&self, p: &Parcel) -> Result<Units, CallError> {
        let id = &p.external_order_id;
        let detail = self
            .orders
            .get_orders(std::slice::from_ref(id))
            .await
            .map_err(|e| match e {
                ApiError::Api { status, .. } if status < 500 => {
                    CallError::Refused(Refusal::new("channel_refused", e.to_string()))
                }
                // Credentials and signatures are fixed by an operator; the
                // record waits (retried) rather than dead-lettering all.
                other => CallError::Unavailable(other.to_string()),
            })?;
        let Some(order) = detail.orders.first() else {
            return Err(CallError::Refused(Refusal::new(
                "order_not_found",
                format!("Get Order Detail returned no order {id}"),
            )));
        };
        if order["status"].as_str() == Some("CANCELLED") {
            return Err(CallError::Refused(Refusal::new(
                "order_cancelled",
                format!("TikTok order {id} is CANCELLED"),
            )));
        }
        units(p, order).map_err(CallError::Refused)
    }

    pub async fn push(&self, p: &Parcel) -> Result<Pushed, CallError> {
        let provider = self
            .config
            .tiktok_provider_ids
            .get(&p.carrier)
            .ok_or_else(|| {
                CallError::Refused(Refusal::new(
                    "provider_unknown",
                    format!(
                        "no syncback.tiktok_provider_ids entry for carrier `{}`",
                        p.carrier
                    ),
                ))
            })?;
        let body: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        let made = self
            .guard
            .create(
                "mark package as shipped",
                || async {
                    Ok(match self.check(p).await? {
                        Units::Shipped(package) => Some(package),
                        Units::ToShip(ids) => {
                            *body.lock().unwrap_or_else(|e| e.into_inner()) =
                                serde_json::to_vec(&json!({
                                    "order_line_item_ids": ids,
                                    "tracking_number": p.tracking_number,
                                    "shipping_provider_id": provider,
                                }))
                                .unwrap_or_default();
                            None
                        }
                    })
                },
                || async {
                    let b = body.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    self.mark(&p.external_order_id, &b).await
                },
            )
            .await?;
        Ok(match made {
            Made::New(package) => Pushed::Confirmed(package),
            Made::Found(package) => Pushed::AlreadyConfirmed(package),
        })
    }

    async fn mark(&self, order_id: &str, body: &[u8]) -> Attempt<String> {
        if self.secrets.is_empty() {
            return Attempt::Again(
                "channels.tiktok.app_secrets is empty: requests cannot be signed".into(),
                None,
            );
        }
        let at = self.active.load(Ordering::Relaxed) % self.secrets.len();
        let ts = unix_now().to_string();
        let mut params: Vec<(&str, &str)> = vec![("app_key", &self.app_key), ("timestamp", &ts)];
        if !self.shop_cipher.is_empty() {
            params.push(("shop_cipher", &self.shop_cipher));
        }
        let mut url = match reqwest::Url::parse(&format!("{}{}", self.base, path(order_id))) {
            Ok(u) => u,
            Err(e) => return Attempt::Again(format!("bad channels.tiktok.api_url: {e}"), None),
        };
        let sign = api_sign(
            self.secrets[at].expose(),
            url.path(),
            params.iter().copied(),
            body,
        );
        url.query_pairs_mut()
            .extend_pairs(params.iter().copied())
            .append_pair("sign", &sign);
        let req = self
            .http
            .post(url)
            .header("x-tts-access-token", self.access_token.expose())
            .header("content-type", "application/json")
            .body(body.to_vec());
        let a = match exchange(req).await {
            Ok(a) => a,
            Err(why) => return Attempt::Again(why, None),
        };
        let v = a.json();
        let code = v["code"].as_i64();
        let message = v["message"].as_str().unwrap_or_default();
        if (200..300).contains(&a.status) && code == Some(codes::SUCCESS) {
            if let Some(w) = v["data"]["warning"]["message"].as_str() {
                tracing::warn!(order_id, warning = w, "TikTok doubts the tracking number");
            }
            return match v["data"]["package_id"].as_str() {
                Some(p) => Attempt::Done(p.to_string()),
                None => Attempt::Again("answer without data.package_id".into(), None),
            };
        }
        let why = format!("HTTP {}, code {code:?}: {message}", a.status);
        match code {
            Some(codes::TOO_MANY_REQUESTS) => Attempt::Throttled(why, a.retry_after),
            Some(codes::INTERNAL_ERROR | codes::REQUEST_TIMEOUT) => Attempt::Again(why, None),
            Some(codes::INVALID_SIGN) => {
                // The next configured secret signs the next attempt.
                self.active.store(at + 1, Ordering::Relaxed);
                Attempt::Again(why, None)
            }
            Some(codes::EXPIRED_TOKEN | codes::NO_SCOPE | codes::MISSING_SHOP_CIPHER) => {
                Attempt::Again(why, None)
            }
            _ if a.status == 429 => Attempt::Throttled(why, a.retry_after),
            _ if a.status >= 500 => Attempt::Again(why, a.retry_after),
            _ => Attempt::Refused(Refusal::new("channel_refused", why)),
        }
    }
}

/// The units of `p` in the TikTok `order` (Get Order Detail's shape).
pub fn units(p: &Parcel, order: &Value) -> Result<Units, Refusal> {
    let items: Vec<&Value> = order["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    if let Some(done) = items
        .iter()
        .find(|u| u["tracking_number"].as_str() == Some(p.tracking_number.as_str()))
    {
        return Ok(Units::Shipped(text(done, "package_id")));
    }
    let mut picked: Vec<String> = Vec::new();
    for line in &p.lines {
        let Some(first) = items.iter().find(|u| text(u, "id") == line.line_id) else {
            return Err(Refusal::new(
                "line_not_found",
                format!(
                    "order {} has no line item {} ({})",
                    p.external_order_id, line.line_id, line.sku
                ),
            ));
        };
        let kind = |u: &Value| {
            (
                text(u, "sku_id"),
                text(u, "seller_sku"),
                text(u, "sale_price"),
            )
        };
        let want = kind(first);
        let free: Vec<String> = items
            .iter()
            .filter(|u| kind(u) == want)
            .filter(|u| text(u, "tracking_number").is_empty())
            .filter(|u| text(u, "display_status") != "CANCELLED")
            .map(|u| text(u, "id"))
            .filter(|id| !picked.contains(id))
            .collect();
        let n = usize::try_from(line.quantity).unwrap_or(0);
        if free.len() < n {
            return Err(Refusal::new(
                "quantity_exceeded",
                format!(
                    "line {} ({}): the parcel holds {} units but {} remain unshipped",
                    line.line_id,
                    line.sku,
                    line.quantity,
                    free.len()
                ),
            ));
        }
        // The unit the line is named by first, then the others in order.
        let mut ordered = free;
        ordered.sort_by_key(|id| (id != &line.line_id, id.clone()));
        picked.extend(ordered.into_iter().take(n));
    }
    Ok(Units::ToShip(picked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_schemas::records::LineQty;

    fn unit(id: &str, sku: &str, tracking: &str) -> Value {
        json!({"id": id, "sku_id": format!("sku-{sku}"), "seller_sku": sku, "sale_price": "4.99",
               "display_status": "AWAITING_SHIPMENT", "tracking_number": tracking,
               "package_id": if tracking.is_empty() { "" } else { "pkg-1" }})
    }

    fn parcel(lines: &[(&str, &str, i32)], tracking: &str) -> Parcel {
        Parcel {
            shipment_id: "tiktok:1/AUS-1/1".into(),
            order_id: "tiktok:1".into(),
            channel: "tiktok".into(),
            external_order_id: "1".into(),
            carrier: "usps".into(),
            service: "ground_advantage".into(),
            tracking_number: tracking.into(),
            tracking_url: None,
            lines: lines
                .iter()
                .map(|(id, sku, q)| LineQty {
                    line_id: id.to_string(),
                    sku: sku.to_string(),
                    quantity: *q,
                })
                .collect(),
            shipped_at: 0,
        }
    }

    #[test]
    fn a_line_ships_its_own_units_of_its_kind() {
        let order = json!({"line_items": [
            unit("10", "A", ""), unit("11", "A", ""), unit("12", "A", ""), unit("20", "B", "")]});
        let u = units(&parcel(&[("10", "A", 2), ("20", "B", 1)], "T1"), &order).unwrap();
        assert_eq!(
            u,
            Units::ToShip(vec!["10".into(), "11".into(), "20".into()])
        );
    }

    #[test]
    fn shipped_units_are_recognised_and_not_shipped_twice() {
        let order = json!({"line_items": [
            unit("10", "A", "T1"), unit("11", "A", ""), unit("20", "B", "")]});
        assert_eq!(
            units(&parcel(&[("10", "A", 1)], "T1"), &order).unwrap(),
            Units::Shipped("pkg-1".into())
        );
        // Another parcel of the same line takes what is left.
        assert_eq!(
            units(&parcel(&[("10", "A", 1)], "T2"), &order).unwrap(),
            Units::ToShip(vec!["11".into()])
        );
        let e = units(&parcel(&[("10", "A", 2)], "T2"), &order).unwrap_err();
        assert_eq!(e.code, "quantity_exceeded");
        let e = units(&parcel(&[("99", "A", 1)], "T2"), &order).unwrap_err();
        assert_eq!(e.code, "line_not_found");
    }
}

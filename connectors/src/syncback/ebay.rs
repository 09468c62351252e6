//! eBay Sell Fulfillment API: `createShippingFulfillment` (`POST
//! /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment`, `201
//! Created` with the new fulfillment's URL in `Location`), after
//! `getShippingFulfillments` on the same path: a fulfillment with this
//! tracking number already there is the parcel, reported before.
//!
//! The user access token comes from the refresh token with the
//! `sell.fulfillment` scope (refreshed on expiry and on a 401).

use conveyor_runtime::config::EbayConfig;
use conveyor_runtime::guarded::{Attempt, CallError, Guard, Made};
use conveyor_runtime::syncback::SyncbackConfig;
use serde_json::{json, Value};

use super::{carrier_name, exchange, Parcel, Pushed};
use crate::oauth::RefreshingToken;

/// The Fulfillment API's call limit is per day (100,000); bursts are
/// spread at 10/s.
pub const RATE: (f64, u32) = (10.0, 10);

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: RefreshingToken,
    guard: Guard,
    config: SyncbackConfig,
}

impl Client {
    pub fn new(c: &EbayConfig, s: &SyncbackConfig) -> Client {
        let mut token = RefreshingToken::new(
            &c.token_url,
            &c.client_id,
            c.client_secret.clone(),
            c.refresh_token.clone(),
            true,
        );
        token
            .extra
            .push(("scope".into(), crate::ebay::SCOPE.into()));
        Client {
            http: super::http(s),
            base: c.api_url.trim_end_matches('/').to_string(),
            token,
            guard: Guard::new(
                "conveyor_syncback_api_errors_total",
                super::policy(s, "ebay", RATE.0, RATE.1),
            ),
            config: s.clone(),
        }
    }

    /// The `createShippingFulfillment` body for `p`.
    pub fn request(&self, p: &Parcel) -> Value {
        json!({
            "lineItems": p.lines.iter().map(|l| json!({
                "lineItemId": l.line_id,
                "quantity": l.quantity,
            })).collect::<Vec<_>>(),
            "shippedDate": p.shipped_date(),
            "shippingCarrierCode": carrier_name(&self.config, &p.carrier),
            "trackingNumber": p.tracking_number,
        })
    }

    /// One authorized GET with retries; the answer of a 2xx.
    async fn get(&self, what: &str, url: &str) -> Result<super::Answer, CallError> {
        self.guard
            .call(what, true, || async {
                let token = match self.token.get(&self.http).await {
                    Ok(t) => t,
                    Err(e) => return Attempt::Again(e.to_string(), None),
                };
                let req = self.http.get(url).bearer_auth(token);
                match exchange(req).await {
                    Err(why) => Attempt::Again(why, None),
                    Ok(a) if (200..300).contains(&a.status) => Attempt::Done(a),
                    Ok(a) => {
                        if a.status == 401 {
                            self.token.invalidate().await;
                        }
                        a.failed("order_not_found")
                    }
                }
            })
            .await
    }

    pub async fn push(&self, p: &Parcel) -> Result<Pushed, CallError> {
        let url = format!(
            "{}/sell/fulfillment/v1/order/{}/shipping_fulfillment",
            self.base, p.external_order_id
        );
        let body = self.request(p);
        let made = self
            .guard
            .create(
                "createShippingFulfillment",
                || async {
                    let held = self.get("getShippingFulfillments", &url).await?.json();
                    Ok(held["fulfillments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|f| {
                            f["shipmentTrackingNumber"].as_str() == Some(p.tracking_number.as_str())
                        })
                        .map(|f| f["fulfillmentId"].as_str().unwrap_or_default().to_string()))
                },
                || async {
                    match self.once(&url, &body).await {
                        Err(why) => Attempt::Again(why, None),
                        Ok(a) if (200..300).contains(&a.status) => Attempt::Done(
                            a.location
                                .as_deref()
                                .and_then(|l| l.rsplit('/').next())
                                .filter(|s| !s.is_empty())
                                .unwrap_or(&p.tracking_number)
                                .to_string(),
                        ),
                        Ok(a) => {
                            if a.status == 401 {
                                self.token.invalidate().await;
                            }
                            a.failed("order_not_found")
                        }
                    }
                },
            )
            .await?;
        Ok(match made {
            Made::New(id) => Pushed::Confirmed(id),
            Made::Found(id) => Pushed::AlreadyConfirmed(id),
        })
    }

    /// One authorized POST of `body`.
    async fn once(&self, url: &str, body: &Value) -> Result<super::Answer, String> {
        let token = self
            .token
            .get(&self.http)
            .await
            .map_err(|e| e.to_string())?;
        exchange(self.http.post(url).json(body).bearer_auth(token)).await
    }
}

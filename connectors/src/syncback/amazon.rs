//! Amazon SP-API `confirmShipment` (Orders API v0): `POST
//! /orders/v0/orders/{orderId}/shipmentConfirmation` with the Login with
//! Amazon access token (`x-amz-access-token`, refreshed on expiry and on a
//! 401/403), answered `204 No Content`.
//!
//! The package is named by `packageReferenceId`, which Amazon wants a
//! positive number unique within the order: [`package_reference`] derives
//! it from the shipment id, so a confirmation sent again after a crash
//! names the same package and Amazon keeps one. Order items are the
//! parcel's lines (`orderItemId` = the channel line id).
//!
//! The operation's published limit is 2 requests/s with a burst of 10;
//! answers carry `x-amzn-RateLimit-Limit`.

use conveyor_runtime::config::AmazonConfig;
use conveyor_runtime::guarded::{Attempt, CallError, Guard};
use conveyor_runtime::syncback::SyncbackConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{carrier_name, exchange, Parcel, Pushed};
use crate::oauth::RefreshingToken;

pub const RATE: (f64, u32) = (2.0, 10);

pub struct Client {
    http: reqwest::Client,
    base: String,
    marketplace_id: String,
    token: RefreshingToken,
    guard: Guard,
    config: SyncbackConfig,
}

/// The package reference of a shipment: a positive decimal number (48
/// bits of the SHA-256 of the shipment id, plus one).
pub fn package_reference(shipment_id: &str) -> String {
    let d = Sha256::digest(shipment_id.as_bytes());
    let mut n = 0u64;
    for b in &d[..6] {
        n = (n << 8) | u64::from(*b);
    }
    (n + 1).to_string()
}

impl Client {
    pub fn new(c: &AmazonConfig, s: &SyncbackConfig) -> Client {
        Client {
            http: super::http(s),
            base: c.api_url.trim_end_matches('/').to_string(),
            marketplace_id: c.marketplace_ids.first().cloned().unwrap_or_default(),
            token: RefreshingToken::new(
                &c.lwa_url,
                &c.client_id,
                c.client_secret.clone(),
                c.refresh_token.clone(),
                false,
            ),
            guard: Guard::new(
                "conveyor_syncback_api_errors_total",
                super::policy(s, "amazon", RATE.0, RATE.1),
            ),
            config: s.clone(),
        }
    }

    /// The `confirmShipment` body for `p`.
    pub fn request(&self, p: &Parcel) -> Value {
        json!({
            "marketplaceId": self.marketplace_id,
            "packageDetail": {
                "packageReferenceId": package_reference(&p.shipment_id),
                "carrierCode": carrier_name(&self.config, &p.carrier),
                "shippingMethod": p.service,
                "trackingNumber": p.tracking_number,
                "shipDate": p.shipped_date(),
                "orderItems": p.lines.iter().map(|l| json!({
                    "orderItemId": l.line_id,
                    "quantity": l.quantity,
                })).collect::<Vec<_>>(),
            }
        })
    }

    pub async fn push(&self, p: &Parcel) -> Result<Pushed, CallError> {
        let url = format!(
            "{}/orders/v0/orders/{}/shipmentConfirmation",
            self.base, p.external_order_id
        );
        let body = self.request(p);
        self.guard
            .call("confirmShipment", true, || async {
                let token = match self.token.get(&self.http).await {
                    Ok(t) => t,
                    Err(e) => return Attempt::Again(e.to_string(), None),
                };
                let req = self
                    .http
                    .post(&url)
                    .header("x-amz-access-token", token)
                    .json(&body);
                match exchange(req).await {
                    Err(why) => Attempt::Again(why, None),
                    Ok(a) if (200..300).contains(&a.status) => Attempt::Done(()),
                    Ok(a) => {
                        if matches!(a.status, 401 | 403) {
                            self.token.invalidate().await;
                        }
                        a.failed("order_not_found")
                    }
                }
            })
            .await?;
        Ok(Pushed::Confirmed(package_reference(&p.shipment_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_references_are_positive_numbers_fixed_by_the_shipment() {
        let a = package_reference("amazon:114-3941689-8772232/AUS-1/1");
        assert_eq!(a, package_reference("amazon:114-3941689-8772232/AUS-1/1"));
        assert_ne!(a, package_reference("amazon:114-3941689-8772232/AUS-1/2"));
        let n: u64 = a.parse().unwrap();
        assert!((1..=1 << 48).contains(&n));
    }
}

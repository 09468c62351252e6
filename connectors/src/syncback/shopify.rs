//! Shopify: a fulfillment with tracking over the parcel's fulfillment-order
//! line items (Admin REST API, `X-Shopify-Access-Token`).
//!
//! 1. `GET /admin/api/{v}/orders/{id}/fulfillments.json`: a fulfillment
//!    with this tracking number already there is the parcel, reported
//!    before (ALREADY_CONFIRMED).
//! 2. `GET /admin/api/{v}/orders/{id}/fulfillment_orders.json`: each of
//!    the parcel's lines is found by `line_item_id` among the open
//!    fulfillment orders' line items; fewer `fulfillable_quantity` than the
//!    parcel holds is a refusal (`quantity_exceeded`; `already_fulfilled`
//!    when the line's fulfillment order is closed: shipped outside
//!    conveyor, or by another parcel for the same units).
//! 3. `POST /admin/api/{v}/fulfillments.json` with
//!    `line_items_by_fulfillment_order`, `tracking_info` (number, company,
//!    url) and `notify_customer`.
//!
//! The REST Admin API's leaky bucket (40 calls, 2/s on standard plans) is
//! kept to; a 429 waits out `Retry-After`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use conveyor_runtime::config::{Secret, ShopifyConfig};
use conveyor_runtime::guarded::{Attempt, CallError, Guard, Made, Refusal};
use conveyor_runtime::syncback::SyncbackConfig;
use serde_json::{json, Value};

use super::{carrier_name, exchange, Parcel, Pushed};

/// Calls per second and burst (the REST Admin API's leak rate and bucket).
pub const RATE: (f64, u32) = (2.0, 40);

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
    guard: Guard,
    config: SyncbackConfig,
}

impl Client {
    pub fn new(c: &ShopifyConfig, s: &SyncbackConfig) -> Client {
        Client {
            http: super::http(s),
            base: format!(
                "{}/admin/api/{}",
                c.api_url.trim_end_matches('/'),
                c.api_version
            ),
            token: c.access_token.clone(),
            guard: Guard::new(
                "conveyor_syncback_api_errors_total",
                super::policy(s, "shopify", RATE.0, RATE.1),
            ),
            config: s.clone(),
        }
    }

    async fn get(&self, what: &str, path: &str) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        self.guard
            .call(what, true, || async {
                let req = self
                    .http
                    .get(&url)
                    .header("x-shopify-access-token", self.token.expose());
                match exchange(req).await {
                    Err(why) => Attempt::Again(why, None),
                    Ok(a) if (200..300).contains(&a.status) => Attempt::Done(a.json()),
                    Ok(a) => a.failed("order_not_found"),
                }
            })
            .await
    }

    /// What the order holds: the fulfillment with this tracking number
    /// if there is one, else the request that creates it.
    async fn check(&self, p: &Parcel) -> Result<Result<String, Value>, CallError> {
        let id = &p.external_order_id;
        let done = self
            .get(
                "list fulfillments",
                &format!("/orders/{id}/fulfillments.json"),
            )
            .await?;
        if let Some(f) = done["fulfillments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| {
                f["tracking_number"].as_str() == Some(p.tracking_number.as_str())
                    || f["tracking_numbers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|n| n.as_str() == Some(p.tracking_number.as_str()))
            })
        {
            return Ok(Ok(id_of(&f["id"])));
        }
        let fos = self
            .get(
                "list fulfillment orders",
                &format!("/orders/{id}/fulfillment_orders.json"),
            )
            .await?;
        fulfillment_request(p, &fos, &self.config)
            .map(Err)
            .map_err(CallError::Refused)
    }

    pub async fn push(&self, p: &Parcel) -> Result<Pushed, CallError> {
        let url = format!("{}/fulfillments.json", self.base);
        let body: Mutex<Value> = Mutex::new(Value::Null);
        let made = self
            .guard
            .create(
                "create fulfillment",
                || async {
                    Ok(match self.check(p).await? {
                        Ok(found) => Some(found),
                        Err(request) => {
                            *body.lock().unwrap_or_else(|e| e.into_inner()) = request;
                            None
                        }
                    })
                },
                || async {
                    let b = body.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let req = self
                        .http
                        .post(&url)
                        .header("x-shopify-access-token", self.token.expose())
                        .json(&b);
                    match exchange(req).await {
                        Err(why) => Attempt::Again(why, None),
                        Ok(a) if (200..300).contains(&a.status) => {
                            Attempt::Done(id_of(&a.json()["fulfillment"]["id"]))
                        }
                        Ok(a) => a.failed("order_not_found"),
                    }
                },
            )
            .await?;
        Ok(match made {
            Made::New(id) => Pushed::Confirmed(id),
            Made::Found(id) => Pushed::AlreadyConfirmed(id),
        })
    }
}

impl Client {
    /// Cancels fulfillment `id` (its label was voided); already cancelled
    /// counts as done.
    pub async fn withdraw(&self, id: &str) -> Result<(), CallError> {
        let url = format!("{}/fulfillments/{id}/cancel.json", self.base);
        self.guard
            .call("cancel fulfillment", true, || async {
                let req = self
                    .http
                    .post(&url)
                    .header("x-shopify-access-token", self.token.expose())
                    .json(&json!({}));
                match exchange(req).await {
                    Err(why) => Attempt::Again(why, None),
                    Ok(a) if (200..300).contains(&a.status) => Attempt::Done(()),
                    // Cancelled before (a retry after a crash): nothing left to do.
                    Ok(a) if a.status == 404 || a.status == 422 => Attempt::Done(()),
                    Ok(a) => a.failed("fulfillment_not_found"),
                }
            })
            .await
    }
}

/// Shopify ids are numbers in REST answers; strings are accepted too.
fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `POST /fulfillments.json` body for `p` over the order's fulfillment
/// orders, or why it cannot be made.
pub fn fulfillment_request(
    p: &Parcel,
    fulfillment_orders: &Value,
    s: &SyncbackConfig,
) -> Result<Value, Refusal> {
    let open: Vec<&Value> = fulfillment_orders["fulfillment_orders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|fo| matches!(fo["status"].as_str(), Some("open" | "in_progress")))
        .collect();
    // fulfillment order id -> [(fulfillment order line item id, quantity)]
    let mut by_fo: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in &p.lines {
        let found = open.iter().find_map(|fo| {
            fo["line_items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|li| id_of(&li["line_item_id"]) == line.line_id)
                .map(|li| (id_of(&fo["id"]), li))
        });
        let Some((fo_id, li)) = found else {
            // On a closed fulfillment order: every unit was fulfilled.
            let closed = fulfillment_orders["fulfillment_orders"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|fo| fo["line_items"].as_array().into_iter().flatten())
                .any(|li| id_of(&li["line_item_id"]) == line.line_id);
            let (code, why) = if closed {
                ("already_fulfilled", "is fulfilled already")
            } else {
                ("line_not_found", "is not on any fulfillment order")
            };
            return Err(Refusal::new(
                code,
                format!(
                    "line item {} ({}) of order {} {why}",
                    line.line_id, line.sku, p.external_order_id
                ),
            ));
        };
        let left = li["fulfillable_quantity"].as_i64().unwrap_or(0);
        if left < i64::from(line.quantity) {
            return Err(Refusal::new(
                "quantity_exceeded",
                format!(
                    "line item {} ({}): the parcel holds {} but only {left} remain to fulfil",
                    line.line_id, line.sku, line.quantity
                ),
            ));
        }
        by_fo
            .entry(fo_id)
            .or_default()
            .push(json!({ "id": li["id"], "quantity": line.quantity }));
    }
    let groups: Vec<Value> = by_fo
        .into_iter()
        .map(|(fo, items)| {
            json!({
                "fulfillment_order_id": fo.parse::<u64>().map(Value::from).unwrap_or(Value::String(fo)),
                "fulfillment_order_line_items": items,
            })
        })
        .collect();
    let mut tracking = json!({
        "number": p.tracking_number,
        "company": carrier_name(s, &p.carrier),
    });
    if let Some(url) = &p.tracking_url {
        tracking["url"] = json!(url);
    }
    Ok(json!({
        "fulfillment": {
            "line_items_by_fulfillment_order": groups,
            "tracking_info": tracking,
            "notify_customer": s.notify_customer,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_schemas::records::LineQty;

    fn parcel(lines: &[(&str, i32)]) -> Parcel {
        Parcel {
            shipment_id: "shopify:5001/AUS-1/1".into(),
            order_id: "shopify:5001".into(),
            channel: "shopify".into(),
            external_order_id: "5001".into(),
            carrier: "usps".into(),
            service: "ground_advantage".into(),
            tracking_number: "9400100000000000000001".into(),
            tracking_url: Some("https://tools.usps.com/t/1".into()),
            lines: lines
                .iter()
                .map(|(id, q)| LineQty {
                    line_id: id.to_string(),
                    sku: format!("SKU-{id}"),
                    quantity: *q,
                })
                .collect(),
            shipped_at: 0,
        }
    }

    fn fos() -> Value {
        json!({"fulfillment_orders": [
            {"id": 9001, "status": "closed", "line_items": [
                {"id": 1, "line_item_id": 11, "fulfillable_quantity": 5}]},
            {"id": 9002, "status": "open", "line_items": [
                {"id": 2, "line_item_id": 11, "fulfillable_quantity": 2},
                {"id": 3, "line_item_id": 12, "fulfillable_quantity": 1}]}
        ]})
    }

    #[test]
    fn lines_map_to_open_fulfillment_order_line_items() {
        let s = SyncbackConfig::default();
        let body = fulfillment_request(&parcel(&[("11", 2), ("12", 1)]), &fos(), &s).unwrap();
        let f = &body["fulfillment"];
        assert_eq!(
            f["line_items_by_fulfillment_order"],
            json!([{"fulfillment_order_id": 9002, "fulfillment_order_line_items": [
                {"id": 2, "quantity": 2}, {"id": 3, "quantity": 1}]}])
        );
        assert_eq!(f["tracking_info"]["company"], "USPS");
        assert_eq!(f["tracking_info"]["number"], "9400100000000000000001");
        assert_eq!(f["notify_customer"], true);
    }

    #[test]
    fn more_units_than_remain_or_an_unknown_line_is_refused() {
        let s = SyncbackConfig::default();
        let e = fulfillment_request(&parcel(&[("11", 3)]), &fos(), &s).unwrap_err();
        assert_eq!(e.code, "quantity_exceeded");
        assert!(e.reason.contains("only 2 remain"), "{e}");
        let e = fulfillment_request(&parcel(&[("99", 1)]), &fos(), &s).unwrap_err();
        assert_eq!(e.code, "line_not_found");
        let closed = json!({"fulfillment_orders": [{"id": 9001, "status": "closed", "line_items": [
            {"id": 1, "line_item_id": 11, "fulfillable_quantity": 0}]}]});
        let e = fulfillment_request(&parcel(&[("11", 1)]), &closed, &s).unwrap_err();
        assert_eq!(e.code, "already_fulfilled");
    }
}

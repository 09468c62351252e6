//! The operational store, as the console reads it: through the order
//! status API (docs/status-api.md) that `conveyor sink scylla` serves. The
//! console holds no store handle of its own, so it runs on any machine and
//! in any number, whatever the store's backend.

use std::time::Duration;

use conveyor_sinks::ops::model::{ActionRow, AlertRow};
use conveyor_sinks::ops::views::{
    ActionsView, AlertsView, ExceptionEntry, ExceptionsView, InventoryPage, InventoryView,
    OrderPage, OrderSummary, OrderView, SearchView,
};
use serde::de::DeserializeOwned;

use super::html::url;

#[derive(Clone)]
pub struct StatusApi {
    base: String,
    http: reqwest::Client,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// 404: no such order, SKU, exception...
    #[error("not found")]
    NotFound,
    /// 400: the API's words.
    #[error("{0}")]
    Invalid(String),
    /// The API or its store cannot answer now.
    #[error("the status API at {0} is unavailable: {1}")]
    Unavailable(String, String),
}

pub type Exception = ExceptionEntry;

impl StatusApi {
    pub fn new(base: &str) -> anyhow::Result<StatusApi> {
        Ok(StatusApi {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ReadError> {
        let u = format!("{}{path}", self.base);
        let unavailable = |e: String| ReadError::Unavailable(self.base.clone(), e);
        let resp = self
            .http
            .get(&u)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match resp.status().as_u16() {
            200 => resp
                .json::<T>()
                .await
                .map_err(|e| unavailable(format!("unreadable answer to {path}: {e}"))),
            404 => Err(ReadError::NotFound),
            400 => {
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                Err(ReadError::Invalid(
                    v["error"].as_str().unwrap_or("bad request").to_string(),
                ))
            }
            s => Err(unavailable(format!("HTTP {s} for {path}"))),
        }
    }

    /// `Ok(None)` for 404.
    async fn find<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ReadError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(ReadError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn order(&self, id: &str) -> Result<Option<OrderView>, ReadError> {
        self.find(&format!("/orders/{}", url(id))).await
    }

    pub async fn recent(&self, since: i64, limit: usize) -> Result<OrderPage, ReadError> {
        self.get(&format!("/orders?since={since}&limit={limit}"))
            .await
    }

    /// Orders by `by` (number, email, sku, tracking).
    pub async fn search(
        &self,
        by: &str,
        q: &str,
        limit: usize,
    ) -> Result<Vec<OrderSummary>, ReadError> {
        Ok(self
            .get::<SearchView>(&format!(
                "/search?by={}&q={}&limit={limit}",
                url(by),
                url(q)
            ))
            .await?
            .orders)
    }

    pub async fn exceptions_on(&self, day: &str) -> Result<Vec<Exception>, ReadError> {
        Ok(self
            .get::<ExceptionsView>(&format!("/exceptions?day={}", url(day)))
            .await?
            .exceptions)
    }

    pub async fn exception(&self, id: &str) -> Result<Option<Exception>, ReadError> {
        self.find(&format!("/exceptions/{}", url(id))).await
    }

    pub async fn actions_on(&self, day: &str) -> Result<Vec<ActionRow>, ReadError> {
        Ok(self
            .get::<ActionsView>(&format!("/actions?day={}", url(day)))
            .await?
            .actions)
    }

    pub async fn alerts(&self) -> Result<Vec<AlertRow>, ReadError> {
        Ok(self.get::<AlertsView>("/alerts").await?.alerts)
    }

    pub async fn levels(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, ReadError> {
        let after = after
            .map(|a| format!("&after={}", url(a)))
            .unwrap_or_default();
        self.get(&format!("/inventory?limit={limit}{after}")).await
    }

    pub async fn inventory(&self, sku: &str) -> Result<Option<InventoryView>, ReadError> {
        self.find(&format!("/inventory/{}", url(sku))).await
    }
}

//! The label API's request and response shapes: Shippo's "instalabel"
//! transaction (`POST /transactions` with the shipment inline, a carrier
//! account and a service level token: one call buys the label), with
//! Shippo's field names. The simulator (`conveyor simulate carrier`)
//! answers in exactly these shapes; the client sends them.
//!
//! Idempotency: every purchase carries an `Idempotency-Key` header (the
//! convention of EasyPost, Stripe and most label APIs); a repeated key
//! returns the first transaction instead of buying again.

use serde::{Deserialize, Serialize};

/// The header a purchase's idempotency key travels in.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiAddress {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub street1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub state: String,
    pub zip: String,
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Dimensions and weight as Shippo takes them: decimal strings with units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiParcel {
    pub length: String,
    pub width: String,
    pub height: String,
    pub distance_unit: String,
    pub weight: String,
    pub mass_unit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiShipment {
    pub address_from: ApiAddress,
    pub address_to: ApiAddress,
    pub parcels: Vec<ApiParcel>,
}

/// `POST /transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRequest {
    pub shipment: ApiShipment,
    pub carrier_account: String,
    /// `<carrier>_<service>`, e.g. `usps_ground_advantage`.
    pub servicelevel_token: String,
    pub label_file_type: String,
    /// Free text echoed back: the shipment id.
    #[serde(default)]
    pub metadata: String,
    #[serde(default, rename = "async")]
    pub is_async: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub code: String,
    pub text: String,
}

/// The rate a transaction was bought at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRate {
    /// Decimal string, e.g. `"7.45"`.
    pub amount: String,
    pub currency: String,
    pub provider: String,
    pub servicelevel_token: String,
}

/// A transaction: `status` SUCCESS (label bought), ERROR (the carrier
/// refused: `messages` say why; retrying will not help) or QUEUED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub object_id: String,
    /// ISO 8601, when the transaction was created.
    pub object_created: String,
    pub status: String,
    #[serde(default)]
    pub tracking_number: String,
    #[serde(default)]
    pub tracking_url_provider: String,
    #[serde(default)]
    pub label_url: String,
    #[serde(default)]
    pub rate: Option<ApiRate>,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub messages: Vec<ApiMessage>,
}

/// An error body (4xx/5xx): Shippo answers `{"detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub detail: String,
}

/// `POST /refunds`: void a label that will not ship (Shippo's refund of an
/// unused label; `async: false` answers with the refund's status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The transaction (label) to refund.
    pub transaction: String,
    #[serde(rename = "async")]
    pub is_async: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub object_id: String,
    /// QUEUED, PENDING, SUCCESS or ERROR.
    pub status: String,
    pub transaction: String,
}

//! Types shared by several records.

use serde::{Deserialize, Serialize};

use crate::wire::avro_record;

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub company: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub phone: Option<String>,
}

/// A rendered document in the document store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub uri: String,
    pub content_type: String,
    pub sha256: String,
    pub pages: i32,
}

/// Units of one order line (allocated, backordered or in a parcel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineQty {
    pub line_id: String,
    pub sku: String,
    pub quantity: i32,
}

avro_record!(Address {
    name,
    company,
    line1,
    line2,
    city,
    region,
    postal_code,
    country,
    phone
});
avro_record!(Document {
    uri,
    content_type,
    sha256,
    pages
});
avro_record!(LineQty {
    line_id,
    sku,
    quantity
});

//! SKU master data: the compacted `catalog.skus` topic.

use serde::{Deserialize, Serialize};

use super::Money;
use crate::wire::avro_record;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSku {
    pub sku: String,
    pub name: String,
    pub weight_grams: i32,
    pub length_mm: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
    pub declared_value: Option<Money>,
    pub hazmat: Option<String>,
    pub bin_location: Option<String>,
    pub listings: Vec<ChannelListing>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelListing {
    pub channel: String,
    pub listing_id: String,
}

avro_record!(CatalogSku {
    sku,
    name,
    weight_grams,
    length_mm,
    width_mm,
    height_mm,
    declared_value,
    hazmat,
    bin_location,
    listings,
    updated_at
});
avro_record!(ChannelListing {
    channel,
    listing_id
});

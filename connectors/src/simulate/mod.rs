pub mod amazon;
pub mod ebay;
pub mod shopify;
pub mod tiktok;

//! Channel connectors: each publishes payloads exactly as received to
//! `orders.raw.<channel>` through [`publish::RawPublisher`] (idempotent,
//! `acks=all`; a webhook is answered 2xx only after the broker
//! acknowledged, a poller's cursor moves only after publishing: G1).
//!
//! One folder per channel, as in Vector's layout: `shopify/` (webhook
//! receiver + Admin REST poller). CSV exports come in through
//! [`csv_import`], SKU master data through [`catalog_load`]. Tracking goes
//! back to the channels through [`syncback`]. The local API
//! simulators the demo and the tests drive are in [`simulate`].

pub mod amazon;
pub mod catalog_load;
pub mod csv_import;
pub mod cursor;
pub mod ebay;
pub mod oauth;
pub mod publish;
pub mod shopify;
pub mod signature;
pub mod simulate;
pub mod syncback;
pub mod tiktok;

pub use conveyor_runtime::topology::CHANNELS;

//! Channel connectors: Shopify, Amazon SP-API, TikTok Shop, eBay and CSV
//! import, each publishing payloads exactly as received to
//! `orders.raw.<channel>` through [`conveyor_runtime::kafka::Producer`]
//! (idempotent, `acks=all`; a webhook is answered 2xx only after the broker
//! acknowledged, guarantee G1).
//!
//! One folder per channel (`shopify/`, `amazon/`, ...) with its config,
//! source loop, API client and integration tests, as in Vector's layout.
//! No channel is built yet: `conveyor connect <channel>` says so and exits
//! non-zero.

pub use conveyor_runtime::topology::CHANNELS;

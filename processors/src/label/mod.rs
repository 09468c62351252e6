//! Labels and packing slips (docs/labels.md).
//!
//! - [`pdf`]: a small drawing surface over printpdf with reproducible
//!   output (the same document gives the same bytes and SHA-256).
//! - [`barcode`]: Code 128 barcodes drawn as bars.
//! - [`slip`]: the packing slip, multi-page for long orders, and the
//!   combined label + slip.
//! - [`shipping_label`]: the 4 x 6 label the carrier simulator sells.
//! - [`api`]: the Shippo-style label API's shapes; [`carrier`]: its
//!   client (idempotency keys, retries, rate limit, circuit breaker).
//! - [`documents`]: the document store (a directory or an HTTP object
//!   store), deterministic names.
//! - [`jobs`]: the label job on the stream runtime.

pub mod api;
pub mod barcode;
pub mod carrier;
pub mod documents;
pub mod jobs;
pub mod pdf;
pub mod shipping_label;
pub mod slip;

//! Labels and packing slips (docs/labels.md).
//!
//! - [`pdf`]: a small drawing surface over printpdf with reproducible
//!   output (the same document gives the same bytes and SHA-256).
//! - [`barcode`]: Code 128 barcodes drawn as bars.
//! - [`slip`]: the packing slip, multi-page for long orders, and the
//!   combined label + slip.
//! - [`shipping_label`]: the 4 x 6 label the carrier simulator sells.
//! - [`api`]: the Shippo-style label API's shapes.

pub mod api;
pub mod barcode;
pub mod pdf;
pub mod shipping_label;
pub mod slip;

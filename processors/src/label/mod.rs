//! Labels and packing slips (docs/labels.md).
//!
//! - [`pdf`]: a small drawing surface over printpdf with reproducible
//!   output (the same document gives the same bytes and SHA-256).
//! - [`barcode`]: Code 128 barcodes drawn as bars.
//! - [`slip`]: the packing slip, multi-page for long orders.

pub mod barcode;
pub mod pdf;
pub mod slip;

//! Inventory: the per-SKU stock the `inventory` job owns (see
//! docs/allocation.md for the protocol it takes part in).
//!
//! - [`stock`]: levels per warehouse, holds and reservations per order, the
//!   ledger of movements, the no-oversell invariant.
//! - [`sku`]: the job's per-SKU state machine around it (answers, backorder
//!   queue, alerts).

pub mod sku;
pub mod stock;

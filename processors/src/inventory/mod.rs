//! Inventory: the per-SKU stock the `inventory` job owns (see
//! docs/allocation.md for the protocol it takes part in). [`stock`] is the
//! pure state machine: levels per warehouse, holds and reservations per
//! order, the ledger of movements. The job around it is not built yet.

pub mod stock;

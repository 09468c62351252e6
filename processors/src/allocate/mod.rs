//! Allocation (see docs/allocation.md for the protocol). Built so far, as
//! pure functions: the ranking of candidate warehouses ([`candidates`])
//! and the decision an order makes from its holds ([`decide`]). The
//! `allocate` job around them is not built yet.

pub mod candidates;
pub mod decide;

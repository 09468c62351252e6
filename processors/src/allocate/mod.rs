//! Allocation (see docs/allocation.md for the protocol). Built so far: the
//! pure decision an order makes from its holds ([`decide`]). The
//! `allocate` job around it is not built yet.

pub mod decide;

//! Allocation (docs/allocation.md has the protocol and its failure cases).
//!
//! - [`protocol`]: the messages between the `allocate` job (keyed by order)
//!   and the `inventory` job (keyed by SKU).
//! - [`candidates`]: the warehouses an order may ship from, ranked.
//! - [`decide`]: the decision an order makes from its holds.
//! - [`order`]: the allocate job's per-order state machine.
//! - [`jobs`]: both jobs and their forwarders on the stream runtime.
//! - [`harness`]: publish a workload, watch the jobs come to rest.
//! - [`sim`]: both jobs in memory over partitioned logs (tests, quality
//!   report, decision benchmark).
//! - [`quality`]: the policy next to a brute-force optimum (report).
//! - [`workload`]: a seeded order and stock set for tests and benchmarks.

pub mod candidates;
pub mod decide;
pub mod harness;
pub mod jobs;
pub mod order;
pub mod protocol;
pub mod quality;
pub mod sim;
pub mod workload;

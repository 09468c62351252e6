//! Processors: normalize, allocate, route, label.
//!
//! Domain logic is pure functions over plain types; the stream plumbing
//! (consuming, producing, state stores, commits, DLQ) is the runtime crate in
//! `processors/runtime` (`conveyor-runtime`). The topology that wires them is
//! declared in [`conveyor_runtime::topology`]. No processor is built yet:
//! `conveyor run <component>` says so and exits non-zero.

pub use conveyor_runtime::topology::{NodeKind, NODES};

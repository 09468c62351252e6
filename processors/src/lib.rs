//! Processors: normalize, allocate, route, label (and the exceptions they raise).
//!
//! Domain logic is pure functions over plain types; the stream plumbing
//! (consuming, producing, state stores, commits, DLQ) is the runtime crate in
//! `processors/stream` (`conveyor-stream`). The topology that wires them is
//! declared in [`conveyor_runtime::topology`].

#![recursion_limit = "256"]

pub mod allocate;
pub mod catalog;
pub mod catalog_feed;
pub mod exceptions;
pub mod geo;
pub mod inventory;
pub mod label;
pub mod normalize;
pub mod route;

pub use conveyor_runtime::topology::{NodeKind, NODES};

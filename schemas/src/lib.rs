//! conveyor's event contracts and schema registry.
//!
//! - [`registry`]: a small Confluent-compatible Schema Registry for dev, demo
//!   and CI (`conveyor registry serve`, started by `conveyor dev up`).
//!   Production points `schema_registry.url` at Confluent Schema Registry,
//!   Redpanda's or Karapace instead.

pub mod registry;

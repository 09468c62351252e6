//! conveyor's event contracts and schema registry.
//!
//! - `*.avsc` (in this folder): the Avro contract of every topic's value;
//!   [`contracts`] maps topics to them and [`records`] holds the Rust types.
//! - [`codec`]: Confluent wire format encode/decode through the registry,
//!   cached so the hot path makes no HTTP call.
//! - [`registry`]: a small Confluent-compatible Schema Registry for dev, demo
//!   and CI (`conveyor registry serve`, started by `conveyor dev up`).
//!   Production points `schema_registry.url` at Confluent Schema Registry,
//!   Redpanda's or Karapace instead.

pub mod bench;
pub mod codec;
pub mod contracts;
pub mod records;
pub mod registry;
pub mod samples;
pub mod subjects;
pub mod wire;

//! Sinks: ScyllaDB (operational state) and ClickHouse (analytics).
//!
//! Both consume the topics they read (the sink inputs; the operational
//! sink also the operator console's actions) through [`feed`] (batches,
//! offsets committed only after the store has the batch) and upsert by
//! natural key and version ([`event::version`]), so redelivery and replay
//! never double count (guarantee G2) and an older event never overwrites a
//! newer one.

pub mod clickhouse;
pub mod event;
pub mod feed;
pub mod ops;
pub mod sample;
pub mod scylla;
pub mod status_api;

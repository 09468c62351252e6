//! Sinks: ScyllaDB (operational state) and ClickHouse (analytics).
//!
//! Both upsert by natural key so that redelivery and replay never double
//! count (guarantee G2). Only the ClickHouse connection layer exists so far
//! ([`clickhouse`]); the sink loops come with the sinks issue.

pub mod clickhouse;

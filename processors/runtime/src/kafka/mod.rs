//! Kafka clients with conveyor's guarantees built in.
//!
//! - [`Producer`]: idempotent, `acks=all`; `send` resolves only once the
//!   broker acknowledged the record (G1: nothing is reported as published
//!   before it is durable on the broker).
//! - [`Consumer`]: consumer-group member with auto-commit off; offsets are
//!   committed explicitly, after the work they cover is done.
//! - [`Admin`]: creates the topology's topics idempotently and reports drift
//!   (partitions or configs that differ from the config).
//! - [`BrokerWatch`]: probes the broker with backoff and drives the `broker`
//!   readiness check, so a process whose broker is down reports not-ready and
//!   keeps retrying instead of crash-looping.
//!
//! All clients take their settings from [`KafkaConfig`]; user properties
//! (TLS, SASL, tuning) pass through, but the properties the guarantees rely
//! on are set here and cannot be overridden (see
//! [`crate::config::MANAGED_KAFKA_PROPERTIES`]).

mod admin;
mod consumer;
mod producer;
mod watch;

pub use admin::{Admin, TopicReport, TopicState};
pub use consumer::{consumer_config, Consumer, InRecord};
pub use producer::{Delivered, OutRecord, Producer};
pub use watch::BrokerWatch;

pub use rdkafka::error::KafkaError;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Base librdkafka settings for a client of `component`.
pub fn client_config(cfg: &KafkaConfig, component: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cfg.brokers.as_str());
    c.set("client.id", format!("{}-{component}", cfg.client_id));
    // Fail fast on a dead broker instead of hanging for minutes.
    c.set("socket.connection.setup.timeout.ms", "10000");
    c.set("reconnect.backoff.max.ms", "5000");
    c.set("log_level", "4");
    for (k, v) in &cfg.properties {
        c.set(k.as_str(), v.expose());
    }
    c
}

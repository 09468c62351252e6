//! Shared helpers for the integration tests. They run against the real
//! services started by `conveyor dev up` (the README's test command starts
//! them); a test fails with that instruction when a service is missing.

#![allow(dead_code)]

pub mod allocation;
pub mod process;
pub mod sinks;
pub mod stream;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::BrokerWatch;

/// The config the tests use: the process environment over the defaults,
/// exactly like the binary (so CONVEYOR_* overrides reach the tests too).
pub fn config() -> Config {
    Config::from_sources(None, "test defaults", std::env::vars()).expect("test config is valid")
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Panics with instructions when the broker is not reachable.
pub async fn require_broker(config: &Config) {
    let watch = BrokerWatch::new(&config.kafka).expect("broker client");
    if let Err(e) = watch.probe(Duration::from_secs(5)).await {
        panic!(
            "no Kafka broker at {} ({e}); start the dev services with `cargo run -- dev up`",
            config.kafka.brokers
        );
    }
}

pub async fn require_clickhouse(config: &Config) {
    let url = format!("{}/ping", config.clickhouse.url);
    let ok = reqwest::get(&url)
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    assert!(
        ok,
        "no ClickHouse at {}; start the dev services with `cargo run -- dev up`",
        config.clickhouse.url
    );
}

/// GET `url` and return the body as text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Polls `{base}/readyz` until it answers 200; false after `limit`.
pub async fn becomes_ready(http: &reqwest::Client, base: &str, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let r = http.get(format!("{base}/readyz")).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `order_event.avsc` text with `field` appended to the Order record.
pub fn with_order_field(order_event_avsc: &str, field: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(order_event_avsc).unwrap();
    let order = v["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "order")
        .unwrap();
    order["type"]["fields"].as_array_mut().unwrap().push(field);
    v.to_string()
}

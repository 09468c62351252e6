//! Broker reachability probe that drives the `broker` readiness check.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::{client_config, KafkaError};
use crate::backoff::Backoff;
use crate::config::KafkaConfig;
use crate::observability::Health;
use crate::shutdown::Shutdown;

/// Probes the broker (a metadata request) until shutdown: with exponential
/// backoff while it is unreachable, every `interval` while it is up. Each
/// transition is logged once and mirrored in the `broker` readiness check and
/// `conveyor_broker_up`.
pub struct BrokerWatch {
    client: Arc<BaseConsumer>,
    brokers: String,
    interval: Duration,
}

impl BrokerWatch {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            client: Arc::new(client_config(cfg, "health").create()?),
            brokers: cfg.brokers.clone(),
            interval: Duration::from_secs(5),
        })
    }

    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// One probe: Ok(broker count) when the cluster answered.
    pub async fn probe(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            let md = client.fetch_metadata(None, timeout)?;
            if md.brokers().is_empty() {
                return Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::BrokerNotAvailable,
                ));
            }
            Ok(md.brokers().len())
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Runs until `shutdown`, updating `health`.
    pub async fn run(self, health: Health, shutdown: Shutdown) {
        health.set("broker", false, format!("connecting to {}", self.brokers));
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut up: Option<bool> = None;
        loop {
            let probe = tokio::select! {
                _ = shutdown.wait() => return,
                r = self.probe(Duration::from_secs(5)) => r,
            };
            let delay = match probe {
                Ok(n) => {
                    if up != Some(true) {
                        tracing::info!(brokers = %self.brokers, cluster_brokers = n, "broker reachable");
                    }
                    up = Some(true);
                    backoff.reset();
                    health.set("broker", true, format!("{n} broker(s) reachable"));
                    metrics::gauge!("conveyor_broker_up").set(1.0);
                    self.interval
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if up != Some(false) || backoff.attempts().is_multiple_of(10) {
                        tracing::warn!(
                            brokers = %self.brokers,
                            error = %e,
                            attempt = backoff.attempts(),
                            retry_in_ms = delay.as_millis() as u64,
                            "broker unreachable; retrying with backoff"
                        );
                    }
                    up = Some(false);
                    health.set("broker", false, format!("unreachable: {e}"));
                    metrics::gauge!("conveyor_broker_up").set(0.0);
                    metrics::counter!("conveyor_broker_probe_failures_total").increment(1);
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

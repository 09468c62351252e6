//! Publishing raw orders: the one way every connector writes to
//! `orders.raw.<channel>`.
//!
//! The envelope ([`RawOrder`]) carries the payload bytes exactly as
//! received; the record key is the channel order id (so every version of
//! one order lands on one partition, in order, G5) and three small headers
//! (`channel`, `event_id`, `received_at`) let a consumer route or drop
//! duplicates without decoding. The producer is idempotent with
//! `acks=all`; [`RawPublisher::publish`] returns only once the broker has
//! the record, which is when a webhook may be answered 2xx or a poller's
//! cursor may move (G1). Nothing secret goes into the envelope: HTTP
//! headers are filtered to an allow-list by the caller.

use std::sync::Arc;

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{KafkaError, OutRecord, Producer};
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::{Codec, EncodeError};
use conveyor_schemas::records::RawOrder;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot encode the raw order: {0}")]
    Encode(#[from] EncodeError),
    #[error("the broker did not acknowledge the raw order: {0}")]
    Kafka(#[from] KafkaError),
    #[error("channel `{0}` has no raw topic; add it to channels.enabled")]
    NoTopic(String),
}

impl PublishError {
    /// Worth retrying (broker or registry unavailable) rather than a bug.
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishError::Encode(e) => e.is_retryable(),
            PublishError::Kafka(_) => true,
            PublishError::NoTopic(_) => false,
        }
    }
}

/// Publishes one channel's raw orders.
#[derive(Clone)]
pub struct RawPublisher {
    producer: Producer,
    codec: Arc<Codec>,
    topic: String,
}

impl RawPublisher {
    pub fn new(
        config: &Config,
        codec: Arc<Codec>,
        channel: &str,
        component: &str,
    ) -> Result<RawPublisher, PublishError> {
        let topic = Topology::resolve(config)
            .raw_topic(channel)
            .ok_or_else(|| PublishError::NoTopic(channel.to_string()))?
            .to_string();
        Ok(RawPublisher {
            producer: Producer::new(&config.kafka, component)?,
            codec,
            topic,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    async fn record(&self, raw: &RawOrder) -> Result<OutRecord, PublishError> {
        let value = self.codec.encode(&self.topic, raw).await?;
        Ok(OutRecord::new(self.topic.clone())
            .key(raw.external_order_id.as_bytes().to_vec())
            .payload(value)
            .header("channel", raw.channel.as_bytes().to_vec())
            .header("event_id", raw.event_id.as_bytes().to_vec())
            .header("received_at", raw.received_at.to_string().into_bytes())
            .timestamp_ms(raw.received_at))
    }

    /// Publishes one raw order; returns once the broker acknowledged it.
    pub async fn publish(&self, raw: &RawOrder) -> Result<(), PublishError> {
        let rec = self.record(raw).await?;
        self.producer.send(&rec).await?;
        metrics::counter!("conveyor_connector_published_total", "channel" => raw.channel.clone())
            .increment(1);
        Ok(())
    }

    /// Publishes `raws` in order; returns once every one is acknowledged, or
    /// the first error (the others may or may not have landed; a retry
    /// republishes them and normalize drops the duplicates).
    pub async fn publish_all(&self, raws: &[RawOrder]) -> Result<(), PublishError> {
        let mut recs = Vec::with_capacity(raws.len());
        for raw in raws {
            recs.push(self.record(raw).await?);
        }
        for r in self.producer.send_batch(&recs).await {
            r?;
        }
        if let Some(first) = raws.first() {
            metrics::counter!("conveyor_connector_published_total", "channel" => first.channel.clone())
                .increment(raws.len() as u64);
        }
        Ok(())
    }

    pub fn flush(&self) {
        let _ = self.producer.flush(std::time::Duration::from_secs(10));
    }
}

/// Milliseconds since the Unix epoch, now (connectors stamp `received_at`;
/// processors never read the clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

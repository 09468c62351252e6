//! Persistence of the registry in a compacted Kafka topic, as Confluent's
//! registry does: one partition, keys identify a subject version or a
//! config, the latest value per key wins. A change is visible through the API
//! only after the broker acknowledged it (`acks=all`), so an acknowledged
//! registration survives a restart of the registry or the broker.

use std::time::Duration;

use conveyor_runtime::config::{CleanupPolicy, Config};
use conveyor_runtime::kafka::{Admin, Consumer, KafkaError, OutRecord, Producer, TopicState};
use conveyor_runtime::topology::TopicSpec;

use super::state::LogRecord;

pub struct LogStore {
    config: Config,
    topic: String,
    producer: Producer,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("broker: {0}")]
    Kafka(#[from] KafkaError),
    #[error("schemas topic {topic}: {problem}")]
    Topic { topic: String, problem: String },
}

impl LogStore {
    pub fn new(config: &Config) -> Result<Self, KafkaError> {
        Ok(Self {
            config: config.clone(),
            topic: config.schema_registry.schemas_topic.clone(),
            producer: Producer::new(&config.kafka, "registry")?,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Creates the topic when missing (1 partition, compacted, kept forever)
    /// and reads every record in it, oldest first.
    pub async fn load(&self) -> Result<Vec<LogRecord>, LogError> {
        let admin = Admin::new(&self.config.kafka)?;
        let spec = TopicSpec {
            id: "schemas",
            channel: None,
            name: self.topic.clone(),
            partitions: 1,
            replication_factor: self.config.topics.replication_factor,
            configs: [
                (
                    "cleanup.policy".to_string(),
                    CleanupPolicy::Compact.as_str().to_string(),
                ),
                ("retention.ms".to_string(), "-1".to_string()),
            ]
            .into(),
            writers: vec![],
            readers: vec![],
        };
        let report = admin.ensure_topics(std::slice::from_ref(&spec)).await?;
        match report.first().map(|r| &r.state) {
            Some(TopicState::Failed(problem)) => {
                return Err(LogError::Topic {
                    topic: self.topic.clone(),
                    problem: problem.clone(),
                })
            }
            Some(TopicState::Drift(d)) => {
                tracing::warn!(topic = %self.topic, drift = ?d, "schemas topic differs from the expected layout")
            }
            _ => {}
        }
        let consumer = Consumer::new(&self.config.kafka, "registry", "conveyor.registry.loader")?;
        let (low, high) = consumer.watermarks(&self.topic, 0, Duration::from_secs(10))?;
        let mut out = Vec::new();
        if high <= low {
            return Ok(out);
        }
        consumer.assign(&[(self.topic.as_str(), 0, None)])?;
        loop {
            let rec = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .map_err(|_| LogError::Topic {
                    topic: self.topic.clone(),
                    problem: format!("timed out reading up to offset {high}"),
                })??;
            match rec.key.as_deref() {
                Some(key) => match LogRecord::decode(key, rec.payload.as_deref()) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::warn!(offset = rec.offset, error = %e, "skipping undecodable record")
                    }
                },
                None => tracing::warn!(offset = rec.offset, "skipping record without key"),
            }
            if rec.offset + 1 >= high {
                break;
            }
        }
        Ok(out)
    }

    /// Appends one record and waits for the broker's acknowledgement.
    pub async fn append(&self, rec: &LogRecord) -> Result<(), KafkaError> {
        let mut out = OutRecord::new(self.topic.clone()).key(rec.key_bytes());
        out.payload = rec.value.clone().map(String::into_bytes);
        out.partition = Some(0);
        self.producer.send(&out).await.map(|_| ())
    }
}

//! The idempotent, `acks=all` producer.

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::{client_config, KafkaError};
use crate::config::KafkaConfig;

/// A record to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// Headers in order; keys may repeat.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Record timestamp in UTC millis (None: the producer's clock).
    pub timestamp_ms: Option<i64>,
    /// Explicit partition (None: by key hash, so one key keeps one partition).
    pub partition: Option<i32>,
}

impl OutRecord {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            ..Default::default()
        }
    }
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = Some(payload.into());
        self
    }
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.into(), value.into()));
        self
    }
    pub fn timestamp_ms(mut self, ts: i64) -> Self {
        self.timestamp_ms = Some(ts);
        self
    }
}

/// Where the broker stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Idempotent producer (`enable.idempotence=true`, `acks=all`): the broker
/// de-duplicates internal retries, and [`Producer::send`] returns only after
/// every in-sync replica has the record.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    component: String,
}

impl Producer {
    pub fn new(cfg: &KafkaConfig, component: &str) -> Result<Self, KafkaError> {
        let mut c = client_config(cfg, component);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000");
        Ok(Self {
            inner: c.create()?,
            component: component.to_string(),
        })
    }

    /// Publishes one record and waits for the broker's acknowledgement.
    pub async fn send(&self, rec: &OutRecord) -> Result<Delivered, KafkaError> {
        let started = Instant::now();
        let fr = future_record(rec);
        let res = self.inner.send(fr, Timeout::Never).await;
        let labels = [
            ("component", self.component.clone()),
            ("topic", rec.topic.clone()),
        ];
        match res {
            Ok(d) => {
                metrics::counter!("conveyor_kafka_produced_total", &labels).increment(1);
                metrics::histogram!("conveyor_kafka_produce_seconds", &labels)
                    .record(started.elapsed().as_secs_f64());
                Ok(Delivered {
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Err((e, _)) => {
                metrics::counter!("conveyor_kafka_produce_errors_total", &labels).increment(1);
                Err(e)
            }
        }
    }

    /// Publishes `records` and waits for every acknowledgement, one result
    /// per record in order. Records are handed to the client strictly in
    /// order (a full local queue is waited out on the same record before
    /// the next is queued), so records of one partition keep their order;
    /// acknowledgements are then awaited together, so the batch costs one
    /// round trip, not one per record.
    pub async fn send_batch(&self, records: &[OutRecord]) -> Vec<Result<Delivered, KafkaError>> {
        let started = Instant::now();
        let mut pending = Vec::with_capacity(records.len());
        for rec in records {
            let mut fr = future_record(rec);
            loop {
                match self.inner.send_result(fr) {
                    Ok(f) => {
                        pending.push(Ok(f));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        fr = back;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        pending.push(Err(e));
                        break;
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(f) => match f.await {
                    Ok(Ok(d)) => Ok(Delivered {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Err((e, _))) => Err(e),
                    Err(_canceled) => Err(KafkaError::Canceled),
                },
                Err(e) => Err(e),
            });
        }
        // Metrics per topic, once per batch.
        let mut per_topic: Vec<(&str, u64, u64)> = Vec::new();
        for (rec, r) in records.iter().zip(&out) {
            let i = match per_topic.iter().position(|(t, _, _)| *t == rec.topic) {
                Some(i) => i,
                None => {
                    per_topic.push((&rec.topic, 0, 0));
                    per_topic.len() - 1
                }
            };
            if r.is_ok() {
                per_topic[i].1 += 1;
            } else {
                per_topic[i].2 += 1;
            }
        }
        for (topic, ok, failed) in per_topic {
            let labels = [
                ("component", self.component.clone()),
                ("topic", topic.to_string()),
            ];
            metrics::counter!("conveyor_kafka_produced_total", &labels).increment(ok);
            if failed > 0 {
                metrics::counter!("conveyor_kafka_produce_errors_total", &labels).increment(failed);
            }
            metrics::histogram!("conveyor_kafka_produce_batch_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
        }
        out
    }

    /// The client's fatal error, if it has one (the idempotent producer
    /// then refuses every record: the process must restart it).
    pub fn fatal_error(&self) -> Option<String> {
        self.inner
            .client()
            .fatal_error()
            .map(|(code, msg)| format!("{code:?}: {msg}"))
    }

    /// Waits until every queued record is acknowledged (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout)
    }
}

fn future_record(rec: &OutRecord) -> FutureRecord<'_, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(rec.headers.len());
    for (k, v) in &rec.headers {
        headers = headers.insert(Header {
            key: k.as_str(),
            value: Some(v.as_slice()),
        });
    }
    let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&rec.topic).headers(headers);
    if let Some(k) = &rec.key {
        fr = fr.key(k.as_slice());
    }
    if let Some(p) = &rec.payload {
        fr = fr.payload(p.as_slice());
    }
    if let Some(ts) = rec.timestamp_ms {
        fr = fr.timestamp(ts);
    }
    if let Some(p) = rec.partition {
        fr = fr.partition(p);
    }
    fr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn with(props: &[(&str, &str)]) -> Result<Producer, KafkaError> {
        let mut cfg = KafkaConfig {
            brokers: "kafka-1.internal:9093".into(),
            ..KafkaConfig::default()
        };
        for (k, v) in props {
            cfg.properties.insert(k.to_string(), Secret::new(*v));
        }
        Producer::new(&cfg, "test")
    }

    #[test]
    fn the_build_speaks_tls_and_sasl_scram() {
        // librdkafka refuses these at client creation when built without
        // OpenSSL ("OpenSSL not available at build time").
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
            with(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", "conveyor"),
                ("sasl.password", "secret"),
            ])
            .unwrap_or_else(|e| panic!("SASL_SSL {mechanism}: {e}"));
        }
        with(&[("security.protocol", "SSL")]).expect("SSL");
        let err = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "NOPE"),
        ])
        .err()
        .expect("an unknown mechanism is refused");
        assert!(err.to_string().to_lowercase().contains("sasl"), "{err}");
    }
}

//! The consumer context: records partition assignments and revocations for
//! the job loop, and publishes consumer lag from librdkafka's statistics.
//!
//! Callbacks run inside `recv()`, on the job's own task, so they can never
//! interleave with a batch being processed: the loop applies the recorded
//! events right after `recv()` returns, before it touches the records.

use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

pub struct JobContext {
    processor: String,
    events: Mutex<Vec<Event>>,
}

impl JobContext {
    pub fn new(processor: &str) -> Self {
        Self {
            processor: processor.to_string(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Events since the last call, in order.
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }
}

fn parts(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for JobContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p < 0 || part.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "conveyor_processor_lag_records",
                    "processor" => self.processor.clone(),
                    "topic" => topic.clone(),
                    "partition" => p.to_string()
                )
                .set(part.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for JobContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(processor = %self.processor, partitions = ?parts(tpl), "partitions revoked");
            // The new owner reports their lag from now on; a stale value
            // here would count twice in `sum by (processor)` (alerts, the
            // autoscalers).
            for (topic, p) in parts(tpl) {
                metrics::gauge!(
                    "conveyor_processor_lag_records",
                    "processor" => self.processor.clone(),
                    "topic" => topic,
                    "partition" => p.to_string()
                )
                .set(0.0);
            }
            self.push(Event::Revoked(parts(tpl)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(processor = %self.processor, partitions = ?parts(tpl), "partitions assigned");
                self.push(Event::Assigned(parts(tpl)));
            }
            Rebalance::Error(e) => {
                tracing::warn!(processor = %self.processor, error = %e, "rebalance error");
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

//! Keeps a [`Catalog`] current from the compacted `catalog.skus` topic.
//!
//! [`CatalogFeed::start`] reads every partition from the beginning and
//! returns once it has reached the end offsets it saw at start, so a
//! processor never begins with a half-loaded catalog; after that it follows
//! the topic in the background (new SKU versions, tombstones). A value that
//! does not decode is logged and skipped: a broken catalog entry must not
//! stop order intake, and orders for that SKU are refused with a reason
//! until it is fixed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use conveyor_runtime::config::KafkaConfig;
use conveyor_runtime::kafka::{Consumer, InRecord};
use conveyor_schemas::codec::{Codec, Source};
use conveyor_schemas::records::CatalogSku;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;

/// A shared, live catalog.
pub type SharedCatalog = Arc<RwLock<Catalog>>;

pub struct CatalogFeed {
    pub catalog: SharedCatalog,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("catalog topic {topic}: {source}")]
    Kafka {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("catalog topic {topic} not loaded within {secs} s; is the broker up and the topic created (conveyor topics create)?")]
    Timeout { topic: String, secs: u64 },
}

impl CatalogFeed {
    /// Loads `topic` (with `partitions` partitions) to its current end, then
    /// follows it until `shutdown`.
    pub async fn start(
        kafka: &KafkaConfig,
        codec: Arc<Codec>,
        topic: &str,
        partitions: i32,
        component: &str,
        load_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Result<CatalogFeed, FeedError> {
        let err = |source| FeedError::Kafka {
            topic: topic.to_string(),
            source,
        };
        // Assigned, not subscribed: every instance reads the whole catalog.
        let consumer =
            Consumer::new(kafka, component, &format!("{component}.catalog-reader")).map_err(err)?;
        let parts: Vec<(&str, i32, Option<i64>)> =
            (0..partitions).map(|p| (topic, p, None)).collect();
        consumer.assign(&parts).map_err(err)?;
        let mut behind: HashMap<i32, i64> = HashMap::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .watermarks(topic, p, Duration::from_secs(10))
                .map_err(err)?;
            if high > low {
                behind.insert(p, high);
            }
        }
        let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::new()));
        let deadline = tokio::time::Instant::now() + load_timeout;
        while !behind.is_empty() {
            let rec = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .map_err(|_| FeedError::Timeout {
                    topic: topic.to_string(),
                    secs: load_timeout.as_secs(),
                })?
                .map_err(err)?;
            apply(&catalog, &codec, &rec).await;
            if behind
                .get(&rec.partition)
                .is_some_and(|end| rec.offset + 1 >= *end)
            {
                behind.remove(&rec.partition);
            }
        }
        let loaded = catalog.read().map(|c| c.len()).unwrap_or(0);
        tracing::info!(topic, skus = loaded, "catalog loaded");
        let shared = catalog.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = consumer.recv() => match r {
                        Ok(rec) => apply(&shared, &codec, &rec).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "catalog feed: consume failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        });
        Ok(CatalogFeed { catalog, task })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn apply(catalog: &SharedCatalog, codec: &Codec, rec: &InRecord) {
    let Some(key) = rec.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else {
        tracing::warn!(
            partition = rec.partition,
            offset = rec.offset,
            "catalog record without a UTF-8 key skipped"
        );
        return;
    };
    if rec.payload.is_none() {
        if let Ok(mut c) = catalog.write() {
            c.remove(key);
        }
        return;
    }
    let at = Source {
        topic: &rec.topic,
        partition: rec.partition,
        offset: rec.offset,
    };
    match codec.decode::<CatalogSku>(rec.payload.as_deref(), at).await {
        Ok(sku) => {
            if let Ok(mut c) = catalog.write() {
                c.apply(sku);
            }
        }
        Err(e) => tracing::warn!(sku = key, error = %e, "catalog record skipped"),
    }
}

//! Topic administration: idempotent creation with drift reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{client_config, KafkaError};
use crate::config::KafkaConfig;
use crate::topology::TopicSpec;

/// Admin operations (create, describe) may take a while on a busy cluster.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Metadata answers fast or the broker is down: fail early so callers can
/// back off and so shutdown is not held up by a blocked lookup.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// What `ensure_topics` found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    Created,
    /// Existed with the expected partitions and configs.
    Matches,
    /// Existed but differs; each entry says how. Nothing is changed: fixing
    /// drift (e.g. adding partitions, which moves keys) is an operator's call.
    Drift(Vec<String>),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReport {
    pub name: String,
    pub state: TopicState,
}

/// What exists on the broker for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Sum over partitions of (high watermark - low watermark).
    pub records: i64,
}

#[derive(Clone)]
pub struct Admin {
    inner: Arc<AdminClient<DefaultClientContext>>,
}

impl Admin {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            inner: Arc::new(client_config(cfg, "admin").create()?),
        })
    }

    /// Partition count and replication factor of every existing topic.
    pub async fn list_topics(&self) -> Result<BTreeMap<String, (i32, i16)>, KafkaError> {
        let inner = self.inner.clone();
        blocking(move || {
            let md = inner.inner().fetch_metadata(None, METADATA_TIMEOUT)?;
            Ok(md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| {
                    let rf = t
                        .partitions()
                        .first()
                        .map_or(0, |p| p.replicas().len() as i16);
                    (t.name().to_string(), (t.partitions().len() as i32, rf))
                })
                .collect())
        })
        .await
    }

    /// Topic-level configs of `name` as the broker reports them.
    pub async fn topic_configs(&self, name: &str) -> Result<BTreeMap<String, String>, KafkaError> {
        let res = self
            .inner
            .describe_configs(
                &[ResourceSpecifier::Topic(name)],
                &AdminOptions::new().request_timeout(Some(TIMEOUT)),
            )
            .await?;
        let mut out = BTreeMap::new();
        for r in res {
            let r = r.map_err(KafkaError::AdminOp)?;
            for e in r.entries {
                if let Some(v) = e.value {
                    out.insert(e.name, v);
                }
            }
        }
        Ok(out)
    }

    /// Creates every topic in `specs` that is missing and reports, for those
    /// that exist, any difference in partitions, replication or configs.
    /// Running it twice is harmless: the second run reports `Matches`.
    pub async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicReport>, KafkaError> {
        let existing = self.list_topics().await?;
        let missing: Vec<&TopicSpec> = specs
            .iter()
            .filter(|s| !existing.contains_key(&s.name))
            .collect();
        let mut created: BTreeMap<String, Result<(), String>> = BTreeMap::new();
        if !missing.is_empty() {
            let new_topics: Vec<NewTopic<'_>> = missing
                .iter()
                .map(|s| {
                    let mut t = NewTopic::new(
                        &s.name,
                        s.partitions,
                        TopicReplication::Fixed(i32::from(s.replication_factor)),
                    );
                    for (k, v) in &s.configs {
                        t = t.set(k, v);
                    }
                    t
                })
                .collect();
            let results = self
                .inner
                .create_topics(
                    &new_topics,
                    &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
                )
                .await?;
            for r in results {
                match r {
                    Ok(name) => {
                        created.insert(name, Ok(()));
                    }
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        // Created concurrently by someone else: check it below.
                        let _ = name;
                    }
                    Err((name, code)) => {
                        created.insert(name, Err(code.to_string()));
                    }
                }
            }
        }
        let existing = self.list_topics().await?;
        let mut reports = Vec::with_capacity(specs.len());
        for s in specs {
            let state = match created.get(&s.name) {
                Some(Ok(())) => TopicState::Created,
                Some(Err(e)) => TopicState::Failed(e.clone()),
                None => match existing.get(&s.name) {
                    None => TopicState::Failed("not visible in metadata after creation".into()),
                    Some(&(parts, rf)) => {
                        let configs = self.topic_configs(&s.name).await?;
                        let drift = drift(s, parts, rf, &configs);
                        if drift.is_empty() {
                            TopicState::Matches
                        } else {
                            TopicState::Drift(drift)
                        }
                    }
                },
            };
            reports.push(TopicReport {
                name: s.name.clone(),
                state,
            });
        }
        Ok(reports)
    }

    /// What exists for each named topic (None when it does not exist).
    pub async fn describe(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, Option<TopicInfo>)>, KafkaError> {
        let existing = self.list_topics().await?;
        let mut out = Vec::new();
        for name in names {
            let Some(&(partitions, replication_factor)) = existing.get(name) else {
                out.push((name.clone(), None));
                continue;
            };
            let configs = self.topic_configs(name).await?;
            let records = self.records_in(name, partitions).await?;
            out.push((
                name.clone(),
                Some(TopicInfo {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs,
                    records,
                }),
            ));
        }
        Ok(out)
    }

    /// Records in `topic` (sum over its partitions of high minus low watermark).
    async fn records_in(&self, topic: &str, partitions: i32) -> Result<i64, KafkaError> {
        let inner = self.inner.clone();
        let topic = topic.to_string();
        blocking(move || {
            let mut total = 0i64;
            for p in 0..partitions {
                let (lo, hi) = inner
                    .inner()
                    .fetch_watermarks(&topic, p, METADATA_TIMEOUT)?;
                total += (hi - lo).max(0);
            }
            Ok(total)
        })
        .await
    }

    /// Deletes topics (tests and sandboxes only).
    pub async fn delete_topics(&self, names: &[&str]) -> Result<(), KafkaError> {
        let res = self
            .inner
            .delete_topics(names, &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
            .await?;
        for r in res {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    return Err(KafkaError::AdminOpCreation(format!(
                        "delete {name}: {code}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Differences between the spec and what the broker has.
fn drift(
    spec: &TopicSpec,
    partitions: i32,
    rf: i16,
    configs: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if partitions != spec.partitions {
        out.push(format!(
            "partitions: broker has {partitions}, config wants {}",
            spec.partitions
        ));
    }
    if rf != spec.replication_factor {
        out.push(format!(
            "replication factor: broker has {rf}, config wants {}",
            spec.replication_factor
        ));
    }
    for (k, want) in &spec.configs {
        match configs.get(k) {
            Some(have) if have == want => {}
            Some(have) => out.push(format!("{k}: broker has {have}, config wants {want}")),
            None => out.push(format!("{k}: not set on the broker, config wants {want}")),
        }
    }
    out
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(KafkaError::Canceled).inspect_err(|_| tracing::error!(error = %e, "admin task failed"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_each_difference() {
        let spec = TopicSpec {
            id: "orders_dlq",
            channel: None,
            name: "orders.dlq".into(),
            partitions: 6,
            replication_factor: 1,
            configs: [("cleanup.policy".to_string(), "delete".to_string())].into(),
            writers: vec![],
            readers: vec![],
        };
        assert!(drift(
            &spec,
            6,
            1,
            &[("cleanup.policy".into(), "delete".into())].into()
        )
        .is_empty());
        let d = drift(
            &spec,
            3,
            1,
            &[("cleanup.policy".into(), "compact".into())].into(),
        );
        assert_eq!(d.len(), 2);
        assert!(d[0].contains("partitions: broker has 3, config wants 6"));
        assert!(d[1].contains("cleanup.policy: broker has compact"));
    }
}

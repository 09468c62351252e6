//! Driving the allocation jobs on a real broker: publish a workload, watch
//! the jobs' lag, wait until they are at rest. Shared by the broker tests,
//! `conveyor bench allocate` and the demo.

use std::time::{Duration, Instant};

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Consumer, KafkaError, OutRecord, Producer};
use conveyor_runtime::topology::{self, Topology};
use conveyor_schemas::codec::Codec;

use super::jobs::JOBS;
use super::workload::{catalog, order_event, Workload};

/// Publishes the workload's catalog entries, its stock events, then its
/// order events (Avro, registry), pipelined; returns the records written.
pub async fn publish(config: &Config, w: &Workload) -> anyhow::Result<usize> {
    let topo = Topology::resolve(config);
    let codec = Codec::new(&config.schema_registry.url)?;
    let producer = Producer::new(&config.kafka, "workload")?;
    let name = |id: &str| topo.topic_name(id).unwrap_or_default().to_string();
    let (stock_topic, orders_topic) = (name("inventory_events"), name("orders_normalized"));
    let mut recs = Vec::with_capacity(w.skus.len() + w.stock.len() + w.orders.len());
    let catalog_topic = name("catalog_skus");
    for sku in catalog(w) {
        let bytes = codec.encode(&catalog_topic, &sku).await?;
        recs.push(
            OutRecord::new(&catalog_topic)
                .key(sku.sku.clone())
                .payload(bytes),
        );
    }
    for e in &w.stock {
        let bytes = codec.encode(&stock_topic, e).await?;
        recs.push(
            OutRecord::new(&stock_topic)
                .key(e.sku.clone())
                .payload(bytes),
        );
    }
    for o in &w.orders {
        let bytes = codec.encode(&orders_topic, &order_event(o)).await?;
        recs.push(
            OutRecord::new(&orders_topic)
                .key(o.order_id.clone())
                .payload(bytes),
        );
    }
    for chunk in recs.chunks(5000) {
        for r in futures::future::join_all(chunk.iter().map(|r| producer.send(r))).await {
            r.map_err(|e| anyhow::anyhow!("publish: {e}"))?;
        }
    }
    Ok(recs.len())
}

/// Watches the progress of a stage's jobs.
pub struct Watch {
    config: Config,
    topo: Topology,
    probe: Consumer,
    partitions: i32,
    /// (job, topic id it reads).
    jobs: Vec<(&'static str, &'static str)>,
    /// Topic ids that grow while the jobs are still talking.
    logs: Vec<&'static str>,
}

/// The jobs of `conveyor run route` and the topic each reads.
pub const ROUTE_JOBS: &[(&str, &str)] = &[
    (crate::route::jobs::ORDER_FEED, "orders_normalized"),
    (crate::route::jobs::ALLOCATION_FEED, "orders_allocated"),
    (crate::route::jobs::ROUTE, "commands_route"),
];

impl Watch {
    /// Watches the allocation jobs.
    pub fn new(config: &Config) -> Result<Watch, KafkaError> {
        Watch::of(config, JOBS, &["commands_allocate", "commands_inventory"])
    }

    /// Watches allocation and route together.
    pub fn with_route(config: &Config) -> Result<Watch, KafkaError> {
        let mut w = Watch::new(config)?;
        w.jobs.extend_from_slice(ROUTE_JOBS);
        w.logs.extend(["commands_route", "shipments_planned"]);
        Ok(w)
    }

    /// Watches allocation, route and label together.
    pub fn with_label(config: &Config) -> Result<Watch, KafkaError> {
        let mut w = Watch::with_route(config)?;
        w.jobs
            .push((crate::label::jobs::LABEL, "shipments_planned"));
        w.logs.push("shipments_labeled");
        Ok(w)
    }

    /// Watches allocation, route, label and sync-back together (the
    /// sync-back job lives in the connectors crate; `syncback` is its name).
    pub fn with_syncback(config: &Config) -> Result<Watch, KafkaError> {
        let mut w = Watch::with_label(config)?;
        w.jobs.push(("syncback", "shipments_labeled"));
        w.logs.extend(["shipments_synced", "exceptions"]);
        Ok(w)
    }

    fn of(
        config: &Config,
        jobs: &[(&'static str, &'static str)],
        logs: &[&'static str],
    ) -> Result<Watch, KafkaError> {
        let topo = Topology::resolve(config);
        let probe = Consumer::new(
            &config.kafka,
            "allocation-watch",
            &topology::group_id(config, "allocation-watch"),
        )?;
        Ok(Watch {
            config: config.clone(),
            topo,
            probe,
            partitions: config.topics.partitions,
            jobs: jobs.to_vec(),
            logs: logs.to_vec(),
        })
    }

    /// Records written to a topic (by id) so far.
    pub fn written(&self, id: &str) -> i64 {
        let Some(topic) = self.topo.topic_name(id) else {
            return 0;
        };
        self.probe
            .end_offsets_total(topic, self.partitions, Duration::from_secs(10))
            .unwrap_or(0)
    }

    /// Records the watched jobs have not committed yet.
    pub fn lag(&self) -> Result<i64, KafkaError> {
        let mut lag = 0;
        for (job, input) in &self.jobs {
            let group = topology::group_id(&self.config, job);
            let c = Consumer::new(&self.config.kafka, "allocation-watch", &group)?;
            let topic = self.topo.topic_name(input).unwrap_or_default();
            let committed: i64 = c
                .group_committed(topic, self.partitions, Duration::from_secs(10))?
                .iter()
                .sum();
            let end =
                self.probe
                    .end_offsets_total(topic, self.partitions, Duration::from_secs(10))?;
            lag += end - committed;
        }
        Ok(lag)
    }

    /// Waits until every job has consumed everything and the command logs
    /// stopped growing (three quiet checks in a row); returns when they
    /// last grew. `progress` sees the decided count each second.
    pub async fn wait_for_rest(
        &self,
        limit: Duration,
        mut progress: impl FnMut(i64),
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        let (mut quiet, mut last, mut changed) = (0, -1, Instant::now());
        loop {
            if Instant::now() > deadline {
                anyhow::bail!("the jobs did not come to rest within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let written: i64 = self.logs.iter().map(|id| self.written(id)).sum();
            progress(self.written("orders_allocated") + self.written("orders_backordered"));
            if written != last {
                changed = Instant::now();
            }
            if written == last && self.lag()? == 0 {
                quiet += 1;
                if quiet >= 3 {
                    return Ok(changed);
                }
            } else {
                quiet = 0;
            }
            last = written;
        }
    }
}

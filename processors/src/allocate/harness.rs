//! Driving the allocation jobs on a real broker: publish a workload, watch
//! the jobs' lag, wait until they are at rest. Shared by the broker tests,
//! `conveyor bench allocate` and the demo.

use std::time::{Duration, Instant};

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Consumer, KafkaError, OutRecord, Producer};
use conveyor_runtime::topology::{self, Topology};
use conveyor_schemas::codec::Codec;

use super::jobs::JOBS;
use super::workload::{order_event, Workload};

/// Publishes the stock events, then the order events (Avro, registry),
/// pipelined; returns the records written.
pub async fn publish(config: &Config, w: &Workload) -> anyhow::Result<usize> {
    let topo = Topology::resolve(config);
    let codec = Codec::new(&config.schema_registry.url)?;
    let producer = Producer::new(&config.kafka, "workload")?;
    let name = |id: &str| topo.topic_name(id).unwrap_or_default().to_string();
    let (stock_topic, orders_topic) = (name("inventory_events"), name("orders_normalized"));
    let mut recs = Vec::with_capacity(w.stock.len() + w.orders.len());
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

/// Watches the allocation jobs' progress.
pub struct Watch {
    config: Config,
    topo: Topology,
    probe: Consumer,
    partitions: i32,
}

impl Watch {
    pub fn new(config: &Config) -> Result<Watch, KafkaError> {
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

    /// Records the four jobs have not committed yet.
    pub fn lag(&self) -> Result<i64, KafkaError> {
        let mut lag = 0;
        for (job, input) in JOBS {
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
                anyhow::bail!("allocation did not come to rest within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let written = self.written("commands_allocate") + self.written("commands_inventory");
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

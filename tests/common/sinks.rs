//! Sink test helpers: sink events published to their topics as the
//! pipeline would.

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, OutRecord, Producer};
use conveyor_runtime::topology::{Topology, OPERATIONAL_SINK_INPUTS};
use conveyor_schemas::codec::Codec;
use conveyor_sinks::event::SinkEvent;

/// Creates the topics the sinks read in `config`'s namespace.
pub async fn create_topics(config: &Config) {
    let topo = Topology::resolve(config);
    let wanted: Vec<_> = topo
        .topics
        .iter()
        .filter(|t| OPERATIONAL_SINK_INPUTS.contains(&t.id))
        .cloned()
        .collect();
    Admin::new(&config.kafka)
        .unwrap()
        .ensure_topics(&wanted)
        .await
        .unwrap();
}

/// Publishes `events` to their topics, encoded as the pipeline does.
pub async fn publish(config: &Config, events: &[SinkEvent], extra: Vec<OutRecord>) {
    let topo = Topology::resolve(config);
    let codec = Codec::new(&config.schema_registry.url).unwrap();
    let producer = Producer::new(&config.kafka, "test").unwrap();
    let name = |id: &str| topo.topic_name(id).unwrap().to_string();
    let mut records = Vec::new();
    for e in events {
        let (id, key, bytes) = match e {
            SinkEvent::Order(v) => {
                let t = name("orders_normalized");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Allocation(v) => {
                let t = name("orders_allocated");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Planned(v) => {
                let t = name("shipments_planned");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Labeled(v) => {
                let t = name("shipments_labeled");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Synced(v) => {
                let t = name("shipments_synced");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Movement(v) => {
                let t = name("allocation_events");
                (t.clone(), v.sku.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Inventory(v) => {
                let t = name("inventory_events");
                (t.clone(), v.sku.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Alert(v) => {
                let t = name("inventory_alerts");
                (t.clone(), v.sku.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Dlq(v) => {
                let t = name("orders_dlq");
                (t.clone(), v.event_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Exception(v) => {
                let t = name("exceptions");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
            SinkEvent::Action(v) => {
                let t = name("operator_actions");
                (t.clone(), v.order_id.clone(), codec.encode(&t, v).await)
            }
        };
        records.push(OutRecord::new(id).key(key).payload(bytes.unwrap()));
    }
    records.extend(extra);
    for chunk in records.chunks(5_000) {
        for r in producer.send_batch(chunk).await {
            r.unwrap();
        }
    }
}

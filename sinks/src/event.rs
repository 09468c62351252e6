//! What the sinks consume: every record of the topics a sink reads (the
//! topology's sink inputs; the operational sink also the operator
//! console's actions), decoded into one typed [`SinkEvent`], with its
//! coordinates.
//!
//! Each record carries the version a sink keeps it under ([`version`]): a
//! function of the record's content only (never of the offset it sits
//! at), so a redelivery, a crash re-emission or a replay of the same event
//! writes the same version, and an older event never replaces a newer one.

use std::collections::HashMap;

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::InRecord;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::{Codec, DecodeError, Source};
use conveyor_schemas::records::{
    AllocationResult, DlqRecord, ExceptionRecord, InventoryAlert, InventoryEvent, LabeledShipment,
    OperatorAction, OrderEvent, PlannedShipment, Record, StockMovement, SyncedShipment,
};

/// One decoded sink input record.
// Unboxed: a batch is a Vec of these, and each record's own heap data
// (strings, lines) outweighs the inline size the largest variant costs.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SinkEvent {
    Order(OrderEvent),
    Dlq(DlqRecord),
    Inventory(InventoryEvent),
    Allocation(AllocationResult),
    Movement(StockMovement),
    Alert(InventoryAlert),
    Planned(PlannedShipment),
    Labeled(LabeledShipment),
    Synced(SyncedShipment),
    Exception(ExceptionRecord),
    /// An operator console action (read by the operational sink only).
    Action(OperatorAction),
}

/// A decoded record and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub event: SinkEvent,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The replay generation that wrote it (0: the first run).
    pub generation: u16,
}

impl Located {
    /// A record of the first run (no replay).
    pub fn first_run(event: SinkEvent, topic: &str, partition: i32, offset: i64) -> Self {
        Self {
            event,
            topic: topic.to_string(),
            partition,
            offset,
            generation: 0,
        }
    }

    /// The version the sinks keep it under: see [`version`] and
    /// [`with_generation`].
    pub fn version(&self) -> i64 {
        with_generation(self.event.version(), self.generation)
    }
}

/// The replay generation of a record, from its header (0 when absent or
/// unreadable).
pub fn generation_of(rec: &InRecord) -> u16 {
    rec.header(conveyor_stream::GENERATION_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The record type each sink input topic carries (see the contracts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Order,
    Dlq,
    Inventory,
    Allocation,
    Movement,
    Alert,
    Planned,
    Labeled,
    Synced,
    Exception,
    Action,
}

fn kind_of(topic_id: &str) -> Option<Kind> {
    Some(match topic_id {
        "orders_normalized" => Kind::Order,
        "orders_dlq" => Kind::Dlq,
        "inventory_events" => Kind::Inventory,
        "orders_allocated" | "orders_backordered" => Kind::Allocation,
        "allocation_events" => Kind::Movement,
        "inventory_alerts" => Kind::Alert,
        "shipments_planned" => Kind::Planned,
        "shipments_labeled" => Kind::Labeled,
        "shipments_synced" => Kind::Synced,
        "exceptions" => Kind::Exception,
        "operator_actions" => Kind::Action,
        _ => return None,
    })
}

/// A sink's input topics (resolved names) and how to decode each.
#[derive(Debug, Clone)]
pub struct Inputs {
    by_topic: HashMap<String, Kind>,
}

impl Inputs {
    /// The topics `ids` (a sink's reads, e.g.
    /// [`conveyor_runtime::topology::sink_reads`]) under their names from
    /// the config; ids that carry no sink record are left out.
    pub fn resolve(config: &Config, ids: &[&str]) -> Self {
        let topo = Topology::resolve(config);
        let by_topic = ids
            .iter()
            .filter_map(|id| Some((topo.topic_name(id)?.to_string(), kind_of(id)?)))
            .collect();
        Self { by_topic }
    }

    /// The topic names, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.by_topic.keys().cloned().collect();
        t.sort();
        t
    }

    /// Decodes `rec` by its topic's contract.
    pub async fn decode(&self, codec: &Codec, rec: &InRecord) -> Result<Located, DecodeError> {
        let at = Source {
            topic: &rec.topic,
            partition: rec.partition,
            offset: rec.offset,
        };
        let Some(kind) = self.by_topic.get(&rec.topic).copied() else {
            return Err(DecodeError {
                kind: conveyor_schemas::codec::DecodeErrorKind::Data,
                topic: rec.topic.clone(),
                partition: rec.partition,
                offset: rec.offset,
                schema_id: None,
                message: "not a sink input topic".into(),
            });
        };
        let bytes = rec.payload.as_deref();
        async fn get<T: Record>(
            codec: &Codec,
            bytes: Option<&[u8]>,
            at: Source<'_>,
        ) -> Result<T, DecodeError> {
            codec.decode::<T>(bytes, at).await
        }
        let event = match kind {
            Kind::Order => SinkEvent::Order(get(codec, bytes, at).await?),
            Kind::Dlq => SinkEvent::Dlq(get(codec, bytes, at).await?),
            Kind::Inventory => SinkEvent::Inventory(get(codec, bytes, at).await?),
            Kind::Allocation => SinkEvent::Allocation(get(codec, bytes, at).await?),
            Kind::Movement => SinkEvent::Movement(get(codec, bytes, at).await?),
            Kind::Alert => SinkEvent::Alert(get(codec, bytes, at).await?),
            Kind::Planned => SinkEvent::Planned(get(codec, bytes, at).await?),
            Kind::Labeled => SinkEvent::Labeled(get(codec, bytes, at).await?),
            Kind::Synced => SinkEvent::Synced(get(codec, bytes, at).await?),
            Kind::Exception => SinkEvent::Exception(get(codec, bytes, at).await?),
            Kind::Action => SinkEvent::Action(get(codec, bytes, at).await?),
        };
        Ok(Located {
            event,
            topic: rec.topic.clone(),
            partition: rec.partition,
            offset: rec.offset,
            generation: generation_of(rec),
        })
    }
}

/// The index at the end of a derived event id (`<input id>/<index>`), or 0.
pub fn event_index(event_id: &str) -> u64 {
    event_id
        .rsplit_once('/')
        .and_then(|(_, i)| i.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Replay generations one event time can tell apart (see
/// [`with_generation`]).
pub const GENERATIONS: i64 = 1024;

/// The version a sink keeps a record under: its event time in
/// microseconds plus the output index within its input event (outputs of
/// one input share the input's time; indexes past 999 share 999, never
/// wrapping below a smaller index), times [`GENERATIONS`], so the later
/// of two events wins and a repeated event writes the same version.
/// Scylla uses it as the write timestamp (`USING TIMESTAMP`), ClickHouse
/// as the ReplacingMergeTree version. Fits an i64 until the year 2255.
pub fn version(event_ms: i64, event_id: &str) -> i64 {
    event_ms
        .max(0)
        .saturating_mul(1000)
        .saturating_add(event_index(event_id).min(999) as i64)
        .saturating_mul(GENERATIONS)
}

/// `version` of a record written by replay `generation`: the same event
/// re-emitted by a later replay (after a fix) supersedes the earlier
/// run's, while a later event still supersedes any replay of an earlier
/// one. Generations past [`GENERATIONS`]` - 1` share the last.
pub fn with_generation(version: i64, generation: u16) -> i64 {
    version.saturating_add(i64::from(generation).min(GENERATIONS - 1))
}

impl SinkEvent {
    /// The event's own id.
    pub fn event_id(&self) -> &str {
        match self {
            SinkEvent::Order(e) => &e.event_id,
            SinkEvent::Dlq(e) => &e.event_id,
            SinkEvent::Inventory(e) => &e.event_id,
            SinkEvent::Allocation(e) => &e.event_id,
            SinkEvent::Movement(e) => &e.event_id,
            SinkEvent::Alert(e) => &e.event_id,
            SinkEvent::Planned(e) => &e.event_id,
            SinkEvent::Labeled(e) => &e.event_id,
            SinkEvent::Synced(e) => &e.event_id,
            SinkEvent::Exception(e) => &e.event_id,
            SinkEvent::Action(e) => &e.event_id,
        }
    }

    /// Event time, UTC millis.
    pub fn event_ms(&self) -> i64 {
        match self {
            SinkEvent::Order(e) => e.occurred_at,
            SinkEvent::Dlq(e) => e.source_timestamp.unwrap_or(0),
            SinkEvent::Inventory(e) => e.occurred_at,
            SinkEvent::Allocation(e) => e.decided_at,
            SinkEvent::Movement(e) => e.occurred_at,
            SinkEvent::Alert(e) => e.occurred_at,
            SinkEvent::Planned(e) => e.planned_at,
            SinkEvent::Labeled(e) => e.labeled_at,
            SinkEvent::Synced(e) => e.synced_at,
            SinkEvent::Exception(e) => e.raised_at,
            SinkEvent::Action(e) => e.at,
        }
    }

    /// See [`version`].
    pub fn version(&self) -> i64 {
        version(self.event_ms(), self.event_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_time_then_output_index() {
        assert_eq!(event_index("norm:orders.raw.shopify:0:7/3"), 3);
        assert_eq!(event_index("no-index"), 0);
        assert!(version(1_000, "a/0") > version(999, "b/7"));
        assert!(version(1_000, "a/2") > version(1_000, "a/1"));
        assert_eq!(version(1_000, "a/1"), version(1_000, "a/1"));
        // A replay of the same event wins; a later event beats any replay.
        let v = version(1_000, "a/1");
        assert!(with_generation(v, 1) > v && with_generation(v, 2) > with_generation(v, 1));
        assert!(version(1_001, "a/0") > with_generation(v, u16::MAX));
        assert!(version(1_000, "a/2") > with_generation(v, 1023));
        assert_eq!(with_generation(v, 5000), with_generation(v, 1023));
        assert_eq!(
            version(-5, "x"),
            0,
            "a clock before 1970 does not go negative"
        );
    }

    #[test]
    fn every_sink_input_has_a_decoder() {
        use conveyor_runtime::topology::{sink_reads, OPERATIONAL_SINK_INPUTS, SINK_INPUTS};
        for id in OPERATIONAL_SINK_INPUTS {
            assert!(kind_of(id).is_some(), "{id} has no record type");
        }
        let config = Config::default();
        let analytics = Inputs::resolve(&config, sink_reads("sink-clickhouse"));
        assert_eq!(analytics.topics().len(), SINK_INPUTS.len());
        assert!(!analytics.topics().contains(&"operator.actions".to_string()));
        let operational = Inputs::resolve(&config, sink_reads("sink-scylla"));
        assert_eq!(operational.topics().len(), SINK_INPUTS.len() + 1);
        assert!(operational
            .topics()
            .contains(&"operator.actions".to_string()));
    }
}

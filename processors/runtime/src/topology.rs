//! The topology, declared in one place: every topic, every component (who
//! reads and writes what), and every state store with its changelog.
//!
//! This is the single source of truth for `conveyor topics create` (which
//! topics exist, with which partitions and configs), `conveyor topology` (the
//! printed map) and the consumer group and client ids each component uses.
//! Names, partitions and retention come from [`crate::config::TopicsConfig`];
//! the shape (which topics exist and who touches them) is code.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{CleanupPolicy, Config};

/// Sales channels conveyor has connectors for.
pub const CHANNELS: &[&str] = &["shopify", "amazon", "tiktok", "ebay", "csv"];

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A topic of the topology.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TopicDecl {
    /// Stable id used in config overrides (`[topics.overrides.<id>]`).
    pub id: &'static str,
    /// Default name; `{channel}` is replaced for per-channel topics.
    pub default_name: &'static str,
    /// One topic per enabled channel.
    pub per_channel: bool,
    /// What the record key is.
    pub key: &'static str,
    /// What the record value is.
    pub value: &'static str,
    pub cleanup: CleanupPolicy,
    /// Default `retention.ms` (-1 = forever).
    pub retention_ms: i64,
}

pub const TOPICS: &[TopicDecl] = &[
    TopicDecl {
        id: "orders_raw",
        default_name: "orders.raw.{channel}",
        per_channel: true,
        key: "channel order id",
        value: "raw envelope: payload bytes exactly as received + source headers",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "orders_normalized",
        default_name: "orders.normalized",
        per_channel: false,
        key: "order_id",
        value: "canonical Order",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "orders_dlq",
        default_name: "orders.dlq",
        per_channel: false,
        key: "source key",
        value: "DLQ record: reason, error kind, source topic/partition/offset, original bytes",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 30 * DAY_MS,
    },
    TopicDecl {
        id: "inventory_events",
        default_name: "inventory.events",
        per_channel: false,
        key: "sku",
        value: "restock / adjustment / count / transfer",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 30 * DAY_MS,
    },
    TopicDecl {
        id: "orders_allocated",
        default_name: "orders.allocated",
        per_channel: false,
        key: "order_id",
        value: "allocation result: reserved lines per warehouse",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "orders_backordered",
        default_name: "orders.backordered",
        per_channel: false,
        key: "order_id",
        value: "backorder: lines waiting for stock",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "allocation_events",
        default_name: "allocation.events",
        per_channel: false,
        key: "sku",
        value: "reservation / release / shipment stock movements",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "inventory_alerts",
        default_name: "inventory.alerts",
        per_channel: false,
        key: "sku",
        value: "low-stock alert when available crosses the reorder point",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "shipments_planned",
        default_name: "shipments.planned",
        per_channel: false,
        key: "order_id",
        value: "planned shipment: warehouse, carrier, service, rate, SLA",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "shipments_labeled",
        default_name: "shipments.labeled",
        per_channel: false,
        key: "order_id",
        value: "labeled shipment: tracking number, label and packing slip documents",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "shipments_synced",
        default_name: "shipments.synced",
        per_channel: false,
        key: "order_id",
        value: "tracking pushed back to the sales channel: outcome and the channel's reference",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "exceptions",
        default_name: "exceptions",
        per_channel: false,
        key: "order_id",
        value: "failures an operator must act on (label refused, channel refused tracking), with reason, action and source coordinates",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 30 * DAY_MS,
    },
    TopicDecl {
        id: "operator_actions",
        default_name: "operator.actions",
        per_channel: false,
        key: "order_id",
        value: "the operator console's audit log: retry, cancel, resolve with who, when, why",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 365 * DAY_MS,
    },
    TopicDecl {
        id: "catalog_skus",
        default_name: "catalog.skus",
        per_channel: false,
        key: "sku",
        value: "SKU master data: weight, dimensions, declared value, hazmat, channel listing ids",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "changelog_normalize_versions",
        default_name: "conveyor.normalize.versions.{channel}.changelog",
        per_channel: true,
        key: "order_id",
        value: "state store `versions` of normalize: latest version and content hash per order (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "commands_allocate",
        default_name: "allocate.commands",
        per_channel: false,
        key: "order_id",
        value: "internal: the allocate job's log (forwarded orders, hold answers, stock arrivals, revocations; JSON)",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "commands_inventory",
        default_name: "inventory.commands",
        per_channel: false,
        key: "sku",
        value: "internal: the inventory job's log (forwarded stock events, holds, commits, releases; JSON)",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "changelog_allocate_orders",
        default_name: "conveyor.allocate.orders.changelog",
        per_channel: false,
        key: "order_id",
        value: "state store `orders` of allocate: each order's attempt, holds answered and decision (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "changelog_inventory_stock",
        default_name: "conveyor.inventory.stock.changelog",
        per_channel: false,
        key: "sku",
        value: "state store `stock` of inventory: levels, claims, backorder queue per SKU (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "commands_route",
        default_name: "route.commands",
        per_channel: false,
        key: "order_id",
        value: "internal: the route job's log (forwarded order versions and allocation outcomes; JSON)",
        cleanup: CleanupPolicy::Delete,
        retention_ms: 14 * DAY_MS,
    },
    TopicDecl {
        id: "changelog_route_shipments",
        default_name: "conveyor.route.shipments.changelog",
        per_channel: false,
        key: "order_id",
        value: "state store `shipments` of route: each order's newest version, pending allocation and shipments (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "changelog_label_labels",
        default_name: "conveyor.label.labels.changelog",
        per_channel: false,
        key: "shipment id",
        value: "state store `labels` of label: bought labels by idempotency key (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "changelog_syncback_synced",
        default_name: "conveyor.syncback.synced.changelog",
        per_channel: false,
        key: "shipment id",
        value: "state store `synced` of syncback: what each channel confirmed per shipment (changelog)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
    TopicDecl {
        id: "control_replays",
        default_name: "conveyor.replays",
        per_channel: false,
        key: "replay id",
        value: "a `conveyor replay` job: its plan, generation and progress (JSON; docs/replay.md)",
        cleanup: CleanupPolicy::Compact,
        retention_ms: -1,
    },
];

impl TopicDecl {
    /// Internal topics carry a job's own encoding, not a contract: state
    /// store changelogs (`changelog_*`) and stateful jobs' command logs
    /// (`commands_*`), like Kafka Streams' changelog and repartition topics,
    /// and the tools' own records (`control_*`: replay jobs).
    pub fn internal(&self) -> bool {
        self.id.starts_with("changelog_")
            || self.id.starts_with("commands_")
            || self.id.starts_with("control_")
    }
}

/// Looks a topic up by id.
pub fn topic(id: &str) -> Option<&'static TopicDecl> {
    TOPICS.iter().find(|t| t.id == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Connector,
    Processor,
    Sink,
    /// A tool people drive (the operator console): it reads no topic,
    /// and writes what its users decide.
    Console,
}

/// Whether a component can run yet. The topology declares the whole
/// pipeline; components are filled in by later work and say so honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Built,
    Planned,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct StoreDecl {
    pub name: &'static str,
    /// Topic id of its changelog.
    pub changelog: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct NodeDecl {
    /// Component name as used by `conveyor run <name>`; connectors are
    /// `connect` (one instance per channel).
    pub name: &'static str,
    pub kind: NodeKind,
    pub reads: &'static [&'static str],
    pub writes: &'static [&'static str],
    pub stores: &'static [StoreDecl],
    pub status: Status,
    pub doc: &'static str,
}

/// The topics both sinks read (ids).
pub const SINK_INPUTS: &[&str] = &[
    "orders_normalized",
    "orders_dlq",
    "inventory_events",
    "orders_allocated",
    "orders_backordered",
    "allocation_events",
    "inventory_alerts",
    "shipments_planned",
    "shipments_labeled",
    "shipments_synced",
    "exceptions",
];

/// What the operational sink (`sink-scylla`) reads: every [`SINK_INPUTS`]
/// topic and the operator console's actions (the exceptions' states, the
/// audit log). Analytics (`sink-clickhouse`) has no use for the latter.
pub const OPERATIONAL_SINK_INPUTS: &[&str] = &{
    let mut ids = [""; SINK_INPUTS.len() + 1];
    let mut i = 0;
    while i < SINK_INPUTS.len() {
        ids[i] = SINK_INPUTS[i];
        i += 1;
    }
    ids[i] = "operator_actions";
    ids
};

/// The topics sink `name` reads (ids): its node's reads, or
/// [`SINK_INPUTS`] for a name that is no sink of the topology.
pub fn sink_reads(name: &str) -> &'static [&'static str] {
    match node(name) {
        Some(n) if n.kind == NodeKind::Sink => n.reads,
        _ => SINK_INPUTS,
    }
}

pub const NODES: &[NodeDecl] = &[
    NodeDecl {
        name: "connect",
        kind: NodeKind::Connector,
        reads: &[],
        writes: &["orders_raw"],
        stores: &[],
        status: Status::Built,
        doc: "channel webhooks, pollers and CSV import -> raw topics (built: Shopify, Amazon, TikTok Shop, eBay, CSV)",
    },
    NodeDecl {
        name: "normalize",
        kind: NodeKind::Processor,
        reads: &["orders_raw", "catalog_skus"],
        writes: &["orders_normalized", "orders_dlq"],
        stores: &[StoreDecl {
            name: "versions",
            changelog: "changelog_normalize_versions",
        }],
        status: Status::Built,
        doc: "raw channel payloads -> canonical Order; invalid input -> DLQ",
    },
    NodeDecl {
        name: "allocate",
        kind: NodeKind::Processor,
        reads: &[
            "orders_normalized",
            "inventory_events",
            "commands_allocate",
            "commands_inventory",
        ],
        writes: &[
            "commands_allocate",
            "commands_inventory",
            "orders_allocated",
            "orders_backordered",
            "allocation_events",
            "inventory_alerts",
            "orders_dlq",
        ],
        stores: &[
            StoreDecl {
                name: "orders",
                changelog: "changelog_allocate_orders",
            },
            StoreDecl {
                name: "stock",
                changelog: "changelog_inventory_stock",
            },
        ],
        status: Status::Built,
        doc: "hold, decide, commit: multi-warehouse reservations that never oversell (jobs allocate + inventory, docs/allocation.md)",
    },
    NodeDecl {
        name: "route",
        kind: NodeKind::Processor,
        reads: &[
            "orders_normalized",
            "orders_allocated",
            "commands_route",
            "catalog_skus",
        ],
        writes: &["commands_route", "shipments_planned", "orders_dlq"],
        stores: &[StoreDecl {
            name: "shipments",
            changelog: "changelog_route_shipments",
        }],
        status: Status::Built,
        doc: "box, zone, carrier and service by rate card and SLA, one plan per allocated parcel (docs/routing.md)",
    },
    NodeDecl {
        name: "label",
        kind: NodeKind::Processor,
        reads: &["shipments_planned"],
        writes: &["shipments_labeled", "exceptions", "orders_dlq"],
        stores: &[StoreDecl {
            name: "labels",
            changelog: "changelog_label_labels",
        }],
        status: Status::Built,
        doc: "buy the label (idempotency key from the shipment id), render the packing slip and the combined PDF (docs/labels.md)",
    },
    NodeDecl {
        name: "syncback",
        kind: NodeKind::Processor,
        reads: &["shipments_labeled"],
        writes: &["shipments_synced", "exceptions", "orders_dlq"],
        stores: &[StoreDecl {
            name: "synced",
            changelog: "changelog_syncback_synced",
        }],
        status: Status::Built,
        doc: "push each label's tracking to its channel: Shopify fulfillment, Amazon confirmShipment, TikTok ship package, eBay shipping fulfillment (docs/syncback.md)",
    },
    NodeDecl {
        name: "console",
        kind: NodeKind::Console,
        reads: &[],
        writes: &["operator_actions", "shipments_planned"],
        stores: &[],
        status: Status::Built,
        doc: "the operator console (docs/console.md)",
    },
    NodeDecl {
        name: "sink-scylla",
        kind: NodeKind::Sink,
        reads: OPERATIONAL_SINK_INPUTS,
        writes: &["orders_dlq"],
        stores: &[],
        status: Status::Built,
        doc: "operational state (embedded redb or ScyllaDB: orders, history, shipments, tracking, inventory, alerts, exceptions and the operator actions on them) and the order status API (deploy/scylla, docs/status-api.md)",
    },
    NodeDecl {
        name: "sink-clickhouse",
        kind: NodeKind::Sink,
        reads: SINK_INPUTS,
        writes: &["orders_dlq"],
        stores: &[],
        status: Status::Built,
        doc: "analytics facts (ReplacingMergeTree by natural key and version) and refreshable materialized views (deploy/clickhouse, docs/analytics.md)",
    },
];

pub fn node(name: &str) -> Option<&'static NodeDecl> {
    NODES.iter().find(|n| n.name == name)
}

/// A concrete topic: a declaration with names and settings resolved from the
/// config (one per channel for per-channel declarations).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicSpec {
    pub id: &'static str,
    /// For per-channel topics, the channel.
    pub channel: Option<String>,
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level configs conveyor sets (cleanup.policy, retention.ms, ...).
    pub configs: BTreeMap<String, String>,
    pub writers: Vec<&'static str>,
    pub readers: Vec<&'static str>,
}

impl TopicSpec {
    /// A topic outside the topology (demo data, benchmarks, examples):
    /// compacted ones get [`MIN_COMPACTION_LAG_MS`] like the changelogs.
    pub fn adhoc(
        name: &str,
        partitions: i32,
        replication_factor: i16,
        cleanup: CleanupPolicy,
    ) -> TopicSpec {
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), cleanup.as_str().to_string());
        if cleanup == CleanupPolicy::Compact {
            configs.insert(
                "min.compaction.lag.ms".into(),
                MIN_COMPACTION_LAG_MS.to_string(),
            );
        }
        TopicSpec {
            id: "adhoc",
            channel: None,
            name: name.to_string(),
            partitions,
            replication_factor,
            configs,
            writers: vec![],
            readers: vec![],
        }
    }
}

/// `min.compaction.lag.ms` of compacted topics: a changelog's unfinished
/// batch must not let compaction drop older values before the batch is
/// redone (see conveyor_stream::changelog).
pub const MIN_COMPACTION_LAG_MS: i64 = 7 * DAY_MS;

/// The topology with the config applied.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub topics: Vec<TopicSpec>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: &'static str,
    pub kind: NodeKind,
    pub status: Status,
    pub group_id: String,
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    pub stores: Vec<(String, String)>,
    pub doc: &'static str,
}

impl Topology {
    pub fn resolve(config: &Config) -> Topology {
        let mut topics = Vec::new();
        for decl in TOPICS {
            let channels: Vec<Option<&str>> = if decl.per_channel {
                config
                    .channels
                    .enabled
                    .iter()
                    .map(|c| Some(c.as_str()))
                    .collect()
            } else {
                vec![None]
            };
            for channel in channels {
                topics.push(resolve_topic(config, decl, channel));
            }
        }
        let names_of = |ids: &[&str]| -> Vec<String> {
            topics
                .iter()
                .filter(|t| ids.contains(&t.id))
                .map(|t| t.name.clone())
                .collect()
        };
        let nodes = NODES
            .iter()
            .map(|n| NodeView {
                name: n.name,
                kind: n.kind,
                status: n.status,
                group_id: group_id(config, n.name),
                reads: names_of(n.reads),
                writes: names_of(n.writes),
                stores: n
                    .stores
                    .iter()
                    .map(|s| (s.name.to_string(), names_of(&[s.changelog]).join(",")))
                    .collect(),
                doc: n.doc,
            })
            .collect();
        Topology { topics, nodes }
    }

    /// Resolved name of a non-per-channel topic.
    pub fn topic_name(&self, id: &str) -> Option<&str> {
        self.topics
            .iter()
            .find(|t| t.id == id && t.channel.is_none())
            .map(|t| t.name.as_str())
    }

    /// Resolved name of a channel's raw topic.
    pub fn raw_topic(&self, channel: &str) -> Option<&str> {
        self.channel_topic("orders_raw", channel)
    }

    /// Resolved name of a per-channel topic for `channel`.
    pub fn channel_topic(&self, id: &str, channel: &str) -> Option<&str> {
        self.topics
            .iter()
            .find(|t| t.id == id && t.channel.as_deref() == Some(channel))
            .map(|t| t.name.as_str())
    }

    /// The resolved spec of a topic (`channel` for per-channel ones).
    pub fn spec(&self, id: &str, channel: Option<&str>) -> Option<&TopicSpec> {
        self.topics
            .iter()
            .find(|t| t.id == id && t.channel.as_deref() == channel)
    }

    /// Renders the topology as text: topics with their writers and readers,
    /// then components with their groups and stores.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = self
            .topics
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!(
            "TOPICS\n  {:<w$}  {:>5}  {:>3}  {:<8}  {:>10}  WRITERS -> READERS\n",
            "NAME", "PARTS", "RF", "POLICY", "RETENTION"
        ));
        for t in &self.topics {
            let policy = t
                .configs
                .get("cleanup.policy")
                .map(String::as_str)
                .unwrap_or("delete");
            let retention = t
                .configs
                .get("retention.ms")
                .map(|r| human_ms(r))
                .unwrap_or_else(|| "default".into());
            let writers = if t.writers.is_empty() {
                "-".into()
            } else {
                t.writers.join(",")
            };
            let readers = if t.readers.is_empty() {
                "-".into()
            } else {
                t.readers.join(",")
            };
            out.push_str(&format!(
                "  {:<w$}  {:>5}  {:>3}  {:<8}  {:>10}  {} -> {}\n",
                t.name, t.partitions, t.replication_factor, policy, retention, writers, readers
            ));
        }
        out.push_str("\nCOMPONENTS\n");
        for n in &self.nodes {
            let status = match n.status {
                Status::Built => "built",
                Status::Planned => "planned",
            };
            out.push_str(&format!(
                "  {} ({:?}, {status}) group {}\n    {}\n",
                n.name, n.kind, n.group_id, n.doc
            ));
            if !n.reads.is_empty() {
                out.push_str(&format!("    reads  {}\n", n.reads.join(", ")));
            }
            if !n.writes.is_empty() {
                out.push_str(&format!("    writes {}\n", n.writes.join(", ")));
            }
            for (store, changelog) in &n.stores {
                out.push_str(&format!("    store  {store} (changelog {changelog})\n"));
            }
        }
        out
    }
}

/// Consumer group id of a component.
pub fn group_id(config: &Config, component: &str) -> String {
    let base = format!("{}.{}", config.kafka.group_prefix, component);
    if config.topics.namespace.is_empty() {
        base
    } else {
        format!("{}.{base}", config.topics.namespace)
    }
}

fn resolve_topic(config: &Config, decl: &TopicDecl, channel: Option<&str>) -> TopicSpec {
    let ov = config
        .topics
        .overrides
        .get(decl.id)
        .cloned()
        .unwrap_or_default();
    let template = ov
        .name
        .clone()
        .unwrap_or_else(|| decl.default_name.to_string());
    let base = match channel {
        Some(c) => template.replace("{channel}", c),
        None => template,
    };
    let name = if config.topics.namespace.is_empty() {
        base
    } else {
        format!("{}.{base}", config.topics.namespace)
    };
    let mut configs = ov.configs.clone();
    let cleanup = ov.cleanup_policy.unwrap_or(decl.cleanup);
    configs.insert("cleanup.policy".into(), cleanup.as_str().into());
    configs.insert(
        "retention.ms".into(),
        ov.retention_ms.unwrap_or(decl.retention_ms).to_string(),
    );
    if cleanup == CleanupPolicy::Compact {
        configs
            .entry("min.compaction.lag.ms".into())
            .or_insert_with(|| MIN_COMPACTION_LAG_MS.to_string());
    }
    let touches = |ids: &[&str]| ids.contains(&decl.id);
    TopicSpec {
        id: decl.id,
        channel: channel.map(str::to_string),
        name,
        partitions: ov.partitions.unwrap_or(config.topics.partitions),
        replication_factor: ov
            .replication_factor
            .unwrap_or(config.topics.replication_factor),
        configs,
        writers: NODES
            .iter()
            .filter(|n| touches(n.writes))
            .map(|n| n.name)
            .collect(),
        readers: NODES
            .iter()
            .filter(|n| touches(n.reads))
            .map(|n| n.name)
            .collect(),
    }
}

fn human_ms(raw: &str) -> String {
    match raw.parse::<i64>() {
        Ok(-1) => "forever".into(),
        Ok(ms) if ms % DAY_MS == 0 => format!("{}d", ms / DAY_MS),
        Ok(ms) if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        Ok(ms) => format!("{ms}ms"),
        Err(_) => raw.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_is_declared() {
        for n in NODES {
            for id in n.reads.iter().chain(n.writes) {
                assert!(
                    topic(id).is_some(),
                    "{} refers to unknown topic {id}",
                    n.name
                );
            }
            for s in n.stores {
                let t = topic(s.changelog).expect("changelog declared");
                assert_eq!(
                    t.cleanup,
                    CleanupPolicy::Compact,
                    "changelogs are compacted"
                );
            }
        }
        let mut ids: Vec<_> = TOPICS.iter().map(|t| t.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), TOPICS.len(), "topic ids are unique");
    }

    #[test]
    fn the_operational_sink_reads_every_sink_input_and_the_console_actions() {
        assert_eq!(
            &OPERATIONAL_SINK_INPUTS[..SINK_INPUTS.len()],
            SINK_INPUTS,
            "every sink input, in order"
        );
        assert_eq!(OPERATIONAL_SINK_INPUTS.last(), Some(&"operator_actions"));
        assert_eq!(sink_reads("sink-scylla"), OPERATIONAL_SINK_INPUTS);
        assert_eq!(sink_reads("sink-clickhouse"), SINK_INPUTS);
        assert_eq!(sink_reads("console"), SINK_INPUTS, "not a sink");
        let t = Topology::resolve(&Config::default());
        let actions = t.spec("operator_actions", None).unwrap();
        assert_eq!(actions.writers, ["console"]);
        assert_eq!(actions.readers, ["sink-scylla"]);
        assert_eq!(actions.configs["retention.ms"], (365 * DAY_MS).to_string());
        let planned = t.spec("shipments_planned", None).unwrap();
        assert!(planned.writers.contains(&"console"), "retries re-publish");
    }

    #[test]
    fn resolves_names_partitions_and_overrides() {
        let mut c = Config::default();
        c.channels.enabled = vec!["shopify".into(), "csv".into()];
        c.topics.namespace = "sbx".into();
        c.topics.overrides.insert(
            "orders_normalized".into(),
            crate::config::TopicOverride {
                partitions: Some(12),
                retention_ms: Some(-1),
                ..Default::default()
            },
        );
        let t = Topology::resolve(&c);
        assert_eq!(t.raw_topic("shopify"), Some("sbx.orders.raw.shopify"));
        assert_eq!(t.raw_topic("amazon"), None);
        let n = t
            .topics
            .iter()
            .find(|t| t.id == "orders_normalized")
            .unwrap();
        assert_eq!(
            (n.partitions, n.configs["retention.ms"].as_str()),
            (12, "-1")
        );
        assert_eq!(n.writers, ["normalize"]);
        assert!(n.readers.contains(&"allocate"));
        let names: std::collections::BTreeSet<_> = t.topics.iter().map(|t| &t.name).collect();
        assert_eq!(names.len(), t.topics.len(), "resolved names are unique");
        assert_eq!(group_id(&c, "allocate"), "sbx.conveyor.allocate");
        assert!(t.render().contains("sbx.orders.dlq"));
    }
}

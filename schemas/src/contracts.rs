//! Which schema each topic carries. Subjects follow Confluent's
//! TopicNameStrategy: `<topic>-value`. Keys are plain UTF-8 strings
//! (order id, sku) and have no schema. Internal topics (state-store
//! changelogs, stateful jobs' command logs) hold the jobs' own encoding and
//! are not contracts.

use conveyor_runtime::topology::Topology;

use crate::records::{
    AllocationResult, CatalogSku, DlqRecord, ExceptionRecord, InventoryAlert, InventoryEvent,
    LabeledShipment, OperatorAction, OrderEvent, PlannedShipment, RawOrder, Record, StockMovement,
    SyncedShipment,
};

/// A topic's value contract.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    /// Topic id in the topology.
    pub topic_id: &'static str,
    /// Full Avro record name.
    pub record: &'static str,
    /// The `.avsc` file under `schemas/`.
    pub file: &'static str,
    /// Its text.
    pub avsc: fn() -> &'static str,
}

const fn contract<R: Record>(topic_id: &'static str, file: &'static str) -> Contract {
    Contract {
        topic_id,
        record: R::NAME,
        file,
        avsc: R::avsc,
    }
}

pub const CONTRACTS: &[Contract] = &[
    contract::<RawOrder>("orders_raw", "raw_order.avsc"),
    contract::<OrderEvent>("orders_normalized", "order_event.avsc"),
    contract::<DlqRecord>("orders_dlq", "dlq_record.avsc"),
    contract::<InventoryEvent>("inventory_events", "inventory_event.avsc"),
    contract::<AllocationResult>("orders_allocated", "allocation_result.avsc"),
    contract::<AllocationResult>("orders_backordered", "allocation_result.avsc"),
    contract::<StockMovement>("allocation_events", "stock_movement.avsc"),
    contract::<InventoryAlert>("inventory_alerts", "inventory_alert.avsc"),
    contract::<PlannedShipment>("shipments_planned", "planned_shipment.avsc"),
    contract::<LabeledShipment>("shipments_labeled", "labeled_shipment.avsc"),
    contract::<CatalogSku>("catalog_skus", "catalog_sku.avsc"),
    contract::<SyncedShipment>("shipments_synced", "synced_shipment.avsc"),
    contract::<ExceptionRecord>("exceptions", "exception_record.avsc"),
    contract::<OperatorAction>("operator_actions", "operator_action.avsc"),
];

/// A schema's identity: its JSON with whitespace and key order normalized.
/// Unlike Avro's Parsing Canonical Form it keeps defaults, docs and logical
/// types, so two schemas that differ in any of those are different schemas.
pub fn normalized_json(schema: &str) -> String {
    serde_json::from_str::<serde_json::Value>(schema)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| schema.to_string())
}

/// The value subject of a topic.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Every (subject, contract) of the resolved topology, in topology order.
pub fn subjects(topology: &Topology) -> Vec<(String, &'static Contract)> {
    topology
        .topics
        .iter()
        .filter_map(|t| {
            CONTRACTS
                .iter()
                .find(|c| c.topic_id == t.id)
                .map(|c| (value_subject(&t.name), c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_runtime::config::CleanupPolicy;
    use conveyor_runtime::topology::TOPICS;
    use serde_json::Value;

    #[test]
    fn identity_keeps_what_canonical_form_drops() {
        let a = r#"{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        let b = a.replace("millis", "micros");
        let spaced = a.replace(',', " ,\n ");
        assert_eq!(normalized_json(a), normalized_json(&spaced));
        assert_ne!(normalized_json(a), normalized_json(&b));
    }

    #[test]
    fn every_data_topic_has_a_contract() {
        // State-store changelogs and command logs carry the jobs' own
        // bytes; every other topic, compacted ones like catalog.skus
        // included, has a contract.
        for t in TOPICS {
            let has = CONTRACTS.iter().any(|c| c.topic_id == t.id);
            assert_eq!(has, !t.internal(), "topic {}", t.id);
            if t.id.starts_with("changelog_") {
                assert_eq!(t.cleanup, CleanupPolicy::Compact, "topic {}", t.id);
            }
        }
    }

    #[test]
    fn every_schema_parses_and_every_field_has_a_doc() {
        fn walk(v: &Value, path: &str, missing: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if o.get("type").and_then(Value::as_str) == Some("record") {
                        let name = o["name"].as_str().unwrap_or("?");
                        for f in o["fields"].as_array().into_iter().flatten() {
                            let field =
                                format!("{path}{name}.{}", f["name"].as_str().unwrap_or("?"));
                            if f.get("doc")
                                .and_then(Value::as_str)
                                .is_none_or(str::is_empty)
                            {
                                missing.push(field.clone());
                            }
                            walk(&f["type"], "", missing);
                        }
                    } else {
                        for (k, x) in o {
                            if k != "default" {
                                walk(x, path, missing);
                            }
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, path, missing)),
                _ => {}
            }
        }
        for c in CONTRACTS {
            apache_avro::Schema::parse_str((c.avsc)())
                .unwrap_or_else(|e| panic!("{}: {e}", c.file));
            let json: Value = serde_json::from_str((c.avsc)()).unwrap();
            let mut missing = Vec::new();
            walk(&json, "", &mut missing);
            assert!(
                missing.is_empty(),
                "{}: fields without doc: {missing:?}",
                c.file
            );
        }
    }

    #[test]
    fn money_is_decimal_and_time_is_timestamp_millis() {
        for c in CONTRACTS {
            let text = (c.avsc)();
            assert!(
                !text.contains("\"float\"") && !text.contains("\"double\""),
                "{}",
                c.file
            );
        }
        let order = crate::records::OrderEvent::avsc();
        assert!(order.contains("\"logicalType\": \"decimal\""));
        assert!(order.contains("\"logicalType\": \"timestamp-millis\""));
    }

    #[test]
    fn subjects_follow_the_topic_name_strategy() {
        let mut c = conveyor_runtime::Config::default();
        c.channels.enabled = vec!["csv".into()];
        let s = subjects(&Topology::resolve(&c));
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "orders.raw.csv-value");
        assert!(names.contains(&"orders.backordered-value"));
        assert_eq!(names.len(), CONTRACTS.len());
    }
}

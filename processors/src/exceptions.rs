//! Exceptions: failures that will not pass by retrying and that an operator
//! must act on (a label the carrier refused for an undeliverable address,
//! tracking a channel refused). A stage that meets one emits two records
//! for the input, and goes on with the next:
//!
//! - an [`ExceptionRecord`] on the `exceptions` topic (key = order id),
//!   with a stable `exception_id` (`<stage>:<shipment id>`), a
//!   machine-readable code, the API's words, what an operator can do, and
//!   the input's coordinates: the queue an operator works from, and what
//!   the order's status shows;
//! - a [`DlqRecord`] on the DLQ with the original record, so the input can
//!   be re-published after a fix, exactly as for any other dead letter.
//!
//! Both are a function of the input and the failure, so a re-processing
//! after a crash emits them again byte for byte (same ids). Nothing is
//! written to the stage's store: a replay after the cause is fixed tries
//! again.

use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::records::{DlqRecord, ErrorKind, ExceptionRecord};
use conveyor_stream::{event_id, Output};

/// Where a stage sends exceptions and dead letters (resolved topic names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinks {
    pub exceptions: String,
    pub dlq: String,
}

/// One problem, as the stage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<'a> {
    pub stage: &'a str,
    pub order_id: &'a str,
    pub shipment_id: Option<&'a str>,
    /// The input event's own id (the exception's event id derives from it).
    pub input_event_id: &'a str,
    pub code: &'a str,
    pub reason: &'a str,
}

/// What an operator can do about a code.
pub fn action(code: &str) -> &'static str {
    match code {
        "address_invalid" => "Correct the ship-to address, then retry the shipment.",
        "service_unavailable" | "service_invalid" => {
            "Choose another carrier service (or fix the routing rate card), then retry."
        }
        "order_not_found" => {
            "Check that the order exists in the channel's account conveyor is connected to; mark resolved if it was deleted there."
        }
        "already_fulfilled" | "quantity_exceeded" => {
            "The channel shows these units fulfilled already (shipped outside conveyor?): check the order in the channel, then mark resolved."
        }
        "withdraw_by_hand" => {
            "The parcel's label was voided after the channel was told: remove or correct its tracking in the channel's seller portal, then mark resolved."
        }
        "order_cancelled" => {
            "The channel cancelled the order after the label was bought: void the label with the carrier and restock the parcel."
        }
        _ => "Read the reason, fix the cause, then retry or mark resolved.",
    }
}

/// The exception record for `rec`.
pub fn record(rec: &InRecord, p: &Problem<'_>) -> ExceptionRecord {
    ExceptionRecord {
        event_id: event_id(p.input_event_id, 0),
        exception_id: format!("{}:{}", p.stage, p.shipment_id.unwrap_or(p.order_id)),
        order_id: p.order_id.to_string(),
        shipment_id: p.shipment_id.map(str::to_string),
        stage: p.stage.to_string(),
        code: p.code.to_string(),
        reason: p.reason.to_string(),
        action: action(p.code).to_string(),
        source_topic: rec.topic.clone(),
        source_partition: rec.partition,
        source_offset: rec.offset,
        raised_at: rec.timestamp_ms.unwrap_or(0),
    }
}

/// The exception and the dead letter for `rec`.
pub fn outputs(sinks: &Sinks, rec: &InRecord, p: &Problem<'_>) -> [Output; 2] {
    tracing::warn!(
        stage = p.stage,
        order_id = p.order_id,
        shipment_id = p.shipment_id.unwrap_or_default(),
        code = p.code,
        reason = p.reason,
        "exception raised"
    );
    metrics::counter!("conveyor_exceptions_total", "stage" => p.stage.to_string(), "code" => p.code.to_string())
        .increment(1);
    let exception = record(rec, p);
    let dead = DlqRecord::for_record(
        p.stage,
        ErrorKind::Processing,
        format!("{}: {}", p.code, p.reason),
        rec,
        None,
        1,
    );
    let key = rec.key.clone().unwrap_or_default();
    [
        Output::avro(
            sinks.exceptions.clone(),
            p.order_id.as_bytes().to_vec(),
            exception,
        ),
        Output::avro(sinks.dlq.clone(), key, dead),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_stream::Payload;

    #[test]
    fn an_exception_is_a_function_of_the_input_and_the_problem() {
        let rec = InRecord {
            topic: "shipments.planned".into(),
            partition: 3,
            offset: 41,
            key: Some(b"shopify:1".to_vec()),
            payload: Some(vec![0, 0, 0, 0, 1]),
            headers: vec![],
            timestamp_ms: Some(1_763_800_000_000),
        };
        let sinks = Sinks {
            exceptions: "exceptions".into(),
            dlq: "orders.dlq".into(),
        };
        let p = Problem {
            stage: "label",
            order_id: "shopify:1",
            shipment_id: Some("shopify:1/AUS-1/1"),
            input_event_id: "shopify:1/route/0",
            code: "address_invalid",
            reason: "purchase: Address not found",
        };
        let r = record(&rec, &p);
        assert_eq!(r.exception_id, "label:shopify:1/AUS-1/1");
        assert_eq!(r.event_id, "shopify:1/route/0/0");
        assert_eq!(
            (r.source_topic.as_str(), r.source_partition, r.source_offset),
            ("shipments.planned", 3, 41)
        );
        assert_eq!(r.raised_at, 1_763_800_000_000);
        assert_eq!(record(&rec, &p), r, "the same input raises the same record");
        let [e, d] = outputs(&sinks, &rec, &p);
        assert_eq!(
            (e.topic.as_str(), e.key.as_slice()),
            ("exceptions", &b"shopify:1"[..])
        );
        assert_eq!(
            (d.topic.as_str(), d.key.as_slice()),
            ("orders.dlq", &b"shopify:1"[..])
        );
        assert!(matches!(e.payload, Payload::Avro(_)));
        assert!(action("address_invalid").contains("address"));
        assert!(action("something_new").contains("retry or mark resolved"));
    }
}

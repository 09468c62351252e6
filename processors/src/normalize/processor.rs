//! The normalize stream processor: `orders.raw.<channel>` (RawOrder) ->
//! `orders.normalized` (OrderEvent), one job per channel.
//!
//! Keyed state (store `versions`, table [`VERSIONS_TABLE`], key = order id)
//! holds the newest channel version seen per order and a hash of what was
//! emitted for it. A raw record then:
//! - is **stale** when its version is older than the one seen: nothing is
//!   emitted (an out-of-order webhook never rolls an order back);
//! - is a **duplicate** when its version equals the one seen and its
//!   canonical content hashes the same: nothing is emitted (webhook retries,
//!   poller overlap, a webhook and the poller seeing the same update);
//! - otherwise emits `CREATED` (first sight), `UPDATED`, or `CANCELLED`,
//!   with event id `<raw event id>/0`, so a re-emission after a crash is
//!   byte-identical and dropped downstream.
//!
//! Equal version with different content (a replay after a mapping fix)
//! emits an update: the fix must reach the stores. The catalog version used
//! is recorded in `order.extras` but left out of the hash, so a catalog
//! update alone re-emits nothing.
//!
//! A payload the mapper refuses goes to `orders.dlq` as VALIDATION with the
//! mapper's reason (runtime: coordinates and original bytes kept).

use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::records::{OrderEvent, OrderEventKind, RawOrder};
use conveyor_schemas::wire::AvroBinary;
use conveyor_stream::{event_id, Avro, Output, ProcessError, Processor, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{normalize_with, Mapping, Normalized, CATALOG_VERSION_EXTRA};
use crate::catalog_feed::SharedCatalog;

/// State table: order id -> [`Seen`].
pub const VERSIONS_TABLE: &str = "versions";

/// What normalize remembers per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub version: i64,
    /// Hex SHA-256 of the emitted event's canonical content.
    pub hash: String,
    pub cancelled: bool,
    /// The raw event that produced the emitted event, and the kind it was
    /// emitted as: a replay re-emitting that same event (same id) after a
    /// mapping fix keeps its kind (a creation stays a creation).
    #[serde(default)]
    pub source_event_id: String,
    #[serde(default)]
    pub kind: Option<OrderEventKind>,
}

/// Outcome counters (also exported as `conveyor_normalize_total{outcome}`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub cancelled: u64,
    pub stale: u64,
    pub duplicate: u64,
}

pub struct Normalize {
    pub channel: String,
    /// Resolved name of `orders.normalized`.
    pub output: String,
    pub catalog: SharedCatalog,
    pub mapping: Mapping,
    pub counts: Counts,
}

impl Normalize {
    pub fn new(channel: &str, output: &str, catalog: SharedCatalog) -> Normalize {
        Normalize {
            channel: channel.to_string(),
            output: output.to_string(),
            catalog,
            mapping: Mapping::default(),
            counts: Counts::default(),
        }
    }

    /// With the configured field choices (see [`Mapping`]).
    pub fn with_mapping(mut self, mapping: Mapping) -> Normalize {
        self.mapping = mapping;
        self
    }

    fn count(&mut self, outcome: &'static str) {
        match outcome {
            "created" => self.counts.created += 1,
            "updated" => self.counts.updated += 1,
            "cancelled" => self.counts.cancelled += 1,
            "stale" => self.counts.stale += 1,
            _ => self.counts.duplicate += 1,
        }
        metrics::counter!(
            "conveyor_normalize_total",
            "channel" => self.channel.clone(),
            "outcome" => outcome
        )
        .increment(1);
    }
}

/// Decides what one normalized order becomes, given what was seen before:
/// `None` (stale or duplicate, with the reason) or the event to emit.
pub fn decide(
    raw: &RawOrder,
    mut n: Normalized,
    prior: Option<&Seen>,
) -> Result<(OrderEvent, Seen), &'static str> {
    let hash = content_hash(&mut n);
    if let Some(p) = prior {
        if n.version < p.version {
            return Err("stale");
        }
        if n.version == p.version && hash == p.hash {
            return Err("duplicate");
        }
    }
    let kind = match (&n.cancellation, prior) {
        (Some(_), _) => OrderEventKind::Cancelled,
        (None, None) => OrderEventKind::Created,
        // The same raw event again, content changed (a replay after a
        // fix): the same event, so the same kind.
        (None, Some(p)) if p.source_event_id == raw.event_id && n.version == p.version => {
            p.kind.unwrap_or(OrderEventKind::Updated)
        }
        (None, Some(_)) => OrderEventKind::Updated,
    };
    let occurred_at = n.cancellation.as_ref().map_or(n.order.updated_at, |c| {
        c.cancelled_at.max(n.order.updated_at)
    });
    let seen = Seen {
        version: n.version,
        hash,
        cancelled: n.cancellation.is_some(),
        source_event_id: raw.event_id.clone(),
        kind: Some(kind),
    };
    Ok((
        OrderEvent {
            event_id: event_id(&raw.event_id, 0),
            order_id: n.order.order_id.clone(),
            kind,
            version: n.version,
            occurred_at,
            source_event_id: raw.event_id.clone(),
            order: n.order,
            cancellation: n.cancellation,
        },
        seen,
    ))
}

/// SHA-256 of the order and cancellation in Avro binary (a canonical
/// encoding), without the catalog version.
fn content_hash(n: &mut Normalized) -> String {
    // The catalog version is taken out for the encoding and put back, so
    // the order is not copied.
    let catalog = n.order.extras.remove_entry(CATALOG_VERSION_EXTRA);
    let mut bytes = Vec::with_capacity(1024);
    // Encoding only fails for out-of-range amounts, which the mappers
    // refuse; hashing the partial bytes would still be deterministic.
    let _ = n.order.write(&mut bytes);
    let _ = n.cancellation.write(&mut bytes);
    if let Some((k, v)) = catalog {
        n.order.extras.insert(k, v);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(&bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(HEX[(b >> 4) as usize] as char);
        hex.push(HEX[(b & 15) as usize] as char);
    }
    hex
}

impl Processor for Normalize {
    type In = Avro<RawOrder>;

    fn process(
        &mut self,
        input: &Avro<RawOrder>,
        _rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let raw = &input.0;
        let normalized = {
            let catalog = self
                .catalog
                .read()
                .map_err(|_| ProcessError::Retry("catalog lock poisoned".into()))?;
            normalize_with(raw, &catalog, self.mapping).map_err(|r| {
                ProcessError::Invalid(format!(
                    "{} order {}: {}",
                    raw.channel, raw.external_order_id, r.0
                ))
            })?
        };
        let key = normalized.order.order_id.clone();
        let prior: Option<Seen> = state.get_json(VERSIONS_TABLE, key.as_bytes())?;
        match decide(raw, normalized, prior.as_ref()) {
            Err(skip) => {
                self.count(skip);
                Ok(())
            }
            Ok((event, seen)) => {
                state.put_json(VERSIONS_TABLE, key.as_bytes(), &seen)?;
                self.count(match event.kind {
                    OrderEventKind::Created => "created",
                    OrderEventKind::Updated => "updated",
                    OrderEventKind::Cancelled => "cancelled",
                });
                let channel = event.order.channel.clone();
                out.push(Output::avro(self.output.clone(), key, event).header("channel", channel));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::shopify;
    use crate::normalize::testing::catalog;
    use conveyor_schemas::records::RawSource;
    use serde_json::json;

    fn raw(v: &serde_json::Value, event: &str) -> RawOrder {
        RawOrder {
            event_id: event.into(),
            channel: "shopify".into(),
            external_order_id: "x".into(),
            external_order_number: None,
            source: RawSource::Webhook,
            topic_hint: None,
            received_at: 0,
            content_type: "application/json".into(),
            payload: serde_json::to_vec(v).unwrap(),
            source_headers: Default::default(),
        }
    }

    #[test]
    fn versions_decide_created_updated_stale_duplicate_cancelled() {
        let cat = catalog(&[
            ("MTG-DMU-BOOSTER", &[]),
            ("PKM-SV1-ETB", &[]),
            ("SLEEVE-DS-100", &[]),
            ("DICE-CHX-7", &[]),
            ("BINDER-9P", &[]),
        ]);
        let v1 = shopify::example(3);
        let run = |v: &serde_json::Value, id: &str, prior: Option<&Seen>| {
            let r = raw(v, id);
            let n = crate::normalize::normalize(&r, &cat).unwrap();
            decide(&r, n, prior)
        };
        let (e1, s1) = run(&v1, "w1", None).unwrap();
        assert_eq!(e1.kind, OrderEventKind::Created);
        assert_eq!(e1.event_id, "w1/0");
        assert_eq!(run(&v1, "w1-retry", Some(&s1)).unwrap_err(), "duplicate");

        let mut v2 = v1.clone();
        v2["updated_at"] = json!("2026-01-01T00:00:00Z");
        v2["note"] = json!("leave at door");
        let (e2, s2) = run(&v2, "w2", Some(&s1)).unwrap();
        assert_eq!(e2.kind, OrderEventKind::Updated);
        assert_eq!(run(&v1, "w1-late", Some(&s2)).unwrap_err(), "stale");

        // Same version, different content (a mapping fix replayed): emitted,
        // as the same kind when it is the same raw event again.
        let mut v2b = v2.clone();
        v2b["note"] = json!("ring twice");
        assert_eq!(
            run(&v2b, "w2", Some(&s2)).unwrap().0.kind,
            OrderEventKind::Updated
        );
        let mut v1b = v1.clone();
        v1b["note"] = json!("fixed mapping");
        let (e1b, _) = run(&v1b, "w1", Some(&s1)).unwrap();
        assert_eq!(
            e1b.kind,
            OrderEventKind::Created,
            "a replayed creation stays one"
        );
        assert_eq!(e1b.event_id, e1.event_id);
        assert_eq!(
            run(&v1b, "w1-poll", Some(&s1)).unwrap().0.kind,
            OrderEventKind::Updated,
            "another raw event with new content is an update"
        );

        let mut v3 = v2.clone();
        v3["updated_at"] = json!("2026-01-02T00:00:00Z");
        v3["cancelled_at"] = json!("2026-01-02T00:00:00Z");
        v3["cancel_reason"] = json!("inventory");
        let (e3, s3) = run(&v3, "w3", Some(&s2)).unwrap();
        assert_eq!(e3.kind, OrderEventKind::Cancelled);
        assert!(s3.cancelled);
        assert_eq!(e3.cancellation.unwrap().reason, "inventory");
    }

    #[test]
    fn a_catalog_update_alone_changes_no_hash() {
        let a = catalog(&[("DICE-CHX-7", &[])]);
        let mut b = a.clone();
        let mut newer = b.get("DICE-CHX-7").unwrap().as_ref().clone();
        newer.updated_at += 1;
        b.apply(newer);
        let v = json!({"id": 1, "currency": "USD", "updated_at": "2024-05-01T10:00:00Z",
            "line_items": [{"quantity": 1, "sku": "DICE-CHX-7", "price": "12.99"}],
            "shipping_address": {"name": "A B", "address1": "1 Main", "city": "Austin",
                                 "province_code": "TX", "zip": "78701", "country_code": "US"}});
        let r = raw(&v, "w");
        let (_, s1) = decide(&r, crate::normalize::normalize(&r, &a).unwrap(), None).unwrap();
        let n2 = crate::normalize::normalize(&r, &b).unwrap();
        assert_ne!(n2.order.extras[CATALOG_VERSION_EXTRA], "1700000000000");
        assert_eq!(decide(&r, n2, Some(&s1)).unwrap_err(), "duplicate");
    }
}

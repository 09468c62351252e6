//! The messages of the allocation protocol (docs/allocation.md): what the
//! `allocate` job (keyed by order) and the `inventory` job (keyed by SKU)
//! say to each other, and what the forwarders put in their logs.
//!
//! Both logs are internal topics (`allocate.commands`, `inventory.commands`)
//! in JSON: versioned by serde's tags, read only by these two jobs. Every
//! message has an `id`, deterministic (derived from the event that caused
//! it), and `at`, the event time of the order or stock event at its root,
//! so a re-emission is byte-identical and no job reads a clock.

use std::collections::BTreeMap;

use conveyor_schemas::records::{InventoryEvent, OrderEvent, Priority};
use serde::{Deserialize, Serialize};

/// The `allocate` job's log, key = order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AllocCommand {
    /// A version of an order (forwarded from `orders.normalized`).
    Order(OrderRequest),
    /// The answer to a [`InvCommand::Hold`]: what was held where.
    Held(Held),
    /// Stock arrived for a SKU this backordered order waits for.
    StockArrived(StockArrived),
    /// Stock was lost under a claim of the order (a count or adjustment).
    Revoked(Revoked),
}

impl AllocCommand {
    pub fn order_id(&self) -> &str {
        match self {
            AllocCommand::Order(o) => &o.order_id,
            AllocCommand::Held(h) => &h.order,
            AllocCommand::StockArrived(s) => &s.order,
            AllocCommand::Revoked(r) => &r.order,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            AllocCommand::Order(o) => &o.id,
            AllocCommand::Held(h) => &h.id,
            AllocCommand::StockArrived(s) => &s.id,
            AllocCommand::Revoked(r) => &r.id,
        }
    }
}

/// What allocation needs of one order version: the lines to ship and where
/// they go. The forwarder projects `orders.normalized` onto it, so the
/// allocate log stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub id: String,
    pub order_id: String,
    pub version: i64,
    pub cancelled: bool,
    pub channel: String,
    /// Fulfilled by the channel (Amazon FBA): recorded, not allocated.
    pub fulfilled_by_channel: bool,
    /// 0 = overnight, 1 = expedited, 2 = standard: sorts the urgent first.
    pub urgency: u8,
    pub created_at: i64,
    pub country: String,
    pub postal_code: String,
    /// Lines that ship (digital and gift-card lines are left out).
    pub lines: Vec<RequestLine>,
    /// Event time of the order event.
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLine {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
}

impl OrderRequest {
    /// The projection of an order event.
    pub fn from_event(e: &OrderEvent) -> OrderRequest {
        let o = &e.order;
        OrderRequest {
            id: e.event_id.clone(),
            order_id: e.order_id.clone(),
            version: e.version,
            cancelled: e.cancellation.is_some(),
            channel: o.channel.clone(),
            fulfilled_by_channel: o.fulfilled_by_channel,
            urgency: match o.priority {
                Priority::Overnight => 0,
                Priority::Expedited => 1,
                Priority::Standard => 2,
            },
            created_at: o.created_at,
            country: o.shipping_address.country.clone(),
            postal_code: o.shipping_address.postal_code.clone(),
            lines: o
                .lines
                .iter()
                .filter(|l| l.requires_shipping && l.quantity > 0)
                .map(|l| RequestLine {
                    line_id: l.line_id.clone(),
                    sku: l.sku.clone(),
                    quantity: l.quantity.into(),
                })
                .collect(),
            at: e.occurred_at,
        }
    }

    /// Units per SKU (two lines of one SKU are one hold), sorted by SKU.
    pub fn units_by_sku(&self) -> Vec<(String, i64)> {
        let mut m: BTreeMap<&str, i64> = BTreeMap::new();
        for l in &self.lines {
            *m.entry(&l.sku).or_default() += l.quantity;
        }
        m.into_iter().map(|(s, q)| (s.to_string(), q)).collect()
    }

    /// Where the order waits in a SKU's backorder queue.
    pub fn queue_key(&self) -> QueueKey {
        QueueKey {
            urgency: self.urgency,
            created_at: self.created_at,
            order: self.order_id.clone(),
        }
    }
}

/// A backordered order's place in a SKU's queue: the most urgent first,
/// then in order of arrival (the order's creation time), then by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueKey {
    pub urgency: u8,
    pub created_at: i64,
    pub order: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub id: String,
    pub order: String,
    pub attempt: u32,
    pub sku: String,
    /// Units held per candidate, in the order the Hold listed them.
    pub held: Vec<(String, i64)>,
    /// Per candidate, what the order could take there if no hold stood in
    /// its way (on hand less safety stock, reservations and its channel's
    /// buffer): a shortfall here is real, one only in `held` may pass.
    #[serde(default)]
    pub unreserved: Vec<(String, i64)>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockArrived {
    pub id: String,
    pub order: String,
    /// The attempt that backordered.
    pub attempt: u32,
    pub sku: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub id: String,
    pub order: String,
    pub sku: String,
    pub warehouse: String,
    pub quantity: i64,
    pub at: i64,
}

/// The `inventory` job's log, key = SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InvCommand {
    /// Hold up to `quantity` at each candidate for the order, replacing
    /// whatever the order held or had reserved of this SKU (an edit or a
    /// new attempt re-holds in one step, so no other order can slip in).
    Hold {
        id: String,
        order: String,
        attempt: u32,
        sku: String,
        quantity: i64,
        candidates: Vec<String>,
        /// Units per warehouse the order's channel may not see.
        buffer: i64,
        /// The order's precedence (urgency, age): it may take units that
        /// orders after it only hold.
        queue: QueueKey,
        /// Hold only at the best-ranked candidate that can supply all of
        /// `quantity`, when one can (an order of one SKU needs no more to
        /// decide); otherwise at every candidate.
        #[serde(default)]
        only_best: bool,
        at: i64,
    },
    /// Keep `take[warehouse]` of the order's holds as reservations,
    /// release the rest.
    Commit {
        id: String,
        order: String,
        attempt: u32,
        sku: String,
        take: BTreeMap<String, i64>,
        at: i64,
    },
    /// Release everything the order holds or has reserved of this SKU;
    /// with `wait`, queue the order until [`Wait::until`] holds; without,
    /// take it out of the queue.
    Release {
        id: String,
        order: String,
        attempt: u32,
        sku: String,
        wait: Option<Wait>,
        at: i64,
    },
    /// Stock on hand changed (forwarded from `inventory.events`).
    Stock(InventoryEvent),
    /// Reserved units left the building (a shipment).
    Ship {
        id: String,
        order: String,
        sku: String,
        warehouse: String,
        quantity: i64,
        at: i64,
    },
}

impl InvCommand {
    pub fn sku(&self) -> &str {
        match self {
            InvCommand::Hold { sku, .. }
            | InvCommand::Commit { sku, .. }
            | InvCommand::Release { sku, .. }
            | InvCommand::Ship { sku, .. } => sku,
            InvCommand::Stock(e) => &e.sku,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            InvCommand::Hold { id, .. }
            | InvCommand::Commit { id, .. }
            | InvCommand::Release { id, .. }
            | InvCommand::Ship { id, .. } => id,
            InvCommand::Stock(e) => &e.event_id,
        }
    }

    pub fn at(&self) -> i64 {
        match self {
            InvCommand::Hold { at, .. }
            | InvCommand::Commit { at, .. }
            | InvCommand::Release { at, .. }
            | InvCommand::Ship { at, .. } => *at,
            InvCommand::Stock(e) => e.occurred_at,
        }
    }
}

/// A backordered order waiting at a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub quantity: i64,
    pub queue: QueueKey,
    /// The warehouses it may ship from.
    pub candidates: Vec<String>,
    /// What of this SKU would let its next attempt get further.
    #[serde(default)]
    pub until: Until,
}

/// When a waiting order is woken at a SKU: once it could take `quantity`
/// (after its channel's `buffer`) ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Until {
    /// ... at one of these warehouses: the ones where this SKU was what
    /// kept the order from shipping complete.
    AnyOf {
        warehouses: Vec<String>,
        buffer: i64,
    },
    /// ... from its candidates together: a split order short of this SKU
    /// in total.
    Total { buffer: i64 },
}

impl Default for Until {
    /// The weakest condition (a `Wait` without `until`).
    fn default() -> Self {
        Until::Total { buffer: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_tagged_json() {
        let c = InvCommand::Release {
            id: "o1/3".into(),
            order: "shopify:1".into(),
            attempt: 2,
            sku: "A".into(),
            wait: Some(Wait {
                quantity: 3,
                queue: QueueKey {
                    urgency: 1,
                    created_at: 5,
                    order: "shopify:1".into(),
                },
                candidates: vec!["east".into()],
                until: Until::AnyOf {
                    warehouses: vec!["east".into()],
                    buffer: 1,
                },
            }),
            at: 9,
        };
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.starts_with(r#"{"type":"release""#), "{j}");
        assert_eq!(serde_json::from_str::<InvCommand>(&j).unwrap(), c);
        let urgent = QueueKey {
            urgency: 0,
            created_at: 99,
            order: "b".into(),
        };
        let early = QueueKey {
            urgency: 2,
            created_at: 1,
            order: "a".into(),
        };
        assert!(urgent < early, "the urgent are served first");
    }
}

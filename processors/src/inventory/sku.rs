//! The `inventory` job's logic for one SKU, as a pure function of (state,
//! command) -> (state, effects): steps 3, 5 and 6 of docs/allocation.md.
//!
//! State per SKU ([`SkuState`]): the stock ([`SkuStock`]: levels, claims,
//! ledger totals), the backorder queue, and the alert level per warehouse.
//!
//! - **Hold** replaces whatever the order had of this SKU and holds anew, in
//!   one step, then answers `Held` (every Hold gets exactly one answer).
//! - **Commit** keeps the chosen units as reservations and releases the
//!   rest; **Release** releases everything, and queues the order (`wait`)
//!   or takes it out of the queue.
//! - **Stock** events (restock, adjustment with a reason, cycle count,
//!   transfer) and **Ship** change on-hand; a loss under promised units
//!   revokes the newest claims, and each revoked order is told (`Revoked`).
//! - **Precedence.** Orders rank by urgency (overnight, expedited,
//!   standard), then age (creation time), then id. A Hold takes what is
//!   available, then units that orders ranked after it only hold (they are
//!   told `Revoked` and start their attempt over); reservations are never
//!   taken. So a pending decision of a younger or less urgent order never
//!   keeps an older or more urgent one from stock.
//! - **Waking the queue.** A backordered order waits at each of its SKUs
//!   with a snapshot of what it could take at each candidate warehouse
//!   when it asked (available plus what lower-ranked orders held). It is
//!   woken (`StockArrived`) once it could take more than that at one of
//!   them: a restock, a count up, a transfer in, a cancellation, holds of
//!   higher-ranked orders released. Waiting orders are considered in queue
//!   order (their rank), each only if its quantity fits in what it could
//!   take, so an old order an arrival cannot fill does not block younger
//!   ones it can (first fit). A woken order is not woken again until its new
//!   attempt ends. Nothing a lower-ranked order does can lower what a
//!   higher-ranked one sees, so the highest-ranked waiting order is only
//!   woken by stock it has not seen, and retries come to an end.
//! - **Alerts**: per warehouse, `on_hand - reserved - safety_stock`
//!   (transient holds left out, so a hold and its release do not flap)
//!   against the SKU's reorder point: `LOW_STOCK` when it falls to the
//!   reorder point or below, `OUT_OF_STOCK` at zero, `RECOVERED` above the
//!   reorder point again; once per crossing.

use std::collections::{BTreeMap, BTreeSet};

use conveyor_schemas::records::{
    AlertKind, InventoryAlert, InventoryEventKind, MovementKind as Kind, StockMovement,
};
use conveyor_stream::event_id;
use serde::{Deserialize, Serialize};

use super::stock::{Level, Movement, MovementKind, SkuStock, StockError};
use crate::allocate::protocol::{AllocCommand, Held, InvCommand, QueueKey, Revoked, StockArrived};

/// What the job keeps per SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuState {
    pub stock: SkuStock,
    /// Backordered orders waiting for this SKU, in service order.
    #[serde(with = "queue_as_list")]
    pub queue: BTreeMap<QueueKey, Waiting>,
    /// Warehouses currently below their reorder point: `true` = out.
    pub alerted: BTreeMap<String, bool>,
    /// Per order with a hold in flight: what was available at each of its
    /// candidates when it asked (its snapshot if it ends up waiting).
    #[serde(default)]
    pub asked: BTreeMap<String, Vec<(String, i64)>>,
}

/// An order in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The attempt that backordered (echoed in `StockArrived`).
    pub attempt: u32,
    pub quantity: i64,
    /// Its candidate warehouses with what was available there when it
    /// failed.
    pub seen: Vec<(String, i64)>,
    /// Woken; its new attempt has not ended yet.
    pub woken: bool,
}

/// Stock rules from the config.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Warehouses that exist (stock events for others are refused).
    pub warehouses: BTreeSet<String>,
    pub safety_stock: i64,
    pub reorder_point: i64,
    /// Per-SKU reorder points.
    pub reorder_points: BTreeMap<String, i64>,
}

impl Rules {
    fn reorder_point(&self, sku: &str) -> i64 {
        self.reorder_points
            .get(sku)
            .copied()
            .unwrap_or(self.reorder_point)
    }
}

/// What handling a command produces, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// To the allocate job (key = order id).
    Reply(AllocCommand),
    /// To `allocation.events` (key = sku).
    Movement(StockMovement),
    /// To `inventory.alerts` (key = sku).
    Alert(InventoryAlert),
}

/// Why a command was refused (to the DLQ; nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error("warehouse `{0}` is not configured ([[warehouses]])")]
    UnknownWarehouse(String),
    #[error("a transfer needs to_warehouse_id")]
    TransferWithoutDestination,
    #[error("an adjustment needs a reason (damaged, lost, found, ...)")]
    AdjustmentWithoutReason,
}

impl SkuState {
    /// Applies `cmd` to this SKU. On `Err` the state may be half-changed:
    /// discard it (the job does: a refused command writes nothing).
    pub fn apply(&mut self, cmd: &InvCommand, rules: &Rules) -> Result<Vec<Effect>, Refused> {
        let sku = cmd.sku().to_string();
        let before: BTreeMap<String, i64> = self
            .stock
            .levels()
            .map(|(w, l)| (w.to_string(), l.available()))
            .collect();
        let mut replies: Vec<AllocCommand> = Vec::new();
        let mut moves: Vec<Movement> = Vec::new();
        match cmd {
            InvCommand::Hold {
                order,
                attempt,
                quantity,
                candidates,
                buffer,
                queue,
                only_best,
                at,
                ..
            } => {
                moves.extend(self.stock.release(order));
                let rank = (queue.urgency, queue.created_at);
                let saw = candidates
                    .iter()
                    .map(|c| (c.clone(), self.stock.visible(c, order, rank)))
                    .collect();
                self.asked.insert(order.clone(), saw);
                let mut cands: Vec<&str> = candidates.iter().map(String::as_str).collect();
                if *only_best {
                    let holders = self.stock.holders();
                    if let Some(best) = cands.iter().find(|c| {
                        holders.visible(&self.stock, c, order, rank) - (*buffer).max(0) >= *quantity
                    }) {
                        cands = vec![*best];
                    }
                }
                let (held, m) = self
                    .stock
                    .hold_ranked(order, rank, &cands, *quantity, *buffer)?;
                moves.extend(m);
                replies.push(AllocCommand::Held(Held {
                    id: String::new(),
                    order: order.clone(),
                    attempt: *attempt,
                    sku: sku.clone(),
                    held,
                    at: *at,
                }));
            }
            InvCommand::Commit { order, take, .. } => {
                moves.extend(self.stock.commit(order, take));
                self.queue.retain(|k, _| &k.order != order);
                self.asked.remove(order);
            }
            InvCommand::Release {
                order,
                attempt,
                wait,
                ..
            } => {
                moves.extend(self.stock.release(order));
                self.queue.retain(|k, _| &k.order != order);
                let asked = self.asked.remove(order);
                if let Some(w) = wait {
                    // What it saw when it asked: stock freed since then
                    // (holds in its way) wakes it at once.
                    let rank = (w.queue.urgency, w.queue.created_at);
                    let seen = asked.unwrap_or_else(|| {
                        w.candidates
                            .iter()
                            .map(|c| (c.clone(), self.stock.visible(c, order, rank)))
                            .collect()
                    });
                    self.queue.insert(
                        w.queue.clone(),
                        Waiting {
                            attempt: *attempt,
                            quantity: w.quantity,
                            seen,
                            woken: false,
                        },
                    );
                }
            }
            InvCommand::Stock(e) => {
                let known = |w: &str| {
                    if rules.warehouses.contains(w) {
                        Ok(())
                    } else {
                        Err(Refused::UnknownWarehouse(w.to_string()))
                    }
                };
                known(&e.warehouse_id)?;
                let q = i64::from(e.quantity);
                moves.extend(self.safety(&e.warehouse_id, rules));
                match e.kind {
                    InventoryEventKind::Restock => {
                        moves.extend(self.stock.receive(&e.warehouse_id, q)?)
                    }
                    InventoryEventKind::Adjustment => {
                        if e.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                            return Err(Refused::AdjustmentWithoutReason);
                        }
                        moves.extend(self.stock.adjust(&e.warehouse_id, q))
                    }
                    InventoryEventKind::Count => {
                        moves.extend(self.stock.count(&e.warehouse_id, q)?)
                    }
                    InventoryEventKind::Transfer => {
                        let to = e
                            .to_warehouse_id
                            .as_deref()
                            .ok_or(Refused::TransferWithoutDestination)?;
                        known(to)?;
                        moves.extend(self.safety(to, rules));
                        moves.extend(self.stock.transfer(&e.warehouse_id, to, q)?)
                    }
                }
            }
            InvCommand::Ship {
                order,
                warehouse,
                quantity,
                ..
            } => moves.extend(self.stock.ship(order, warehouse, *quantity)?),
        }
        let at = cmd.at();
        for m in &moves {
            if m.kind == MovementKind::Revoked {
                if let Some(order) = &m.order {
                    replies.push(AllocCommand::Revoked(Revoked {
                        id: String::new(),
                        order: order.clone(),
                        sku: sku.clone(),
                        warehouse: m.warehouse.clone(),
                        quantity: m.quantity,
                        at,
                    }));
                }
            }
        }
        let more = self
            .stock
            .levels()
            .any(|(w, l)| l.available() > before.get(w).copied().unwrap_or(0));
        // Also after any commit or release: an order woken earlier may have
        // left the queue without using the stock it was woken for.
        let settled = matches!(cmd, InvCommand::Commit { .. } | InvCommand::Release { .. });
        if more || settled {
            replies.extend(self.wake(&sku, at));
        }
        let alerts = self.alerts(&moves, &sku, rules, at);
        Ok(number(cmd.id(), replies, moves, alerts, &sku, at))
    }

    /// Applies the configured safety stock to a warehouse's record.
    fn safety(&mut self, warehouse: &str, rules: &Rules) -> Vec<Movement> {
        if self
            .stock
            .levels()
            .any(|(w, l)| w == warehouse && l.safety_stock == rules.safety_stock)
        {
            return Vec::new();
        }
        self.stock.set_safety_stock(warehouse, rules.safety_stock)
    }

    /// Wakes the waiting orders that can see more stock than when they
    /// asked and fit in it, in queue order.
    fn wake(&mut self, sku: &str, at: i64) -> Vec<AllocCommand> {
        // Free units bound how many wake at once: holds are in flight and
        // mostly end as reservations.
        let mut left: i64 = self.stock.levels().map(|(_, l)| l.available()).sum();
        let mut out = Vec::new();
        if self.queue.is_empty() {
            return out;
        }
        let holders = self.stock.holders();
        for (k, w) in self.queue.iter_mut() {
            if left <= 0 {
                break;
            }
            if w.woken {
                continue;
            }
            let rank = (k.urgency, k.created_at);
            let now: Vec<i64> = w
                .seen
                .iter()
                .map(|(c, _)| holders.visible(&self.stock, c, &k.order, rank))
                .collect();
            let more = w.seen.iter().zip(&now).any(|((_, seen), n)| n > seen);
            if !more || w.quantity > now.iter().sum::<i64>().min(left) {
                continue;
            }
            w.woken = true;
            left -= w.quantity;
            out.push(AllocCommand::StockArrived(StockArrived {
                id: String::new(),
                order: k.order.clone(),
                attempt: w.attempt,
                sku: sku.to_string(),
                at,
            }));
        }
        out
    }

    fn alerts(
        &mut self,
        moves: &[Movement],
        sku: &str,
        rules: &Rules,
        at: i64,
    ) -> Vec<InventoryAlert> {
        let touched: BTreeSet<&str> = moves.iter().map(|m| m.warehouse.as_str()).collect();
        let point = rules.reorder_point(sku);
        let mut out = Vec::new();
        for w in touched {
            let l = self.stock.level(w);
            let free = l.on_hand - l.reserved - l.safety_stock;
            let now = if free <= 0 {
                Some(true)
            } else if free <= point {
                Some(false)
            } else {
                None
            };
            let was = self.alerted.get(w).copied();
            if now == was {
                continue;
            }
            let kind = match now {
                Some(true) => AlertKind::OutOfStock,
                Some(false) => AlertKind::LowStock,
                None => AlertKind::Recovered,
            };
            match now {
                Some(out) => self.alerted.insert(w.to_string(), out),
                None => self.alerted.remove(w),
            };
            out.push(InventoryAlert {
                event_id: String::new(),
                sku: sku.to_string(),
                warehouse_id: Some(w.to_string()),
                kind,
                available: clamp(free),
                reorder_point: clamp(point),
                occurred_at: at,
            });
        }
        out
    }
}

/// Gives every effect its event id (`<command id>/<index>`): replies first,
/// then movements, then alerts, in the order they were made.
fn number(
    id: &str,
    replies: Vec<AllocCommand>,
    moves: Vec<Movement>,
    alerts: Vec<InventoryAlert>,
    sku: &str,
    at: i64,
) -> Vec<Effect> {
    let mut out = Vec::with_capacity(replies.len() + moves.len() + alerts.len());
    for mut r in replies {
        let eid = event_id(id, out.len());
        match &mut r {
            AllocCommand::Held(h) => h.id = eid,
            AllocCommand::StockArrived(s) => s.id = eid,
            AllocCommand::Revoked(v) => v.id = eid,
            AllocCommand::Order(o) => o.id = eid,
        }
        out.push(Effect::Reply(r));
    }
    for m in moves {
        let eid = event_id(id, out.len());
        out.push(Effect::Movement(stock_movement(eid, sku, m, at)));
    }
    for mut a in alerts {
        a.event_id = event_id(id, out.len());
        out.push(Effect::Alert(a));
    }
    out
}

fn stock_movement(event_id: String, sku: &str, m: Movement, at: i64) -> StockMovement {
    let Level {
        on_hand,
        reserved,
        held,
        ..
    } = m.after;
    StockMovement {
        event_id,
        sku: sku.to_string(),
        warehouse_id: m.warehouse,
        kind: match m.kind {
            MovementKind::Held => Kind::Held,
            MovementKind::Reserved => Kind::Reserved,
            MovementKind::Released => Kind::Released,
            MovementKind::Revoked => Kind::Revoked,
            MovementKind::Shipped => Kind::Shipped,
            MovementKind::Received => Kind::Received,
            MovementKind::Adjusted => Kind::Adjusted,
            MovementKind::Counted => Kind::Counted,
            MovementKind::TransferredOut => Kind::TransferredOut,
            MovementKind::TransferredIn => Kind::TransferredIn,
        },
        quantity: clamp(m.quantity),
        order_id: m.order,
        on_hand: clamp(on_hand),
        reserved: clamp(reserved),
        available: clamp(m.after.available()),
        occurred_at: at,
        held: clamp(held),
    }
}

fn clamp(v: i64) -> i32 {
    v.clamp(i32::MIN.into(), i32::MAX.into()) as i32
}

mod queue_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Waiting;
    use crate::allocate::protocol::QueueKey;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<QueueKey, Waiting>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<QueueKey, Waiting>, D::Error> {
        let v: Vec<(QueueKey, Waiting)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

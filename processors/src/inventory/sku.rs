//! The `inventory` job's logic for one SKU, as a pure function of (state,
//! command) -> (state, effects): steps 3, 5 and 6 of docs/allocation.md.
//!
//! State per SKU ([`SkuState`]): the stock ([`SkuStock`]: levels, claims,
//! ledger totals), the backorder queue, and the alert level per warehouse.
//!
//! - **Hold** replaces whatever the order had of this SKU and holds anew, in
//!   one step, then answers `Held` (every Hold gets exactly one answer,
//!   unless a newer Hold or a Release of the order supersedes it). If no
//!   candidate gives the order all it asks for, but one would once holds of
//!   higher-ranked orders there settle, the answer is **deferred**: the hold
//!   stays in `deferred`, takes freed units before any lower-ranked order
//!   can, and is answered once it holds everything at one warehouse or no
//!   warehouse could give that any more. A deferred hold waits only for
//!   higher-ranked holds, so the highest-ranked one never waits: no
//!   deadlock.
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
//! - **Waking the queue.** A backordered order waits at this SKU with a
//!   condition ([`Until`], chosen by the order: see
//!   `allocate::order::waits`): one of some warehouses could give it the
//!   whole quantity, or its candidates together could. What it could take
//!   at a warehouse is what is available plus what lower-ranked orders
//!   hold there. Waiting orders are considered in queue order (their
//!   rank), each only if its quantity fits in the free units, so an old
//!   order an arrival cannot fill does not block younger ones it can (first
//!   fit). A woken order is not woken again until its new attempt ends.
//!   Nothing a lower-ranked order does can lower what a higher-ranked one
//!   could take, and a woken order could take all it waited for, so every
//!   wake-up is progress and retries come to an end.
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
use crate::allocate::protocol::{
    AllocCommand, Held, InvCommand, QueueKey, Revoked, StockArrived, Until,
};

/// What the job keeps per SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuState {
    pub stock: SkuStock,
    /// Backordered orders waiting for this SKU, in service order.
    #[serde(with = "queue_as_list")]
    pub queue: BTreeMap<QueueKey, Waiting>,
    /// Warehouses currently below their reorder point: `true` = out.
    pub alerted: BTreeMap<String, bool>,
    /// Holds not answered yet, in rank order: each holds what it can and
    /// waits for holds of orders ranked before it to settle (see
    /// [`SkuState::ready`]).
    #[serde(default, with = "queue_as_list")]
    pub deferred: BTreeMap<QueueKey, Pending>,
    /// Movements emitted so far for this SKU: the last one's `seq`. The
    /// sinks keep, per sku x warehouse, the levels of the highest `seq`.
    #[serde(default)]
    pub movements: i64,
}

/// A Hold whose answer waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub attempt: u32,
    pub quantity: i64,
    pub candidates: Vec<String>,
    pub buffer: i64,
    pub only_best: bool,
    pub at: i64,
}

/// An order in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The attempt that backordered (echoed in `StockArrived`).
    pub attempt: u32,
    pub quantity: i64,
    /// The warehouses it may ship from.
    pub candidates: Vec<String>,
    /// When it is woken.
    pub until: Until,
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
                if *quantity <= 0 {
                    return Err(StockError::NotPositive(*quantity).into());
                }
                // A Hold replaces whatever the order had here, answered
                // or not.
                moves.extend(self.stock.release(order));
                self.deferred.retain(|k, _| &k.order != order);
                let key = QueueKey {
                    order: order.clone(),
                    ..queue.clone()
                };
                let p = Pending {
                    attempt: *attempt,
                    quantity: *quantity,
                    candidates: candidates.clone(),
                    buffer: (*buffer).max(0),
                    only_best: *only_best,
                    at: *at,
                };
                moves.extend(self.place(&key, &p)?);
                if self.ready(&key, &p) {
                    replies.push(self.answer(&key, &p, &sku));
                } else {
                    self.deferred.insert(key, p);
                }
            }
            InvCommand::Commit { order, take, .. } => {
                moves.extend(self.stock.commit(order, take));
                self.queue.retain(|k, _| &k.order != order);
                self.deferred.retain(|k, _| &k.order != order);
            }
            InvCommand::Release {
                order,
                attempt,
                wait,
                ..
            } => {
                moves.extend(self.stock.release(order));
                self.queue.retain(|k, _| &k.order != order);
                self.deferred.retain(|k, _| &k.order != order);
                if let Some(w) = wait {
                    // If the stock it waits for is already here (holds in
                    // its way were released meanwhile), the wake-up pass
                    // below wakes it at once.
                    self.queue.insert(
                        w.queue.clone(),
                        Waiting {
                            attempt: *attempt,
                            quantity: w.quantity,
                            candidates: w.candidates.clone(),
                            until: w.until.clone(),
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
        let more = self
            .stock
            .levels()
            .any(|(w, l)| l.available() > before.get(w).copied().unwrap_or(0));
        // Also after any commit or release: an order woken earlier may have
        // left the queue without using the stock it was woken for.
        let settled = matches!(cmd, InvCommand::Commit { .. } | InvCommand::Release { .. });
        // Orders whose hold here is not answered yet: the answer will say
        // what they hold then, so a claim taken from them needs no word.
        let mut unanswered: BTreeSet<String> =
            self.deferred.keys().map(|k| k.order.clone()).collect();
        if more || settled || matches!(cmd, InvCommand::Stock(_) | InvCommand::Ship { .. }) {
            moves.extend(self.serve_deferred(&sku, &mut replies));
        }
        unanswered.extend(self.deferred.keys().map(|k| k.order.clone()));
        // Every claim taken from an order that was told what it held (by a
        // hold of a higher-ranked order or a loss) is told to it.
        for m in &moves {
            if m.kind == MovementKind::Revoked {
                if let Some(order) = m.order.as_ref().filter(|o| !unanswered.contains(*o)) {
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
        if more || settled {
            replies.extend(self.wake(&sku, at));
        }
        let alerts = self.alerts(&moves, &sku, rules, at);
        let first_seq = self.movements + 1;
        self.movements += moves.len() as i64;
        Ok(number(
            cmd.id(),
            replies,
            moves,
            alerts,
            &sku,
            at,
            first_seq,
        ))
    }

    /// Holds for a pending Hold what it can take (its own claims here
    /// already released): everywhere, or for an order of one SKU only at
    /// the best-ranked candidate that has all of it, when one does.
    fn place(&mut self, key: &QueueKey, p: &Pending) -> Result<Vec<Movement>, Refused> {
        let rank = (key.urgency, key.created_at);
        let mut cands: Vec<&str> = p.candidates.iter().map(String::as_str).collect();
        if p.only_best {
            let holders = self.stock.holders();
            if let Some(best) = cands.iter().find(|c| {
                holders.visible(&self.stock, c, &key.order, rank) - p.buffer >= p.quantity
            }) {
                cands = vec![*best];
            }
        }
        let (_, moves) = self
            .stock
            .hold_ranked(&key.order, rank, &cands, p.quantity, p.buffer)?;
        Ok(moves)
    }

    /// Can the Hold be answered now (after [`SkuState::place`] or a top-up
    /// took what it could)? Yes if it holds all it asked for at one
    /// candidate, or if no candidate could give that even once every hold
    /// there is settled; otherwise holds of orders ranked before it stand
    /// between it and a warehouse that has enough, and it waits for them
    /// (they end within a round trip), taking freed units first.
    fn ready(&self, key: &QueueKey, p: &Pending) -> bool {
        let full = p
            .candidates
            .iter()
            .any(|c| self.stock.claim(&key.order, c).0 >= p.quantity);
        full || !p
            .candidates
            .iter()
            .any(|c| self.stock.level(c).unreserved() - p.buffer >= p.quantity)
    }

    /// The `Held` answer for what the order holds here now.
    fn answer(&self, key: &QueueKey, p: &Pending, sku: &str) -> AllocCommand {
        let held = p
            .candidates
            .iter()
            .map(|c| (c.clone(), self.stock.claim(&key.order, c).0))
            .collect();
        let unreserved = p
            .candidates
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    (self.stock.level(c).unreserved() - p.buffer).max(0),
                )
            })
            .collect();
        AllocCommand::Held(Held {
            id: String::new(),
            order: key.order.clone(),
            attempt: p.attempt,
            sku: sku.to_string(),
            held,
            unreserved,
            at: p.at,
        })
    }

    /// In rank order, tops up each deferred Hold with what was freed and
    /// answers those that are ready now.
    fn serve_deferred(&mut self, sku: &str, replies: &mut Vec<AllocCommand>) -> Vec<Movement> {
        let mut moves = Vec::new();
        if self.deferred.is_empty() {
            return moves;
        }
        let keys: Vec<QueueKey> = self.deferred.keys().cloned().collect();
        // Holds only go to higher-ranked orders during the pass, so this
        // stays an upper bound of who may give way to whom.
        let lowest = self.stock.lowest_holders();
        for key in keys {
            let Some(p) = self.deferred.get(&key) else {
                continue;
            };
            let (q, b) = (p.quantity, p.buffer);
            let rank = (key.urgency, key.created_at);
            // Can it take more anywhere: free units, or units an order
            // ranked after it holds?
            let gain = p.candidates.iter().any(|c| {
                self.stock.claim(&key.order, c).0 < q
                    && (self.stock.level(c).available() > b
                        || lowest
                            .get(c)
                            .is_some_and(|(r, o)| (*r, o.as_str()) > (rank, key.order.as_str())))
            });
            if gain {
                let cands: Vec<&str> = p.candidates.iter().map(String::as_str).collect();
                // Cannot fail: the quantity was checked when the Hold came.
                if let Ok((_, m)) = self.stock.hold_ranked(&key.order, rank, &cands, q, b) {
                    moves.extend(m);
                }
            }
            let ready = self.deferred.get(&key).is_some_and(|p| self.ready(&key, p));
            if ready {
                if let Some(p) = self.deferred.remove(&key) {
                    replies.push(self.answer(&key, &p, sku));
                }
            }
        }
        moves
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

    /// Wakes the waiting orders whose condition ([`Until`]) holds and that
    /// fit in the free units, in queue order.
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
            let takes =
                |c: &str, buffer: i64| holders.visible(&self.stock, c, &k.order, rank) - buffer;
            let ready = match &w.until {
                Until::AnyOf { warehouses, buffer } => warehouses
                    .iter()
                    .any(|c| takes(c, (*buffer).max(0)) >= w.quantity),
                Until::Total { buffer } => {
                    w.candidates
                        .iter()
                        .map(|c| takes(c, (*buffer).max(0)).max(0))
                        .sum::<i64>()
                        >= w.quantity
                }
            };
            if !ready || w.quantity > left {
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
    first_seq: i64,
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
    for (seq, m) in (first_seq..).zip(moves) {
        let eid = event_id(id, out.len());
        out.push(Effect::Movement(stock_movement(eid, sku, m, at, seq)));
    }
    for mut a in alerts {
        a.event_id = event_id(id, out.len());
        out.push(Effect::Alert(a));
    }
    out
}

fn stock_movement(event_id: String, sku: &str, m: Movement, at: i64, seq: i64) -> StockMovement {
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
        seq,
    }
}

fn clamp(v: i64) -> i32 {
    v.clamp(i32::MIN.into(), i32::MAX.into()) as i32
}

mod queue_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use serde::Serialize;

    use crate::allocate::protocol::QueueKey;

    pub fn serialize<S: Serializer, V: Serialize>(
        m: &BTreeMap<QueueKey, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<QueueKey, V>, D::Error> {
        let v: Vec<(QueueKey, V)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

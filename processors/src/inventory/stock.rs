//! The stock of one SKU across warehouses: the state the `inventory` job
//! keeps per key (see docs/allocation.md), as a pure state machine.
//!
//! Per warehouse it tracks `on_hand`, `reserved` (committed to orders) and
//! `held` (promised to an order whose decision is pending), and per order
//! and warehouse the claim behind those numbers. Every operation returns
//! the [`Movement`]s it made, the ledger the sinks record.
//!
//! Invariant (G3), after every operation, for every warehouse:
//! `reserved + held <= max(on_hand - safety_stock, 0)`.
//! Orders can only take what is available, so only a physical loss (a
//! negative adjustment, a cycle count below what was promised) can break
//! it; then the newest claims are revoked, holds before reservations,
//! until it holds again, and each revocation is a movement naming the
//! order, so the order can be allocated again.
//!
//! Ledger: `on_hand` always equals what was received, adjusted, counted
//! and transferred in, minus what was transferred out and shipped
//! ([`Totals`]); the property tests check both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Units of one SKU in one warehouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
    pub held: i64,
    pub safety_stock: i64,
}

impl Level {
    /// What a new hold may take, before a channel's buffer.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.safety_stock - self.reserved - self.held).max(0)
    }

    /// What orders could take if no hold stood in the way.
    pub fn unreserved(&self) -> i64 {
        (self.on_hand - self.safety_stock - self.reserved).max(0)
    }

    fn sellable(&self) -> i64 {
        (self.on_hand - self.safety_stock).max(0)
    }
}

/// One order's claim on one warehouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    held: i64,
    reserved: i64,
    /// When the claim was first made (revocations take the newest first).
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    Held,
    Reserved,
    Released,
    /// A claim taken back because stock was lost under it.
    Revoked,
    Shipped,
    Received,
    Adjusted,
    Counted,
    TransferredOut,
    TransferredIn,
}

/// One change to one warehouse's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub warehouse: String,
    pub kind: MovementKind,
    /// Units moved (for a count, the change it made; may be negative for
    /// adjustments and counts).
    pub quantity: i64,
    pub order: Option<String>,
    /// The warehouse's numbers after the movement.
    pub after: Level,
}

/// What a hold got, per candidate warehouse in the order asked.
pub type HeldAt = Vec<(String, i64)>;

/// Sums of everything that changed `on_hand`, for the ledger check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub received: i64,
    pub adjusted: i64,
    pub counted: i64,
    pub transferred_in: i64,
    pub transferred_out: i64,
    pub shipped: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("quantity must be positive, got {0}")]
    NotPositive(i64),
    #[error("a cycle count cannot be negative, got {0}")]
    NegativeCount(i64),
    #[error("warehouse `{0}` has no stock record for this SKU")]
    UnknownWarehouse(String),
    #[error("order {order} has {reserved} reserved at `{warehouse}`, cannot ship {asked}")]
    NotReserved {
        order: String,
        warehouse: String,
        reserved: i64,
        asked: i64,
    },
    #[error(
        "only {free} units at `{warehouse}` are neither reserved nor held; cannot transfer {asked}"
    )]
    TransferExceedsFree {
        warehouse: String,
        free: i64,
        asked: i64,
    },
    #[error("a transfer needs two different warehouses")]
    SameWarehouse,
}

/// The holds in flight at a SKU: (warehouse, (rank, order), units).
pub struct Holders<'a>(Vec<(&'a str, (Rank, &'a str), i64)>);

impl Holders<'_> {
    /// See [`SkuStock::visible`].
    pub fn visible(&self, stock: &SkuStock, warehouse: &str, order: &str, rank: Rank) -> i64 {
        let Some(level) = stock.levels.get(warehouse) else {
            return 0;
        };
        let lower: i64 = self
            .0
            .iter()
            .filter(|(w, key, _)| *w == warehouse && *key > (rank, order))
            .map(|(_, _, h)| h)
            .sum();
        level.available() + lower
    }
}

/// An order's precedence: (urgency, creation time), lower first; ties by
/// order id. An order may take units another order of lower precedence
/// only holds (not reserved), see [`SkuStock::hold_ranked`].
pub type Rank = (u8, i64);

/// The stock of one SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuStock {
    levels: BTreeMap<String, Level>,
    /// Precedence of the orders holding here (absent: lowest).
    #[serde(default)]
    ranks: BTreeMap<String, Rank>,
    /// (order, warehouse) -> claim; a list in JSON (map keys are strings).
    #[serde(with = "claims_as_list")]
    claims: BTreeMap<(String, String), Claim>,
    next_seq: u64,
    totals: Totals,
}

impl SkuStock {
    pub fn level(&self, warehouse: &str) -> Level {
        self.levels.get(warehouse).copied().unwrap_or_default()
    }

    pub fn levels(&self) -> impl Iterator<Item = (&str, &Level)> {
        self.levels.iter().map(|(w, l)| (w.as_str(), l))
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Every claim: (order, warehouse, held, reserved).
    pub fn claims(&self) -> impl Iterator<Item = (&str, &str, i64, i64)> {
        self.claims
            .iter()
            .map(|((o, w), c)| (o.as_str(), w.as_str(), c.held, c.reserved))
    }

    /// What `order` holds and has reserved at `warehouse`.
    pub fn claim(&self, order: &str, warehouse: &str) -> (i64, i64) {
        self.claims
            .get(&(order.to_string(), warehouse.to_string()))
            .map_or((0, 0), |c| (c.held, c.reserved))
    }

    /// Sets a warehouse's safety stock (creating its record), then
    /// restores the invariant.
    pub fn set_safety_stock(&mut self, warehouse: &str, units: i64) -> Vec<Movement> {
        self.levels
            .entry(warehouse.to_string())
            .or_default()
            .safety_stock = units.max(0);
        let mut out = Vec::new();
        self.enforce(warehouse, &mut out);
        out
    }

    /// Holds up to `quantity` for `order` at each of `candidates` (each
    /// warehouse independently, at most `quantity` each), keeping `buffer`
    /// units back for the order's channel. Returns what was held where.
    /// Takes nothing from other orders' holds.
    pub fn hold(
        &mut self,
        order: &str,
        candidates: &[&str],
        quantity: i64,
        buffer: i64,
    ) -> Result<(HeldAt, Vec<Movement>), StockError> {
        self.hold_ranked(order, (u8::MAX, i64::MAX), candidates, quantity, buffer)
    }

    /// What `order` of precedence `rank` can take at `warehouse`: what is
    /// available plus what orders of lower precedence only hold there.
    pub fn visible(&self, warehouse: &str, order: &str, rank: Rank) -> i64 {
        self.holders().visible(self, warehouse, order, rank)
    }

    /// The orders holding units right now (one pass over the claims; use
    /// it to answer many [`SkuStock::visible`] questions).
    pub fn holders(&self) -> Holders<'_> {
        Holders(
            self.claims
                .iter()
                .filter(|(_, c)| c.held > 0)
                .map(|((o, w), c)| {
                    let r = self.ranks.get(o).copied().unwrap_or((u8::MAX, i64::MAX));
                    (w.as_str(), (r, o.as_str()), c.held)
                })
                .collect(),
        )
    }

    /// Per warehouse, the lowest-ranked order holding units there: an order
    /// ranked before it may take held units there
    /// ([`SkuStock::hold_ranked`]).
    pub fn lowest_holders(&self) -> BTreeMap<String, (Rank, String)> {
        let mut out: BTreeMap<String, (Rank, String)> = BTreeMap::new();
        for ((o, w), c) in &self.claims {
            if c.held <= 0 {
                continue;
            }
            let r = self.ranks.get(o).copied().unwrap_or((u8::MAX, i64::MAX));
            match out.get_mut(w) {
                Some(low) if *low >= (r, o.clone()) => {}
                Some(low) => *low = (r, o.clone()),
                None => {
                    out.insert(w.clone(), (r, o.clone()));
                }
            }
        }
        out
    }

    /// Does the claim of `other` give way to `order` of precedence `rank`?
    fn yields_to(&self, other: &str, order: &str, rank: Rank) -> bool {
        let theirs = self
            .ranks
            .get(other)
            .copied()
            .unwrap_or((u8::MAX, i64::MAX));
        (theirs, other) > (rank, order)
    }

    /// [`SkuStock::hold`] for an order of precedence `rank`: where what is
    /// available does not cover `quantity`, it takes units held by orders of
    /// lower precedence, the lowest first; each loses them as a `Revoked`
    /// movement naming it (its attempt starts over). Reservations are never
    /// taken. So the most urgent, then oldest order is never kept from stock
    /// by a younger order's pending decision. What the order already holds
    /// at a warehouse counts towards `quantity` there (a top-up).
    pub fn hold_ranked(
        &mut self,
        order: &str,
        rank: Rank,
        candidates: &[&str],
        quantity: i64,
        buffer: i64,
    ) -> Result<(HeldAt, Vec<Movement>), StockError> {
        if quantity <= 0 {
            return Err(StockError::NotPositive(quantity));
        }
        self.ranks.insert(order.to_string(), rank);
        let mut held = Vec::new();
        let mut out = Vec::new();
        for &w in candidates {
            let Some(level) = self.levels.get(w).copied() else {
                held.push((w.to_string(), 0));
                continue;
            };
            let own = self
                .claims
                .get(&(order.to_string(), w.to_string()))
                .map_or(0, |c| c.held);
            let visible = self.visible(w, order, rank);
            let take = (visible + own - buffer.max(0)).clamp(0, quantity) - own;
            if take <= 0 {
                held.push((w.to_string(), own));
                continue;
            }
            // Take what is free first, then from the lowest-ranked holds.
            let mut need = take - level.available().min(take);
            if need > 0 {
                let mut victims: Vec<((Rank, String), i64)> = self
                    .claims
                    .iter()
                    .filter(|((o, x), c)| x == w && c.held > 0 && self.yields_to(o, order, rank))
                    .map(|((o, _), c)| {
                        let r = self.ranks.get(o).copied().unwrap_or((u8::MAX, i64::MAX));
                        ((r, o.clone()), c.held)
                    })
                    .collect();
                victims.sort_by(|a, b| b.0.cmp(&a.0));
                for ((_, victim), has) in victims {
                    if need == 0 {
                        break;
                    }
                    let n = has.min(need);
                    need -= n;
                    if let Some(c) = self.claims.get_mut(&(victim.clone(), w.to_string())) {
                        c.held -= n;
                    }
                    let l = self.levels.entry(w.to_string()).or_default();
                    l.held -= n;
                    out.push(movement(w, MovementKind::Revoked, n, Some(&victim), *l));
                }
            }
            let Some(level) = self.levels.get_mut(w) else {
                continue;
            };
            if take > 0 {
                level.held += take;
                let after = *level;
                let seq = self.next_seq;
                let c = self
                    .claims
                    .entry((order.to_string(), w.to_string()))
                    .or_insert(Claim {
                        seq,
                        ..Claim::default()
                    });
                c.held += take;
                self.next_seq += 1;
                out.push(movement(w, MovementKind::Held, take, Some(order), after));
            }
            held.push((w.to_string(), own + take));
        }
        self.drop_empty_claims();
        Ok((held, out))
    }

    /// Turns the order's holds into reservations: `take[w]` units at each
    /// warehouse (at most what is held there), and releases the rest of
    /// every hold of the order.
    pub fn commit(&mut self, order: &str, take: &BTreeMap<String, i64>) -> Vec<Movement> {
        let mut out = Vec::new();
        for ((o, w), c) in self.claims.iter_mut() {
            if o != order || c.held == 0 {
                continue;
            }
            let level = self.levels.entry(w.clone()).or_default();
            let keep = take.get(w).copied().unwrap_or(0).clamp(0, c.held);
            let rest = c.held - keep;
            level.held -= c.held;
            c.held = 0;
            if keep > 0 {
                level.reserved += keep;
                c.reserved += keep;
                out.push(movement(
                    w,
                    MovementKind::Reserved,
                    keep,
                    Some(order),
                    *level,
                ));
            }
            if rest > 0 {
                out.push(movement(
                    w,
                    MovementKind::Released,
                    rest,
                    Some(order),
                    *level,
                ));
            }
        }
        self.drop_empty_claims();
        out
    }

    /// Releases everything `order` holds or has reserved (a cancellation,
    /// a backorder, a re-allocation).
    pub fn release(&mut self, order: &str) -> Vec<Movement> {
        let mut out = Vec::new();
        for ((o, w), c) in self.claims.iter_mut() {
            if o != order {
                continue;
            }
            let level = self.levels.entry(w.clone()).or_default();
            let units = c.held + c.reserved;
            level.held -= c.held;
            level.reserved -= c.reserved;
            *c = Claim::default();
            if units > 0 {
                out.push(movement(
                    w,
                    MovementKind::Released,
                    units,
                    Some(order),
                    *level,
                ));
            }
        }
        self.drop_empty_claims();
        out
    }

    /// Ships `quantity` reserved units of `order` from `warehouse`: they
    /// leave `on_hand` and `reserved`.
    pub fn ship(
        &mut self,
        order: &str,
        warehouse: &str,
        quantity: i64,
    ) -> Result<Vec<Movement>, StockError> {
        if quantity <= 0 {
            return Err(StockError::NotPositive(quantity));
        }
        let key = (order.to_string(), warehouse.to_string());
        let reserved = self.claims.get(&key).map_or(0, |c| c.reserved);
        if reserved < quantity {
            return Err(StockError::NotReserved {
                order: order.into(),
                warehouse: warehouse.into(),
                reserved,
                asked: quantity,
            });
        }
        if let Some(c) = self.claims.get_mut(&key) {
            c.reserved -= quantity;
        }
        let level = self.levels.entry(warehouse.to_string()).or_default();
        level.reserved -= quantity;
        level.on_hand -= quantity;
        self.totals.shipped += quantity;
        let after = *level;
        self.drop_empty_claims();
        Ok(vec![movement(
            warehouse,
            MovementKind::Shipped,
            quantity,
            Some(order),
            after,
        )])
    }

    /// Units received (a restock, a receipt, a return to stock).
    pub fn receive(&mut self, warehouse: &str, quantity: i64) -> Result<Vec<Movement>, StockError> {
        if quantity <= 0 {
            return Err(StockError::NotPositive(quantity));
        }
        let level = self.levels.entry(warehouse.to_string()).or_default();
        level.on_hand += quantity;
        self.totals.received += quantity;
        Ok(vec![movement(
            warehouse,
            MovementKind::Received,
            quantity,
            None,
            *level,
        )])
    }

    /// A correction by `delta` units (damage, loss, found stock). A loss
    /// under promised units revokes the newest claims.
    pub fn adjust(&mut self, warehouse: &str, delta: i64) -> Vec<Movement> {
        let level = self.levels.entry(warehouse.to_string()).or_default();
        // Stock cannot go below zero: a larger loss is recorded as what
        // was there.
        let delta = delta.max(-level.on_hand);
        level.on_hand += delta;
        self.totals.adjusted += delta;
        let mut out = vec![movement(
            warehouse,
            MovementKind::Adjusted,
            delta,
            None,
            *level,
        )];
        self.enforce(warehouse, &mut out);
        out
    }

    /// A cycle count: `on_hand` is set to what was counted.
    pub fn count(&mut self, warehouse: &str, counted: i64) -> Result<Vec<Movement>, StockError> {
        if counted < 0 {
            return Err(StockError::NegativeCount(counted));
        }
        let level = self.levels.entry(warehouse.to_string()).or_default();
        let delta = counted - level.on_hand;
        level.on_hand = counted;
        self.totals.counted += delta;
        let mut out = vec![movement(
            warehouse,
            MovementKind::Counted,
            delta,
            None,
            *level,
        )];
        self.enforce(warehouse, &mut out);
        Ok(out)
    }

    /// Moves free units (neither reserved nor held) between two
    /// warehouses, both sides in one step.
    pub fn transfer(
        &mut self,
        from: &str,
        to: &str,
        quantity: i64,
    ) -> Result<Vec<Movement>, StockError> {
        if quantity <= 0 {
            return Err(StockError::NotPositive(quantity));
        }
        if from == to {
            return Err(StockError::SameWarehouse);
        }
        let source = self
            .levels
            .get(from)
            .copied()
            .ok_or_else(|| StockError::UnknownWarehouse(from.into()))?;
        let free = (source.on_hand - source.reserved - source.held).max(0);
        if quantity > free {
            return Err(StockError::TransferExceedsFree {
                warehouse: from.into(),
                free,
                asked: quantity,
            });
        }
        let mut out = Vec::with_capacity(2);
        let s = self.levels.entry(from.to_string()).or_default();
        s.on_hand -= quantity;
        out.push(movement(
            from,
            MovementKind::TransferredOut,
            quantity,
            None,
            *s,
        ));
        let d = self.levels.entry(to.to_string()).or_default();
        d.on_hand += quantity;
        out.push(movement(
            to,
            MovementKind::TransferredIn,
            quantity,
            None,
            *d,
        ));
        self.totals.transferred_out += quantity;
        self.totals.transferred_in += quantity;
        // Moving free units can still cut into the source's safety stock.
        self.enforce(from, &mut out);
        Ok(out)
    }

    /// Restores `reserved + held <= sellable` at `warehouse` by revoking
    /// the newest claims there, holds first.
    fn enforce(&mut self, warehouse: &str, out: &mut Vec<Movement>) {
        let Some(level) = self.levels.get(warehouse).copied() else {
            return;
        };
        let mut excess = level.reserved + level.held - level.sellable();
        if excess <= 0 {
            return;
        }
        let mut here: Vec<(u64, String)> = self
            .claims
            .iter()
            .filter(|((_, w), _)| w == warehouse)
            .map(|((o, _), c)| (c.seq, o.clone()))
            .collect();
        here.sort_unstable_by(|a, b| b.cmp(a));
        for holds_pass in [true, false] {
            for (_, order) in &here {
                if excess <= 0 {
                    break;
                }
                let key = (order.clone(), warehouse.to_string());
                let Some(c) = self.claims.get_mut(&key) else {
                    continue;
                };
                let level = self.levels.entry(warehouse.to_string()).or_default();
                let slot = if holds_pass {
                    &mut c.held
                } else {
                    &mut c.reserved
                };
                let take = (*slot).min(excess);
                if take == 0 {
                    continue;
                }
                *slot -= take;
                if holds_pass {
                    level.held -= take;
                } else {
                    level.reserved -= take;
                }
                excess -= take;
                out.push(movement(
                    warehouse,
                    MovementKind::Revoked,
                    take,
                    Some(order),
                    *level,
                ));
            }
        }
        self.drop_empty_claims();
    }

    fn drop_empty_claims(&mut self) {
        self.claims.retain(|_, c| c.held > 0 || c.reserved > 0);
        let holding: std::collections::BTreeSet<&str> =
            self.claims.keys().map(|(o, _)| o.as_str()).collect();
        self.ranks.retain(|o, _| holding.contains(o.as_str()));
    }
}

mod claims_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Claim;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<(String, String), Claim>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(|((o, w), c)| (o, w, c)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(String, String), Claim>, D::Error> {
        let v: Vec<(String, String, Claim)> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|(o, w, c)| ((o, w), c)).collect())
    }
}

fn movement(
    warehouse: &str,
    kind: MovementKind,
    quantity: i64,
    order: Option<&str>,
    after: Level,
) -> Movement {
    Movement {
        warehouse: warehouse.to_string(),
        kind,
        quantity,
        order: order.map(str::to_string),
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WAREHOUSES: [&str; 3] = ["east", "west", "store"];

    fn check(s: &SkuStock) -> Result<(), String> {
        let mut on_hand = 0;
        for (w, l) in s.levels() {
            if l.reserved < 0 || l.held < 0 || l.on_hand < 0 {
                return Err(format!("{w}: negative numbers {l:?}"));
            }
            if l.reserved + l.held > l.sellable() {
                return Err(format!("{w}: oversold {l:?}"));
            }
            let (held, reserved) = s
                .claims
                .iter()
                .filter(|((_, cw), _)| cw == w)
                .fold((0, 0), |(h, r), (_, c)| (h + c.held, r + c.reserved));
            if (held, reserved) != (l.held, l.reserved) {
                return Err(format!("{w}: claims {held}/{reserved} vs level {l:?}"));
            }
            on_hand += l.on_hand;
        }
        let t = s.totals;
        let ledger =
            t.received + t.adjusted + t.counted + t.transferred_in - t.transferred_out - t.shipped;
        if ledger != on_hand {
            return Err(format!("ledger {ledger} != on hand {on_hand} ({t:?})"));
        }
        Ok(())
    }

    #[test]
    fn holds_commit_and_release_exactly() {
        let mut s = SkuStock::default();
        s.receive("east", 10).unwrap();
        s.receive("west", 3).unwrap();
        s.set_safety_stock("east", 2);
        let (held, _) = s.hold("o1", &["east", "west", "nowhere"], 5, 0).unwrap();
        assert_eq!(
            held,
            [
                ("east".into(), 5),
                ("west".into(), 3),
                ("nowhere".into(), 0)
            ]
        );
        assert_eq!(s.level("east").available(), 3);
        // o2 keeps a channel buffer of 1: sees 2 at east.
        let (held, _) = s.hold("o2", &["east"], 5, 1).unwrap();
        assert_eq!(held, [("east".into(), 2)]);
        let m = s.commit("o1", &BTreeMap::from([("east".into(), 5)]));
        assert_eq!(s.claim("o1", "east"), (0, 5));
        assert_eq!(s.claim("o1", "west"), (0, 0));
        assert!(m
            .iter()
            .any(|m| m.kind == MovementKind::Released && m.quantity == 3));
        s.release("o2");
        assert_eq!(s.level("east").held, 0);
        s.ship("o1", "east", 5).unwrap();
        assert_eq!(s.level("east").on_hand, 5);
        assert!(s.ship("o1", "east", 1).is_err(), "nothing left reserved");
        check(&s).unwrap();
    }

    #[test]
    fn a_loss_under_reservations_revokes_the_newest() {
        let mut s = SkuStock::default();
        s.receive("east", 6).unwrap();
        s.hold("old", &["east"], 3, 0).unwrap();
        s.commit("old", &BTreeMap::from([("east".into(), 3)]));
        s.hold("new", &["east"], 3, 0).unwrap();
        s.commit("new", &BTreeMap::from([("east".into(), 3)]));
        let m = s.count("east", 4).unwrap();
        assert_eq!(s.claim("old", "east"), (0, 3));
        assert_eq!(s.claim("new", "east"), (0, 1));
        assert!(m
            .iter()
            .any(|m| m.kind == MovementKind::Revoked && m.order.as_deref() == Some("new")));
        check(&s).unwrap();
        let e = s.transfer("east", "west", 1).unwrap_err();
        assert!(e.to_string().contains("neither reserved nor held"), "{e}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold(u8, Vec<u8>, i64, i64),
        Commit(u8, Vec<(u8, i64)>),
        Release(u8),
        Ship(u8, u8, i64),
        Receive(u8, i64),
        Adjust(u8, i64),
        Count(u8, i64),
        Transfer(u8, u8, i64),
        Safety(u8, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let w = 0u8..3;
        let o = 0u8..5;
        prop_oneof![
            (
                o.clone(),
                proptest::collection::vec(w.clone(), 1..4),
                1i64..8,
                0i64..3
            )
                .prop_map(|(o, c, q, b)| Op::Hold(o, c, q, b)),
            (
                o.clone(),
                proptest::collection::vec((w.clone(), 0i64..8), 0..3)
            )
                .prop_map(|(o, t)| Op::Commit(o, t)),
            o.clone().prop_map(Op::Release),
            (o, w.clone(), 1i64..5).prop_map(|(o, w, q)| Op::Ship(o, w, q)),
            (w.clone(), 1i64..20).prop_map(|(w, q)| Op::Receive(w, q)),
            (w.clone(), -10i64..10).prop_map(|(w, d)| Op::Adjust(w, d)),
            (w.clone(), 0i64..20).prop_map(|(w, c)| Op::Count(w, c)),
            (w.clone(), w.clone(), 1i64..10).prop_map(|(a, b, q)| Op::Transfer(a, b, q)),
            (w, 0i64..4).prop_map(|(w, s)| Op::Safety(w, s)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the interleaving: never oversold, claims add up to the
        /// levels, the ledger balances, and a failed operation changes
        /// nothing.
        #[test]
        fn never_oversold_and_the_ledger_balances(ops in proptest::collection::vec(op(), 1..80)) {
            let mut s = SkuStock::default();
            let order = |o: u8| format!("o{o}");
            let wh = |w: u8| WAREHOUSES[w as usize];
            for op in ops {
                let before = s.clone();
                let r: Result<Vec<Movement>, StockError> = match &op {
                    Op::Hold(o, c, q, b) => {
                        let c: Vec<&str> = c.iter().map(|w| wh(*w)).collect();
                        s.hold(&order(*o), &c, *q, *b).map(|(_, m)| m)
                    }
                    Op::Commit(o, t) => Ok(s.commit(
                        &order(*o),
                        &t.iter().map(|(w, q)| (wh(*w).to_string(), *q)).collect(),
                    )),
                    Op::Release(o) => Ok(s.release(&order(*o))),
                    Op::Ship(o, w, q) => s.ship(&order(*o), wh(*w), *q),
                    Op::Receive(w, q) => s.receive(wh(*w), *q),
                    Op::Adjust(w, d) => Ok(s.adjust(wh(*w), *d)),
                    Op::Count(w, c) => s.count(wh(*w), *c),
                    Op::Transfer(a, b, q) => s.transfer(wh(*a), wh(*b), *q),
                    Op::Safety(w, u) => Ok(s.set_safety_stock(wh(*w), *u)),
                };
                if r.is_err() {
                    prop_assert_eq!(&s, &before, "{:?} failed but changed the stock", op);
                }
                if let Err(e) = check(&s) {
                    return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
                }
                // Every movement moved something; only adjustments and
                // counts may be negative.
                for m in r.unwrap_or_default() {
                    match m.kind {
                        MovementKind::Adjusted | MovementKind::Counted => {}
                        _ => prop_assert!(m.quantity > 0, "{:?} after {:?}", m, op),
                    }
                }
            }
        }
    }
}

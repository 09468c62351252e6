//! What a simulated channel was told about shipments: the fulfillments,
//! confirmations and packages sync-back created, per order, so the
//! simulators can answer "what does this order hold" and the tests can
//! count what was created (a tracking number recorded twice is a
//! duplicate sync-back must never cause).
//!
//! Fault injection: with [`Ledger::lose_every`] every n-th create is
//! recorded but answered 503, as when a proxy times out after the API did
//! the work; a client that retries blindly creates a duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One shipment the channel holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// The channel's id for it (fulfillment id, package id...).
    pub reference: String,
    pub tracking_number: String,
    pub carrier: String,
    /// (channel line id, units).
    pub lines: Vec<(String, i64)>,
}

/// Counts over everything recorded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Shipments held (recorded and not cancelled).
    pub shipments: u64,
    /// Shipments cancelled.
    pub cancelled: u64,
    /// Orders with at least one.
    pub orders: u64,
    /// Tracking numbers recorded more than once.
    pub duplicates: u64,
    /// Creates whose answer was lost (recorded, answered 503).
    pub lost: u64,
}

#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
    lose_every: AtomicU64,
    creates: AtomicU64,
    lost: AtomicU64,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Inner {
    by_order: HashMap<String, Vec<Shipped>>,
    /// References cancelled (no longer held, units open again).
    cancelled: HashSet<String>,
}

impl Inner {
    fn live<'a>(&'a self, order: &str) -> impl Iterator<Item = &'a Shipped> + 'a {
        self.by_order
            .get(order)
            .into_iter()
            .flatten()
            .filter(|s| !self.cancelled.contains(&s.reference))
    }
}

impl Ledger {
    /// Every `n`-th create from now on is recorded and answered 503 (0:
    /// never).
    pub fn lose_every(&self, n: u64) {
        self.lose_every.store(n, Ordering::Relaxed);
    }

    /// What `order` holds (cancelled shipments left out).
    pub fn shipped(&self, order: &str) -> Vec<Shipped> {
        self.lock().live(order).cloned().collect()
    }

    /// The order and shipment of `reference`, if held.
    pub fn find(&self, reference: &str) -> Option<(String, Shipped)> {
        let g = self.lock();
        if g.cancelled.contains(reference) {
            return None;
        }
        g.by_order.iter().find_map(|(o, v)| {
            v.iter()
                .find(|s| s.reference == reference)
                .map(|s| (o.clone(), s.clone()))
        })
    }

    /// Cancels `reference`: its units are open again.
    pub fn cancel(&self, reference: &str) {
        self.lock().cancelled.insert(reference.to_string());
    }

    /// Units of `line` of `order` shipped so far.
    pub fn units_shipped(&self, order: &str, line: &str) -> i64 {
        self.lock()
            .live(order)
            .flat_map(|s| &s.lines)
            .filter(|(l, _)| l == line)
            .map(|(_, n)| n)
            .sum()
    }

    /// A fresh numeric id (fulfillment ids, package ids).
    pub fn next_id(&self, base: u64) -> u64 {
        base + self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records `s` for `order`; `true` when its answer is to be lost.
    pub fn record(&self, order: &str, s: Shipped) -> bool {
        self.lock()
            .by_order
            .entry(order.to_string())
            .or_default()
            .push(s);
        let n = self.creates.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.lose_every.load(Ordering::Relaxed);
        let lose = every > 0 && n.is_multiple_of(every);
        if lose {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        lose
    }

    pub fn totals(&self) -> Totals {
        let g = self.lock();
        let mut tracking: BTreeMap<&str, u64> = BTreeMap::new();
        for s in g.by_order.values().flatten() {
            *tracking.entry(s.tracking_number.as_str()).or_default() += 1;
        }
        let live = |o: &String| g.live(o).count() as u64;
        Totals {
            shipments: g.by_order.keys().map(live).sum(),
            cancelled: g.cancelled.len() as u64,
            orders: g.by_order.keys().filter(|o| live(o) > 0).count() as u64,
            duplicates: tracking.values().filter(|n| **n > 1).count() as u64,
            lost: self.lost.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_count_duplicates_and_lost_answers() {
        let l = Ledger::default();
        l.lose_every(2);
        let s = |t: &str| Shipped {
            reference: "1".into(),
            tracking_number: t.into(),
            carrier: "USPS".into(),
            lines: vec![("a".into(), 2)],
        };
        assert!(!l.record("o1", s("T1")));
        assert!(l.record("o1", s("T2")));
        assert!(!l.record("o2", s("T1")));
        assert_eq!(l.units_shipped("o1", "a"), 4);
        assert_eq!(
            l.totals(),
            Totals {
                shipments: 3,
                cancelled: 0,
                orders: 2,
                duplicates: 1,
                lost: 1
            }
        );
        l.cancel("1");
        assert_eq!(l.units_shipped("o1", "a"), 0);
        assert!(l.find("1").is_none());
    }
}

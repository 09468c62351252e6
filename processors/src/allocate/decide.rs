//! Step 4 of the allocation protocol (docs/allocation.md): once every
//! line's hold is answered, the order decides from the held quantities
//! alone, deterministically.
//!
//! - Ship complete: the best-ranked warehouse whose holds cover every line.
//! - Else, when the policy allows splitting: the fewest warehouses whose
//!   holds together cover every line (fewest parcels first), then the
//!   lowest cost (units x cost per unit, each line taken from the set's
//!   warehouses in rank order), then the best-ranked set. Every
//!   subset of the candidates is tried in that order, so the answer is the
//!   optimum for these criteria; a channel has a handful of candidate
//!   warehouses ([`MAX_CANDIDATES`]), so that is at most 4,095 subsets.
//! - Else backorder the whole order (all or nothing), naming what is
//!   missing per line.
//!
//! Candidates arrive ranked (nearest, then priority); the rank is the
//! only tie-break, so the same holds always give the same decision.

use std::collections::BTreeMap;

/// Warehouses one order may consider at most.
pub const MAX_CANDIDATES: usize = 12;

/// One order line to allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: i64,
}

/// A candidate warehouse, in rank order, with its cost per unit (e.g. the
/// distance in km to the destination; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub warehouse: String,
    pub cost_per_unit: f64,
}

/// What the order's policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub split: bool,
    /// Most parcels (warehouses) a split may use.
    pub max_parcels: usize,
}

/// Units of one line taken from one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    pub line: usize,
    pub warehouse: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Everything from one warehouse.
    Complete { warehouse: String, takes: Vec<Take> },
    /// From several warehouses, one parcel each.
    Split {
        warehouses: Vec<String>,
        takes: Vec<Take>,
    },
    /// Not enough held: `(line, units missing)` for every short line.
    Backorder { missing: Vec<(usize, i64)> },
}

impl Decision {
    /// Units taken per (sku, warehouse): what to commit at each SKU.
    pub fn commits(&self, lines: &[Line]) -> BTreeMap<(String, String), i64> {
        let mut out = BTreeMap::new();
        if let Decision::Complete { takes, .. } | Decision::Split { takes, .. } = self {
            for t in takes {
                *out.entry((lines[t.line].sku.clone(), t.warehouse.clone()))
                    .or_default() += t.quantity;
            }
        }
        out
    }
}

/// Decides from `held[line][candidate]`, the units held for each line at
/// each candidate (same order as `candidates`).
pub fn decide(
    lines: &[Line],
    candidates: &[Candidate],
    held: &[Vec<i64>],
    policy: Policy,
) -> Decision {
    let n = candidates.len().min(MAX_CANDIDATES);
    let held_at = |l: usize, w: usize| {
        held.get(l)
            .and_then(|h| h.get(w))
            .copied()
            .unwrap_or(0)
            .max(0)
    };
    // Ship complete from the best-ranked warehouse that has everything.
    if let Some(w) = (0..n).find(|&w| (0..lines.len()).all(|l| held_at(l, w) >= lines[l].quantity))
    {
        return Decision::Complete {
            warehouse: candidates[w].warehouse.clone(),
            takes: take_from(lines, candidates, &[w], held_at),
        };
    }
    if policy.split && policy.max_parcels >= 2 {
        let mut best: Option<(usize, f64, u32)> = None;
        for mask in 1u32..(1 << n) {
            let size = mask.count_ones() as usize;
            if size < 2 || size > policy.max_parcels {
                continue;
            }
            let set: Vec<usize> = (0..n).filter(|w| mask & (1 << w) != 0).collect();
            let covers = (0..lines.len())
                .all(|l| set.iter().map(|&w| held_at(l, w)).sum::<i64>() >= lines[l].quantity);
            if !covers {
                continue;
            }
            let cost: f64 = take_from(lines, candidates, &set, held_at)
                .iter()
                .map(|t| {
                    let w = candidates
                        .iter()
                        .position(|c| c.warehouse == t.warehouse)
                        .unwrap_or(0);
                    candidates[w].cost_per_unit * t.quantity as f64
                })
                .sum();
            // Fewest parcels, then cost, then the best-ranked set (a lower
            // mask is a set of better-ranked warehouses, bit by bit).
            let better = match best {
                None => true,
                Some((bs, bc, bm)) => {
                    size < bs
                        || (size == bs
                            && (cost < bc - 1e-9
                                || ((cost - bc).abs() <= 1e-9 && rank_key(mask) < rank_key(bm))))
                }
            };
            if better {
                best = Some((size, cost, mask));
            }
        }
        if let Some((_, _, mask)) = best {
            let set: Vec<usize> = (0..n).filter(|w| mask & (1 << w) != 0).collect();
            return Decision::Split {
                warehouses: set
                    .iter()
                    .map(|&w| candidates[w].warehouse.clone())
                    .collect(),
                takes: take_from(lines, candidates, &set, held_at),
            };
        }
    }
    let missing = (0..lines.len())
        .filter_map(|l| {
            let have = if policy.split {
                (0..n).map(|w| held_at(l, w)).sum::<i64>()
            } else {
                (0..n).map(|w| held_at(l, w)).max().unwrap_or(0)
            };
            let short = lines[l].quantity - have;
            (short > 0).then_some((l, short))
        })
        .collect::<Vec<_>>();
    // All lines covered separately but not together in one warehouse, and
    // no split allowed: every line is reported against the best single
    // warehouse.
    let missing = if missing.is_empty() {
        best_single_shortfall(lines, n, &held_at)
    } else {
        missing
    };
    Decision::Backorder { missing }
}

/// Orders sets so that the one holding better-ranked warehouses comes
/// first: compare the reversed bit patterns.
fn rank_key(mask: u32) -> u32 {
    mask.reverse_bits()
}

/// Per line, units from the set's warehouses in rank order.
fn take_from(
    lines: &[Line],
    candidates: &[Candidate],
    set: &[usize],
    held_at: impl Fn(usize, usize) -> i64,
) -> Vec<Take> {
    let mut out = Vec::new();
    for (l, line) in lines.iter().enumerate() {
        let mut left = line.quantity;
        for &w in set {
            if left == 0 {
                break;
            }
            let q = held_at(l, w).min(left);
            if q > 0 {
                out.push(Take {
                    line: l,
                    warehouse: candidates[w].warehouse.clone(),
                    quantity: q,
                });
                left -= q;
            }
        }
    }
    out
}

/// The shortfall against the warehouse that would need the fewest extra
/// units to ship everything.
fn best_single_shortfall(
    lines: &[Line],
    n: usize,
    held_at: &impl Fn(usize, usize) -> i64,
) -> Vec<(usize, i64)> {
    let short = |w: usize| -> Vec<(usize, i64)> {
        (0..lines.len())
            .filter_map(|l| {
                let s = lines[l].quantity - held_at(l, w);
                (s > 0).then_some((l, s))
            })
            .collect()
    };
    (0..n)
        .map(short)
        .min_by_key(|s| s.iter().map(|(_, q)| q).sum::<i64>())
        .unwrap_or_else(|| {
            lines
                .iter()
                .enumerate()
                .map(|(l, x)| (l, x.quantity))
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(q: &[i64]) -> Vec<Line> {
        q.iter()
            .enumerate()
            .map(|(i, &quantity)| Line {
                sku: format!("SKU-{i}"),
                quantity,
            })
            .collect()
    }

    fn candidates(costs: &[f64]) -> Vec<Candidate> {
        costs
            .iter()
            .enumerate()
            .map(|(i, &c)| Candidate {
                warehouse: format!("w{i}"),
                cost_per_unit: c,
            })
            .collect()
    }

    const SPLIT: Policy = Policy {
        split: true,
        max_parcels: 3,
    };
    const NO_SPLIT: Policy = Policy {
        split: false,
        max_parcels: 1,
    };

    #[test]
    fn complete_from_the_best_ranked_warehouse_that_has_everything() {
        let d = decide(
            &lines(&[2, 1]),
            &candidates(&[10.0, 20.0, 30.0]),
            &[vec![2, 2, 2], vec![0, 1, 1]],
            SPLIT,
        );
        let Decision::Complete { warehouse, takes } = d else {
            panic!("{d:?}")
        };
        assert_eq!(warehouse, "w1");
        assert_eq!(takes.iter().map(|t| t.quantity).sum::<i64>(), 3);
    }

    #[test]
    fn split_uses_the_fewest_parcels_then_the_cheapest() {
        // No warehouse has both lines; {w0, w1} and {w0, w2} both cover
        // them with two parcels, and w2 is cheaper than w1.
        let held = [vec![3, 0, 1], vec![0, 2, 2]];
        let d = decide(
            &lines(&[3, 2]),
            &candidates(&[10.0, 50.0, 20.0]),
            &held,
            SPLIT,
        );
        let Decision::Split { warehouses, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(warehouses, &["w0", "w2"]);
        let commits = d.commits(&lines(&[3, 2]));
        assert_eq!(commits[&("SKU-0".into(), "w0".into())], 3);
        assert_eq!(commits[&("SKU-1".into(), "w2".into())], 2);
    }

    #[test]
    fn without_split_it_is_all_or_nothing() {
        let held = [vec![3, 0], vec![0, 2]];
        let d = decide(&lines(&[3, 2]), &candidates(&[1.0, 1.0]), &held, NO_SPLIT);
        let Decision::Backorder { missing } = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            missing,
            [(1, 2)],
            "short of line 1 at w0, the closest to complete"
        );
        let d = decide(&lines(&[5]), &candidates(&[1.0, 1.0]), &[vec![2, 2]], SPLIT);
        assert_eq!(
            d,
            Decision::Backorder {
                missing: vec![(0, 1)]
            }
        );
    }

    /// Brute force over every way to take each line's units from the
    /// candidates: the fewest warehouses any feasible assignment uses.
    fn optimum_parcels(q: &[i64], held: &[Vec<i64>], n: usize) -> Option<usize> {
        (1u32..(1 << n))
            .filter(|m| {
                (0..q.len()).all(|l| {
                    (0..n)
                        .filter(|w| m & (1 << w) != 0)
                        .map(|w| held[l][w])
                        .sum::<i64>()
                        >= q[l]
                })
            })
            .map(|m| m.count_ones() as usize)
            .min()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Never takes more than held or than ordered, takes exactly the
        /// order when it allocates, and uses the fewest parcels possible.
        #[test]
        fn decisions_are_feasible_and_optimal_in_parcels(
            q in proptest::collection::vec(1i64..5, 1..4),
            costs in proptest::collection::vec(0.0f64..100.0, 1..5),
            seed in proptest::collection::vec(proptest::collection::vec(0i64..6, 5), 4),
        ) {
            let n = costs.len();
            let held: Vec<Vec<i64>> = (0..q.len()).map(|l| seed[l][..n].to_vec()).collect();
            let ls = lines(&q);
            let d = decide(&ls, &candidates(&costs), &held, Policy { split: true, max_parcels: n });
            let best = optimum_parcels(&q, &held, n);
            match &d {
                Decision::Complete { takes, .. } | Decision::Split { takes, .. } => {
                    let parcels: std::collections::BTreeSet<_> = takes.iter().map(|t| &t.warehouse).collect();
                    prop_assert_eq!(Some(parcels.len()), best);
                    for (l, line) in ls.iter().enumerate() {
                        let got: i64 = takes.iter().filter(|t| t.line == l).map(|t| t.quantity).sum();
                        prop_assert_eq!(got, line.quantity);
                    }
                    for t in takes {
                        let w: usize = t.warehouse[1..].parse().unwrap();
                        let from_w: i64 = takes.iter().filter(|x| x.line == t.line && x.warehouse == t.warehouse).map(|x| x.quantity).sum();
                        prop_assert!(from_w <= held[t.line][w]);
                    }
                }
                Decision::Backorder { missing } => {
                    prop_assert_eq!(best, None);
                    prop_assert!(!missing.is_empty());
                }
            }
            // Deterministic.
            prop_assert_eq!(d, decide(&ls, &candidates(&costs), &held, Policy { split: true, max_parcels: n }));
        }
    }
}

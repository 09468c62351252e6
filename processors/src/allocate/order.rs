//! The `allocate` job's logic for one order, as a pure function of (state,
//! command) -> (state, effects): steps 1, 2, 4 and 6 of docs/allocation.md.
//!
//! - **A version arrives.** Stale versions and versions that change nothing
//!   allocation depends on (lines, destination, channel, urgency,
//!   fulfilment, cancellation) are recorded and emit nothing. A
//!   cancellation releases every SKU the order had (and takes it out of
//!   backorder queues) and emits `RELEASED`; an order fulfilled by the
//!   channel (FBA) is recorded as `FULFILLED_BY_CHANNEL`, never allocated.
//!   Anything else starts an **attempt**: SKUs the order no longer has are
//!   released, and every SKU is held (a Hold replaces what the order had of
//!   that SKU, so an edit re-reserves exactly the new quantities).
//! - **Answers.** `Held` answers of another attempt are ignored (their
//!   holds were replaced or released). When every SKU has answered, the
//!   order decides ([`super::decide`]): complete or split -> `Commit` per
//!   SKU and `orders.allocated`; otherwise `Release` per SKU, queueing the
//!   order only where stock would let it get further ([`waits`]), and
//!   `orders.backordered`.
//! - **Wake-ups.** `StockArrived` for the attempt that backordered starts a
//!   new attempt; a `Revoked` claim restarts an allocated order, or marks a
//!   holding attempt so that it restarts instead of deciding.
//!
//! An outcome identical to the last one emitted for the order (a retry that
//! backorders the same lines again, a re-allocation to the same warehouses)
//! is not emitted again.

use std::collections::BTreeMap;

use conveyor_runtime::warehouses::{AllocationConfig, WarehouseConfig};
use conveyor_schemas::records::{AllocationResult, AllocationStatus, LineQty, WarehouseAllocation};
use conveyor_stream::event_id;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::candidates::rank;
use super::decide::{self, Candidate, Decision, Line};
use super::protocol::{AllocCommand, InvCommand, OrderRequest, Until, Wait};

/// What the job needs of the config.
#[derive(Debug, Clone)]
pub struct Plan {
    pub warehouses: Vec<WarehouseConfig>,
    pub allocation: AllocationConfig,
    /// Short hash of the two, stamped on every outcome.
    pub config_version: String,
}

impl Plan {
    pub fn new(warehouses: Vec<WarehouseConfig>, allocation: AllocationConfig) -> Plan {
        let text = serde_json::to_string(&(&warehouses, &allocation)).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        let config_version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Plan {
            warehouses,
            allocation,
            config_version,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Holds sent, answers pending.
    Holding,
    Allocated,
    Backordered,
    Cancelled,
    FulfilledByChannel,
}

/// What the job keeps per order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    pub version: i64,
    pub attempt: u32,
    pub phase: Phase,
    pub request: OrderRequest,
    /// Ranked candidates of the current attempt: (warehouse, metres to
    /// the destination). Whole metres: a float would not survive the JSON
    /// round trip of the state store bit for bit, and the decision must be
    /// the same after a restore.
    pub candidates: Vec<(String, i64)>,
    /// Answers of the current attempt: sku -> held per candidate.
    pub answers: BTreeMap<String, Vec<(String, i64)>>,
    /// With the answers: sku -> what each candidate had unreserved.
    #[serde(default)]
    pub unreserved: BTreeMap<String, Vec<(String, i64)>>,
    /// A claim of the current attempt was revoked: restart, don't decide.
    pub dirty: bool,
    /// Hash of the last outcome emitted.
    pub last_outcome: Option<String>,
    /// The last outcome emitted allocated stock (Allocated or
    /// PartiallyAllocated): a Backordered outcome after it supersedes it on
    /// `orders.allocated` too, so that what was planned from it is
    /// cancelled (route reads that log).
    #[serde(default)]
    pub allocated_outcome: bool,
    /// Event time of the last outcome emitted: a later outcome is stamped
    /// after it, even when the command that decided it is older (a claim
    /// revoked and taken again), so the sinks, which keep the newest event
    /// time per order, keep the newest outcome.
    #[serde(default)]
    pub decided_at: i64,
}

/// What handling a command produces, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// To `inventory.commands` (key = sku).
    Inventory(InvCommand),
    /// To `orders.allocated` (key = order id): allocated, released,
    /// fulfilled by the channel.
    Allocated(AllocationResult),
    /// To `orders.backordered` (key = order id). After an allocated
    /// outcome the same record also goes to `orders.allocated`, as an
    /// [`Effect::Allocated`] with status Backordered, before this one.
    Backordered(AllocationResult),
}

/// Handles one command for one order. `Err` is a reason for the DLQ (the
/// state is then left as it was).
pub fn handle(
    state: Option<OrderState>,
    cmd: &AllocCommand,
    plan: &Plan,
) -> Result<(Option<OrderState>, Vec<Effect>), String> {
    let mut out = Vec::new();
    let next = match cmd {
        AllocCommand::Order(req) => on_order(state, req, plan, &mut out)?,
        AllocCommand::Held(h) => match state {
            Some(mut st) if st.phase == Phase::Holding && st.attempt == h.attempt => {
                st.answers.insert(h.sku.clone(), h.held.clone());
                st.unreserved.insert(h.sku.clone(), h.unreserved.clone());
                if st.answers.len() == st.request.units_by_sku().len() {
                    if st.dirty {
                        restart(&mut st, plan, h.at, &mut out);
                    } else {
                        conclude(&mut st, plan, h.at, &mut out);
                    }
                }
                Some(st)
            }
            other => other,
        },
        AllocCommand::StockArrived(s) => match state {
            Some(mut st) if st.phase == Phase::Backordered && st.attempt == s.attempt => {
                restart(&mut st, plan, s.at, &mut out);
                Some(st)
            }
            other => other,
        },
        AllocCommand::Revoked(r) => match state {
            Some(mut st) => {
                let has = st.request.lines.iter().any(|l| l.sku == r.sku);
                match st.phase {
                    Phase::Holding if has => st.dirty = true,
                    Phase::Allocated if has => restart(&mut st, plan, r.at, &mut out),
                    _ => {}
                }
                Some(st)
            }
            None => None,
        },
    };
    Ok((next, number(cmd.id(), out)))
}

/// Do two versions allocate the same way?
fn same_allocation(a: &OrderRequest, b: &OrderRequest) -> bool {
    a.cancelled == b.cancelled
        && a.channel == b.channel
        && a.fulfilled_by_channel == b.fulfilled_by_channel
        && a.urgency == b.urgency
        && a.country == b.country
        && a.postal_code == b.postal_code
        && a.lines == b.lines
}

fn on_order(
    state: Option<OrderState>,
    req: &OrderRequest,
    plan: &Plan,
    out: &mut Vec<Effect>,
) -> Result<Option<OrderState>, String> {
    if let Some(st) = &state {
        if req.version < st.version {
            return Ok(state);
        }
        if same_allocation(&st.request, req) {
            let mut st = st.clone();
            st.version = req.version;
            st.request = req.clone();
            return Ok(Some(st));
        }
    }
    // SKUs the order may have claims or queue entries at.
    let previous: Vec<String> = match &state {
        Some(st)
            if matches!(
                st.phase,
                Phase::Holding | Phase::Allocated | Phase::Backordered
            ) =>
        {
            st.request
                .units_by_sku()
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        }
        _ => Vec::new(),
    };
    let attempt = state.as_ref().map_or(0, |s| s.attempt) + 1;
    let allocated_outcome = state.as_ref().is_some_and(|s| s.allocated_outcome);
    let decided_at = state.as_ref().map_or(0, |s| s.decided_at);
    let mut st = OrderState {
        version: req.version,
        attempt,
        phase: Phase::Holding,
        request: req.clone(),
        candidates: Vec::new(),
        answers: BTreeMap::new(),
        unreserved: BTreeMap::new(),
        dirty: false,
        last_outcome: state.and_then(|s| s.last_outcome),
        allocated_outcome,
        decided_at,
    };
    let units = req.units_by_sku();
    let release = |keep: &[(String, i64)], out: &mut Vec<Effect>| {
        for sku in &previous {
            if !keep.iter().any(|(s, _)| s == sku) {
                out.push(Effect::Inventory(InvCommand::Release {
                    id: String::new(),
                    order: req.order_id.clone(),
                    attempt,
                    sku: sku.clone(),
                    wait: None,
                    at: req.at,
                }));
            }
        }
    };
    let terminal = if req.cancelled {
        Some((Phase::Cancelled, AllocationStatus::Released, "cancelled"))
    } else if req.fulfilled_by_channel {
        Some((
            Phase::FulfilledByChannel,
            AllocationStatus::FulfilledByChannel,
            "fulfilled-by-channel",
        ))
    } else if units.is_empty() {
        Some((
            Phase::Allocated,
            AllocationStatus::Allocated,
            "nothing-to-ship",
        ))
    } else {
        None
    };
    if let Some((phase, status, policy)) = terminal {
        release(&[], out);
        st.phase = phase;
        emit(
            &mut st,
            plan,
            status,
            Vec::new(),
            Vec::new(),
            policy,
            req.at,
            out,
        );
        return Ok(Some(st));
    }
    let ranked = rank(
        &plan.warehouses,
        &req.channel,
        &req.country,
        &req.postal_code,
    );
    if ranked.is_empty() {
        return Err(format!(
            "no configured warehouse serves channel `{}` (see [[warehouses]].channels)",
            req.channel
        ));
    }
    st.candidates = ranked
        .into_iter()
        .map(|c| (c.warehouse, (c.cost_per_unit * 1000.0).round() as i64))
        .collect();
    release(&units, out);
    hold(&st, plan, req.at, out);
    Ok(Some(st))
}

/// Step 2: one Hold per SKU.
fn hold(st: &OrderState, plan: &Plan, at: i64, out: &mut Vec<Effect>) {
    let policy = plan.allocation.policy(&st.request.channel);
    let candidates: Vec<String> = st.candidates.iter().map(|(w, _)| w.clone()).collect();
    let units = st.request.units_by_sku();
    // One SKU: the decision is the best-ranked warehouse that has it all,
    // so holding there alone is enough (and keeps the others free).
    let only_best = units.len() == 1;
    for (sku, quantity) in units {
        out.push(Effect::Inventory(InvCommand::Hold {
            id: String::new(),
            order: st.request.order_id.clone(),
            attempt: st.attempt,
            sku,
            quantity,
            candidates: candidates.clone(),
            buffer: policy.buffer_units,
            queue: st.request.queue_key(),
            only_best,
            at,
        }));
    }
}

/// A new attempt of the same version: hold everything again.
fn restart(st: &mut OrderState, plan: &Plan, at: i64, out: &mut Vec<Effect>) {
    st.attempt += 1;
    st.phase = Phase::Holding;
    st.answers.clear();
    st.unreserved.clear();
    st.dirty = false;
    hold(st, plan, at, out);
}

/// Step 4: decide from the answers, then commit or release.
fn conclude(st: &mut OrderState, plan: &Plan, at: i64, out: &mut Vec<Effect>) {
    let units = st.request.units_by_sku();
    let lines: Vec<Line> = units
        .iter()
        .map(|(sku, quantity)| Line {
            sku: sku.clone(),
            quantity: *quantity,
        })
        .collect();
    let candidates: Vec<Candidate> = st
        .candidates
        .iter()
        .map(|(w, m)| Candidate {
            warehouse: w.clone(),
            cost_per_unit: *m as f64 / 1000.0,
        })
        .collect();
    let held = per_candidate(&st.answers, &units, &candidates);
    let unreserved = per_candidate(&st.unreserved, &units, &candidates);
    let p = plan.allocation.policy(&st.request.channel);
    let policy = decide::Policy {
        split: p.split,
        max_parcels: p.max_parcels as usize,
    };
    let order = st.request.order_id.clone();
    let attempt = st.attempt;
    let decision = decide::decide(&lines, &candidates, &held, policy);
    match &decision {
        Decision::Complete { .. } | Decision::Split { .. } => {
            let commits = decision.commits(&lines);
            for (sku, _) in &units {
                let take: BTreeMap<String, i64> = commits
                    .iter()
                    .filter(|((s, _), _)| s == sku)
                    .map(|((_, w), q)| (w.clone(), *q))
                    .collect();
                out.push(Effect::Inventory(InvCommand::Commit {
                    id: String::new(),
                    order: order.clone(),
                    attempt,
                    sku: sku.clone(),
                    take,
                    at,
                }));
            }
            let policy = if matches!(decision, Decision::Complete { .. }) {
                "ship-complete"
            } else {
                "split"
            };
            let allocations = to_allocations(&st.request, &candidates, &commits);
            st.phase = Phase::Allocated;
            emit(
                st,
                plan,
                AllocationStatus::Allocated,
                allocations,
                Vec::new(),
                policy,
                at,
                out,
            );
        }
        Decision::Backorder { missing } => {
            let short: BTreeMap<&str, i64> = missing
                .iter()
                .map(|(l, q)| (lines[*l].sku.as_str(), *q))
                .collect();
            let until = waits(
                &lines,
                &candidates,
                &held,
                &unreserved,
                policy.split,
                p.buffer_units,
            );
            for (l, (sku, quantity)) in units.iter().enumerate() {
                let wait = until.get(&l).map(|u| Wait {
                    quantity: *quantity,
                    queue: st.request.queue_key(),
                    candidates: candidates.iter().map(|c| c.warehouse.clone()).collect(),
                    until: u.clone(),
                });
                out.push(Effect::Inventory(InvCommand::Release {
                    id: String::new(),
                    order: order.clone(),
                    attempt,
                    sku: sku.clone(),
                    wait,
                    at,
                }));
            }
            let backordered = to_backordered(&st.request, &short);
            st.phase = Phase::Backordered;
            emit(
                st,
                plan,
                AllocationStatus::Backordered,
                Vec::new(),
                backordered,
                "backorder",
                at,
                out,
            );
        }
    }
}

/// `answers[sku]` (per candidate warehouse) as `[line][candidate]`; a
/// candidate an answer does not name counts 0.
fn per_candidate(
    answers: &BTreeMap<String, Vec<(String, i64)>>,
    units: &[(String, i64)],
    candidates: &[Candidate],
) -> Vec<Vec<i64>> {
    units
        .iter()
        .map(|(sku, _)| {
            let answer = answers.get(sku).map(Vec::as_slice).unwrap_or(&[]);
            candidates
                .iter()
                .map(|c| {
                    answer
                        .iter()
                        .find(|(w, _)| *w == c.warehouse)
                        .map_or(0, |(_, q)| *q)
                })
                .collect()
        })
        .collect()
}

/// Where a backordered order waits (line -> condition), from what its
/// attempt held (`held[line][candidate]`) and what was unreserved there
/// (`unreserved[line][candidate]`: what it could have held with no other
/// order's hold in the way). It waits only for stock that would let the
/// next attempt get further, so arrivals that cannot help it do not wake
/// it:
///
/// - A split order short of some SKUs in total waits at one of them until
///   its candidates together have enough: until then no attempt can
///   succeed, and once they do, the next attempt finds the next SKU still
///   short (if any) and waits there.
/// - Otherwise (ship complete only, or a split order that needs too many
///   parcels) each candidate warehouse was missing some SKU: the order
///   waits at that SKU until that warehouse has enough of it. A warehouse
///   can ship the order complete only once its blocker clears, so no
///   chance is missed, and arrivals elsewhere do not wake it. A split order
///   that needs too many parcels waits at every SKU at every warehouse it
///   was short at, since fewer parcels may come from any of them.
///
/// Where several SKUs are short, the blocker is the one short by the most
/// *unreserved* units: a shortfall caused by reservations or missing
/// stock lasts until stock really arrives, while one caused by other
/// orders' holds passes within a round trip. Choosing the lasting one
/// keeps the order asleep while the others' holds come and go.
pub fn waits(
    lines: &[Line],
    candidates: &[Candidate],
    held: &[Vec<i64>],
    unreserved: &[Vec<i64>],
    split: bool,
    buffer: i64,
) -> BTreeMap<usize, Until> {
    let at = |m: &[Vec<i64>], l: usize, c: usize| m[l].get(c).copied().unwrap_or(0);
    let total = |m: &[Vec<i64>], l: usize| m[l].iter().sum::<i64>();
    let q = |l: usize| lines[l].quantity;
    let mut out: BTreeMap<usize, Until> = BTreeMap::new();
    if split {
        let blocker = (0..lines.len())
            .filter(|&l| total(held, l) < q(l))
            .min_by_key(|&l| {
                let lasting = q(l) - total(unreserved, l);
                (
                    std::cmp::Reverse(lasting),
                    std::cmp::Reverse(q(l) - total(held, l)),
                    l,
                )
            });
        if let Some(l) = blocker {
            out.insert(l, Until::Total { buffer });
            return out;
        }
    }
    let mut waits_at: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (c, cand) in candidates.iter().enumerate() {
        let short: Vec<usize> = (0..lines.len())
            .filter(|&l| at(held, l, c) < q(l))
            .collect();
        let chosen: Vec<usize> = if split {
            short
        } else {
            short
                .into_iter()
                .min_by_key(|&l| {
                    let lasting = q(l) - at(unreserved, l, c);
                    (
                        std::cmp::Reverse(lasting),
                        std::cmp::Reverse(q(l) - at(held, l, c)),
                        l,
                    )
                })
                .into_iter()
                .collect()
        };
        for l in chosen {
            waits_at.entry(l).or_default().push(cand.warehouse.clone());
        }
    }
    for (l, warehouses) in waits_at {
        out.insert(l, Until::AnyOf { warehouses, buffer });
    }
    out
}

/// Lines per warehouse (one parcel each), warehouses in rank order; a
/// SKU's units are spread over its lines in line order.
fn to_allocations(
    req: &OrderRequest,
    candidates: &[Candidate],
    commits: &BTreeMap<(String, String), i64>,
) -> Vec<WarehouseAllocation> {
    let mut left: Vec<i64> = req.lines.iter().map(|l| l.quantity).collect();
    let mut out = Vec::new();
    for c in candidates {
        let mut lines = Vec::new();
        for ((sku, w), q) in commits {
            if *w != c.warehouse {
                continue;
            }
            let mut q = *q;
            for (i, l) in req.lines.iter().enumerate() {
                if q == 0 {
                    break;
                }
                if l.sku != *sku || left[i] == 0 {
                    continue;
                }
                let n = q.min(left[i]);
                left[i] -= n;
                q -= n;
                lines.push(LineQty {
                    line_id: l.line_id.clone(),
                    sku: l.sku.clone(),
                    quantity: n as i32,
                });
            }
        }
        if !lines.is_empty() {
            lines.sort_by(|a, b| a.line_id.cmp(&b.line_id));
            out.push(WarehouseAllocation {
                warehouse_id: c.warehouse.clone(),
                lines,
            });
        }
    }
    out
}

/// The short units per SKU, taken from its last lines first.
fn to_backordered(req: &OrderRequest, short: &BTreeMap<&str, i64>) -> Vec<LineQty> {
    let mut out = Vec::new();
    for (sku, missing) in short {
        let mut m = *missing;
        for l in req.lines.iter().rev().filter(|l| l.sku == *sku) {
            if m == 0 {
                break;
            }
            let n = m.min(l.quantity);
            m -= n;
            out.push(LineQty {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                quantity: n as i32,
            });
        }
    }
    out.sort_by(|a, b| a.line_id.cmp(&b.line_id));
    out
}

#[allow(clippy::too_many_arguments)]
fn emit(
    st: &mut OrderState,
    plan: &Plan,
    status: AllocationStatus,
    allocations: Vec<WarehouseAllocation>,
    backordered: Vec<LineQty>,
    policy: &str,
    at: i64,
    out: &mut Vec<Effect>,
) {
    let at = if st.last_outcome.is_some() {
        at.max(st.decided_at.saturating_add(1))
    } else {
        at
    };
    let result = AllocationResult {
        event_id: String::new(),
        order_id: st.request.order_id.clone(),
        order_version: st.version,
        status,
        allocations,
        backordered,
        policy: policy.to_string(),
        config_version: plan.config_version.clone(),
        decided_at: at,
    };
    // Same version, status and lines as last time: nothing new to say.
    let fingerprint = fingerprint(&result);
    if st.last_outcome.as_deref() == Some(fingerprint.as_str()) {
        return;
    }
    st.last_outcome = Some(fingerprint);
    st.decided_at = at;
    let allocates = matches!(
        status,
        AllocationStatus::Allocated | AllocationStatus::PartiallyAllocated
    );
    if status == AllocationStatus::Backordered {
        if st.allocated_outcome {
            // Supersedes the allocation on its own log.
            out.push(Effect::Allocated(result.clone()));
        }
        out.push(Effect::Backordered(result));
    } else {
        out.push(Effect::Allocated(result));
    }
    st.allocated_outcome = allocates;
}

/// What identifies an outcome: everything but its event id and time
/// ([`OrderState::last_outcome`] holds the last one emitted).
pub fn fingerprint(r: &AllocationResult) -> String {
    let mut r = r.clone();
    r.event_id = String::new();
    r.decided_at = 0;
    let text = serde_json::to_string(&r).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Event ids `<command id>/<index>`, in the order the effects were made.
fn number(id: &str, mut effects: Vec<Effect>) -> Vec<Effect> {
    for (i, e) in effects.iter_mut().enumerate() {
        let eid = event_id(id, i);
        match e {
            Effect::Inventory(
                InvCommand::Hold { id, .. }
                | InvCommand::Commit { id, .. }
                | InvCommand::Release { id, .. }
                | InvCommand::Ship { id, .. },
            ) => *id = eid,
            Effect::Inventory(InvCommand::Stock(ev)) => ev.event_id = eid,
            Effect::Allocated(r) | Effect::Backordered(r) => r.event_id = eid,
        }
    }
    effects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(q: &[(&str, i64)]) -> Vec<Line> {
        q.iter()
            .map(|(sku, quantity)| Line {
                sku: sku.to_string(),
                quantity: *quantity,
            })
            .collect()
    }

    fn cands(ws: &[&str]) -> Vec<Candidate> {
        ws.iter()
            .map(|w| Candidate {
                warehouse: w.to_string(),
                cost_per_unit: 1.0,
            })
            .collect()
    }

    #[test]
    fn a_later_outcome_is_stamped_after_the_last_one() {
        let mut st = OrderState {
            version: 1,
            attempt: 1,
            phase: Phase::Holding,
            request: OrderRequest {
                id: "e1".into(),
                order_id: "o1".into(),
                version: 1,
                cancelled: false,
                channel: "shopify".into(),
                fulfilled_by_channel: false,
                urgency: 2,
                created_at: 0,
                country: "US".into(),
                postal_code: "10001".into(),
                lines: vec![],
                at: 0,
            },
            candidates: vec![],
            answers: BTreeMap::new(),
            unreserved: BTreeMap::new(),
            dirty: false,
            last_outcome: None,
            allocated_outcome: false,
            decided_at: 0,
        };
        let plan = Plan::new(vec![], AllocationConfig::default());
        let at = |out: &[Effect]| match out.last() {
            Some(Effect::Allocated(r) | Effect::Backordered(r)) => r.decided_at,
            _ => panic!("no outcome"),
        };
        let mut out = Vec::new();
        let backordered = vec![LineQty {
            line_id: "1".into(),
            sku: "A".into(),
            quantity: 1,
        }];
        emit(
            &mut st,
            &plan,
            AllocationStatus::Backordered,
            vec![],
            backordered,
            "p",
            5_000,
            &mut out,
        );
        assert_eq!(at(&out), 5_000);
        // Decided later from an older command (a claim revoked and taken
        // again): stamped after the last outcome, so it supersedes it.
        emit(
            &mut st,
            &plan,
            AllocationStatus::Allocated,
            vec![],
            vec![],
            "p",
            3_000,
            &mut out,
        );
        assert_eq!(at(&out), 5_001);
        emit(
            &mut st,
            &plan,
            AllocationStatus::Backordered,
            vec![],
            vec![],
            "p",
            9_000,
            &mut out,
        );
        assert_eq!(at(&out), 9_000);
    }

    #[test]
    fn a_backordered_order_waits_where_its_shortage_is_real() {
        let l = lines(&[("A", 2), ("B", 1)]);
        let c = cands(&["east", "west"]);
        // A: all of it at east; none at west, but only because others held
        // it (5 unreserved). B: none anywhere, really.
        let held = vec![vec![2, 0], vec![0, 0]];
        let unreserved = vec![vec![2, 5], vec![0, 0]];
        // Ship complete only: B blocks both warehouses (at west A is short
        // by more held units, but its shortage passes).
        let w = waits(&l, &c, &held, &unreserved, false, 1);
        assert_eq!(
            w,
            BTreeMap::from([(
                1,
                Until::AnyOf {
                    warehouses: vec!["east".into(), "west".into()],
                    buffer: 1
                }
            )])
        );
        // Split: B is short in total; A is not.
        let w = waits(&l, &c, &held, &unreserved, true, 0);
        assert_eq!(w, BTreeMap::from([(1, Until::Total { buffer: 0 })]));
        // Split but too many parcels (nothing short in total): every short
        // SKU at every warehouse it was short at.
        let held = vec![vec![2, 0], vec![0, 1]];
        let w = waits(&l, &c, &held, &unreserved, true, 0);
        assert_eq!(
            w,
            BTreeMap::from([
                (
                    0,
                    Until::AnyOf {
                        warehouses: vec!["west".into()],
                        buffer: 0
                    }
                ),
                (
                    1,
                    Until::AnyOf {
                        warehouses: vec!["east".into()],
                        buffer: 0
                    }
                ),
            ])
        );
    }
}

//! The behaviour every [`OperationalStore`] must show, as one suite that
//! the embedded store's unit tests and the Scylla integration test
//! (tests/scylla_store.rs, when SCYLLA_URI is set) both run: the status a
//! user sees, replays that change nothing, older events that never win,
//! row sets replaced whole, lookups by tracking number, inventory levels
//! by sequence, paging without gaps or repeats; and what the operator
//! console reads: exceptions by id with their states, actions applied
//! once however often they arrive, alerts until they recover, the
//! inventory paged by whole SKUs, and searches that never find an order
//! by what an edit took away. Panics on a violation.

use std::collections::BTreeSet;

use conveyor_schemas::records::{
    ActionKind, AlertKind, AllocationResult, AllocationStatus, InventoryAlert, OperatorAction,
    OrderEvent, OrderEventKind, StockMovement,
};

use super::model::{day_of, mutations, state, status, SearchField, ALL_WAREHOUSES};
use super::{views, OperationalStore};
use crate::event::SinkEvent;
use crate::sample;

/// 2026-11-27T00:00:00Z.
pub const BASE_MS: i64 = 1_795_737_600_000;

/// The id of sample order `i`.
pub fn order_id(i: u64) -> String {
    match &sample::order(i, BASE_MS)[0] {
        SinkEvent::Order(o) => o.order_id.clone(),
        _ => unreachable!("a sample order starts with its order event"),
    }
}

/// Applies `events` in batches of 100.
pub async fn apply_events<S: OperationalStore>(store: &S, events: &[SinkEvent]) {
    for chunk in events.chunks(100) {
        let batch = chunk.iter().flat_map(mutations).collect();
        store.apply(batch).await.expect("apply");
    }
}

/// Applies the sample orders `range`.
pub async fn load<S: OperationalStore>(store: &S, range: std::ops::Range<u64>) {
    apply_events(store, &sample::orders(range, BASE_MS)).await;
}

/// Everything the API shows of each order, as JSON text.
async fn snapshot<S: OperationalStore>(store: &S, ids: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in ids {
        let v = views::order_view(store, id).await.expect("read");
        out.push((id.clone(), serde_json::to_string(&v).unwrap()));
    }
    out
}

/// Panics naming the first order whose view differs.
fn same(got: &[(String, String)], want: &[(String, String)], what: &str) {
    for ((id, g), (_, w)) in got.iter().zip(want) {
        assert!(g == w, "{what}: order {id}\n  now:    {g}\n  before: {w}");
    }
}

pub async fn behaviour<S: OperationalStore>(store: &S) {
    let events = sample::orders(0..60, BASE_MS);
    apply_events(store, &events).await;
    let ids: Vec<String> = (0..60).map(order_id).collect();

    // Statuses as the pipeline left them.
    for i in 0..60u64 {
        let v = views::order_view(store, &ids[i as usize])
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {i} missing"));
        let want = if i % 13 == 6 {
            status::CANCELLED
        } else if i % 10 == 7 {
            status::BACKORDERED
        } else {
            status::SHIPPED
        };
        assert_eq!(v.status.as_deref(), Some(want), "order {i}");
        let o = sample::order(i, BASE_MS);
        let SinkEvent::Order(created) = &o[0] else {
            unreachable!()
        };
        assert_eq!(v.lines.len(), created.order.lines.len(), "order {i} lines");
        assert!(
            v.history.windows(2).all(|w| w[0].at <= w[1].at),
            "history in time order"
        );
        let parcels = o
            .iter()
            .filter(|e| matches!(e, SinkEvent::Planned(_)))
            .count();
        assert_eq!(v.shipments.len(), parcels, "order {i} shipments");
        for s in &v.shipments {
            assert!(
                s.plan.is_some() && s.label.is_some() && s.sync.is_some(),
                "{s:?}"
            );
        }
        if want == status::SHIPPED {
            let stages: BTreeSet<&str> = v.history.iter().map(|h| h.stage.as_str()).collect();
            for stage in ["normalize", "allocate", "route", "label", "syncback"] {
                assert!(
                    stages.contains(stage),
                    "order {i} history lacks {stage}: {stages:?}"
                );
            }
            assert!(!v.reservations.is_empty(), "order {i} holds stock");
        }
    }

    // Replayed: nothing changes. Replayed in reverse order: nothing either
    // (older versions never win).
    let before = snapshot(store, &ids).await;
    apply_events(store, &events).await;
    same(
        &snapshot(store, &ids).await,
        &before,
        "a replay changed the store",
    );
    let reversed: Vec<SinkEvent> = events.iter().rev().cloned().collect();
    apply_events(store, &reversed).await;
    same(
        &snapshot(store, &ids).await,
        &before,
        "older events overwrote newer ones",
    );

    // A newer version replaces row sets whole: an edit with one line left,
    // and a release of the order's stock.
    let i = 1u64;
    let SinkEvent::Order(created) = sample::order(i, BASE_MS)[0].clone() else {
        unreachable!()
    };
    assert!(created.order.lines.len() > 1);
    let mut edit = created.clone();
    edit.kind = OrderEventKind::Updated;
    edit.occurred_at += 3_600_000;
    edit.event_id = format!("{}:edit/0", created.order_id);
    edit.order.lines.truncate(1);
    let release = AllocationResult {
        event_id: format!("{}:release/0", created.order_id),
        order_id: created.order_id.clone(),
        order_version: edit.version,
        status: AllocationStatus::Released,
        allocations: vec![],
        backordered: vec![],
        policy: "ship-complete".into(),
        config_version: "test".into(),
        decided_at: edit.occurred_at + 1,
    };
    apply_events(
        store,
        &[
            SinkEvent::Order(edit.clone()),
            SinkEvent::Allocation(release),
        ],
    )
    .await;
    let v = views::order_view(store, &created.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.lines.len(), 1, "the edit's lines replace the old ones");
    assert!(
        v.reservations.is_empty(),
        "released stock is no longer reserved"
    );
    assert_eq!(
        v.status.as_deref(),
        Some(status::SHIPPED),
        "an edit does not take a later stage's status back (its new allocation would)"
    );
    // ...and the original events replayed afterwards do not bring them back.
    apply_events(store, &sample::order(i, BASE_MS)).await;
    let again = views::order_view(store, &created.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.lines.len(), 1);
    assert!(again.reservations.is_empty());

    // An order whose creation time changes (a channel that omits it gets
    // its update time) is listed once, under the new time.
    let i = 2u64;
    let SinkEvent::Order(created) = sample::order(i, BASE_MS)[0].clone() else {
        unreachable!()
    };
    let mut moved = created.clone();
    moved.kind = OrderEventKind::Updated;
    moved.occurred_at += 7_200_000;
    moved.order.created_at += 7_200_000;
    moved.event_id = format!("{}:moved/0", created.order_id);
    apply_events(store, &[SinkEvent::Order(moved.clone())]).await;
    // The older version replayed after it changes nothing either.
    apply_events(store, &[SinkEvent::Order(created.clone())]).await;
    let listed = views::list_orders(
        store,
        &views::OrderQuery {
            limit: 500,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let entries: Vec<_> = listed
        .orders
        .iter()
        .filter(|o| o.order_id == created.order_id)
        .collect();
    assert_eq!(entries.len(), 1, "listed once: {entries:?}");
    assert_eq!(entries[0].created_at, moved.order.created_at);
    let v = views::order_view(store, &created.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v.status.as_deref(),
        Some(status::SHIPPED),
        "a later update does not regress the status"
    );

    // Lookup by tracking number.
    let label = events
        .iter()
        .find_map(|e| match e {
            SinkEvent::Labeled(l) => Some(l.clone()),
            _ => None,
        })
        .unwrap();
    let t = store
        .tracking(&label.tracking_number)
        .await
        .unwrap()
        .expect("tracking row");
    assert_eq!(
        (t.order_id.as_str(), t.shipment_id.as_str()),
        (label.order_id.as_str(), label.shipment_id.as_str())
    );
    assert!(store.tracking("no-such-number").await.unwrap().is_none());

    // Inventory: levels of the highest seq, whatever the arrival order.
    let sku = "TEST-SKU-1";
    let mv = |seq: i64, on_hand: i32| {
        let mut m: StockMovement = conveyor_schemas::samples::stock_movement(seq as u64, BASE_MS);
        m.event_id = format!("test-move/{seq}");
        m.sku = sku.into();
        m.warehouse_id = "AUS-1".into();
        m.seq = seq;
        m.on_hand = on_hand;
        SinkEvent::Movement(m)
    };
    apply_events(store, &[mv(2, 20), mv(3, 30), mv(1, 10)]).await;
    let inv = views::inventory_view(store, sku, 10)
        .await
        .unwrap()
        .expect("levels");
    assert_eq!(inv.warehouses.len(), 1);
    assert_eq!(inv.warehouses[0].on_hand, 30, "the highest seq wins");
    let seqs: Vec<i64> = inv.movements.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![3, 2, 1], "movements newest first");
    assert!(views::inventory_view(store, "NO-SUCH-SKU", 10)
        .await
        .unwrap()
        .is_none());

    // Exceptions by day.
    // And dead letters, each an exception of its own (`dlq:<event id>`).
    let raised = events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Exception(_) | SinkEvent::Dlq(_)))
        .count();
    let listed = store.exceptions_on("2026-11-27").await.unwrap();
    assert_eq!(listed.len(), raised);
    let dead = events
        .iter()
        .find_map(|e| match e {
            SinkEvent::Dlq(d) => Some(d),
            _ => None,
        })
        .expect("the sample has dead letters");
    let row = store
        .exception(&format!("dlq:{}", dead.event_id))
        .await
        .unwrap()
        .expect("a dead letter is in the queue");
    assert_eq!(
        (row.stage.as_str(), row.code.as_str(), row.reason.as_str()),
        ("normalize", "dlq_validation", dead.reason.as_str())
    );
    assert_eq!(
        (
            row.source_topic.as_str(),
            row.source_partition,
            row.source_offset
        ),
        (
            dead.source_topic.as_str(),
            dead.source_partition,
            dead.source_offset
        )
    );
    // A label or sync-back dead letter is an exception's twin: not twice.
    let mut twin = dead.clone();
    twin.stage = "label".into();
    twin.event_id = "label:shipments.planned:0:1".into();
    twin.error_kind = conveyor_schemas::records::ErrorKind::Processing;
    apply_events(store, &[SinkEvent::Dlq(twin)]).await;
    assert!(store
        .exception("dlq:label:shipments.planned:0:1")
        .await
        .unwrap()
        .is_none());
    assert!(store.exceptions_on("2001-01-01").await.unwrap().is_empty());

    // Paging the order list: every order once, in creation order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = views::list_orders(
            store,
            &views::OrderQuery {
                limit: 7,
                cursor: cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        seen.extend(page.orders.iter().map(|o| o.order_id.clone()));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an order listed twice");
    assert_eq!(unique.len(), 60, "every order listed");
    // Filters: by channel and status, and since.
    let shopify_shipped = views::list_orders(
        store,
        &views::OrderQuery {
            channel: Some("shopify".into()),
            status: Some(status::SHIPPED.into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!shopify_shipped.orders.is_empty());
    assert!(shopify_shipped
        .orders
        .iter()
        .all(|o| o.channel == "shopify" && o.status.as_deref() == Some(status::SHIPPED)));
    let late = views::list_orders(
        store,
        &views::OrderQuery {
            since: Some(BASE_MS + 50 * sample::ORDER_SPACING_MS),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        late.orders.len(),
        11,
        "orders 50..60, and order 2 whose creation moved 2 h later"
    );

    console(store, &events).await;
}

/// The created event of sample order `i`, edited as `edit` at `later_ms`
/// after it (a newer version).
fn edited(i: u64, later_ms: i64, tag: &str, edit: impl FnOnce(&mut OrderEvent)) -> SinkEvent {
    let SinkEvent::Order(mut e) = sample::order(i, BASE_MS)[0].clone() else {
        unreachable!("a sample order starts with its order event")
    };
    e.kind = OrderEventKind::Updated;
    e.occurred_at += later_ms;
    e.version = e.occurred_at;
    e.order.updated_at = e.occurred_at;
    e.event_id = format!("{}:{tag}/0", e.order_id);
    edit(&mut e);
    SinkEvent::Order(e)
}

async fn found<S: OperationalStore>(store: &S, by: SearchField, value: &str) -> Vec<String> {
    store.find_orders(by, value, 100).await.expect("search")
}

/// What the operator console reads (after [`behaviour`]'s sample orders).
async fn console<S: OperationalStore>(store: &S, events: &[SinkEvent]) {
    // An exception by id and by day, with the failed record's coordinates.
    let first = events
        .iter()
        .find_map(|e| match e {
            SinkEvent::Exception(x) => Some(x.clone()),
            _ => None,
        })
        .expect("the sample raises an exception");
    let id = first.exception_id.clone();
    let day1 = day_of(first.raised_at);
    let row = store
        .exception(&id)
        .await
        .unwrap()
        .expect("an exception by id");
    assert_eq!(
        (
            row.source_topic.as_str(),
            row.source_partition,
            row.source_offset
        ),
        (
            first.source_topic.as_str(),
            first.source_partition,
            first.source_offset
        )
    );
    assert!(store
        .exception("no-such-exception")
        .await
        .unwrap()
        .is_none());
    let listed = views::exceptions_view(store, &day1).await.unwrap();
    let entry = listed
        .exceptions
        .iter()
        .find(|x| x.row.exception_id == id)
        .expect("listed on its day");
    assert!(entry.open && entry.state.is_none(), "{entry:?}");
    assert_eq!(entry.row, row);

    // Raised again the next day (a retry that failed again): the lookup
    // by id shows the latest raising; each day lists its own.
    let mut again = first.clone();
    again.event_id = format!("{}:exception-again/0", first.order_id);
    again.raised_at += 86_400_000;
    again.source_offset += 1_000;
    again.reason = "the carrier still cannot deliver to this address".into();
    apply_events(store, &[SinkEvent::Exception(again.clone())]).await;
    // The older raising replayed later does not take the lookup back.
    apply_events(store, &[SinkEvent::Exception(first.clone())]).await;
    let latest = store.exception(&id).await.unwrap().unwrap();
    assert_eq!(
        (latest.raised_at, latest.source_offset, latest.day.as_str()),
        (
            again.raised_at,
            again.source_offset,
            day_of(again.raised_at).as_str()
        ),
        "the latest raising wins"
    );
    let day2 = day_of(again.raised_at);
    for (day, raised_at) in [(&day1, first.raised_at), (&day2, again.raised_at)] {
        let on: Vec<_> = store
            .exceptions_on(day)
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.exception_id == id)
            .collect();
        assert_eq!(on.len(), 1, "{day}: {on:?}");
        assert_eq!(on[0].raised_at, raised_at);
    }

    // An operator retries between the two raisings; the action arrives
    // twice (a re-submission, a redelivery) and counts once.
    let retry = OperatorAction {
        event_id: "test-action-retry".into(),
        action_id: "test-action-retry".into(),
        exception_id: id.clone(),
        order_id: first.order_id.clone(),
        shipment_id: first.shipment_id.clone(),
        kind: ActionKind::Retry,
        actor: "alice".into(),
        role: "operator".into(),
        reason: "address corrected with the customer".into(),
        detail: "ship-to address edited (street1, postal_code); re-published to shipments.planned"
            .into(),
        at: first.raised_at + 3_600_000,
    };
    let history_before = store.history(&first.order_id).await.unwrap().len();
    let twice = [
        SinkEvent::Action(retry.clone()),
        SinkEvent::Action(retry.clone()),
    ];
    apply_events(store, &twice).await;
    apply_events(store, &twice[..1]).await;
    let day_of_retry = day_of(retry.at);
    let actions = store.actions_on(&day_of_retry).await.unwrap();
    let mine: Vec<_> = actions
        .iter()
        .filter(|a| a.action_id == retry.action_id)
        .collect();
    assert_eq!(mine.len(), 1, "an action applied twice is there once");
    assert_eq!(
        (
            mine[0].kind.as_str(),
            mine[0].actor.as_str(),
            mine[0].role.as_str(),
            mine[0].reason.as_str(),
            mine[0].detail.as_str(),
            mine[0].at,
        ),
        (
            "RETRY",
            "alice",
            "operator",
            retry.reason.as_str(),
            retry.detail.as_str(),
            retry.at
        )
    );
    let history = store.history(&first.order_id).await.unwrap();
    assert_eq!(
        history.len(),
        history_before + 1,
        "one history entry for the action"
    );
    let console_entry = history
        .iter()
        .find(|h| h.stage == "console")
        .expect("the action in the order's history");
    assert_eq!(console_entry.status, "RETRY");
    assert!(
        console_entry
            .detail
            .starts_with("alice (operator) retried: "),
        "{console_entry:?}"
    );
    // The first raising was handled; the second (later than the retry)
    // is open, with the retry as its last state.
    let v = views::exceptions_view(store, &day1).await.unwrap();
    let handled = v
        .exceptions
        .iter()
        .find(|x| x.row.exception_id == id)
        .unwrap();
    assert!(!handled.open);
    assert_eq!(
        handled.state.as_ref().map(|s| s.state.as_str()),
        Some(state::RETRIED)
    );
    let now = views::exception_view(store, &id).await.unwrap().unwrap();
    assert!(now.open, "raised again after the retry: {now:?}");
    assert_eq!(
        now.state
            .as_ref()
            .map(|s| (s.actor.as_str(), s.action_id.as_str())),
        Some(("alice", "test-action-retry"))
    );

    // Then resolved; the older retry replayed afterwards does not undo it.
    let resolve = OperatorAction {
        event_id: "test-action-resolve".into(),
        action_id: "test-action-resolve".into(),
        kind: ActionKind::Resolve,
        actor: "bob".into(),
        role: "admin".into(),
        reason: "customer collects at the depot".into(),
        detail: "marked resolved".into(),
        at: again.raised_at + 60_000,
        ..retry.clone()
    };
    apply_events(store, &[SinkEvent::Action(resolve.clone())]).await;
    apply_events(store, &[SinkEvent::Action(retry.clone())]).await;
    let states = store
        .exception_states(&[id.clone(), "no-such-exception".into()])
        .await
        .unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[&id].state, state::RESOLVED, "the newest action wins");
    assert_eq!(states[&id].actor, "bob");
    assert!(
        !views::exception_view(store, &id)
            .await
            .unwrap()
            .unwrap()
            .open
    );
    let on_day2 = store.actions_on(&day_of(resolve.at)).await.unwrap();
    assert!(on_day2.iter().any(|a| a.action_id == resolve.action_id));
    assert!(
        on_day2.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    assert!(store.actions_on("2001-01-01").await.unwrap().is_empty());

    alerts(store).await;
    inventory_pages(store).await;
    search(store, events).await;
}

async fn alerts<S: OperationalStore>(store: &S) {
    let sku = "ALERT-SKU-1";
    let alert = |n: i64, warehouse: Option<&str>, kind: AlertKind| {
        SinkEvent::Alert(InventoryAlert {
            event_id: format!("test-alert:{n}"),
            sku: sku.into(),
            warehouse_id: warehouse.map(str::to_string),
            kind,
            available: 10 - n as i32,
            reorder_point: 5,
            occurred_at: BASE_MS + n * 60_000,
        })
    };
    let listed = |all: Vec<super::model::AlertRow>| -> Vec<(String, String)> {
        all.into_iter()
            .filter(|a| a.sku == sku)
            .map(|a| (a.warehouse_id, a.kind))
            .collect()
    };
    apply_events(
        store,
        &[
            alert(1, Some("AUS-1"), AlertKind::LowStock),
            alert(2, None, AlertKind::OutOfStock),
        ],
    )
    .await;
    assert_eq!(
        listed(store.alerts(500).await.unwrap()),
        [
            (ALL_WAREHOUSES.to_string(), "OUT_OF_STOCK".to_string()),
            ("AUS-1".to_string(), "LOW_STOCK".to_string())
        ],
        "by SKU then warehouse, the total first"
    );
    // Recovered; the older alert replayed afterwards does not bring it
    // back, a newer one does.
    apply_events(
        store,
        &[
            alert(3, Some("AUS-1"), AlertKind::Recovered),
            alert(1, Some("AUS-1"), AlertKind::LowStock),
        ],
    )
    .await;
    assert_eq!(
        listed(store.alerts(500).await.unwrap()),
        [(ALL_WAREHOUSES.to_string(), "OUT_OF_STOCK".to_string())],
        "a recovered alert is not listed"
    );
    let current = listed(store.sku_alerts(sku).await.unwrap());
    assert!(
        current.contains(&("AUS-1".to_string(), "RECOVERED".to_string())),
        "{current:?}"
    );
    apply_events(store, &[alert(4, Some("AUS-1"), AlertKind::OutOfStock)]).await;
    assert_eq!(listed(store.alerts(500).await.unwrap()).len(), 2);
    let all = store.alerts(500).await.unwrap();
    assert!(all.iter().all(|a| a.kind != "RECOVERED"));
    assert!(all
        .windows(2)
        .all(|w| (&w[0].sku, &w[0].warehouse_id) < (&w[1].sku, &w[1].warehouse_id)));
    assert_eq!(store.alerts(1).await.unwrap().len(), 1);
}

async fn inventory_pages<S: OperationalStore>(store: &S) {
    // SKUs that are prefixes of each other, two warehouses each.
    let mut moves = Vec::new();
    for (n, sku) in ["PAGE-A", "PAGE-A-1", "PAGE-AB"].into_iter().enumerate() {
        for (w, warehouse) in ["AUS-1", "PDX-1"].into_iter().enumerate() {
            let mut m: StockMovement = conveyor_schemas::samples::stock_movement(n as u64, BASE_MS);
            m.event_id = format!("test-page/{sku}/{warehouse}");
            m.sku = sku.into();
            m.warehouse_id = warehouse.into();
            m.seq = (w + 1) as i64;
            moves.push(SinkEvent::Movement(m));
        }
    }
    apply_events(store, &moves).await;
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = views::inventory_page(
            store,
            &views::InventoryQuery {
                after: after.clone(),
                limit: 2,
            },
        )
        .await
        .unwrap();
        let skus: BTreeSet<&str> = page.levels.iter().map(|l| l.sku.as_str()).collect();
        assert!(skus.len() <= 2, "{skus:?}");
        for sku in &skus {
            let whole = store.levels(sku).await.unwrap().len();
            let here = page.levels.iter().filter(|l| l.sku == *sku).count();
            assert_eq!(here, whole, "{sku}: every warehouse on one page");
        }
        assert!(page
            .levels
            .windows(2)
            .all(|w| (&w[0].sku, &w[0].warehouse_id) < (&w[1].sku, &w[1].warehouse_id)));
        for sku in skus {
            if seen.last().map(String::as_str) != Some(sku) {
                seen.push(sku.to_string());
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ascending, no SKU twice: {seen:?}"
    );
    for sku in ["PAGE-A", "PAGE-A-1", "PAGE-AB", "TEST-SKU-1", "PKM-SV1-ETB"] {
        assert!(seen.iter().any(|s| s == sku), "{sku} missing: {seen:?}");
    }
    // After a SKU: the SKUs it is a prefix of follow.
    let page = views::inventory_page(
        store,
        &views::InventoryQuery {
            after: Some("PAGE-A".into()),
            limit: 1,
        },
    )
    .await
    .unwrap();
    assert!(page.levels.iter().all(|l| l.sku == "PAGE-A-1"), "{page:?}");
    assert_eq!(page.levels.len(), 2);
    assert_eq!(page.next.as_deref(), Some("PAGE-A-1"));
}

async fn search<S: OperationalStore>(store: &S, events: &[SinkEvent]) {
    let (n3, n4, n5) = (order_id(3), order_id(4), order_id(5));
    // By number: `#` optional, any case; by email: any case.
    assert_eq!(
        found(store, SearchField::Number, "#100005").await,
        [n5.as_str()]
    );
    assert_eq!(
        found(store, SearchField::Number, " 100005").await,
        [n5.as_str()]
    );
    assert_eq!(
        found(store, SearchField::Email, "Customer5@EXAMPLE.com").await,
        [n5.as_str()]
    );
    assert!(found(store, SearchField::Number, "#").await.is_empty());
    assert!(found(store, SearchField::Email, "nobody@example.com")
        .await
        .is_empty());

    // An edit changes the number and the email: found by the new ones,
    // not by the old; the older version replayed changes nothing.
    let edit = edited(3, 5 * 3_600_000, "renumbered", |e| {
        e.order.external_number = Some("#AB-77".into());
        e.order.customer.email = Some("Jane.Doe@Example.com".into());
    });
    apply_events(store, &[edit]).await;
    apply_events(store, &sample::order(3, BASE_MS)[..1]).await;
    assert_eq!(
        found(store, SearchField::Number, "ab-77").await,
        [n3.as_str()]
    );
    assert_eq!(
        found(store, SearchField::Number, "#AB-77").await,
        [n3.as_str()]
    );
    assert_eq!(
        found(store, SearchField::Email, "jane.doe@example.com").await,
        [n3.as_str()]
    );
    assert!(
        found(store, SearchField::Number, "#100003")
            .await
            .is_empty(),
        "a stale number"
    );
    assert!(
        found(store, SearchField::Email, "customer3@example.com")
            .await
            .is_empty(),
        "a stale email"
    );
    // Two orders of one customer: newest first.
    let same = edited(4, 5 * 3_600_000, "same-customer", |e| {
        e.order.customer.email = Some("JANE.DOE@example.com".into());
    });
    apply_events(store, &[same]).await;
    assert_eq!(
        found(store, SearchField::Email, "jane.doe@example.com").await,
        [n4.as_str(), n3.as_str()],
        "by creation time, newest first"
    );
    assert_eq!(
        store
            .find_orders(SearchField::Email, "jane.doe@example.com", 1)
            .await
            .unwrap(),
        [n4.as_str()]
    );

    // By SKU: the orders whose current lines hold it, newest lines first.
    let with_sku = |i: u64, later_h: i64, tag: &str, sku: &str| {
        let sku = sku.to_string();
        edited(i, later_h * 3_600_000, tag, move |e| {
            e.order.lines.truncate(1);
            e.order.lines[0].sku = sku;
        })
    };
    apply_events(
        store,
        &[
            with_sku(8, 5, "sku-a", "SEARCH-SKU"),
            with_sku(9, 6, "sku-a", "SEARCH-SKU"),
        ],
    )
    .await;
    assert_eq!(
        found(store, SearchField::Sku, "SEARCH-SKU").await,
        [order_id(9), order_id(8)]
    );
    // Order 8's lines change again: it no longer holds the SKU. Order 10
    // gets it later than order 9. Order 8's older lines replayed change
    // nothing.
    apply_events(
        store,
        &[
            with_sku(8, 7, "sku-b", "OTHER-SKU"),
            with_sku(10, 8, "sku-a", "SEARCH-SKU"),
            with_sku(8, 5, "sku-a", "SEARCH-SKU"),
        ],
    )
    .await;
    assert_eq!(
        found(store, SearchField::Sku, "SEARCH-SKU").await,
        [order_id(10), order_id(9)],
        "a stale SKU entry is not returned"
    );
    assert_eq!(
        found(store, SearchField::Sku, "OTHER-SKU").await,
        [order_id(8)]
    );
    // A sample SKU: every order found holds it now, each once.
    let sku = "PKM-SV1-ETB";
    let hits = store.find_orders(SearchField::Sku, sku, 500).await.unwrap();
    let unique: BTreeSet<&String> = hits.iter().collect();
    assert_eq!(unique.len(), hits.len(), "an order found twice");
    let mut holding = 0;
    for i in 0..60 {
        let id = order_id(i);
        let holds = store.lines(&id).await.unwrap().iter().any(|l| l.sku == sku);
        holding += usize::from(holds);
        assert_eq!(hits.contains(&id), holds, "order {i}");
    }
    assert_eq!(hits.len(), holding);

    // The API's search: summaries, and by tracking number.
    let by_number = views::search(
        store,
        &views::SearchQuery {
            by: Some("number".into()),
            q: Some("#AB-77".into()),
            limit: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(by_number.orders.len(), 1);
    assert_eq!(by_number.orders[0].order_id, n3);
    assert_eq!(
        by_number.orders[0].external_number.as_deref(),
        Some("#AB-77")
    );
    let label = events
        .iter()
        .find_map(|e| match e {
            SinkEvent::Labeled(l) => Some(l.clone()),
            _ => None,
        })
        .unwrap();
    let by_tracking = views::search(
        store,
        &views::SearchQuery {
            by: Some("tracking".into()),
            q: Some(label.tracking_number.clone()),
            limit: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        by_tracking
            .orders
            .iter()
            .map(|o| o.order_id.as_str())
            .collect::<Vec<_>>(),
        [label.order_id.as_str()]
    );
    for (by, q) in [
        (None, Some("x")),
        (Some("phone"), Some("x")),
        (Some("sku"), None),
    ] {
        let r = views::search(
            store,
            &views::SearchQuery {
                by: by.map(str::to_string),
                q: q.map(str::to_string),
                limit: 0,
            },
        )
        .await;
        assert!(
            matches!(r, Err(views::QueryError::Invalid(_))),
            "{by:?} {q:?}"
        );
    }
}

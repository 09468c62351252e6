//! The behaviour every [`OperationalStore`] must show, as one suite that
//! the embedded store's unit tests and the Scylla integration test
//! (tests/scylla_store.rs, when SCYLLA_URI is set) both run: the status a
//! user sees, replays that change nothing, older events that never win,
//! row sets replaced whole, lookups by tracking number, inventory levels
//! by sequence, paging without gaps or repeats. Panics on a violation.

use std::collections::BTreeSet;

use conveyor_schemas::records::{
    AllocationResult, AllocationStatus, OrderEventKind, StockMovement,
};

use super::model::{mutations, status};
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
    let raised = events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Exception(_)))
        .count();
    let listed = store.exceptions_on("2026-11-27").await.unwrap().len();
    assert_eq!(listed, raised);
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
}

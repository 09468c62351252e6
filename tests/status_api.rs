//! The order status API over the embedded operational store, and the
//! operational sink (`conveyor sink scylla`, embedded backend) against the
//! real broker: killed mid-stream, restarted, nothing lost or doubled.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_sinks::event::SinkEvent;
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::testkit::{self, BASE_MS};
use conveyor_sinks::ops::views;
use conveyor_sinks::sample;
use serde_json::Value;

async fn serve(store: Arc<EmbeddedStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, conveyor_sinks::status_api::router(store))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// (status, JSON body); (0, null) while nothing listens.
async fn get(base: &str, path: &str) -> (u16, Value) {
    let Ok(r) = reqwest::get(format!("{base}{path}")).await else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_orders_inventory_tracking_and_exceptions_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("ops.redb")).unwrap());
    testkit::load(store.as_ref(), 0..200).await;
    let base = serve(store).await;

    // One order: status, details, lines, shipments, history.
    let id = testkit::order_id(10);
    let (code, o) = get(&base, &format!("/orders/{id}")).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["status"], "SHIPPED");
    assert_eq!(o["details"]["channel"], "shopify");
    assert!(!o["lines"].as_array().unwrap().is_empty());
    let s = &o["shipments"][0];
    assert!(s["label"]["tracking_number"].is_string(), "{s}");
    assert_eq!(s["sync"]["sync_outcome"], "CONFIRMED");
    assert!(o["history"].as_array().unwrap().len() >= 5);

    let (code, e) = get(&base, "/orders/shopify:nope").await;
    assert_eq!(code, 404);
    assert_eq!(e["error"], "no order `shopify:nope`");

    // The list, paged, and filtered.
    let (code, page) = get(&base, "/orders?limit=15").await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["orders"].as_array().unwrap().len(), 15);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, page2) = get(
        &base,
        &format!("/orders?limit=15&cursor={}", urlencode(&next)),
    )
    .await;
    assert_ne!(
        page2["orders"][0]["order_id"],
        page["orders"][0]["order_id"]
    );
    let (_, backordered) = get(&base, "/orders?status=BACKORDERED&limit=500").await;
    let n = backordered["orders"].as_array().unwrap().len();
    assert_eq!(n, (0..200).filter(|i| i % 10 == 7 && i % 13 != 6).count());
    assert!(
        backordered["next"].is_null(),
        "the end of the list has no cursor"
    );
    let since = BASE_MS + 190 * sample::ORDER_SPACING_MS;
    let (_, late) = get(&base, &format!("/orders?since={since}&channel=amazon")).await;
    assert_eq!(late["orders"].as_array().unwrap().len(), 2, "{late}");

    for (path, says) in [
        ("/orders?limit=9999", "limit must be at most 500"),
        ("/orders?status=LOST", "unknown status `LOST`"),
        ("/orders?cursor=zzz", "bad cursor"),
        ("/exceptions", "give the day"),
        ("/exceptions?day=27-11-2026", "YYYY-MM-DD"),
    ] {
        let (code, e) = get(&base, path).await;
        assert_eq!(code, 400, "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{path}: {e}");
    }
    let (code, _) = get(&base, "/orders?since=yesterday").await;
    assert_eq!(code, 400, "a since that is not millis");

    // Inventory and tracking.
    let (code, inv) = get(&base, "/inventory/PKM-SV1-ETB").await;
    assert_eq!(code, 200, "{inv}");
    assert!(!inv["warehouses"].as_array().unwrap().is_empty());
    assert!(inv["movements"].as_array().unwrap().len() <= 20);
    let (code, _) = get(&base, "/inventory/NO-SUCH-SKU").await;
    assert_eq!(code, 404);
    let tracking = s["label"]["tracking_number"].as_str().unwrap();
    let (code, t) = get(&base, &format!("/tracking/{tracking}")).await;
    assert_eq!(code, 200);
    assert_eq!(t["order_id"], id.as_str());
    let (code, _) = get(&base, "/tracking/1Z-NOPE").await;
    assert_eq!(code, 404);
    let (code, x) = get(&base, "/exceptions?day=2026-11-27").await;
    assert_eq!(code, 200);
    assert_eq!(
        x["exceptions"].as_array().unwrap().len(),
        6,
        "orders 42 and 142, and the dead letters of 11, 61, 111 and 161"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operational_sink_killed_mid_stream_loses_and_doubles_nothing() {
    let mut config = common::config();
    common::require_broker(&config).await;
    let ns = common::unique("opsink");
    config.topics.namespace = ns.clone();
    config.topics.partitions = 4;
    common::sinks::create_topics(&config).await;
    let events = sample::orders(0..2_000, BASE_MS);
    common::sinks::publish(&config, &events, vec![]).await;

    // What a direct, crash-free apply gives.
    let direct_dir = tempfile::tempdir().unwrap();
    let direct = EmbeddedStore::open(&direct_dir.path().join("ops.redb")).unwrap();
    testkit::apply_events(&direct, &events).await;

    let dir = tempfile::Builder::new()
        .prefix("ops-sink-")
        .tempdir()
        .unwrap()
        .keep();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(&str, String)> = vec![
        ("CONVEYOR_TOPICS__NAMESPACE", ns.clone()),
        ("CONVEYOR_TOPICS__PARTITIONS", "4".into()),
        (
            "CONVEYOR_STORE__PATH",
            dir.join("ops.redb").display().to_string(),
        ),
        ("CONVEYOR_STORE__BATCH_MAX_RECORDS", "500".into()),
        (
            "CONVEYOR_HTTP__STATUS_API_BIND",
            format!("127.0.0.1:{port}"),
        ),
    ];
    let spawn = |log: &str| {
        common::process::Process::spawn(
            &["sink", "scylla", "--observability-bind", "127.0.0.1:0"],
            &env,
            &dir.join(log),
        )
    };
    let listed = |base: String| async move {
        let (code, page) = get(&base, "/orders?limit=500").await;
        if code == 200 {
            page["orders"].as_array().map_or(0, Vec::len)
        } else {
            0
        }
    };

    // Killed once the API shows some orders.
    let sink = spawn("sink-1.log");
    let started = Instant::now();
    while listed(base.clone()).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing written: see {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.kill9();

    // Restarted: catches up.
    let sink = spawn("sink-2.log");
    let ids: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            SinkEvent::Order(o) => Some(o.order_id.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let started = Instant::now();
    loop {
        let (code, o) = get(&base, &format!("/orders/{}", testkit::order_id(1_999))).await;
        if code == 200 && !o["shipments"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no catch-up: see {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every order's view equals the crash-free one.
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        let want =
            serde_json::to_value(views::order_view(&direct, id).await.unwrap().unwrap()).unwrap();
        loop {
            let (code, got) = get(&base, &format!("/orders/{id}")).await;
            if code == 200 && got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} differs:\n got  {got}\n want {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let out = String::from_utf8_lossy(&sink.stop()).to_string();
    assert!(out.contains("sink-scylla: "), "{out}");
}

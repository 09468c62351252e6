//! Labels against the real broker and registry, with the carrier simulator
//! in this process and `conveyor run label` as a child process SIGKILLed
//! five times while it buys 5,000 labels (4 partitions):
//!
//! - the simulator sold exactly one label per shipment, never two (G2),
//!   though the job buys a batch's labels concurrently (`label.concurrency`,
//!   against an API that takes 10 ms a call), never more at once than that;
//! - every planned shipment has a labeled record, every re-emission of it
//!   identical (but its event id), tracking numbers unique;
//! - the three documents of each shipment are in the document store under
//!   their deterministic names, with the recorded SHA-256;
//! - an undeliverable address goes to the DLQ with the carrier's reason,
//!   and nothing else does.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::allocation::*;
use conveyor_connectors::simulate::carrier;
use conveyor_processors::route::sample;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{
    DlqRecord, ExceptionRecord, LabelStatus, LabeledShipment, PlanStatus, PlannedShipment,
};
use sha2::{Digest, Sha256};

const SHIPMENTS: usize = 5_000;

/// 5,000 plans from a seeded workload, each shipped from its nearest
/// warehouse; the first two go to an address without a street.
fn plans(s: &Setup) -> Vec<PlannedShipment> {
    let out = sample::plans(&s.config, 5, SHIPMENTS, |i, order| {
        if i < 2 {
            order.ship_to.line1 = String::new();
        }
    });
    assert_eq!(out.len(), SHIPMENTS);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_five_times_while_buying_5000_labels_buys_each_exactly_once() {
    let s = Setup::new("label").await;
    let token = s.config.label.api_token.expose().to_string();
    let sim = Arc::new(carrier::Sim::new(&token).with_latency(Duration::from_millis(10)));
    let stop = tokio_util::sync::CancellationToken::new();
    let (addr, _server) = carrier::serve(sim.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
        .await
        .unwrap();

    let plans = plans(&s);
    // Route cancels three plans after they were planned (their allocation
    // was superseded): their labels are voided. Plus the cancel of a
    // refused plan, which has nothing to void.
    let cancels: Vec<PlannedShipment> = [2usize, 3, 4, 0]
        .iter()
        .map(|&i| {
            let mut c = plans[i].clone();
            c.event_id = format!("{}/cancel", c.event_id);
            c.status = PlanStatus::Cancelled;
            c.carrier.clear();
            c.service.clear();
            c
        })
        .collect();
    let codec = Codec::new(&s.config.schema_registry.url).unwrap();
    let producer = Producer::new(&s.config.kafka, "test").unwrap();
    let topic = s.topic("shipments_planned");
    for p in plans.iter().chain(&cancels) {
        let bytes = codec.encode(&topic, p).await.unwrap();
        producer
            .send(
                &OutRecord::new(&topic)
                    .key(p.order_id.clone())
                    .payload(bytes),
            )
            .await
            .unwrap();
    }

    let state = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}");
    let start = |n: usize| {
        Instance::stage_with(
            "label",
            &s.ns,
            state.path(),
            &logs.path().join(format!("label-{n}.log")),
            &[
                ("CONVEYOR_LABEL__API_URL", OsStr::new(&url)),
                ("CONVEYOR_LABEL__DOCUMENTS", docs.path().as_os_str()),
                ("CONVEYOR_LABEL__RATE_PER_SEC", OsStr::new("1000")),
                ("CONVEYOR_LABEL__BURST", OsStr::new("100")),
                ("CONVEYOR_LABEL__CONCURRENCY", OsStr::new("8")),
            ],
        )
    };
    let mut inst = start(0);
    for (n, at) in [(1, 400), (2, 1200), (3, 2000), (4, 2800), (5, 3600)] {
        let deadline = Instant::now() + Duration::from_secs(600);
        while (sim.purchases().purchases as usize) < at {
            assert!(Instant::now() < deadline, "no progress to {at} labels");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inst.kill9();
        eprintln!("label killed at {} purchases", sim.purchases().purchases);
        inst = start(n);
    }
    // Until every shipment is labeled or dead-lettered, and three voided.
    let deadline = Instant::now() + Duration::from_secs(600);
    while s.count("shipments_labeled") < (SHIPMENTS - 2 + 3) as i64
        || s.count("orders_dlq") < 2
        || sim.purchases().refunds < 3
    {
        assert!(Instant::now() < deadline, "labels did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let summary = inst.stop();
    eprintln!("{summary:?}");

    // The simulator sold one label per shipment.
    let sold = sim.purchases();
    eprintln!("{sold:?}");
    assert_eq!(sold.duplicates, 0, "a shipment was sold two labels");
    assert_eq!(sold.purchases, (SHIPMENTS - 2) as u64);
    assert_eq!(sold.shipments, (SHIPMENTS - 2) as u64);
    assert_eq!(sold.refunds, 3, "each cancelled label refunded once");
    assert!(
        (2..=8).contains(&sold.max_in_flight),
        "purchases overlap, at most label.concurrency at once: {}",
        sold.max_in_flight
    );

    // Every shipment labeled; re-emissions identical; tracking unique.
    let labeled: Vec<LabeledShipment> = decode_all(&s, "shipments_labeled").await;
    let (voided, labeled): (Vec<LabeledShipment>, Vec<LabeledShipment>) = labeled
        .into_iter()
        .partition(|l| l.status == LabelStatus::Voided);
    let voided: BTreeMap<&str, &LabeledShipment> =
        voided.iter().map(|l| (l.shipment_id.as_str(), l)).collect();
    let cancelled: Vec<&str> = cancels[..3]
        .iter()
        .map(|c| c.shipment_id.as_str())
        .collect();
    assert_eq!(
        voided
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        cancelled.iter().copied().collect()
    );
    let mut by_shipment: BTreeMap<String, LabeledShipment> = BTreeMap::new();
    for l in labeled {
        let mut l = l;
        l.event_id.clear();
        if let Some(first) = by_shipment.insert(l.shipment_id.clone(), l.clone()) {
            assert_eq!(first, l, "two different labels for {}", l.shipment_id);
        }
    }
    assert_eq!(by_shipment.len(), SHIPMENTS - 2);
    let tracking: std::collections::BTreeSet<&str> = by_shipment
        .values()
        .map(|l| l.tracking_number.as_str())
        .collect();
    assert_eq!(tracking.len(), SHIPMENTS - 2);
    for p in &plans[2..] {
        let l = &by_shipment[&p.shipment_id];
        for d in [&l.label, &l.packing_slip, l.combined.as_ref().unwrap()] {
            let path = d.uri.strip_prefix("file://").unwrap();
            let bytes = std::fs::read(path).unwrap();
            let sha: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sha, d.sha256, "{path}");
            assert!(bytes.starts_with(b"%PDF-"));
        }
        assert_eq!(l.combined.as_ref().unwrap().pages, l.packing_slip.pages + 1);
        assert_eq!(
            l.lines, p.lines,
            "the parcel's lines travel on for sync-back"
        );
        // A voided label is the label it was, marked VOIDED.
        if let Some(v) = voided.get(p.shipment_id.as_str()) {
            assert_eq!(v.tracking_number, l.tracking_number);
            assert_eq!(v.label, l.label);
        }
    }

    // The two refused plans: dead-lettered, and each an exception an
    // operator can act on (a re-processing after a kill repeats the same
    // ids).
    let dlq: Vec<DlqRecord> = decode_all(&s, "orders_dlq").await;
    let dead: BTreeMap<&str, &DlqRecord> = dlq.iter().map(|d| (d.event_id.as_str(), d)).collect();
    assert_eq!(dead.len(), 2, "{dlq:?}");
    assert!(
        dlq.iter().all(|d| d.reason.contains("Address not found")),
        "{dlq:?}"
    );
    let raised: Vec<ExceptionRecord> = decode_all(&s, "exceptions").await;
    let open: BTreeMap<&str, &ExceptionRecord> = raised
        .iter()
        .map(|e| (e.exception_id.as_str(), e))
        .collect();
    let refused: std::collections::BTreeSet<String> = plans[..2]
        .iter()
        .map(|p| format!("label:{}", p.shipment_id))
        .collect();
    let ids: std::collections::BTreeSet<String> = open.keys().map(|k| k.to_string()).collect();
    assert_eq!(ids, refused);
    for e in open.values() {
        assert_eq!(
            (e.stage.as_str(), e.code.as_str()),
            ("label", "address_invalid")
        );
        assert!(e.reason.contains("Address not found"), "{e:?}");
        assert!(e.action.contains("address"), "{e:?}");
        assert_eq!(e.source_topic, topic);
    }
    stop.cancel();
}

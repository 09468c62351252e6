//! Sync-back against the channel simulators: every parcel told to its
//! channel exactly once, though answers get lost and pushes repeat (a
//! crash between the channel's answer and the commit); refusals named;
//! rate limits waited out. Then the job through the broker: killed with
//! SIGKILL while it works, restarted, nothing told twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::allocation::{decode_all, Instance, Setup};
use conveyor_connectors::simulate::{amazon, ebay, shopify, tiktok};
use conveyor_connectors::syncback::{Channels, Parcel, Pushed};
use conveyor_processors::catalog::Catalog;
use conveyor_runtime::config::{Config, Secret};
use conveyor_runtime::guarded::CallError;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{
    Document, ExceptionRecord, LabelStatus, LabeledShipment, LineQty, Money, Order, SyncOutcome,
    SyncedShipment,
};
use tokio_util::sync::CancellationToken;

const ORDERS: u64 = 30;

/// The four simulators, serving, with the credentials `config` is given.
struct Sims {
    shopify: Arc<shopify::Sim>,
    amazon: Arc<amazon::Sim>,
    tiktok: Arc<tiktok::Sim>,
    ebay: Arc<ebay::Sim>,
    stop: CancellationToken,
}

impl Sims {
    async fn start(config: &mut Config, lose_every: u64) -> Sims {
        let stop = CancellationToken::new();
        let bind = ([127, 0, 0, 1], 0).into();
        let shopify = Arc::new(shopify::Sim::new(ORDERS, "shpat_sync").with_bucket(1000.0, 1000.0));
        let amazon = Arc::new(
            amazon::Sim::new(ORDERS, "amzn-client", "amzn-secret", "Atzr|sync")
                .with_confirm_rate(1000.0, 1000.0),
        );
        let tiktok = Arc::new(
            tiktok::Sim::new(ORDERS, "6sync", "tt-secret", "TTP_sync").with_rate(1000.0, 1000.0),
        );
        let ebay = Arc::new(ebay::Sim::new(
            ORDERS,
            "ebay-client",
            "ebay-secret",
            "v^1.1#r",
        ));
        for l in [
            &shopify.shipments,
            &amazon.shipments,
            &tiktok.shipments,
            &ebay.shipments,
        ] {
            l.lose_every(lose_every);
        }
        let (a, _) = shopify::serve(shopify.clone(), bind, stop.clone())
            .await
            .unwrap();
        let c = &mut config.channels;
        c.shopify.api_url = format!("http://{a}");
        c.shopify.access_token = Secret::new("shpat_sync");
        let (a, _) = amazon::serve(amazon.clone(), bind, stop.clone())
            .await
            .unwrap();
        c.amazon.api_url = format!("http://{a}");
        c.amazon.lwa_url = format!("http://{a}/auth/o2/token");
        c.amazon.client_id = "amzn-client".into();
        c.amazon.client_secret = Secret::new("amzn-secret");
        c.amazon.refresh_token = Secret::new("Atzr|sync");
        let (a, _) = tiktok::serve(tiktok.clone(), bind, stop.clone())
            .await
            .unwrap();
        c.tiktok.api_url = format!("http://{a}");
        c.tiktok.app_key = "6sync".into();
        c.tiktok.app_secrets = vec![Secret::new("tt-secret")];
        c.tiktok.access_token = Secret::new("TTP_sync");
        c.tiktok.api_rate_per_sec = 500.0;
        let (a, _) = ebay::serve(ebay.clone(), bind, stop.clone()).await.unwrap();
        c.ebay.api_url = format!("http://{a}");
        c.ebay.token_url = format!("http://{a}/identity/v1/oauth2/token");
        c.ebay.client_id = "ebay-client".into();
        c.ebay.client_secret = Secret::new("ebay-secret");
        c.ebay.refresh_token = Secret::new("v^1.1#r");
        for ch in ["shopify", "amazon", "tiktok", "ebay"] {
            config.syncback.rate_per_sec.insert(ch.into(), 500.0);
        }
        config.syncback.breaker_failures = 50;
        Sims {
            shopify,
            amazon,
            tiktok,
            ebay,
            stop,
        }
    }

    fn ledger(&self, channel: &str) -> &conveyor_connectors::simulate::ledger::Ledger {
        match channel {
            "shopify" => &self.shopify.shipments,
            "amazon" => &self.amazon.shipments,
            "tiktok" => &self.tiktok.shipments,
            _ => &self.ebay.shipments,
        }
    }
}

/// Order `n` of `channel` as normalize makes it from the simulator's
/// payload (so the lines carry the pipeline's channel line ids).
fn order(channel: &str, n: u64) -> Order {
    let catalog = Catalog::from_skus(
        conveyor_connectors::catalog_load::parse(include_bytes!("../examples/catalog.csv"), 1)
            .unwrap(),
    );
    conveyor_connectors::simulate::example_order(channel, n, &catalog).unwrap()
}

/// The parcels of `order`: its first line, then the rest (two parcels
/// when it has two lines or more).
fn parcels(o: &Order) -> Vec<Parcel> {
    let lines: Vec<LineQty> = o
        .lines
        .iter()
        .map(|l| LineQty {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let groups: Vec<Vec<LineQty>> = if lines.len() > 1 {
        vec![lines[..1].to_vec(), lines[1..].to_vec()]
    } else {
        vec![lines]
    };
    groups
        .into_iter()
        .enumerate()
        .map(|(k, lines)| Parcel {
            shipment_id: format!("{}/AUS-1/{}", o.order_id, k + 1),
            order_id: o.order_id.clone(),
            channel: o.channel.clone(),
            external_order_id: o.external_id.clone(),
            carrier: ["usps", "ups", "fedex"][k % 3].into(),
            service: "ground".into(),
            tracking_number: format!("TRK-{}/{}", o.order_id, k + 1),
            tracking_url: None,
            lines,
            shipped_at: 1_763_800_000_000,
        })
        .collect()
}

fn refused(r: &Option<Result<Pushed, CallError>>) -> Option<&str> {
    match r {
        Some(Err(CallError::Refused(x))) => Some(x.code.as_str()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_told_each_parcel_once_though_answers_are_lost_and_pushes_repeat() {
    let mut config = common::config();
    let sims = Sims::start(&mut config, 4).await;
    let channels = Channels::new(&config);
    for channel in ["shopify", "amazon", "tiktok", "ebay"] {
        let mut told = 0u64;
        let mut expected_refusals = 0u64;
        let mut all = Vec::new();
        for n in 0..ORDERS {
            let o = order(channel, n);
            for p in parcels(&o) {
                // Amazon refuses to confirm its canceled orders (every 13th).
                let canceled = channel == "amazon" && n % 13 == 12;
                let r = channels.push(&p).await;
                if canceled {
                    assert_eq!(refused(&r), Some("channel_refused"), "{channel} {n}: {r:?}");
                    expected_refusals += 1;
                    continue;
                }
                assert!(
                    matches!(
                        r,
                        Some(Ok(Pushed::Confirmed(_) | Pushed::AlreadyConfirmed(_)))
                    ),
                    "{channel} {}: {r:?}",
                    p.shipment_id
                );
                told += 1;
                all.push(p);
            }
        }
        // The same parcels again, as after a crash before the commit: the
        // channel holds them; nothing new is created.
        for p in &all {
            let r = channels.push(p).await;
            match (channel, r) {
                ("amazon", Some(Ok(Pushed::Confirmed(reference)))) => {
                    assert_eq!(
                        reference,
                        conveyor_connectors::syncback::amazon::package_reference(&p.shipment_id)
                    );
                }
                (_, Some(Ok(Pushed::AlreadyConfirmed(_)))) => {}
                (_, other) => panic!("{channel} {} again: {other:?}", p.shipment_id),
            }
        }
        let t = sims.ledger(channel).totals();
        eprintln!("{channel}: {told} parcels told, {expected_refusals} refused, {t:?}");
        assert_eq!(t.shipments, told, "{channel}: one shipment per parcel");
        assert_eq!(
            t.duplicates, 0,
            "{channel}: a tracking number recorded twice"
        );
        assert!(t.lost > 0, "{channel}: the lost-answer fault never fired");

        // Every unit of the first order is shipped: one more parcel of its
        // first line is refused; an order the channel does not have too.
        let mut extra = all[0].clone();
        extra.shipment_id.push_str("-again");
        extra.tracking_number.push_str("-again");
        let code = refused(&channels.push(&extra).await).map(str::to_string);
        // (Shopify closes a fulfillment order whose units are all shipped.)
        let want = match channel {
            "shopify" => "already_fulfilled",
            "tiktok" => "quantity_exceeded",
            _ => "channel_refused",
        };
        assert_eq!(code.as_deref(), Some(want), "{channel}");
        let mut ghost = all[0].clone();
        ghost.external_order_id = "404404404".into();
        ghost.tracking_number = "TRK-ghost".into();
        assert_eq!(
            refused(&channels.push(&ghost).await),
            Some("order_not_found"),
            "{channel}"
        );
        assert_eq!(sims.ledger(channel).totals().shipments, told);
    }

    // CSV orders have no channel API.
    let mut csv = parcels(&order("shopify", 0)).remove(0);
    csv.channel = "csv".into();
    assert!(channels.push(&csv).await.is_none());
    sims.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopify_429s_are_waited_out() {
    let mut config = common::config();
    let sims = Sims::start(&mut config, 0).await;
    // A small bucket leaking 40 calls/s, a client asking for 80/s.
    let shop = Arc::new(shopify::Sim::new(ORDERS, "shpat_sync").with_bucket(4.0, 40.0));
    let (a, _) = shopify::serve(shop.clone(), ([127, 0, 0, 1], 0).into(), sims.stop.clone())
        .await
        .unwrap();
    config.channels.shopify.api_url = format!("http://{a}");
    config.syncback.rate_per_sec.insert("shopify".into(), 80.0);
    let channels = Channels::new(&config);
    let mut tasks = Vec::new();
    let channels = Arc::new(channels);
    for n in 0..8 {
        let c = channels.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for p in parcels(&order("shopify", n)) {
                out.push(c.push(&p).await);
            }
            out
        }));
    }
    for t in tasks {
        for r in t.await.unwrap() {
            assert!(matches!(r, Some(Ok(Pushed::Confirmed(_)))), "{r:?}");
        }
    }
    assert!(shop.counts().1 > 0, "the bucket never overflowed");
    assert_eq!(shop.shipments.totals().duplicates, 0);
    sims.stop.cancel();
}

fn doc(uri: &str) -> Document {
    Document {
        uri: uri.into(),
        content_type: "application/pdf".into(),
        sha256: "0".repeat(64),
        pages: 1,
    }
}

fn labeled(p: &Parcel, order_id: &str) -> LabeledShipment {
    LabeledShipment {
        event_id: format!("{}/label/0", p.shipment_id),
        shipment_id: p.shipment_id.clone(),
        order_id: order_id.into(),
        carrier: p.carrier.clone(),
        service: p.service.clone(),
        tracking_number: p.tracking_number.clone(),
        tracking_url: None,
        label_cost: Money::from_cents(545, conveyor_schemas::records::Currency::USD),
        idempotency_key: format!("k-{}", p.shipment_id),
        label: doc("file:///l.pdf"),
        packing_slip: doc("file:///s.pdf"),
        combined: None,
        labeled_at: p.shipped_at,
        lines: p.lines.clone(),
        status: LabelStatus::Labeled,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_survives_sigkill_and_tells_each_channel_each_parcel_once() {
    let s = Setup::new("syncback").await;
    let mut config = s.config.clone();
    let sims = Sims::start(&mut config, 5).await;

    // Every channel's orders, two parcels for multi-line ones; plus a CSV
    // order (not synced) and a Shopify order the shop does not have.
    let mut records: Vec<LabeledShipment> = Vec::new();
    for channel in ["shopify", "amazon", "tiktok", "ebay"] {
        for n in 0..ORDERS {
            if channel == "amazon" && n % 13 == 12 {
                continue;
            }
            let o = order(channel, n);
            records.extend(parcels(&o).iter().map(|p| labeled(p, &o.order_id)));
        }
    }
    let mut csv = records[0].clone();
    csv.order_id = "csv:POS-1001".into();
    csv.shipment_id = "csv:POS-1001/AUS-1/1".into();
    csv.event_id = "csv-label/0".into();
    csv.tracking_number = "TRK-csv".into();
    let mut ghost = records[0].clone();
    ghost.order_id = "shopify:404404404".into();
    ghost.shipment_id = "shopify:404404404/AUS-1/1".into();
    ghost.event_id = "ghost-label/0".into();
    ghost.tracking_number = "TRK-ghost".into();
    records.push(csv.clone());
    records.push(ghost.clone());
    let told = records.len() - 2;
    // Labels voided after their plans were cancelled: a Shopify parcel (the
    // fulfillment is cancelled), an Amazon one (no API to take it back: an
    // exception), and one never labeled-and-told (nothing to take back).
    let void = |l: &LabeledShipment| {
        let mut v = l.clone();
        v.event_id = format!("{}/void", l.event_id);
        v.status = LabelStatus::Voided;
        v
    };
    let shop_void = void(&records[0]);
    let amazon_void = void(
        records
            .iter()
            .find(|l| l.order_id.starts_with("amazon:"))
            .unwrap(),
    );
    let mut early = void(&records[1]);
    early.shipment_id = format!("{}-never-told", early.shipment_id);
    records.extend([shop_void.clone(), amazon_void.clone(), early.clone()]);

    let codec = Codec::new(&s.config.schema_registry.url).unwrap();
    let producer = Producer::new(&s.config.kafka, "test").unwrap();
    let topic = s.topic("shipments_labeled");
    for l in &records {
        let bytes = codec.encode(&topic, l).await.unwrap();
        producer
            .send(
                &OutRecord::new(&topic)
                    .key(l.order_id.clone())
                    .payload(bytes),
            )
            .await
            .unwrap();
    }

    let c = &config.channels;
    let env: Vec<(String, String)> = vec![
        (
            "CONVEYOR_CHANNELS__SHOPIFY__API_URL".into(),
            c.shopify.api_url.clone(),
        ),
        (
            "CONVEYOR_CHANNELS__SHOPIFY__ACCESS_TOKEN".into(),
            "shpat_sync".into(),
        ),
        (
            "CONVEYOR_CHANNELS__AMAZON__API_URL".into(),
            c.amazon.api_url.clone(),
        ),
        (
            "CONVEYOR_CHANNELS__AMAZON__LWA_URL".into(),
            c.amazon.lwa_url.clone(),
        ),
        (
            "CONVEYOR_CHANNELS__AMAZON__CLIENT_ID".into(),
            "amzn-client".into(),
        ),
        (
            "CONVEYOR_CHANNELS__AMAZON__CLIENT_SECRET".into(),
            "amzn-secret".into(),
        ),
        (
            "CONVEYOR_CHANNELS__AMAZON__REFRESH_TOKEN".into(),
            "Atzr|sync".into(),
        ),
        (
            "CONVEYOR_CHANNELS__TIKTOK__API_URL".into(),
            c.tiktok.api_url.clone(),
        ),
        ("CONVEYOR_CHANNELS__TIKTOK__APP_KEY".into(), "6sync".into()),
        (
            "CONVEYOR_CHANNELS__TIKTOK__APP_SECRETS".into(),
            "[\"tt-secret\"]".into(),
        ),
        (
            "CONVEYOR_CHANNELS__TIKTOK__ACCESS_TOKEN".into(),
            "TTP_sync".into(),
        ),
        (
            "CONVEYOR_CHANNELS__TIKTOK__API_RATE_PER_SEC".into(),
            "500.0".into(),
        ),
        (
            "CONVEYOR_CHANNELS__EBAY__API_URL".into(),
            c.ebay.api_url.clone(),
        ),
        (
            "CONVEYOR_CHANNELS__EBAY__TOKEN_URL".into(),
            c.ebay.token_url.clone(),
        ),
        (
            "CONVEYOR_CHANNELS__EBAY__CLIENT_ID".into(),
            "ebay-client".into(),
        ),
        (
            "CONVEYOR_CHANNELS__EBAY__CLIENT_SECRET".into(),
            "ebay-secret".into(),
        ),
        (
            "CONVEYOR_CHANNELS__EBAY__REFRESH_TOKEN".into(),
            "v^1.1#r".into(),
        ),
        (
            "CONVEYOR_SYNCBACK__RATE_PER_SEC__SHOPIFY".into(),
            "30.0".into(),
        ),
        (
            "CONVEYOR_SYNCBACK__RATE_PER_SEC__AMAZON".into(),
            "30.0".into(),
        ),
        (
            "CONVEYOR_SYNCBACK__RATE_PER_SEC__TIKTOK".into(),
            "30.0".into(),
        ),
        (
            "CONVEYOR_SYNCBACK__RATE_PER_SEC__EBAY".into(),
            "30.0".into(),
        ),
    ];
    let vars: Vec<(&str, &OsStr)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), OsStr::new(v.as_str())))
        .collect();
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let start = |n: usize| {
        Instance::stage_with(
            "syncback",
            &s.ns,
            state.path(),
            &logs.path().join(format!("syncback-{n}.log")),
            &vars,
        )
    };
    let shipped = || -> u64 {
        ["shopify", "amazon", "tiktok", "ebay"]
            .iter()
            .map(|c| sims.ledger(c).totals().shipments)
            .sum()
    };
    let mut inst = start(0);
    for (n, at) in [(1, told as u64 / 4), (2, told as u64 / 2)] {
        let deadline = Instant::now() + Duration::from_secs(300);
        while shipped() < at {
            assert!(Instant::now() < deadline, "no progress to {at} parcels");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        inst.kill9();
        eprintln!("syncback killed at {} parcels told", shipped());
        inst = start(n);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while s.count("shipments_synced") < (told + 3) as i64 || s.count("exceptions") < 2 {
        assert!(Instant::now() < deadline, "sync-back did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let summary = inst.stop();
    eprintln!("{summary:?}");

    for channel in ["shopify", "amazon", "tiktok", "ebay"] {
        let t = sims.ledger(channel).totals();
        eprintln!("{channel}: {t:?}");
        assert_eq!(t.duplicates, 0, "{channel} was told a parcel twice");
    }
    assert_eq!(
        shipped(),
        told as u64 - 1,
        "one channel shipment per parcel, the withdrawn one cancelled"
    );
    assert_eq!(sims.shopify.shipments.totals().cancelled, 1);

    // Every parcel synced once by id; re-emissions identical.
    let synced: Vec<SyncedShipment> = decode_all(&s, "shipments_synced").await;
    let (withdrawn, synced): (Vec<SyncedShipment>, Vec<SyncedShipment>) = synced
        .into_iter()
        .partition(|r| r.outcome == SyncOutcome::Withdrawn);
    let withdrawn: BTreeSet<&str> = withdrawn.iter().map(|r| r.shipment_id.as_str()).collect();
    assert_eq!(withdrawn, BTreeSet::from([shop_void.shipment_id.as_str()]));
    let mut by_shipment: BTreeMap<String, SyncedShipment> = BTreeMap::new();
    for r in synced {
        if let Some(first) = by_shipment.insert(r.shipment_id.clone(), r.clone()) {
            assert_eq!(first, r, "two different records for {}", r.shipment_id);
        }
    }
    assert_eq!(by_shipment.len(), told + 2);
    assert_eq!(
        by_shipment[&csv.shipment_id].outcome,
        SyncOutcome::NotSynced
    );
    let never = &by_shipment[&early.shipment_id];
    assert_eq!(never.outcome, SyncOutcome::NotSynced);
    assert!(never.note.as_deref().unwrap_or_default().contains("voided"));
    let outcomes: BTreeMap<String, usize> = by_shipment
        .values()
        .filter(|r| r.channel != "csv")
        .fold(BTreeMap::new(), |mut m, r| {
            *m.entry(format!("{:?}", r.outcome)).or_default() += 1;
            m
        });
    eprintln!("outcomes: {outcomes:?}");
    assert_eq!(outcomes.get("NotSynced"), Some(&1), "{outcomes:?}");
    assert!(by_shipment
        .values()
        .all(|r| r.outcome == SyncOutcome::NotSynced || r.channel_reference.is_some()));

    // The order the shop does not have, and the Amazon confirmation that
    // cannot be taken back: exceptions.
    let raised: Vec<ExceptionRecord> = decode_all(&s, "exceptions").await;
    let codes: BTreeMap<&str, &str> = raised
        .iter()
        .map(|e| (e.exception_id.as_str(), e.code.as_str()))
        .collect();
    let (g, a) = (
        format!("syncback:{}", ghost.shipment_id),
        format!("syncback:{}", amazon_void.shipment_id),
    );
    assert_eq!(
        codes,
        BTreeMap::from([
            (g.as_str(), "order_not_found"),
            (a.as_str(), "withdraw_by_hand")
        ])
    );
    assert!(raised.iter().all(|e| e.source_topic == topic));
    sims.stop.cancel();
}

//! The runtime's Kafka clients against the real broker: keyed records keep
//! their partition and order, headers survive, a consumer group resumes
//! where it committed, topic creation is idempotent and reports drift, and
//! readiness follows the broker.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use conveyor_runtime::config::{Config, TopicOverride};
use conveyor_runtime::kafka::{Admin, Consumer, InRecord, OutRecord, Producer, TopicState};
use conveyor_runtime::service::Service;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{TopicSpec, Topology};

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        id: "test",
        channel: None,
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: [("cleanup.policy".to_string(), "delete".to_string())].into(),
        writers: vec![],
        readers: vec![],
    }
}

async fn recv(c: &Consumer) -> InRecord {
    tokio::time::timeout(Duration::from_secs(30), c.recv())
        .await
        .expect("a record within 30 s")
        .expect("no consumer error")
}

#[tokio::test(flavor = "multi_thread")]
async fn keyed_records_keep_partition_order_and_headers() {
    let config = common::config();
    common::require_broker(&config).await;
    let topic = common::unique("it.keyed");
    let admin = Admin::new(&config.kafka).unwrap();
    let rep = admin.ensure_topics(&[spec(&topic, 3)]).await.unwrap();
    assert_eq!(rep[0].state, TopicState::Created);

    let producer = Producer::new(&config.kafka, "it").unwrap();
    // Record timestamps must be recent: the broker's time-based retention
    // deletes records stamped long ago.
    let base_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let keys = [
        "order-a", "order-b", "order-c", "order-d", "order-e", "order-f",
    ];
    for seq in 0..10u32 {
        for key in keys {
            let rec = OutRecord::new(topic.clone())
                .key(key)
                .payload(format!("{key}:{seq}"))
                .header("channel", "shopify")
                .header("seq", seq.to_string())
                .header("binary", vec![0u8, 255, 7])
                .timestamp_ms(base_ts + i64::from(seq));
            producer.send(&rec).await.expect("acknowledged");
        }
    }

    let consumer = Consumer::new(&config.kafka, "it", &common::unique("it.group")).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut per_key: BTreeMap<String, Vec<(u32, i32)>> = BTreeMap::new();
    for _ in 0..60 {
        let r = recv(&consumer).await;
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let seq: u32 = std::str::from_utf8(r.header("seq").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            r.payload.as_deref(),
            Some(format!("{key}:{seq}").as_bytes())
        );
        assert_eq!(r.header("channel"), Some(&b"shopify"[..]));
        assert_eq!(r.header("binary"), Some(&[0u8, 255, 7][..]));
        assert_eq!(r.timestamp_ms, Some(base_ts + i64::from(seq)));
        per_key.entry(key).or_default().push((seq, r.partition));
    }
    assert_eq!(per_key.len(), keys.len());
    let mut partitions_used = std::collections::BTreeSet::new();
    for (key, seen) in &per_key {
        let seqs: Vec<u32> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (0..10).collect::<Vec<_>>(),
            "{key}: every record once, in order"
        );
        let parts: std::collections::BTreeSet<i32> = seen.iter().map(|(_, p)| *p).collect();
        assert_eq!(parts.len(), 1, "{key} stays on one partition");
        partitions_used.extend(parts);
    }
    assert!(partitions_used.len() > 1, "keys spread over partitions");
    consumer.close();
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_group_resumes_from_its_commit_after_restart() {
    let config = common::config();
    common::require_broker(&config).await;
    let topic = common::unique("it.resume");
    let admin = Admin::new(&config.kafka).unwrap();
    admin.ensure_topics(&[spec(&topic, 1)]).await.unwrap();
    let producer = Producer::new(&config.kafka, "it").unwrap();
    for i in 0..20 {
        producer
            .send(
                &OutRecord::new(topic.clone())
                    .key("k")
                    .payload(format!("{i}")),
            )
            .await
            .unwrap();
    }
    let group = common::unique("it.resume.group");
    let seq = |r: &InRecord| -> u32 {
        std::str::from_utf8(r.payload.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };

    // First member: processes 8 records, commits after each, then stops.
    let a = Consumer::new(&config.kafka, "it", &group).unwrap();
    a.subscribe(&[&topic]).unwrap();
    for expected in 0..8 {
        let r = recv(&a).await;
        assert_eq!(seq(&r), expected);
        a.commit_after(&r).unwrap();
    }
    a.close();

    // Restarted member: resumes right after the commit, no record lost or repeated.
    let b = Consumer::new(&config.kafka, "it", &group).unwrap();
    b.subscribe(&[&topic]).unwrap();
    for expected in 8..14 {
        assert_eq!(seq(&recv(&b).await), expected);
    }
    // It crashes before committing any of those: they are redelivered.
    drop(b);

    let c = Consumer::new(&config.kafka, "it", &group).unwrap();
    c.subscribe(&[&topic]).unwrap();
    let r = recv(&c).await;
    assert_eq!(seq(&r), 8, "uncommitted work is redelivered after a crash");
    let mut last = r;
    for expected in 9..20 {
        last = recv(&c).await;
        assert_eq!(seq(&last), expected);
    }
    c.commit_after(&last).unwrap();
    let committed = c.committed(Duration::from_secs(10)).unwrap();
    assert!(
        committed.contains(&(topic.clone(), 0, Some(20))),
        "{committed:?}"
    );
    c.close();
    admin.delete_topics(&[&topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_create_is_idempotent_and_reports_drift() {
    let mut config = common::config();
    common::require_broker(&config).await;
    config.topics.namespace = common::unique("it-ns");
    config.channels.enabled = vec!["csv".into(), "shopify".into()];
    let admin = Admin::new(&config.kafka).unwrap();
    let topology = Topology::resolve(&config);

    let first = admin.ensure_topics(&topology.topics).await.unwrap();
    assert!(
        first.iter().all(|r| r.state == TopicState::Created),
        "{first:?}"
    );
    let second = admin.ensure_topics(&topology.topics).await.unwrap();
    assert!(
        second.iter().all(|r| r.state == TopicState::Matches),
        "{second:?}"
    );

    // Compaction and retention were applied as configured.
    let changelog = topology.topic_name("changelog_label_labels").unwrap();
    let cfg = admin.topic_configs(changelog).await.unwrap();
    assert_eq!(
        cfg.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );

    let mut changed: Config = config.clone();
    changed.topics.overrides.insert(
        "orders_dlq".into(),
        TopicOverride {
            partitions: Some(2),
            retention_ms: Some(1000),
            ..Default::default()
        },
    );
    let third = admin
        .ensure_topics(&Topology::resolve(&changed).topics)
        .await
        .unwrap();
    let dlq = third
        .iter()
        .find(|r| r.name.ends_with("orders.dlq"))
        .unwrap();
    match &dlq.state {
        TopicState::Drift(d) => {
            assert!(
                d.iter()
                    .any(|m| m.contains("partitions: broker has 6, config wants 2")),
                "{d:?}"
            );
            assert!(d.iter().any(|m| m.contains("retention.ms")), "{d:?}");
        }
        other => panic!("expected drift, got {other:?}"),
    }
    assert_eq!(
        third
            .iter()
            .filter(|r| r.state == TopicState::Matches)
            .count(),
        third.len() - 1
    );
    let names: Vec<&str> = topology.topics.iter().map(|t| t.name.as_str()).collect();
    admin.delete_topics(&names).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_broker() {
    let live = common::config();
    common::require_broker(&live).await;
    let http = reqwest::Client::new();

    // A broker that is down: alive, not ready, retrying (failures counted).
    let mut dead = live.clone();
    dead.kafka.brokers = "127.0.0.1:1".into();
    let shutdown = Shutdown::new();
    let svc = Service::start(
        "it-dead",
        dead,
        "127.0.0.1:0".parse().unwrap(),
        axum_router(),
        &[],
        shutdown.clone(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", svc.http_addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["broker"]["ready"], false, "{body}");
    // The failed probe is counted and retried with backoff, not fatal.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = common::get_text(&http, &format!("{base}/metrics")).await;
        if metrics.contains("conveyor_broker_probe_failures_total") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        metrics.contains("conveyor_broker_probe_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("conveyor_broker_up 0"), "{metrics}");
    assert!(metrics.contains("conveyor_build_info"), "{metrics}");
    svc.finish().await;

    // The real broker: ready.
    let svc = Service::start(
        "it-live",
        live,
        "127.0.0.1:0".parse().unwrap(),
        axum_router(),
        &[],
        Shutdown::new(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", svc.http_addr);
    let ready = common::becomes_ready(&http, &base, Duration::from_secs(10)).await;
    assert!(ready, "ready once the broker answers");
    svc.finish().await;
}

fn axum_router() -> axum::Router {
    axum::Router::new()
}

//! The peak-season tooling against the real broker and ClickHouse:
//! `conveyor loadgen` sends what it says it sends, and `conveyor bench
//! pipeline` with two instances of every processor splits the work and
//! loses or duplicates nothing.

mod common;

use std::process::Command;
use std::time::Duration;

use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::topology::{self, Topology};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_conveyor");

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_publishes_each_channels_events_and_a_rerun_repeats_them() {
    let mut config = common::config();
    common::require_broker(&config).await;
    let ns = common::unique("loadgen");
    config.topics.namespace = ns.clone();
    let run = || {
        let out = Command::new(BIN)
            .args(["loadgen", "--orders", "400", "--seed", "5", "--bad", "0.05"])
            .env("CONVEYOR_TOPICS__NAMESPACE", &ns)
            .env(
                "CONVEYOR_CHANNELS__ENABLED",
                r#"["shopify","amazon","tiktok","ebay","csv"]"#,
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let first = run();
    // The table: a row per channel, then the totals line.
    let mut per_channel = std::collections::BTreeMap::new();
    let mut created = 0;
    for line in first.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 5 && ["shopify", "amazon", "tiktok", "ebay", "csv"].contains(&f[0]) {
            let n: Vec<i64> = f[1..].iter().map(|x| x.parse::<i64>().unwrap()).collect();
            created += n[0];
            per_channel.insert(f[0].to_string(), n.iter().sum::<i64>());
        }
    }
    assert_eq!(per_channel.len(), 5, "{first}");
    assert!(first.contains(" 0 failed"), "{first}");
    assert_eq!(created, 400, "{first}");
    let topo = Topology::resolve(&config);
    let probe = Consumer::new(
        &config.kafka,
        "test",
        &topology::group_id(&config, "peak-probe"),
    )
    .unwrap();
    let on_topics = |ch: &str| {
        probe
            .end_offsets_total(
                topo.raw_topic(ch).unwrap(),
                config.topics.partitions,
                Duration::from_secs(10),
            )
            .unwrap()
    };
    for (ch, n) in &per_channel {
        assert_eq!(on_topics(ch), *n, "{ch}: records on the raw topic");
    }
    // The same seed sends the same events again (normalize drops them as
    // duplicates), in the same split.
    let second = run();
    let table = |t: &str| {
        t.lines()
            .filter(|l| {
                let first = l.split_whitespace().next().unwrap_or_default();
                ["channel", "shopify", "amazon", "tiktok", "ebay", "csv"].contains(&first)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&first), table(&second));
    for (ch, n) in &per_channel {
        assert_eq!(on_topics(ch), 2 * n, "{ch}");
    }
    // Leftover partitions cost an idle broker CPU: the namespace goes.
    let names: Vec<&str> = topo.topics.iter().map(|t| t.name.as_str()).collect();
    let _ = conveyor_runtime::kafka::Admin::new(&config.kafka)
        .unwrap()
        .delete_topics(&names)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_of_every_processor_split_the_work_and_the_totals_are_exact() {
    let config = common::config();
    common::require_broker(&config).await;
    common::require_clickhouse(&config).await;
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "bench",
            "pipeline",
            "--orders",
            "250",
            "--instances",
            "2",
            "--partitions",
            "4",
            "--latency-rate",
            "0",
            "--ceiling-records",
            "200",
            "--max-wait",
            "400",
            "--out",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let json = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the JSON report");
    let r: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(r["instances"], 2);
    assert_eq!(r["offered_orders"], 250, "{text}");
    assert_eq!(r["exact"], true, "{text}");
    assert_eq!(r["counts"]["orders in ClickHouse"], 250, "{text}");
    assert_eq!(
        r["counts"]["orders labeled beyond their allocation"], 0,
        "{text}"
    );
    assert!(
        r["counts"]["labels in ClickHouse"].as_u64().unwrap() > 100,
        "{text}"
    );
    // One purchase per labeled shipment, whichever instance bought it.
    assert_eq!(
        r["counts"]["labels bought (label jobs' counters)"], r["counts"]["labels in ClickHouse"],
        "{text}"
    );
    // Both instances of each processor took a share of the partitions.
    let stages = r["stages"].as_array().unwrap();
    for stage in ["normalize", "allocate", "route", "label"] {
        for i in [1, 2] {
            let name = format!("{stage}#{i}");
            let row = stages
                .iter()
                .find(|s| s["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no row for {name}: {text}"));
            assert!(
                row["records"].as_f64().unwrap() > 0.0,
                "{name} did nothing: {text}"
            );
        }
    }
    // The timeline and the plot.
    assert!(r["timeline"].as_array().unwrap().len() >= 3, "{text}");
    let svg = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "svg"))
        .expect("the SVG plot");
    assert!(std::fs::read_to_string(svg).unwrap().contains("<polyline"));
}

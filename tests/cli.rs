//! The `conveyor` binary as a user meets it: clear errors and exit codes for
//! unknown or unbuilt commands and bad config, topology output, and
//! `topics create` against the real broker (idempotent; drift exits 3).

mod common;

use std::process::{Command, Output};

fn conveyor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    cmd.args(args).env("CONVEYOR_LOG_FORMAT", "plain");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("conveyor runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn unknown_and_unbuilt_commands_exit_non_zero_with_a_message() {
    let o = conveyor(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unrecognized subcommand"), "{}", text(&o));

    let o = conveyor(&["run", "all"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not built yet"), "{}", text(&o));

    let o = conveyor(&["run", "normalise"], &[]);
    assert_eq!(o.status.code(), Some(2), "a usage mistake");
    assert!(
        text(&o).contains("unknown component `normalise`; known: normalize"),
        "{}",
        text(&o)
    );

    let o = conveyor(&["bench", "pipeline", "--orders", "0"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--orders"), "{}", text(&o));

    // The load generator refuses what it cannot send, before sending.
    for (args, says) in [
        (
            &["loadgen", "--mix", "etsy=1"][..],
            "unknown channel `etsy`",
        ),
        (&["loadgen", "--bad", "2"][..], "--bad is a share"),
        (&["loadgen", "--mix", "shopify"][..], "not CHANNEL=WEIGHT"),
        (
            &["loadgen", "--orders", "0"][..],
            "give --orders or --seconds",
        ),
    ] {
        let o = conveyor(args, &[]);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }

    // Replay: usage, and what it refuses before touching anything.
    let o = conveyor(&["replay"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("sandbox"), "{}", text(&o));
    for (args, says) in [
        (&["replay", "live", "allocate"][..], "would change nothing"),
        (
            &[
                "replay",
                "live",
                "route",
                "--reset-state",
                "--window",
                "soon",
            ],
            "expected a duration",
        ),
        (
            &["replay", "live", "label", "--reset-state"],
            "would buy them again",
        ),
        (
            &["replay", "live", "normalize", "--from", "yesterday"],
            "expected earliest",
        ),
        (
            &["replay", "live", "normalize", "--reset-state", "--to", "2h"],
            "needs --from earliest and --to now",
        ),
        (
            &["replay", "live", "label", "--channel", "shopify"],
            "normalize only",
        ),
        (&["replay", "sandbox", "bad-name"], "a-z, 0-9 and _"),
        (&["replay", "rebuild"], "say what to rebuild"),
    ] {
        let o = conveyor(args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }

    // The TikTok receiver refuses to start without an app key and secret.
    let o = conveyor(&["connect", "tiktok"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("channels.tiktok.app_key"), "{}", text(&o));

    // The Shopify receiver refuses to start without a secret to verify with.
    let o = conveyor(&["connect", "shopify"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("webhook_secrets is empty"),
        "{}",
        text(&o)
    );
    let o = conveyor(&["connect", "csv"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("conveyor import csv"), "{}", text(&o));
}

#[test]
fn a_csv_import_reports_bad_rows_and_imports_nothing_half() {
    let root = env!("CARGO_MANIFEST_DIR");
    let file = format!("{root}/examples/tcgplayer-orders.csv");
    let mapping = format!("{root}/examples/tcgplayer.mapping.toml");
    let args = [
        "import",
        "csv",
        &file,
        "--channel",
        "tcgplayer",
        "--mapping",
        &mapping,
        "--dry-run",
    ];
    let o = conveyor(&args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("6 rows, 0 orders ready, 1 bad rows"), "{t}");
    assert!(
        t.contains("line     5 (order TCG-50003): quantity `three` is not a whole number"),
        "{t}"
    );
    assert!(t.contains("nothing imported"), "{t}");

    let mut skip = args.to_vec();
    skip.push("--skip-bad-orders");
    let o = conveyor(&skip, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("4 orders ready"), "{}", text(&o));

    let mut bad_map = args.to_vec();
    bad_map[6] = &file; // a CSV is not a mapping
    let o = conveyor(&bad_map, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("mapping"), "{}", text(&o));
}

#[test]
fn state_commands_explain_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = conveyor(&["state", "list"], &[("CONVEYOR_STATE__DIR", d)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no state stores under"), "{}", text(&o));
    std::fs::create_dir(dir.path().join("inventory.stock")).unwrap();
    let o = conveyor(
        &["state", "get", "allocate.stock", "SKU-1"],
        &[("CONVEYOR_STATE__DIR", d)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no store `allocate.stock`")
            && text(&o).contains("known: inventory.stock"),
        "{}",
        text(&o)
    );
    let o = conveyor(
        &["state", "get", "../etc", "x"],
        &[("CONVEYOR_STATE__DIR", d)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = conveyor(
        &["state", "get", "inventory.stock", "SKU-1"],
        &[("CONVEYOR_STATE__DIR", d)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("key `SKU-1` not found"), "{}", text(&o));
}

#[test]
fn bad_config_names_the_field_and_the_problem() {
    let dir = std::env::temp_dir().join(common::unique("conveyor-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[topics]\npartitions = \"six\"\n").unwrap();
    let o = conveyor(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("`topics.partitions`") && t.contains("invalid type"),
        "{t}"
    );

    std::fs::write(
        &file,
        "[clickhouse]\nurl = \"localhost:8123\"\n[kafka]\nbrokers = \"\"\n",
    )
    .unwrap();
    let t = text(&conveyor(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
    ));
    assert!(
        t.contains("`clickhouse.url`") && t.contains("http://"),
        "{t}"
    );
    assert!(t.contains("`kafka.brokers`"), "{t}");

    let o = conveyor(
        &["config", "check"],
        &[("CONVEYOR_TOPICS__REPLICATION_FACTOR", "0")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("CONVEYOR_TOPICS__REPLICATION_FACTOR"),
        "{}",
        text(&o)
    );

    let o = conveyor(&["--config", "/nonexistent/conveyor.toml", "topology"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("cannot read config file /nonexistent/conveyor.toml"),
        "{}",
        text(&o)
    );

    // Secrets never show.
    std::fs::write(&file, "[clickhouse]\npassword = \"hunter2\"\n").unwrap();
    let o = conveyor(&["--config", file.to_str().unwrap(), "config", "show"], &[]);
    assert!(o.status.success());
    assert!(
        !text(&o).contains("hunter2") && text(&o).contains("password = \"***\""),
        "{}",
        text(&o)
    );
}

#[test]
fn topology_lists_topics_with_writers_and_readers() {
    let o = conveyor(
        &["topology"],
        &[("CONVEYOR_CHANNELS__ENABLED", "[\"shopify\"]")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("orders.raw.shopify"), "{t}");
    assert!(!t.contains("orders.raw.amazon"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.contains("orders.normalized") && l.contains("normalize -> allocate")),
        "{t}"
    );
    assert!(t.contains("conveyor.inventory.stock.changelog"), "{t}");
    assert!(t.contains("allocate.commands"), "{t}");
    let o = conveyor(&["topology", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 22 shared topics (11 + catalog.skus + allocation's two command logs
    // and orders changelog + route's command log and store changelog +
    // shipments.synced, exceptions and sync-back's store changelog +
    // conveyor.replays + operator.actions), and per default channel (5)
    // its raw topic and normalize's versions changelog.
    assert_eq!(v["topics"].as_array().unwrap().len(), 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_create_twice_then_drift_exits_3() {
    let config = common::config();
    common::require_broker(&config).await;
    let ns = common::unique("cli-ns");
    let env = [
        ("CONVEYOR_TOPICS__NAMESPACE", ns.as_str()),
        ("CONVEYOR_CHANNELS__ENABLED", "[\"csv\"]"),
    ];
    let first = conveyor(&["topics", "create"], &env);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains(&format!("created  {ns}.orders.raw.csv")));
    let second = conveyor(&["topics", "create"], &env);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("topics: 0 created"),
        "{}",
        text(&second)
    );

    let mut drift_env = env.to_vec();
    drift_env.push(("CONVEYOR_TOPICS__PARTITIONS", "4"));
    let third = conveyor(&["topics", "create"], &drift_env);
    assert_eq!(third.status.code(), Some(3), "{}", text(&third));
    assert!(
        text(&third).contains("partitions: broker has 6, config wants 4"),
        "{}",
        text(&third)
    );

    let describe = conveyor(&["topics", "describe"], &env);
    assert!(describe.status.success(), "{}", text(&describe));
    assert!(
        text(&describe).contains(&format!("{ns}.orders.dlq")),
        "{}",
        text(&describe)
    );

    let topology = conveyor_runtime::topology::Topology::resolve(&{
        let mut c = config.clone();
        c.topics.namespace = ns.clone();
        c.channels.enabled = vec!["csv".into()];
        c
    });
    let names: Vec<&str> = topology.topics.iter().map(|t| t.name.as_str()).collect();
    conveyor_runtime::kafka::Admin::new(&config.kafka)
        .unwrap()
        .delete_topics(&names)
        .await
        .unwrap();
}

/// Copies the .avsc files to a temp dir, with `order_event.avsc` changed by
/// adding `field` to the Order record.
fn schemas_with_order_field(field: serde_json::Value) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(common::unique("conveyor-avsc"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "avsc") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let path = dir.join("order_event.avsc");
    let text = common::with_order_field(&std::fs::read_to_string(&path).unwrap(), field);
    std::fs::write(&path, text).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_check_names_the_field_that_breaks_consumers() {
    let config = common::config();
    common::require_broker(&config).await;
    let ns = common::unique("cli-schemas");
    let env = [
        ("CONVEYOR_TOPICS__NAMESPACE", ns.as_str()),
        ("CONVEYOR_CHANNELS__ENABLED", "[\"csv\"]"),
    ];

    let o = conveyor(&["schemas", "check"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("14 new"), "{}", text(&o));
    let o = conveyor(&["schemas", "register"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{ns}.orders.normalized-value")),
        "{}",
        text(&o)
    );
    let o = conveyor(&["schemas", "check"], &env);
    assert!(text(&o).contains("14 unchanged"), "{}", text(&o));

    // An optional field with a default: compatible, shown in the diff.
    let ok = schemas_with_order_field(serde_json::json!({
        "name": "loyalty_tier", "type": ["null", "string"], "default": null, "doc": "Tier."
    }));
    let o = conveyor(&["schemas", "check", "--dir", ok.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("+ conveyor.Order.loyalty_tier: [null, string] (default null)"),
        "{}",
        text(&o)
    );

    // A required field: consumers on the new schema cannot read old data.
    let bad = schemas_with_order_field(
        serde_json::json!({ "name": "priority_score", "type": "int", "doc": "Score." }),
    );
    let o = conveyor(&["schemas", "check", "--dir", bad.to_str().unwrap()], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("INCOMPATIBLE") && t.contains("orders.normalized-value"),
        "{t}"
    );
    assert!(
        t.contains("+ conveyor.Order.priority_score: int (no default)"),
        "{t}"
    );
    assert!(
        t.contains("priority_score") && t.contains("must have a default value"),
        "{t}"
    );
    assert!(t.contains("1 incompatible"), "{t}");
}

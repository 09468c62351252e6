//! The deployment artifacts against the real thing.
//!
//! - `deploy/check` validates docker-compose.yml (Compose schema and wiring),
//!   the Dockerfile, every Kubernetes overlay (rendered, Kubernetes schemas,
//!   wiring), the alert rules (promtool check + unit tests) and the
//!   dashboards; a broken copy of the artifacts fails it.
//! - Every command the compose file and the manifests run is one this binary
//!   accepts, and the config each one gets (file, environment, mounted
//!   secrets) passes `conveyor config check`.
//! - Every metric the dashboards and alerts use is exported by the running
//!   components (each one started as in the stack, orders flowing through
//!   them), and the business dashboard's SQL runs on ClickHouse.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::allocation::Setup;
use common::process::Process;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{InventoryEvent, InventoryEventKind};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_conveyor");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `deploy/check --json` from `dir` (the repository or a copy): (ok, stdout, stderr).
fn run_check(dir: &Path) -> (bool, String, String) {
    let out = Command::new(dir.join("deploy/check"))
        .arg("--json")
        .output()
        .expect("deploy/check runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository's check summary (run once per test binary).
fn summary() -> &'static Value {
    static SUMMARY: OnceLock<Value> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        let (ok, out, err) = run_check(root());
        assert!(ok, "deploy/check failed:\n{err}");
        serde_json::from_str(&out).expect("deploy/check --json prints JSON")
    })
}

#[test]
fn deploy_artifacts_pass_their_validators() {
    let s = summary();
    let commands = s["commands"].as_array().unwrap();
    let wheres: BTreeSet<&str> = commands
        .iter()
        .map(|c| c["where"].as_str().unwrap())
        .collect();
    // Both deployments, every overlay, and the pipeline's long-running parts.
    for want in [
        "compose init",
        "compose sink-scylla",
        "compose demo-orders",
        "k8s dev: Job/conveyor-init",
        "k8s production: StatefulSet/allocate",
        "k8s production: Deployment/connect-shopify",
    ] {
        assert!(wheres.contains(want), "no command from {want}: {wheres:?}");
    }
    let metrics = s["metrics"].as_object().unwrap();
    assert!(metrics.len() >= 20, "dashboards and alerts use {metrics:?}");
    assert!(s["clickhouse_queries"].as_array().unwrap().len() >= 5);
}

/// Copies what deploy/check reads into a temporary tree.
fn copy_tree(to: &Path) {
    let files = [
        "Dockerfile",
        "docker-compose.yml",
        "conveyor.example.toml",
        "docs/operations.md",
    ];
    for f in files {
        std::fs::create_dir_all(to.join(f).parent().unwrap()).unwrap();
        std::fs::copy(root().join(f), to.join(f)).unwrap();
    }
    for dir in ["deploy", "examples"] {
        copy_dir(&root().join(dir), &to.join(dir));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_broken_artifact_fails_the_check_and_names_it() {
    summary(); // the validators are installed
    let dir = tempfile::tempdir().unwrap();
    copy_tree(dir.path());
    let d = dir.path();
    // A port open to the network, an autoscaler aimed at nothing, a probe
    // on the wrong path, an alert expecting what its rule does not say.
    replace_in(
        &d.join("docker-compose.yml"),
        "\"127.0.0.1:8080:8080\"",
        "\"8080:8080\"",
    );
    replace_in(
        &d.join("deploy/k8s/base/hpa.yaml"),
        "    kind: StatefulSet\n    name: allocate",
        "    kind: StatefulSet\n    name: allocator",
    );
    replace_in(
        &d.join("deploy/k8s/base/route.yaml"),
        "path: /readyz",
        "path: /ready",
    );
    replace_in(
        &d.join("deploy/k8s/base/label.yaml"),
        "mountPath: /var/lib/conveyor/state",
        "mountPath: /var/lib/conveyor/elsewhere",
    );
    replace_in(
        &d.join("deploy/prometheus/alerts.test.yml"),
        "lag 3000 records",
        "lag 2999 records",
    );
    let (ok, _, err) = run_check(d);
    assert!(!ok, "the broken copy passed:\n{err}");
    for want in [
        "port 8080:8080 is not bound to 127.0.0.1",
        "scales missing StatefulSet/allocator",
        "StatefulSet/route container conveyor: liveness must be /healthz and readiness /readyz",
        "Deployment/label container conveyor: CONVEYOR_STATE__DIR=/var/lib/conveyor/state is not on a mounted volume",
        "promtool test rules",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
}

/// A command's environment with container paths (config file, mounted
/// secrets) mapped to local files: the repository file deploy/check named,
/// or the mounted content it gave, written under `dir`.
fn local_env(c: &Value, dir: &Path) -> Vec<(String, String)> {
    let files = c["files"].as_object().unwrap();
    c["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap();
            let local = match files.get(v) {
                Some(Value::String(path)) => path.clone(),
                Some(f) => {
                    let path = dir.join(v.trim_start_matches('/').replace('/', "_"));
                    std::fs::write(&path, f["text"].as_str().unwrap()).unwrap();
                    path.to_str().unwrap().to_string()
                }
                None => v.to_string(),
            };
            (k.clone(), local)
        })
        .collect()
}

fn conveyor(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

#[test]
fn every_deployed_command_is_accepted_and_its_config_is_valid() {
    let topo = conveyor(&["topology", "--json"], &[]);
    assert!(topo.status.success());
    let topo: Value = serde_json::from_slice(&topo.stdout).unwrap();
    let components: BTreeSet<String> = topo["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "built")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let mut checked = 0;
    for c in summary()["commands"].as_array().unwrap() {
        let wh = c["where"].as_str().unwrap();
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(!args.is_empty(), "{wh}: no command");
        if args[0] == "run" {
            assert!(
                components.contains(args[1]),
                "{wh}: `run {}` is not a component ({components:?})",
                args[1]
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let env = local_env(c, dir.path());
        // The subcommand and its flags parse.
        let mut help = args.clone();
        help.push("--help");
        let out = conveyor(&help, &env);
        assert!(
            out.status.success(),
            "{wh}: `conveyor {}` is refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        // The config the deployment gives it is valid.
        let out = conveyor(&["config", "check"], &env);
        assert!(
            out.status.success(),
            "{wh}: config check failed with env {env:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} commands");
}

/// Metric names (histogram and summary suffixes folded) in a /metrics text.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_string()
        })
        .collect()
}

/// The pipeline's components as processes on their own ports, as the
/// compose stack runs them (one per service).
struct Stack {
    s: Setup,
    env: Vec<(&'static str, OsString)>,
    _dir: tempfile::TempDir,
    logs: PathBuf,
    procs: Vec<(String, u16, Process)>,
    webhooks: u16,
    api: u16,
}

const SECRET: &str = "deploy-test-secret";

impl Stack {
    async fn new() -> Stack {
        let s = Setup::new("deploy-metrics").await;
        common::require_clickhouse(&s.config).await;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let (carrier, shop, webhooks, api) = (
            common::free_port(),
            common::free_port(),
            common::free_port(),
            common::free_port(),
        );
        let env: Vec<(&'static str, OsString)> = vec![
            ("CONVEYOR_TOPICS__NAMESPACE", s.ns.clone().into()),
            (
                "CONVEYOR_TOPICS__PARTITIONS",
                s.config.topics.partitions.to_string().into(),
            ),
            ("CONVEYOR_STATE__DIR", dir.path().join("stores").into()),
            ("CONVEYOR_CHANNELS__ENABLED", r#"["shopify"]"#.into()),
            ("CONVEYOR_SYNCBACK__CHANNELS", r#"["shopify"]"#.into()),
            (
                "CONVEYOR_CHANNELS__SHOPIFY__WEBHOOK_SECRETS",
                format!(r#"["{SECRET}"]"#).into(),
            ),
            (
                "CONVEYOR_CHANNELS__SHOPIFY__API_URL",
                format!("http://127.0.0.1:{shop}").into(),
            ),
            (
                "CONVEYOR_CHANNELS__SHOPIFY__ACCESS_TOKEN",
                "shpat_test".into(),
            ),
            (
                "CONVEYOR_CLICKHOUSE__DATABASE",
                s.ns.replace('-', "_").into(),
            ),
            ("CONVEYOR_STORE__PATH", dir.path().join("ops.redb").into()),
            (
                "CONVEYOR_HTTP__STATUS_API_BIND",
                format!("127.0.0.1:{api}").into(),
            ),
            (
                "CONVEYOR_LABEL__API_URL",
                format!("http://127.0.0.1:{carrier}").into(),
            ),
            ("CONVEYOR_LABEL__DOCUMENTS", dir.path().join("docs").into()),
        ];
        let mut st = Stack {
            s,
            env,
            _dir: dir,
            logs,
            procs: Vec::new(),
            webhooks,
            api,
        };
        st.once(&["sink", "clickhouse", "--migrate"]);
        let catalog = root().join("examples/catalog.csv");
        st.once(&["catalog", "load", catalog.to_str().unwrap()]);
        let carrier_bind = format!("127.0.0.1:{carrier}");
        let shop_bind = format!("127.0.0.1:{shop}");
        st.spawn_plain(
            "sim-carrier",
            &["simulate", "carrier", "--bind", &carrier_bind],
        );
        st.spawn_plain(
            "sim-shopify",
            &["simulate", "shopify", "--bind", &shop_bind],
        );
        st
    }

    fn once(&self, args: &[&str]) {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "conveyor {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn_plain(&mut self, name: &str, args: &[&str]) {
        let p = Process::spawn(args, &self.env, &self.logs.join(format!("{name}.log")));
        self.procs.push((name.to_string(), 0, p));
    }

    /// A component with its observability port.
    fn component(&mut self, name: &str, args: &[&str]) {
        let port = common::free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut a = args.to_vec();
        a.extend(["--observability-bind", &bind]);
        let p = Process::spawn(&a, &self.env, &self.logs.join(format!("{name}.log")));
        self.procs.push((name.to_string(), port, p));
    }

    /// /metrics text per component (those answering).
    async fn scrape(&self, http: &reqwest::Client) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, port, _) in self.procs.iter().filter(|p| p.1 != 0) {
            let url = format!("http://127.0.0.1:{port}/metrics");
            if let Ok(r) = http.get(&url).send().await {
                if let Ok(t) = r.text().await {
                    out.insert(name.clone(), t);
                }
            }
        }
        out
    }

    fn log_tails(&self) -> String {
        let mut s = String::new();
        for (name, _, _) in &self.procs {
            let t =
                std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default();
            let tail: String = t.lines().rev().take(12).collect::<Vec<_>>().join("\n");
            s.push_str(&format!("--- {name}\n{tail}\n"));
        }
        s
    }
}

/// Stock for every catalog SKU in every warehouse.
async fn stock(st: &Stack) {
    let csv = std::fs::read(root().join("examples/catalog.csv")).unwrap();
    let skus = conveyor_connectors::catalog_load::parse(&csv, 1).unwrap();
    let codec = Arc::new(Codec::new(&st.s.config.schema_registry.url).unwrap());
    let producer = Producer::new(&st.s.config.kafka, "test").unwrap();
    let topic = st.s.topic("inventory_events");
    let mut recs = Vec::new();
    for sku in &skus {
        for w in &st.s.config.warehouses {
            let e = InventoryEvent {
                event_id: format!("deploy:{}:{}", sku.sku, w.id),
                sku: sku.sku.clone(),
                warehouse_id: w.id.clone(),
                kind: InventoryEventKind::Restock,
                quantity: 10_000,
                to_warehouse_id: None,
                reason: Some("test receipt".into()),
                reference: None,
                occurred_at: 1,
            };
            let b = codec.encode(&topic, &e).await.unwrap();
            recs.push(OutRecord::new(&topic).key(e.sku.clone()).payload(b));
        }
    }
    for r in producer.send_batch(&recs).await {
        r.unwrap();
    }
}

/// One signed order webhook to a ZIP code that does not exist: normalize
/// and route take it (rated as the farthest zone), the carrier refuses its
/// label (an exception).
async fn unshippable_order(http: &reqwest::Client, port: u16) {
    let (_, headers) =
        conveyor_connectors::simulate::shopify::webhook_request(9_999, SECRET, "orders/create");
    let mut order = conveyor_processors::normalize::shopify::example(9_999);
    order["shipping_address"]["zip"] = Value::String("00000".into());
    let body = serde_json::to_vec(&order).unwrap();
    let sig = conveyor_connectors::signature::sign_base64(SECRET.as_bytes(), &body);
    let mut req = http.post(format!("http://127.0.0.1:{port}/webhooks/shopify"));
    for (k, v) in headers {
        req = req.header(
            k,
            if k == "x-shopify-hmac-sha256" {
                sig.clone()
            } else {
                v
            },
        );
    }
    let r = req.body(body).send().await.unwrap();
    assert!(r.status().is_success(), "webhook refused: {}", r.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_and_alerts_use_metrics_the_components_export() {
    let wanted: BTreeMap<String, Vec<String>> = summary()["metrics"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let used = v
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_string());
            (k.clone(), used.collect())
        })
        .collect();
    let mut st = Stack::new().await;
    stock(&st).await;
    let wh = format!("127.0.0.1:{}", st.webhooks);
    for (name, args) in [
        (
            "connect-shopify",
            vec!["connect", "shopify", "--bind", wh.as_str()],
        ),
        ("normalize", vec!["run", "normalize"]),
        ("allocate", vec!["run", "allocate"]),
        ("route", vec!["run", "route"]),
        ("label", vec!["run", "label"]),
        ("syncback", vec!["run", "syncback"]),
        ("sink-clickhouse", vec!["sink", "clickhouse"]),
        ("sink-scylla", vec!["sink", "scylla"]),
    ] {
        st.component(name, &args);
    }
    let http = reqwest::Client::new();
    let obs = format!(
        "http://127.0.0.1:{}",
        st.procs
            .iter()
            .find(|p| p.0 == "connect-shopify")
            .unwrap()
            .1
    );
    if !common::becomes_ready(&http, &obs, Duration::from_secs(120)).await {
        panic!("connect-shopify not ready:\n{}", st.log_tails());
    }
    // Orders through the real receiver, one the carrier refuses, and a
    // record normalize cannot decode.
    let target = format!("http://{wh}/webhooks/shopify");
    st.once(&[
        "simulate",
        "shopify",
        "--webhooks",
        "20",
        "--target",
        &target,
    ]);
    unshippable_order(&http, st.webhooks).await;
    let producer = Producer::new(&st.s.config.kafka, "test").unwrap();
    let raw = st.s.topo.raw_topic("shopify").unwrap().to_string();
    for r in producer
        .send_batch(&[OutRecord::new(&raw)
            .key("poison".to_string())
            .payload(b"not avro".to_vec())])
        .await
    {
        r.unwrap();
    }

    // Done when every metric is exported and orders went all the way
    // (synced back to the channel, one refused by the carrier).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let _ = http
            .get(format!("http://127.0.0.1:{}/orders/none", st.api))
            .send()
            .await;
        let got = st.scrape(&http).await;
        let all: BTreeSet<String> = got.values().flat_map(|t| exported(t)).collect();
        let mut missing: Vec<String> = wanted
            .iter()
            .filter(|(m, _)| !all.contains(*m))
            .map(|(m, used)| format!("{m} (used by {})", used.join(", ")))
            .collect();
        for f in ["conveyor_syncback_total", "conveyor_exceptions_total"] {
            if !got.values().any(|t| total(t, f) > 0.0) {
                missing.push(format!("{f} above 0 (orders did not get that far)"));
            }
        }
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "metrics used by dashboards or alerts that no component exports:\n  {}\n\
                 components answering: {:?}\n{}",
                missing.join("\n  "),
                got.keys().collect::<Vec<_>>(),
                st.log_tails()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The sum of a metric's samples in a /metrics text.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_business_dashboard_queries_run_on_clickhouse() {
    let config = common::config();
    common::require_clickhouse(&config).await;
    let mut ch = config.clickhouse.clone();
    ch.database = common::unique("deploy_dash").replace('-', "_");
    conveyor_sinks::clickhouse::migrate::migrate(&ch)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut ran = 0;
    for q in summary()["clickhouse_queries"].as_array().unwrap() {
        // The Grafana plugin's macro, as it expands it for the last 7 days.
        let sql = q["sql"]
            .as_str()
            .unwrap()
            .replace("$database", &ch.database);
        let sql = expand_time_filter(&sql);
        let r = http
            .post(format!("{}/", ch.url))
            .body(format!("{sql} FORMAT TabSeparated"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "{}: {sql}\n{body}", q["where"]);
        ran += 1;
    }
    assert!(ran >= 5);
}

/// `$__timeFilter(col)` as grafana-clickhouse-datasource expands it.
fn expand_time_filter(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "$__timeFilter(".len()..];
        let end = after.find(')').expect("closed macro");
        let col = &after[..end];
        out.push_str(&format!(
            "{col} >= toDateTime(now() - INTERVAL 7 DAY) AND {col} <= toDateTime(now())"
        ));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

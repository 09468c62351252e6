//! The operator console end to end, in headless Chromium (Debian's
//! chromium driven by playwright-core: tests/console/e2e.cjs), against
//! the real broker and registry, with the pipeline pieces it reads from
//! as child processes: `conveyor run label` (buying from the carrier
//! simulator in this process), `conveyor sink scylla` (the embedded
//! operational store and its status API) and `conveyor console`.
//!
//! Six orders are planned; one plan has no street, so the carrier refuses
//! it and it becomes an exception. In the browser: a wrong password is
//! refused; an operator finds an order by tracking number, sees its email
//! and timeline, opens its packing slip (a PDF), finds the failed label in
//! the exceptions queue, fixes the street and retries, and watches the
//! queue (without reloading) and the order page show it labeled; a viewer
//! sees no email and no documents, gets no action form and has a forged
//! action refused; an admin reads the retry in the audit log.
//!
//! Then here: the simulator sold exactly one label per shipment (the
//! retried one included), and the store holds the operator's action.
//!
//! The browser and playwright-core are installed on first use (apt's
//! chromium when running as root; npm into ~/.cache/conveyor/node).
//! `UPDATE_SCREENSHOTS=1` writes the screenshots to docs/images.

mod common;

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::allocation::*;
use common::process::Process;
use conveyor_connectors::simulate::carrier;
use conveyor_processors::route::sample;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_schemas::codec::Codec;
use conveyor_schemas::records::{OrderEvent, PlannedShipment};
use serde_json::Value;

const PLAYWRIGHT: &str = "playwright-core@1.64.1";

/// Chromium and the playwright-core module, installed when missing.
fn browser_tools() -> (PathBuf, PathBuf) {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        assert!(
            root,
            "the console test needs Debian's chromium: apt-get install chromium"
        );
        eprintln!("installing chromium (apt)...");
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "apt-get install chromium failed");
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let prefix = Path::new(&home).join(".cache/conveyor/node");
    let module = prefix.join("node_modules/playwright-core");
    if !module.join("package.json").exists() {
        eprintln!("installing {PLAYWRIGHT} (npm) into {}...", prefix.display());
        std::fs::create_dir_all(&prefix).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(PLAYWRIGHT)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm install {PLAYWRIGHT} failed");
    }
    (chromium, module)
}

fn hash(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["console", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An order event for `plan`: its order id, a channel number, an email,
/// the plan's ship-to address.
fn order_for(i: usize, plan: &PlannedShipment) -> OrderEvent {
    let mut e = conveyor_schemas::samples::order_event(i as u64, plan.planned_at - 60_000);
    e.order_id = plan.order_id.clone();
    let (channel, external) = plan.order_id.split_once(':').unwrap_or(("shopify", ""));
    e.order.channel = channel.to_string();
    e.order.external_id = external.to_string();
    e.event_id = format!("{}:created/0", plan.order_id);
    e.order.external_number = Some(format!("#C{}", 1001 + i));
    e.order.customer.email = Some(format!("buyer{i}@example.com"));
    e.order.shipping_address = plan.ship_to.clone();
    e
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http.get(url).send().await.ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_find_orders_open_slips_and_retry_a_failed_label_in_chromium() {
    let (chromium, playwright) = browser_tools();
    let s = Setup::new("console").await;
    let token = s.config.label.api_token.expose().to_string();
    let sim = Arc::new(carrier::Sim::new(&token));
    let stop = tokio_util::sync::CancellationToken::new();
    let (sim_addr, _server) = carrier::serve(sim.clone(), ([127, 0, 0, 1], 0).into(), stop.clone())
        .await
        .unwrap();

    // Six orders and their plans; the first plan has no street.
    let plans = sample::plans(&s.config, 11, 6, |i, order| {
        if i == 0 {
            order.ship_to.line1 = String::new();
        }
    });
    assert_eq!(plans.len(), 6);
    let codec = Codec::new(&s.config.schema_registry.url).unwrap();
    let producer = Producer::new(&s.config.kafka, "test").unwrap();
    let orders_topic = s.topic("orders_normalized");
    let plans_topic = s.topic("shipments_planned");
    for (i, p) in plans.iter().enumerate() {
        let o = order_for(i, p);
        let bytes = codec.encode(&orders_topic, &o).await.unwrap();
        producer
            .send(
                &OutRecord::new(&orders_topic)
                    .key(o.order_id.clone())
                    .payload(bytes),
            )
            .await
            .unwrap();
        let bytes = codec.encode(&plans_topic, p).await.unwrap();
        producer
            .send(
                &OutRecord::new(&plans_topic)
                    .key(p.order_id.clone())
                    .payload(bytes),
            )
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("documents");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sim_url = format!("http://{sim_addr}");
    let label = Instance::stage_with(
        "label",
        &s.ns,
        &dir.path().join("state"),
        &logs.join("label.log"),
        &[
            ("CONVEYOR_LABEL__API_URL", OsStr::new(&sim_url)),
            ("CONVEYOR_LABEL__DOCUMENTS", docs.as_os_str()),
        ],
    );

    let ns = s.ns.clone();
    let partitions = PARTITIONS.to_string();
    let store = dir.path().join("operational.redb");
    let api_port = common::free_port();
    let sink_obs = common::free_port();
    let api_bind = format!("127.0.0.1:{api_port}");
    let sink_obs_bind = format!("127.0.0.1:{sink_obs}");
    let sink = Process::spawn(
        &["sink", "scylla", "--observability-bind", &sink_obs_bind],
        &[
            ("CONVEYOR_TOPICS__NAMESPACE", OsStr::new(&ns)),
            ("CONVEYOR_TOPICS__PARTITIONS", OsStr::new(&partitions)),
            ("CONVEYOR_STORE__PATH", store.as_os_str()),
            ("CONVEYOR_HTTP__STATUS_API_BIND", OsStr::new(&api_bind)),
        ],
        &logs.join("sink.log"),
    );

    // The console, with a user of each role.
    let passwords = [
        ("ana", "operator", "ana-password-1"),
        ("vic", "viewer", "vic-password-1"),
        ("root", "admin", "root-password-1"),
    ];
    let mut toml = String::from("[console]\n");
    toml.push_str(&format!(
        "[console.metrics]\nsink-scylla = \"http://{sink_obs_bind}/metrics\"\nlabel = \"http://127.0.0.1:1/metrics\"\n"
    ));
    for (name, role, password) in passwords {
        toml.push_str(&format!(
            "[[console.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{}\"\n",
            hash(password)
        ));
    }
    let config_file = dir.path().join("console.toml");
    std::fs::write(&config_file, toml).unwrap();
    let console_port = common::free_port();
    let console_bind = format!("127.0.0.1:{console_port}");
    let api_url = format!("http://{api_bind}");
    let console = Process::spawn(
        &["console", "--observability-bind", "127.0.0.1:0"],
        &[
            ("CONVEYOR_CONFIG", config_file.as_os_str()),
            ("CONVEYOR_TOPICS__NAMESPACE", OsStr::new(&ns)),
            ("CONVEYOR_TOPICS__PARTITIONS", OsStr::new(&partitions)),
            ("CONVEYOR_CONSOLE__BIND", OsStr::new(&console_bind)),
            ("CONVEYOR_CONSOLE__STATUS_API", OsStr::new(&api_url)),
            ("CONVEYOR_CONSOLE__SCRAPE_INTERVAL_MS", OsStr::new("1000")),
            ("CONVEYOR_LABEL__DOCUMENTS", docs.as_os_str()),
        ],
        &logs.join("console.log"),
    );

    // Until five orders are labeled and the sixth is an exception in the store.
    let http = reqwest::Client::new();
    let failed = &plans[0];
    let exception_id = format!("label:{}", failed.shipment_id);
    let deadline = Instant::now() + Duration::from_secs(180);
    let tracking = loop {
        assert!(
            Instant::now() < deadline,
            "the pipeline did not label the orders; logs in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut labeled = Vec::new();
        for p in &plans[1..] {
            let o = get_json(&http, &format!("{api_url}/orders/{}", p.order_id)).await;
            if let Some(t) = o.as_ref().and_then(|o| {
                o["shipments"][0]["label"]["tracking_number"]
                    .as_str()
                    .map(str::to_string)
            }) {
                if o.as_ref().is_some_and(|o| o["details"].is_object()) {
                    labeled.push(t);
                }
            }
        }
        let raised = get_json(
            &http,
            &format!(
                "{api_url}/exceptions/{}",
                exception_id.replace('/', "%2F").replace(':', "%3A")
            ),
        )
        .await
        .is_some();
        if labeled.len() == 5 && raised {
            break labeled[0].clone();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://{console_bind}/login"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the console did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let shots = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images")
    } else {
        dir.path().to_path_buf()
    };
    let first = order_for(1, &plans[1]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/e2e.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CHROMIUM", &chromium)
        .env("CONSOLE_URL", format!("http://{console_bind}"))
        .env("SCREENSHOTS", &shots)
        .env("OPERATOR_USER", "ana")
        .env("OPERATOR_PASS", passwords[0].2)
        .env("VIEWER_USER", "vic")
        .env("VIEWER_PASS", passwords[1].2)
        .env("ADMIN_USER", "root")
        .env("ADMIN_PASS", passwords[2].2)
        .env("TRACKING", &tracking)
        .env(
            "ORDER_NUMBER",
            first.order.external_number.as_deref().unwrap(),
        )
        .env(
            "ORDER_EMAIL",
            first.order.customer.email.as_deref().unwrap(),
        )
        .env("FAILED_ORDER", &failed.order_id)
        .env("EXCEPTION_ID", &exception_id)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "browser checks failed:\n{}\n(logs in {})",
        String::from_utf8_lossy(&out.stderr),
        logs.display()
    );

    // One label per shipment, the retried one included; the action stored.
    let sold = sim.purchases();
    assert_eq!(sold.duplicates, 0, "a shipment was sold two labels");
    assert_eq!(sold.purchases, 6, "{sold:?}");
    let e = get_json(
        &http,
        &format!(
            "{api_url}/exceptions/{}",
            exception_id.replace('/', "%2F").replace(':', "%3A")
        ),
    )
    .await
    .expect("the exception is still readable");
    assert_eq!(e["state"]["state"], "RETRIED", "{e}");
    assert_eq!(e["state"]["actor"], "ana", "{e}");

    drop(console);
    drop(sink);
    label.kill9();
    stop.cancel();
}

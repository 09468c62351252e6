//! `conveyor bench normalize` (the pure mapping on one core) and `conveyor
//! bench webhooks` (webhook ingestion with durable acks, driven by wrk).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_processors::catalog::Catalog;
use conveyor_processors::normalize::{self, processor};
use conveyor_runtime::config::{Config, Secret};
use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::records::RawOrder;

use crate::usage;

const CHANNELS: &[&str] = &["shopify", "amazon", "tiktok", "ebay", "csv"];

/// The demo catalog (examples/catalog.csv), which every example resolves against.
fn catalog() -> anyhow::Result<Catalog> {
    let text = include_bytes!("../../examples/catalog.csv");
    let skus = conveyor_connectors::catalog_load::parse(text, 1)
        .map_err(|_| anyhow::anyhow!("examples/catalog.csv does not parse"))?;
    Ok(Catalog::from_skus(skus))
}

fn rate(
    raws: &[RawOrder],
    catalog: &Catalog,
    with_decide: bool,
    min: Duration,
) -> anyhow::Result<f64> {
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < min {
            for raw in raws {
                let out = normalize::normalize(raw, catalog).map_err(|e| {
                    anyhow::anyhow!("{} example does not normalize: {e}", raw.channel)
                })?;
                if with_decide {
                    let _ = std::hint::black_box(processor::decide(raw, out, None));
                } else {
                    std::hint::black_box(out);
                }
            }
            n += raws.len() as u64;
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub fn normalize_bench(orders: usize, only: Option<&str>) -> anyhow::Result<()> {
    if orders == 0 {
        return Err(usage("--orders must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench normalize`");
    }
    let catalog = catalog()?;
    println!("normalize benchmark: {orders} distinct example orders per channel (1-3 lines), one thread, best of 3 rounds of >= 1 s");
    println!(
        "{:<10} {:>8} {:>14} {:>22}",
        "channel", "bytes", "map orders/s", "map+version orders/s"
    );
    let mut all = Vec::new();
    for ch in CHANNELS.iter().filter(|c| only.is_none_or(|o| o == **c)) {
        let raws: Vec<RawOrder> = (0..orders as u64)
            .filter_map(|n| normalize::example_raw(ch, n))
            .collect();
        let bytes = raws.iter().map(|r| r.payload.len()).sum::<usize>() / raws.len().max(1);
        let map = rate(&raws, &catalog, false, Duration::from_secs(1))?;
        let full = rate(&raws, &catalog, true, Duration::from_secs(1))?;
        println!("{ch:<10} {bytes:>8} {map:>14.0} {full:>22.0}");
        all.extend(raws);
    }
    let mixed = rate(&all, &catalog, true, Duration::from_secs(1))?;
    println!("{:<10} {:>8} {:>14} {:>22.0}", "mixed", "", "", mixed);
    println!("(map = parse + canonicalize + validate; +version = the content hash and version decision of the processor; no broker)");
    Ok(())
}

const WRK_SCRIPT: &str = r#"
-- conveyor bench webhooks: one signed Shopify order, a fresh webhook id per request
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.body = BODY
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Shopify-Topic"] = "orders/create"
  wrk.headers["X-Shopify-Hmac-Sha256"] = SIG
end
function request()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = "bench-" .. RUN .. "-" .. tid .. "-" .. counter
  return wrk.format()
end
"#;

pub async fn webhooks_bench(config: &Config, seconds: u64, connections: u32) -> anyhow::Result<()> {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        anyhow::bail!(
            "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu) and run again"
        );
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench webhooks`");
    }
    let run = format!("{}-{}", std::process::id(), super::demo::now_ms());
    let mut config = config.clone();
    config.topics.namespace = format!("conveyor.bench.{run}");
    let secret = format!("bench-{run}");
    config.channels.shopify.webhook_secrets = vec![Secret::new(secret.clone())];
    let config = &config;
    let topo = Topology::resolve(config);
    let raw = topo
        .raw_topic("shopify")
        .context("shopify is not enabled")?
        .to_string();
    let codec = Arc::new(conveyor_schemas::codec::Codec::new(
        &config.schema_registry.url,
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    {
        let admin = conveyor_runtime::kafka::Admin::new(&config.kafka)?;
        let specs: Vec<_> = topo
            .topics
            .iter()
            .filter(|t| t.id == "orders_raw")
            .cloned()
            .collect();
        admin.ensure_topics(&specs).await?;
    }
    let receiver = {
        let (config, codec, token) = (config.clone(), codec.clone(), shutdown.token());
        tokio::spawn(async move {
            conveyor_connectors::shopify::serve(&config, codec, listener, token).await
        })
    };
    let (body, _) =
        conveyor_connectors::simulate::shopify::webhook_request(1, &secret, "orders/create");
    let sig = conveyor_connectors::signature::sign_base64(secret.as_bytes(), &body);
    let lua = format!(
        "BODY = {}\nSIG = \"{sig}\"\nRUN = \"{run}\"\n{WRK_SCRIPT}",
        lua_string(&String::from_utf8_lossy(&body))
    );
    let mut script = tempfile_in_state(config, &format!("wrk-{run}.lua"))?;
    script.1.write_all(lua.as_bytes())?;
    drop(script.1);
    let url = format!("http://{addr}/webhooks/shopify");
    println!("webhook ingestion: wrk -t2 -c{connections} -d{seconds}s against {url} (each request a signed orders/create with its own webhook id; 200 only after acks=all)");
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script.0)
        .arg(&url)
        .output()
        .await?;
    let _ = std::fs::remove_file(&script.0);
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let probe = Consumer::new(
        &config.kafka,
        "bench",
        &format!("{}.bench", config.kafka.group_prefix),
    )?;
    let stored =
        probe.end_offsets_total(&raw, config.topics.partitions, Duration::from_secs(10))?;
    println!("raw records the broker holds: {stored}");
    shutdown.trigger();
    let _ = receiver.await;
    let admin = conveyor_runtime::kafka::Admin::new(&config.kafka)?;
    let names: Vec<&str> = topo
        .topics
        .iter()
        .filter(|t| t.id == "orders_raw")
        .map(|t| t.name.as_str())
        .collect();
    let _ = admin.delete_topics(&names).await;
    Ok(())
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tempfile_in_state(
    config: &Config,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, std::fs::File)> {
    let dir = std::path::Path::new(&config.state.dir);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let f = std::fs::File::create(&path)?;
    Ok((path, f))
}

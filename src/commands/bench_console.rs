//! `conveyor bench console`: how fast the operator console's pages answer
//! with a large operational store behind them.
//!
//! 1. An embedded store holding `--orders` orders of the sample stream
//!    (order, allocation, plan, label, sync-back, movements, exceptions,
//!    alerts), ending now, so the exceptions queue has its week of
//!    exceptions. It is kept under `~/.cache/conveyor/bench-console` and
//!    reused by runs with the same count within a day (loading a million
//!    orders takes minutes).
//! 2. The status API over it and the console over the status API, both in
//!    this process on loopback, as deployed (the console reads through
//!    the API); logged in as an admin (every page, personal data shown).
//! 3. `--requests` requests per page from 2 connections, each for a
//!    different order, SKU, number, email or tracking number picked from
//!    the store: p50 / p99 / max per page, and whether p99 is under the
//!    100 ms target.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use conveyor_runtime::config::Config;
use conveyor_sinks::event::Located;
use conveyor_sinks::ops::embedded::EmbeddedStore;
use conveyor_sinks::ops::model::located_mutations;
use conveyor_sinks::ops::testkit::order_id;
use conveyor_sinks::ops::OperationalStore;
use conveyor_sinks::sample::{self, ORDER_SPACING_MS};

use super::bench_sinks::pct;
use super::console::html::url;
use crate::usage;

const TARGET_P99_MS: f64 = 100.0;

fn loadavg() -> String {
    format!("{:.2}", super::bench_pipeline::loadavg()[0])
}

/// Opens the cached store of `orders` orders, loading it first if needed.
async fn store(orders: u64) -> anyhow::Result<EmbeddedStore> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = home.join(".cache/conveyor/bench-console");
    let path = dir.join(format!("ops-{orders}.redb"));
    let done = dir.join(format!("ops-{orders}.loaded"));
    // Orders end when loaded: the queue's week has exceptions. A cache
    // older than a day is loaded again (its exceptions age out).
    let now = super::console::pages::now_ms();
    let loaded_at = std::fs::read_to_string(&done)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    if path.exists() && loaded_at.is_some_and(|t| now - t < 86_400_000) {
        println!("store: {} (cached)", path.display());
        return Ok(EmbeddedStore::open(&path)?);
    }
    let base = now - now % 3_600_000 - orders as i64 * ORDER_SPACING_MS;
    EmbeddedStore::remove(&path)?;
    let store = EmbeddedStore::open(&path)?;
    println!("store: loading {orders} orders into {}", path.display());
    let started = Instant::now();
    let chunk = 2_000u64;
    let mut records = 0usize;
    let mut at = 0u64;
    while at < orders {
        let end = (at + chunk).min(orders);
        let events = sample::orders(at..end, base);
        records += events.len();
        let muts = events
            .into_iter()
            .enumerate()
            .flat_map(|(i, e)| located_mutations(&Located::first_run(e, "bench", 0, i as i64)))
            .collect();
        store.apply(muts).await?;
        at = end;
        if at.is_multiple_of(100_000) || at == orders {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {at} orders, {records} records, {secs:.0} s ({:.0} records/s)",
                records as f64 / secs
            );
        }
    }
    std::fs::write(&done, now.to_string())?;
    Ok(store)
}

/// What the page requests look for: real values from the store.
struct Picks {
    ids: Vec<String>,
    numbers: Vec<String>,
    emails: Vec<String>,
    tracking: Vec<String>,
    skus: Vec<String>,
}

async fn picks(store: &EmbeddedStore, orders: u64, n: u64) -> anyhow::Result<Picks> {
    let mut p = Picks {
        ids: Vec::new(),
        numbers: Vec::new(),
        emails: Vec::new(),
        tracking: Vec::new(),
        skus: Vec::new(),
    };
    for k in 0..n {
        let id = order_id(k.wrapping_mul(7919).wrapping_add(13) % orders);
        if let Some(d) = store.order(&id).await?.and_then(|o| o.details) {
            p.numbers.extend(d.external_number);
            p.emails.extend(d.customer_email);
        }
        for s in store.shipments(&id).await? {
            p.tracking.extend(s.label.map(|l| l.tracking_number));
        }
        for l in store.lines(&id).await? {
            if !p.skus.contains(&l.sku) {
                p.skus.push(l.sku);
            }
        }
        p.ids.push(id);
    }
    anyhow::ensure!(
        !p.numbers.is_empty() && !p.emails.is_empty() && !p.tracking.is_empty(),
        "the store holds no searchable orders"
    );
    Ok(p)
}

const PAGES: &[&str] = &[
    "order page",
    "search: tracking number",
    "search: channel order number",
    "search: email",
    "search: SKU (50 newest)",
    "exceptions queue (7 days)",
    "inventory (alerts + 100 levels)",
    "SKU page",
    "audit log",
    "health",
];

/// Whether a page's body shows what was asked for (a search that found
/// nothing is fast for the wrong reason).
fn answered(page: usize, body: &str) -> bool {
    match page {
        // A single match opens the order.
        0..=3 => body.contains("id=\"timeline\""),
        4 => body.contains("found</h2>") && !body.contains("<h2>0 found"),
        5 => body.contains("class=\"open-exception\""),
        6 => body.contains("href=\"/sku?sku="),
        7 => body.contains("id=\"movements\""),
        8 => body.contains("id=\"audit\""),
        _ => body.contains("id=\"stages\""),
    }
}

fn path_of(page: usize, n: usize, p: &Picks) -> String {
    let pick = |v: &Vec<String>| v[(n * 31 + page) % v.len()].clone();
    match page {
        0 => format!("/order?id={}", url(&pick(&p.ids))),
        1 => format!("/orders?by=tracking&q={}", url(&pick(&p.tracking))),
        2 => format!("/orders?by=number&q={}", url(&pick(&p.numbers))),
        3 => format!("/orders?by=email&q={}", url(&pick(&p.emails))),
        4 => format!("/orders?by=sku&q={}", url(&pick(&p.skus))),
        5 => "/exceptions".into(),
        6 => "/inventory".into(),
        7 => format!("/sku?sku={}", url(&pick(&p.skus))),
        8 => "/audit".into(),
        _ => "/health".into(),
    }
}

pub async fn run(config: &Config, orders: u64, requests: usize) -> anyhow::Result<()> {
    if orders == 0 || requests == 0 {
        return Err(usage("--orders and --requests must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench console`");
    }
    println!(
        "console benchmark: {orders} orders; load average {}",
        loadavg()
    );
    let store = Arc::new(store(orders).await?);
    let picks = Arc::new(picks(store.as_ref(), orders, 400).await?);

    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api.local_addr()?;
    let api_app = conveyor_sinks::status_api::router(store.clone());
    let api_server = tokio::spawn(async move { axum::serve(api, api_app).await });

    let mut config = config.clone();
    config.console.status_api = format!("http://{api_addr}");
    let (console, users) = super::console::build(&config, true).await?;
    let (admin, password) = users
        .iter()
        .find(|(_, r, _)| *r == conveyor_runtime::console::Role::Admin)
        .map(|(n, _, p)| (n.clone(), p.clone()))
        .expect("dev users include an admin");
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let web_addr = web.local_addr()?;
    let web_app = super::console::router(console);
    let web_server = tokio::spawn(async move { axum::serve(web, web_app).await });

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie =
        super::console::login_cookie(&http, &format!("http://{web_addr}"), &admin, &password)
            .await?;
    println!(
        "{} requests per page, 2 connections; load average {}",
        requests,
        loadavg()
    );
    let mut rows = Vec::new();
    for (page, name) in PAGES.iter().enumerate() {
        let mut tasks = Vec::new();
        for t in 0..2usize {
            let (http, cookie, picks) = (http.clone(), cookie.clone(), picks.clone());
            let per = requests.div_ceil(2);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                let mut hits = 0usize;
                for n in 0..per {
                    let path = path_of(page, n * 2 + t, &picks);
                    let started = Instant::now();
                    let r = http
                        .get(format!("http://{web_addr}{path}"))
                        .header("cookie", &cookie)
                        .send()
                        .await?;
                    let status = r.status();
                    let body = r.text().await?;
                    anyhow::ensure!(status.is_success(), "GET {path}: HTTP {status}");
                    lat.push(started.elapsed());
                    hits += usize::from(answered(page, &body));
                }
                Ok::<_, anyhow::Error>((lat, hits))
            }));
        }
        let mut all = Vec::new();
        let mut hits = 0;
        for t in tasks {
            let (lat, h) = t.await??;
            all.extend(lat);
            hits += h;
        }
        all.sort();
        rows.push((name, all, hits));
    }
    api_server.abort();
    web_server.abort();

    println!();
    println!(
        "| page | requests | with results | p50 ms | p99 ms | max ms | p99 < {TARGET_P99_MS:.0} ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    let mut all_ok = true;
    for (name, l, hits) in &rows {
        let p99 = pct(l, 0.99);
        let ok = p99 < TARGET_P99_MS;
        all_ok &= ok;
        println!(
            "| {name} | {} | {hits} | {:.2} | {:.2} | {:.2} | {} |",
            l.len(),
            pct(l, 0.5),
            p99,
            pct(l, 1.0),
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "{} (load average after: {})",
        if all_ok {
            "every page under the target"
        } else {
            "some pages miss the target"
        },
        loadavg()
    );
    Ok(())
}

//! The demo's channels step: the catalog loaded, Shopify webhooks (signed,
//! through the real receiver) and the Admin REST poller (against the
//! simulator), TikTok Shop notifications (the receiver fetches each order
//! with the signed API call), the Amazon and eBay pollers, a CSV export
//! with a bad row, and normalize turning all of it
//! into `orders.normalized`, with a reason for everything it refuses.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_connectors::simulate::{amazon as asim, ebay as esim, shopify as sim, tiktok as tsim};
use conveyor_connectors::{amazon, catalog_load, csv_import, ebay, publish, shopify, tiktok};
use conveyor_runtime::config::{Config, Secret};
use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Topology};
use conveyor_schemas::codec::{Codec, Source};
use conveyor_schemas::records::{CatalogSku, DlqRecord, OrderEvent};

const WEBHOOKS: u64 = 500;
pub(super) const SHOP_ORDERS: u64 = 300;
pub(super) const AMAZON_ORDERS: u64 = 150;
pub(super) const EBAY_ORDERS: u64 = 250;
pub(super) const TIKTOK_ORDERS: u64 = 200;

/// Runs the channels step; returns the order events normalize emitted.
/// Returns the orders normalize emitted, the catalog they were resolved
/// against, and the Shopify order numbers the webhooks carried.
pub async fn run(
    config: &Config,
) -> anyhow::Result<(Vec<OrderEvent>, Vec<CatalogSku>, Range<u64>)> {
    let mut config = config.clone();
    let sc = &mut config.channels.shopify;
    if sc.webhook_secrets.is_empty() {
        sc.webhook_secrets = vec![Secret::new(format!("demo-{:016x}", fastrand::u64(..)))];
        println!("  no channels.shopify.webhook_secrets configured: using a one-off demo secret");
    }
    if sc.access_token.is_empty() {
        sc.access_token = Secret::new("shpat_demo");
    }
    let config = &config;
    let topo = Topology::resolve(config);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = if Path::new("examples/catalog.csv").exists() {
        Path::new("examples").to_path_buf()
    } else {
        root.join("examples")
    };
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);

    // The catalog first: normalize resolves every SKU through it.
    let skus = catalog_load::parse(
        &std::fs::read(examples.join("catalog.csv"))?,
        publish::now_ms(),
    )
    .map_err(|bad| anyhow::anyhow!("examples/catalog.csv: {}", csv_import::render_report(&bad)))?;
    catalog_load::publish(config, codec.clone(), &skus)
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "  catalog: {} SKUs published to {} (weights, dimensions, listing ids)",
        skus.len(),
        name(&topo, "catalog_skus")
    );

    let normalized = name(&topo, "orders_normalized");
    let dlq = name(&topo, "orders_dlq");
    let probe = Consumer::new(
        &config.kafka,
        "demo",
        &format!("{}.demo-probe", config.kafka.group_prefix),
    )?;
    let parts = config.topics.partitions;
    let start_norm = ends(&probe, &normalized, parts)?;
    let start_dlq = ends(&probe, &dlq, parts)?;

    // normalize runs in this process, one job per channel.
    let shutdown = Shutdown::new();
    let norm = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(
            async move { super::normalize::run(&config, &shutdown, Default::default()).await },
        )
    };

    // Shopify webhooks through the real receiver, signed like Shopify does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let receiver = {
        let (config, codec, token) = (config.clone(), codec.clone(), shutdown.token());
        tokio::spawn(async move { shopify::serve(&config, codec, listener, token).await })
    };
    // New order numbers on every run, so a second demo shows new orders.
    let from = (publish::now_ms() as u64 / 1000 % 1_000_000) * 1000 + 1_000_000;
    let url = format!("http://{addr}/webhooks/shopify");
    let t = Instant::now();
    let fired = sim::fire_webhooks(
        &url,
        config.channels.shopify.webhook_secrets[0].expose(),
        from..from + WEBHOOKS,
        16,
        50,
    )
    .await;
    println!(
        "  shopify webhooks: {} of {WEBHOOKS} signed orders/create acknowledged after the broker had them ({:.0}/s); a forged one: HTTP {}",
        fired.acked,
        fired.acked as f64 / t.elapsed().as_secs_f64().max(1e-9),
        forged(&url).await
    );

    // TikTok Shop: signed ORDER_STATUS_CHANGE notifications; the receiver
    // fetches each order with the signed Get Order Detail call.
    let (tt_key, tt_secret, tt_token) = ("demo-app-key", "demo-app-secret", "TTP_demo");
    let tt_shop = Arc::new(tsim::Sim::new(TIKTOK_ORDERS, tt_key, tt_secret, tt_token));
    let (tt_api, _tt_task) =
        tsim::serve(tt_shop.clone(), "127.0.0.1:0".parse()?, shutdown.token()).await?;
    let mut tt_config = config.clone();
    let tc = &mut tt_config.channels.tiktok;
    tc.api_url = format!("http://{tt_api}");
    tc.app_key = tt_key.into();
    tc.app_secrets = vec![Secret::new(tt_secret)];
    tc.access_token = Secret::new(tt_token);
    tc.api_rate_per_sec = 50.0;
    let tt_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tt_url = format!("http://{}/webhooks/tiktok", tt_listener.local_addr()?);
    let tt_receiver = {
        let (codec, token) = (codec.clone(), shutdown.token());
        tokio::spawn(async move { tiktok::serve(&tt_config, codec, tt_listener, token).await })
    };
    let t = Instant::now();
    let tt = tsim::fire_webhooks(&tt_url, tt_key, tt_secret, 0..TIKTOK_ORDERS, 16, 50).await;
    let (body, _) = tsim::webhook_request(0, tt_key, tt_secret);
    let tt_forged = reqwest::Client::new()
        .post(&tt_url)
        .header("authorization", "0".repeat(64))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    println!(
        "  tiktok webhooks: {} of {TIKTOK_ORDERS} ORDER_STATUS_CHANGE notifications acknowledged in {:.1} s, each order fetched by {} signed Get Order Detail calls (batched); a forged one: HTTP {tt_forged}",
        tt.acked,
        t.elapsed().as_secs_f64(),
        tt_shop.counts().0
    );

    // The Admin REST poller against the simulated shop: pages, rate limit, cursor.
    let shop = Arc::new(sim::Sim::new(
        SHOP_ORDERS,
        config.channels.shopify.access_token.expose(),
    ));
    let (shop_addr, _shop_task) =
        sim::serve(shop.clone(), "127.0.0.1:0".parse()?, shutdown.token()).await?;
    let mut sc = config.channels.shopify.clone();
    sc.api_url = format!("http://{shop_addr}");
    sc.backfill_hours = 24 * 365 * 50;
    let publisher = publish::RawPublisher::new(config, codec.clone(), "shopify", "demo-poller")?;
    let poller = shopify::poller::Poller::new(sc, publisher, Path::new(&config.state.dir));
    let stats = poller.pass(&shutdown.token()).await?;
    let (calls, throttled) = shop.counts();
    println!(
        "  shopify poller: {} orders in {} pages from the simulated Admin API ({calls} calls, {throttled} answered 429), cursor in {}",
        stats.orders,
        stats.pages,
        poller.cursor_file.display()
    );

    // Amazon SP-API and eBay pollers against their simulators (OAuth refresh,
    // paging, quotas), one pass each.
    let mut ac = config.channels.amazon.clone();
    let amazon_shop = Arc::new(
        asim::Sim::new(
            AMAZON_ORDERS,
            "amzn1.application-oa2-client.demo",
            "demo-secret",
            "Atzr|demo",
        )
        .with_rates((0.5, 1.0), (100.0, 30.0)),
    );
    let (a_addr, _a_task) = asim::serve(
        amazon_shop.clone(),
        "127.0.0.1:0".parse()?,
        shutdown.token(),
    )
    .await?;
    ac.api_url = format!("http://{a_addr}");
    ac.lwa_url = format!("http://{a_addr}/auth/o2/token");
    ac.client_id = "amzn1.application-oa2-client.demo".into();
    ac.client_secret = Secret::new("demo-secret");
    ac.refresh_token = Secret::new("Atzr|demo");
    ac.backfill_hours = 24 * 365 * 50;
    let a_pub = publish::RawPublisher::new(config, codec.clone(), "amazon", "demo-amazon")?;
    let a_poller = amazon::Poller::new(ac, a_pub, Path::new(&config.state.dir));
    let a_stats = a_poller.pass(&shutdown.token()).await?;
    println!(
        "  amazon poller: {} orders (getOrders {} pages + getOrderItems per order) from the simulated SP-API, {} answered 429 QuotaExceeded and retried",
        a_stats.orders, a_stats.pages, amazon_shop.counts().0
    );
    let mut ec = config.channels.ebay.clone();
    let ebay_shop = Arc::new(
        esim::Sim::new(EBAY_ORDERS, "conveyor-demo", "demo-secret", "v^1.1#demo").throttle_every(2),
    );
    let (e_addr, _e_task) =
        esim::serve(ebay_shop.clone(), "127.0.0.1:0".parse()?, shutdown.token()).await?;
    ec.api_url = format!("http://{e_addr}");
    ec.token_url = format!("http://{e_addr}/identity/v1/oauth2/token");
    ec.client_id = "conveyor-demo".into();
    ec.client_secret = Secret::new("demo-secret");
    ec.refresh_token = Secret::new("v^1.1#demo");
    ec.backfill_hours = 24 * 365 * 50;
    let e_pub = publish::RawPublisher::new(config, codec.clone(), "ebay", "demo-ebay")?;
    let e_stats = ebay::Poller::new(ec, e_pub, Path::new(&config.state.dir))
        .pass(&shutdown.token())
        .await?;
    println!(
        "  ebay poller: {} orders in {} pages from the simulated Fulfillment API, {} answered 429 and retried",
        e_stats.orders, e_stats.pages, ebay_shop.counts().0
    );

    // A CSV export with one bad row: the report, and only whole orders.
    let mapping = csv_import::Mapping::load(&examples.join("tcgplayer.mapping.toml"))?;
    let file = examples.join("tcgplayer-orders.csv");
    let p = csv_import::prepare(
        &std::fs::read(&file)?,
        "tcgplayer-orders.csv",
        "tcgplayer",
        &mapping,
        publish::now_ms(),
        true,
    )?;
    print!(
        "  csv import (tcgplayer): {} rows, {} orders, bad rows:\n  {}",
        p.rows,
        p.orders.len(),
        csv_import::render_report(&p.bad)
    );
    let csv_pub = publish::RawPublisher::new(config, codec.clone(), "csv", "demo-import")?;
    csv_pub.publish_all(&p.orders).await?;

    // Wait for normalize to catch up with every raw topic.
    let t = Instant::now();
    loop {
        let mut behind = 0;
        for ch in &config.channels.enabled {
            let raw = topo.raw_topic(ch).context("raw topic")?;
            let group = topology::group_id(config, &format!("normalize-{ch}"));
            let c = Consumer::new(&config.kafka, "demo", &group)?;
            let done: i64 = c
                .group_committed(raw, parts, Duration::from_secs(10))?
                .iter()
                .sum();
            behind += ends(&probe, raw, parts)?.iter().sum::<i64>() - done;
        }
        if behind <= 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(180) {
            anyhow::bail!("normalize did not catch up within 180 s ({behind} raw records behind)");
        }
        if norm.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shutdown.trigger();
    let summaries = norm.await.context("normalize task")??;
    let _ = receiver.await;
    let _ = tt_receiver.await;
    let processed: u64 = summaries.iter().map(|(_, s)| s.processed).sum();

    // What came out.
    let events: Vec<OrderEvent> = read_from(config, &codec, &normalized, &start_norm).await?;
    let dead: Vec<DlqRecord> = read_from(config, &codec, &dlq, &start_dlq).await?;
    let mut per_channel: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *per_channel.entry(e.order.channel.clone()).or_default() += 1;
    }
    println!(
        "  normalize: {processed} raw records in {:.1} s -> {} new order events in {normalized} {per_channel:?} (re-deliveries and older versions produce none), {} to {dlq}",
        t.elapsed().as_secs_f64(),
        events.len(),
        dead.len()
    );
    if let Some(e) = events.iter().find(|e| e.order.lines.len() > 1) {
        let o = &e.order;
        println!(
            "    e.g. {} {:?} v{}: {} lines [{}], total {} {}, ship to {} {} (name/street redacted)",
            e.order_id,
            e.kind,
            e.version,
            o.lines.len(),
            o.lines.iter().map(|l| format!("{} x{}", l.sku, l.quantity)).collect::<Vec<_>>().join(", "),
            o.totals.total.amount,
            o.currency,
            o.shipping_address.region.as_deref().unwrap_or(""),
            o.shipping_address.country
        );
    }
    for d in dead.iter().take(3) {
        println!(
            "    DLQ [{:?}] {} @ {}/{}: {}",
            d.error_kind, d.source_topic, d.source_partition, d.source_offset, d.reason
        );
    }
    Ok((events, skus, from..from + WEBHOOKS))
}

fn name(topo: &Topology, id: &str) -> String {
    topo.topic_name(id).unwrap_or(id).to_string()
}

pub(super) fn ends(c: &Consumer, topic: &str, partitions: i32) -> anyhow::Result<Vec<i64>> {
    (0..partitions)
        .map(|p| Ok(c.watermarks(topic, p, Duration::from_secs(10))?.1))
        .collect()
}

async fn forged(url: &str) -> u16 {
    let (body, headers) = sim::webhook_request(1, "not-the-secret", "orders/create");
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in &headers {
        req = req.header(*k, v);
    }
    req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Every record of `topic` from `from[p]` to the current end, decoded.
pub(super) async fn read_from<T: conveyor_schemas::records::Record>(
    config: &Config,
    codec: &Codec,
    topic: &str,
    from: &[i64],
) -> anyhow::Result<Vec<T>> {
    let c = Consumer::new(
        &config.kafka,
        "demo",
        &format!("{}.demo-reader", config.kafka.group_prefix),
    )?;
    let end = ends(&c, topic, from.len() as i32)?;
    let parts: Vec<(&str, i32, Option<i64>)> = (0..from.len())
        .filter(|&p| end[p] > from[p])
        .map(|p| (topic, p as i32, Some(from[p])))
        .collect();
    let mut left: i64 = (0..from.len()).map(|p| end[p] - from[p]).sum();
    let mut out = Vec::new();
    if parts.is_empty() {
        return Ok(out);
    }
    c.assign(&parts)?;
    while left > 0 {
        let r = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .context("timed out reading back the demo's records")??;
        if r.offset >= end[r.partition as usize] {
            continue;
        }
        left -= 1;
        let at = Source {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
        };
        out.push(codec.decode::<T>(r.payload.as_deref(), at).await?);
    }
    Ok(out)
}

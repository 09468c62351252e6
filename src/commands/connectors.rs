//! `conveyor connect`, `simulate`, `import csv` and `catalog load`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use conveyor_connectors::simulate::{amazon as asim, ebay as esim, shopify as sim, tiktok as tsim};
use conveyor_connectors::{amazon, catalog_load, csv_import, ebay, publish, shopify, tiktok};
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Admin;
use conveyor_runtime::service::Service;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;

use crate::usage;

/// Creates the topics a connector or loader writes.
async fn ensure_topics(config: &Config, ids: &[&str]) -> anyhow::Result<()> {
    let topo = Topology::resolve(config);
    let specs: Vec<_> = topo
        .topics
        .iter()
        .filter(|t| ids.contains(&t.id))
        .cloned()
        .collect();
    for r in Admin::new(&config.kafka)?.ensure_topics(&specs).await? {
        if let conveyor_runtime::kafka::TopicState::Failed(e) = &r.state {
            anyhow::bail!("cannot create topic {}: {e}", r.name);
        }
    }
    Ok(())
}

/// A connector's counters exported at 0 from its start: "no orders from a
/// channel" alerts on a flat series, which a missing one would not be.
fn zero_channel_counters(channel: &str) {
    let ch = channel.to_string();
    metrics::counter!("conveyor_connector_published_total", "channel" => ch.clone()).increment(0);
    metrics::counter!("conveyor_connector_throttled_total", "channel" => ch).increment(0);
}

pub async fn connect(
    config: &Config,
    channel: &str,
    bind: Option<SocketAddr>,
    observability_bind: Option<SocketAddr>,
) -> anyhow::Result<()> {
    match channel {
        "shopify" => {
            if config.channels.shopify.webhook_secrets.is_empty() {
                return Err(shopify::ConnectError::NoSecret.into());
            }
        }
        "tiktok" => tiktok::check(config)?,
        "amazon" | "ebay" => return run_poller(config, channel, observability_bind).await,
        _ => {
            return Err(usage(format!(
                "unknown channel `{channel}`; known: shopify, amazon, tiktok, ebay"
            )))
        }
    }
    ensure_topics(config, &["orders_raw"]).await?;
    let service = Service::start(
        &format!("connect-{channel}"),
        config.clone(),
        observability_bind.unwrap_or(config.http.observability_bind),
        axum::Router::new(),
        &[],
        Shutdown::on_signals(),
    )
    .await?;
    // After the service installed the metrics recorder.
    zero_channel_counters(channel);
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let bind = bind.unwrap_or(config.http.webhooks_bind);
    let token = service.shutdown.token();
    let r: anyhow::Result<()> = if channel == "tiktok" {
        tiktok::run(config, codec, bind, token)
            .await
            .map_err(Into::into)
    } else {
        shopify::run(config, codec, bind, token)
            .await
            .map_err(Into::into)
    };
    service.finish().await;
    r
}

/// `conveyor connect amazon|ebay`: the poller until SIGTERM.
async fn run_poller(
    config: &Config,
    channel: &str,
    observability_bind: Option<SocketAddr>,
) -> anyhow::Result<()> {
    ensure_topics(config, &["orders_raw"]).await?;
    let name = format!("connect-{channel}");
    let service = Service::start(
        &name,
        config.clone(),
        observability_bind.unwrap_or(config.http.observability_bind),
        axum::Router::new(),
        &[],
        Shutdown::on_signals(),
    )
    .await?;
    // After the service installed the metrics recorder.
    zero_channel_counters(channel);
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let publisher = publish::RawPublisher::new(config, codec, channel, &name)?;
    let state = Path::new(&config.state.dir);
    let token = service.shutdown.token();
    println!(
        "{name}: polling {} every {} s",
        match channel {
            "amazon" => config.channels.amazon.api_url.as_str(),
            _ => config.channels.ebay.api_url.as_str(),
        },
        match channel {
            "amazon" => config.channels.amazon.poll_interval_ms,
            _ => config.channels.ebay.poll_interval_ms,
        } / 1000
    );
    match channel {
        "amazon" => {
            amazon::Poller::new(config.channels.amazon.clone(), publisher.clone(), state)
                .run(token)
                .await
        }
        _ => {
            ebay::Poller::new(config.channels.ebay.clone(), publisher.clone(), state)
                .run(token)
                .await
        }
    }
    publisher.flush();
    service.finish().await;
    Ok(())
}

fn sim_bind(args: &crate::cli::SimArgs, api_url: &str, fallback: u16) -> SocketAddr {
    args.bind.unwrap_or_else(|| {
        let port = reqwest::Url::parse(api_url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(fallback);
        ([127, 0, 0, 1], port).into()
    })
}

pub async fn simulate_amazon(config: &Config, a: crate::cli::SimArgs) -> anyhow::Result<()> {
    let c = &config.channels.amazon;
    let mut shop = asim::Sim::new(
        a.orders,
        &c.client_id,
        c.client_secret.expose(),
        c.refresh_token.expose(),
    );
    if !a.real_limits {
        shop = shop.with_rates((5.0, 20.0), (50.0, 30.0));
    }
    let shutdown = Shutdown::on_signals();
    let (addr, task) = asim::serve(
        Arc::new(shop),
        sim_bind(&a, &c.api_url, 8092),
        shutdown.token(),
    )
    .await?;
    println!(
        "simulated Amazon SP-API with {} orders: http://{addr}/orders/v0/orders, LWA at http://{addr}/auth/o2/token (credentials: channels.amazon; Ctrl-C stops)",
        a.orders
    );
    let _ = task.await;
    Ok(())
}

pub async fn simulate_ebay(config: &Config, a: crate::cli::SimArgs) -> anyhow::Result<()> {
    let c = &config.channels.ebay;
    let shop = esim::Sim::new(
        a.orders,
        &c.client_id,
        c.client_secret.expose(),
        c.refresh_token.expose(),
    );
    let shutdown = Shutdown::on_signals();
    let (addr, task) = esim::serve(
        Arc::new(shop),
        sim_bind(&a, &c.api_url, 8094),
        shutdown.token(),
    )
    .await?;
    println!(
        "simulated eBay with {} orders: http://{addr}/sell/fulfillment/v1/order, OAuth at http://{addr}/identity/v1/oauth2/token (credentials: channels.ebay; Ctrl-C stops)",
        a.orders
    );
    let _ = task.await;
    Ok(())
}

pub async fn simulate_carrier(
    config: &Config,
    bind: Option<SocketAddr>,
    rate: f64,
    fail_every: u64,
    latency_ms: u64,
) -> anyhow::Result<()> {
    use conveyor_connectors::simulate::carrier;
    let l = &config.label;
    let sim = carrier::Sim::new(l.api_token.expose())
        .with_rate(rate, rate.max(1.0))
        .fail_every(fail_every)
        .with_latency(std::time::Duration::from_millis(latency_ms));
    let bind = bind.unwrap_or_else(|| {
        let port = reqwest::Url::parse(&l.api_url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(8095);
        ([127, 0, 0, 1], port).into()
    });
    let shutdown = Shutdown::on_signals();
    let (addr, task) = carrier::serve(Arc::new(sim), bind, shutdown.token()).await?;
    println!(
        "simulated label API: POST http://{addr}/transactions (token: label.api_token), labels at http://{addr}/labels/<id>.pdf, sales at http://{addr}/sim/purchases (Ctrl-C stops)"
    );
    let _ = task.await;
    Ok(())
}

pub async fn simulate_tiktok(
    config: &Config,
    a: crate::cli::SimArgs,
    burst: Option<crate::cli::WebhookBurst>,
) -> anyhow::Result<()> {
    let c = &config.channels.tiktok;
    let secret = c
        .app_secrets
        .first()
        .filter(|s| !s.is_empty())
        .context("channels.tiktok.app_secrets is empty: the simulator signs and checks with the first secret")?;
    if c.app_key.is_empty() {
        anyhow::bail!("channels.tiktok.app_key is empty: the simulator only answers that app");
    }
    if let Some(b) = burst {
        let url = b
            .target
            .unwrap_or_else(|| format!("http://{}/webhooks/tiktok", config.http.webhooks_bind));
        println!(
            "delivering {} signed ORDER_STATUS_CHANGE notifications to {url} ({} at a time)",
            b.count, b.concurrency
        );
        let started = std::time::Instant::now();
        let s = tsim::fire_webhooks(
            &url,
            &c.app_key,
            secret.expose(),
            b.from..b.from + b.count,
            b.concurrency,
            50,
        )
        .await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "acknowledged {} of {} in {secs:.1} s ({:.0}/s), {} retried deliveries, {} never acknowledged",
            s.acked,
            b.count,
            s.acked as f64 / secs.max(1e-9),
            s.retries,
            s.failed
        );
        if s.failed > 0 {
            anyhow::bail!("{} notifications were never acknowledged", s.failed);
        }
        return Ok(());
    }
    let mut shop = tsim::Sim::new(
        a.orders,
        &c.app_key,
        secret.expose(),
        c.access_token.expose(),
    );
    if !c.shop_cipher.is_empty() {
        shop = shop.with_shop_cipher(&c.shop_cipher);
    }
    if !a.real_limits {
        shop = shop.with_rate(1000.0, 1000.0);
    }
    let shutdown = Shutdown::on_signals();
    let (addr, task) = tsim::serve(
        Arc::new(shop),
        sim_bind(&a, &c.api_url, 8093),
        shutdown.token(),
    )
    .await?;
    println!(
        "simulated TikTok Shop with {} orders: http://{addr}{} (credentials: channels.tiktok; Ctrl-C stops)",
        a.orders,
        conveyor_connectors::tiktok::client::ORDER_DETAIL_PATH
    );
    let _ = task.await;
    Ok(())
}

pub async fn simulate_shopify(
    config: &Config,
    bind: SocketAddr,
    orders: u64,
    webhooks: Option<u64>,
    from: u64,
    target: Option<String>,
    concurrency: usize,
) -> anyhow::Result<()> {
    if let Some(n) = webhooks {
        let secret = config.channels.shopify.webhook_secrets.first().context(
            "channels.shopify.webhook_secrets is empty: the simulator signs with the first secret",
        )?;
        let url = target
            .unwrap_or_else(|| format!("http://{}/webhooks/shopify", config.http.webhooks_bind));
        println!("delivering {n} signed orders/create webhooks to {url} ({concurrency} at a time)");
        let started = std::time::Instant::now();
        let s = sim::fire_webhooks(&url, secret.expose(), from..from + n, concurrency, 50).await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "acknowledged {} of {n} in {secs:.1} s ({:.0}/s), {} retried deliveries, {} never acknowledged",
            s.acked,
            s.acked as f64 / secs.max(1e-9),
            s.retries,
            s.failed
        );
        if s.failed > 0 {
            anyhow::bail!("{} webhooks were never acknowledged", s.failed);
        }
        return Ok(());
    }
    let shutdown = Shutdown::on_signals();
    let shop = Arc::new(sim::Sim::new(
        orders,
        config.channels.shopify.access_token.expose(),
    ));
    let (addr, task) = sim::serve(shop, bind, shutdown.token()).await?;
    println!(
        "simulated Shopify Admin API with {orders} orders: http://{addr}/admin/api/{}/orders.json (Ctrl-C stops)",
        config.channels.shopify.api_version
    );
    let _ = task.await;
    Ok(())
}

pub async fn import_csv(
    config: &Config,
    file: &Path,
    source: &str,
    mapping: &Path,
    skip_bad_orders: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    if source.is_empty()
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(usage(format!(
            "--channel `{source}`: use letters, digits, - and _ (it becomes part of order ids)"
        )));
    }
    if !config.channels.enabled.iter().any(|c| c == "csv") {
        anyhow::bail!("channel `csv` is not in channels.enabled");
    }
    let m = csv_import::Mapping::load(mapping)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let p = csv_import::prepare(
        &bytes,
        &name,
        source,
        &m,
        publish::now_ms(),
        skip_bad_orders,
    )?;
    println!(
        "{}: {} rows, {} orders ready, {} bad rows",
        file.display(),
        p.rows,
        p.orders.len(),
        p.bad.len()
    );
    if !p.bad.is_empty() {
        print!("{}", csv_import::render_report(&p.bad));
    }
    if !p.bad.is_empty() && !skip_bad_orders {
        anyhow::bail!(
            "nothing imported: fix the rows above, or pass --skip-bad-orders to import every order \
             except the {} with bad rows ({})",
            p.skipped_orders.len(),
            p.skipped_orders.join(", ")
        );
    }
    if dry_run {
        println!("dry run: nothing published");
        return Ok(());
    }
    ensure_topics(config, &["orders_raw"]).await?;
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    let publisher = publish::RawPublisher::new(config, codec, "csv", "import-csv")?;
    publisher.publish_all(&p.orders).await?;
    println!(
        "imported {} orders from {source} into {}{}",
        p.orders.len(),
        publisher.topic(),
        if p.skipped_orders.is_empty() {
            String::new()
        } else {
            format!(
                " ({} orders skipped: {})",
                p.skipped_orders.len(),
                p.skipped_orders.join(", ")
            )
        }
    );
    Ok(())
}

pub async fn catalog_load(
    config: &Config,
    file: Option<&Path>,
    from_shopify: bool,
    currency: &str,
) -> anyhow::Result<()> {
    let skus = if from_shopify {
        let cur = conveyor_processors::normalize::fields::currency("--currency", currency)
            .map_err(|e| usage(e.0))?;
        let (skus, skipped) =
            catalog_load::from_shopify(&config.channels.shopify, cur, publish::now_ms())
                .await
                .map_err(anyhow::Error::msg)?;
        println!(
            "{} SKUs from the Shopify products at {}{}",
            skus.len(),
            config.channels.shopify.api_url,
            if skipped > 0 {
                format!(" ({skipped} variants without a SKU skipped)")
            } else {
                String::new()
            }
        );
        skus
    } else {
        let file = file.context("a catalog CSV or --from-shopify")?;
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        match catalog_load::parse(&bytes, publish::now_ms()) {
            Ok(s) => s,
            Err(bad) => {
                print!("{}", csv_import::render_report(&bad));
                anyhow::bail!(
                    "nothing loaded: {} bad rows in {}",
                    bad.len(),
                    file.display()
                );
            }
        }
    };
    ensure_topics(config, &["catalog_skus"]).await?;
    let codec = Arc::new(Codec::new(&config.schema_registry.url)?);
    catalog_load::publish(config, codec, &skus)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("loaded {} SKUs into the catalog", skus.len());
    Ok(())
}

//! Demo step, inside the allocation step: the sync-back job tells the four
//! channel simulators each labeled parcel's tracking (Shopify fulfillments,
//! Amazon confirmShipment, TikTok Mark Package As Shipped, eBay shipping
//! fulfillments) and the step prints what each channel now holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use conveyor_connectors::simulate::{amazon, ebay, shopify, tiktok};
use conveyor_runtime::config::{Config, Secret};
use conveyor_schemas::records::{ExceptionRecord, SyncOutcome, SyncedShipment};
use tokio_util::sync::CancellationToken;

use super::demo_channels::{AMAZON_ORDERS, EBAY_ORDERS, SHOP_ORDERS, TIKTOK_ORDERS};

/// The channel simulators the demo's orders came from, again, now taking
/// tracking.
pub struct Shops {
    pub shopify: Arc<shopify::Sim>,
    pub amazon: Arc<amazon::Sim>,
    pub tiktok: Arc<tiktok::Sim>,
    pub ebay: Arc<ebay::Sim>,
}

/// Serves the four simulators until `stop` (the shop has the polled orders
/// and `webhook_orders`); `config` with its channels pointed at them.
pub async fn start(
    config: &Config,
    webhook_orders: std::ops::Range<u64>,
    stop: CancellationToken,
) -> anyhow::Result<(Config, Shops)> {
    let counts = Counts {
        shopify: vec![0..SHOP_ORDERS, webhook_orders],
        amazon: AMAZON_ORDERS,
        tiktok: TIKTOK_ORDERS,
        ebay: EBAY_ORDERS,
    };
    serve(config, counts, 100.0, stop).await
}

/// The orders each simulated channel has.
pub struct Counts {
    pub shopify: Vec<std::ops::Range<u64>>,
    pub amazon: u64,
    pub tiktok: u64,
    pub ebay: u64,
}

/// Serves the four simulators with `orders`, their rate limits at twice
/// `rate` and the clients' at `rate` calls/s.
pub async fn serve(
    config: &Config,
    orders: Counts,
    rate: f64,
    stop: CancellationToken,
) -> anyhow::Result<(Config, Shops)> {
    let mut c = config.clone();
    let bind: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    let token = "shpat_demo";
    let shops = Shops {
        shopify: Arc::new(
            shopify::Sim::with_orders(orders.shopify, token).with_bucket(2.0 * rate, 2.0 * rate),
        ),
        amazon: Arc::new(
            amazon::Sim::new(orders.amazon, "amzn-demo", "demo-secret", "Atzr|demo")
                .with_confirm_rate(2.0 * rate, 2.0 * rate),
        ),
        tiktok: Arc::new(
            tiktok::Sim::new(orders.tiktok, "demo-app-key", "demo-app-secret", "TTP_demo")
                .with_rate(2.0 * rate, 2.0 * rate),
        ),
        ebay: Arc::new(ebay::Sim::new(
            orders.ebay,
            "conveyor-demo",
            "demo-secret",
            "v^1.1#demo",
        )),
    };
    let (a, _) = shopify::serve(shops.shopify.clone(), bind, stop.clone()).await?;
    c.channels.shopify.api_url = format!("http://{a}");
    c.channels.shopify.access_token = Secret::new(token);
    let (a, _) = amazon::serve(shops.amazon.clone(), bind, stop.clone()).await?;
    let ac = &mut c.channels.amazon;
    ac.api_url = format!("http://{a}");
    ac.lwa_url = format!("http://{a}/auth/o2/token");
    ac.client_id = "amzn-demo".into();
    ac.client_secret = Secret::new("demo-secret");
    ac.refresh_token = Secret::new("Atzr|demo");
    let (a, _) = tiktok::serve(shops.tiktok.clone(), bind, stop.clone()).await?;
    let tc = &mut c.channels.tiktok;
    tc.api_url = format!("http://{a}");
    tc.app_key = "demo-app-key".into();
    tc.app_secrets = vec![Secret::new("demo-app-secret")];
    tc.access_token = Secret::new("TTP_demo");
    tc.api_rate_per_sec = rate;
    let (a, _) = ebay::serve(shops.ebay.clone(), bind, stop).await?;
    let ec = &mut c.channels.ebay;
    ec.api_url = format!("http://{a}");
    ec.token_url = format!("http://{a}/identity/v1/oauth2/token");
    ec.client_id = "conveyor-demo".into();
    ec.client_secret = Secret::new("demo-secret");
    ec.refresh_token = Secret::new("v^1.1#demo");
    for ch in ["shopify", "amazon", "tiktok", "ebay"] {
        c.syncback.rate_per_sec.insert(ch.into(), rate);
    }
    Ok((c, shops))
}

/// The sync-back summary: outcomes per channel, what the simulators hold,
/// one parcel in full, the exceptions raised.
pub fn describe(synced: &[SyncedShipment], raised: &[ExceptionRecord], shops: &Shops, topic: &str) {
    let unique: BTreeMap<&str, &SyncedShipment> =
        synced.iter().map(|s| (s.shipment_id.as_str(), s)).collect();
    let mut per: BTreeMap<(&str, SyncOutcome), usize> = BTreeMap::new();
    for s in unique.values() {
        *per.entry((s.channel.as_str(), s.outcome)).or_default() += 1;
    }
    let line: Vec<String> = per
        .iter()
        .map(|((c, o), n)| format!("{c} {n} {}", outcome(*o)))
        .collect();
    println!(
        "  syncback ran in this process against the four channel simulators: {} parcels ({}), {} records on {topic}",
        unique.len(),
        line.join(", "),
        synced.len()
    );
    let held = [
        ("shopify fulfillments", shops.shopify.shipments.totals()),
        ("amazon confirmations", shops.amazon.shipments.totals()),
        ("tiktok packages", shops.tiktok.shipments.totals()),
        ("ebay shipping fulfillments", shops.ebay.shipments.totals()),
    ];
    let held: Vec<String> = held
        .iter()
        .map(|(what, t)| format!("{} {what} ({} told twice)", t.shipments, t.duplicates))
        .collect();
    println!("    the channels now hold {}", held.join(", "));
    if let Some(s) = unique
        .values()
        .find(|s| s.channel == "shopify" && s.outcome == SyncOutcome::Confirmed)
        .or_else(|| unique.values().next())
    {
        println!(
            "    e.g. {} -> {} order {}: {} tracking {}, channel reference {}",
            s.shipment_id,
            s.channel,
            s.external_order_id,
            s.carrier,
            s.tracking_number,
            s.channel_reference.as_deref().unwrap_or("-")
        );
    }
    let open: BTreeMap<&str, &ExceptionRecord> = raised
        .iter()
        .map(|e| (e.exception_id.as_str(), e))
        .collect();
    if open.is_empty() {
        println!("    exceptions: none");
    }
    for e in open.values().take(3) {
        println!(
            "    exception {} [{}]: {}; {}",
            e.exception_id, e.code, e.reason, e.action
        );
    }
}

fn outcome(o: SyncOutcome) -> &'static str {
    match o {
        SyncOutcome::Confirmed => "confirmed",
        SyncOutcome::AlreadyConfirmed => "already held",
        SyncOutcome::NotSynced => "not synced",
        SyncOutcome::Withdrawn => "withdrawn (label voided)",
    }
}

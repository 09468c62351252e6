//! `conveyor bench syncback`: parcels/s told to each channel simulator by
//! the sync-back clients (check what the channel holds, then create), one
//! parcel at a time and with several orders in flight, the published rate
//! limits lifted: what the client and its checks cost per parcel, not the
//! channels' quotas (which bound production: Shopify 2 calls/s per shop
//! on standard plans, Amazon confirmShipment 2/s).

use std::sync::Arc;
use std::time::Instant;

use conveyor_connectors::syncback::{Channels, Parcel, Pushed};
use conveyor_processors::catalog::Catalog;
use conveyor_runtime::config::Config;
use conveyor_schemas::records::LineQty;
use tokio_util::sync::CancellationToken;

use super::demo_syncback::{serve, Counts};
use crate::usage;

const CHANNELS: [&str; 4] = ["shopify", "amazon", "tiktok", "ebay"];

/// The parcel of order `n` of `channel`: every line, as normalize maps it.
fn parcel(channel: &str, n: u64, round: usize, catalog: &Catalog) -> anyhow::Result<Parcel> {
    let o = conveyor_connectors::simulate::example_order(channel, n, catalog)
        .map_err(anyhow::Error::msg)?;
    Ok(Parcel {
        shipment_id: format!("{}/bench/{round}", o.order_id),
        order_id: o.order_id.clone(),
        channel: o.channel.clone(),
        external_order_id: o.external_id.clone(),
        carrier: "usps".into(),
        service: "ground_advantage".into(),
        tracking_number: format!("BENCH{round}-{}", o.order_id),
        tracking_url: None,
        lines: o
            .lines
            .iter()
            .map(|l| LineQty {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect(),
        shipped_at: 1_790_000_000_000,
    })
}

pub async fn run(config: &Config, orders: u64, concurrency: usize) -> anyhow::Result<()> {
    if orders == 0 || concurrency == 0 {
        return Err(usage(
            "--orders and --concurrency must be at least 1".into(),
        ));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench syncback`");
    }
    let catalog = Catalog::from_skus(
        conveyor_connectors::catalog_load::parse(include_bytes!("../../examples/catalog.csv"), 1)
            .map_err(|bad| anyhow::anyhow!("examples/catalog.csv: {} bad rows", bad.len()))?,
    );
    let stop = CancellationToken::new();
    // Two rounds (sequential, then concurrent), each over its own orders.
    let counts = Counts {
        shopify: std::iter::once(0..2 * orders).collect(),
        amazon: 2 * orders,
        tiktok: 2 * orders,
        ebay: 2 * orders,
    };
    let (c, shops) = serve(config, counts, 1e6, stop.clone()).await?;
    let channels = Arc::new(Channels::new(&c));
    println!(
        "sync-back benchmark: {orders} orders per channel and round against the in-process simulators, rate limits lifted, Amazon's canceled orders (every 13th) refused"
    );
    println!(
        "{:<8} {:>8} {:>10} {:>14} {:>16} {:>9}",
        "channel",
        "parcels",
        "refused",
        "sequential/s",
        &format!("{concurrency} in flight/s"),
        "told 2x"
    );
    for channel in CHANNELS {
        let mut rates = Vec::new();
        let mut refused = 0u64;
        let mut told = 0u64;
        for (round, width) in [(0usize, 1usize), (1, concurrency)] {
            let parcels: Vec<Parcel> = (round as u64 * orders..(round as u64 + 1) * orders)
                .map(|n| parcel(channel, n, round, &catalog))
                .collect::<anyhow::Result<_>>()?;
            let parcels = Arc::new(parcels);
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..width {
                let (channels, parcels, next) = (channels.clone(), parcels.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let (mut ok, mut no) = (0u64, 0u64);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = parcels.get(i) else { break };
                        match channels.push(p).await {
                            Some(Ok(Pushed::Confirmed(_) | Pushed::AlreadyConfirmed(_))) => ok += 1,
                            _ => no += 1,
                        }
                    }
                    (ok, no)
                }));
            }
            for task in tasks {
                let (ok, no) = task.await?;
                told += ok;
                refused += no;
            }
            rates.push(parcels.len() as f64 / t.elapsed().as_secs_f64());
        }
        let ledger = match channel {
            "shopify" => shops.shopify.shipments.totals(),
            "amazon" => shops.amazon.shipments.totals(),
            "tiktok" => shops.tiktok.shipments.totals(),
            _ => shops.ebay.shipments.totals(),
        };
        println!(
            "{:<8} {:>8} {:>10} {:>14.0} {:>16.0} {:>9}",
            channel, told, refused, rates[0], rates[1], ledger.duplicates
        );
    }
    stop.cancel();
    Ok(())
}

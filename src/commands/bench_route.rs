//! `conveyor bench route`: plans/s of the pure planner on one core: each
//! parcel packed, zoned, rated across every carrier service and chosen,
//! over a seeded workload's orders shipped from their nearest warehouse.

use std::collections::BTreeMap;
use std::time::Instant;

use conveyor_processors::allocate::workload;
use conveyor_processors::catalog::Catalog;
use conveyor_processors::route::plan::{plan, Router};
use conveyor_runtime::config::Config;

use crate::usage;

pub fn run(config: &Config, shipments: usize) -> anyhow::Result<()> {
    if shipments == 0 {
        return Err(usage("--shipments must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench route`");
    }
    let ids: Vec<String> = config.warehouses.iter().map(|w| w.id.clone()).collect();
    let w = workload::generate(2026, shipments, 500, &ids, 1.0, 1_790_000_000_000);
    let catalog = Catalog::from_skus(workload::catalog(&w));
    let router = Router::new(config.routing.clone(), &config.warehouses);
    let cases = conveyor_processors::route::sample::cases(config, &w);
    println!(
        "route benchmark: {} parcels ({} SKUs, {} warehouses, {} carrier services), one thread",
        cases.len(),
        w.skus.len(),
        ids.len(),
        config
            .routing
            .carriers
            .iter()
            .map(|c| c.services.len())
            .sum::<usize>()
    );
    let mut best = f64::MAX;
    let mut mix: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = 0;
    for round in 0..3 {
        let t = Instant::now();
        for (i, (order, alloc)) in cases.iter().enumerate() {
            match plan(
                &router,
                &catalog,
                order,
                alloc,
                format!("{}/{}/1", order.order_id, alloc.warehouse_id),
                format!("bench/{i}"),
                order.created_at,
            ) {
                Ok(p) if round == 0 => {
                    *mix.entry(format!("{}/{}", p.carrier, p.service))
                        .or_default() += 1
                }
                Ok(_) => {}
                Err(_) => failed += usize::from(round == 0),
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "  plan(): {:.0} plans/s ({:.1} us per plan, best of 3 rounds); {failed} could not be planned",
        cases.len() as f64 / best,
        best * 1e6 / cases.len() as f64
    );
    println!(
        "  chosen: {}",
        mix.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

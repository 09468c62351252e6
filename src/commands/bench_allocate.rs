//! `conveyor bench allocate`: allocation decisions/s on one core (the pure
//! `decide`), both jobs' state machines in memory, the quality report
//! (policy vs brute-force optimum), and end to end through the broker
//! (both jobs and their forwarders in this process, fresh topics).

use std::time::{Duration, Instant};

use conveyor_processors::allocate::candidates::rank;
use conveyor_processors::allocate::decide::{decide, Line, Policy};
use conveyor_processors::allocate::harness::{self, Watch};
use conveyor_processors::allocate::jobs;
use conveyor_processors::allocate::quality;
use conveyor_processors::allocate::sim::Sim;
use conveyor_processors::allocate::workload::{self, Workload};
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Admin;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;

use crate::usage;

pub async fn run(config: &Config, orders: usize, skus: usize, broker: bool) -> anyhow::Result<()> {
    if orders == 0 || skus == 0 {
        return Err(usage("--orders and --skus must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench allocate`");
    }
    let ids: Vec<String> = config.warehouses.iter().map(|w| w.id.clone()).collect();
    let w = workload::generate(2026, orders, skus, &ids, 0.8, 1_700_000_000_000);
    let plan = jobs::plan(config);
    let rules = jobs::rules(config);
    println!(
        "allocation benchmark: {orders} orders over {skus} SKUs, {} warehouses, stock for 80% of demand (seed 2026)",
        ids.len()
    );

    // 1. decide() alone.
    let mut rng = fastrand::Rng::with_seed(1);
    let cases: Vec<_> = w
        .orders
        .iter()
        .map(|o| {
            let lines: Vec<Line> = o
                .units_by_sku()
                .into_iter()
                .map(|(sku, quantity)| Line { sku, quantity })
                .collect();
            let cands = rank(&plan.warehouses, &o.channel, &o.country, &o.postal_code);
            let held: Vec<Vec<i64>> = lines
                .iter()
                .map(|l| cands.iter().map(|_| rng.i64(0..=l.quantity)).collect())
                .collect();
            let p = plan.allocation.policy(&o.channel);
            (
                lines,
                cands,
                held,
                Policy {
                    split: p.split,
                    max_parcels: p.max_parcels as usize,
                },
            )
        })
        .collect();
    let started = Instant::now();
    let mut decisions = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for (lines, cands, held, policy) in &cases {
            std::hint::black_box(decide(lines, cands, held, *policy));
        }
        decisions += cases.len() as u64;
    }
    let decide_rate = decisions as f64 / started.elapsed().as_secs_f64();

    // 2. Both state machines in memory, one partition, no broker.
    let mut sim = Sim::new(plan.clone(), rules.clone(), 1);
    for e in &w.stock {
        sim.stock(e.clone());
    }
    for o in &w.orders {
        sim.order(o.clone());
    }
    let started = Instant::now();
    sim.settle(|_| 0);
    let took = started.elapsed().as_secs_f64();
    let commands = sim.handled.0 + sim.handled.1;
    eprintln!("  commands by kind: {:?}", sim.kinds);
    println!(
        "\n  {:<48} {:>14} {:>14}",
        "stage", "orders/s", "commands/s"
    );
    println!(
        "  {:<48} {:>14.0} {:>14}",
        "decide() on one core (decisions/s)", decide_rate, "-"
    );
    println!(
        "  {:<48} {:>14.0} {:>14.0}",
        "both state machines in memory (1 partition)",
        orders as f64 / took,
        commands as f64 / took
    );
    if broker {
        let (rate, cmds) = end_to_end(config, &w).await?;
        println!(
            "  {:<48} {:>14.0} {:>14.0}",
            format!(
                "end to end, broker, {} partitions",
                config.topics.partitions
            ),
            rate,
            cmds
        );
    }

    // 3. Quality.
    println!("\nquality (seeded; orders of <= 3 lines; FBA orders left out):");
    let q = quality::compare(&w, &plan, &rules, 4, 7);
    print!("{}", quality::render(&q));
    Ok(())
}

/// Publishes the workload on fresh topics, runs the four jobs in this
/// process and times them to rest: (orders/s, commands/s).
async fn end_to_end(config: &Config, w: &Workload) -> anyhow::Result<(f64, f64)> {
    let mut config = config.clone();
    config.topics.namespace = format!(
        "bench-alloc-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let state = std::env::temp_dir().join(&config.topics.namespace);
    config.state.dir = state.display().to_string();
    let topo = Topology::resolve(&config);
    let admin = Admin::new(&config.kafka)?;
    super::allocate::ensure_topics(&config).await?;
    let published = harness::publish(&config, w).await?;
    eprintln!(
        "  published {published} records to {}.*",
        config.topics.namespace
    );
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let jobs = {
        let (c, s) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { super::allocate::run(&c, &s, Default::default()).await })
    };
    let watch = Watch::new(&config)?;
    let total = w.orders.len() as i64;
    let rest = watch
        .wait_for_rest(Duration::from_secs(1800), |decided| {
            eprint!("\r  decided {decided} / {total}   ");
        })
        .await;
    eprintln!();
    shutdown.trigger();
    jobs.await??;
    let took = (rest?.duration_since(started)).as_secs_f64().max(1e-3);
    let commands = watch.written("commands_allocate") + watch.written("commands_inventory");
    let names: Vec<String> = topo.topics.iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    admin.delete_topics(&refs).await.ok();
    std::fs::remove_dir_all(&state).ok();
    Ok((w.orders.len() as f64 / took, commands as f64 / took))
}

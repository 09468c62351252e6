//! `conveyor bench label`: packing slips rendered per second on one core
//! (3-line and 40-line orders, and the combined label + slip), and labels
//! per second end to end: the label job in this process buying from the
//! carrier simulator (also in this process) through the broker.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_connectors::simulate::carrier;
use conveyor_processors::label::shipping_label;
use conveyor_processors::label::slip::{self, Branding};
use conveyor_processors::route::sample;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, OutRecord, Producer};
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::Codec;

use crate::usage;

pub async fn run(
    config: &Config,
    slips: usize,
    labels: usize,
    broker: bool,
    samples: Option<&Path>,
) -> anyhow::Result<()> {
    if slips == 0 || labels == 0 {
        return Err(usage("--slips and --labels must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench label`");
    }
    println!("label benchmark: one thread");
    let brand = slip::sample_brand();
    if let Some(dir) = samples {
        write_samples(dir, &brand)?;
    }
    let label = shipping_label::render(&shipping_label::sample());
    for lines in [3usize, 40] {
        let s = slip::sample(lines);
        let (_, pages) = slip::render(&brand, &s);
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..slips {
            bytes += slip::render(&brand, &s).0.len();
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  slip, {lines:>2} lines ({pages} page{}): {:>8.0} slips/s ({:.2} ms each, {} KiB)",
            if pages == 1 { "" } else { "s" },
            slips as f64 / took,
            took * 1e3 / slips as f64,
            bytes / slips / 1024
        );
        let t = Instant::now();
        for _ in 0..slips {
            slip::combined(&label, &brand, &s).map_err(anyhow::Error::msg)?;
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  label + slip combined, {lines:>2} lines: {:>8.0} /s ({:.2} ms each)",
            slips as f64 / took,
            took * 1e3 / slips as f64
        );
    }
    let t = Instant::now();
    for _ in 0..slips {
        shipping_label::render(&shipping_label::sample());
    }
    println!(
        "  4x6 shipping label (simulator's):  {:>8.0} /s",
        slips as f64 / t.elapsed().as_secs_f64()
    );
    if broker {
        end_to_end(config, labels).await?;
    }
    Ok(())
}

/// `labels` plans on fresh topics, the simulator and the label job in this
/// process: labels/s from start to the last labeled record.
async fn end_to_end(config: &Config, labels: usize) -> anyhow::Result<()> {
    let mut config = config.clone();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    config.topics.namespace = format!("bench-label-{}-{run}", std::process::id());
    let state = std::env::temp_dir().join(&config.topics.namespace);
    config.state.dir = state.join("state").display().to_string();
    config.label.documents = state.join("documents").display().to_string();
    let sim = Arc::new(carrier::Sim::new(config.label.api_token.expose()));
    let shutdown = Shutdown::new();
    let sim_stop = tokio_util::sync::CancellationToken::new();
    let (addr, _server) =
        carrier::serve(sim.clone(), ([127, 0, 0, 1], 0).into(), sim_stop.clone()).await?;
    config.label.api_url = format!("http://{addr}");
    // The pipeline's own capacity, not the configured API quota.
    config.label.rate_per_sec = 100_000.0;
    super::label::ensure_topics(&config).await?;
    let topo = Topology::resolve(&config);
    let topic = topo
        .topic_name("shipments_planned")
        .unwrap_or_default()
        .to_string();
    let codec = Codec::new(&config.schema_registry.url)?;
    let producer = Producer::new(&config.kafka, "bench")?;
    let plans = sample::plans(&config, 7, labels, |_, _| {});
    for p in &plans {
        let bytes = codec.encode(&topic, p).await?;
        producer
            .send(
                &OutRecord::new(&topic)
                    .key(p.order_id.clone())
                    .payload(bytes),
            )
            .await
            .map_err(|e| anyhow::anyhow!("publish: {e}"))?;
    }
    let started = Instant::now();
    let job = {
        let (c, s) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { super::label::run(&c, &s, Default::default()).await })
    };
    let deadline = started + Duration::from_secs(1800);
    while (sim.purchases().purchases as usize) < plans.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        eprint!(
            "\r  bought {} / {}   ",
            sim.purchases().purchases,
            plans.len()
        );
    }
    eprintln!();
    let took = started.elapsed().as_secs_f64();
    shutdown.trigger();
    job.await??;
    sim_stop.cancel();
    let sold = sim.purchases();
    println!(
        "  end to end, broker, {} partitions, API quota lifted: {:>8.1} labels/s ({} labels bought, {} duplicates; each: purchase, download, slip, combined PDF, 3 documents written)",
        config.topics.partitions,
        sold.purchases as f64 / took,
        sold.purchases,
        sold.duplicates
    );
    let names: Vec<String> = topo.topics.iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Admin::new(&config.kafka)?.delete_topics(&refs).await.ok();
    std::fs::remove_dir_all(&state).ok();
    Ok(())
}

/// The sample documents docs/images shows (rendered to PNG with
/// `pdftoppm -png -r 100`): slips of 3 and 40 lines, the simulator's label,
/// and the combined label + 3-line slip.
fn write_samples(dir: &Path, brand: &Branding) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for n in [3, 40] {
        let (bytes, _) = slip::render(brand, &slip::sample(n));
        std::fs::write(dir.join(format!("slip-{n}-lines.pdf")), bytes)?;
    }
    let label = shipping_label::render(&shipping_label::sample());
    std::fs::write(dir.join("label.pdf"), &label)?;
    let (both, _) = slip::combined(&label, brand, &slip::sample(3)).map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("combined-3-lines.pdf"), both)?;
    println!("  sample PDFs written to {}", dir.display());
    Ok(())
}

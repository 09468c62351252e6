//! One module per subcommand; [`dispatch`] routes the parsed command line.

mod allocate;
mod bench_allocate;
mod bench_channels;
mod bench_console;
mod bench_label;
mod bench_pipeline;
mod bench_replay;
mod bench_route;
mod bench_runtime;
mod bench_sinks;
mod bench_syncback;
mod config_cmd;
mod connectors;
mod console;
mod demo;
mod demo_allocate;
mod demo_channels;
mod demo_console;
mod demo_replay;
mod demo_sinks;
mod demo_stream;
mod demo_syncback;
mod label;
mod loadgen;
mod normalize;
mod replay;
mod route;
mod schemas;
mod sink;
mod stage;
mod stream;
mod syncback;
mod topics;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::shutdown::Shutdown;
use conveyor_runtime::topology::{self, Status, Topology};

use crate::cli::{
    BenchCommand, CatalogCommand, Cli, Command, ConsoleCommand, DevCommand, ImportCommand,
    RegistryCommand, SchemasCommand, SimulateCommand, SinkTarget, StateCommand, TopicsCommand,
};
use crate::{dev, not_built, usage};

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let load = || Config::load(cli.config.as_deref()).map_err(anyhow::Error::from);
    match cli.command {
        Command::Run {
            component,
            observability_bind,
        } => {
            let config = load()?;
            if component == "sink-clickhouse" {
                return sink::run_clickhouse(&config, observability_bind).await;
            }
            if component == "sink-scylla" {
                return sink::run_scylla(&config, observability_bind).await;
            }
            match BUILT.iter().find(|b| **b == component) {
                Some(stage) => run_built(stage, &config, observability_bind).await,
                None => run_component(&component),
            }
        }
        Command::Connect {
            channel,
            bind,
            observability_bind,
        } => {
            let config = load()?;
            if !topology::CHANNELS.contains(&channel.as_str()) {
                return Err(usage(format!(
                    "unknown channel `{channel}`; known: {}",
                    topology::CHANNELS.join(", ")
                )));
            }
            if !config.channels.enabled.contains(&channel) {
                anyhow::bail!("channel `{channel}` is not in channels.enabled of the config");
            }
            if channel == "csv" {
                return Err(usage(
                    "CSV exports come in with `conveyor import csv FILE --channel NAME --mapping FILE`".into(),
                ));
            }
            connectors::connect(&config, &channel, bind, observability_bind).await
        }
        Command::Simulate { what } => match what {
            SimulateCommand::Shopify {
                bind,
                orders,
                webhooks,
                from,
                target,
                concurrency,
            } => {
                connectors::simulate_shopify(
                    &load()?,
                    bind,
                    orders,
                    webhooks,
                    from,
                    target,
                    concurrency,
                )
                .await
            }
            SimulateCommand::Amazon(a) => connectors::simulate_amazon(&load()?, a).await,
            SimulateCommand::Ebay(a) => connectors::simulate_ebay(&load()?, a).await,
            SimulateCommand::Carrier {
                bind,
                rate,
                fail_every,
                latency_ms,
            } => connectors::simulate_carrier(&load()?, bind, rate, fail_every, latency_ms).await,
            SimulateCommand::Tiktok {
                sim,
                webhooks,
                from,
                target,
                concurrency,
            } => {
                let burst = webhooks.map(|count| crate::cli::WebhookBurst {
                    count,
                    from,
                    target,
                    concurrency,
                });
                connectors::simulate_tiktok(&load()?, sim, burst).await
            }
        },
        Command::Import {
            what:
                ImportCommand::Csv {
                    file,
                    channel,
                    mapping,
                    skip_bad_orders,
                    dry_run,
                },
        } => {
            connectors::import_csv(
                &load()?,
                &file,
                &channel,
                &mapping,
                skip_bad_orders,
                dry_run,
            )
            .await
        }
        Command::Catalog {
            command:
                CatalogCommand::Load {
                    file,
                    from_shopify,
                    currency,
                },
        } => connectors::catalog_load(&load()?, file.as_deref(), from_shopify, &currency).await,
        Command::Sink {
            target,
            migrate,
            observability_bind,
        } => {
            let config = load()?;
            match target {
                SinkTarget::Scylla if migrate => sink::migrate_scylla(&config).await,
                SinkTarget::Scylla => sink::run_scylla(&config, observability_bind).await,
                SinkTarget::Clickhouse if migrate => sink::migrate_clickhouse(&config).await,
                SinkTarget::Clickhouse => sink::run_clickhouse(&config, observability_bind).await,
            }
        }
        Command::Replay { command } => replay::command(&load()?, command).await,
        Command::Bench { what } => match what {
            BenchCommand::Codec { records, only } => {
                bench_codec(&load()?, records, only.as_deref()).await
            }
            BenchCommand::Runtime {
                records,
                keys,
                rounds,
            } => bench_runtime::run(&load()?, records, keys, rounds).await,
            BenchCommand::Replay { orders } => bench_replay::run(&load()?, orders).await,
            BenchCommand::Normalize { orders, channel } => {
                bench_channels::normalize_bench(orders, channel.as_deref())
            }
            BenchCommand::Webhooks {
                seconds,
                connections,
            } => bench_channels::webhooks_bench(&load()?, seconds, connections).await,
            BenchCommand::Allocate {
                orders,
                skus,
                no_broker,
            } => bench_allocate::run(&load()?, orders, skus, !no_broker).await,
            BenchCommand::Route { shipments } => bench_route::run(&load()?, shipments),
            BenchCommand::Sinks {
                orders,
                requests,
                batch,
            } => bench_sinks::run(&load()?, orders, requests, batch).await,
            BenchCommand::Console { orders, requests } => {
                bench_console::run(&load()?, orders, requests).await
            }
            BenchCommand::Syncback {
                orders,
                concurrency,
            } => bench_syncback::run(&load()?, orders, concurrency).await,
            BenchCommand::Label {
                slips,
                labels,
                no_broker,
                samples,
            } => bench_label::run(&load()?, slips, labels, !no_broker, samples.as_deref()).await,
            BenchCommand::Pipeline {
                orders,
                partitions,
                latency_rate,
                latency_seconds,
                ceiling_records,
                stock,
                seed,
                out,
                max_wait,
                keep,
                instances,
                memory_broker,
                carrier_latency_ms,
            } => {
                if orders == 0
                    || partitions < 1
                    || ceiling_records == 0
                    || !(0.0..=1_000_000.0).contains(&latency_rate)
                    || instances == 0
                    || instances as i32 > partitions
                {
                    return Err(usage(
                        "--orders, --partitions, --instances and --ceiling-records must be at least 1 (and --instances at most --partitions), --latency-rate between 0 and 1000000".into(),
                    ));
                }
                let args = bench_pipeline::Args {
                    orders,
                    partitions,
                    latency_rate,
                    latency_seconds,
                    ceiling_records,
                    stock,
                    seed,
                    out,
                    max_wait: std::time::Duration::from_secs(max_wait),
                    keep,
                    config_path: cli.config.clone(),
                    instances,
                    memory_broker,
                    carrier_latency_ms,
                };
                bench_pipeline::run(&load()?, args).await
            }
        },
        Command::Schemas { command } => {
            let config = load()?;
            match command {
                SchemasCommand::Check { dir } => schemas::check(&config, dir.as_deref()).await,
                SchemasCommand::Register { dir } => {
                    schemas::register(&config, dir.as_deref()).await.map(|_| ())
                }
            }
        }
        Command::Topology { json } => {
            let t = Topology::resolve(&load()?);
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                print!("{}", t.render());
            }
            Ok(())
        }
        Command::Topics { command } => {
            let config = load()?;
            match command {
                TopicsCommand::Create => topics::create(&config).await,
                TopicsCommand::Describe => topics::describe(&config).await,
            }
        }
        Command::Console {
            command: Some(ConsoleCommand::HashPassword),
            ..
        } => console::hash_password_cmd(),
        Command::Console {
            command: None,
            bind,
            observability_bind,
            dev_users,
        } => {
            console::run(
                &load()?,
                console::Options {
                    bind,
                    observability_bind,
                    dev_users,
                },
            )
            .await
        }
        Command::Demo => demo::run(&load()?, cli.config.as_deref()).await,
        Command::Loadgen(a) => loadgen::command(&load()?, a).await,
        Command::Dev { command } => {
            let paths = dev::Paths::from_env()?;
            match command {
                DevCommand::Up => dev::up(&load()?, &paths, cli.config.as_deref())
                    .await
                    .map(|_| ()),
                // Stopping needs no config: a broken one must not keep the
                // services running.
                DevCommand::Down => dev::down(&paths),
                DevCommand::Status => dev::status(&load()?, &paths).await,
                DevCommand::RunExample {
                    example,
                    input,
                    output,
                    name,
                    observability_bind,
                } => {
                    let config = load()?;
                    let name = name.unwrap_or_else(|| format!("{example:?}").to_lowercase());
                    let args = stream::ExampleArgs {
                        which: example,
                        input,
                        output,
                        name,
                    };
                    let bind = observability_bind.unwrap_or(config.http.observability_bind);
                    let check = conveyor_stream::job::state_check(&args.name);
                    let service = conveyor_runtime::service::Service::start(
                        &args.name,
                        config.clone(),
                        bind,
                        axum::Router::new(),
                        &[check.as_str()],
                        Shutdown::on_signals(),
                    )
                    .await?;
                    let health = Some(service.health.clone());
                    let summary =
                        stream::run_example(&config, &args, &service.shutdown, health).await;
                    service.finish().await;
                    let summary = summary?;
                    println!("{}", serde_json::to_string(&summary_json(&summary))?);
                    Ok(())
                }
                DevCommand::FuzzSeeds { dir } => {
                    for ch in ["shopify", "amazon", "tiktok", "ebay", "csv"] {
                        let d = dir.join(format!("normalize_{ch}"));
                        std::fs::create_dir_all(&d)?;
                        for n in 0..16 {
                            if let Some(raw) = conveyor_processors::normalize::example_raw(ch, n) {
                                std::fs::write(d.join(format!("example-{n}.json")), raw.payload)?;
                            }
                        }
                    }
                    let d = dir.join("csv_import");
                    std::fs::create_dir_all(&d)?;
                    std::fs::write(
                        d.join("tcgplayer.csv"),
                        include_bytes!("../../examples/tcgplayer-orders.csv"),
                    )?;
                    println!("seeds written under {}", dir.display());
                    Ok(())
                }
                DevCommand::ClickhouseServer { .. } => {
                    anyhow::bail!("the ClickHouse launcher runs before the async runtime starts")
                }
            }
        }
        Command::Registry {
            command: RegistryCommand::Serve { bind },
        } => {
            let config = load()?;
            let bind = match bind {
                Some(b) => b,
                None => dev::url_socket_addr(&config.schema_registry.url).context(
                    "cannot derive a listen address from schema_registry.url; pass --bind",
                )?,
            };
            conveyor_schemas::registry::serve(config, bind, Shutdown::on_signals()).await?;
            Ok(())
        }
        Command::Config { command } => config_cmd::run(command, cli.config.as_deref()),
        Command::State { command } => {
            let config = load()?;
            match command {
                StateCommand::List { store } => stream::list(&config, store.as_deref()),
                StateCommand::Get { store, key, table } => {
                    stream::get(&config, &store, &key, table.as_deref())
                }
            }
        }
    }
}

fn summary_json(s: &conveyor_stream::Summary) -> serde_json::Value {
    serde_json::json!({
        "processed": s.processed,
        "skipped": s.skipped,
        "duplicates": s.duplicates,
        "dead_lettered": s.dead_lettered,
        "outputs": s.outputs,
        "batches": s.batches,
        "restores": s.restores,
    })
}

/// A stage as a long-running service: /metrics, /healthz and /readyz with
/// its checks, signals to shutdown, each job's totals printed at the end.
async fn run_stage<F, Fut>(
    stage: &'static str,
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
    checks: Vec<String>,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Shutdown, conveyor_runtime::observability::Health) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<(String, conveyor_stream::Summary)>>>,
{
    let check_refs: Vec<&str> = checks.iter().map(String::as_str).collect();
    let service = conveyor_runtime::service::Service::start(
        stage,
        config.clone(),
        observability_bind.unwrap_or(config.http.observability_bind),
        axum::Router::new(),
        &check_refs,
        Shutdown::on_signals(),
    )
    .await?;
    let result = run(service.shutdown.clone(), service.health.clone()).await;
    service.finish().await;
    for (name, s) in result? {
        println!("{name}: {}", serde_json::to_string(&summary_json(&s))?);
    }
    Ok(())
}

/// The stages `conveyor run` runs.
const BUILT: &[&str] = &["normalize", "allocate", "route", "label", "syncback"];

/// `conveyor run <stage>` for the built stages: each as a service with its
/// readiness checks.
async fn run_built(
    stage: &'static str,
    config: &Config,
    observability_bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let checks = match stage {
        "normalize" => normalize::checks(config),
        "allocate" => allocate::checks(),
        "route" => route::checks(),
        "label" => label::checks(),
        _ => syncback::checks(),
    };
    run_stage(
        stage,
        config,
        observability_bind,
        checks,
        |s, h| async move {
            match stage {
                "normalize" => normalize::run(config, &s, stage::RunCtx::service(h)).await,
                "allocate" => allocate::run(config, &s, stage::RunCtx::service(h)).await,
                "route" => route::run(config, &s, stage::RunCtx::service(h)).await,
                "label" => label::run(config, &s, stage::RunCtx::service(h)).await,
                _ => syncback::run(config, &s, stage::RunCtx::service(h)).await,
            }
        },
    )
    .await
}

fn run_component(component: &str) -> anyhow::Result<()> {
    if component == "all" {
        let planned: Vec<_> = topology::NODES
            .iter()
            .filter(|n| n.status == Status::Planned)
            .map(|n| n.name)
            .collect();
        let why = if planned.is_empty() {
            "one process for every component comes with the peak-benchmark issue; run each with `conveyor run <component>` meanwhile".to_string()
        } else {
            format!("these components are not built yet: {}", planned.join(", "))
        };
        return Err(not_built("run all", &why));
    }
    match topology::node(component) {
        Some(n) if n.name == "connect" => Err(usage(
            "connectors run with `conveyor connect <channel>`".into(),
        )),
        Some(n) if n.name == "console" => Err(usage(
            "the operator console runs with `conveyor console` (docs/console.md)".into(),
        )),
        Some(n) if n.status == Status::Planned => {
            Err(not_built(&format!("run {component}"), n.doc))
        }
        Some(n) => anyhow::bail!(
            "component `{}` has no runner wired into this binary",
            n.name
        ),
        None => Err(usage(format!(
            "unknown component `{component}`; known: {}, all",
            topology::NODES
                .iter()
                .filter(|n| n.name != "connect")
                .map(|n| n.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn bench_codec(config: &Config, records: usize, only: Option<&str>) -> anyhow::Result<()> {
    if records == 0 {
        return Err(usage("--records must be at least 1".into()));
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; numbers are only meaningful from `cargo run --release -- bench codec`");
    }
    let codec = conveyor_schemas::codec::Codec::new(&config.schema_registry.url)?;
    let prefix = format!("conveyor.bench.{}", std::process::id());
    println!(
        "codec benchmark: {records} records per type (1024 distinct, best of 3 rounds), one task on one core, registry {} (caches warm)",
        config.schema_registry.url
    );
    let rows = conveyor_schemas::bench::run_all(&codec, &prefix, records, only).await?;
    print!("{}", conveyor_schemas::bench::render(&rows));
    Ok(())
}

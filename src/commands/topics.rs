//! `conveyor topics create|describe`.

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, TopicState};
use conveyor_runtime::topology::Topology;

use crate::Exit;

/// Creates every topic of the topology; reports drift and exits 3 if any.
pub async fn create(config: &Config) -> anyhow::Result<()> {
    let topology = Topology::resolve(config);
    let admin = Admin::new(&config.kafka)?;
    let reports = admin.ensure_topics(&topology.topics).await.map_err(|e| {
        anyhow::anyhow!(
            "topic administration on the broker at {} failed: {e} (is it up? `conveyor dev up`)",
            config.kafka.brokers
        )
    })?;
    let (mut created, mut matched, mut drifted, mut failed) = (0, 0, 0, 0);
    for r in &reports {
        match &r.state {
            TopicState::Created => {
                created += 1;
                println!("  created  {}", r.name);
            }
            TopicState::Matches => {
                matched += 1;
                println!("  exists   {}", r.name);
            }
            TopicState::Drift(diffs) => {
                drifted += 1;
                println!("  DRIFT    {}", r.name);
                for d in diffs {
                    println!("             {d}");
                }
            }
            TopicState::Failed(e) => {
                failed += 1;
                println!("  FAILED   {}: {e}", r.name);
            }
        }
    }
    println!(
        "topics: {created} created, {matched} already as configured, {drifted} differ, {failed} failed"
    );
    if failed > 0 {
        anyhow::bail!("{failed} topic(s) could not be created (see FAILED above)");
    }
    if drifted > 0 {
        return Err(Exit {
            code: 3,
            message: format!(
                "{drifted} topic(s) differ from the config; nothing was changed on them. \
                 Fix the config, or change the topic with your Kafka tooling (adding partitions moves keys between partitions)."
            ),
        }
        .into());
    }
    Ok(())
}

/// Prints each topic as the broker has it next to what the config wants.
pub async fn describe(config: &Config) -> anyhow::Result<()> {
    let topology = Topology::resolve(config);
    let admin = Admin::new(&config.kafka)?;
    let names: Vec<String> = topology.topics.iter().map(|t| t.name.clone()).collect();
    let infos = admin.describe(&names).await.map_err(|e| {
        anyhow::anyhow!(
            "broker at {}: {e} (is it up? `conveyor dev up`)",
            config.kafka.brokers
        )
    })?;
    let w = names.iter().map(String::len).max().unwrap_or(5);
    println!(
        "{:<w$}  {:>5}  {:>3}  {:<8}  {:>14}  {:>10}  STATUS",
        "TOPIC", "PARTS", "RF", "POLICY", "RETENTION.MS", "RECORDS"
    );
    for (spec, (name, info)) in topology.topics.iter().zip(infos) {
        match info {
            None => println!("{name:<w$}  {:>5}  {:>3}  {:<8}  {:>14}  {:>10}  missing (run `conveyor topics create`)", "-", "-", "-", "-", "-"),
            Some(i) => {
                let mut status = Vec::new();
                if i.partitions != spec.partitions {
                    status.push(format!("partitions != {}", spec.partitions));
                }
                for (k, v) in &spec.configs {
                    if i.configs.get(k) != Some(v) {
                        status.push(format!("{k} != {v}"));
                    }
                }
                let status = if status.is_empty() { "ok".to_string() } else { format!("DRIFT: {}", status.join(", ")) };
                println!(
                    "{name:<w$}  {:>5}  {:>3}  {:<8}  {:>14}  {:>10}  {status}",
                    i.partitions,
                    i.replication_factor,
                    i.configs.get("cleanup.policy").map(String::as_str).unwrap_or("?"),
                    i.configs.get("retention.ms").map(String::as_str).unwrap_or("?"),
                    i.records,
                );
            }
        }
    }
    Ok(())
}

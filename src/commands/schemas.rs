//! `conveyor schemas register|check`.

use std::path::Path;

use conveyor_runtime::config::Config;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::subjects::{self, Registered, RegistryClient, Verdict};

use crate::Exit;

fn load(config: &Config, dir: Option<&Path>) -> anyhow::Result<Vec<subjects::SchemaSource>> {
    if let Some(d) = dir {
        if !d.is_dir() {
            anyhow::bail!("{} is not a directory", d.display());
        }
    }
    let (sources, missing) =
        subjects::sources(&Topology::resolve(config), dir).map_err(anyhow::Error::msg)?;
    if let Some(d) = dir {
        if sources.is_empty() {
            anyhow::bail!(
                "no schema files (*.avsc of the contracts) in {}",
                d.display()
            );
        }
        for file in missing {
            println!("  (skipped {file}: not in {})", d.display());
        }
    }
    Ok(sources)
}

/// Registers every subject; returns what was registered.
pub async fn register(
    config: &Config,
    dir: Option<&Path>,
) -> anyhow::Result<Vec<(String, Registered)>> {
    let sources = load(config, dir)?;
    let client = RegistryClient::new(&config.schema_registry.url)?;
    let w = sources.iter().map(|s| s.subject.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for s in &sources {
        let r = client.register(&s.subject, &s.text).await?;
        println!(
            "  {:<w$}  {:<22}  id {:>4}  version {:>3}",
            s.subject, s.file, r.id, r.version
        );
        out.push((s.subject.clone(), r));
    }
    println!(
        "schemas: {} subjects registered at {}",
        out.len(),
        config.schema_registry.url
    );
    Ok(out)
}

/// Checks every subject; exits 1 if any change would break consumers.
pub async fn check(config: &Config, dir: Option<&Path>) -> anyhow::Result<()> {
    let sources = load(config, dir)?;
    let client = RegistryClient::new(&config.schema_registry.url)?;
    let (mut new, mut same, mut ok, mut broken) = (0, 0, 0, 0);
    for s in &sources {
        match subjects::check(&client, s).await? {
            Verdict::New => {
                new += 1;
                println!(
                    "  new          {} ({}): not registered yet",
                    s.subject, s.file
                );
            }
            Verdict::Unchanged { version } => {
                same += 1;
                println!(
                    "  unchanged    {} ({}) = version {version}",
                    s.subject, s.file
                );
            }
            Verdict::Compatible { version, diff } => {
                ok += 1;
                println!(
                    "  compatible   {} ({}) vs version {version}:",
                    s.subject, s.file
                );
                diff.iter().for_each(|d| println!("                 {d}"));
            }
            Verdict::Incompatible {
                version,
                diff,
                reasons,
            } => {
                broken += 1;
                println!(
                    "  INCOMPATIBLE {} ({}) vs version {version}:",
                    s.subject, s.file
                );
                diff.iter().for_each(|d| println!("                 {d}"));
                reasons
                    .iter()
                    .for_each(|r| println!("               ! {r}"));
            }
        }
    }
    println!(
        "schemas: {same} unchanged, {ok} compatible changes, {new} new, {broken} incompatible"
    );
    if broken > 0 {
        return Err(Exit {
            code: 1,
            message: format!(
                "{broken} schema change(s) would break consumers of the registered versions: \
                 give new fields a default, keep removed fields' defaults, never change a field's type"
            ),
        }
        .into());
    }
    Ok(())
}

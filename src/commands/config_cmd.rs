//! `conveyor config check|show`.

use std::path::Path;

use conveyor_runtime::config::Config;

use crate::cli::ConfigCommand;

pub fn run(command: ConfigCommand, path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    match command {
        ConfigCommand::Check => {
            let origin = match path {
                Some(p) => p.display().to_string(),
                None if Path::new(conveyor_runtime::config::DEFAULT_FILE).exists() => {
                    conveyor_runtime::config::DEFAULT_FILE.to_string()
                }
                None => "built-in defaults".to_string(),
            };
            println!("config OK ({origin}, with CONVEYOR_* overrides applied)");
        }
        ConfigCommand::Show => print!("{}", config.to_redacted_toml()),
    }
    Ok(())
}

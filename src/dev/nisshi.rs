//! The Kafka-protocol broker for dev and CI: Nisshi (Apache-2.0, Rust) on
//! SQLite storage, built once with the nightly toolchain and cached.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub const VERSION: &str = "0.8.1";

/// Path of the cached broker binary.
pub fn binary(cache: &Path) -> PathBuf {
    cache
        .join(format!("nisshi-{VERSION}"))
        .join("bin")
        .join("nisshi")
}

/// Builds and installs Nisshi into the cache if it is not there yet. A cold
/// build takes ~20-30 minutes on 2 cores; progress is printed every 30 s.
pub fn ensure_installed(cache: &Path) -> anyhow::Result<PathBuf> {
    let bin = binary(cache);
    if bin.exists() {
        return Ok(bin);
    }
    let root = bin
        .parent()
        .and_then(Path::parent)
        .context("cache path has no parent")?
        .to_path_buf();
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    match nightly {
        Ok(o) if o.status.success() => {}
        _ => anyhow::bail!(
            "building the local Nisshi broker needs the nightly toolchain (rustc >= 1.96): \
             install it with `rustup toolchain install nightly`. Without `conveyor dev`, run your own \
             Kafka-compatible broker and point kafka.brokers at it"
        ),
    }
    std::fs::create_dir_all(cache.join("logs"))?;
    let log_path = cache.join("logs").join("nisshi-install.log");
    let log = std::fs::File::create(&log_path)?;
    println!(
        "  building the Nisshi {VERSION} broker (first run only, ~20-30 min on 2 cores); log: {}",
        log_path.display()
    );
    let mut child = Command::new("cargo")
        .args([
            "+nightly",
            "install",
            "nisshi",
            "--version",
            VERSION,
            "--locked",
        ])
        .args(["--no-default-features", "--features", "dynostore,libsql"])
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(cache.join("nisshi-build"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot run cargo to build the broker")?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let compiled = text.matches("Compiling ").count();
            let current = text
                .lines()
                .rev()
                .find(|l| l.contains("Compiling "))
                .map(|l| l.trim().trim_start_matches("Compiling ").to_string())
                .unwrap_or_default();
            println!(
                "  ... {:>4}s: {compiled} crates compiled (now {current})",
                started.elapsed().as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() || !bin.exists() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        anyhow::bail!(
            "building Nisshi failed ({status}); last lines of {}:\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let _ = std::fs::remove_dir_all(cache.join("nisshi-build"));
    println!("  broker built in {}s", started.elapsed().as_secs());
    Ok(bin)
}

/// The dev broker's storage: SQLite in its working directory.
pub const SQLITE: &str = "sqlite://broker.db?maintenance_interval=5s";

/// `nisshi` arguments for a broker on 127.0.0.1:`port` with `storage`.
pub fn args(port: u16, storage: &str) -> Vec<String> {
    let url = format!("tcp://127.0.0.1:{port}");
    [
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        storage,
        "--group-initial-rebalance-delay",
        "0s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The command that runs the broker on `port` with its data in `data_dir`.
pub fn command(bin: &Path, port: u16, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(data_dir).args(args(port, SQLITE));
    cmd
}

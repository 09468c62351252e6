//! `conveyor dev up|down|status`: the real services conveyor needs, on
//! 127.0.0.1, installed on first use and cached.
//!
//! - broker: Nisshi (Kafka protocol, SQLite storage), built once with cargo
//!   into `$CONVEYOR_CACHE_DIR` (default `~/.cache/conveyor`);
//! - ClickHouse: the 26.7 engine from libchdb (npm), run by this binary;
//! - schema registry: `conveyor registry serve` (Confluent-compatible).
//!
//! Where each listens comes from the config (`kafka.brokers`,
//! `clickhouse.url`, `dev.clickhouse_tcp_port`, `schema_registry.url`), so the
//! demo and the tests talk to what `up` started. State (PID files, logs,
//! data) lives in `$CONVEYOR_DEV_DIR` (default `./.conveyor/dev`). `up` is
//! idempotent (running services are left alone) and waits until each service
//! answers; `down` stops exactly the processes `up` started.

pub mod chdb;
pub mod nisshi;
mod process;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::BrokerWatch;

use process::Managed;

/// Where `dev` keeps its state and its cache.
pub struct Paths {
    pub state: PathBuf,
    pub cache: PathBuf,
}

impl Paths {
    pub fn from_env() -> anyhow::Result<Paths> {
        let state = std::env::var_os("CONVEYOR_DEV_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".conveyor/dev"));
        let cache = match std::env::var_os("CONVEYOR_CACHE_DIR") {
            Some(c) => PathBuf::from(c),
            None => PathBuf::from(
                std::env::var_os("HOME").context("HOME is not set; set CONVEYOR_CACHE_DIR")?,
            )
            .join(".cache/conveyor"),
        };
        std::fs::create_dir_all(&state)
            .with_context(|| format!("cannot create {}", state.display()))?;
        let state = state.canonicalize()?;
        Ok(Paths { state, cache })
    }

    fn broker(&self) -> Managed {
        Managed::new("broker", "nisshi broker", &self.state)
    }
    fn clickhouse(&self) -> Managed {
        Managed::new("clickhouse", "dev clickhouse-server", &self.state)
    }
    fn registry(&self) -> Managed {
        Managed::new("registry", "registry serve", &self.state)
    }
}

/// A `http(s)://host:port/...` URL as a socket address.
pub fn url_socket_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .with_context(|| format!("`{url}` is not a URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else if url.starts_with("https") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("`{url}` does not resolve"))
}

fn local_port(what: &str, addr: &str) -> anyhow::Result<u16> {
    let sa = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("{what} `{addr}` is not a host:port"))?;
    if !sa.ip().is_loopback() {
        anyhow::bail!(
            "{what} is {addr}, which is not on this machine: `conveyor dev` only starts local services on 127.0.0.1"
        );
    }
    Ok(sa.port())
}

/// Where each dev service listens.
pub struct Endpoints {
    pub broker_port: u16,
    pub clickhouse_http: u16,
    pub clickhouse_tcp: u16,
    pub registry: SocketAddr,
}

impl Endpoints {
    pub fn from_config(config: &Config) -> anyhow::Result<Endpoints> {
        let first = config
            .kafka
            .broker_list()
            .first()
            .copied()
            .unwrap_or_default()
            .to_string();
        let registry = url_socket_addr(&config.schema_registry.url)?;
        local_port("schema_registry.url", &registry.to_string())?;
        Ok(Endpoints {
            broker_port: local_port("kafka.brokers", &first)?,
            clickhouse_http: url_socket_addr(&config.clickhouse.url)
                .and_then(|a| local_port("clickhouse.url", &a.to_string()))?,
            clickhouse_tcp: config.dev.clickhouse_tcp_port,
            registry,
        })
    }
}

/// Starts whatever is not running and waits until everything answers.
pub async fn up(
    config: &Config,
    paths: &Paths,
    config_file: Option<&Path>,
) -> anyhow::Result<Endpoints> {
    let ep = Endpoints::from_config(config)?;
    println!(
        "dev services (state {}, cache {})",
        paths.state.display(),
        paths.cache.display()
    );

    // Installs first (slow only on a fresh machine), then start in order:
    // broker and ClickHouse together, then the registry, which needs the broker.
    let nisshi_bin = {
        let cache = paths.cache.clone();
        tokio::task::spawn_blocking(move || nisshi::ensure_installed(&cache)).await??
    };
    let chdb_lib = {
        let cache = paths.cache.clone();
        tokio::task::spawn_blocking(move || chdb::ensure_installed(&cache)).await??
    };

    let broker = paths.broker();
    let broker_pid = match broker.running() {
        Some(pid) => pid,
        None => {
            let data = paths.state.join("broker");
            std::fs::create_dir_all(&data)?;
            broker.spawn(nisshi::command(&nisshi_bin, ep.broker_port, &data))?
        }
    };
    let clickhouse = paths.clickhouse();
    let clickhouse_pid = match clickhouse.running() {
        Some(pid) => pid,
        None => {
            let data = paths.state.join("clickhouse");
            std::fs::create_dir_all(&data)?;
            let server_log = paths.state.join("clickhouse-server.log");
            clickhouse.spawn(chdb::command(
                &chdb_lib,
                &data,
                ep.clickhouse_http,
                ep.clickhouse_tcp,
                &server_log,
            )?)?
        }
    };

    let watch = BrokerWatch::new(&config.kafka)?;
    wait_for(&broker, broker_pid, Duration::from_secs(60), || async {
        watch
            .probe(Duration::from_secs(2))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    report(
        "broker",
        &format!("kafka://127.0.0.1:{}", ep.broker_port),
        broker_pid,
        &broker.log,
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let ping = format!("{}/ping", config.clickhouse.url.trim_end_matches('/'));
    wait_for(
        &clickhouse,
        clickhouse_pid,
        Duration::from_secs(90),
        || async {
            let r = http.get(&ping).send().await.map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", r.status()))
            }
        },
    )
    .await?;
    report(
        "clickhouse",
        &format!("{} (native :{})", config.clickhouse.url, ep.clickhouse_tcp),
        clickhouse_pid,
        &clickhouse.log,
    );

    let registry = paths.registry();
    let registry_pid = match registry.running() {
        Some(pid) => pid,
        None => {
            let exe = std::env::current_exe()?;
            let mut cmd = Command::new(exe);
            if let Some(f) = config_file {
                cmd.arg("--config")
                    .arg(f.canonicalize().unwrap_or_else(|_| f.to_path_buf()));
            }
            cmd.args(["registry", "serve", "--bind", &ep.registry.to_string()]);
            registry.spawn(cmd)?
        }
    };
    let readyz = format!("http://{}/readyz", ep.registry);
    wait_for(&registry, registry_pid, Duration::from_secs(60), || async {
        let r = http.get(&readyz).send().await.map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(r.text().await.unwrap_or_default())
        }
    })
    .await?;
    report(
        "registry",
        &format!("{} (/metrics /healthz /readyz)", config.schema_registry.url),
        registry_pid,
        &registry.log,
    );
    println!("dev services are up; stop them with `conveyor dev down`");
    Ok(ep)
}

fn report(name: &str, addr: &str, pid: i32, log: &Path) {
    println!(
        "  {name:<10} ready  {addr:<48} pid {pid:<7} log {}",
        log.display()
    );
}

async fn wait_for<F, Fut>(
    svc: &Managed,
    pid: i32,
    limit: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        match check().await {
            Ok(()) if svc.exited(pid) => {
                // Something answers, but not the process we started.
                let _ = std::fs::remove_file(&svc.pidfile);
                anyhow::bail!(
                    "{} exited during start-up while something else answers on its port: \
                     stop that process or change the port in the config; last lines of {}:\n{}",
                    svc.name,
                    svc.log.display(),
                    svc.log_tail(10)
                );
            }
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if svc.exited(pid) {
            let _ = std::fs::remove_file(&svc.pidfile);
            anyhow::bail!(
                "{} exited during start-up; last lines of {}:\n{}",
                svc.name,
                svc.log.display(),
                svc.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!(
        "{} did not become ready within {}s (last check: {last}); see {}",
        svc.name,
        limit.as_secs(),
        svc.log.display()
    )
}

/// Stops the registry, ClickHouse and the broker, in that order.
pub fn down(paths: &Paths) -> anyhow::Result<()> {
    for svc in [paths.registry(), paths.clickhouse(), paths.broker()] {
        if svc.stop(Duration::from_secs(15)) {
            println!("  {:<10} stopped", svc.name);
        } else {
            println!("  {:<10} was not running", svc.name);
        }
    }
    Ok(())
}

pub async fn status(config: &Config, paths: &Paths) -> anyhow::Result<()> {
    let ep = Endpoints::from_config(config)?;
    let rows = [
        (
            paths.broker(),
            format!("kafka://127.0.0.1:{}", ep.broker_port),
        ),
        (paths.clickhouse(), config.clickhouse.url.clone()),
        (paths.registry(), config.schema_registry.url.clone()),
    ];
    for (svc, addr) in rows {
        match svc.running() {
            Some(pid) => println!(
                "  {:<10} running  {addr:<32} pid {pid:<7} log {}",
                svc.name,
                svc.log.display()
            ),
            None => println!("  {:<10} stopped  {addr}", svc.name),
        }
    }
    println!(
        "  cache: broker {} ({}), clickhouse {} ({})",
        nisshi::binary(&paths.cache).display(),
        if nisshi::binary(&paths.cache).exists() {
            "installed"
        } else {
            "not installed"
        },
        chdb::library(&paths.cache).display(),
        if chdb::library(&paths.cache).exists() {
            "installed"
        } else {
            "not installed"
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_the_config() {
        let mut c = Config::default();
        c.kafka.brokers = "127.0.0.1:19092,127.0.0.1:19093".into();
        c.clickhouse.url = "http://localhost:18123/".into();
        c.schema_registry.url = "http://127.0.0.1:18081".into();
        let ep = Endpoints::from_config(&c).unwrap();
        assert_eq!(
            (ep.broker_port, ep.clickhouse_http, ep.clickhouse_tcp),
            (19092, 18123, 9000)
        );
        assert_eq!(ep.registry.port(), 18081);
    }

    #[test]
    fn refuses_to_start_services_for_remote_addresses() {
        let mut c = Config::default();
        c.kafka.brokers = "10.1.2.3:9092".into();
        let err = Endpoints::from_config(&c).err().unwrap().to_string();
        assert!(
            err.contains("kafka.brokers") && err.contains("not on this machine"),
            "{err}"
        );
    }

    #[test]
    fn url_ports_default_by_scheme() {
        assert_eq!(url_socket_addr("http://127.0.0.1").unwrap().port(), 80);
        assert_eq!(url_socket_addr("https://127.0.0.1/x").unwrap().port(), 443);
        assert!(url_socket_addr("127.0.0.1:80").is_err());
    }
}

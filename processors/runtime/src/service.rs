//! The harness every long-running conveyor process runs inside.
//!
//! [`Service::start`] installs the metrics recorder, serves `/metrics`,
//! `/healthz` and `/readyz` (merged with the component's own routes, if any),
//! starts the [`BrokerWatch`](crate::kafka::BrokerWatch) that makes readiness
//! follow the broker, and hooks SIGTERM/SIGINT to the shared
//! [`Shutdown`]. The component then does its work until `shutdown` fires and
//! calls [`Service::finish`], which waits for the HTTP server to drain.

use std::net::SocketAddr;

use axum::Router;

use crate::config::Config;
use crate::kafka::BrokerWatch;
use crate::observability::{self, Health};
use crate::shutdown::Shutdown;

pub struct Service {
    pub name: String,
    pub config: Config,
    pub health: Health,
    pub shutdown: Shutdown,
    /// Where `/metrics`, `/healthz`, `/readyz` (and the extra routes) listen.
    pub http_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Http(#[from] std::io::Error),
    #[error("cannot create the broker client: {0}")]
    Kafka(#[from] crate::kafka::KafkaError),
}

impl Service {
    /// Starts the harness. `shutdown` is usually [`Shutdown::on_signals`];
    /// tests pass their own. `checks` are the component's own readiness
    /// checks: they start not ready, before `/readyz` is served, so it never
    /// answers 200 before the component says so.
    pub async fn start(
        name: &str,
        config: Config,
        bind: SocketAddr,
        routes: Router,
        checks: &[&str],
        shutdown: Shutdown,
    ) -> Result<Service, ServiceError> {
        let handle = observability::metrics();
        metrics::gauge!("conveyor_component_up", "component" => name.to_string()).set(1.0);
        let health = Health::new();
        health.set(
            "broker",
            false,
            format!("connecting to {}", config.kafka.brokers),
        );
        for check in checks {
            health.set(check, false, "starting");
        }
        let watch = BrokerWatch::new(&config.kafka)?;
        let mut tasks = vec![tokio::spawn(watch.run(health.clone(), shutdown.clone()))];
        // Histograms keep samples until upkeep drains them; without it they
        // grow with every record when nothing scrapes /metrics.
        let upkeep_shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = upkeep_shutdown.wait() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => handle.run_upkeep(),
                }
            }
        }));
        let app = routes.merge(observability::router(health.clone()));
        let (http_addr, server) = observability::serve(bind, app, shutdown.clone()).await?;
        tasks.push(server);
        tracing::info!(component = name, %http_addr, "serving /metrics /healthz /readyz");
        Ok(Service {
            name: name.to_string(),
            config,
            health,
            shutdown,
            http_addr,
            tasks,
        })
    }

    /// Triggers shutdown (if not already) and waits for the harness tasks.
    pub async fn finish(self) {
        self.shutdown.trigger();
        for t in self.tasks {
            let _ = t.await;
        }
        tracing::info!(component = %self.name, "stopped");
    }
}

//! Logs, metrics and health endpoints, the same in every process.
//!
//! - Logs: `tracing`; human-readable in a terminal, one JSON object per line
//!   when `CONVEYOR_LOG_FORMAT=json` (production), plain text otherwise.
//!   `CONVEYOR_LOG` takes an `EnvFilter` directive (default `info`).
//! - Metrics: a global Prometheus recorder; every metric is named
//!   `conveyor_*`. `conveyor_build_info` carries the version.
//! - HTTP: `/metrics` (Prometheus text), `/healthz` (the process is alive),
//!   `/readyz` (every readiness check passes, e.g. the broker is reachable).
//!   `/readyz` answers 503 with a JSON list of what is not ready.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::shutdown::Shutdown;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Plain,
    Json,
}

impl LogFormat {
    /// From `CONVEYOR_LOG_FORMAT` (`json`, `pretty`, `plain`), else pretty on
    /// a terminal and plain when redirected.
    pub fn from_env() -> LogFormat {
        match std::env::var("CONVEYOR_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            Ok("pretty") => LogFormat::Pretty,
            Ok("plain") | Ok("text") => LogFormat::Plain,
            _ if std::io::stderr().is_terminal() => LogFormat::Pretty,
            _ => LogFormat::Plain,
        }
    }
}

/// Installs the global tracing subscriber (idempotent: later calls are
/// no-ops). Logs go to stderr so stdout stays free for command output.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_env("CONVEYOR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,librdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match LogFormat::from_env() {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Plain => builder.with_ansi(false).try_init(),
    };
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets (seconds) of every `*_seconds` histogram: 1 ms to 2 min.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Installs the global Prometheus recorder once and returns its handle.
pub fn metrics() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            // Latencies are histograms (buckets aggregate across instances,
            // `histogram_quantile` in dashboards); other distributions stay
            // summaries.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            metrics::gauge!("conveyor_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

#[derive(Debug, Clone, Serialize)]
struct CheckState {
    ready: bool,
    detail: String,
}

/// Named readiness checks. A process is ready when every registered check
/// is; components register theirs at start (not ready) and flip them.
#[derive(Debug, Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, CheckState>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers or updates a check.
    pub fn set(&self, name: &str, ready: bool, detail: impl Into<String>) {
        let detail = detail.into();
        metrics::gauge!("conveyor_ready", "check" => name.to_string()).set(if ready {
            1.0
        } else {
            0.0
        });
        if let Ok(mut checks) = self.checks.lock() {
            checks.insert(name.to_string(), CheckState { ready, detail });
        }
    }

    pub fn is_ready(&self) -> bool {
        self.checks
            .lock()
            .map(|c| c.values().all(|s| s.ready))
            .unwrap_or(false)
    }

    fn snapshot(&self) -> BTreeMap<String, CheckState> {
        self.checks.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// `/metrics`, `/healthz` and `/readyz`, to merge into any axum router.
pub fn router(health: Health) -> Router {
    let handle = metrics();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let checks = health.snapshot();
    let ready = checks.values().all(|s| s.ready);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(serde_json::json!({ "ready": ready, "checks": checks })),
    )
}

/// Binds `addr` and serves `app` until `shutdown`. Returns the bound address
/// (useful with port 0) and the server task.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok((bound, task))
}

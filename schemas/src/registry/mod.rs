//! A small Confluent-compatible Schema Registry, for dev, demo and CI.
//!
//! It speaks the subset of Confluent's REST API that clients use
//! (`schema_registry_converter`, Confluent's serializers, `conveyor schemas`):
//! subjects and versions, schemas by id, lookup, compatibility checks,
//! global and per-subject compatibility levels, soft and hard deletes. It
//! enforces the configured level (default BACKWARD) on every registration and
//! answers 409 when a schema is incompatible, with the reasons.
//!
//! State lives in a compacted Kafka topic (`schema_registry.schemas_topic`,
//! default `_schemas`), like Confluent's, and is rebuilt from it at start;
//! `/readyz` stays 503 until the broker is reachable and the topic is read.
//! One instance writes at a time (`conveyor dev up` starts one); it is not a
//! replacement for a highly-available production registry.

mod api;
pub mod compat;
mod log;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conveyor_runtime::backoff::Backoff;
use conveyor_runtime::config::Config;
use conveyor_runtime::service::{Service, ServiceError};
use conveyor_runtime::shutdown::Shutdown;
use tokio::sync::{Mutex, RwLock};

pub use compat::Level;
pub use state::{LogRecord, Registration, RegistryError, State, VersionSel};

use log::LogStore;

/// The registry: state, its log, and a writer lock that serialises changes.
pub struct Registry {
    state: RwLock<State>,
    ready: RwLock<bool>,
    write: Mutex<()>,
    log: LogStore,
}

impl Registry {
    pub fn new(config: &Config) -> Result<Self, conveyor_runtime::kafka::KafkaError> {
        Ok(Self {
            state: RwLock::new(State::default()),
            ready: RwLock::new(false),
            write: Mutex::new(()),
            log: LogStore::new(config)?,
        })
    }

    /// Reads the schemas topic into a fresh state.
    pub async fn load(&self) -> Result<usize, String> {
        let records = self.log.load().await.map_err(|e| e.to_string())?;
        let mut st = State::default();
        for r in &records {
            st.apply(r);
        }
        *self.state.write().await = st;
        *self.ready.write().await = true;
        Ok(records.len())
    }

    async fn read(&self) -> Result<tokio::sync::RwLockReadGuard<'_, State>, RegistryError> {
        if !*self.ready.read().await {
            return Err(RegistryError::NotReady(format!(
                "still loading topic {} (is the broker up?)",
                self.log.topic()
            )));
        }
        Ok(self.state.read().await)
    }

    /// Writes records to the log, then applies them.
    async fn commit(&self, records: &[LogRecord]) -> Result<(), RegistryError> {
        for r in records {
            self.log
                .append(r)
                .await
                .map_err(|e| RegistryError::Store(e.to_string()))?;
            self.state.write().await.apply(r);
        }
        Ok(())
    }

    /// Registers `schema` under `subject`: returns (id, version).
    pub async fn register(&self, subject: &str, schema: &str) -> Result<(u32, u32), RegistryError> {
        let _w = self.write.lock().await;
        let plan = self.read().await?.plan_registration(subject, schema)?;
        match plan {
            Registration::Existing { id, version } => Ok((id, version)),
            Registration::New {
                id,
                version,
                record,
            } => {
                self.commit(std::slice::from_ref(&record)).await?;
                metrics::counter!("conveyor_registry_registrations_total").increment(1);
                tracing::info!(subject, id, version, "schema registered");
                Ok((id, version))
            }
        }
    }

    pub async fn set_level(
        &self,
        subject: Option<&str>,
        level: Option<Level>,
    ) -> Result<(), RegistryError> {
        let _w = self.write.lock().await;
        if let Some(s) = subject {
            if level.is_none() && self.read().await?.subject_level(s).is_none() {
                return Err(RegistryError::SubjectNotFound(s.into()));
            }
        }
        self.commit(&[state::config_record(subject, level)]).await
    }

    pub async fn delete(
        &self,
        subject: &str,
        sel: Option<VersionSel>,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let _w = self.write.lock().await;
        let (versions, records) = self.read().await?.plan_delete(subject, sel, permanent)?;
        self.commit(&records).await?;
        Ok(versions)
    }
}

/// Runs the registry on `bind` (API, `/metrics`, `/healthz`, `/readyz` on one
/// port) until `shutdown`. Returns once it has stopped.
pub async fn serve(
    config: Config,
    bind: SocketAddr,
    shutdown: Shutdown,
) -> Result<(), ServiceError> {
    let (_, task) = spawn(config, bind, shutdown).await?;
    let _ = task.await;
    Ok(())
}

/// Starts the registry and returns its address and the task running it.
pub async fn spawn(
    config: Config,
    bind: SocketAddr,
    shutdown: Shutdown,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServiceError> {
    let registry = Arc::new(Registry::new(&config)?);
    let service = Service::start(
        "registry",
        config,
        bind,
        api::router(registry.clone()),
        &["registry"],
        shutdown,
    )
    .await?;
    let addr = service.http_addr;
    let task = tokio::spawn(async move {
        let health = service.health.clone();
        let topic = service.config.schema_registry.schemas_topic.clone();
        health.set("registry", false, format!("loading {topic}"));
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
        loop {
            let attempt = tokio::select! {
                _ = service.shutdown.wait() => break,
                r = registry.load() => r,
            };
            match attempt {
                Ok(n) => {
                    tracing::info!(%topic, records = n, "registry loaded; serving");
                    health.set("registry", true, format!("{n} records loaded from {topic}"));
                    break;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot load the schemas topic; retrying");
                    health.set("registry", false, format!("loading {topic}: {e}"));
                    tokio::select! {
                        _ = service.shutdown.wait() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        service.shutdown.wait().await;
        service.finish().await;
    });
    Ok((addr, task))
}

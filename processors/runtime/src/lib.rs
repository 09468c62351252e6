//! conveyor's stream runtime: the parts every connector, processor and sink
//! shares.
//!
//! - [`config`]: the one TOML file with `CONVEYOR_*` environment overrides,
//!   validated at start with errors that name the field.
//! - [`topology`]: every topic, who reads and writes it, and which state stores
//!   exist, declared in one place (`conveyor topology` prints it).
//! - [`kafka`]: producer (idempotent, `acks=all`), consumer (manual commits),
//!   admin (idempotent topic creation with drift reports) and a broker watcher
//!   that drives readiness.
//! - [`observability`]: tracing (pretty or JSON), Prometheus metrics, and the
//!   `/metrics`, `/healthz`, `/readyz` endpoints.
//! - [`shutdown`]: SIGTERM/SIGINT turned into a cancellation every task sees.
//! - [`service`]: the harness a long-running process runs inside.

pub mod backoff;
pub mod breaker;
pub mod config;
pub mod console;
pub mod guarded;
pub mod kafka;
pub mod label;
pub mod observability;
pub mod ratelimit;
pub mod routing;
pub mod service;
pub mod shutdown;
pub mod syncback;
pub mod topology;
pub mod warehouses;

pub use config::Config;

//! The one configuration file (TOML) plus `CONVEYOR_*` environment overrides.
//!
//! Resolution, lowest to highest precedence:
//! 1. built-in defaults (a single-machine dev setup on 127.0.0.1),
//! 2. the TOML file (`--config FILE`, `CONVEYOR_CONFIG`, or `./conveyor.toml`
//!    when present),
//! 3. environment variables `CONVEYOR_<SECTION>__<KEY>[__<KEY>...]`, e.g.
//!    `CONVEYOR_KAFKA__BROKERS=b1:9092,b2:9092` or
//!    `CONVEYOR_TOPICS__OVERRIDES__ORDERS_NORMALIZED__PARTITIONS=12`. A value
//!    is read as a TOML literal when it parses as one (`12`, `true`,
//!    `["a","b"]`) and as a plain string otherwise.
//!
//! Everything is checked before a process starts work: unknown keys, wrong
//! types and invalid values are all reported together, each naming its field
//! (and the environment variable when one set it). Secrets are [`Secret`]s:
//! they never appear in `Debug` output, logs or `conveyor config show`.
//!
//! The field-by-field reference is `docs/config.md`; `conveyor.example.toml`
//! is a complete, commented file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::topology;

/// Environment variables with the `CONVEYOR_` prefix that are not config
/// overrides.
pub const RESERVED_ENV: &[&str] = &[
    "CONVEYOR_CONFIG",
    "CONVEYOR_LOG",
    "CONVEYOR_LOG_FORMAT",
    "CONVEYOR_DEV_DIR",
    "CONVEYOR_CACHE_DIR",
];

/// The default config file looked up in the working directory.
pub const DEFAULT_FILE: &str = "conveyor.toml";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub topics: TopicsConfig,
    pub channels: ChannelsConfig,
    pub clickhouse: ClickHouseConfig,
    pub scylla: ScyllaConfig,
    pub http: HttpConfig,
    pub state: StateConfig,
    pub dev: DevConfig,
    /// `[allocation]`: policies per channel, safety stock, reorder point.
    pub allocation: crate::warehouses::AllocationConfig,
    /// `[[warehouses]]`: where stock is and what it may serve (default:
    /// the three sample US warehouses the demo allocates from).
    pub warehouses: Vec<crate::warehouses::WarehouseConfig>,
    /// `[routing]`: boxes, carriers, services and rate cards (default: the
    /// sample USPS / UPS / FedEx cards).
    pub routing: crate::routing::RoutingConfig,
    /// `[label]`: the label API, retries and limits, the document store,
    /// the packing slip's branding.
    pub label: crate::label::LabelConfig,
    /// `[syncback]`: which channels get tracking pushed, retries and
    /// limits, carrier names per channel.
    pub syncback: crate::syncback::SyncbackConfig,
    /// `[store]`: the operational store the Scylla sink writes and the
    /// status API reads (embedded file or Scylla).
    pub store: StoreConfig,
    /// `[console]`: the operator console (users, roles, where it reads).
    pub console: crate::console::ConsoleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            kafka: KafkaConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            topics: TopicsConfig::default(),
            channels: ChannelsConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            scylla: ScyllaConfig::default(),
            http: HttpConfig::default(),
            state: StateConfig::default(),
            dev: DevConfig::default(),
            allocation: crate::warehouses::AllocationConfig::default(),
            warehouses: crate::warehouses::sample(),
            routing: crate::routing::sample(),
            label: crate::label::LabelConfig::default(),
            syncback: crate::syncback::SyncbackConfig::default(),
            store: StoreConfig::default(),
            console: crate::console::ConsoleConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// client.id sent to the broker (suffixed with the component name).
    pub client_id: String,
    /// Prefix of every consumer group id (`<prefix>.<component>`).
    pub group_prefix: String,
    /// Extra librdkafka properties passed through as-is (TLS, SASL, tuning).
    /// Values are treated as secrets when printed.
    pub properties: BTreeMap<String, Secret>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            client_id: "conveyor".into(),
            group_prefix: "conveyor".into(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The bootstrap servers as a list.
    pub fn broker_list(&self) -> Vec<&str> {
        self.brokers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Base URL of a Confluent-compatible Schema Registry.
    pub url: String,
    /// Topic in which conveyor's own dev registry keeps its schemas
    /// (compacted, one partition; the same layout as Confluent's `_schemas`).
    pub schemas_topic: String,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081".into(),
            schemas_topic: "_schemas".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Prefix for every topic name (a sandbox or a shared cluster); empty for
    /// none. `ns` gives `ns.orders.normalized`.
    pub namespace: String,
    /// Default partition count.
    pub partitions: i32,
    /// Default replication factor.
    pub replication_factor: i16,
    /// Per-topic settings keyed by topic id (see `conveyor topology`).
    pub overrides: BTreeMap<String, TopicOverride>,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            namespace: String::new(),
            partitions: 6,
            replication_factor: 1,
            overrides: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicOverride {
    /// Topic name instead of the default (`{channel}` is replaced for
    /// per-channel topics).
    pub name: Option<String>,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    /// `retention.ms`; -1 keeps records forever.
    pub retention_ms: Option<i64>,
    /// `cleanup.policy`.
    pub cleanup_policy: Option<CleanupPolicy>,
    /// Any other topic-level config, passed through to the broker.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CleanupPolicy {
    Delete,
    Compact,
}

impl CleanupPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Sales channels with a raw topic and a connector.
    pub enabled: Vec<String>,
    pub shopify: ShopifyConfig,
    pub amazon: AmazonConfig,
    pub tiktok: TikTokConfig,
    pub ebay: EbayConfig,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            enabled: topology::CHANNELS.iter().map(|c| c.to_string()).collect(),
            shopify: ShopifyConfig::default(),
            amazon: AmazonConfig::default(),
            tiktok: TikTokConfig::default(),
            ebay: EbayConfig::default(),
        }
    }
}

/// The Amazon SP-API poller (Orders API v0).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AmazonConfig {
    /// SP-API endpoint, e.g. `https://sellingpartnerapi-na.amazon.com`
    /// (default: the local simulator, `conveyor simulate amazon`).
    pub api_url: String,
    /// Login with Amazon token endpoint.
    pub lwa_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Marketplaces to poll, e.g. `["ATVPDKIKX0DER"]` (US).
    pub marketplace_ids: Vec<String>,
    /// Pause between polls (getOrders allows one call a minute sustained).
    pub poll_interval_ms: u64,
    /// Where a poller without a cursor starts: this far before now.
    pub backfill_hours: u64,
}

impl Default for AmazonConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:8092".into(),
            lwa_url: "http://127.0.0.1:8092/auth/o2/token".into(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            marketplace_ids: vec!["ATVPDKIKX0DER".into()],
            poll_interval_ms: 60_000,
            backfill_hours: 24,
        }
    }
}

/// The TikTok Shop connector: order-status webhook + signed order-detail calls.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TikTokConfig {
    /// Open API base, `https://open-api.tiktokglobalshop.com` (default: the
    /// local simulator, `conveyor simulate tiktok`).
    pub api_url: String,
    pub app_key: String,
    /// Signs API requests and verifies webhooks. Two during a rotation.
    pub app_secrets: Vec<Secret>,
    pub access_token: Secret,
    /// The shop's cipher (from Get Authorized Shops).
    pub shop_cipher: String,
    /// How long a webhook waits for the broker's acknowledgement.
    pub ack_timeout_ms: u64,
    /// Get Order Detail calls per second (token bucket, burst of one
    /// second). TikTok sets the quota per app and shop; start low and raise
    /// it when the 429 count (`conveyor_connector_throttled_total`) stays 0.
    pub api_rate_per_sec: f64,
}

impl Default for TikTokConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:8093".into(),
            app_key: String::new(),
            app_secrets: Vec::new(),
            access_token: Secret::default(),
            shop_cipher: String::new(),
            ack_timeout_ms: 4000,
            api_rate_per_sec: 10.0,
        }
    }
}

/// The eBay Fulfillment API poller.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EbayConfig {
    /// API base, `https://api.ebay.com` (default: the local simulator,
    /// `conveyor simulate ebay`).
    pub api_url: String,
    /// OAuth token endpoint (`https://api.ebay.com/identity/v1/oauth2/token`).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub poll_interval_ms: u64,
    pub backfill_hours: u64,
}

impl Default for EbayConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:8094".into(),
            token_url: "http://127.0.0.1:8094/identity/v1/oauth2/token".into(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            poll_interval_ms: 60_000,
            backfill_hours: 24,
        }
    }
}

/// The Shopify connector: webhook receiver and Admin REST poller.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShopifyConfig {
    /// The app's webhook signing secrets, newest first. Two during a
    /// rotation: a webhook signed with either is accepted. Empty: the
    /// receiver refuses to start.
    pub webhook_secrets: Vec<Secret>,
    /// Admin API base URL: `https://<shop>.myshopify.com` (default: the
    /// local simulator, `conveyor simulate shopify`).
    pub api_url: String,
    /// Admin REST API version in request paths.
    pub api_version: String,
    /// Admin API access token (`X-Shopify-Access-Token`).
    pub access_token: Secret,
    /// How often the poller asks for orders updated since its cursor; 0
    /// turns the poller off (webhooks only).
    pub poll_interval_ms: u64,
    /// Where a poller without a cursor starts: this far before now.
    pub backfill_hours: u64,
    /// How long a webhook waits for the broker's acknowledgement before it
    /// answers 503 (Shopify waits 5 s, then retries).
    pub ack_timeout_ms: u64,
    /// Which Shopify field normalize takes as the channel order number:
    /// `name` (`#1001` with the shop's prefix and suffix, as merchants and
    /// customers see it) or `order_number` (the bare number). Changing it
    /// changes new orders only; replay normalize to re-map the old ones.
    pub order_number_field: OrderNumberField,
}

/// See [`ShopifyConfig::order_number_field`].
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderNumberField {
    #[default]
    Name,
    OrderNumber,
}

impl Default for ShopifyConfig {
    fn default() -> Self {
        Self {
            webhook_secrets: Vec::new(),
            api_url: "http://127.0.0.1:8091".into(),
            api_version: "2025-01".into(),
            access_token: Secret::default(),
            poll_interval_ms: 0,
            backfill_hours: 24,
            ack_timeout_ms: 4000,
            order_number_field: OrderNumberField::Name,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) URL of ClickHouse.
    pub url: String,
    /// Database holding conveyor's tables (created when missing).
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// The sink inserts at most this many records per batch (one insert
    /// per table per batch; ClickHouse rewards large inserts).
    pub batch_max_records: usize,
    /// How long a sink batch waits for more records after its first, in ms.
    pub batch_max_wait_ms: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "conveyor".into(),
            user: "default".into(),
            password: Secret::default(),
            batch_max_records: 50_000,
            batch_max_wait_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// Replication factor used when the sink creates the keyspace.
    pub replication_factor: u16,
    pub user: String,
    pub password: Secret,
    /// Statements the sink keeps in flight at once.
    pub concurrency: usize,
    /// Client-to-node encryption (TLS), verifying the nodes' certificates.
    pub tls: bool,
    /// PEM file of the CA that signed the nodes' certificates; empty: the
    /// system trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
    pub ca_file: String,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "conveyor".into(),
            replication_factor: 1,
            user: String::new(),
            password: Secret::default(),
            concurrency: 64,
            tls: false,
            ca_file: String::new(),
        }
    }
}

/// Where operational state lives.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// One redb file on local disk (one machine; no Scylla needed).
    Embedded,
    /// The `[scylla]` cluster.
    Scylla,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// The embedded store's file.
    pub path: String,
    /// Most records per sink batch.
    pub batch_max_records: usize,
    /// How long a sink batch waits for more records after its first, in ms.
    pub batch_max_wait_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            path: ".conveyor/store/operational.redb".into(),
            batch_max_records: 5000,
            batch_max_wait_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `/metrics`, `/healthz`, `/readyz` of every long-running process.
    pub observability_bind: SocketAddr,
    /// Channel webhooks (Shopify, TikTok Shop).
    pub webhooks_bind: SocketAddr,
    /// Order status API.
    pub status_api_bind: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            observability_bind: ([127, 0, 0, 1], 9464).into(),
            webhooks_bind: ([127, 0, 0, 1], 8090).into(),
            status_api_bind: ([127, 0, 0, 1], 8080).into(),
        }
    }
}

/// Stream processors' local state and batching.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Directory of the state stores (one redb file per processor, store and
    /// partition). Losing it costs a restore from the changelogs, not data.
    pub dir: String,
    /// Most records a processor handles per batch (one store commit and one
    /// changelog marker per batch).
    pub batch_max_records: usize,
    /// How long a batch waits for more records after its first, in ms.
    pub batch_max_wait_ms: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: ".conveyor/state".into(),
            batch_max_records: 2000,
            batch_max_wait_ms: 20,
        }
    }
}

/// Local services started by `conveyor dev up`. Where each one listens comes
/// from the sections above (`kafka.brokers`, `schema_registry.url`,
/// `clickhouse.url`); these are the extra knobs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevConfig {
    /// ClickHouse native-protocol port (the HTTP port is in `clickhouse.url`).
    pub clickhouse_tcp_port: u16,
}

impl Default for DevConfig {
    fn default() -> Self {
        Self {
            clickhouse_tcp_port: 9000,
        }
    }
}

/// A string that never prints: `Debug`, `Display` and `Serialize` show `***`
/// (or nothing when empty). Use [`Secret::expose`] where the value is needed.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn masked(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            "***"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.masked())
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `topics.overrides.orders_normalized.partitions`.
    pub field: String,
    pub problem: String,
    /// The environment variable that set this field, when one did.
    pub env: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.problem)?;
        if let Some(env) = &self.env {
            write!(f, " (set by environment variable {env})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("invalid config ({origin}):\n{}", list(.errors))]
    Invalid {
        origin: String,
        errors: Vec<FieldError>,
    },
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The field errors, if this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

impl Config {
    /// Loads the config the way every command does: `path` (or
    /// `CONVEYOR_CONFIG`, or `./conveyor.toml` if it exists, or nothing), then
    /// the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CONVEYOR_CONFIG").map(PathBuf::from));
        let file = match explicit {
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()),
        };
        let text = match &file {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let origin = match &file {
            Some(p) => p.display().to_string(),
            None => "built-in defaults".to_string(),
        };
        Self::from_sources(text.as_deref(), &origin, std::env::vars())
    }

    /// Builds a config from TOML text (or none) and environment variables.
    pub fn from_sources(
        toml_text: Option<&str>,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut root = match toml_text {
            Some(text) => text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    origin: origin.to_string(),
                    message: e.to_string(),
                })?,
            None => toml::Table::new(),
        };
        let defaults = toml::Value::try_from(Config::default())
            .unwrap_or(toml::Value::Table(toml::Table::new()));
        let mut env_fields: Vec<(String, String)> = Vec::new();
        let mut set_by: BTreeMap<String, String> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CONVEYOR_") && !RESERVED_ENV.contains(&k.as_str()))
            .collect();
        env.sort();
        for (name, value) in env {
            let path: Vec<String> = name["CONVEYOR_".len()..]
                .split("__")
                .map(|s| s.to_ascii_lowercase())
                .collect();
            if path.iter().any(String::is_empty) {
                errors.push(FieldError {
                    field: path.join("."),
                    problem: "malformed override name (empty segment)".into(),
                    env: Some(name),
                });
                continue;
            }
            // `<FIELD>_FILE=/path`: the field's value is the file's content
            // (a mounted secret); one value per line for a list field.
            let (path, value) = match file_override(&defaults, &path) {
                Some((field, list)) => match std::fs::read_to_string(&value) {
                    Ok(text) => (field, file_value(&text, list)),
                    Err(e) => {
                        errors.push(FieldError {
                            field: field.join("."),
                            problem: format!("cannot read {value}: {e}"),
                            env: Some(name),
                        });
                        continue;
                    }
                },
                None => (path, value),
            };
            if let Some(other) = set_by.insert(path.join("."), name.clone()) {
                errors.push(FieldError {
                    field: path.join("."),
                    problem: format!("set by both {other} and {name}; keep one"),
                    env: Some(name),
                });
                continue;
            }
            let parsed = if is_string_field(&defaults, &path) {
                // Strings (and secrets) are taken verbatim: `123456` stays a
                // password, `"x"` keeps its quotes.
                toml::Value::String(value)
            } else {
                parse_env_value(&value)
            };
            if let Err(problem) = set_path(&mut root, &path, parsed) {
                errors.push(FieldError {
                    field: path.join("."),
                    problem,
                    env: Some(name),
                });
                continue;
            }
            env_fields.push((path.join("."), name));
        }
        let env_for = |field: &str| {
            env_fields
                .iter()
                .find(|(f, _)| {
                    field == f
                        || field.starts_with(&format!("{f}."))
                        || f.starts_with(&format!("{field}."))
                })
                .map(|(_, n)| n.clone())
        };
        if !errors.is_empty() {
            return Err(ConfigError::Invalid {
                origin: origin.into(),
                errors,
            });
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|e| {
                let field = e.path().to_string();
                let env = env_for(&field);
                ConfigError::Invalid {
                    origin: origin.into(),
                    errors: vec![FieldError {
                        field,
                        problem: e.into_inner().to_string(),
                        env,
                    }],
                }
            })?;
        let mut errors = config.validate();
        for e in &mut errors {
            e.env = env_for(&e.field);
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.into(),
                errors,
            })
        }
    }

    /// Semantic checks beyond types. Returns every problem found.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut bad = |field: &str, problem: String| {
            errs.push(FieldError {
                field: field.into(),
                problem,
                env: None,
            })
        };

        let brokers = self.kafka.broker_list();
        if brokers.is_empty() {
            bad("kafka.brokers", "must list at least one `host:port`".into());
        }
        for b in brokers {
            if let Err(p) = check_host_port(b) {
                bad("kafka.brokers", format!("`{b}`: {p}"));
            }
        }
        if self.kafka.client_id.trim().is_empty() {
            bad("kafka.client_id", "must not be empty".into());
        }
        if let Err(p) = check_name(&self.kafka.group_prefix, false) {
            bad("kafka.group_prefix", p);
        }
        for key in self.kafka.properties.keys() {
            if MANAGED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                bad(
                    &format!("kafka.properties.{key}"),
                    "is set by conveyor itself (its guarantees depend on it); remove it".into(),
                );
            }
        }
        if let Err(p) = check_url(&self.schema_registry.url) {
            bad("schema_registry.url", p);
        }
        if let Err(p) = check_name(&self.schema_registry.schemas_topic, false) {
            bad("schema_registry.schemas_topic", p);
        }

        if !self.topics.namespace.is_empty() {
            if let Err(p) = check_name(&self.topics.namespace, false) {
                bad("topics.namespace", p);
            }
        }
        if self.topics.partitions < 1 {
            bad(
                "topics.partitions",
                format!("must be >= 1, got {}", self.topics.partitions),
            );
        }
        if self.topics.replication_factor < 1 {
            bad(
                "topics.replication_factor",
                format!("must be >= 1, got {}", self.topics.replication_factor),
            );
        }
        for (id, o) in &self.topics.overrides {
            let field = format!("topics.overrides.{id}");
            let Some(decl) = topology::topic(id) else {
                bad(
                    &field,
                    format!(
                        "unknown topic id `{id}`; known ids: {}",
                        topology::TOPICS
                            .iter()
                            .map(|t| t.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            if let Some(name) = &o.name {
                let probe = name.replace("{channel}", "shopify");
                if let Err(p) = check_name(&probe, true) {
                    bad(&format!("{field}.name"), p);
                }
                if decl.per_channel && !name.contains("{channel}") {
                    bad(
                        &format!("{field}.name"),
                        "per-channel topic name must contain `{channel}`".into(),
                    );
                }
            }
            if let Some(p) = o.partitions {
                if p < 1 {
                    bad(
                        &format!("{field}.partitions"),
                        format!("must be >= 1, got {p}"),
                    );
                }
            }
            if let Some(r) = o.replication_factor {
                if r < 1 {
                    bad(
                        &format!("{field}.replication_factor"),
                        format!("must be >= 1, got {r}"),
                    );
                }
            }
            if let Some(r) = o.retention_ms {
                if r < -1 {
                    bad(
                        &format!("{field}.retention_ms"),
                        format!("must be -1 (forever) or a positive number of ms, got {r}"),
                    );
                }
            }
            for k in o.configs.keys() {
                if k == "cleanup.policy" || k == "retention.ms" {
                    bad(
                        &format!("{field}.configs.{k}"),
                        "use the dedicated field (cleanup_policy / retention_ms)".into(),
                    );
                }
            }
        }

        if self.channels.enabled.is_empty() {
            bad("channels.enabled", "must name at least one channel".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.channels.enabled {
            if !topology::CHANNELS.contains(&c.as_str()) {
                bad(
                    "channels.enabled",
                    format!(
                        "unknown channel `{c}`; known: {}",
                        topology::CHANNELS.join(", ")
                    ),
                );
            }
            if !seen.insert(c) {
                bad("channels.enabled", format!("`{c}` is listed twice"));
            }
        }
        let shopify = &self.channels.shopify;
        if let Err(p) = check_url(&shopify.api_url) {
            bad("channels.shopify.api_url", p);
        }
        if shopify.webhook_secrets.len() > 2 {
            bad(
                "channels.shopify.webhook_secrets",
                "at most two (the current one and, during a rotation, the previous one)".into(),
            );
        }
        if shopify.webhook_secrets.iter().any(Secret::is_empty) {
            bad(
                "channels.shopify.webhook_secrets",
                "an empty secret is not a secret".into(),
            );
        }
        if shopify.ack_timeout_ms == 0 {
            bad(
                "channels.shopify.ack_timeout_ms",
                "must be at least 1".into(),
            );
        }
        let amazon = &self.channels.amazon;
        for (field, url) in [
            ("channels.amazon.api_url", &amazon.api_url),
            ("channels.amazon.lwa_url", &amazon.lwa_url),
        ] {
            if let Err(p) = check_url(url) {
                bad(field, p);
            }
        }
        if amazon.marketplace_ids.is_empty() {
            bad(
                "channels.amazon.marketplace_ids",
                "must list at least one marketplace, e.g. [\"ATVPDKIKX0DER\"] (US)".into(),
            );
        }
        if amazon.poll_interval_ms < 1000 {
            bad(
                "channels.amazon.poll_interval_ms",
                "must be at least 1000 (getOrders allows one call a minute sustained)".into(),
            );
        }
        let tiktok = &self.channels.tiktok;
        if let Err(p) = check_url(&tiktok.api_url) {
            bad("channels.tiktok.api_url", p);
        }
        if tiktok.app_secrets.len() > 2 {
            bad(
                "channels.tiktok.app_secrets",
                "at most two (the current one and, during a rotation, the previous one)".into(),
            );
        }
        if tiktok.app_secrets.iter().any(Secret::is_empty) {
            bad(
                "channels.tiktok.app_secrets",
                "an empty secret is not a secret".into(),
            );
        }
        if tiktok.ack_timeout_ms == 0 {
            bad(
                "channels.tiktok.ack_timeout_ms",
                "must be at least 1".into(),
            );
        }
        if !(tiktok.api_rate_per_sec > 0.0 && tiktok.api_rate_per_sec <= 1000.0) {
            bad(
                "channels.tiktok.api_rate_per_sec",
                "must be more than 0 and at most 1000 calls per second".into(),
            );
        }
        let ebay = &self.channels.ebay;
        for (field, url) in [
            ("channels.ebay.api_url", &ebay.api_url),
            ("channels.ebay.token_url", &ebay.token_url),
        ] {
            if let Err(p) = check_url(url) {
                bad(field, p);
            }
        }
        if ebay.poll_interval_ms < 1000 {
            bad(
                "channels.ebay.poll_interval_ms",
                "must be at least 1000".into(),
            );
        }

        if let Err(p) = check_url(&self.clickhouse.url) {
            bad("clickhouse.url", p);
        }
        if let Err(p) = check_ident(&self.clickhouse.database) {
            bad("clickhouse.database", p);
        }
        if self.scylla.nodes.is_empty() {
            bad("scylla.nodes", "must list at least one `host:port`".into());
        }
        for n in &self.scylla.nodes {
            if let Err(p) = check_host_port(n) {
                bad("scylla.nodes", format!("`{n}`: {p}"));
            }
        }
        if let Err(p) = check_ident(&self.scylla.keyspace) {
            bad("scylla.keyspace", p);
        }
        if self.scylla.replication_factor < 1 {
            bad("scylla.replication_factor", "must be >= 1".into());
        }
        if self.state.dir.trim().is_empty() {
            bad("state.dir", "must be a directory path".into());
        }
        if self.state.batch_max_records == 0 {
            bad("state.batch_max_records", "must be >= 1".into());
        }
        if self.store.batch_max_records == 0 {
            bad("store.batch_max_records", "must be >= 1".into());
        }
        if self.scylla.concurrency == 0 {
            bad("scylla.concurrency", "must be >= 1".into());
        }
        if self.clickhouse.batch_max_records == 0 {
            bad("clickhouse.batch_max_records", "must be >= 1".into());
        }
        for (field, problem) in
            crate::warehouses::validate(&self.warehouses, &self.allocation, &self.channels.enabled)
        {
            bad(&field, problem);
        }
        for (field, problem) in crate::routing::validate(&self.routing) {
            bad(&field, problem);
        }
        for (field, problem) in crate::label::validate(&self.label) {
            bad(&field, problem);
        }
        for (field, problem) in crate::syncback::validate(&self.syncback) {
            bad(&field, problem);
        }
        for (field, problem) in crate::console::validate(&self.console) {
            bad(&field, problem);
        }
        if self.dev.clickhouse_tcp_port == 0 {
            bad(
                "dev.clickhouse_tcp_port",
                "must be a port number, not 0".into(),
            );
        }
        errs
    }

    /// The config as TOML with every secret masked, for `conveyor config show`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// librdkafka properties that conveyor sets itself and a user may not override.
pub const MANAGED_KAFKA_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "transactional.id",
];

/// Whether `path` names a string field: a string in the defaults, a
/// passthrough property, or a topic override's name.
fn is_string_field(defaults: &toml::Value, path: &[String]) -> bool {
    if path.len() >= 3 && path[0] == "kafka" && path[1] == "properties" {
        return true;
    }
    if path.len() == 5 && path[0] == "topics" && path[1] == "overrides" && path[3] == "configs" {
        return true;
    }
    if path.len() == 4 && path[0] == "topics" && path[1] == "overrides" && path[3] == "name" {
        return true;
    }
    let mut v = defaults;
    for seg in path {
        match v.get(seg.as_str()) {
            Some(next) => v = next,
            None => return false,
        }
    }
    v.is_str()
}

/// For `..._file` overrides of a string or list field that has no field of
/// that name itself: the field's path and whether it is a list.
fn file_override(defaults: &toml::Value, path: &[String]) -> Option<(Vec<String>, bool)> {
    let last = path.last()?.strip_suffix("_file")?;
    let mut field = path.to_vec();
    *field.last_mut()? = last.to_string();
    let lookup = |p: &[String]| {
        p.iter()
            .try_fold(defaults, |v, seg| v.get(seg.as_str()))
            .cloned()
    };
    if last.is_empty() || lookup(path).is_some() {
        return None;
    }
    match lookup(&field) {
        Some(toml::Value::Array(_)) => Some((field, true)),
        _ if is_string_field(defaults, &field) => Some((field, false)),
        _ => None,
    }
}

/// A secret file's content as an override value: trailing newline dropped;
/// for a list, one item per non-empty line (as a TOML array literal).
fn file_value(text: &str, list: bool) -> String {
    if !list {
        return text.trim_end_matches(['\n', '\r']).to_string();
    }
    let items: Vec<toml::Value> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| toml::Value::String(l.to_string()))
        .collect();
    toml::Value::Array(items).to_string()
}

fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty path")?;
    let mut table = root;
    for (i, seg) in parents.iter().enumerate() {
        let entry = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            format!(
                "`{}` is a value, not a section, so it cannot have sub-keys",
                path[..=i].join(".")
            )
        })?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

fn check_host_port(s: &str) -> Result<(), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected `host:port`".to_string())?;
    if host.is_empty() {
        return Err("host is empty".into());
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .map(|_| ())
        .ok_or_else(|| format!("port `{port}` is not a number in 1..=65535"))
}

fn check_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("`{s}` must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    Ok(())
}

/// Kafka topic / group name rules: [a-zA-Z0-9._-], 1..=249 chars.
fn check_name(s: &str, topic: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 249 {
        return Err(format!("`{s}` is longer than 249 characters"));
    }
    if topic && (s == "." || s == "..") {
        return Err(format!("`{s}` is not a valid topic name"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{s}` contains `{c}`; only letters, digits, `.`, `_` and `-` are allowed"
        ));
    }
    Ok(())
}

/// SQL/CQL identifier rules: starts with a letter or `_`, then [A-Za-z0-9_].
fn check_ident(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err(format!("`{s}` must start with a letter or `_`")),
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("`{s}` may contain only letters, digits and `_`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(
            Some(text),
            "test.toml",
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let c = load("", &[]).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.validate().is_empty());
    }

    #[test]
    fn example_file_is_valid_and_complete() {
        let text = include_str!("../../../conveyor.example.toml");
        let mut c = load(text, &[]).unwrap();
        // Every setting the example shows is the default, apart from the
        // sample topic overrides.
        assert_eq!(
            c.topics.overrides["orders_dlq"].retention_ms,
            Some(2_592_000_000)
        );
        c.topics.overrides.clear();
        assert!(!c.allocation.policy("amazon").split);
        c.allocation.policies.clear();
        assert_eq!(c.allocation.reorder_points["MTG-DMU-BOOSTER"], 40);
        c.allocation.reorder_points.clear();
        assert_eq!(c, Config::default());
        // And it shows every field.
        fn walk(
            default: &toml::Value,
            example: &toml::Value,
            path: &str,
            missing: &mut Vec<String>,
        ) {
            if let toml::Value::Table(t) = default {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match example.get(k) {
                        None => missing.push(p),
                        Some(e) => walk(v, e, &p, missing),
                    }
                }
            }
        }
        let default = toml::Value::try_from(Config::default()).unwrap();
        let example: toml::Value = toml::from_str(text).unwrap();
        let mut missing = Vec::new();
        walk(&default, &example, "", &mut missing);
        assert!(
            missing.is_empty(),
            "conveyor.example.toml lacks {missing:?}"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = load("[topics]\npartitions = \"six\"\n", &[]).unwrap_err();
        let e = &err.field_errors()[0];
        assert_eq!(e.field, "topics.partitions");
        assert!(e.problem.contains("invalid type"), "{}", e.problem);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_place() {
        let err = load("[kafka]\nbrokerz = \"x:1\"\n", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("brokerz"), "{msg}");
        assert!(msg.contains("kafka"), "{msg}");
    }

    #[test]
    fn validation_reports_every_problem() {
        let err = load(
            "[kafka]\nbrokers = \"nohost\"\n[topics]\npartitions = 0\n[channels]\nenabled = [\"etsy\"]\n[clickhouse]\ndatabase = \"1db\"\n",
            &[],
        )
        .unwrap_err();
        let fields: Vec<_> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "kafka.brokers",
                "topics.partitions",
                "channels.enabled",
                "clickhouse.database"
            ]
        );
    }

    #[test]
    fn unknown_topic_override_lists_known_ids() {
        let err = load(
            "[topics.overrides.orders_normalised]\npartitions = 3\n",
            &[],
        )
        .unwrap_err();
        let e = &err.field_errors()[0];
        assert_eq!(e.field, "topics.overrides.orders_normalised");
        assert!(e.problem.contains("orders_normalized"), "{}", e.problem);
    }

    #[test]
    fn env_overrides_file_and_parses_literals() {
        let c = load(
            "[topics]\npartitions = 3\n",
            &[
                ("CONVEYOR_TOPICS__PARTITIONS", "12"),
                ("CONVEYOR_KAFKA__BROKERS", "a:1,b:2"),
                ("CONVEYOR_CHANNELS__ENABLED", "[\"csv\"]"),
                ("CONVEYOR_TOPICS__OVERRIDES__ORDERS_DLQ__RETENTION_MS", "-1"),
                ("CONVEYOR_LOG_FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(c.topics.partitions, 12);
        assert_eq!(c.kafka.broker_list(), ["a:1", "b:2"]);
        assert_eq!(c.channels.enabled, ["csv"]);
        assert_eq!(c.topics.overrides["orders_dlq"].retention_ms, Some(-1));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load("", &[("CONVEYOR_TOPICS__PARTITIONS", "lots")]).unwrap_err();
        let e = &err.field_errors()[0];
        assert_eq!(e.field, "topics.partitions");
        assert_eq!(e.env.as_deref(), Some("CONVEYOR_TOPICS__PARTITIONS"));

        let err = load("", &[("CONVEYOR_TOPICS__PARTITIONS", "-3")]).unwrap_err();
        assert!(
            err.to_string().contains("CONVEYOR_TOPICS__PARTITIONS"),
            "{err}"
        );

        // A sub-key under a plain value: a type error naming the variable.
        let err = load("", &[("CONVEYOR_KAFKA__BROKERS__X", "1")]).unwrap_err();
        let e = &err.field_errors()[0];
        assert_eq!(e.field, "kafka.brokers");
        assert_eq!(e.env.as_deref(), Some("CONVEYOR_KAFKA__BROKERS__X"));
        let err = load(
            "[kafka]\nbrokers = \"a:1\"\n",
            &[("CONVEYOR_KAFKA__BROKERS__X", "1")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a section"), "{err}");
    }

    #[test]
    fn secrets_from_the_environment_are_taken_verbatim() {
        let c = load(
            "",
            &[
                ("CONVEYOR_CLICKHOUSE__PASSWORD", "123456"),
                ("CONVEYOR_SCYLLA__PASSWORD", "\"quoted\""),
                ("CONVEYOR_KAFKA__PROPERTIES__SASL.PASSWORD", "true"),
                ("CONVEYOR_KAFKA__CLIENT_ID", "42"),
            ],
        )
        .unwrap();
        assert_eq!(c.clickhouse.password.expose(), "123456");
        assert_eq!(c.scylla.password.expose(), "\"quoted\"");
        assert_eq!(c.kafka.properties["sasl.password"].expose(), "true");
        assert_eq!(c.kafka.client_id, "42");
    }

    #[test]
    fn secrets_from_files_named_by_file_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret 42\n").unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::write(&hooks, "new-secret\n\nold-secret\n").unwrap();
        let sasl = dir.path().join("sasl");
        std::fs::write(&sasl, "p").unwrap();
        let (pw, hooks, sasl) = (
            pw.to_str().unwrap(),
            hooks.to_str().unwrap(),
            sasl.to_str().unwrap(),
        );
        let c = load(
            "",
            &[
                ("CONVEYOR_CLICKHOUSE__PASSWORD_FILE", pw),
                ("CONVEYOR_CHANNELS__SHOPIFY__WEBHOOK_SECRETS_FILE", hooks),
                ("CONVEYOR_KAFKA__PROPERTIES__SASL.PASSWORD_FILE", sasl),
            ],
        )
        .unwrap();
        assert_eq!(c.clickhouse.password.expose(), "s3cret 42");
        let got: Vec<&str> = c
            .channels
            .shopify
            .webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(got, ["new-secret", "old-secret"]);
        assert_eq!(c.kafka.properties["sasl.password"].expose(), "p");
        let err = load("", &[("CONVEYOR_SCYLLA__PASSWORD_FILE", "/nonexistent/pw")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("scylla.password") && msg.contains("cannot read /nonexistent/pw"),
            "{msg}"
        );
        // A field that is itself named `..._file` is set, not read from.
        let c = load(
            "",
            &[("CONVEYOR_SCYLLA__CA_FILE", "/etc/ssl/scylla-ca.pem")],
        )
        .unwrap();
        assert_eq!(c.scylla.ca_file, "/etc/ssl/scylla-ca.pem");
        // A field and its file at once is ambiguous.
        let err = load(
            "",
            &[
                ("CONVEYOR_CLICKHOUSE__PASSWORD", "a"),
                ("CONVEYOR_CLICKHOUSE__PASSWORD_FILE", pw),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("set by both"), "{err}");
    }

    #[test]
    fn syntax_error_is_reported_with_position() {
        let err = load("[kafka\nbrokers = 1", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let c = load(
            "[clickhouse]\npassword = \"hunter2\"\n[kafka.properties]\n\"sasl.password\" = \"s3cret\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.clickhouse.password.expose(), "hunter2");
        let shown = format!("{c:?}{}", c.to_redacted_toml());
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn managed_kafka_properties_are_refused() {
        let err = load("[kafka.properties]\nacks = \"1\"\n", &[]).unwrap_err();
        assert_eq!(err.field_errors()[0].field, "kafka.properties.acks");
    }
}

//! The operator console's settings: the `[console]` section of the config
//! (reference: docs/config.md). Read by `conveyor console`
//! (docs/console.md).
//!
//! Users and their roles live here, with argon2 password hashes (PHC
//! strings; `conveyor console hash-password` makes one), never plain
//! passwords. A hash prints as `***`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// What a user may do, lowest first: a role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads orders, exceptions, inventory and health; sees no PII
    /// (names, emails, addresses, documents) and takes no action.
    Viewer,
    /// A viewer who also sees PII and acts on exceptions (retry, cancel,
    /// mark resolved).
    Operator,
    /// An operator who also reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role sees names, emails, addresses and documents.
    pub fn sees_pii(self) -> bool {
        self >= Role::Operator
    }

    /// Whether this role may retry, cancel or resolve exceptions.
    pub fn acts(self) -> bool {
        self >= Role::Operator
    }
}

/// `[[console.users]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string (`$argon2id$v=19$m=...`).
    pub password_hash: Secret,
}

/// `[console]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Where the console listens.
    pub bind: SocketAddr,
    /// The order status API it reads the operational store through
    /// (`conveyor sink scylla` serves it on `http.status_api_bind`).
    pub status_api: String,
    /// A session ends after this long without a request...
    pub session_idle_minutes: u64,
    /// ...and after this long in any case.
    pub session_max_hours: u64,
    /// Mark the session cookie `Secure` (serve the console behind TLS).
    pub secure_cookies: bool,
    /// Stage -> its process's `/metrics` URL, for the health page.
    pub metrics: BTreeMap<String, String>,
    /// How often the health page's numbers are refreshed.
    pub scrape_interval_ms: u64,
    /// Days of exceptions the queue shows.
    pub exception_days: u32,
    pub users: Vec<ConsoleUser>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            bind: ([127, 0, 0, 1], 8070).into(),
            status_api: "http://127.0.0.1:8080".into(),
            session_idle_minutes: 30,
            session_max_hours: 12,
            secure_cookies: false,
            metrics: BTreeMap::new(),
            scrape_interval_ms: 5_000,
            exception_days: 7,
            users: Vec::new(),
        }
    }
}

/// Problems in `[console]`, as (field, problem).
pub fn validate(c: &ConsoleConfig) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut bad = |f: &str, p: String| errs.push((format!("console.{f}"), p));
    if !(c.status_api.starts_with("http://") || c.status_api.starts_with("https://")) {
        bad(
            "status_api",
            format!("must be an http(s) URL, got `{}`", c.status_api),
        );
    }
    if c.session_idle_minutes == 0 || c.session_max_hours == 0 {
        bad(
            "session_idle_minutes",
            "session lifetimes must be above zero".into(),
        );
    }
    if c.scrape_interval_ms < 500 {
        bad(
            "scrape_interval_ms",
            "must be at least 500 (the processes' /metrics are scraped that often)".into(),
        );
    }
    if c.exception_days == 0 || c.exception_days > 90 {
        bad("exception_days", "must be 1..=90".into());
    }
    for (stage, url) in &c.metrics {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bad(
                &format!("metrics.{stage}"),
                format!("must be an http(s) URL, got `{url}`"),
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in c.users.iter().enumerate() {
        if u.name.trim().is_empty() || u.name.chars().any(|ch| ch.is_control() || ch == ' ') {
            bad(
                &format!("users[{i}].name"),
                "must be a non-empty name without spaces".into(),
            );
        }
        if !seen.insert(u.name.as_str()) {
            bad(
                &format!("users[{i}].name"),
                format!("`{}` is listed twice", u.name),
            );
        }
        if !u.password_hash.expose().starts_with("$argon2") {
            bad(
                &format!("users[{i}].password_hash"),
                "must be an argon2 PHC string (make one with `conveyor console hash-password`)"
                    .into(),
            );
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(!Role::Viewer.sees_pii() && !Role::Viewer.acts());
        assert!(Role::Operator.sees_pii() && Role::Operator.acts());
        assert!(Role::Admin > Role::Operator);
    }

    #[test]
    fn plain_passwords_and_duplicate_users_are_refused() {
        let mut c = ConsoleConfig::default();
        assert!(validate(&c).is_empty());
        let user = |name: &str, hash: &str| ConsoleUser {
            name: name.into(),
            role: Role::Operator,
            password_hash: Secret::new(hash),
        };
        c.users = vec![
            user("ana", "hunter2"),
            user("bo", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            user("bo", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        ];
        let errs = validate(&c);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, "console.users[0].password_hash");
        assert!(errs[1].1.contains("twice"));
    }
}

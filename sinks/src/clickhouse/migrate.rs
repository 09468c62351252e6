//! Versioned DDL: the files of deploy/clickhouse, applied in order, each
//! once, recorded in `schema_migrations` with a checksum.
//!
//! Every statement is `IF NOT EXISTS`, so a migration interrupted halfway
//! is simply applied again. A file changed after it was applied is
//! refused (add a new file instead): analysts' tables must not drift from
//! what the DDL in the repository says.

use clickhouse::Client;
use conveyor_runtime::config::ClickHouseConfig;
use sha2::{Digest, Sha256};

use super::{client, ensure_database, ClickHouseError};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_facts.sql",
        sql: include_str!("../../../deploy/clickhouse/001_facts.sql"),
    },
    Migration {
        version: 2,
        name: "002_views.sql",
        sql: include_str!("../../../deploy/clickhouse/002_views.sql"),
    },
];

/// The statements of a DDL file: full-line `--` comments dropped, split at
/// the `;` that ends a line.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        let t = line.trim_end();
        if let Some(stmt) = t.strip_suffix(';') {
            cur.push_str(stmt);
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Now,
    /// Applied before, unchanged.
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("migration {name} changed after it was applied (checksum {applied} in schema_migrations, {now} now): add a new migration file instead of editing an applied one")]
    Changed {
        name: String,
        applied: String,
        now: String,
    },
    #[error("migration {name}, statement {index}: {source}\n{statement}")]
    Statement {
        name: String,
        index: usize,
        statement: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse database `{database}` lacks migrations {missing:?}: run `conveyor sink clickhouse --migrate` first")]
    Pending {
        database: String,
        missing: Vec<String>,
    },
}

async fn applied(
    cfg: &ClickHouseConfig,
    c: &Client,
) -> Result<Vec<(u32, String)>, ClickHouseError> {
    let err = |source| ClickHouseError::Query {
        url: cfg.url.clone(),
        source,
    };
    c.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, \
         checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
         ENGINE = ReplacingMergeTree ORDER BY version",
    )
    .execute()
    .await
    .map_err(err)?;
    c.query("SELECT version, checksum FROM schema_migrations FINAL ORDER BY version")
        .fetch_all::<(u32, String)>()
        .await
        .map_err(err)
}

/// Creates the database when missing and applies every pending migration.
pub async fn migrate(cfg: &ClickHouseConfig) -> Result<Vec<(&'static str, Applied)>, MigrateError> {
    ensure_database(cfg).await?;
    let c = client(cfg);
    let done = applied(cfg, &c).await?;
    let mut out = Vec::new();
    for m in MIGRATIONS {
        let sum = checksum(m.sql);
        if let Some((_, was)) = done.iter().find(|(v, _)| *v == m.version) {
            if *was != sum {
                return Err(MigrateError::Changed {
                    name: m.name.into(),
                    applied: was.clone(),
                    now: sum,
                });
            }
            out.push((m.name, Applied::Already));
            continue;
        }
        for (index, statement) in statements(m.sql).into_iter().enumerate() {
            c.query(&statement)
                .execute()
                .await
                .map_err(|source| MigrateError::Statement {
                    name: m.name.into(),
                    index,
                    statement: statement.clone(),
                    source,
                })?;
        }
        c.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(&sum)
            .execute()
            .await
            .map_err(|source| ClickHouseError::Query {
                url: cfg.url.clone(),
                source,
            })?;
        out.push((m.name, Applied::Now));
    }
    Ok(out)
}

/// Fails unless every migration is applied (the sink checks before it
/// writes, so it never writes into tables of an older schema). Read-only:
/// the sink's user needs no CREATE grant (ClickHouse checks it even for
/// `IF NOT EXISTS`), only SELECT and INSERT on its database.
pub async fn check(cfg: &ClickHouseConfig) -> Result<(), MigrateError> {
    let err = |source| ClickHouseError::Query {
        url: cfg.url.clone(),
        source,
    };
    let present: u64 = super::server_client(cfg)
        .query(
            "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'",
        )
        .bind(&cfg.database)
        .fetch_one()
        .await
        .map_err(err)?;
    let done: Vec<(u32, String)> = if present == 0 {
        Vec::new()
    } else {
        client(cfg)
            .query("SELECT version, checksum FROM schema_migrations FINAL ORDER BY version")
            .fetch_all()
            .await
            .map_err(err)?
    };
    let missing: Vec<String> = MIGRATIONS
        .iter()
        .filter(|m| !done.iter().any(|(v, _)| *v == m.version))
        .map(|m| m.name.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::Pending {
            database: cfg.database.clone(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_drops_comments() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (x String COMMENT 'it''s')\nENGINE = Log;\n\n-- more\nCREATE VIEW v AS SELECT 1;\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (x String COMMENT 'it''s')\nENGINE = Log".to_string(),
                "CREATE VIEW v AS SELECT 1".to_string()
            ]
        );
    }

    fn created(kind: &str) -> Vec<String> {
        let prefix = format!("CREATE {kind} IF NOT EXISTS ");
        MIGRATIONS
            .iter()
            .flat_map(|m| statements(m.sql))
            .filter_map(|s| {
                let rest = s.strip_prefix(&prefix)?;
                Some(rest.split_whitespace().next()?.to_string())
            })
            .collect()
    }

    #[test]
    fn the_declared_tables_and_views_are_the_ddl_s() {
        assert_eq!(created("TABLE"), super::super::FACT_TABLES);
        assert_eq!(
            created("MATERIALIZED VIEW"),
            super::super::MATERIALIZED_VIEWS
        );
    }

    #[test]
    fn every_migration_is_idempotent_ddl() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{} out of order", m.name);
            let stmts = statements(m.sql);
            assert!(!stmts.is_empty(), "{} is empty", m.name);
            for s in stmts {
                assert!(
                    s.contains("IF NOT EXISTS"),
                    "{}: a statement that cannot be re-run: {s}",
                    m.name
                );
            }
        }
    }
}

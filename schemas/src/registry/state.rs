//! The registry's in-memory state and the log records that rebuild it.
//!
//! Every change is a [`LogRecord`] (key + value, JSON, in the layout
//! Confluent's registry uses in its `_schemas` topic). The state is a pure
//! function of the records applied in order, so replaying the compacted
//! topic at start-up restores it exactly.

use std::collections::{BTreeMap, HashMap};

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use super::compat::{self, Level};
use crate::contracts::normalized_json;

/// Key of a record in the schemas topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogKey {
    Schema { subject: String, version: u32 },
    Config { subject: Option<String> },
}

/// Value of a SCHEMA record. A hard delete is written as `permanent: true`
/// rather than a tombstone, so the schema text (and so the highest id ever
/// assigned) survives compaction and an id is never reused for another
/// schema. Tombstones written by other registries are still understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

/// Value of a CONFIG record (a null value removes a subject's level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    pub compatibility_level: Level,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub key: LogKey,
    /// JSON of [`SchemaValue`] / [`ConfigValue`]; None is a tombstone.
    pub value: Option<String>,
}

impl LogRecord {
    pub fn key_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.key).unwrap_or_default()
    }

    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<LogRecord, String> {
        let key: LogKey = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        let value = value
            .map(|v| String::from_utf8(v.to_vec()).map_err(|e| format!("bad value: {e}")))
            .transpose()?;
        Ok(LogRecord { key, value })
    }
}

#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub id: u32,
    pub text: String,
    pub parsed: Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: u32,
    pub id: u32,
    pub deleted: bool,
}

/// Errors in the registry's REST vocabulary (HTTP status + Confluent error
/// code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    #[error("Schema not found")]
    SchemaNotFound,
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {}", .messages.join("; "))]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    NotSoftDeleted(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("The registry is not ready: {0}")]
    NotReady(String),
    #[error("Storing the change failed: {0}")]
    Store(String),
}

impl RegistryError {
    /// (HTTP status, Confluent error_code).
    pub fn codes(&self) -> (u16, u32) {
        match self {
            RegistryError::SubjectNotFound(_) => (404, 40401),
            RegistryError::VersionNotFound(_) => (404, 40402),
            RegistryError::SchemaNotFound => (404, 40403),
            RegistryError::NotSoftDeleted(_) => (404, 40405),
            RegistryError::InvalidSchema(_) => (422, 42201),
            RegistryError::InvalidVersion(_) => (422, 42202),
            RegistryError::Incompatible { .. } => (409, 409),
            RegistryError::BadRequest(_) => (400, 400),
            RegistryError::NotReady(_) => (503, 50003),
            // The backing topic is unavailable: retryable for clients.
            RegistryError::Store(_) => (503, 50001),
        }
    }
}

/// A version selector from a URL: a number or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    Latest,
    Number(u32),
}

impl VersionSel {
    pub fn parse(s: &str) -> Result<VersionSel, RegistryError> {
        if s == "latest" || s == "-1" {
            return Ok(VersionSel::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(VersionSel::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_string())),
        }
    }
}

#[derive(Debug, Default)]
pub struct State {
    schemas: BTreeMap<u32, StoredSchema>,
    /// Schema ids by normalized JSON ([`crate::contracts::normalized_json`]).
    by_text: HashMap<String, u32>,
    subjects: BTreeMap<String, Vec<VersionEntry>>,
    global_level: Option<Level>,
    subject_levels: BTreeMap<String, Level>,
}

/// What a registration resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Already registered under the subject: nothing to write.
    Existing { id: u32, version: u32 },
    /// A new version to append (write `record`, then apply it).
    New {
        id: u32,
        version: u32,
        record: LogRecord,
    },
}

impl State {
    /// Applies one log record. Malformed values are skipped with a warning
    /// so one bad record cannot keep the registry from starting.
    pub fn apply(&mut self, rec: &LogRecord) {
        match (&rec.key, &rec.value) {
            (LogKey::Schema { subject, version }, None) => self.remove_version(subject, *version),
            (LogKey::Schema { .. }, Some(json)) => {
                let v: SchemaValue = match serde_json::from_str(json) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping malformed schema record");
                        return;
                    }
                };
                if !self.schemas.contains_key(&v.id) {
                    match Schema::parse_str(&v.schema) {
                        Ok(parsed) => {
                            self.by_text.insert(normalized_json(&v.schema), v.id);
                            self.schemas.insert(
                                v.id,
                                StoredSchema {
                                    id: v.id,
                                    text: v.schema.clone(),
                                    parsed,
                                },
                            );
                        }
                        Err(e) => {
                            tracing::warn!(id = v.id, error = %e, "skipping unparseable stored schema");
                            return;
                        }
                    }
                }
                if v.permanent {
                    self.remove_version(&v.subject, v.version);
                    return;
                }
                let vs = self.subjects.entry(v.subject.clone()).or_default();
                let entry = VersionEntry {
                    version: v.version,
                    id: v.id,
                    deleted: v.deleted,
                };
                match vs.iter_mut().find(|e| e.version == v.version) {
                    Some(e) => *e = entry,
                    None => {
                        vs.push(entry);
                        vs.sort_by_key(|e| e.version);
                    }
                }
            }
            (LogKey::Config { subject }, value) => {
                let level = value
                    .as_deref()
                    .and_then(|j| serde_json::from_str::<ConfigValue>(j).ok())
                    .map(|c| c.compatibility_level);
                match subject {
                    None => self.global_level = level,
                    Some(s) => match level {
                        Some(l) => {
                            self.subject_levels.insert(s.clone(), l);
                        }
                        None => {
                            self.subject_levels.remove(s);
                        }
                    },
                }
            }
        }
    }

    fn remove_version(&mut self, subject: &str, version: u32) {
        if let Some(vs) = self.subjects.get_mut(subject) {
            vs.retain(|v| v.version != version);
            if vs.is_empty() {
                self.subjects.remove(subject);
            }
        }
    }

    pub fn global_level(&self) -> Level {
        self.global_level.unwrap_or_default()
    }

    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.subject_levels.get(subject).copied()
    }

    pub fn effective_level(&self, subject: &str) -> Level {
        self.subject_level(subject).unwrap_or(self.global_level())
    }

    /// Subjects with at least one live version.
    pub fn subjects(&self, include_deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, vs)| include_deleted || vs.iter().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn live_versions(&self, subject: &str) -> Result<Vec<VersionEntry>, RegistryError> {
        let vs: Vec<VersionEntry> = self
            .subjects
            .get(subject)
            .map(|vs| vs.iter().filter(|v| !v.deleted).copied().collect())
            .unwrap_or_default();
        if vs.is_empty() {
            Err(RegistryError::SubjectNotFound(subject.into()))
        } else {
            Ok(vs)
        }
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        Ok(self
            .live_versions(subject)?
            .iter()
            .map(|v| v.version)
            .collect())
    }

    pub fn version(
        &self,
        subject: &str,
        sel: VersionSel,
    ) -> Result<(VersionEntry, &StoredSchema), RegistryError> {
        let vs = self.live_versions(subject)?;
        let entry = match sel {
            VersionSel::Latest => vs.last().copied(),
            VersionSel::Number(n) => vs.iter().find(|v| v.version == n).copied(),
        }
        .ok_or_else(|| {
            RegistryError::VersionNotFound(match sel {
                VersionSel::Latest => "latest".into(),
                VersionSel::Number(n) => n.to_string(),
            })
        })?;
        let schema = self
            .schemas
            .get(&entry.id)
            .ok_or(RegistryError::SchemaNotFound)?;
        Ok((entry, schema))
    }

    pub fn schema(&self, id: u32) -> Result<&StoredSchema, RegistryError> {
        self.schemas.get(&id).ok_or(RegistryError::SchemaNotFound)
    }

    /// (subject, version) pairs using schema `id`.
    pub fn usages(&self, id: u32) -> Vec<(String, u32)> {
        self.subjects
            .iter()
            .flat_map(|(s, vs)| {
                vs.iter()
                    .filter(move |v| v.id == id && !v.deleted)
                    .map(move |v| (s.clone(), v.version))
            })
            .collect()
    }

    /// Finds `schema` among the subject's live versions.
    pub fn lookup(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<(VersionEntry, &StoredSchema), RegistryError> {
        parse(schema)?;
        let vs = self.live_versions(subject)?;
        let id = self
            .by_text
            .get(&normalized_json(schema))
            .ok_or(RegistryError::SchemaNotFound)?;
        let entry = vs
            .iter()
            .rev()
            .find(|v| v.id == *id)
            .copied()
            .ok_or(RegistryError::SchemaNotFound)?;
        Ok((entry, self.schema(entry.id)?))
    }

    /// Compatibility messages of `schema` against the subject's versions
    /// (`sel` = one version, or None = as the subject's level prescribes).
    pub fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
        sel: Option<VersionSel>,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = parse(schema)?;
        let level = self.effective_level(subject);
        let existing: Vec<(u32, &Schema)> = match sel {
            Some(sel) => match self.version(subject, sel) {
                Ok((v, s)) => vec![(v.version, &s.parsed)],
                // Nothing registered yet: anything is compatible.
                Err(RegistryError::SubjectNotFound(_)) if sel == VersionSel::Latest => vec![],
                Err(e) => return Err(e),
            },
            None => match self.live_versions(subject) {
                Ok(vs) => vs
                    .iter()
                    .filter_map(|v| self.schemas.get(&v.id).map(|s| (v.version, &s.parsed)))
                    .collect(),
                Err(_) => vec![],
            },
        };
        Ok(compat::check(level, &parsed, &existing))
    }

    /// Decides what registering `schema` under `subject` means: an existing
    /// version, a compatibility error, or a new record to write.
    pub fn plan_registration(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<Registration, RegistryError> {
        if subject.is_empty() {
            return Err(RegistryError::BadRequest(
                "subject must not be empty".into(),
            ));
        }
        parse(schema)?;
        if let Ok((v, _)) = self.lookup(subject, schema) {
            return Ok(Registration::Existing {
                id: v.id,
                version: v.version,
            });
        }
        let messages = self.check_compatibility(subject, schema, None)?;
        if !messages.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.into(),
                messages,
            });
        }
        let id = match self.by_text.get(&normalized_json(schema)) {
            Some(id) => *id,
            None => self.schemas.keys().next_back().map_or(1, |m| m + 1),
        };
        // Versions keep counting past deleted ones, as Confluent does.
        let version = self
            .subjects
            .get(subject)
            .and_then(|vs| vs.iter().map(|v| v.version).max())
            .map_or(1, |m| m + 1);
        let value = SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema: schema.to_string(),
            deleted: false,
            permanent: false,
        };
        Ok(Registration::New {
            id,
            version,
            record: LogRecord {
                key: LogKey::Schema {
                    subject: subject.into(),
                    version,
                },
                value: Some(
                    serde_json::to_string(&value)
                        .map_err(|e| RegistryError::Store(e.to_string()))?,
                ),
            },
        })
    }

    /// Records that soft- or hard-delete versions of a subject.
    pub fn plan_delete(
        &self,
        subject: &str,
        sel: Option<VersionSel>,
        permanent: bool,
    ) -> Result<(Vec<u32>, Vec<LogRecord>), RegistryError> {
        let all = self
            .subjects
            .get(subject)
            .filter(|vs| !vs.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.into()))?;
        let targets: Vec<VersionEntry> = match sel {
            None => all.clone(),
            Some(VersionSel::Latest) => all
                .iter()
                .rev()
                .find(|v| !v.deleted)
                .into_iter()
                .copied()
                .collect(),
            Some(VersionSel::Number(n)) => all.iter().filter(|v| v.version == n).copied().collect(),
        };
        if targets.is_empty() {
            return Err(RegistryError::VersionNotFound(format!("{sel:?}")));
        }
        if permanent && targets.iter().any(|v| !v.deleted) {
            return Err(RegistryError::NotSoftDeleted(subject.into()));
        }
        let mut records = Vec::new();
        for v in &targets {
            let key = LogKey::Schema {
                subject: subject.into(),
                version: v.version,
            };
            let stored = self.schema(v.id)?;
            let value = Some(
                serde_json::to_string(&SchemaValue {
                    subject: subject.into(),
                    version: v.version,
                    id: v.id,
                    schema: stored.text.clone(),
                    deleted: true,
                    permanent,
                })
                .map_err(|e| RegistryError::Store(e.to_string()))?,
            );
            records.push(LogRecord { key, value });
        }
        Ok((targets.iter().map(|v| v.version).collect(), records))
    }
}

/// A CONFIG record setting (or, with None, removing) a level.
pub fn config_record(subject: Option<&str>, level: Option<Level>) -> LogRecord {
    LogRecord {
        key: LogKey::Config {
            subject: subject.map(str::to_string),
        },
        value: level.map(|l| {
            serde_json::to_string(&ConfigValue {
                compatibility_level: l,
            })
            .unwrap_or_default()
        }),
    }
}

fn parse(schema: &str) -> Result<Schema, RegistryError> {
    Schema::parse_str(schema).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;
    const V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":["null","string"],"default":null}]}"#;
    const BAD: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int"}]}"#;

    fn register(
        state: &mut State,
        subject: &str,
        schema: &str,
    ) -> Result<(u32, u32), RegistryError> {
        match state.plan_registration(subject, schema)? {
            Registration::Existing { id, version } => Ok((id, version)),
            Registration::New {
                id,
                version,
                record,
            } => {
                state.apply(&record);
                Ok((id, version))
            }
        }
    }

    #[test]
    fn register_version_lookup_and_dedup() {
        let mut st = State::default();
        assert_eq!(register(&mut st, "orders-value", V1), Ok((1, 1)));
        // Same schema (different whitespace) again: same id and version.
        let spaced = V1.replace(',', " , ");
        assert_eq!(register(&mut st, "orders-value", &spaced), Ok((1, 1)));
        assert_eq!(register(&mut st, "orders-value", V2), Ok((2, 2)));
        // Same schema under another subject shares the id.
        assert_eq!(register(&mut st, "other-value", V2), Ok((2, 1)));
        assert_eq!(st.versions("orders-value"), Ok(vec![1, 2]));
        assert_eq!(
            st.version("orders-value", VersionSel::Latest).unwrap().0.id,
            2
        );
        assert_eq!(st.usages(2).len(), 2);
        let err = register(&mut st, "orders-value", BAD).unwrap_err();
        assert_eq!(err.codes(), (409, 409));
        assert!(err.to_string().contains("qty"), "{err}");
        assert_eq!(
            register(&mut st, "orders-value", "{not json")
                .unwrap_err()
                .codes()
                .0,
            422
        );
    }

    #[test]
    fn ids_are_never_reused_after_a_hard_delete() {
        let mut st = State::default();
        let mut log = Vec::new();
        if let Registration::New { record, .. } = st.plan_registration("s", V1).unwrap() {
            st.apply(&record);
            log.push(record);
        }
        for permanent in [false, true] {
            let (_, recs) = st.plan_delete("s", None, permanent).unwrap();
            for r in recs {
                st.apply(&r);
                log.push(r);
            }
        }
        // Compaction keeps the last record per key.
        let mut last = std::collections::BTreeMap::new();
        for r in &log {
            last.insert(r.key_bytes(), r.clone());
        }
        let mut replayed = State::default();
        for r in last.values() {
            replayed.apply(r);
        }
        assert!(
            replayed.subjects(true).is_empty(),
            "hard-deleted subject is gone"
        );
        match replayed.plan_registration("t", V2).unwrap() {
            Registration::New { id, .. } => assert_eq!(id, 2, "id 1 stays V1's"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_levels_and_deletes_replay_from_records() {
        let mut st = State::default();
        let mut log = Vec::new();
        for s in [V1, V2] {
            if let Registration::New { record, .. } = st.plan_registration("s", s).unwrap() {
                st.apply(&record);
                log.push(record);
            }
        }
        let cfg = config_record(Some("s"), Some(Level::None));
        st.apply(&cfg);
        log.push(cfg);
        assert!(st.check_compatibility("s", BAD, None).unwrap().is_empty());
        let (versions, recs) = st.plan_delete("s", None, false).unwrap();
        assert_eq!(versions, [1, 2]);
        for r in recs {
            st.apply(&r);
            log.push(r);
        }
        assert!(st.versions("s").is_err());
        assert!(st
            .plan_delete("s", Some(VersionSel::Number(1)), true)
            .is_ok());

        let mut replayed = State::default();
        for r in &log {
            let decoded =
                LogRecord::decode(&r.key_bytes(), r.value.as_deref().map(str::as_bytes)).unwrap();
            replayed.apply(&decoded);
        }
        assert_eq!(replayed.subjects(true), ["s"]);
        assert_eq!(replayed.subject_level("s"), Some(Level::None));
        // Next version after deletes keeps counting.
        match replayed.plan_registration("s", V1).unwrap() {
            Registration::New { version, id, .. } => assert_eq!((version, id), (3, 1)),
            other => panic!("{other:?}"),
        }
    }
}

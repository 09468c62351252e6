//! `conveyor schemas register|check`: the contracts against a registry.
//!
//! `register` registers every topic's value schema under `<topic>-value`
//! (TopicNameStrategy). `check` compares every schema with the registry's
//! latest version of its subject: the registry's own compatibility verdict
//! (under the subject's configured level) and a local BACKWARD check that
//! names the field and the rule it breaks, plus a field-by-field diff, so a
//! breaking change is caught before any consumer meets it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use apache_avro::Schema;
use conveyor_runtime::topology::Topology;
use serde_json::{json, Value};

use crate::contracts;
use crate::registry::compat::{self, Level};

/// A schema to register or check, and the subject it belongs to.
#[derive(Debug, Clone)]
pub struct SchemaSource {
    pub subject: String,
    pub file: &'static str,
    pub text: String,
}

/// The schemas of every subject of `topology`: those compiled into this
/// binary, or the `.avsc` files in `dir` (e.g. another revision's). Files
/// missing from `dir` are returned by name in the second list (a contract
/// that revision did not have yet); unreadable or invalid ones are errors.
pub fn sources(
    topology: &Topology,
    dir: Option<&Path>,
) -> Result<(Vec<SchemaSource>, Vec<&'static str>), String> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (subject, c) in contracts::subjects(topology) {
        let text = match dir {
            None => (c.avsc)().to_string(),
            Some(d) => {
                let path = d.join(c.file);
                match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if !missing.contains(&c.file) {
                            missing.push(c.file);
                        }
                        continue;
                    }
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                }
            }
        };
        Schema::parse_str(&text)
            .map_err(|e| format!("{} is not a valid Avro schema: {e}", c.file))?;
        found.push(SchemaSource {
            subject,
            file: c.file,
            text,
        });
    }
    Ok((found, missing))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("schema registry at {url}: {message}")]
    Http { url: String, message: String },
    #[error("schema registry refused {subject}: HTTP {status}: {message}")]
    Refused {
        subject: String,
        status: u16,
        message: String,
    },
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: u32,
    pub version: u32,
    pub schema: String,
}

/// A minimal client for the Confluent REST calls `register`/`check` need.
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl RegistryClient {
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::Http {
                url: url.into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_string(),
        })
    }

    async fn call(
        &self,
        subject: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Value), ClientError> {
        let r = req.send().await.map_err(|e| ClientError::Http {
            url: self.base.clone(),
            message: format!("{e} (is it running? `conveyor dev up` starts one)"),
        })?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status >= 500 {
            return Err(ClientError::Refused {
                subject: subject.into(),
                status,
                message: body["message"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok((status, body))
    }

    /// POSTs a `{"schema": ...}` body.
    async fn post_schema_body(
        &self,
        subject: &str,
        url: String,
        body: String,
    ) -> Result<(u16, Value), ClientError> {
        let req = self
            .http
            .post(url)
            .header("content-type", CONTENT_TYPE)
            .body(body);
        self.call(subject, req).await
    }

    /// The latest version of `subject`, if it has any.
    pub async fn latest(&self, subject: &str) -> Result<Option<Registered>, ClientError> {
        let url = format!("{}/subjects/{subject}/versions/latest", self.base);
        let (status, v) = self.call(subject, self.http.get(url)).await?;
        match status {
            200 => Ok(Some(Registered {
                id: v["id"].as_u64().unwrap_or(0) as u32,
                version: v["version"].as_u64().unwrap_or(0) as u32,
                schema: v["schema"].as_str().unwrap_or("").to_string(),
            })),
            404 => Ok(None),
            _ => Err(refused(subject, status, &v)),
        }
    }

    /// Registers `schema` (idempotent) and returns its id and version.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<Registered, ClientError> {
        let body = json!({ "schema": schema }).to_string();
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let (status, v) = self.post_schema_body(subject, url, body.clone()).await?;
        if status != 200 {
            return Err(refused(subject, status, &v));
        }
        let url = format!("{}/subjects/{subject}", self.base);
        let (status, v) = self.post_schema_body(subject, url, body).await?;
        if status != 200 {
            return Err(refused(subject, status, &v));
        }
        Ok(Registered {
            id: v["id"].as_u64().unwrap_or(0) as u32,
            version: v["version"].as_u64().unwrap_or(0) as u32,
            schema: schema.to_string(),
        })
    }

    /// The registry's verdict on `schema` against the subject's latest
    /// version under its configured level: (compatible, reasons).
    pub async fn compatible(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<(bool, Vec<String>), ClientError> {
        let url = format!(
            "{}/compatibility/subjects/{subject}/versions/latest?verbose=true",
            self.base
        );
        let body = json!({ "schema": schema }).to_string();
        let (status, v) = self.post_schema_body(subject, url, body).await?;
        match status {
            200 => Ok((
                v["is_compatible"].as_bool().unwrap_or(false),
                v["messages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            404 => Ok((true, vec![])),
            _ => Err(refused(subject, status, &v)),
        }
    }
}

fn refused(subject: &str, status: u16, v: &Value) -> ClientError {
    ClientError::Refused {
        subject: subject.into(),
        status,
        message: v["message"].as_str().unwrap_or("").to_string(),
    }
}

/// The outcome of checking one subject.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Nothing registered yet.
    New,
    /// Identical (same normalized JSON) to the latest version.
    Unchanged { version: u32 },
    /// Changed, and consumers of the latest version keep working.
    Compatible { version: u32, diff: Vec<String> },
    /// Would break consumers.
    Incompatible {
        version: u32,
        diff: Vec<String>,
        reasons: Vec<String>,
    },
}

/// Checks one schema against what the registry has.
pub async fn check(client: &RegistryClient, source: &SchemaSource) -> Result<Verdict, ClientError> {
    let Some(latest) = client.latest(&source.subject).await? else {
        return Ok(Verdict::New);
    };
    let (Ok(old), Ok(new)) = (
        Schema::parse_str(&latest.schema),
        Schema::parse_str(&source.text),
    ) else {
        return Ok(Verdict::Incompatible {
            version: latest.version,
            diff: vec![],
            reasons: vec!["the registered or the local schema does not parse".into()],
        });
    };
    if contracts::normalized_json(&latest.schema) == contracts::normalized_json(&source.text) {
        return Ok(Verdict::Unchanged {
            version: latest.version,
        });
    }
    let diff = diff(&latest.schema, &source.text);
    let mut reasons = compat::check(Level::Backward, &new, &[(latest.version, &old)]);
    let (ok, registry_reasons) = client.compatible(&source.subject, &source.text).await?;
    if !ok {
        for r in registry_reasons {
            if !reasons.contains(&r) {
                reasons.push(format!("registry: {r}"));
            }
        }
        if reasons.is_empty() {
            reasons.push(
                "the registry reports the change as incompatible under the subject's level".into(),
            );
        }
    }
    Ok(if reasons.is_empty() {
        Verdict::Compatible {
            version: latest.version,
            diff,
        }
    } else {
        Verdict::Incompatible {
            version: latest.version,
            diff,
            reasons,
        }
    })
}

/// A field-by-field diff of two schemas' records and enums: `+` added, `-`
/// removed, `~` changed. Named types are compared by name.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    let (Ok(old), Ok(new)) = (
        serde_json::from_str::<Value>(old),
        serde_json::from_str::<Value>(new),
    ) else {
        return vec!["(cannot parse one of the schemas as JSON)".into()];
    };
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    collect_named(&old, None, &mut a);
    collect_named(&new, None, &mut b);
    let mut out = Vec::new();
    for (name, nv) in &b {
        let Some(ov) = a.get(name) else {
            out.push(format!("+ type {name}"));
            continue;
        };
        if let (Some(of), Some(nf)) = (ov["fields"].as_array(), nv["fields"].as_array()) {
            let by_name = |fs: &Vec<Value>| -> BTreeMap<String, Value> {
                fs.iter()
                    .map(|f| (f["name"].as_str().unwrap_or("?").to_string(), f.clone()))
                    .collect()
            };
            let (om, nm) = (by_name(of), by_name(nf));
            for (f, fv) in &nm {
                match om.get(f) {
                    None => out.push(format!(
                        "+ {name}.{f}: {}{}",
                        type_label(&fv["type"]),
                        fv.get("default")
                            .map(|d| format!(" (default {d})"))
                            .unwrap_or_else(|| " (no default)".into())
                    )),
                    Some(ofv) => {
                        let (ot, nt) = (type_label(&ofv["type"]), type_label(&fv["type"]));
                        if ot != nt {
                            out.push(format!("~ {name}.{f}: {ot} -> {nt}"));
                        }
                        if ofv.get("default") != fv.get("default") {
                            out.push(format!(
                                "~ {name}.{f}: default {} -> {}",
                                ofv.get("default").map_or("none".into(), Value::to_string),
                                fv.get("default").map_or("none".into(), Value::to_string)
                            ));
                        }
                    }
                }
            }
            for f in om.keys().filter(|f| !nm.contains_key(*f)) {
                out.push(format!("- {name}.{f}"));
            }
        }
        if let (Some(os), Some(ns)) = (ov["symbols"].as_array(), nv["symbols"].as_array()) {
            for s in ns.iter().filter(|s| !os.contains(s)) {
                out.push(format!("+ {name} symbol {s}"));
            }
            for s in os.iter().filter(|s| !ns.contains(s)) {
                out.push(format!("- {name} symbol {s}"));
            }
        }
    }
    for name in a.keys().filter(|n| !b.contains_key(*n)) {
        out.push(format!("- type {name}"));
    }
    out
}

fn full_name(v: &Value, ns: Option<&str>) -> Option<String> {
    let name = v["name"].as_str()?;
    if name.contains('.') {
        return Some(name.to_string());
    }
    match v["namespace"].as_str().or(ns) {
        Some(n) if !n.is_empty() => Some(format!("{n}.{name}")),
        _ => Some(name.to_string()),
    }
}

fn collect_named(v: &Value, ns: Option<&str>, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(o) => {
            let t = o.get("type").and_then(Value::as_str);
            if matches!(t, Some("record" | "enum" | "fixed")) {
                if let Some(name) = full_name(v, ns) {
                    let inner_ns = name.rsplit_once('.').map(|(n, _)| n.to_string());
                    out.insert(name, v.clone());
                    for f in o
                        .get("fields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        collect_named(&f["type"], inner_ns.as_deref(), out);
                    }
                    return;
                }
            }
            for (k, x) in o {
                if k != "default" {
                    collect_named(x, ns, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_named(x, ns, out)),
        _ => {}
    }
}

/// A short label for a field type: named types by name.
fn type_label(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(type_label).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            if let Some(name) = o.get("name").and_then(Value::as_str) {
                return name.to_string();
            }
            match o.get("type").and_then(Value::as_str) {
                Some("array") => format!("array<{}>", type_label(&o["items"])),
                Some("map") => format!("map<{}>", type_label(&o["values"])),
                Some(p) => match o.get("logicalType").and_then(Value::as_str) {
                    Some(l) => format!("{p}/{l}"),
                    None => p.to_string(),
                },
                None => t.to_string(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_added_removed_and_changed_fields() {
        let old = r#"{"type":"record","name":"Order","namespace":"conveyor","fields":[
            {"name":"id","type":"string"},{"name":"qty","type":"int"},{"name":"note","type":["null","string"],"default":null},
            {"name":"status","type":{"type":"enum","name":"Status","symbols":["OPEN","DONE"]}}]}"#;
        let new = r#"{"type":"record","name":"Order","namespace":"conveyor","fields":[
            {"name":"id","type":"string"},{"name":"qty","type":"long"},{"name":"tier","type":["null","string"],"default":null},
            {"name":"status","type":{"type":"enum","name":"Status","symbols":["OPEN","HELD"]}}]}"#;
        let d = diff(old, new);
        assert_eq!(
            d,
            [
                "~ conveyor.Order.qty: int -> long",
                "+ conveyor.Order.tier: [null, string] (default null)",
                "- conveyor.Order.note",
                "+ conveyor.Status symbol \"HELD\"",
                "- conveyor.Status symbol \"DONE\"",
            ]
        );
    }

    #[test]
    fn sources_cover_every_subject_and_read_other_revisions() {
        let mut c = conveyor_runtime::Config::default();
        c.channels.enabled = vec!["shopify".into()];
        let t = Topology::resolve(&c);
        let (compiled, none) = sources(&t, None).unwrap();
        assert_eq!(compiled.len(), crate::contracts::CONTRACTS.len());
        assert!(none.is_empty());
        // A directory with one contract changed: that file's text is read.
        let dir = std::env::temp_dir().join(format!("conveyor-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let changed = compiled[0]
            .text
            .replace("\"RawOrder\"", "\"RawOrder\", \"aliases\": [\"Raw\"]");
        std::fs::write(dir.join("raw_order.avsc"), &changed).unwrap();
        let (on_disk, missing) = sources(&t, Some(&dir)).unwrap();
        assert_eq!(on_disk[0].text, changed);
        assert_ne!(on_disk[0].text, compiled[0].text);
        let files: std::collections::BTreeSet<_> =
            crate::contracts::CONTRACTS.iter().map(|c| c.file).collect();
        assert_eq!(missing.len(), files.len() - 1);
        let (found, missing) = sources(&t, Some(Path::new("/nonexistent"))).unwrap();
        assert!(found.is_empty());
        assert!(missing.contains(&"raw_order.avsc"), "{missing:?}");
    }
}

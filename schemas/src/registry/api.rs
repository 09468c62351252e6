//! The REST surface, in Confluent Schema Registry's shapes: JSON bodies,
//! errors as `{"error_code": N, "message": "..."}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::compat::Level;
use super::state::{RegistryError, VersionSel};
use super::Registry;

type Reg = State<Arc<Registry>>;
type Res = Result<Response, ApiError>;

pub struct ApiError(RegistryError);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.0.codes();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::CONFLICT {
            metrics::counter!("conveyor_registry_incompatible_total").increment(1);
        }
        (
            status,
            Json(json!({ "error_code": code, "message": self.0.to_string() })),
        )
            .into_response()
    }
}

fn ok(v: Value) -> Res {
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/vnd.schemaregistry.v1+json",
        )],
        v.to_string(),
    )
        .into_response())
}

pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(|| async { Json(json!({})) }))
        .route("/schemas/types", get(|| async { Json(json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(usages_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route("/config", get(get_global).put(put_global))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .with_state(reg)
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

fn schema_body(body: &Bytes) -> Result<String, RegistryError> {
    let b: SchemaBody = serde_json::from_slice(body).map_err(|e| {
        RegistryError::BadRequest(format!(
            "request body must be JSON with a `schema` string: {e}"
        ))
    })?;
    if let Some(t) = b.schema_type.as_deref() {
        if !t.eq_ignore_ascii_case("AVRO") {
            return Err(RegistryError::InvalidSchema(format!(
                "schemaType {t} is not supported by this registry (AVRO only)"
            )));
        }
    }
    if !b.references.is_empty() {
        return Err(RegistryError::InvalidSchema(
            "schema references are not supported by this registry".into(),
        ));
    }
    Ok(b.schema)
}

fn parse_id(id: &str) -> Result<u32, RegistryError> {
    id.parse().map_err(|_| RegistryError::SchemaNotFound)
}

async fn schema_by_id(State(r): Reg, Path(id): Path<String>) -> Res {
    let st = r.read().await?;
    let s = st.schema(parse_id(&id)?)?;
    ok(json!({ "schema": s.text }))
}

async fn raw_schema_by_id(State(r): Reg, Path(id): Path<String>) -> Res {
    let st = r.read().await?;
    Ok(st.schema(parse_id(&id)?)?.text.clone().into_response())
}

async fn usages_by_id(State(r): Reg, Path(id): Path<String>) -> Res {
    let st = r.read().await?;
    let id = parse_id(&id)?;
    st.schema(id)?;
    let list: Vec<Value> = st
        .usages(id)
        .into_iter()
        .map(|(s, v)| json!({ "subject": s, "version": v }))
        .collect();
    ok(json!(list))
}

async fn subjects(State(r): Reg, Query(q): Query<HashMap<String, String>>) -> Res {
    let deleted = q.get("deleted").is_some_and(|v| v == "true");
    ok(json!(r.read().await?.subjects(deleted)))
}

async fn versions(State(r): Reg, Path(subject): Path<String>) -> Res {
    ok(json!(r.read().await?.versions(&subject)?))
}

async fn version(State(r): Reg, Path((subject, version)): Path<(String, String)>) -> Res {
    let st = r.read().await?;
    let (v, s) = st.version(&subject, VersionSel::parse(&version)?)?;
    ok(json!({ "subject": subject, "version": v.version, "id": v.id, "schema": s.text }))
}

async fn raw_version(State(r): Reg, Path((subject, version)): Path<(String, String)>) -> Res {
    let st = r.read().await?;
    let (_, s) = st.version(&subject, VersionSel::parse(&version)?)?;
    Ok(s.text.clone().into_response())
}

async fn register(State(r): Reg, Path(subject): Path<String>, body: Bytes) -> Res {
    let schema = schema_body(&body)?;
    let (id, _) = r.register(&subject, &schema).await?;
    ok(json!({ "id": id }))
}

async fn lookup(State(r): Reg, Path(subject): Path<String>, body: Bytes) -> Res {
    let schema = schema_body(&body)?;
    let st = r.read().await?;
    let (v, s) = st.lookup(&subject, &schema)?;
    ok(json!({ "subject": subject, "version": v.version, "id": v.id, "schema": s.text }))
}

async fn compat_version(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Res {
    let schema = schema_body(&body)?;
    let sel = VersionSel::parse(&version)?;
    let messages = r
        .read()
        .await?
        .check_compatibility(&subject, &schema, Some(sel))?;
    compat_response(messages, &q)
}

async fn compat_all(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Res {
    let schema = schema_body(&body)?;
    let messages = r
        .read()
        .await?
        .check_compatibility(&subject, &schema, None)?;
    compat_response(messages, &q)
}

fn compat_response(messages: Vec<String>, q: &HashMap<String, String>) -> Res {
    let mut v = json!({ "is_compatible": messages.is_empty() });
    // Reasons are always useful; Confluent includes them with ?verbose=true.
    let _verbose = q.get("verbose");
    v["messages"] = json!(messages);
    ok(v)
}

#[derive(Deserialize)]
struct LevelBody {
    compatibility: Level,
}

fn level_body(body: &Bytes) -> Result<Level, RegistryError> {
    serde_json::from_slice::<LevelBody>(body)
        .map(|b| b.compatibility)
        .map_err(|e| {
            RegistryError::BadRequest(format!(
                "body must be {{\"compatibility\": LEVEL}} with LEVEL one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE: {e}"
            ))
        })
}

async fn get_global(State(r): Reg) -> Res {
    ok(json!({ "compatibilityLevel": r.read().await?.global_level() }))
}

async fn put_global(State(r): Reg, body: Bytes) -> Res {
    let level = level_body(&body)?;
    r.set_level(None, Some(level)).await?;
    ok(json!({ "compatibility": level }))
}

async fn get_subject_config(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Res {
    let st = r.read().await?;
    let level = match st.subject_level(&subject) {
        Some(l) => l,
        None if q.get("defaultToGlobal").is_some_and(|v| v == "true") => st.global_level(),
        None => return Err(RegistryError::SubjectNotFound(subject).into()),
    };
    ok(json!({ "compatibilityLevel": level }))
}

async fn put_subject_config(State(r): Reg, Path(subject): Path<String>, body: Bytes) -> Res {
    let level = level_body(&body)?;
    r.set_level(Some(&subject), Some(level)).await?;
    ok(json!({ "compatibility": level }))
}

async fn delete_subject_config(State(r): Reg, Path(subject): Path<String>) -> Res {
    let previous = r.read().await?.subject_level(&subject);
    r.set_level(Some(&subject), None).await?;
    ok(json!({ "compatibilityLevel": previous }))
}

fn permanent(q: &HashMap<String, String>) -> bool {
    q.get("permanent").is_some_and(|v| v == "true")
}

async fn delete_subject(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Res {
    ok(json!(r.delete(&subject, None, permanent(&q)).await?))
}

async fn delete_version(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Res {
    let sel = VersionSel::parse(&version)?;
    let deleted = r.delete(&subject, Some(sel), permanent(&q)).await?;
    ok(json!(deleted.first()))
}

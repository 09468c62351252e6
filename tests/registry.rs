//! The dev schema registry against the real broker, through its HTTP API:
//! Confluent's shapes, BACKWARD enforcement with 409, persistence across a
//! restart, and not-ready while the broker is down.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::Admin;
use conveyor_runtime::shutdown::Shutdown;
use serde_json::{json, Value};

const V1: &str = r#"{"type":"record","name":"Order","namespace":"conveyor","fields":[{"name":"order_id","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","namespace":"conveyor","fields":[{"name":"order_id","type":"string"},{"name":"note","type":["null","string"],"default":null}]}"#;
const BREAKING: &str = r#"{"type":"record","name":"Order","namespace":"conveyor","fields":[{"name":"order_id","type":"string"},{"name":"quantity","type":"int"}]}"#;

struct Running {
    base: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

async fn start(config: &Config) -> Running {
    let shutdown = Shutdown::new();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (addr, task) = conveyor_schemas::registry::spawn(config.clone(), bind, shutdown.clone())
        .await
        .unwrap();
    Running {
        base: format!("http://{addr}"),
        shutdown,
        task,
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    assert!(
        common::becomes_ready(http, base, Duration::from_secs(10)).await,
        "registry not ready within 10 s"
    );
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_enforces_backward_and_survives_restart() {
    let mut config = common::config();
    common::require_broker(&config).await;
    config.schema_registry.schemas_topic = common::unique("it._schemas");
    let http = reqwest::Client::new();
    let reg = start(&config).await;
    wait_ready(&http, &reg.base).await;
    let b = &reg.base;
    let subject = "orders.normalized-value";

    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": V1 }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id1 = v["id"].as_u64().unwrap();
    // Registering the same schema again is idempotent.
    let (_, again) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": V1 }),
    )
    .await;
    assert_eq!(again["id"].as_u64(), Some(id1));

    // Adding an optional field with a default is BACKWARD compatible.
    let (s, v) = post(
        &http,
        format!("{b}/compatibility/subjects/{subject}/versions/latest"),
        json!({ "schema": V2 }),
    )
    .await;
    assert_eq!((s, &v["is_compatible"]), (200, &json!(true)), "{v}");
    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": V2 }),
    )
    .await;
    assert_eq!(s, 200);
    let id2 = v["id"].as_u64().unwrap();
    assert_ne!(id1, id2);

    // A new required field breaks consumers: 409 with the reason, nothing registered.
    let (s, v) = post(
        &http,
        format!("{b}/compatibility/subjects/{subject}/versions/latest"),
        json!({ "schema": BREAKING }),
    )
    .await;
    assert_eq!(v["is_compatible"], json!(false), "{s} {v}");
    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": BREAKING }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_code"], json!(409));
    assert!(v["message"].as_str().unwrap().contains("quantity"), "{v}");

    // Bad input: a clear 4xx.
    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": "{\"type\":\"recrod\"}" }),
    )
    .await;
    assert_eq!((s, &v["error_code"]), (422, &json!(42201)), "{v}");
    let (s, _) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "nope": 1 }),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = get(&http, format!("{b}/subjects/missing/versions")).await;
    assert_eq!((s, &v["error_code"]), (404, &json!(40401)));

    // Reads in Confluent's shapes.
    let (_, v) = get(&http, format!("{b}/subjects/{subject}/versions")).await;
    assert_eq!(v, json!([1, 2]));
    let (_, v) = get(&http, format!("{b}/subjects/{subject}/versions/latest")).await;
    assert_eq!(
        (v["version"].as_u64(), v["id"].as_u64()),
        (Some(2), Some(id2))
    );
    let (_, v) = get(&http, format!("{b}/schemas/ids/{id1}")).await;
    assert_eq!(v["schema"], json!(V1));
    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}"),
        json!({ "schema": V2 }),
    )
    .await;
    assert_eq!((s, v["version"].as_u64()), (200, Some(2)));

    // A subject-level NONE lets the breaking change through.
    let r = http
        .put(format!("{b}/config/{subject}"))
        .body(json!({ "compatibility": "NONE" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let other = "other-value";
    let (s, _) = post(
        &http,
        format!("{b}/subjects/{other}/versions"),
        json!({ "schema": V1 }),
    )
    .await;
    assert_eq!(s, 200);

    // Restart: everything comes back from the schemas topic.
    reg.shutdown.trigger();
    reg.task.await.unwrap();
    let reg2 = start(&config).await;
    wait_ready(&http, &reg2.base).await;
    let b = &reg2.base;
    let (_, v) = get(&http, format!("{b}/subjects/{subject}/versions")).await;
    assert_eq!(v, json!([1, 2]));
    let (_, v) = get(&http, format!("{b}/schemas/ids/{id2}")).await;
    assert_eq!(v["schema"], json!(V2));
    let (_, v) = get(&http, format!("{b}/config/{subject}")).await;
    assert_eq!(v["compatibilityLevel"], json!("NONE"));
    let (_, v) = get(&http, format!("{b}/subjects")).await;
    assert_eq!(v, json!([subject, other]), "sorted subjects");
    let (s, v) = post(
        &http,
        format!("{b}/subjects/{subject}/versions"),
        json!({ "schema": BREAKING }),
    )
    .await;
    assert_eq!(s, 200, "level NONE survived the restart: {v}");
    let m = common::get_text(&http, &format!("{b}/metrics")).await;
    assert!(m.contains("conveyor_registry_registrations_total"), "{m}");

    reg2.shutdown.trigger();
    reg2.task.await.unwrap();
    Admin::new(&config.kafka)
        .unwrap()
        .delete_topics(&[&config.schema_registry.schemas_topic])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_and_503_while_the_broker_is_down() {
    let mut config = common::config();
    config.kafka.brokers = "127.0.0.1:1".into();
    let http = reqwest::Client::new();
    let reg = start(&config).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, v) = get(&http, format!("{}/readyz", reg.base)).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["checks"]["broker"]["ready"], json!(false));
    let (s, v) = get(&http, format!("{}/subjects", reg.base)).await;
    assert_eq!((s, &v["error_code"]), (503, &json!(50003)), "{v}");
    reg.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(20), reg.task)
        .await
        .expect("shuts down promptly while retrying")
        .unwrap();
}

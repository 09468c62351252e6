//! The stream runtime against the real broker and registry: a stateful
//! processor killed with SIGKILL again and again ends with exactly the
//! crash-free state and outputs; a second instance takes over a leaving
//! one's partitions by restoring their state from the changelog; poison
//! records land in the DLQ with their coordinates while the rest flows.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stream::*;
use conveyor_runtime::config::CleanupPolicy;
use conveyor_runtime::kafka::{Admin, InRecord, OutRecord, Producer};
use conveyor_runtime::topology::{TopicSpec, Topology};
use conveyor_schemas::codec::{Codec, Source};
use conveyor_schemas::records::{DlqRecord, ErrorKind, InventoryEvent};

/// The crash test and the merge test each keep the broker busy for a
/// minute or more; beside each other, on a broker already carrying the
/// suite's topics, the merge test's replay missed its two-minute bound in
/// CI (28 s alone). They take turns.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
use conveyor_stream::{Avro, Output, ProcessError, Processor, State};

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_changes_nothing() {
    let _turn = HEAVY.lock().await;
    const N: usize = 100_000;
    const KEYS: usize = 1000;
    let s = Setup::new("crash").await;
    let (ns, config, input, output) = (
        s.ns.clone(),
        s.config.clone(),
        s.input.clone(),
        s.output.clone(),
    );
    produce_keyed(&config, &input, 0, N, KEYS).await;
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();

    let mut rng = fastrand::Rng::with_seed(42);
    let kills = 6;
    for k in 0..kills {
        let inst = Instance::start(
            &ns,
            state.path(),
            &input,
            &output,
            &logs.path().join(format!("run{k}.log")),
        );
        // Kill somewhere in the next stretch of progress (outputs written so
        // far include duplicates, so the target keeps moving forward).
        let now = s.count(&output);
        let target = now + (N as i64 / (kills + 2)) * rng.i64(5..15) / 10;
        let deadline = Instant::now() + Duration::from_secs(120);
        while s.count(&output) < target {
            assert!(Instant::now() < deadline, "no progress in run {k}");
            tokio::time::sleep(Duration::from_millis(rng.u64(5..60))).await;
        }
        inst.kill9();
        eprintln!("run {k}: killed at ~{target} outputs");
    }
    let last = Instance::start(
        &ns,
        state.path(),
        &input,
        &output,
        &logs.path().join("final.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while distinct_outputs(&config, &output).await < N {
        assert!(Instant::now() < deadline, "the final run did not finish");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let summary = last.stop();
    eprintln!("final run: {summary}");

    let input_records = read_all(&config, &input).await;
    assert_eq!(input_records.len(), N);
    let (expected, totals) = expected_outputs(&input_records);
    check_outputs(&read_all(&config, &output).await, &expected);
    let stored = stored_counts(&state.path().join("counter.counts"), KEYS);
    assert_eq!(
        stored, totals,
        "final state differs from the crash-free run"
    );
    assert_eq!(summary["dead_lettered"], 0);

    // The changelog those crashes left behind (unfinished batches and all)
    // rebuilds the same state on a machine that has no store.
    let fresh = tempfile::tempdir().unwrap();
    let rebuilt = Instance::start(
        &ns,
        fresh.path(),
        &input,
        &output,
        &logs.path().join("rebuild.log"),
    );
    let dir = fresh.path().join("counter.counts");
    wait_until(
        "a full restore on a fresh machine",
        Duration::from_secs(120),
        || {
            conveyor_stream::inspect::partitions(&dir).is_ok_and(|ps| {
                ps.len() == PARTITIONS as usize && ps.iter().all(|p| p.meta.position.is_some())
            })
        },
    )
    .await;
    let summary = rebuilt.stop();
    assert_eq!(
        summary["processed"], 0,
        "nothing left to process: {summary}"
    );
    assert_eq!(
        stored_counts(&dir, KEYS),
        totals,
        "state rebuilt from the changelog differs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaving_instance_hands_its_state_over_through_the_changelog() {
    const KEYS: usize = 200;
    let s = Setup::new("rebalance").await;
    let (ns, config, input, output) = (
        s.ns.clone(),
        s.config.clone(),
        s.input.clone(),
        s.output.clone(),
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let logs = tempfile::tempdir().unwrap();
    let a = Instance::start(
        &ns,
        dir_a.path(),
        &input,
        &output,
        &logs.path().join("a.log"),
    );
    let b = Instance::start(
        &ns,
        dir_b.path(),
        &input,
        &output,
        &logs.path().join("b.log"),
    );
    let files = |d: &Path| -> usize {
        std::fs::read_dir(d.join("counter.counts"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    // Both members own partitions (each opens its stores on assignment).
    wait_until(
        "both instances to own partitions",
        Duration::from_secs(60),
        || files(dir_a.path()) > 0 && files(dir_b.path()) > 0,
    )
    .await;
    let owned_by_a = files(dir_a.path());
    produce_keyed(&config, &input, 0, 20_000, KEYS).await;
    wait_until(
        "the first 20k to be processed",
        Duration::from_secs(120),
        || s.count(&output) >= 20_000,
    )
    .await;
    // A leaves mid-stream, while more records arrive.
    let producing = {
        let (config, input) = (config.clone(), input.clone());
        tokio::spawn(async move { produce_keyed(&config, &input, 20_000, 30_000, KEYS).await })
    };
    let summary_a = a.stop();
    producing.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while distinct_outputs(&config, &output).await < 50_000 {
        assert!(Instant::now() < deadline, "B did not finish the stream");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // B's /metrics shows per-partition throughput and the restore it did.
    let log_b = std::fs::read_to_string(logs.path().join("b.log")).unwrap();
    let addr = log_b
        .lines()
        .find_map(|l| l.split("http_addr=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("B logs where it serves /metrics")
        .to_string();
    let metrics =
        common::get_text(&reqwest::Client::new(), &format!("http://{addr}/metrics")).await;
    for want in [
        "conveyor_processor_records_total{processor=\"counter\",partition=\"",
        "conveyor_state_restore_records_total{store=\"counter.counts\",partition=\"",
        "conveyor_processor_batch_seconds",
    ] {
        assert!(metrics.contains(want), "B's /metrics lacks {want}");
    }
    // Ready once its stores are restored, with the state check listed.
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body = ready.text().await.unwrap();
    assert!(body.contains("state"), "{body}");
    let summary_b = b.stop();
    eprintln!("A: {summary_a}\nB: {summary_b}");

    let input_records = read_all(&config, &input).await;
    let (expected, totals) = expected_outputs(&input_records);
    check_outputs(&read_all(&config, &output).await, &expected);
    // B now holds every partition, A's restored from the changelog.
    assert_eq!(files(dir_b.path()), PARTITIONS as usize);
    assert!(
        owned_by_a > 0 && summary_b["restores"].as_u64().unwrap() > 0,
        "B restored nothing"
    );
    assert_eq!(
        stored_counts(&dir_b.path().join("counter.counts"), KEYS),
        totals
    );
    // The operator's view of the same state.
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["state", "get", "counter.counts", "k7", "--table", "count"])
        .env("CONVEYOR_STATE__DIR", dir_b.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("count/k7  {}", totals["k7"])),
        "state get printed {stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["state", "list", "counter.counts"])
        .env("CONVEYOR_STATE__DIR", dir_b.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2 + PARTITIONS as usize, "{stdout}");
}

/// Forwards inventory events; rejects those with a negative quantity.
struct Forward {
    output: String,
}

impl Processor for Forward {
    type In = Avro<InventoryEvent>;

    fn process(
        &mut self,
        input: &Self::In,
        rec: &InRecord,
        _: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        if input.0.quantity < 0 {
            return Err(ProcessError::Invalid(format!(
                "quantity {} is negative",
                input.0.quantity
            )));
        }
        let key = rec.key.clone().unwrap_or_default();
        out.push(Output::avro(self.output.clone(), key, input.0.clone()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_go_to_the_dlq_and_the_partition_moves_on() {
    let s = Setup::new("poison").await;
    let (config, input, output) = (&s.config, &s.input, &s.output);
    let dlq = Topology::resolve(config)
        .topic_name("orders_dlq")
        .unwrap()
        .to_string();
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let good = |i: u64| {
        let mut e = conveyor_schemas::samples::inventory_event(i, now);
        e.quantity = 5;
        e
    };
    let mut negative = good(3);
    negative.quantity = -2;
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    payloads.push(codec.encode(input, &good(0)).await.unwrap());
    payloads.push(b"\xde\xad\xbe\xef garbage".to_vec()); // not the wire format
    payloads.push(codec.encode(input, &good(1)).await.unwrap());
    payloads.push(vec![0, 0x7f, 0xff, 0xff, 0xf0, 1, 2, 3]); // unknown schema id
    payloads.push(codec.encode(input, &negative).await.unwrap());
    payloads.push(codec.encode(input, &good(2)).await.unwrap());
    // All on one partition (one key), so the good ones must pass the bad.
    let producer = Producer::new(&config.kafka, "test").unwrap();
    let mut offsets = Vec::new();
    for p in &payloads {
        let d = producer
            .send(
                &OutRecord::new(input.as_str())
                    .key("sku-1")
                    .payload(p.clone())
                    .timestamp_ms(now),
            )
            .await
            .unwrap();
        offsets.push((d.partition, d.offset));
    }
    let forward = Forward {
        output: output.clone(),
    };
    let summary = s.run_until("forward", None, forward, 3).await;
    assert_eq!(summary.processed, 3);
    assert_eq!(summary.dead_lettered, 3);

    let outs = read_all(config, output).await;
    assert_eq!(outs.len(), 3);
    let mut dead = Vec::new();
    for r in read_all(config, &dlq).await {
        let at = Source {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
        };
        let d: DlqRecord = codec.decode(r.payload.as_deref(), at).await.unwrap();
        if d.source_topic == *input {
            dead.push(d);
        }
    }
    dead.sort_by_key(|d| d.source_offset);
    let kinds: Vec<ErrorKind> = dead.iter().map(|d| d.error_kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::Decode,
            ErrorKind::UnknownSchema,
            ErrorKind::Validation
        ]
    );
    for (d, i) in dead.iter().zip([1usize, 3, 4]) {
        assert_eq!((d.source_partition, d.source_offset), offsets[i]);
        assert_eq!(d.original_value.as_deref(), Some(payloads[i].as_slice()));
        assert_eq!(d.original_key.as_deref(), Some(&b"sku-1"[..]));
        assert_eq!(d.stage, "forward");
        assert!(!d.reason.is_empty());
    }
    assert!(
        dead[2].reason.contains("quantity -2 is negative"),
        "{}",
        dead[2].reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reemitted_duplicate_at_a_new_offset_is_applied_once() {
    use conveyor_stream::dedup::SOURCE_HEADER;
    let s = Setup::new("dedup").await;
    let (ns, config, input, output) = (
        s.ns.clone(),
        s.config.clone(),
        s.input.clone(),
        s.output.clone(),
    );
    let changelog = format!("{ns}.changelog");
    let cl = TopicSpec::adhoc(&changelog, PARTITIONS, 1, CleanupPolicy::Compact);
    let admin = Admin::new(&config.kafka).unwrap();
    admin.ensure_topics(&[cl]).await.unwrap();
    // What an upstream job that crashed and redid a batch leaves behind:
    // its record for input offset 5 twice, at two offsets of our input.
    let producer = Producer::new(&config.kafka, "test").unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for src in [
        "up/orders/0/5/0",
        "up/orders/0/6/0",
        "up/orders/0/5/0", // the re-emission
        "up/orders/1/5/0", // another upstream partition: not a duplicate
        "up/orders/0/7/0",
    ] {
        producer
            .send(
                &OutRecord::new(input.as_str())
                    .key("sku-1")
                    .payload("line")
                    .header(SOURCE_HEADER, src)
                    .header("traceparent", traceparent),
            )
            .await
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let store = conveyor_stream::StoreSpec {
        name: "counter.counts".into(),
        changelog: changelog.clone(),
        dir: state.path().join("counter.counts"),
    };
    let counter = conveyor_stream::examples::KeyCounter {
        output: output.clone(),
    };
    let summary = s.run_until("counter", Some(store), counter, 4).await;
    assert_eq!(
        (summary.processed, summary.duplicates),
        (4, 1),
        "{summary:?}"
    );
    let values: Vec<String> = read_all(&config, &output)
        .await
        .iter()
        .map(|r| String::from_utf8(r.payload.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(values, ["sku-1=1", "sku-1=2", "sku-1=3", "sku-1=4"]);
    // Every output names its own source for the next job downstream.
    let out = read_all(&config, &output).await;
    let src = std::str::from_utf8(out[0].header(SOURCE_HEADER).unwrap()).unwrap();
    assert!(src.starts_with(&format!("counter/{input}/")), "{src}");
    // ...and carries the trace on.
    assert_eq!(out[0].header("traceparent"), Some(traceparent.as_bytes()));
}

/// Fails the record with payload "flaky" with a retryable error twice.
struct Flaky {
    output: String,
    failures: u32,
}

impl Processor for Flaky {
    type In = conveyor_stream::Raw;

    fn process(
        &mut self,
        _: &conveyor_stream::Raw,
        rec: &InRecord,
        _: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let body = rec.payload.clone().unwrap_or_default();
        if body == b"flaky" && self.failures < 2 {
            self.failures += 1;
            return Err(ProcessError::Retry("carrier API timed out".into()));
        }
        out.push(Output::bytes(self.output.clone(), b"k".to_vec(), body));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retryable_error_is_retried_in_place_without_skipping() {
    let s = Setup::new("retry").await;
    let (config, input, output) = (&s.config, &s.input, &s.output);
    let producer = Producer::new(&config.kafka, "test").unwrap();
    for body in ["a", "flaky", "b"] {
        producer
            .send(&OutRecord::new(input.as_str()).key("k").payload(body))
            .await
            .unwrap();
    }
    let flaky = Flaky {
        output: output.clone(),
        failures: 0,
    };
    let summary = s.run_until("flaky", None, flaky, 3).await;
    assert_eq!((summary.processed, summary.dead_lettered), (3, 0));
    let bodies: Vec<Vec<u8>> = read_all(config, output)
        .await
        .into_iter()
        .map(|r| r.payload.unwrap())
        .collect();
    assert_eq!(bodies, [b"a".to_vec(), b"flaky".to_vec(), b"b".to_vec()]);
}

/// Notes the event time of every record it is given, in the order given.
struct Recorder {
    job: &'static str,
    log: Arc<std::sync::Mutex<Vec<(&'static str, i64)>>>,
}

impl Processor for Recorder {
    type In = conveyor_stream::Raw;

    fn process(
        &mut self,
        _: &conveyor_stream::Raw,
        rec: &InRecord,
        _: &mut State<'_>,
        _: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        self.log
            .lock()
            .unwrap()
            .push((self.job, rec.timestamp_ms.unwrap()));
        Ok(())
    }
}

/// Two bounded replay jobs sharing a clock (window 0), each over its own
/// topic, read in event-time order across each other: whenever one
/// processes a record, the other has processed every record older than
/// it, although the second topic's records were written first (a job
/// left alone would race through its own topic). Every record in the
/// bounds once, none written after them (older in event time, too).
#[tokio::test(flavor = "multi_thread")]
async fn replayed_jobs_sharing_a_clock_read_in_event_time_order() {
    let _turn = HEAVY.lock().await;
    const N: i64 = 600;
    let s = Setup::new("merge").await;
    let config = &s.config;
    let (a, b) = (format!("{}.a", s.ns), format!("{}.b", s.ns));
    create(config, &[&a, &b]).await;
    let producer = Producer::new(&config.kafka, "test").unwrap();
    let base = conveyor_connectors::publish::now_ms() - 3_600_000;
    // b first (odd times), then a (even times); every partition used.
    for (topic, odd) in [(&b, 1), (&a, 0)] {
        let recs: Vec<OutRecord> = (0..N)
            .map(|i| {
                OutRecord::new(topic.as_str())
                    .key(format!("k{}", i % 24))
                    .payload(format!("{i}"))
                    .timestamp_ms(base + 2 * i + odd)
            })
            .collect();
        for r in producer.send_batch(&recs).await {
            r.unwrap();
        }
    }
    let probe = conveyor_runtime::kafka::Consumer::new(&config.kafka, "test", "probe").unwrap();
    let until = |t: &str| {
        (0..PARTITIONS)
            .map(|p| {
                let (_, high) = probe.watermarks(t, p, Duration::from_secs(10)).unwrap();
                ((t.to_string(), p), high)
            })
            .filter(|(_, high)| *high > 0)
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let bounds = [(&a, until(&a)), (&b, until(&b))];
    // Written after the plan: past the bounds, left to the live jobs.
    for (topic, odd) in [(&a, 0), (&b, 1)] {
        let recs: Vec<OutRecord> = (0..100)
            .map(|i| {
                OutRecord::new(topic.as_str())
                    .key(format!("k{}", i % 24))
                    .payload("after")
                    .timestamp_ms(base + 2 * i + odd)
            })
            .collect();
        for r in producer.send_batch(&recs).await {
            r.unwrap();
        }
    }
    let clock = Arc::new(conveyor_stream::merge::MergeClock::new(
        Duration::ZERO,
        ["a".to_string(), "b".to_string()],
    ));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let mut jobs = Vec::new();
    for ((job, topic), (_, bound)) in [("a", &a), ("b", &b)].into_iter().zip(bounds) {
        let spec = conveyor_stream::JobSpec {
            name: job.into(),
            group_id: format!("{}.{job}", s.ns),
            inputs: vec![topic.clone()],
            store: None,
            dlq_topic: Topology::resolve(config)
                .topic_name("orders_dlq")
                .unwrap()
                .to_string(),
            batch: conveyor_stream::BatchSpec {
                max_records: 50,
                max_wait: Duration::from_millis(20),
            },
            health: None,
            replay: Some(conveyor_stream::ReplayRun {
                generation: 1,
                until: bound,
                clock: Some(clock.clone()),
                ..Default::default()
            }),
        };
        let p = Recorder {
            job,
            log: log.clone(),
        };
        let (k, c) = (config.kafka.clone(), codec.clone());
        let token = tokio_util::sync::CancellationToken::new();
        jobs.push(tokio::spawn(async move {
            conveyor_stream::run(&k, c, spec, p, token).await
        }));
    }
    for j in jobs {
        let summary = tokio::time::timeout(Duration::from_secs(120), j)
            .await
            .expect("the replay jobs did not end")
            .unwrap()
            .unwrap();
        assert_eq!(summary.processed, N as u64);
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len() as i64, 2 * N, "every record once");
    for (i, (job, t)) in log.iter().enumerate() {
        let older_of_other = log
            .iter()
            .enumerate()
            .filter(|(_, (j, u))| j != job && u < t);
        for (k, (_, u)) in older_of_other {
            assert!(
                k < i,
                "{job} processed {t} before the other job's older {u}"
            );
        }
    }
}

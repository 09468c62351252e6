//! A broker outage in the middle of a stateful stream: the broker process is
//! frozen (SIGSTOP) for longer than the consumer session, then thawed. The
//! processor backs off, rejoins and finishes; nothing is skipped or applied
//! twice. Its own test binary, because it stalls the shared broker (cargo
//! runs test binaries one at a time).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::stream::*;

/// The dev broker's PID, from `conveyor dev up`'s PID file.
fn broker_pid() -> i32 {
    let dir = std::env::var("CONVEYOR_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(".conveyor/dev"));
    let text = std::fs::read_to_string(dir.join("broker.pid"))
        .expect("the dev broker's PID file (run `conveyor dev up`)");
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// Thaws the broker even if the test fails while it is frozen.
struct Frozen(i32);

impl Frozen {
    fn freeze(pid: i32) -> Self {
        // SAFETY: signalling the dev broker this test suite started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_broker_delays_the_stream_but_loses_nothing() {
    const N: usize = 30_000;
    const KEYS: usize = 300;
    let s = Setup::new("outage").await;
    let (ns, config, input, output) = (
        s.ns.clone(),
        s.config.clone(),
        s.input.clone(),
        s.output.clone(),
    );
    produce_keyed(&config, &input, 0, N, KEYS).await;
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let inst = Instance::start(
        &ns,
        state.path(),
        &input,
        &output,
        &logs.path().join("run.log"),
    );
    wait_until(
        "the stream to be under way",
        Duration::from_secs(60),
        || s.count(&output) >= (N / 4) as i64,
    )
    .await;
    {
        let _frozen = Frozen::freeze(broker_pid());
        // Longer than the consumer session (6 s): the group expires the
        // member, so it must rejoin and take its state back afterwards.
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        // The probe counts 0 while the broker recovers.
        let done = s.count(&output);
        if done >= N as i64 && distinct_outputs(&config, &output).await >= N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream did not finish after the outage"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let summary = inst.stop();
    eprintln!("after the outage: {summary}");
    let input_records = read_all(&config, &input).await;
    let (expected, totals) = expected_outputs(&input_records);
    check_outputs(&read_all(&config, &output).await, &expected);
    assert_eq!(
        stored_counts(&state.path().join("counter.counts"), KEYS),
        totals
    );
}

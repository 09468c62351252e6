//! The Scylla operational store against a real ScyllaDB or Apache
//! Cassandra 4: the same behaviour suite as the embedded store. Runs when
//! SCYLLA_URI (`host:port` of a CQL node) is set; no CQL server installs
//! on the CI machines, so it says so and passes without one.

use conveyor_sinks::ops::testkit;
use conveyor_sinks::scylla::{migrate, ScyllaStore};

#[tokio::test(flavor = "multi_thread")]
async fn scylla_store_passes_the_behaviour_suite() {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        eprintln!(
            "SKIPPED scylla_store_passes_the_behaviour_suite: set SCYLLA_URI=host:port of a ScyllaDB or Cassandra 4 node to run it"
        );
        return;
    };
    let cfg = conveyor_runtime::config::ScyllaConfig {
        nodes: vec![uri],
        keyspace: format!("conveyor_it_{}", std::process::id()),
        ..Default::default()
    };
    let applied = migrate(&cfg).await.expect("migrate");
    assert!(applied.iter().all(|(_, now)| *now));
    let again = migrate(&cfg).await.expect("migrate again");
    assert!(again.iter().all(|(_, now)| !*now), "applied once");
    let store = ScyllaStore::connect(&cfg).await.expect("connect");
    testkit::behaviour(&store).await;
}

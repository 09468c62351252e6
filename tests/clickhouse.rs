//! The ClickHouse connection layer against the real ClickHouse engine:
//! database creation, a table written and read back exactly.

mod common;

use clickhouse::Row;
use conveyor_sinks::clickhouse as ch;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct OrderFact {
    order_id: String,
    channel: String,
    lines: u32,
    total_cents: i64,
    version: u64,
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_and_reads_a_table() {
    let mut config = common::config();
    common::require_clickhouse(&config).await;
    config.clickhouse.database = common::unique("it_db").replace('-', "_");
    let version = ch::ensure_database(&config.clickhouse).await.unwrap();
    assert!(
        version.starts_with("26."),
        "the real ClickHouse 26.x engine, got {version}"
    );
    // Idempotent.
    ch::ensure_database(&config.clickhouse).await.unwrap();

    let client = ch::client(&config.clickhouse);
    client
        .query(
            "CREATE TABLE order_facts (order_id String, channel LowCardinality(String), lines UInt32, \
             total_cents Int64, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY order_id",
        )
        .execute()
        .await
        .unwrap();
    let rows: Vec<OrderFact> = (0..1000)
        .map(|i| OrderFact {
            order_id: format!("shopify:{i}"),
            channel: if i % 3 == 0 { "amazon" } else { "shopify" }.into(),
            lines: 1 + i % 4,
            total_cents: 1999 + i64::from(i),
            version: 1,
        })
        .collect();
    let mut insert = client.insert::<OrderFact>("order_facts").await.unwrap();
    for r in &rows {
        insert.write(r).await.unwrap();
    }
    insert.end().await.unwrap();
    // A replayed, newer version of one order supersedes the old row.
    let mut newer = rows[7].clone();
    newer.total_cents = 1;
    newer.version = 2;
    let mut insert = client.insert::<OrderFact>("order_facts").await.unwrap();
    insert.write(&newer).await.unwrap();
    insert.end().await.unwrap();

    let back = client
        .query("SELECT ?fields FROM order_facts FINAL ORDER BY toUInt32(splitByChar(':', order_id)[2])")
        .fetch_all::<OrderFact>()
        .await
        .unwrap();
    assert_eq!(
        back.len(),
        1000,
        "inserted synchronously: every row visible at once"
    );
    let mut expected = rows.clone();
    expected[7] = newer;
    assert_eq!(back, expected);

    let (n, sum): (u64, i64) = client
        .query("SELECT count(), sum(total_cents) FROM order_facts FINAL WHERE channel = ?")
        .bind("amazon")
        .fetch_one()
        .await
        .unwrap();
    let want: Vec<&OrderFact> = expected.iter().filter(|r| r.channel == "amazon").collect();
    assert_eq!(n, want.len() as u64);
    assert_eq!(sum, want.iter().map(|r| r.total_cents).sum::<i64>());

    ch::server_client(&config.clickhouse)
        .query(&format!("DROP DATABASE `{}`", config.clickhouse.database))
        .execute()
        .await
        .unwrap();
}

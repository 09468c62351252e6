//! `conveyor bench codec`: encode + decode throughput of every record type
//! on one core, with the registry caches warm (each type's schema is
//! registered and fetched before timing starts). Numbers are records per
//! second through the full codec path: cache lookups, the wire-format
//! header, Avro binary, and dropping what was produced.

use std::hint::black_box;
use std::time::Instant;

use crate::codec::{Codec, DecodeError, EncodeError, Source};
use crate::records::Record;
use crate::samples;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct BenchRow {
    pub record: &'static str,
    pub records: usize,
    pub bytes_per_record: f64,
    pub encode_per_sec: f64,
    pub decode_per_sec: f64,
    /// Records per second when each is encoded and then decoded.
    pub round_trip_per_sec: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Distinct sample records per type; the loops cycle through them, so the
/// working set stays in cache as in a pipeline that processes and drops
/// each record (rather than measuring page faults of a huge live set).
const DISTINCT: usize = 1024;
/// Each measurement is repeated and the best kept: on a shared 2-core
/// machine, the slower runs measure the neighbours, not the code.
const ROUNDS: usize = 3;

/// Benchmarks `n` records of type `T` on the current task: encode only,
/// decode only, and encode-then-decode, each the best of [`ROUNDS`].
pub async fn bench_type<T: Record>(
    codec: &Codec,
    topic: &str,
    n: usize,
    sample: fn(u64, i64) -> T,
) -> Result<BenchRow, BenchError> {
    let values: Vec<T> = (0..DISTINCT as u64)
        .map(|i| sample(i, 1_763_800_000_000))
        .collect();
    let at = Source {
        topic,
        partition: 0,
        offset: 0,
    };
    // Warm: register the schema and fetch it by id once.
    let mut encoded = Vec::with_capacity(DISTINCT);
    for v in &values {
        encoded.push(codec.encode(topic, v).await?);
    }
    codec.decode::<T>(Some(&encoded[0]), at).await?;
    let bytes: usize = encoded.iter().map(Vec::len).sum();

    let (mut encode, mut decode, mut both) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..n {
            black_box(codec.encode(topic, &values[i % DISTINCT]).await?);
        }
        encode = encode.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for i in 0..n {
            black_box(codec.decode::<T>(Some(&encoded[i % DISTINCT]), at).await?);
        }
        decode = decode.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for i in 0..n {
            let b = codec.encode(topic, &values[i % DISTINCT]).await?;
            black_box(codec.decode::<T>(Some(&b), at).await?);
        }
        both = both.min(t.elapsed().as_secs_f64());
    }
    Ok(BenchRow {
        record: T::NAME,
        records: n,
        bytes_per_record: bytes as f64 / DISTINCT as f64,
        encode_per_sec: n as f64 / encode,
        decode_per_sec: n as f64 / decode,
        round_trip_per_sec: n as f64 / both,
    })
}

/// Every record type whose name contains `only` (all when None), `n`
/// records each, topics under `prefix`.
pub async fn run_all(
    codec: &Codec,
    prefix: &str,
    n: usize,
    only: Option<&str>,
) -> Result<Vec<BenchRow>, BenchError> {
    let t = |name: &str| format!("{prefix}.{name}");
    let wanted = |name: &str| only.is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();
    macro_rules! bench {
        ($t:ty, $topic:literal, $sample:path) => {
            if wanted(<$t as Record>::NAME) {
                rows.push(bench_type::<$t>(codec, &t($topic), n, $sample).await?);
            }
        };
    }
    use crate::records::*;
    bench!(RawOrder, "raw", samples::raw_order);
    bench!(OrderEvent, "orders", samples::order_event);
    bench!(DlqRecord, "dlq", samples::dlq_record);
    bench!(InventoryEvent, "inventory", samples::inventory_event);
    bench!(AllocationResult, "allocated", samples::allocation_result);
    bench!(StockMovement, "movements", samples::stock_movement);
    bench!(InventoryAlert, "alerts", samples::inventory_alert);
    bench!(PlannedShipment, "planned", samples::planned_shipment);
    bench!(LabeledShipment, "labeled", samples::labeled_shipment);
    Ok(rows)
}

/// The table, as printed by `conveyor bench codec`.
pub fn render(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>9} {:>12} {:>12} {:>14}\n",
        "record", "records", "bytes/rec", "encode/s", "decode/s", "enc+dec rec/s"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<28} {:>8} {:>9.0} {:>12.0} {:>12.0} {:>14.0}\n",
            r.record,
            r.records,
            r.bytes_per_record,
            r.encode_per_sec,
            r.decode_per_sec,
            r.round_trip_per_sec
        ));
    }
    out
}

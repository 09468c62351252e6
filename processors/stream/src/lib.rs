//! conveyor's stream engine: runs a [`Processor`] over Kafka topics with
//! keyed state, effectively-once effects, a DLQ and crash safety, on any
//! Kafka-compatible broker (no transactions needed).
//!
//! # The protocol
//!
//! A job consumes its input in batches (up to `max_records`, or what
//! arrives within `max_wait` of the first record). For each batch:
//!
//! 1. **Process.** Each record is decoded (failures go to the DLQ), then
//!    handed to the processor with a [`State`] view. A processor with slow,
//!    order-independent work (label purchases) first gets the whole decoded
//!    batch in [`Processor::prepare`], to start that work for many records
//!    at once; what it keeps is only a cache for `process`. Its writes land in an
//!    in-memory overlay; a record the processor rejects (or whose outputs do
//!    not encode) leaves no state and no outputs, only a DLQ record.
//! 2. **Produce outputs**, DLQ records included, through the idempotent
//!    `acks=all` producer, pipelined, and wait for every acknowledgement.
//!    A stateful job produces its changelog entries (one record per key the
//!    batch changed) in the same pipelined wave.
//! 3. **Write the marker** (stateful jobs): once outputs and entries are all
//!    acknowledged, one position marker per input partition (the next input
//!    offset). A restore applies entries only up to the last marker, so
//!    entries of a batch that never got its marker are ignored. See
//!    [`changelog`].
//! 4. **Commit the store**: the batch's writes, the new position and the
//!    changelog offset after the marker, in one atomic redb commit.
//! 5. **Commit the group offsets** (asynchronously): only a hint for where
//!    fetching resumes; the store's position is the truth.
//!
//! Outputs are deterministic (the processor contract in [`processor`]): the
//! same record and state give byte-identical outputs with the same event
//! ids, stamped with the input's timestamp. So any step repeated after a
//! failure emits exact duplicates, which consumers drop: a stateful job by
//! its input position (re-deliveries) and by the source high-water marks of
//! [`dedup`] (re-emissions at new offsets); sinks by natural key.
//!
//! # Failures covered
//!
//! - *Crash (SIGKILL) during step 1 or 2*: nothing committed locally; the restarted
//!   job resumes from the store's position and reprocesses the batch;
//!   outputs already produced are duplicated identically.
//! - *Crash during step 2 or 3*: the changelog holds some of the batch's
//!   entries without a marker, or all of them with it. The local store (step 4 not done) is behind, so
//!   on restart it catches up from the changelog, applying entries only up
//!   to the last marker; an unfinished batch is reprocessed.
//! - *Crash during step 4*: redb reopens at its last commit (atomic and
//!   durable), behind the changelog, and catches up from it as above.
//! - *Disk lost, or the partition moves to another instance (rebalance)*:
//!   the new owner rebuilds the store from the changelog (state + position);
//!   records before the position are skipped as already applied.
//! - *Revocation*: callbacks run only inside `recv()`, between batches, so a
//!   revoked partition has no batch in flight; fetched-but-unprocessed
//!   records of it are dropped and its store is closed.
//! - *Poison record*: a decode failure, a validation or processing error
//!   goes to the DLQ with reason, kind, coordinates and original bytes; the
//!   partition moves on.
//! - *Broker or registry outage*: produce, encode and decode failures that
//!   may pass are retried with backoff; a failed batch is redone in full
//!   and in order (records are queued strictly in order, so per-key order
//!   holds, G5), so no record is skipped. Errors that cannot pass (a record
//!   larger than the broker accepts, a missing partition, a fatal producer
//!   error) stop the job with the reason instead of retrying forever.
//! - *Kicked out of the group while retrying* (no poll for
//!   `max.poll.interval.ms`): the job checks that it still owns its
//!   partitions before it writes a marker; if not, it abandons the batch,
//!   drops its stores and rejoins. The new owner redoes the batch.
//! - *Writes behind the position* (a zombie finishing a batch after the
//!   partition moved): restore ignores markers that go backwards and
//!   entries whose batch ends at or before the current marker.
//! - *A local store left unused for a day or more* is rebuilt from the
//!   changelog rather than caught up, since compaction may have removed
//!   tombstones it never saw.
//!
//! Not covered: a zombie that writes entries for batches *ahead* of the
//! live owner's position can still interleave with it; without broker
//! transactions there is no fencing. The window is one batch after the
//! ownership check. Compaction hazard: see [`changelog`].
//!
//! Stateless jobs skip steps 3-4: the group offsets are committed after the
//! outputs are acknowledged (at-least-once delivery of identical records).

pub mod changelog;
pub mod dedup;
pub mod examples;
pub mod inspect;
pub mod job;
pub mod merge;
pub mod processor;
pub mod rebalance;
pub mod state;

pub use job::{
    run, BatchSpec, JobError, JobSpec, ReplayRun, StoreSpec, Summary, GENERATION_HEADER,
};
pub use processor::{
    event_id, source_id, Avro, Input, Output, Payload, ProcessError, Processor, Raw,
    EVENT_ID_HEADER,
};
pub use state::{Committed, State};

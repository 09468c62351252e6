//! Two small processors the runtime's tests and benchmark run (`conveyor
//! dev run-example`): they exercise the engine end to end without any
//! business logic in the way.
//!
//! - [`PassThrough`]: stateless; copies each record to the output topic.
//!
//! Neither sets an event id of its own: the runtime's `conveyor.src`
//! header (job, input coordinates, output index) identifies each output,
//! identically on every re-emission.
//! - [`KeyCounter`]: stateful; counts records per key in table `count` and
//!   emits `<key>=<count>` for each. A crash
//!   or rebalance that double-applied or skipped a record would show in the
//!   counts, which is what the crash tests check.

use conveyor_runtime::kafka::InRecord;

use crate::processor::{Output, ProcessError, Processor, Raw};
use crate::state::State;

/// Copies each record (key, value, headers) to `output`.
pub struct PassThrough {
    pub output: String,
}

impl Processor for PassThrough {
    type In = Raw;

    fn process(
        &mut self,
        _: &Raw,
        rec: &InRecord,
        _: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let mut o = Output::bytes(
            self.output.clone(),
            rec.key.clone().unwrap_or_default(),
            rec.payload.clone().unwrap_or_default(),
        );
        o.headers = rec.headers.clone();
        out.push(o);
        Ok(())
    }
}

/// Counts records per key. A record without a key, or whose value is not
/// UTF-8 text, is invalid (to the DLQ).
pub struct KeyCounter {
    pub output: String,
}

pub const COUNT_TABLE: &str = "count";

impl Processor for KeyCounter {
    type In = Raw;

    fn process(
        &mut self,
        _: &Raw,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let key = rec
            .key
            .as_deref()
            .ok_or_else(|| ProcessError::Invalid("record has no key".into()))?;
        let value = rec.payload.as_deref().unwrap_or_default();
        std::str::from_utf8(value)
            .map_err(|e| ProcessError::Invalid(format!("value is not UTF-8 text: {e}")))?;
        let count = match state.get(COUNT_TABLE, key)? {
            None => 0u64,
            Some(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ProcessError::Failed("stored count is not a number".into()))?,
        } + 1;
        state.put(COUNT_TABLE, key, count.to_string().into_bytes())?;
        let mut body = key.to_vec();
        body.push(b'=');
        body.extend_from_slice(count.to_string().as_bytes());
        out.push(Output::bytes(self.output.clone(), key.to_vec(), body));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::Payload;
    use crate::state::{PartitionStore, Writes};

    fn rec(key: Option<&[u8]>, value: &[u8], offset: i64) -> InRecord {
        InRecord {
            topic: "in".into(),
            partition: 0,
            offset,
            key: key.map(<[u8]>::to_vec),
            payload: Some(value.to_vec()),
            headers: vec![],
            timestamp_ms: Some(1),
        }
    }

    #[test]
    fn counts_per_key_and_rejects_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartitionStore::open(&dir.path().join("p0.redb")).unwrap();
        let reader = store.reader().unwrap();
        let mut batch = Writes::new();
        let mut c = KeyCounter {
            output: "out".into(),
        };
        let mut bodies = Vec::new();
        for (i, k) in [b"a", b"b", b"a"].iter().enumerate() {
            let mut s = State::new(Some(&reader), &batch);
            let mut out = Vec::new();
            c.process(&Raw, &rec(Some(*k), b"x", i as i64), &mut s, &mut out)
                .unwrap();
            batch.extend(s.into_writes());
            match &out[0].payload {
                Payload::Bytes(b) => bodies.push(String::from_utf8(b.clone()).unwrap()),
                _ => panic!("bytes expected"),
            }
        }
        assert_eq!(bodies, ["a=1", "b=1", "a=2"]);
        let mut s = State::new(Some(&reader), &batch);
        let mut out = Vec::new();
        assert!(matches!(
            c.process(&Raw, &rec(None, b"x", 9), &mut s, &mut out),
            Err(ProcessError::Invalid(_))
        ));
        assert!(matches!(
            c.process(&Raw, &rec(Some(b"a"), &[0xff, 0xfe], 9), &mut s, &mut out),
            Err(ProcessError::Invalid(_))
        ));
    }
}

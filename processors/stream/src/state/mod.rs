//! Keyed state: what a processor reads and writes while it handles a
//! record, on top of its partition's [`store::PartitionStore`].
//!
//! A processor sees its state through [`State`]: reads see the store as of
//! the batch start plus every write the batch made so far; writes go to an
//! overlay for the current record first. If the record fails (DLQ or
//! retry), its overlay is discarded, so a rejected record leaves no trace in
//! the state. The runtime merges accepted overlays into the batch's
//! [`store::Writes`], which become one changelog record per key and one
//! atomic store commit.
//!
//! Keys are namespaced by a table name (`"count"`, `"stock"`, ...): the
//! stored key is `<table> NUL <key>`, the same bytes as the changelog key.

pub mod store;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use store::{Inspector, Meta, PartitionStore, Reader, StoreError, Writes};

/// Why a state access failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("this processor is stateless (its job declares no store)")]
    Stateless,
    #[error("table name {0:?} must be non-empty and contain no NUL byte")]
    BadTable(String),
    #[error("value of {table}/{key} does not decode: {message}")]
    Corrupt {
        table: String,
        key: String,
        message: String,
    },
}

/// The stored key for `key` in `table`.
pub fn table_key(table: &str, key: &[u8]) -> Result<Vec<u8>, StateError> {
    if table.is_empty() || table.as_bytes().contains(&0) {
        return Err(StateError::BadTable(table.to_string()));
    }
    let mut k = Vec::with_capacity(table.len() + 1 + key.len());
    k.extend_from_slice(table.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    Ok(k)
}

/// Tables starting with `__` belong to the runtime.
fn reserved(table: &str) -> Result<(), StateError> {
    if table.starts_with("__") {
        return Err(StateError::BadTable(format!(
            "{table} (names starting with __ are the runtime's)"
        )));
    }
    Ok(())
}

/// Splits a stored key into `(table, key)`.
pub fn split_key(stored: &[u8]) -> Option<(&str, &[u8])> {
    let nul = stored.iter().position(|b| *b == 0)?;
    let table = std::str::from_utf8(&stored[..nul]).ok()?;
    (!table.is_empty()).then_some((table, &stored[nul + 1..]))
}

/// `bytes` as JSON of `table`'s value at `key`.
fn decode_json<T: DeserializeOwned>(
    table: &str,
    key: &[u8],
    bytes: Option<Vec<u8>>,
) -> Result<Option<T>, StateError> {
    match bytes {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                table: table.to_string(),
                key: String::from_utf8_lossy(key).into_owned(),
                message: e.to_string(),
            }),
    }
}

/// The state of a batch's partitions as committed before the batch, for
/// [`crate::Processor::prepare`] (read only; the batch's own writes do not
/// exist yet).
#[derive(Clone, Copy)]
pub struct Committed<'a> {
    readers: &'a std::collections::HashMap<i32, Reader>,
}

impl<'a> Committed<'a> {
    pub(crate) fn new(readers: &'a std::collections::HashMap<i32, Reader>) -> Self {
        Self { readers }
    }

    /// The value of `key` in `table` of `partition`'s store.
    pub fn get(
        &self,
        partition: i32,
        table: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError> {
        let reader = self.readers.get(&partition).ok_or(StateError::Stateless)?;
        Ok(reader.get(&table_key(table, key)?)?)
    }

    /// `get`, decoding the value as JSON.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        partition: i32,
        table: &str,
        key: &[u8],
    ) -> Result<Option<T>, StateError> {
        decode_json(table, key, self.get(partition, table, key)?)
    }
}

/// A processor's view of its partition's state while it handles one record.
pub struct State<'a> {
    reader: Option<&'a Reader>,
    batch: &'a Writes,
    record: Writes,
}

impl<'a> State<'a> {
    pub(crate) fn new(reader: Option<&'a Reader>, batch: &'a Writes) -> Self {
        Self {
            reader,
            batch,
            record: Writes::new(),
        }
    }

    pub(crate) fn into_writes(self) -> Writes {
        self.record
    }

    /// The value of `key` in `table`.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let reader = self.reader.ok_or(StateError::Stateless)?;
        let k = table_key(table, key)?;
        if let Some(v) = self.record.get(&k).or_else(|| self.batch.get(&k)) {
            return Ok(v.clone());
        }
        Ok(reader.get(&k)?)
    }

    pub fn put(&mut self, table: &str, key: &[u8], value: Vec<u8>) -> Result<(), StateError> {
        self.reader.ok_or(StateError::Stateless)?;
        reserved(table)?;
        self.record.insert(table_key(table, key)?, Some(value));
        Ok(())
    }

    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), StateError> {
        self.reader.ok_or(StateError::Stateless)?;
        reserved(table)?;
        self.record.insert(table_key(table, key)?, None);
        Ok(())
    }

    /// `get`, decoding the value as JSON.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<T>, StateError> {
        decode_json(table, key, self.get(table, key)?)
    }

    /// `put`, encoding the value as JSON (readable with `conveyor state get`).
    pub fn put_json<T: Serialize>(
        &mut self,
        table: &str,
        key: &[u8],
        value: &T,
    ) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StateError::Corrupt {
            table: table.to_string(),
            key: String::from_utf8_lossy(key).into_owned(),
            message: e.to_string(),
        })?;
        self.put(table, key, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_tables_are_checked() {
        let k = table_key("count", b"a\0b").unwrap();
        assert_eq!(split_key(&k), Some(("count", &b"a\0b"[..])));
        assert!(table_key("", b"x").is_err());
        assert!(table_key("a\0", b"x").is_err());
        assert_eq!(split_key(b"\0marker"), None);
    }

    #[test]
    fn reads_see_record_then_batch_then_store_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartitionStore::open(&dir.path().join("p.redb")).unwrap();
        let mut w = Writes::new();
        w.insert(table_key("t", b"a").unwrap(), Some(b"store".to_vec()));
        w.insert(table_key("t", b"b").unwrap(), Some(b"store".to_vec()));
        store.commit(&w, Some((0, 1)), None).unwrap();
        let reader = store.reader().unwrap();
        let mut batch = Writes::new();
        batch.insert(table_key("t", b"b").unwrap(), None);
        let mut s = State::new(Some(&reader), &batch);
        assert_eq!(s.get("t", b"a").unwrap(), Some(b"store".to_vec()));
        assert_eq!(s.get("t", b"b").unwrap(), None);
        s.put_json("t", b"a", &7u32).unwrap();
        assert_eq!(s.get_json::<u32>("t", b"a").unwrap(), Some(7));
        assert_eq!(s.into_writes().len(), 1);
        let stateless = State::new(None, &batch);
        assert!(matches!(
            stateless.get("t", b"a"),
            Err(StateError::Stateless)
        ));
    }
}

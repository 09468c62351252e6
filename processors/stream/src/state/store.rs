//! One partition's state on local disk: a redb database file.
//!
//! Why redb: it is pure Rust with no required dependencies (it builds in
//! seconds, where RocksDB's C++ takes most of an hour on two cores), its
//! commits are atomic and crash-safe by construction (copy-on-write B-tree
//! with a double-buffered commit slot: after a crash the file opens at the
//! last durable commit, never half-written), and it lets a second process
//! open the file read-only while the processor writes
//! ([`ConcurrencyMode::SingleWriter`]), which is what `conveyor state get`
//! does. Its cost is write amplification: a B-tree rewrites the pages on a
//! key's path per commit, where an LSM (fjall, RocksDB) appends. The
//! runtime commits once per batch (up to thousands of records, one fsync),
//! so that cost is paid per batch, not per record. Every commit is durable:
//! redb refuses non-durable commits on a file shared with a reader process,
//! and sharing is what makes `conveyor state get` work on a live store. The
//! changelog, not this file, is the copy that survives losing the disk.
//!
//! Layout: table `data` holds the processor's keys (`<table> NUL <key>`,
//! the same bytes as the changelog key); table `meta` holds the partition's
//! position (next input offset to process), its replay `epoch` (see
//! [`crate::changelog`]: a replay moves the position back under a higher
//! epoch) and `changelog_end` (the changelog offset right after the last
//! batch marker this store has applied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadOnlyTable, ReadableDatabase,
    ReadableTableMetadata, TableDefinition,
};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const POSITION: &str = "position";
const CHANGELOG_END: &str = "changelog_end";
const EPOCH: &str = "epoch";

/// A failure of the local store (disk full, corrupt file, permissions).
/// Not retryable by the runtime: the job stops and says which file.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

impl StoreError {
    fn at(path: &Path, e: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Writes of one batch: the last value per key (`None` deletes).
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Where a partition's store stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Next input offset to process (None: nothing processed yet).
    pub position: Option<i64>,
    /// Changelog offset after the last marker applied (None: nothing).
    pub changelog_end: Option<i64>,
    /// Replay epoch of the position (0 until a replay rewinds it).
    pub epoch: i64,
}

/// The store of one processor's partition, open for writing.
pub struct PartitionStore {
    db: Database,
    path: PathBuf,
}

impl PartitionStore {
    /// Opens the file at `path`, creating it (and its directory) if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::at(path, e))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .set_cache_size(64 << 20)
            .create(path)
            .map_err(|e| StoreError::at(path, e))?;
        let s = Self {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables so readers never see a file without them.
        s.write(|_, _| Ok(()))?;
        Ok(s)
    }

    /// Deletes the file at `path` (a stale or foreign store) if it exists.
    pub fn remove(path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::at(path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> Result<Meta, StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let rt = self.db.begin_read().map_err(|e| err(e.into()))?;
        let t = rt.open_table(META).map_err(|e| err(e.into()))?;
        let get = |k: &str| -> Result<Option<i64>, StoreError> {
            Ok(t.get(k).map_err(|e| err(e.into()))?.map(|v| v.value()))
        };
        Ok(Meta {
            position: get(POSITION)?,
            changelog_end: get(CHANGELOG_END)?,
            epoch: get(EPOCH)?.unwrap_or(0),
        })
    }

    /// A snapshot for reads during one batch.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let rt = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = rt.open_table(DATA).map_err(|e| err(e.into()))?;
        Ok(Reader {
            table,
            path: self.path.clone(),
        })
    }

    /// Applies `writes` and moves the position (with its epoch) and the
    /// changelog end, in one atomic, durable commit.
    pub fn commit(
        &self,
        writes: &Writes,
        position: Option<(i64, i64)>,
        changelog_end: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(|data, meta| {
            for (k, v) in writes {
                match v {
                    Some(v) => {
                        data.insert(k.as_slice(), v.as_slice())?;
                    }
                    None => {
                        data.remove(k.as_slice())?;
                    }
                }
            }
            if let Some((epoch, p)) = position {
                meta.insert(POSITION, p)?;
                meta.insert(EPOCH, epoch)?;
            }
            if let Some(c) = changelog_end {
                meta.insert(CHANGELOG_END, c)?;
            }
            Ok(())
        })
    }

    fn write(
        &self,
        f: impl FnOnce(
            &mut redb::Table<&[u8], &[u8]>,
            &mut redb::Table<&str, i64>,
        ) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let mut tx = self.db.begin_write().map_err(|e| err(e.into()))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::at(&self.path, e))?;
        {
            let mut data = tx.open_table(DATA).map_err(|e| err(e.into()))?;
            let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
            f(&mut data, &mut meta).map_err(|e| err(e.into()))?;
        }
        tx.commit().map_err(|e| err(e.into()))
    }
}

/// A read snapshot of a partition's data.
pub struct Reader {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    path: PathBuf,
}

impl Reader {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.table
            .get(key)
            .map(|v| v.map(|v| v.value().to_vec()))
            .map_err(|e| StoreError::at(&self.path, e))
    }
}

/// A stored key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A store file opened read-only, beside a running processor (it sees each
/// committed batch).
pub struct Inspector {
    db: ReadOnlyDatabase,
    path: PathBuf,
}

impl Inspector {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(path)
            .map_err(|e| StoreError::at(path, e))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn meta(&self) -> Result<(Meta, u64), StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let rt = self.db.begin_read().map_err(|e| err(e.into()))?;
        let t = rt.open_table(META).map_err(|e| err(e.into()))?;
        let get = |k: &str| -> Result<Option<i64>, StoreError> {
            Ok(t.get(k).map_err(|e| err(e.into()))?.map(|v| v.value()))
        };
        let data = rt.open_table(DATA).map_err(|e| err(e.into()))?;
        let len = data.len().map_err(|e| err(e.into()))?;
        Ok((
            Meta {
                position: get(POSITION)?,
                changelog_end: get(CHANGELOG_END)?,
                epoch: get(EPOCH)?.unwrap_or(0),
            },
            len,
        ))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let rt = self.db.begin_read().map_err(|e| err(e.into()))?;
        let t = rt.open_table(DATA).map_err(|e| err(e.into()))?;
        let v = t.get(key).map_err(|e| err(e.into()))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let err = |e: redb::Error| StoreError::at(&self.path, e);
        let rt = self.db.begin_read().map_err(|e| err(e.into()))?;
        let t = rt.open_table(DATA).map_err(|e| err(e.into()))?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(|e| err(e.into()))? {
            let (k, v) = item.map_err(|e| err(e.into()))?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_atomic_with_the_position_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p0.redb");
        {
            let s = PartitionStore::open(&path).unwrap();
            assert_eq!(s.meta().unwrap(), Meta::default());
            let mut w = Writes::new();
            w.insert(b"t\0a".to_vec(), Some(b"1".to_vec()));
            w.insert(b"t\0b".to_vec(), Some(b"2".to_vec()));
            s.commit(&w, Some((0, 10)), Some(3)).unwrap();
            let mut w = Writes::new();
            w.insert(b"t\0a".to_vec(), None);
            s.commit(&w, Some((2, 11)), Some(5)).unwrap();
        }
        let s = PartitionStore::open(&path).unwrap();
        assert_eq!(
            s.meta().unwrap(),
            Meta {
                position: Some(11),
                changelog_end: Some(5),
                epoch: 2,
            }
        );
        let r = s.reader().unwrap();
        assert_eq!(r.get(b"t\0a").unwrap(), None);
        assert_eq!(r.get(b"t\0b").unwrap(), Some(b"2".to_vec()));
        // A read-only handle works beside the writer.
        let i = Inspector::open(&path).unwrap();
        assert_eq!(i.meta().unwrap().1, 1);
        assert_eq!(
            i.scan(b"t\0", 10).unwrap(),
            vec![(b"t\0b".to_vec(), b"2".to_vec())]
        );
    }
}

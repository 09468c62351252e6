//! Reading stores from outside their processor: `conveyor state list|get`.
//! Opens each partition file read-only (redb's single-writer mode), so it
//! works while the processor runs; it sees the last committed batch.

use std::path::{Path, PathBuf};

use crate::state::{split_key, table_key, Inspector, Meta, StoreError};

/// One partition file of a store.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    pub path: PathBuf,
    pub meta: Meta,
    pub keys: u64,
    pub bytes: u64,
}

/// The stores under `state_dir` (directory names `<processor>.<store>`).
pub fn stores(state_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// The partition files of the store in `dir`, by partition.
pub fn partitions(dir: &Path) -> Result<Vec<PartitionInfo>, StoreError> {
    let mut files: Vec<(i32, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| StoreError {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let p = name
                .strip_prefix('p')?
                .strip_suffix(".redb")?
                .parse()
                .ok()?;
            Some((p, e.path()))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (partition, path) in files {
        let i = Inspector::open(&path)?;
        let (meta, keys) = i.meta()?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        out.push(PartitionInfo {
            partition,
            path,
            meta,
            keys,
            bytes,
        });
    }
    Ok(out)
}

/// A hit of [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub partition: i32,
    pub table: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// `key` in `table` (or in every table when `None`) across the store's
/// partitions. A key lives in one partition; several hits mean the
/// partition count changed (the store then needs a rebuild).
pub fn get(dir: &Path, key: &[u8], table: Option<&str>) -> Result<Vec<Hit>, StoreError> {
    let mut hits = Vec::new();
    for part in partitions(dir)? {
        let i = Inspector::open(&part.path)?;
        match table {
            Some(t) => {
                let k = table_key(t, key).map_err(|e| StoreError {
                    path: part.path.clone(),
                    message: e.to_string(),
                })?;
                if let Some(v) = i.get(&k)? {
                    hits.push(Hit {
                        partition: part.partition,
                        table: t.to_string(),
                        key: key.to_vec(),
                        value: v,
                    });
                }
            }
            None => {
                // Every table: scan all keys' tables once (stores hold few
                // tables, and this is an operator's command).
                for (k, v) in i.scan(b"", usize::MAX)? {
                    if let Some((t, kk)) = split_key(&k) {
                        if kk == key {
                            hits.push(Hit {
                                partition: part.partition,
                                table: t.to_string(),
                                key: kk.to_vec(),
                                value: v,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(hits)
}

/// A value for a terminal: text when it is UTF-8 (JSON included), hex
/// otherwise.
pub fn display_value(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => s.to_string(),
        _ => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

//! The embedded operational store: one redb file (see the stream runtime's
//! state store for why redb), for running everything on one machine.
//!
//! One table of JSON values under prefixed keys (`<kind> NUL <key parts>`,
//! numbers zero-padded so key order is time order). Each value keeps the
//! version it was written with, per column group, and [`EmbeddedStore`]
//! applies the rule of [`super::model`]: a write lands only if its version
//! is at least the stored one (equal versions: the later write wins, as a
//! replay of the same version with fixed content should). A batch is one
//! durable redb commit, so a crash leaves the store at a batch boundary;
//! the feed redelivers what was not committed.
//!
//! Reads run in their own read transactions (MVCC): the status API reads
//! while the sink writes, both in one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::model::{
    ExceptionRow, HistoryEntry, LabelCells, LevelRow, LineRow, MovementRow, Mutation, OrderDetails,
    PlanCells, ReservationRow, SyncCells, TrackingRow,
};
use super::{IndexEntry, OperationalStore, OrderRecord, ShipmentRecord, StoreError};

const ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rows");

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Versioned<T> {
    v: i64,
    value: T,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Status {
    status: String,
    at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Shipment {
    plan: Option<Versioned<PlanCells>>,
    label: Option<Versioned<LabelCells>>,
    sync: Option<Versioned<SyncCells>>,
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

fn pad(n: i64) -> String {
    format!("{:020}", n.max(0))
}

impl EmbeddedStore {
    /// Deletes the store file at `path` (a rebuild from the topics), if
    /// there is one.
    pub fn remove(path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::new(format!("embedded {}", path.display()), e)),
        }
    }

    /// Opens (creating) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err =
            |e: &dyn std::fmt::Display| StoreError::new(format!("embedded {}", path.display()), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let db = Database::builder()
            .set_cache_size(256 << 20)
            .create(path)
            .map_err(|e| err(&e))?;
        let s = Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
        };
        s.write(Vec::new())?;
        Ok(s)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(self.describe(), e)
    }

    fn write(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.err(e))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(ROWS).map_err(|e| self.err(e))?;
            for m in batch {
                apply_one(&mut t, m).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn get<T: DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        let rt = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = rt.open_table(ROWS).map_err(|e| self.err(e))?;
        let Some(v) = t.get(k).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| self.err(e))
    }

    /// Values under `prefix` from `from` (a full key at or after the
    /// prefix), in key order, at most `limit`.
    fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let rt = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = rt.open_table(ROWS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut end = prefix.to_vec();
        end.push(0xff);
        let range = t.range(from..end.as_slice()).map_err(|e| self.err(e))?;
        type Item<'a> = Result<
            (
                redb::AccessGuard<'a, &'static [u8]>,
                redb::AccessGuard<'a, &'static [u8]>,
            ),
            redb::StorageError,
        >;
        let items: Box<dyn Iterator<Item = Item<'_>>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in items {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            let value = serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
            out.push((k.value().to_vec(), value));
        }
        Ok(out)
    }

    fn prefix_scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .scan(prefix, prefix, limit, false)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }
}

type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

fn read<T: DeserializeOwned>(t: &Table<'_>, k: &[u8]) -> Result<Option<T>, String> {
    match t.get(k).map_err(|e| e.to_string())? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

fn put<T: Serialize>(t: &mut Table<'_>, k: &[u8], v: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(v).map_err(|e| e.to_string())?;
    t.insert(k, bytes.as_slice()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes `value` at `k` unless a higher version is stored.
fn put_versioned<T: Serialize + DeserializeOwned>(
    t: &mut Table<'_>,
    k: &[u8],
    v: i64,
    value: T,
) -> Result<(), String> {
    if let Some(have) = read::<Versioned<serde_json::Value>>(t, k)? {
        if have.v > v {
            return Ok(());
        }
    }
    put(t, k, &Versioned { v, value })
}

fn apply_one(t: &mut Table<'_>, m: Mutation) -> Result<(), String> {
    match m {
        Mutation::OrderDetails { details, version } => {
            // The listing entry follows the details that win: a rejected
            // older version adds none, and a creation time that changed
            // (channels that omit it get their update time) moves it.
            let k = key(&["od", &details.order_id]);
            let have = read::<Versioned<OrderDetails>>(t, &k)?;
            if let Some(have) = &have {
                if have.v > version {
                    return Ok(());
                }
                if have.value.created_at != details.created_at {
                    let old = key(&["ix", &pad(have.value.created_at), &details.order_id]);
                    t.remove(old.as_slice()).map_err(|e| e.to_string())?;
                }
            }
            let idx = key(&["ix", &pad(details.created_at), &details.order_id]);
            put(t, &idx, &details.channel)?;
            put(
                t,
                &k,
                &Versioned {
                    v: version,
                    value: details,
                },
            )
        }
        Mutation::OrderStatus {
            order_id,
            status,
            at,
            version,
        } => put_versioned(t, &key(&["os", &order_id]), version, Status { status, at }),
        Mutation::Lines {
            order_id,
            lines,
            version,
        } => put_versioned(t, &key(&["ol", &order_id]), version, lines),
        Mutation::History(h) => put(t, &key(&["oh", &h.order_id, &pad(h.at), &h.event_id]), &h),
        Mutation::Reservations {
            order_id,
            rows,
            version,
        } => put_versioned(t, &key(&["or", &order_id]), version, rows),
        Mutation::Plan {
            order_id,
            shipment_id,
            cells,
            version,
        } => shipment(t, &order_id, &shipment_id, |s| {
            set(&mut s.plan, cells, version)
        }),
        Mutation::Label {
            order_id,
            shipment_id,
            cells,
            version,
        } => shipment(t, &order_id, &shipment_id, |s| {
            set(&mut s.label, cells, version)
        }),
        Mutation::Sync {
            order_id,
            shipment_id,
            cells,
            version,
        } => shipment(t, &order_id, &shipment_id, |s| {
            set(&mut s.sync, cells, version)
        }),
        Mutation::Tracking { row, version } => {
            put_versioned(t, &key(&["tn", &row.tracking_number.clone()]), version, row)
        }
        Mutation::Level(row) => {
            let k = key(&["il", &row.sku, &row.warehouse_id]);
            if let Some(have) = read::<LevelRow>(t, &k)? {
                if have.seq > row.seq {
                    return Ok(());
                }
            }
            put(t, &k, &row)
        }
        Mutation::Movement(row) => put(
            t,
            &key(&["im", &row.sku, &pad(row.seq), &row.event_id]),
            &row,
        ),
        Mutation::Exception { row, version } => {
            let k = key(&["ex", &row.day, &pad(row.raised_at), &row.exception_id]);
            put_versioned(t, &k, version, row)
        }
    }
}

fn set<T>(slot: &mut Option<Versioned<T>>, value: T, v: i64) {
    if slot.as_ref().is_none_or(|have| have.v <= v) {
        *slot = Some(Versioned { v, value });
    }
}

fn shipment(
    t: &mut Table<'_>,
    order_id: &str,
    shipment_id: &str,
    f: impl FnOnce(&mut Shipment),
) -> Result<(), String> {
    let k = key(&["ss", order_id, shipment_id]);
    let mut s: Shipment = read(t, &k)?.unwrap_or_default();
    f(&mut s);
    put(t, &k, &s)
}

fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    p.push(0);
    p
}

impl OperationalStore for EmbeddedStore {
    fn describe(&self) -> String {
        format!("embedded {}", self.path.display())
    }

    async fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.write(batch))
            .await
            .map_err(|e| self.err(e))?
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let details: Option<Versioned<OrderDetails>> = self.get(&key(&["od", order_id]))?;
        let status: Option<Versioned<Status>> = self.get(&key(&["os", order_id]))?;
        if details.is_none() && status.is_none() {
            return Ok(None);
        }
        Ok(Some(OrderRecord {
            details: details.map(|d| d.value),
            status_at: status.as_ref().map(|s| s.value.at),
            status: status.map(|s| s.value.status),
        }))
    }

    async fn lines(&self, order_id: &str) -> Result<Vec<LineRow>, StoreError> {
        Ok(self
            .get::<Versioned<Vec<LineRow>>>(&key(&["ol", order_id]))?
            .map(|v| v.value)
            .unwrap_or_default())
    }

    async fn history(&self, order_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.prefix_scan(&after_prefix(&key(&["oh", order_id])), 10_000)
    }

    async fn shipments(&self, order_id: &str) -> Result<Vec<ShipmentRecord>, StoreError> {
        let prefix = after_prefix(&key(&["ss", order_id]));
        Ok(self
            .scan::<Shipment>(&prefix, &prefix, 1_000, false)?
            .into_iter()
            .map(|(k, s)| ShipmentRecord {
                shipment_id: String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                plan: s.plan.map(|v| v.value),
                label: s.label.map(|v| v.value),
                sync: s.sync.map(|v| v.value),
            })
            .collect())
    }

    async fn reservations(&self, order_id: &str) -> Result<Vec<ReservationRow>, StoreError> {
        Ok(self
            .get::<Versioned<Vec<ReservationRow>>>(&key(&["or", order_id]))?
            .map(|v| v.value)
            .unwrap_or_default())
    }

    async fn tracking(&self, tracking_number: &str) -> Result<Option<TrackingRow>, StoreError> {
        Ok(self
            .get::<Versioned<TrackingRow>>(&key(&["tn", tracking_number]))?
            .map(|v| v.value))
    }

    async fn orders_since(
        &self,
        since: i64,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let prefix = b"ix\0".to_vec();
        let from = match &after {
            // Just past the previous page's last key.
            Some((at, id)) => {
                let mut k = key(&["ix", &pad(*at), id]);
                k.push(0);
                k
            }
            None => key(&["ix", &pad(since)]),
        };
        Ok(self
            .scan::<String>(&prefix, &from, limit, false)?
            .into_iter()
            .filter_map(|(k, channel)| {
                let k = String::from_utf8(k).ok()?;
                let mut parts = k.splitn(3, '\0').skip(1);
                let created_at = parts.next()?.parse().ok()?;
                let order_id = parts.next()?.to_string();
                Some(IndexEntry {
                    created_at,
                    order_id,
                    channel,
                })
            })
            .collect())
    }

    async fn levels(&self, sku: &str) -> Result<Vec<LevelRow>, StoreError> {
        self.prefix_scan(&after_prefix(&key(&["il", sku])), 1_000)
    }

    async fn movements(&self, sku: &str, limit: usize) -> Result<Vec<MovementRow>, StoreError> {
        let prefix = after_prefix(&key(&["im", sku]));
        Ok(self
            .scan(&prefix, &prefix, limit, true)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    async fn exceptions_on(&self, day: &str) -> Result<Vec<ExceptionRow>, StoreError> {
        Ok(self
            .prefix_scan::<Versioned<ExceptionRow>>(&after_prefix(&key(&["ex", day])), 10_000)?
            .into_iter()
            .map(|v| v.value)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_behaviour_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("ops.redb")).unwrap();
        crate::ops::testkit::behaviour(&store).await;
    }

    #[tokio::test]
    async fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            crate::ops::testkit::load(&store, 0..20).await;
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let id = crate::ops::testkit::order_id(3);
        assert!(store.order(&id).await.unwrap().is_some());
    }
}

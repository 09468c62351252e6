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
//!
//! Every read is a point lookup or a bounded scan of one key prefix, so
//! it costs the same with a million orders as with ten: the search
//! indexes (`sn` order number, `se` email, `sk` SKU), the active alerts
//! (`aa`) and an exception by id (`xi`) are kept beside the rows they
//! index, in the same commit. An index entry is written and removed with
//! the row version that wins (an order's details or lines replaced by a
//! newer version take their old entries with them), so a search never
//! finds an order by what it no longer has.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::model::{
    line_skus, ActionRow, AlertRow, ExceptionRow, ExceptionState, HistoryEntry, LabelCells,
    LevelRow, LineRow, MovementRow, Mutation, OrderDetails, PlanCells, ReservationRow, SearchField,
    SyncCells, TrackingRow, RECOVERED,
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
        let mut out = Vec::new();
        self.visit(prefix, from, reverse, |k, v| {
            if out.len() >= limit {
                return false;
            }
            out.push((k.to_vec(), v));
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each key and value under `prefix` from `from`, in
    /// key order (reversed: from the prefix's last key down to `from`),
    /// until it returns false.
    fn visit<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        from: &[u8],
        reverse: bool,
        mut f: impl FnMut(&[u8], T) -> bool,
    ) -> Result<(), StoreError> {
        let rt = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = rt.open_table(ROWS).map_err(|e| self.err(e))?;
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
            if !k.value().starts_with(prefix) {
                break;
            }
            let value = serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
            if !f(k.value(), value) {
                break;
            }
        }
        Ok(())
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

/// The key prefix of a search index.
fn search_prefix(by: SearchField) -> &'static str {
    match by {
        SearchField::Number => "sn",
        SearchField::Email => "se",
        SearchField::Sku => "sk",
    }
}

/// The number and email index entries of `d`: `<index> <key> <created
/// at> <order id>` (newest last in key order).
fn detail_entries(d: &OrderDetails) -> Vec<Vec<u8>> {
    [SearchField::Number, SearchField::Email]
        .into_iter()
        .filter_map(|by| {
            let k = d.search_key(by)?;
            Some(key(&[
                search_prefix(by),
                &k,
                &pad(d.created_at),
                &d.order_id,
            ]))
        })
        .collect()
}

/// The SKU index entries of an order's lines at `version`.
fn line_entries(order_id: &str, lines: &[LineRow], version: i64) -> Vec<Vec<u8>> {
    line_skus(lines)
        .into_iter()
        .map(|sku| {
            key(&[
                search_prefix(SearchField::Sku),
                sku,
                &pad(version),
                order_id,
            ])
        })
        .collect()
}

/// Replaces index entries `old` by `new` (both of one order), the value
/// of each being the order id.
fn reindex(
    t: &mut Table<'_>,
    old: Vec<Vec<u8>>,
    new: Vec<Vec<u8>>,
    order_id: &str,
) -> Result<(), String> {
    for k in old.iter().filter(|k| !new.contains(k)) {
        t.remove(k.as_slice()).map_err(|e| e.to_string())?;
    }
    for k in &new {
        put(t, k, &order_id)?;
    }
    Ok(())
}

fn apply_one(t: &mut Table<'_>, m: Mutation) -> Result<(), String> {
    match m {
        Mutation::OrderDetails { details, version } => {
            // The listing and search entries follow the details that win:
            // a rejected older version adds none, and a creation time,
            // number or email that changed (channels that omit the
            // creation time get their update time) moves them.
            let k = key(&["od", &details.order_id]);
            let have = read::<Versioned<OrderDetails>>(t, &k)?;
            let mut old_entries = Vec::new();
            if let Some(have) = &have {
                if have.v > version {
                    return Ok(());
                }
                if have.value.created_at != details.created_at {
                    let old = key(&["ix", &pad(have.value.created_at), &details.order_id]);
                    t.remove(old.as_slice()).map_err(|e| e.to_string())?;
                }
                old_entries = detail_entries(&have.value);
            }
            let idx = key(&["ix", &pad(details.created_at), &details.order_id]);
            put(t, &idx, &details.channel)?;
            reindex(t, old_entries, detail_entries(&details), &details.order_id)?;
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
        } => {
            // The SKU entries are those of the lines that win.
            let k = key(&["ol", &order_id]);
            let mut old_entries = Vec::new();
            if let Some(have) = read::<Versioned<Vec<LineRow>>>(t, &k)? {
                if have.v > version {
                    return Ok(());
                }
                old_entries = line_entries(&order_id, &have.value, have.v);
            }
            reindex(
                t,
                old_entries,
                line_entries(&order_id, &lines, version),
                &order_id,
            )?;
            put(
                t,
                &k,
                &Versioned {
                    v: version,
                    value: lines,
                },
            )
        }
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
            let by_id = key(&["xi", &row.exception_id]);
            put_versioned(t, &by_id, version, row.clone())?;
            let k = key(&["ex", &row.day, &pad(row.raised_at), &row.exception_id]);
            put_versioned(t, &k, version, row)
        }
        Mutation::Action(row) => put(
            t,
            &key(&["ac", &row.day, &pad(row.at), &row.action_id]),
            &row,
        ),
        Mutation::ExceptionState {
            exception_id,
            state,
            version,
        } => put_versioned(t, &key(&["xs", &exception_id]), version, state),
        Mutation::Alert { row, version } => {
            // The active entry follows the alert that wins: there while it
            // is not RECOVERED.
            let k = key(&["al", &row.sku, &row.warehouse_id]);
            if let Some(have) = read::<Versioned<serde_json::Value>>(t, &k)? {
                if have.v > version {
                    return Ok(());
                }
            }
            let active = key(&["aa", &row.sku, &row.warehouse_id]);
            if row.kind == RECOVERED {
                t.remove(active.as_slice()).map_err(|e| e.to_string())?;
            } else {
                put(t, &active, &row)?;
            }
            put(
                t,
                &k,
                &Versioned {
                    v: version,
                    value: row,
                },
            )
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

    async fn exception(&self, exception_id: &str) -> Result<Option<ExceptionRow>, StoreError> {
        Ok(self
            .get::<Versioned<ExceptionRow>>(&key(&["xi", exception_id]))?
            .map(|v| v.value))
    }

    async fn exception_states(
        &self,
        exception_ids: &[String],
    ) -> Result<HashMap<String, ExceptionState>, StoreError> {
        let rt = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = rt.open_table(ROWS).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for id in exception_ids {
            let Some(v) = t
                .get(key(&["xs", id]).as_slice())
                .map_err(|e| self.err(e))?
            else {
                continue;
            };
            let s: Versioned<ExceptionState> =
                serde_json::from_slice(v.value()).map_err(|e| self.err(e))?;
            out.insert(id.clone(), s.value);
        }
        Ok(out)
    }

    async fn actions_on(&self, day: &str) -> Result<Vec<ActionRow>, StoreError> {
        self.prefix_scan(&after_prefix(&key(&["ac", day])), 10_000)
    }

    async fn alerts(&self, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        self.prefix_scan(b"aa\0", limit)
    }

    async fn sku_alerts(&self, sku: &str) -> Result<Vec<AlertRow>, StoreError> {
        Ok(self
            .prefix_scan::<Versioned<AlertRow>>(&after_prefix(&key(&["al", sku])), 1_000)?
            .into_iter()
            .map(|v| v.value)
            .collect())
    }

    async fn inventory_page(
        &self,
        after_sku: Option<&str>,
        skus: usize,
    ) -> Result<Vec<LevelRow>, StoreError> {
        let prefix = b"il\0".to_vec();
        let from = match after_sku {
            // Past every key of that SKU (`il NUL <sku> NUL <warehouse>`),
            // and before any longer SKU it is a prefix of.
            Some(sku) => {
                let mut k = key(&["il", sku]);
                k.push(1);
                k
            }
            None => prefix.clone(),
        };
        let mut out: Vec<LevelRow> = Vec::new();
        let mut seen = 0;
        self.visit(&prefix, &from, false, |_, row: LevelRow| {
            if out.last().is_none_or(|l| l.sku != row.sku) {
                if seen == skus {
                    return false;
                }
                seen += 1;
            }
            out.push(row);
            true
        })?;
        Ok(out)
    }

    async fn find_orders(
        &self,
        by: SearchField,
        value: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let k = by.key(value);
        if k.is_empty() {
            return Ok(Vec::new());
        }
        // Entries end with the creation time (lines version) and the id:
        // newest last, so read backwards. An order is indexed once per
        // key (its entries move with its row).
        let prefix = after_prefix(&key(&[search_prefix(by), &k]));
        Ok(self
            .scan::<String>(&prefix, &prefix, limit, true)?
            .into_iter()
            .map(|(_, id)| id)
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

    /// What the operator console asks, over a store of a million orders
    /// (`CONVEYOR_SCALE_ORDERS` to change): every answer must stay
    /// index-bound. Slow to load (minutes): run it on purpose, in a
    /// release build:
    /// `cargo test --release -p conveyor-sinks --lib console_reads_stay_fast -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "loads a million orders; run on purpose (see the doc)"]
    async fn console_reads_stay_fast_with_a_million_orders() {
        use crate::ops::model::{day_of, mutations, SearchField};
        use crate::ops::testkit::BASE_MS;
        use crate::ops::views;
        use std::time::{Duration, Instant};

        let orders: u64 = std::env::var("CONVEYOR_SCALE_ORDERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("ops.redb")).unwrap();
        let started = Instant::now();
        let chunk = 10_000;
        let mut exceptions = Vec::new();
        for from in (0..orders).step_by(chunk as usize) {
            let events = crate::sample::orders(from..(from + chunk).min(orders), BASE_MS);
            for e in &events {
                if let crate::event::SinkEvent::Exception(x) = e {
                    exceptions.push(x.clone());
                }
            }
            let batch: Vec<Mutation> = events.iter().flat_map(mutations).collect();
            store.apply(batch).await.unwrap();
        }
        // An operator acting on every other exception.
        let actions: Vec<Mutation> = exceptions
            .iter()
            .step_by(2)
            .enumerate()
            .flat_map(|(i, x)| {
                let mut a =
                    conveyor_schemas::samples::operator_action(i as u64, x.raised_at + 60_000);
                a.exception_id = x.exception_id.clone();
                a.order_id = x.order_id.clone();
                mutations(&crate::event::SinkEvent::Action(a))
            })
            .collect();
        store.apply(actions).await.unwrap();
        eprintln!(
            "loaded {orders} orders ({} exceptions) in {:.0} s",
            exceptions.len(),
            started.elapsed().as_secs_f64()
        );

        let n = 300u64;
        let pick = |k: u64| k.wrapping_mul(7_919) % orders;
        let search = |by: &str, q: String| views::SearchQuery {
            by: Some(by.into()),
            q: Some(q),
            limit: 50,
        };
        let mut results: Vec<(&str, Vec<Duration>)> = Vec::new();
        let mut lat = Vec::new();
        for k in 0..n {
            let t = Instant::now();
            let v = views::search(&store, &search("number", format!("#{}", 100_000 + pick(k))))
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert_eq!(v.orders.len(), 1);
        }
        results.push(("search by number", std::mem::take(&mut lat)));
        for k in 0..n {
            let t = Instant::now();
            let v = views::search(
                &store,
                &search("email", format!("Customer{}@example.com", pick(k))),
            )
            .await
            .unwrap();
            lat.push(t.elapsed());
            assert!(!v.orders.is_empty());
        }
        results.push(("search by email", std::mem::take(&mut lat)));
        let skus = [
            "MTG-DMU-BOOSTER",
            "PKM-SV1-ETB",
            "SLEEVE-DS-100",
            "DICE-CHX-7",
            "BINDER-9P",
        ];
        for k in 0..n {
            let t = Instant::now();
            let v = views::search(&store, &search("sku", skus[k as usize % skus.len()].into()))
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert_eq!(v.orders.len(), 50);
        }
        results.push(("search by SKU (50)", std::mem::take(&mut lat)));
        for k in 0..n {
            let x = &exceptions[(k as usize * 31) % exceptions.len()];
            let t = Instant::now();
            let v = views::exceptions_view(&store, &day_of(x.raised_at))
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert!(!v.exceptions.is_empty());
        }
        results.push(("exceptions of a day", std::mem::take(&mut lat)));
        for k in 0..n {
            let x = &exceptions[(k as usize * 31) % exceptions.len()];
            let t = Instant::now();
            let v = views::exception_view(&store, &x.exception_id)
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert!(v.is_some());
        }
        results.push(("exception by id", std::mem::take(&mut lat)));
        for k in 0..n {
            let x = &exceptions[(k as usize * 31) % exceptions.len()];
            let t = Instant::now();
            let v = store
                .actions_on(&day_of(x.raised_at + 60_000))
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert!(v.len() < 10_000);
        }
        results.push(("actions of a day", std::mem::take(&mut lat)));
        for _ in 0..n {
            let t = Instant::now();
            store.alerts(500).await.unwrap();
            lat.push(t.elapsed());
        }
        results.push(("alerts", std::mem::take(&mut lat)));
        for k in 0..n {
            let t = Instant::now();
            views::inventory_page(
                &store,
                &views::InventoryQuery {
                    after: (k % 2 == 1).then(|| skus[k as usize % skus.len()].to_string()),
                    limit: 100,
                },
            )
            .await
            .unwrap();
            lat.push(t.elapsed());
        }
        results.push(("inventory page", std::mem::take(&mut lat)));
        for k in 0..n {
            let t = Instant::now();
            let ids = store
                .find_orders(SearchField::Number, &format!("{}", 100_000 + pick(k)), 50)
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert_eq!(ids.len(), 1);
        }
        results.push(("find_orders by number (ids)", std::mem::take(&mut lat)));
        eprintln!("| query | count | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut slow = Vec::new();
        for (name, mut lat) in results {
            lat.sort_unstable();
            let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
            eprintln!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} |",
                lat.len(),
                ms(p(0.5)),
                ms(p(0.99)),
                ms(lat[lat.len() - 1])
            );
            if p(0.99) >= Duration::from_millis(100) {
                slow.push(name);
            }
        }
        assert!(slow.is_empty(), "p99 of 100 ms or more: {slow:?}");
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

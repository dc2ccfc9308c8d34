//! The embedded store of storages created through the admin API, and of each org's external
//! ID: one redb file in `[registry].data_dir`. redb is pure Rust (no C toolchain in the
//! build), transactional, and crash-safe; our data is a few small records per org. Secrets
//! are sealed (`super::sealed`) before they get here.
//!
//! After an I/O error (a full disk, say) redb refuses every later operation until the
//! database is opened again; the store then reopens it on its next use, so that writes work
//! again as soon as the disk does, without a restart.

mod org_data;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Loaded, StoreError, StoredRow, StoredStorage};

/// `{org}/{storage id}` -> JSON of [`StoredStorage`].
const STORAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("storages");

/// `{org}` -> external ID.
const EXTERNAL_IDS: TableDefinition<&str, &str> = TableDefinition::new("external_ids");

fn fail(what: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |e| StoreError::Unavailable(format!("{what}: {e}"))
}

pub struct EmbeddedStore {
    path: PathBuf,
    /// `None` after an I/O error: reopened on next use.
    db: Mutex<Option<Database>>,
}

/// Whether an error leaves the open database unusable (redb then answers `PreviousIo` to
/// everything) rather than being about one operation.
fn needs_reopen(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_)
            | redb::Error::PreviousIo
            | redb::Error::Corrupted(_)
            | redb::Error::LockPoisoned(_)
            | redb::Error::TransactionPoisoned
            | redb::Error::DatabaseClosed
    )
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/registry.redb`.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("registry.redb");
        let db = EmbeddedStore::open_file(&path)?;
        let store = EmbeddedStore {
            path,
            db: Mutex::new(Some(db)),
        };
        store.write(|tx| {
            tx.open_table(STORAGES)?;
            tx.open_table(EXTERNAL_IDS)?;
            tx.open_table(org_data::USAGE)?;
            tx.open_table(org_data::LIMITS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn open_file(path: &Path) -> Result<Database, StoreError> {
        Database::create(path).map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
    }

    /// Runs `op` on the database, opening it again first if an earlier I/O error closed it.
    fn with<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let mut db = self.db.lock().expect("store lock");
        if db.is_none() {
            *db = Some(EmbeddedStore::open_file(&self.path)?);
            tracing::info!(path = %self.path.display(), "storage registry reopened after an I/O error");
        }
        let result = op(db.as_ref().expect("opened above"));
        if let Err(e) = &result {
            if needs_reopen(e) {
                *db = None;
            }
        }
        result.map_err(fail(what))
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) -> Result<(), StoreError> {
        self.with("write", |db| {
            let tx = db.begin_write()?;
            f(&tx)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Every external ID.
    pub fn external_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.load()?.external_ids)
    }

    /// Hands every stored storage to `visit`.
    pub fn each_storage(&self, visit: &mut (dyn FnMut(StoredRow) + Send)) -> Result<(), StoreError> {
        self.load()?.storages.into_iter().for_each(visit);
        Ok(())
    }

    /// Every stored storage (ordered by org and id) and external ID.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        self.with("read", |db| {
            let tx = db.begin_read()?;
            let mut loaded = Loaded::default();
            for row in tx.open_table(STORAGES)?.iter()? {
                let (key, value) = row?;
                loaded.storages.push(decode(key.value(), value.value()));
            }
            for row in tx.open_table(EXTERNAL_IDS)?.iter()? {
                let (org, id) = row?;
                loaded
                    .external_ids
                    .push((org.value().to_string(), id.value().to_string()));
            }
            for row in tx.open_table(org_data::LIMITS)?.iter()? {
                let (org, limits) = row?;
                loaded
                    .limits
                    .push((org.value().to_string(), limits.value().to_string()));
            }
            Ok(loaded)
        })
    }

    /// One stored storage.
    pub fn get(&self, org: &str, id: &str) -> Result<Option<StoredRow>, StoreError> {
        let key = format!("{org}/{id}");
        self.with("read", |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(STORAGES)?;
            let value = table.get(key.as_str())?;
            Ok(value.map(|v| decode(&key, v.value())))
        })
    }

    /// Stores a new storage; `Exists` when the id is taken.
    pub fn insert(&self, record: &StoredStorage) -> Result<(), StoreError> {
        self.put(record, None)
    }

    /// Replaces a storage still at version `expected`.
    pub fn update(&self, record: &StoredStorage, expected: u64) -> Result<(), StoreError> {
        self.put(record, Some(expected))
    }

    /// Writes `record`: as new (`expected` None) or over the version `expected`.
    fn put(&self, record: &StoredStorage, expected: Option<u64>) -> Result<(), StoreError> {
        let key = format!("{}/{}", record.org, record.id);
        let value = serde_json::to_vec(record).expect("records serialize");
        let mut refused = None;
        self.write(|tx| {
            let mut table = tx.open_table(STORAGES)?;
            let current = table.get(key.as_str())?.map(|v| decode(&key, v.value()).version);
            refused = check(&record.id, current, expected);
            if refused.is_none() {
                table.insert(key.as_str(), value.as_slice())?;
            }
            Ok(())
        })?;
        refused.map_or(Ok(()), Err)
    }

    /// Removes a storage still at version `expected`.
    pub fn delete(&self, org: &str, id: &str, expected: u64) -> Result<(), StoreError> {
        let key = format!("{org}/{id}");
        let mut refused = None;
        self.write(|tx| {
            let mut table = tx.open_table(STORAGES)?;
            let current = table.get(key.as_str())?.map(|v| decode(&key, v.value()).version);
            refused = check(id, current, Some(expected));
            if refused.is_none() {
                table.remove(key.as_str())?;
            }
            Ok(())
        })?;
        refused.map_or(Ok(()), Err)
    }

    /// The org's external ID; `fresh` is stored and returned when it has none.
    pub fn external_id(&self, org: &str, fresh: &str) -> Result<String, StoreError> {
        let mut id = String::new();
        self.write(|tx| {
            let mut table = tx.open_table(EXTERNAL_IDS)?;
            let existing = table.get(org)?.map(|v| v.value().to_string());
            id = match existing {
                Some(existing) => existing,
                None => {
                    table.insert(org, fresh)?;
                    fresh.to_string()
                }
            };
            Ok(())
        })?;
        Ok(id)
    }
}

/// What refuses a write over a storage at `current` (`None`: absent) that expects
/// `expected` (`None`: expects it absent).
fn check(id: &str, current: Option<u64>, expected: Option<u64>) -> Option<StoreError> {
    match (current, expected) {
        (Some(_), None) => Some(StoreError::Exists(id.to_string())),
        (None, Some(_)) => Some(StoreError::Missing(id.to_string())),
        (Some(c), Some(e)) if c != e => Some(StoreError::Stale(id.to_string())),
        _ => None,
    }
}

/// The row stored under `{org}/{id}` (ids never hold a `/`).
fn decode(key: &str, value: &[u8]) -> StoredRow {
    let (org, id) = key.split_once('/').unwrap_or((key, ""));
    StoredRow::decode(org, id, value, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(org: &str, id: &str, version: u64) -> StoredStorage {
        StoredStorage {
            cache: None,
            org: org.into(),
            id: id.into(),
            name: "n".into(),
            provider: "aws".into(),
            buckets: vec!["b-bucket".into()],
            endpoint: None,
            settings: serde_json::json!({
                "region": "us-east-1",
                "credentials": {"type": "access_key", "access_key_id": "AK", "sealed_secret": "sealed"},
            })
            .as_object()
            .cloned()
            .unwrap(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            version,
            mac: None,
        }
    }

    #[test]
    fn insert_load_update_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.insert(&record("acme", "b", 1)).unwrap();
        store.insert(&record("acme", "a", 2)).unwrap();
        store.insert(&record("globex", "a", 3)).unwrap();
        assert!(matches!(
            store.insert(&record("acme", "a", 4)),
            Err(StoreError::Exists(_))
        ));
        let ids: Vec<_> = store
            .load()
            .unwrap()
            .storages
            .into_iter()
            .map(|r| format!("{}/{}", r.org, r.id))
            .collect();
        assert_eq!(ids, ["acme/a", "acme/b", "globex/a"]);
        assert!(matches!(
            store.update(&record("acme", "a", 5), 9),
            Err(StoreError::Stale(_))
        ));
        store.update(&record("acme", "a", 5), 2).unwrap();
        assert_eq!(store.get("acme", "a").unwrap().unwrap().version, 5);
        let copied = store.get("acme", "b").unwrap().unwrap().record.unwrap();
        assert_eq!((copied.org.as_str(), copied.id.as_str()), ("acme", "b"));
        assert!(matches!(store.delete("acme", "a", 2), Err(StoreError::Stale(_))));
        store.delete("acme", "a", 5).unwrap();
        assert!(matches!(store.delete("acme", "a", 5), Err(StoreError::Missing(_))));
        drop(store);
        let reopened = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(reopened.load().unwrap().storages.len(), 2);
    }

    #[test]
    fn external_ids_are_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.external_id("acme", "first").unwrap(), "first");
        assert_eq!(store.external_id("acme", "second").unwrap(), "first");
        assert_eq!(store.external_id("globex", "other").unwrap(), "other");
        assert_eq!(store.load().unwrap().external_ids.len(), 2);
    }
}

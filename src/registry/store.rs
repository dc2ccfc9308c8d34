//! The embedded store of storages created through the admin API, and of each org's external
//! ID: one redb file in `[registry].data_dir`. redb is pure Rust (no C toolchain in the
//! build), transactional, and crash-safe; our data is a few small records per org. Secrets
//! are sealed (`super::sealed`) before they get here.
//!
//! After an I/O error (a full disk, say) redb refuses every later operation until the
//! database is opened again; the store then reopens it on its next use, so that writes work
//! again as soon as the disk does, without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// `{org}/{storage id}` -> JSON of [`StoredStorage`].
const STORAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("storages");

/// `{org}` -> external ID.
const EXTERNAL_IDS: TableDefinition<&str, &str> = TableDefinition::new("external_ids");

/// A storage as stored. The secret is sealed; nothing here is secret in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredStorage {
    pub org: String,
    pub id: String,
    pub name: String,
    /// `aws`, `s3_compatible` or `gcs`.
    pub provider: String,
    pub buckets: Vec<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub credentials: StoredCredentials,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredCredentials {
    AccessKey {
        access_key_id: String,
        /// base64 of nonce || AES-256-GCM ciphertext || tag.
        sealed_secret: String,
    },
    AssumeRole {
        role_arn: String,
        external_id: String,
    },
}

/// A storage failure, for the operator's log.
#[derive(Debug, thiserror::Error)]
#[error("storage registry {0}")]
pub struct StoreError(String);

fn fail(what: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |e| StoreError(format!("{what}: {e}"))
}

pub struct Store {
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

impl Store {
    /// Opens (or creates) `dir/registry.redb`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("registry.redb");
        let db = Store::open_file(&path)?;
        let store = Store {
            path,
            db: Mutex::new(Some(db)),
        };
        store.write(|tx| {
            tx.open_table(STORAGES)?;
            tx.open_table(EXTERNAL_IDS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn open_file(path: &Path) -> Result<Database, StoreError> {
        Database::create(path).map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))
    }

    /// Runs `op` on the database, opening it again first if an earlier I/O error closed it.
    fn with<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let mut db = self.db.lock().expect("store lock");
        if db.is_none() {
            *db = Some(Store::open_file(&self.path)?);
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

    /// Every stored storage, ordered by org and id.
    pub fn all(&self) -> Result<Vec<StoredStorage>, StoreError> {
        self.with("read", |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(STORAGES)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let record = serde_json::from_slice(value.value())
                    .map_err(|e| redb::Error::Corrupted(format!("record {}: {e}", key.value())))?;
                out.push(record);
            }
            Ok(out)
        })
    }

    /// Inserts or replaces a storage.
    pub fn put(&self, record: &StoredStorage) -> Result<(), StoreError> {
        let key = format!("{}/{}", record.org, record.id);
        let value = serde_json::to_vec(record).expect("records serialize");
        self.write(|tx| {
            tx.open_table(STORAGES)?.insert(key.as_str(), value.as_slice())?;
            Ok(())
        })
    }

    /// Removes a storage; `false` when there was none.
    pub fn delete(&self, org: &str, id: &str) -> Result<bool, StoreError> {
        let key = format!("{org}/{id}");
        let mut existed = false;
        self.write(|tx| {
            existed = tx.open_table(STORAGES)?.remove(key.as_str())?.is_some();
            Ok(())
        })?;
        Ok(existed)
    }

    /// The org's external ID, created with `generate` on first use and stable afterwards.
    pub fn external_id(&self, org: &str, generate: impl FnOnce() -> String) -> Result<String, StoreError> {
        let mut id = String::new();
        self.write(|tx| {
            let mut table = tx.open_table(EXTERNAL_IDS)?;
            let existing = table.get(org)?.map(|v| v.value().to_string());
            id = match existing {
                Some(existing) => existing,
                None => {
                    let fresh = generate();
                    table.insert(org, fresh.as_str())?;
                    fresh
                }
            };
            Ok(())
        })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(org: &str, id: &str) -> StoredStorage {
        StoredStorage {
            org: org.into(),
            id: id.into(),
            name: "n".into(),
            provider: "aws".into(),
            buckets: vec!["b-bucket".into()],
            region: "us-east-1".into(),
            endpoint: None,
            path_style: false,
            credentials: StoredCredentials::AccessKey {
                access_key_id: "AK".into(),
                sealed_secret: "sealed".into(),
            },
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn put_list_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put(&record("acme", "b")).unwrap();
        store.put(&record("acme", "a")).unwrap();
        store.put(&record("globex", "a")).unwrap();
        let ids: Vec<_> = store
            .all()
            .unwrap()
            .into_iter()
            .map(|r| format!("{}/{}", r.org, r.id))
            .collect();
        assert_eq!(ids, ["acme/a", "acme/b", "globex/a"]);
        assert!(store.delete("acme", "a").unwrap());
        assert!(!store.delete("acme", "a").unwrap());
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.all().unwrap().len(), 2);
    }

    #[test]
    fn external_ids_are_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.external_id("acme", || "first".into()).unwrap(), "first");
        assert_eq!(store.external_id("acme", || "second".into()).unwrap(), "first");
        assert_eq!(store.external_id("globex", || "other".into()).unwrap(), "other");
    }
}

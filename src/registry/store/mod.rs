//! Where API-created storages and orgs' external IDs are kept: the seam between the registry
//! and its two stores, the embedded one (`embedded`, redb in `data_dir`, one replica) and the
//! shared one (`postgres`, every replica). Both keep the same records, sealed before they
//! get here, and the same rules: an insert of an existing id, or an update or delete from a
//! stale version, is refused.

pub mod embedded;
pub mod postgres;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedStore;
pub use postgres::PostgresStore;

/// A storage as stored. Secrets are sealed; nothing here is secret in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredStorage {
    pub org: String,
    pub id: String,
    pub name: String,
    /// `aws`, `s3_compatible`, `gcs` or `azure`.
    pub provider: String,
    pub buckets: Vec<String>,
    pub endpoint: Option<String>,
    /// The provider's settings and credentials, as its module stores them (S3: `region`,
    /// `pathStyle`, `credentials`, the names records had before there were providers).
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// A fresh random value on every write: what updates and deletes compare.
    #[serde(default)]
    pub version: u64,
    /// The record's authentication tag under the master key (`super::record`); records
    /// written before records were authenticated have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `Some(false)` for a storage the edge cache may not keep; absent otherwise (records
    /// written before the cache existed read as cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
}

/// A stored storage as read: the row's key and version always, its record when it could be
/// read. The record's `org` and `id` are the row's key, whatever its JSON says, so that a
/// record copied under another key is judged as what it claims to be there (and refused:
/// its authentication is bound to the key it was written under).
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub org: String,
    pub id: String,
    pub version: u64,
    /// The record, or why it cannot be read (malformed JSON).
    pub record: Result<StoredStorage, String>,
}

impl StoredRow {
    /// The row of `json`, stored under `org`/`id` at `version` (`None`: the version the
    /// record itself holds, for the embedded store).
    pub fn decode(org: &str, id: &str, json: &[u8], version: Option<u64>) -> StoredRow {
        let record = serde_json::from_slice::<StoredStorage>(json)
            .map(|mut r| {
                r.org = org.to_string();
                r.id = id.to_string();
                if let Some(v) = version {
                    r.version = v;
                }
                r
            })
            .map_err(|e| format!("the stored record is not valid: {e}"));
        let version = version.unwrap_or_else(|| {
            // A record that does not parse may still name its version.
            record.as_ref().map(|r| r.version).unwrap_or_else(|_| {
                serde_json::from_slice::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
                    .unwrap_or(0)
            })
        });
        StoredRow {
            org: org.to_string(),
            id: id.to_string(),
            version,
            record,
        }
    }
}

/// Everything a store holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub storages: Vec<StoredRow>,
    /// (org, external ID)
    pub external_ids: Vec<(String, String)>,
    /// (org, limits JSON) set through the admin API.
    pub limits: Vec<(String, String)>,
}

/// The requests served and body bytes sent for one storage on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    pub org: String,
    pub storage: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub requests: u64,
    pub bytes: u64,
    /// Of `bytes`, and for the edge cache's fetches, what came from the bucket.
    pub upstream_bytes: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage `{0}` already exists")]
    Exists(String),
    #[error("no storage `{0}`")]
    Missing(String),
    #[error("storage `{0}` changed meanwhile")]
    Stale(String),
    /// The store cannot be read or written now (I/O, database down); nothing was changed.
    #[error("storage registry {0}")]
    Unavailable(String),
}

/// A fresh version for a write: random, never 0 (the version of records written before
/// versions existed).
pub fn new_version() -> u64 {
    loop {
        let v = u64::from_le_bytes(crate::hex::random_bytes());
        if v != 0 {
            return v;
        }
    }
}

/// The store in use.
pub enum Store {
    Embedded(EmbeddedStore),
    /// Boxed: its connection settings and pool are large, and there is one store per process.
    Postgres(Box<PostgresStore>),
}

impl Store {
    /// Every stored storage and external ID.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        match self {
            Store::Embedded(s) => s.load(),
            Store::Postgres(s) => s.load().await,
        }
    }

    /// Every external ID.
    pub async fn external_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Embedded(s) => s.external_ids(),
            Store::Postgres(s) => s.external_ids().await,
        }
    }

    /// Hands every stored storage to `visit`, without holding them all at once.
    pub async fn each_storage(&self, visit: &mut (dyn FnMut(StoredRow) + Send)) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.each_storage(visit),
            Store::Postgres(s) => s.each_storage(visit).await,
        }
    }

    /// One stored storage, if there is one.
    pub async fn get(&self, org: &str, id: &str) -> Result<Option<StoredRow>, StoreError> {
        match self {
            Store::Embedded(s) => s.get(org, id),
            Store::Postgres(s) => s.get(org, id).await,
        }
    }

    /// Stores a new storage; [`StoreError::Exists`] if its id is taken.
    pub async fn insert(&self, record: &StoredStorage) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.insert(record),
            Store::Postgres(s) => s.insert(record).await,
        }
    }

    /// Replaces a storage that is still at version `expected`.
    pub async fn update(&self, record: &StoredStorage, expected: u64) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.update(record, expected),
            Store::Postgres(s) => s.update(record, expected).await,
        }
    }

    /// Removes a storage that is still at version `expected`.
    pub async fn delete(&self, org: &str, id: &str, expected: u64) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.delete(org, id, expected),
            Store::Postgres(s) => s.delete(org, id, expected).await,
        }
    }

    /// The org's external ID: the stored one, or `fresh`, stored now, if it has none yet.
    pub async fn external_id(&self, org: &str, fresh: &str) -> Result<String, StoreError> {
        match self {
            Store::Embedded(s) => s.external_id(org, fresh),
            Store::Postgres(s) => s.external_id(org, fresh).await,
        }
    }

    /// The shared store, when this is it.
    pub fn postgres(&self) -> Option<&PostgresStore> {
        match self {
            Store::Postgres(s) => Some(s),
            Store::Embedded(_) => None,
        }
    }

    /// Adds `counts` to the stored usage.
    pub async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.add_usage(counts),
            Store::Postgres(s) => s.add_usage(counts).await,
        }
    }

    /// The org's usage for days `from..=to` (`YYYY-MM-DD`).
    pub async fn usage(&self, org: &str, from: &str, to: &str) -> Result<Vec<UsageCount>, StoreError> {
        match self {
            Store::Embedded(s) => s.usage(org, from, to),
            Store::Postgres(s) => s.usage(org, from, to).await,
        }
    }

    /// Sets (`Some`, JSON) or removes the org's limits.
    pub async fn put_limits(&self, org: &str, limits: Option<&str>) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.put_limits(org, limits),
            Store::Postgres(s) => s.put_limits(org, limits).await,
        }
    }

    /// Every org's limits (JSON).
    pub async fn all_limits(&self) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Embedded(s) => Ok(s.load()?.limits),
            Store::Postgres(s) => s.all_limits().await,
        }
    }
}

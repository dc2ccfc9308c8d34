//! Orgs and their storages as served (`entry`), and [`Storages`], the live registry: the
//! configuration file's storages (read-only) merged with those created through the admin
//! API, kept in a store (`store`: embedded redb, or PostgreSQL shared by every replica, whose
//! changes `replication` follows), secrets sealed (`sealed`, `record`).
//!
//! The data plane reads one org at a time, lock-free of any writer: an org's entry is
//! immutable and replaced whole when one of its storages changes, so a change costs a copy
//! of that org's map of pointers, never a rebuild of the registry. Every change is persisted
//! first and published second: a change the store refused never shows on the data plane,
//! and one that shows survives a restart.

pub mod entry;
mod purges;
pub mod record;
mod replication;
pub mod store;
pub mod tools;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use dashmap::DashMap;
use tokio::sync::Notify;

use crate::config::{Config, Org};
use crate::limits::OrgLimits;
use crate::sealed::Keys;
use crate::storage::Storage;
pub use entry::{OrgEntry, Source, StorageEntry};
pub use purges::PurgeHook;
use store::{EmbeddedStore, PostgresStore, Store, StoreError, StoredRow, StoredStorage};

/// Why a registry operation failed; the admin API maps these to its error codes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no storage `{0}` in this organization")]
    NotFound(String),
    /// What is read-only, in words: "storage `main`", "the limits of acme".
    #[error("{0} is defined in the configuration file and cannot be changed through the API")]
    ReadOnly(String),
    #[error("a storage `{0}` already exists in this organization")]
    Conflict(String),
    #[error("storage `{0}` changed since it was read")]
    Changed(String),
    #[error("the operator has not set [registry].master_key: storages cannot be created or changed through the API")]
    Locked,
    /// The store cannot be read or written now (full disk, database down); nothing changed.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Startup(String),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> RegistryError {
        match e {
            StoreError::Exists(id) => RegistryError::Conflict(id),
            StoreError::Missing(id) => RegistryError::NotFound(id),
            StoreError::Stale(id) => RegistryError::Changed(id),
            StoreError::Unavailable(m) => RegistryError::Unavailable(m),
        }
    }
}

/// A stored row that cannot be served, at the version it was read at.
#[derive(Debug, Clone)]
struct BadRow {
    version: u64,
}

/// Told of every served storage that changed or went, by org and id, with the revision it
/// has now (`None`: gone), wherever the change came from: the edge cache drops what it
/// holds of the old revisions.
pub type RetiredHook = Box<dyn Fn(&str, &str, Option<u64>) + Send + Sync>;

/// The live registry: orgs for the data plane, writes for the admin API.
pub struct Storages {
    /// Every org the gateway serves, by id.
    orgs: DashMap<String, Arc<OrgEntry>>,
    /// Orgs' external IDs (the stored ones, mirrored).
    external_ids: DashMap<String, String>,
    /// Orgs' limits set through the admin API (the stored ones, mirrored).
    api_limits: DashMap<String, Arc<OrgLimits>>,
    /// Stored rows this replica cannot read (corrupt, altered, sealed under a dropped key, a
    /// newer version's provider), by org and id: skipped and reported, never served.
    bad_rows: DashMap<(String, String), BadRow>,
    /// `None`: no master key and no stored data; only config storages.
    store: Option<Store>,
    keys: Option<Arc<Keys>>,
    /// One write (or applied remote change) at a time: a change is committed and published
    /// before the next one reads what it changes.
    writes: tokio::sync::Mutex<()>,
    /// Whether the stored storages have been loaded once (at once for the embedded store).
    ready: AtomicBool,
    loaded: Notify,
    retired: std::sync::OnceLock<RetiredHook>,
    purge_hook: std::sync::OnceLock<PurgeHook>,
    /// The last stored cache purge applied (`-1`: not known yet).
    purged_to: std::sync::atomic::AtomicI64,
}

impl Storages {
    /// The master key that seals stored secrets, when configured.
    fn master_key(&self) -> Option<&crate::sealed::MasterKey> {
        self.keys.as_deref().map(|k| &k.current)
    }

    /// The config's storages, and the stored ones: loaded now from the embedded store, or
    /// followed in the background from the shared registry, in which case the registry is
    /// [`ready`](Storages::ready) once loaded. A stored row that cannot be read (corrupt,
    /// altered, sealed under a key no longer configured) is skipped and reported, in a log line
    /// naming it, `/readyz` and `/metrics`: it never keeps the others from being served.
    pub async fn open(config: &Config) -> Result<Arc<Storages>, RegistryError> {
        let registry = &config.registry;
        let keys = registry.master_keys.clone();
        let file = registry.data_dir.join("registry.redb");
        let store = match &registry.url {
            Some(url) => {
                let extra = match &config.server.upstream_ca_file {
                    Some(path) => crate::tls::certificates(path).map_err(|e| RegistryError::Startup(e.to_string()))?,
                    None => Vec::new(),
                };
                Some(Store::Postgres(Box::new(
                    PostgresStore::new(url, &extra).map_err(RegistryError::Startup)?,
                )))
            }
            None if keys.is_some() || file.exists() => Some(Store::Embedded(
                EmbeddedStore::open(&registry.data_dir).map_err(|e| RegistryError::Startup(e.to_string()))?,
            )),
            None => None,
        };
        if matches!(store, Some(Store::Embedded(_))) && keys.is_none() {
            return Err(RegistryError::Startup(format!(
                "{} holds storages created through the admin API, but [registry].master_key is not set",
                file.display()
            )));
        }
        let storages = Arc::new(Storages {
            orgs: DashMap::new(),
            external_ids: DashMap::new(),
            api_limits: DashMap::new(),
            bad_rows: DashMap::new(),
            store,
            keys,
            writes: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(false),
            loaded: Notify::new(),
            retired: std::sync::OnceLock::new(),
            purge_hook: std::sync::OnceLock::new(),
            purged_to: std::sync::atomic::AtomicI64::new(-1),
        });
        storages.reload_config(&config.orgs);
        match &storages.store {
            Some(Store::Embedded(_)) => {
                storages.reload_stored().await?;
                storages.mark_ready();
            }
            Some(Store::Postgres(_)) => {
                tokio::spawn(replication::follow(Arc::downgrade(&storages), registry.resync_interval));
            }
            None => storages.mark_ready(),
        }
        Ok(storages)
    }

    /// The org `id` as it is now.
    pub fn org(&self, id: &str) -> Option<Arc<OrgEntry>> {
        self.orgs.get(id).map(|o| o.value().clone())
    }

    /// Whether the stored storages have been loaded at least once.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Completes once [`Storages::ready`].
    pub async fn loaded(&self) {
        loop {
            let notified = self.loaded.notified();
            if self.ready() {
                return;
            }
            notified.await;
        }
    }

    fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.loaded.notify_waiters();
    }

    /// Replaces the configuration file's orgs (SIGHUP); API storages stay as they are,
    /// except that a storage the file now defines with the same id is served from the file.
    pub fn reload_config(&self, orgs: &[Org]) {
        let by_id: HashMap<&str, &Org> = orgs.iter().map(|o| (o.id.as_str(), o)).collect();
        let mut ids: Vec<String> = self.orgs.iter().map(|o| o.key().clone()).collect();
        ids.extend(orgs.iter().map(|o| o.id.clone()));
        ids.sort();
        ids.dedup();
        for id in ids {
            let file = by_id.get(id.as_str()).copied();
            self.update_org(&id, |current| current.with_config(file, self.master_key()));
            if let Some(org) = self.org(&id) {
                for storage in org.shadowed() {
                    tracing::warn!(
                        org = %id,
                        storage,
                        "the configuration file defines a storage with the id of one created through the admin API; the file's is served"
                    );
                }
            }
        }
    }

    /// Sets what is told of storages that changed or went ([`RetiredHook`]); once.
    pub fn on_retired(&self, hook: RetiredHook) {
        let _ = self.retired.set(hook);
    }

    /// Replaces org `id` with `change(current)` (an empty org when it has none); an org
    /// that nothing defines any more is forgotten.
    fn update_org(&self, id: &str, change: impl FnOnce(&OrgEntry) -> OrgEntry) {
        use dashmap::mapref::entry::Entry;
        let (before, after) = match self.orgs.entry(id.to_string()) {
            Entry::Occupied(mut slot) => {
                let before = slot.get().clone();
                let next = Arc::new(change(&before));
                if next.is_empty() {
                    slot.remove();
                } else {
                    slot.insert(next.clone());
                }
                (Some(before), next)
            }
            Entry::Vacant(slot) => {
                let next = Arc::new(change(&OrgEntry::from_config(id, None, None)));
                if !next.is_empty() {
                    slot.insert(next.clone());
                }
                (None, next)
            }
        };
        if let (Some(before), Some(hook)) = (before, self.retired.get()) {
            for old in before.storages() {
                let id_of = &old.storage.id;
                let now = after.storage(id_of).map(|e| e.revision);
                if now != Some(old.revision) {
                    hook(id, id_of, now);
                }
            }
        }
    }

    /// Whether storages can be created or changed through the API (a master key is set).
    pub fn writable(&self) -> Result<(), RegistryError> {
        self.writer().map(|_| ())
    }

    fn writer(&self) -> Result<(&Store, &Keys), RegistryError> {
        match (&self.store, &self.keys) {
            (Some(store), Some(keys)) => Ok((store, keys)),
            _ => Err(RegistryError::Locked),
        }
    }

    /// Adds a storage to `org`. Its id may be neither an API storage's nor a config-file
    /// storage's of the org.
    pub async fn create(&self, org: &str, storage: Storage) -> Result<Arc<StorageEntry>, RegistryError> {
        let (store, keys) = self.writer()?;
        let _one_at_a_time = self.writes.lock().await;
        if self.org(org).is_some_and(|o| o.storage(&storage.id).is_some()) {
            return Err(RegistryError::Conflict(storage.id));
        }
        let now = now_rfc3339();
        let record = record::seal(org, &storage, &keys.current, &now, &now, store::new_version());
        store.insert(&record).await?;
        Ok(self.publish(org, storage, &record))
    }

    /// Replaces API storage `id` of `org` with `storage`, if it is still at `version` (the
    /// version `storage` was derived from). Config storages are read-only.
    pub async fn replace(
        &self,
        org: &str,
        id: &str,
        version: u64,
        storage: Storage,
    ) -> Result<Arc<StorageEntry>, RegistryError> {
        let (store, keys) = self.writer()?;
        let _one_at_a_time = self.writes.lock().await;
        let current = self.api_entry(org, id)?;
        if current.version != version {
            return Err(RegistryError::Changed(id.to_string()));
        }
        let created = current.created_at.clone().unwrap_or_else(now_rfc3339);
        let record = record::seal(
            org,
            &storage,
            &keys.current,
            &created,
            &now_rfc3339(),
            store::new_version(),
        );
        store.update(&record, version).await?;
        Ok(self.publish(org, storage, &record))
    }

    /// Removes API storage `id` of `org`, if it is still at `version` (`None`: whatever it is).
    pub async fn delete(&self, org: &str, id: &str, version: Option<u64>) -> Result<(), RegistryError> {
        let (store, _) = self.writer()?;
        let _one_at_a_time = self.writes.lock().await;
        let current = self.api_entry(org, id)?;
        if version.is_some_and(|v| v != current.version) {
            return Err(RegistryError::Changed(id.to_string()));
        }
        store.delete(org, id, current.version).await?;
        self.update_org(org, |o| o.without_api(id));
        Ok(())
    }

    /// Removes stored storage `id` of `org` if it is a row this replica cannot read (so that
    /// an operator can delete what was damaged or planted in the database); `false` when it
    /// is no such row.
    pub async fn delete_unreadable(&self, org: &str, id: &str) -> Result<bool, RegistryError> {
        let (store, _) = self.writer()?;
        let _one_at_a_time = self.writes.lock().await;
        let key = (org.to_string(), id.to_string());
        let Some(version) = self.bad_rows.get(&key).map(|b| b.version) else {
            return Ok(false);
        };
        store.delete(org, id, version).await?;
        self.bad_rows.remove(&key);
        tracing::info!(org, storage = id, "an unreadable stored storage was deleted");
        Ok(true)
    }

    /// Reads storage `id` of `org` from the store again (another replica may have changed
    /// it and its notice not arrived yet).
    pub async fn refresh(&self, org: &str, id: &str) -> Result<(), RegistryError> {
        let (store, keys) = self.writer()?;
        let _one_at_a_time = self.writes.lock().await;
        let row = store.get(org, id).await?;
        self.apply(org, id, row, keys);
        Ok(())
    }

    /// The served API storage `id` of `org`: NotFound, or ReadOnly for a config storage.
    fn api_entry(&self, org: &str, id: &str) -> Result<Arc<StorageEntry>, RegistryError> {
        let org = self.org(org).ok_or_else(|| RegistryError::NotFound(id.to_string()))?;
        match org.storage(id) {
            Some(e) if e.source == Source::Config => Err(RegistryError::ReadOnly(format!("storage `{id}`"))),
            Some(e) => Ok(e.clone()),
            None => Err(RegistryError::NotFound(id.to_string())),
        }
    }

    /// Serves `storage` of `org` as stored in `record`.
    fn publish(&self, org: &str, storage: Storage, record: &StoredStorage) -> Arc<StorageEntry> {
        let entry = Arc::new(StorageEntry::from_api(
            org,
            storage,
            record.created_at.clone(),
            record.updated_at.clone(),
            record.version,
        ));
        self.update_org(org, |o| o.with_api(entry.clone()));
        entry
    }

    /// The version of storage `id` of `org` as this replica holds it: served, or known to be
    /// unreadable at that version.
    fn held_version(&self, org: &str, id: &str) -> Option<u64> {
        self.org(org)
            .and_then(|o| o.api_storage(id).map(|e| e.version))
            .or_else(|| self.bad_rows.get(&(org.to_string(), id.to_string())).map(|b| b.version))
    }

    /// Makes storage `id` of `org` what the store says: `row`, or gone. A row that cannot be
    /// read is not served (whatever was served before under that id stops) and is reported;
    /// it never keeps the other rows from being applied.
    /// Says whether anything changed.
    fn apply(&self, org: &str, id: &str, row: Option<StoredRow>, keys: &Keys) -> bool {
        let key = (org.to_string(), id.to_string());
        match row {
            None => {
                let was_bad = self.bad_rows.remove(&key).is_some();
                let held = self.org(org).is_some_and(|o| o.api_storage(id).is_some());
                if held {
                    self.update_org(org, |o| o.without_api(id));
                }
                was_bad || held
            }
            Some(row) if self.held_version(org, id) != Some(row.version) => {
                match self.open_row(&row, keys) {
                    Ok((storage, record)) => {
                        self.bad_rows.remove(&key);
                        self.publish(org, storage, &record);
                    }
                    Err(why) => {
                        self.update_org(org, |o| o.without_api(id));
                        self.skip(row, &why);
                    }
                }
                true
            }
            Some(_) => false,
        }
    }

    /// Remembers a row that cannot be served, and says so once per version.
    fn skip(&self, row: StoredRow, why: &str) {
        let key = (row.org, row.id);
        let known = self.bad_rows.get(&key).is_some_and(|b| b.version == row.version);
        if !known {
            tracing::warn!(org = %key.0, storage = %key.1, problem = why, "a stored storage cannot be read; it is skipped, the others are served");
        }
        self.bad_rows.insert(key, BadRow { version: row.version });
    }

    /// How many stored rows this replica cannot read (`/readyz`, `/metrics`).
    pub fn bad_rows(&self) -> usize {
        self.bad_rows.len()
    }

    /// The storage of a stored row, with its org's own external ID when it delegates, or why
    /// it cannot be served.
    fn open_row(&self, row: &StoredRow, keys: &Keys) -> Result<(Storage, StoredStorage), String> {
        let record = row.record.as_ref().map_err(Clone::clone)?;
        let storage = self.open_record(record, keys).map_err(|e| e.to_string())?;
        Ok((storage, record.clone()))
    }

    /// The storage of a stored record, with its org's own external ID when it delegates.
    fn open_record(&self, record: &StoredStorage, keys: &Keys) -> Result<Storage, RegistryError> {
        let mut storage = record::open(record, keys).map_err(|e| RegistryError::Startup(e.to_string()))?;
        if let Some(external_id) = storage.provider.external_id_mut() {
            match self.external_ids.get(&record.org) {
                Some(own) if *own == *external_id => {}
                own => {
                    // A delegated storage assumes its role with its org's external ID and no
                    // other: one stored with another (before the admin API refused foreign
                    // IDs) could otherwise use another org's role. Without an ID of its org
                    // yet, it gets none that could match a trust policy.
                    let own = own.map(|o| o.value().clone()).unwrap_or_default();
                    tracing::warn!(
                        org = %record.org,
                        storage = %record.id,
                        "this storage was stored with an external ID other than its organization's; it now uses the organization's (GET /admin/v1/orgs/ORG/external-id), which its role's trust policy must name"
                    );
                    *external_id = own;
                }
            }
        }
        Ok(storage)
    }

    /// Replaces every API storage and external ID with what the store holds, storage by
    /// storage as the store hands them over.
    async fn reload_stored(&self) -> Result<usize, RegistryError> {
        let store = self.store.as_ref().ok_or(RegistryError::Locked)?;
        let keys = self.keys.as_ref().ok_or_else(|| {
            RegistryError::Startup("the registry holds storages, but [registry].master_key is not set".into())
        })?;
        let external_ids = store.external_ids().await?;
        self.external_ids.clear();
        for (org, id) in external_ids {
            self.external_ids.insert(org, id);
        }
        self.reload_limits().await?;
        let mut by_org: HashMap<String, Vec<Arc<StorageEntry>>> = HashMap::new();
        let mut bad = Vec::new();
        let mut count = 0;
        store
            .each_storage(&mut |row| match self.open_row(&row, keys) {
                Ok((storage, record)) => {
                    count += 1;
                    let org = record.org;
                    let entry =
                        StorageEntry::from_api(&org, storage, record.created_at, record.updated_at, record.version);
                    by_org.entry(org).or_default().push(Arc::new(entry));
                }
                Err(why) => bad.push((row, why)),
            })
            .await?;
        // Not one row opens, and rows have secrets no configured key opens: the master key is
        // wrong, which must fail loudly rather than serve no API storage at all.
        let foreign_keys = bad
            .iter()
            .filter(|(row, _)| {
                row.record
                    .as_ref()
                    .is_ok_and(|r| record::sealed_with_other_keys(r, keys))
            })
            .count();
        if count == 0 && foreign_keys > 0 {
            return Err(RegistryError::Startup(format!(
                "[registry].master_key is not the master key the {foreign_keys} stored storages were sealed with (a previous key belongs in previous_master_keys)"
            )));
        }
        let unreadable: std::collections::HashSet<(String, String)> =
            bad.iter().map(|(r, _)| (r.org.clone(), r.id.clone())).collect();
        self.bad_rows.retain(|key, _| unreadable.contains(key));
        for (row, why) in bad {
            self.skip(row, &why);
        }
        let mut ids: Vec<String> = self.orgs.iter().map(|o| o.key().clone()).collect();
        ids.extend(by_org.keys().cloned());
        ids.sort();
        ids.dedup();
        for id in ids {
            let entries = by_org.remove(&id).unwrap_or_default();
            self.update_org(&id, |o| o.with_api_storages(entries));
        }
        Ok(count)
    }

    /// The store of API storages, usage and limits, if there is one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The org's limits: the configuration file's, else the admin API's.
    pub fn limits(&self, org: &str) -> Option<Arc<OrgLimits>> {
        self.org(org)
            .and_then(|o| o.config_limits.clone())
            .or_else(|| self.api_limits.get(org).map(|l| l.value().clone()))
    }

    /// Whether the configuration file sets the org's limits (then the API cannot).
    pub fn limits_in_config(&self, org: &str) -> bool {
        self.org(org).is_some_and(|o| o.config_limits.is_some())
    }

    /// Sets (`Some`) or removes the org's limits through the admin API: stored first, then
    /// in effect.
    pub async fn set_limits(&self, org: &str, limits: Option<OrgLimits>) -> Result<(), RegistryError> {
        let store = self.store.as_ref().ok_or(RegistryError::Locked)?;
        if self.limits_in_config(org) {
            return Err(RegistryError::ReadOnly(format!("the limits of {org}")));
        }
        let _one_at_a_time = self.writes.lock().await;
        let json = limits
            .as_ref()
            .map(|l| serde_json::to_string(l).expect("limits serialize"));
        store.put_limits(org, json.as_deref()).await?;
        self.hold_limits(org, json.as_deref());
        Ok(())
    }

    /// Mirrors stored limits (`None`: removed); a record that does not parse is skipped.
    fn hold_limits(&self, org: &str, json: Option<&str>) {
        match json.map(serde_json::from_str::<OrgLimits>) {
            Some(Ok(limits)) => {
                self.api_limits.insert(org.to_string(), Arc::new(limits));
            }
            Some(Err(e)) => tracing::warn!(org, error = %e, "stored limits do not parse; ignored"),
            None => {
                self.api_limits.remove(org);
            }
        }
    }

    /// Replaces every held API limit with the stored ones.
    async fn reload_limits(&self) -> Result<(), RegistryError> {
        let Some(store) = &self.store else { return Ok(()) };
        let stored = store.all_limits().await?;
        let orgs: std::collections::HashSet<&str> = stored.iter().map(|(o, _)| o.as_str()).collect();
        self.api_limits.retain(|org, _| orgs.contains(org.as_str()));
        for (org, json) in &stored {
            self.hold_limits(org, Some(json));
        }
        Ok(())
    }

    /// The org's external ID if it has one already (never creates one).
    pub fn known_external_id(&self, org: &str) -> Option<String> {
        self.external_ids.get(org).map(|id| id.value().clone())
    }

    /// The org's external ID for trust policies: 32 random bytes, base64url (43 characters),
    /// generated on first request and stable afterwards, the same on every replica.
    pub async fn external_id(&self, org: &str) -> Result<String, RegistryError> {
        if let Some(id) = self.external_ids.get(org) {
            return Ok(id.value().clone());
        }
        let (store, _) = self.writer()?;
        let id = store.external_id(org, &generate_external_id()).await?;
        self.external_ids.insert(org.to_string(), id.clone());
        Ok(id)
    }
}

fn generate_external_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::hex::random_bytes::<32>())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

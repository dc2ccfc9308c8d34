//! Orgs and their storages. [`Registry`] is an immutable snapshot indexed for the request
//! path (one hash lookup per id, each storage's credential source prepared). [`Storages`]
//! merges the configuration file's storages (read-only) with those created through the
//! admin API (persisted in `store`, secrets sealed by `sealed`), and swaps in a new snapshot
//! on every change, so the data plane sees it on its next request without a restart.

pub mod record;
pub mod sealed;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::Engine as _;
use rand::RngCore;

use crate::config::{Config, Org, Storage};
use crate::cors::OriginPattern;
use crate::credentials::CredentialSource;
use sealed::MasterKey;
use store::{Store, StoreError};

/// Where a storage was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The configuration file: read-only through the admin API.
    Config,
    /// The admin API.
    Api,
}

/// A storage ready to serve: its definition and where its credentials come from.
#[derive(Debug)]
pub struct StorageEntry {
    pub storage: Storage,
    pub credentials: CredentialSource,
    pub source: Source,
    /// RFC 3339 times of API storages.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl StorageEntry {
    /// Whether requests to this storage's endpoint go through the endpoint guard.
    pub fn trust(&self) -> crate::upstream::Trust {
        match self.source {
            Source::Config => crate::upstream::Trust::Operator,
            Source::Api => crate::upstream::Trust::Tenant,
        }
    }
}

/// One org: its extra CORS origins and its storages, ordered by id.
#[derive(Debug)]
pub struct OrgEntry {
    pub id: String,
    /// Allowed origins on top of the global list.
    pub cors_origins: Vec<OriginPattern>,
    storages: BTreeMap<String, Arc<StorageEntry>>,
}

impl OrgEntry {
    pub fn storage(&self, id: &str) -> Option<&Arc<StorageEntry>> {
        self.storages.get(id)
    }

    /// The org's storages, ordered by id.
    pub fn storages(&self) -> impl ExactSizeIterator<Item = &Arc<StorageEntry>> {
        self.storages.values()
    }
}

/// Every org the gateway serves, at one moment.
#[derive(Debug, Default)]
pub struct Registry {
    orgs: HashMap<String, Arc<OrgEntry>>,
}

/// A storage created through the admin API, as held in memory.
#[derive(Debug, Clone)]
struct ApiStorage {
    storage: Storage,
    created_at: String,
    updated_at: String,
}

impl Registry {
    /// Only the storages of the configuration file.
    pub fn from_config(config: &Config) -> Registry {
        Registry::build(&config.orgs, &BTreeMap::new())
    }

    fn build(config_orgs: &[Org], api: &BTreeMap<(String, String), ApiStorage>) -> Registry {
        let mut orgs: HashMap<String, OrgEntry> = config_orgs
            .iter()
            .map(|o| {
                let storages = o
                    .storages
                    .iter()
                    .map(|s| (s.id.clone(), entry(&o.id, s, Source::Config, None)))
                    .collect();
                (
                    o.id.clone(),
                    OrgEntry {
                        id: o.id.clone(),
                        cors_origins: o.cors_origins.clone(),
                        storages,
                    },
                )
            })
            .collect();
        for ((org, id), a) in api {
            let org_entry = orgs.entry(org.clone()).or_insert_with(|| OrgEntry {
                id: org.clone(),
                cors_origins: Vec::new(),
                storages: BTreeMap::new(),
            });
            org_entry
                .storages
                .insert(id.clone(), entry(org, &a.storage, Source::Api, Some(a)));
        }
        Registry {
            orgs: orgs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        }
    }

    pub fn org(&self, id: &str) -> Option<&Arc<OrgEntry>> {
        self.orgs.get(id)
    }
}

fn entry(org: &str, storage: &Storage, source: Source, api: Option<&ApiStorage>) -> Arc<StorageEntry> {
    Arc::new(StorageEntry {
        credentials: CredentialSource::for_storage(org, storage),
        storage: storage.clone(),
        source,
        created_at: api.map(|a| a.created_at.clone()),
        updated_at: api.map(|a| a.updated_at.clone()),
    })
}

/// Why a registry operation failed; the admin API maps these to its error codes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no storage `{0}` in this organization")]
    NotFound(String),
    #[error("storage `{0}` is defined in the configuration file and cannot be changed through the API")]
    ReadOnly(String),
    #[error("a storage `{0}` already exists in this organization")]
    Conflict(String),
    #[error("the operator has not set [registry].master_key: storages cannot be created or changed through the API")]
    Locked,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Startup(String),
}

/// The embedded store and the key that seals its secrets.
struct Persistence {
    store: Store,
    key: Option<MasterKey>,
}

/// The live registry: snapshot for the data plane, mutations for the admin API.
pub struct Storages {
    /// The configuration file's orgs; replaced on reload.
    config_orgs: ArcSwap<Vec<Org>>,
    persistence: Option<Persistence>,
    /// API storages by (org, id); guarded so that concurrent changes never lose one another.
    api: Mutex<BTreeMap<(String, String), ApiStorage>>,
    current: ArcSwap<Registry>,
}

impl Storages {
    /// Loads the config's storages and, when a master key is set or a store exists, the stored
    /// ones. A store whose secrets the master key cannot open is an error: failing loudly
    /// beats serving without some storages.
    pub fn open(config: &Config) -> Result<Storages, RegistryError> {
        let file = config.registry.data_dir.join("registry.redb");
        let key = config.registry.master_key.as_ref().and_then(MasterKey::from_base64);
        let persistence = if key.is_some() || file.exists() {
            Some(Persistence {
                store: Store::open(&config.registry.data_dir)?,
                key,
            })
        } else {
            None
        };
        let mut api = BTreeMap::new();
        if let Some(p) = &persistence {
            for record in p.store.all()? {
                let storage = match &p.key {
                    Some(key) => record::open(&record, key).map_err(|e| RegistryError::Startup(e.to_string()))?,
                    None => {
                        return Err(RegistryError::Startup(format!(
                            "{} holds storages created through the admin API, but [registry].master_key is not set",
                            file.display()
                        )))
                    }
                };
                let value = ApiStorage {
                    storage,
                    created_at: record.created_at,
                    updated_at: record.updated_at,
                };
                api.insert((record.org, record.id), value);
            }
        }
        let current = ArcSwap::from_pointee(Registry::build(&config.orgs, &api));
        Ok(Storages {
            config_orgs: ArcSwap::from_pointee(config.orgs.clone()),
            persistence,
            api: Mutex::new(api),
            current,
        })
    }

    /// Replaces the configuration file's orgs (SIGHUP); API storages stay as they are.
    pub fn reload_config(&self, orgs: &[Org]) {
        let api = self.api.lock().expect("registry lock");
        self.config_orgs.store(Arc::new(orgs.to_vec()));
        self.current.store(Arc::new(Registry::build(orgs, &api)));
    }

    /// The registry as it is now.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// Whether storages can be created or changed through the API (a master key is set).
    pub fn writable(&self) -> Result<(), RegistryError> {
        self.persistence().map(|_| ())
    }

    fn persistence(&self) -> Result<(&Store, &MasterKey), RegistryError> {
        match &self.persistence {
            Some(Persistence { store, key: Some(key) }) => Ok((store, key)),
            _ => Err(RegistryError::Locked),
        }
    }

    /// Adds a storage to `org`.
    pub fn create(&self, org: &str, storage: Storage) -> Result<Arc<StorageEntry>, RegistryError> {
        let (store, key) = self.persistence()?;
        let mut api = self.api.lock().expect("registry lock");
        if self.snapshot().org(org).and_then(|o| o.storage(&storage.id)).is_some() {
            return Err(RegistryError::Conflict(storage.id));
        }
        let now = now_rfc3339();
        store.put(&record::seal(org, &storage, key, &now, &now))?;
        let id = storage.id.clone();
        api.insert(
            (org.to_string(), id.clone()),
            ApiStorage {
                storage,
                created_at: now.clone(),
                updated_at: now,
            },
        );
        Ok(self.publish(&api, org, &id))
    }

    /// Replaces an API storage with `change(current)`; config storages are read-only.
    pub fn update<E>(
        &self,
        org: &str,
        id: &str,
        change: impl FnOnce(&Storage) -> Result<Storage, E>,
    ) -> Result<Result<Arc<StorageEntry>, E>, RegistryError> {
        let (store, key) = self.persistence_for_change(org, id)?;
        let mut api = self.api.lock().expect("registry lock");
        let slot = (org.to_string(), id.to_string());
        let current = api.get(&slot).ok_or_else(|| RegistryError::NotFound(id.to_string()))?;
        let storage = match change(&current.storage) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let (created_at, updated_at) = (current.created_at.clone(), now_rfc3339());
        store.put(&record::seal(org, &storage, key, &created_at, &updated_at))?;
        api.insert(
            slot,
            ApiStorage {
                storage,
                created_at,
                updated_at,
            },
        );
        Ok(Ok(self.publish(&api, org, id)))
    }

    /// Removes an API storage.
    pub fn delete(&self, org: &str, id: &str) -> Result<(), RegistryError> {
        let (store, _) = self.persistence_for_change(org, id)?;
        let mut api = self.api.lock().expect("registry lock");
        if api.remove(&(org.to_string(), id.to_string())).is_none() {
            return Err(RegistryError::NotFound(id.to_string()));
        }
        store.delete(org, id)?;
        self.current
            .store(Arc::new(Registry::build(&self.config_orgs.load(), &api)));
        Ok(())
    }

    /// The org's external ID for trust policies: 32 random bytes, base64url (43 characters),
    /// generated on first request and stable afterwards.
    pub fn external_id(&self, org: &str) -> Result<String, RegistryError> {
        let (store, _) = self.persistence()?;
        Ok(store.external_id(org, || {
            let mut bytes = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        })?)
    }

    /// Config storages answer ReadOnly before anything else; then the store must be usable.
    fn persistence_for_change(&self, org: &str, id: &str) -> Result<(&Store, &MasterKey), RegistryError> {
        let registry = self.snapshot();
        match registry.org(org).and_then(|o| o.storage(id)) {
            Some(e) if e.source == Source::Config => Err(RegistryError::ReadOnly(id.to_string())),
            None => Err(RegistryError::NotFound(id.to_string())),
            Some(_) => self.persistence(),
        }
    }

    fn publish(&self, api: &BTreeMap<(String, String), ApiStorage>, org: &str, id: &str) -> Arc<StorageEntry> {
        let registry = Registry::build(&self.config_orgs.load(), api);
        let entry = registry
            .org(org)
            .and_then(|o| o.storage(id))
            .cloned()
            .expect("just inserted");
        self.current.store(Arc::new(registry));
        entry
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

//! Orgs and their storages. [`Registry`] is an immutable snapshot indexed for the request
//! path (one hash lookup per id, each storage's credential source prepared). [`Storages`]
//! merges the configuration file's storages (read-only) with those created through the
//! admin API (persisted in `store`, secrets sealed by `sealed`), and swaps in a new snapshot
//! on every change, so the data plane sees it on its next request without a restart. Every
//! change is persisted first and published second: a change the store refused never shows
//! on the data plane, and one that shows survives a restart.

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
    /// Changes with every write of an API storage (0 for config storages): an update made
    /// from a read of revision N applies only while the storage is still at N.
    pub revision: u64,
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
    revision: u64,
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
            // A config-file storage of the same id wins (see `shadowed`).
            if !org_entry.storages.contains_key(id) {
                org_entry
                    .storages
                    .insert(id.clone(), entry(org, &a.storage, Source::Api, Some(a)));
            }
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
        revision: api.map_or(0, |a| a.revision),
    })
}

/// API storages whose id a config-file storage of the same org also has: the file's wins
/// and the API one is not served (it stays stored, and comes back if the file drops the id).
fn shadowed<'a>(config_orgs: &[Org], api: &'a BTreeMap<(String, String), ApiStorage>) -> Vec<&'a (String, String)> {
    api.keys()
        .filter(|(org, id)| {
            config_orgs
                .iter()
                .any(|o| o.id == *org && o.storages.iter().any(|s| s.id == *id))
        })
        .collect()
}

fn warn_shadowed(config_orgs: &[Org], api: &BTreeMap<(String, String), ApiStorage>) {
    for (org, id) in shadowed(config_orgs, api) {
        tracing::warn!(
            org,
            storage = id,
            "the configuration file defines a storage with the id of one created through the admin API; the file's is served"
        );
    }
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
    #[error("storage `{0}` changed while this request was handled; read it again and retry")]
    Changed(String),
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
    /// The last revision handed out (see [`StorageEntry::revision`]).
    revisions: std::sync::atomic::AtomicU64,
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
        let mut revision = 0;
        if let Some(p) = &persistence {
            for record in p.store.all()? {
                let Some(key) = &p.key else {
                    return Err(RegistryError::Startup(format!(
                        "{} holds storages created through the admin API, but [registry].master_key is not set",
                        file.display()
                    )));
                };
                let mut storage = record::open(&record, key).map_err(|e| RegistryError::Startup(e.to_string()))?;
                own_external_id(&p.store, &record.org, &mut storage)?;
                revision += 1;
                let value = ApiStorage {
                    storage,
                    created_at: record.created_at,
                    updated_at: record.updated_at,
                    revision,
                };
                api.insert((record.org, record.id), value);
            }
        }
        warn_shadowed(&config.orgs, &api);
        let current = ArcSwap::from_pointee(Registry::build(&config.orgs, &api));
        Ok(Storages {
            config_orgs: ArcSwap::from_pointee(config.orgs.clone()),
            persistence,
            api: Mutex::new(api),
            current,
            revisions: std::sync::atomic::AtomicU64::new(revision),
        })
    }

    /// Replaces the configuration file's orgs (SIGHUP); API storages stay as they are, except
    /// that a storage the file now defines with the same id is served from the file.
    pub fn reload_config(&self, orgs: &[Org]) {
        let api = self.api.lock().expect("registry lock");
        warn_shadowed(orgs, &api);
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

    fn next_revision(&self) -> u64 {
        self.revisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// Adds a storage to `org`. Its id may be neither an API storage's nor a config-file
    /// storage's of the org.
    pub fn create(&self, org: &str, storage: Storage) -> Result<Arc<StorageEntry>, RegistryError> {
        let (store, key) = self.persistence()?;
        let mut api = self.api.lock().expect("registry lock");
        let slot = (org.to_string(), storage.id.clone());
        let in_file = self
            .config_orgs
            .load()
            .iter()
            .any(|o| o.id == org && o.storage(&storage.id).is_some());
        if in_file || api.contains_key(&slot) {
            return Err(RegistryError::Conflict(storage.id));
        }
        let now = now_rfc3339();
        store.put(&record::seal(org, &storage, key, &now, &now))?;
        let value = ApiStorage {
            storage,
            created_at: now.clone(),
            updated_at: now,
            revision: self.next_revision(),
        };
        api.insert(slot.clone(), value);
        Ok(self.publish(&api, &slot))
    }

    /// Replaces API storage `id` of `org` with `storage`, if it is still at `revision` (the
    /// revision `storage` was derived from). Config storages are read-only.
    pub fn replace(
        &self,
        org: &str,
        id: &str,
        revision: u64,
        storage: Storage,
    ) -> Result<Arc<StorageEntry>, RegistryError> {
        let (store, key) = self.persistence_for_change(org, id)?;
        let mut api = self.api.lock().expect("registry lock");
        let slot = (org.to_string(), id.to_string());
        let current = api.get(&slot).ok_or_else(|| RegistryError::NotFound(id.to_string()))?;
        if current.revision != revision {
            return Err(RegistryError::Changed(id.to_string()));
        }
        let (created_at, updated_at) = (current.created_at.clone(), now_rfc3339());
        store.put(&record::seal(org, &storage, key, &created_at, &updated_at))?;
        let value = ApiStorage {
            storage,
            created_at,
            updated_at,
            revision: self.next_revision(),
        };
        api.insert(slot.clone(), value);
        Ok(self.publish(&api, &slot))
    }

    /// Removes an API storage.
    pub fn delete(&self, org: &str, id: &str) -> Result<(), RegistryError> {
        let (store, _) = self.persistence_for_change(org, id)?;
        let mut api = self.api.lock().expect("registry lock");
        let slot = (org.to_string(), id.to_string());
        if !api.contains_key(&slot) {
            return Err(RegistryError::NotFound(id.to_string()));
        }
        store.delete(org, id)?;
        api.remove(&slot);
        self.current
            .store(Arc::new(Registry::build(&self.config_orgs.load(), &api)));
        Ok(())
    }

    /// The org's external ID for trust policies: 32 random bytes, base64url (43 characters),
    /// generated on first request and stable afterwards.
    pub fn external_id(&self, org: &str) -> Result<String, RegistryError> {
        let (store, _) = self.persistence()?;
        Ok(store.external_id(org, generate_external_id)?)
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

    fn publish(&self, api: &BTreeMap<(String, String), ApiStorage>, (org, id): &(String, String)) -> Arc<StorageEntry> {
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

fn generate_external_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A delegated API storage assumes its role with its org's external ID and no other. One
/// stored with another (before the admin API refused foreign IDs) is switched to the org's,
/// so that it can never use another org's role; its role's trust policy then has to name
/// the org's ID.
fn own_external_id(store: &Store, org: &str, storage: &mut Storage) -> Result<(), RegistryError> {
    if let crate::config::StorageCredentials::AssumeRole { external_id, .. } = &mut storage.credentials {
        let own = store.external_id(org, generate_external_id)?;
        if *external_id != own {
            tracing::warn!(
                org,
                storage = %storage.id,
                "this storage was stored with an external ID other than its organization's; it now uses the organization's (GET /admin/v1/orgs/{org}/external-id), which its role's trust policy must name"
            );
            *external_id = own;
        }
    }
    Ok(())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Endpoint, Provider, StorageCredentials};
    use crate::secret::Secret;

    fn config(dir: &std::path::Path, orgs: &str) -> Config {
        let text = format!(
            "[auth]\nallow_anonymous = true\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\n{orgs}",
            dir.display(),
            base64::engine::general_purpose::STANDARD.encode([5u8; 32])
        );
        Config::from_toml(&text, &|_| None).unwrap()
    }

    fn delegated(id: &str, external_id: &str) -> Storage {
        Storage {
            id: id.into(),
            name: id.into(),
            provider: Provider::Aws,
            buckets: vec!["b-bucket".into()],
            region: "us-east-1".into(),
            endpoint: Some(Endpoint::parse("https://s3.example.com").unwrap()),
            path_style: false,
            credentials: StorageCredentials::AssumeRole {
                role_arn: "arn:aws:iam::111122223333:role/r".into(),
                external_id: external_id.into(),
            },
        }
    }

    #[test]
    fn a_stored_role_with_another_orgs_external_id_is_loaded_with_its_own() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let key = MasterKey::from_base64(&Secret::new(
                base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
            ))
            .unwrap();
            let record = record::seal("globex", &delegated("stolen", "acme-external-id"), &key, "t", "t");
            store.put(&record).unwrap();
        }
        let storages = Storages::open(&config(dir.path(), "")).unwrap();
        let own = storages.external_id("globex").unwrap();
        let registry = storages.snapshot();
        let entry = registry.org("globex").unwrap().storage("stolen").unwrap();
        match &entry.storage.credentials {
            StorageCredentials::AssumeRole { external_id, .. } => assert_eq!(*external_id, own),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_config_storage_wins_over_an_api_storage_of_the_same_id_and_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = "[[orgs]]\nid = \"acme\"\n[[orgs.storages]]\nid = \"main\"\nprovider = \"aws\"\nbuckets = [\"file-bucket\"]\ncredentials = { type = \"access_key\", access_key_id = \"A\", secret_access_key = \"B\" }\n";
        let storages = Storages::open(&config(dir.path(), "")).unwrap();
        let own = storages.external_id("acme").unwrap();
        storages.create("acme", delegated("main", &own)).unwrap();
        let with_file = config(dir.path(), file);
        storages.reload_config(&with_file.orgs);
        let served = |storages: &Storages| {
            storages
                .snapshot()
                .org("acme")
                .unwrap()
                .storage("main")
                .cloned()
                .unwrap()
        };
        let entry = served(&storages);
        assert_eq!(
            (entry.source, entry.storage.buckets[0].as_str()),
            (Source::Config, "file-bucket")
        );
        assert!(matches!(
            storages.create("acme", delegated("main", &own)),
            Err(RegistryError::Conflict(_))
        ));
        storages.reload_config(&[]);
        let back = served(&storages);
        assert_eq!(
            back.source,
            Source::Api,
            "the stored one comes back when the file drops the id"
        );
    }

    #[test]
    fn an_update_from_a_stale_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storages = Storages::open(&config(dir.path(), "")).unwrap();
        let own = storages.external_id("acme").unwrap();
        let first = storages.create("acme", delegated("main", &own)).unwrap();
        let second = storages
            .replace("acme", "main", first.revision, delegated("main", &own))
            .unwrap();
        assert_ne!(first.revision, second.revision);
        assert!(matches!(
            storages.replace("acme", "main", first.revision, delegated("main", &own)),
            Err(RegistryError::Changed(_))
        ));
    }
}

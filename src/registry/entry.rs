//! Orgs and storages as the gateway serves them: immutable entries, replaced whole when they
//! change. An org's entry holds its config-file storages and its API storages apart, so that
//! a change to one API storage copies only that org's small map of pointers, and a config
//! storage of the same id as an API storage wins without the API one being lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Org;
use crate::cors::OriginPattern;
use crate::credentials::CredentialSource;
use crate::sealed::MasterKey;
use crate::storage::Storage;
use crate::upstream::Trust;

/// The revisions of config-file storages without a master key, counted from a number no API
/// version is likely to be.
static CONFIG_REVISIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What the key of config-file storages' revisions is derived for (HKDF's `info`).
const CONFIG_REVISION: &[u8] = b"assetgate config storage revision v1";

fn first_eight(bytes: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(first)
}

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
    /// Changes with every change of the storage (a fresh random value per write of an API
    /// storage, a digest of the definition for a config one): its `ETag`.
    pub version: u64,
    /// What the edge cache keys this storage's objects by: the version of an API storage;
    /// for a config one, a keyed digest of its whole definition, secrets included (the
    /// version's digest leaves them out, and a rotated secret must not find old entries), so
    /// that its disk entries are found again after a restart. Without a master key (and so
    /// without a disk tier) a number of this process's own, new at every load of the file.
    pub revision: u64,
}

impl StorageEntry {
    /// A storage of the configuration file; `key` is the master key, when configured.
    pub fn from_config(org: &str, storage: &Storage, key: Option<&MasterKey>) -> Arc<StorageEntry> {
        let described = format!("{org}\n{storage:?}");
        let digest = ring::digest::digest(&ring::digest::SHA256, described.as_bytes());
        let revision = match key {
            Some(key) => {
                let secrets = serde_json::Value::Object(storage.backend().stored(&mut |secret| secret.to_string()));
                let mac = ring::hmac::sign(
                    &key.derived_mac_key(CONFIG_REVISION),
                    format!("{described}\n{secrets}").as_bytes(),
                );
                first_eight(mac.as_ref())
            }
            None => CONFIG_REVISIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        Arc::new(StorageEntry {
            credentials: storage.backend().credential_source(org, storage, Trust::Operator),
            storage: storage.clone(),
            source: Source::Config,
            created_at: None,
            updated_at: None,
            version: first_eight(digest.as_ref()),
            revision,
        })
    }

    /// A storage created through the admin API.
    pub fn from_api(org: &str, storage: Storage, created_at: String, updated_at: String, version: u64) -> StorageEntry {
        StorageEntry {
            credentials: storage.backend().credential_source(org, &storage, Trust::Tenant),
            storage,
            source: Source::Api,
            created_at: Some(created_at),
            updated_at: Some(updated_at),
            version,
            revision: version,
        }
    }

    /// Whether requests to this storage's endpoint go through the endpoint guard.
    pub fn trust(&self) -> Trust {
        match self.source {
            Source::Config => Trust::Operator,
            Source::Api => Trust::Tenant,
        }
    }

    /// The `ETag` of the storage in admin API responses (RFC 9110 §8.8.3), strong.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.version)
    }
}

/// One org: its extra CORS origins, its config-file storages and its API storages.
#[derive(Debug, Clone, Default)]
pub struct OrgEntry {
    pub id: String,
    /// Allowed origins on top of the global list (from the configuration file).
    pub cors_origins: Vec<OriginPattern>,
    /// The configuration file's limits of the org, which win over the admin API's.
    pub config_limits: Option<Arc<crate::limits::OrgLimits>>,
    /// Whether the configuration file defines the org.
    in_config: bool,
    config: BTreeMap<String, Arc<StorageEntry>>,
    api: BTreeMap<String, Arc<StorageEntry>>,
}

impl OrgEntry {
    /// The org as the configuration file defines it (`None`: an org with API storages only).
    pub fn from_config(id: &str, org: Option<&Org>, key: Option<&MasterKey>) -> OrgEntry {
        OrgEntry {
            id: id.to_string(),
            ..OrgEntry::default()
        }
        .with_config(org, key)
    }

    /// The served storage `id`: the config file's when both have one.
    pub fn storage(&self, id: &str) -> Option<&Arc<StorageEntry>> {
        self.config.get(id).or_else(|| self.api.get(id))
    }

    /// The API storage `id`, served or hidden behind a config-file storage of the same id.
    pub fn api_storage(&self, id: &str) -> Option<&Arc<StorageEntry>> {
        self.api.get(id)
    }

    /// The served storages, ordered by id.
    pub fn storages(&self) -> Vec<&Arc<StorageEntry>> {
        let mut all: Vec<&Arc<StorageEntry>> = self.config.values().collect();
        all.extend(
            self.api
                .iter()
                .filter(|(id, _)| !self.config.contains_key(*id))
                .map(|(_, e)| e),
        );
        all.sort_by(|a, b| a.storage.id.cmp(&b.storage.id));
        all
    }

    /// Every API storage, hidden ones included.
    pub fn api_storages(&self) -> impl Iterator<Item = &Arc<StorageEntry>> {
        self.api.values()
    }

    /// API storages hidden behind a config-file storage of the same id.
    pub fn shadowed(&self) -> impl Iterator<Item = &str> {
        self.api
            .keys()
            .filter(|id| self.config.contains_key(*id))
            .map(String::as_str)
    }

    /// Whether nothing defines the org any more (it can be forgotten).
    pub fn is_empty(&self) -> bool {
        !self.in_config && self.api.is_empty()
    }

    /// The same org with the configuration file's part replaced; `key` is the master key,
    /// when configured.
    pub fn with_config(&self, org: Option<&Org>, key: Option<&MasterKey>) -> OrgEntry {
        let config = org
            .map(|o| {
                o.storages
                    .iter()
                    .map(|s| (s.id.clone(), StorageEntry::from_config(&o.id, s, key)))
                    .collect()
            })
            .unwrap_or_default();
        OrgEntry {
            id: self.id.clone(),
            cors_origins: org.map(|o| o.cors_origins.clone()).unwrap_or_default(),
            config_limits: org.and_then(|o| o.limits.clone()).map(Arc::new),
            in_config: org.is_some(),
            config,
            api: self.api.clone(),
        }
    }

    /// The same org with API storage `entry` added or replaced.
    pub fn with_api(&self, entry: Arc<StorageEntry>) -> OrgEntry {
        let mut next = self.clone();
        next.api.insert(entry.storage.id.clone(), entry);
        next
    }

    /// The same org without API storage `id`.
    pub fn without_api(&self, id: &str) -> OrgEntry {
        let mut next = self.clone();
        next.api.remove(id);
        next
    }

    /// The same org with all its API storages replaced.
    pub fn with_api_storages(&self, entries: impl IntoIterator<Item = Arc<StorageEntry>>) -> OrgEntry {
        OrgEntry {
            api: entries.into_iter().map(|e| (e.storage.id.clone(), e)).collect(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::StaticKeys;
    use crate::secret::Secret;
    use crate::storage::providers::s3::{Flavor, S3Credentials, S3};
    use crate::storage::Provider;

    fn storage(id: &str, bucket: &str) -> Storage {
        Storage {
            cache: true,
            id: id.into(),
            name: id.into(),
            buckets: vec![bucket.into()],
            endpoint: None,
            provider: Provider::S3(S3 {
                flavor: Flavor::Aws,
                region: "us-east-1".into(),
                path_style: false,
                credentials: S3Credentials::AccessKey(StaticKeys {
                    access_key_id: "AK".into(),
                    secret_access_key: Secret::new("SK"),
                    session_token: None,
                }),
            }),
        }
    }

    fn api(id: &str, bucket: &str) -> Arc<StorageEntry> {
        Arc::new(StorageEntry::from_api(
            "acme",
            storage(id, bucket),
            "t".into(),
            "t".into(),
            7,
        ))
    }

    #[test]
    fn a_config_storage_hides_an_api_storage_of_the_same_id_until_it_goes() {
        let file = Org {
            id: "acme".into(),
            cors_origins: vec![],
            storages: vec![storage("main", "file-bucket")],
            limits: None,
        };
        let org = OrgEntry::from_config("acme", Some(&file), None)
            .with_api(api("main", "api-bucket"))
            .with_api(api("other", "api-bucket"));
        assert_eq!(org.storage("main").unwrap().source, Source::Config);
        assert_eq!(org.shadowed().collect::<Vec<_>>(), ["main"]);
        let ids: Vec<_> = org.storages().iter().map(|e| e.storage.id.as_str()).collect();
        assert_eq!(ids, ["main", "other"]);
        let without_file = org.with_config(None, None);
        assert_eq!(without_file.storage("main").unwrap().storage.buckets[0], "api-bucket");
        assert!(!without_file.is_empty());
        assert!(without_file.without_api("main").without_api("other").is_empty());
    }

    #[test]
    fn versions_are_etags_and_change_with_the_definition() {
        let a = StorageEntry::from_config("acme", &storage("main", "b-one"), None);
        let b = StorageEntry::from_config("acme", &storage("main", "b-two"), None);
        assert_ne!(a.version, b.version);
        assert_eq!(
            a.version,
            StorageEntry::from_config("acme", &storage("main", "b-one"), None).version
        );
        assert_eq!(api("x", "b").etag(), "\"0000000000000007\"");
    }

    #[test]
    fn config_revisions_under_a_master_key_last_across_loads_and_follow_every_secret() {
        use base64::Engine as _;
        let key = |byte: u8| {
            MasterKey::from_base64(&Secret::new(
                base64::engine::general_purpose::STANDARD.encode([byte; 32]),
            ))
            .unwrap()
        };
        let one = storage("main", "b-one");
        let revision = |s: &Storage, k: &MasterKey| StorageEntry::from_config("acme", s, Some(k)).revision;
        assert_eq!(
            revision(&one, &key(1)),
            revision(&one, &key(1)),
            "the same after a restart"
        );
        assert_ne!(revision(&one, &key(1)), revision(&one, &key(2)));
        assert_ne!(revision(&one, &key(1)), revision(&storage("main", "b-two"), &key(1)));
        let mut rotated = one.clone();
        rotated.provider = match rotated.provider {
            Provider::S3(mut s3) => {
                s3.credentials = S3Credentials::AccessKey(StaticKeys {
                    access_key_id: "AK".into(),
                    secret_access_key: Secret::new("rotated"),
                    session_token: None,
                });
                Provider::S3(s3)
            }
            other => other,
        };
        assert_eq!(
            StorageEntry::from_config("acme", &rotated, None).version,
            StorageEntry::from_config("acme", &one, None).version,
            "the version leaves secrets out"
        );
        assert_ne!(
            revision(&rotated, &key(1)),
            revision(&one, &key(1)),
            "the revision does not"
        );
        // Without a master key, every load is a new revision.
        let (a, b) = (
            StorageEntry::from_config("acme", &one, None),
            StorageEntry::from_config("acme", &one, None),
        );
        assert_ne!(a.revision, b.revision);
    }
}

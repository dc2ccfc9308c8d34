//! Orgs and their storages, indexed for the request path: one hash lookup per id, with each
//! storage's credential source prepared when it is registered.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, Org, Storage};
use crate::cors::OriginPattern;
use crate::credentials::CredentialSource;

/// Every org the gateway serves.
#[derive(Debug, Default)]
pub struct Registry {
    orgs: HashMap<String, Arc<OrgEntry>>,
}

/// One org: its extra CORS origins and its storages.
#[derive(Debug)]
pub struct OrgEntry {
    pub id: String,
    /// Allowed origins on top of the global list.
    pub cors_origins: Vec<OriginPattern>,
    storages: HashMap<String, Arc<StorageEntry>>,
}

/// A storage ready to serve: its definition and where its credentials come from.
#[derive(Debug)]
pub struct StorageEntry {
    pub storage: Storage,
    pub credentials: CredentialSource,
}

impl Registry {
    /// The orgs and storages of the configuration file.
    pub fn from_config(config: &Config) -> Registry {
        let orgs = config
            .orgs
            .iter()
            .map(|o| (o.id.clone(), Arc::new(OrgEntry::new(o))))
            .collect();
        Registry { orgs }
    }

    pub fn org(&self, id: &str) -> Option<&Arc<OrgEntry>> {
        self.orgs.get(id)
    }
}

impl OrgEntry {
    fn new(org: &Org) -> OrgEntry {
        let storages = org
            .storages
            .iter()
            .map(|s| {
                let entry = StorageEntry {
                    credentials: CredentialSource::for_storage(&org.id, s),
                    storage: s.clone(),
                };
                (s.id.clone(), Arc::new(entry))
            })
            .collect();
        OrgEntry {
            id: org.id.clone(),
            cors_origins: org.cors_origins.clone(),
            storages,
        }
    }

    pub fn storage(&self, id: &str) -> Option<&Arc<StorageEntry>> {
        self.storages.get(id)
    }
}

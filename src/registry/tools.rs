//! The `assetgate registry` commands: `migrate --from DIR` copies an embedded store (a former
//! `data_dir`) into the shared registry, idempotently; `reseal` re-encrypts every stored
//! secret under the current master key after a rotation.

use std::path::Path;

use super::record;
use super::sealed::{Keys, MasterKey};
use super::store::{self, EmbeddedStore, PostgresStore, Store, StoreError};
use super::RegistryError;
use crate::config::Config;

fn keys(config: &Config) -> Result<Keys, RegistryError> {
    let current = config.registry.master_key.as_ref().ok_or_else(|| {
        RegistryError::Startup("[registry].master_key is required: it seals the secrets written".into())
    })?;
    let open = |k| MasterKey::from_base64(k).expect("validated in config");
    Ok(Keys {
        current: open(current),
        previous: config.registry.previous_master_keys.iter().map(open).collect(),
    })
}

fn shared(config: &Config) -> Result<PostgresStore, RegistryError> {
    let url = config.registry.url.as_ref().ok_or_else(|| {
        RegistryError::Startup("[registry].url is not set: there is no shared registry to work on".into())
    })?;
    let extra = match &config.server.upstream_ca_file {
        Some(path) => crate::tls::certificates(path).map_err(|e| RegistryError::Startup(e.to_string()))?,
        None => Vec::new(),
    };
    PostgresStore::new(url, &extra).map_err(RegistryError::Startup)
}

/// Copies the storages and external IDs of the embedded store in `from` into the shared
/// registry; what is there already (same org and id) is left as it is. Secrets are opened
/// with the configured keys and sealed again under the current one.
pub async fn migrate(config: &Config, from: &Path) -> Result<String, RegistryError> {
    if !from.join("registry.redb").exists() {
        return Err(RegistryError::Startup(format!(
            "{} holds no registry.redb",
            from.display()
        )));
    }
    let keys = keys(config)?;
    let target = shared(config)?;
    let source = EmbeddedStore::open(from).map_err(|e| RegistryError::Startup(e.to_string()))?;
    let loaded = source.load()?;
    let mut out = Vec::new();
    let (mut ids, mut copied, mut present) = (0, 0, 0);
    for (org, id) in &loaded.external_ids {
        let stored = target.external_id(org, id).await?;
        if stored == *id {
            ids += 1;
        } else {
            out.push(format!(
                "org {org}: the shared registry has another external ID; its delegated storages use that one, which their roles' trust policies must name"
            ));
        }
    }
    for old in &loaded.storages {
        let storage = record::open(old, &keys).map_err(|e| RegistryError::Startup(e.to_string()))?;
        let new = record::seal(
            &old.org,
            &storage,
            &keys.current,
            &old.created_at,
            &old.updated_at,
            store::new_version(),
        );
        match target.insert(&new).await {
            Ok(()) => copied += 1,
            Err(StoreError::Exists(_)) => present += 1,
            Err(e) => return Err(e.into()),
        }
    }
    out.push(format!(
        "copied {copied} storages and {ids} external IDs from {} into {}; {present} storages were there already",
        from.display(),
        target.describe()
    ));
    Ok(out.join("\n"))
}

/// Seals every stored secret that a previous key sealed under the current master key.
pub async fn reseal(config: &Config) -> Result<String, RegistryError> {
    let keys = keys(config)?;
    let store = match &config.registry.url {
        Some(_) => Store::Postgres(Box::new(shared(config)?)),
        None => Store::Embedded(
            EmbeddedStore::open(&config.registry.data_dir).map_err(|e| RegistryError::Startup(e.to_string()))?,
        ),
    };
    let (mut resealed, mut current) = (0, 0);
    for old in store.load().await?.storages {
        if record::sealed_with(&old, &keys.current) {
            current += 1;
            continue;
        }
        let storage = record::open(&old, &keys).map_err(|e| RegistryError::Startup(e.to_string()))?;
        let new = record::seal(
            &old.org,
            &storage,
            &keys.current,
            &old.created_at,
            &old.updated_at,
            store::new_version(),
        );
        match store.update(&new, old.version).await {
            Ok(()) => resealed += 1,
            // Changed or deleted meanwhile: a change is sealed with the current key anyway.
            Err(StoreError::Stale(_) | StoreError::Missing(_)) => current += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(format!(
        "resealed {resealed} storages under the current master key; {current} needed nothing (sealed with it already, or without a secret)"
    ))
}

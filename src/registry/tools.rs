//! The `assetgate registry` commands: `migrate --from DIR` copies an embedded store (a former
//! `data_dir`) into the shared registry, idempotently; `reseal` re-encrypts every stored
//! secret under the current master key after a rotation.

use std::path::Path;

use super::record;
use super::store::{self, EmbeddedStore, PostgresStore, Store, StoreError};
use super::RegistryError;
use crate::config::Config;
use crate::sealed::Keys;

fn keys(config: &Config) -> Result<std::sync::Arc<Keys>, RegistryError> {
    config
        .registry
        .master_keys
        .clone()
        .ok_or_else(|| RegistryError::Startup("[registry].master_key is required: it seals the secrets written".into()))
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

/// What a registry command did: the lines to print, and the rows it could not handle (then
/// the command exits 1).
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    /// `org/id: why`, one per row left as it was.
    pub failed: Vec<String>,
}

impl Report {
    /// Records a row left as it was, and why.
    fn not_done(&mut self, row: &store::StoredRow, why: String) {
        self.failed.push(format!("{}/{}: {why}", row.org, row.id));
    }

    /// Everything to print: the failed rows first, then the summary.
    pub fn text(&self) -> String {
        let mut out: Vec<String> = self.failed.iter().map(|f| format!("not done: {f}")).collect();
        out.extend(self.lines.iter().cloned());
        out.join("\n")
    }
}

/// A stored row's record sealed anew under the current key (a new version, its dates kept), or
/// why it cannot be opened. Rows written before records were authenticated are taken on
/// trust only when `legacy` says so.
fn sealed_anew(row: &store::StoredRow, keys: &Keys, legacy: bool) -> Result<store::StoredStorage, String> {
    let old = row.record.as_ref().map_err(Clone::clone)?;
    let storage = if record::is_legacy(old) && legacy {
        record::open_legacy(old, keys)
    } else if record::is_legacy(old) {
        return Err("written before records were authenticated: run `assetgate registry reseal --authenticate-legacy` once you trust the database's content".into());
    } else {
        record::open(old, keys)
    };
    let storage = storage.map_err(|e| e.to_string())?;
    Ok(record::seal(
        &old.org,
        &storage,
        &keys.current,
        &old.created_at,
        &old.updated_at,
        store::new_version(),
    ))
}

/// Copies the storages and external IDs of the embedded store in `from` into the shared
/// registry; what is there already (same org and id) is left as it is. Secrets are opened
/// with the configured keys and sealed again under the current one. The embedded store is
/// the operator's own directory: its records from before records were authenticated are
/// taken as they are; a record altered since, or one the keys cannot open, is reported and
/// not copied.
pub async fn migrate(config: &Config, from: &Path) -> Result<Report, RegistryError> {
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
    let mut report = Report::default();
    let (mut ids, mut copied, mut present) = (0, 0, 0);
    for (org, id) in &loaded.external_ids {
        let stored = target.external_id(org, id).await?;
        if stored == *id {
            ids += 1;
        } else {
            report.lines.push(format!(
                "org {org}: the shared registry has another external ID; its delegated storages use that one, which their roles' trust policies must name"
            ));
        }
    }
    for row in &loaded.storages {
        let new = match sealed_anew(row, &keys, true) {
            Ok(new) => new,
            Err(why) => {
                report.not_done(row, why);
                continue;
            }
        };
        match target.insert(&new).await {
            Ok(()) => copied += 1,
            Err(StoreError::Exists(_)) => present += 1,
            Err(e) => return Err(e.into()),
        }
    }
    report.lines.push(format!(
        "copied {copied} storages and {ids} external IDs from {} into {}; {present} storages were there already; {} could not be copied",
        from.display(),
        target.describe(),
        report.failed.len()
    ));
    Ok(report)
}

/// Seals every stored record under the current master key: secrets a previous key sealed,
/// and the record's authentication. With `authenticate_legacy`, records written before
/// records were authenticated are authenticated as they are (the operator vouches for the
/// database's content); without it they are reported. Every row that could not be resealed
/// is reported.
pub async fn reseal(config: &Config, authenticate_legacy: bool) -> Result<Report, RegistryError> {
    let keys = keys(config)?;
    let store = match &config.registry.url {
        Some(_) => Store::Postgres(Box::new(shared(config)?)),
        None => Store::Embedded(
            EmbeddedStore::open(&config.registry.data_dir).map_err(|e| RegistryError::Startup(e.to_string()))?,
        ),
    };
    let mut report = Report::default();
    let (mut resealed, mut current) = (0, 0);
    for row in store.load().await?.storages {
        if row.record.as_ref().is_ok_and(|r| record::sealed_with(r, &keys.current)) {
            current += 1;
            continue;
        }
        let new = match sealed_anew(&row, &keys, authenticate_legacy) {
            Ok(new) => new,
            Err(why) => {
                report.not_done(&row, why);
                continue;
            }
        };
        match store.update(&new, row.version).await {
            Ok(()) => resealed += 1,
            // Changed or deleted meanwhile: a change is sealed with the current key anyway.
            Err(StoreError::Stale(_) | StoreError::Missing(_)) => current += 1,
            Err(e) => return Err(e.into()),
        }
    }
    report.lines.push(format!(
        "resealed {resealed} storages under the current master key; {current} needed nothing (sealed with it already); {} could not be resealed",
        report.failed.len()
    ));
    Ok(report)
}

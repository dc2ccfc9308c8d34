//! Following the shared registry: one connection LISTENs for the notices every write sends,
//! and each notice re-reads the one storage (or external ID) it names; every
//! `resync_interval` the versions of all stored storages are compared with those held, in
//! case a notice was lost. When the database goes away the replica keeps serving what it
//! holds, reconnects with backoff, and catches up with a comparison as soon as it is back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::store::postgres::Notice;
use super::store::{PostgresStore, Store};
use super::{RegistryError, Storages};

/// First and longest wait between attempts to reach the database.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(15));

/// Beyond this many differences, a comparison reloads everything in one query.
const RELOAD_ABOVE: usize = 1000;

/// Follows the shared registry for as long as `storages` lives.
pub(super) async fn follow(storages: Weak<Storages>, resync_interval: Duration) {
    let mut backoff = BACKOFF.0;
    let mut lost = false;
    loop {
        match session(&storages, resync_interval, &mut backoff, &mut lost).await {
            Ok(()) => return,
            Err(e) => {
                if !lost {
                    tracing::warn!(error = %e, "the shared registry is unreachable; serving the storages held, reconnecting");
                    lost = true;
                } else {
                    tracing::debug!(error = %e, "the shared registry is still unreachable");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

fn alive(storages: &Weak<Storages>) -> Option<Arc<Storages>> {
    storages.upgrade()
}

fn postgres(storages: &Storages) -> &PostgresStore {
    storages
        .store
        .as_ref()
        .and_then(Store::postgres)
        .expect("only the shared registry is followed")
}

/// One connection's life: listen, catch up, then apply notices and compare periodically.
/// `Ok` only when the registry itself is gone.
async fn session(
    storages: &Weak<Storages>,
    resync_interval: Duration,
    backoff: &mut Duration,
    lost: &mut bool,
) -> Result<(), RegistryError> {
    let Some(s) = alive(storages) else { return Ok(()) };
    let mut listener = postgres(&s).listen().await?;
    resync(&s).await?;
    if std::mem::take(lost) {
        tracing::info!("the shared registry is reachable again; caught up");
    } else {
        tracing::info!(database = %postgres(&s).describe(), "following the shared registry");
    }
    *backoff = BACKOFF.0;
    drop(s);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + resync_interval, resync_interval);
    loop {
        tokio::select! {
            notice = listener.notices.recv() => {
                let Some(notice) = notice else {
                    return Err(RegistryError::Unavailable("the notice connection was lost".into()));
                };
                let Some(s) = alive(storages) else { return Ok(()) };
                apply(&s, notice).await?;
            }
            _ = tick.tick() => {
                let Some(s) = alive(storages) else { return Ok(()) };
                resync(&s).await?;
            }
        }
    }
}

/// Re-reads what one notice names.
async fn apply(s: &Storages, notice: Notice) -> Result<(), RegistryError> {
    match notice {
        Notice::Storage { org, id } => {
            let keys = s.keys.as_ref().ok_or(RegistryError::Locked)?;
            let _one_at_a_time = s.writes.lock().await;
            let record = postgres(s).get(&org, &id).await?;
            s.apply(&org, &id, record, keys)
        }
        Notice::ExternalId { org } => {
            if let Some(id) = postgres(s).external_id_of(&org).await? {
                s.external_ids.insert(org, id);
            }
            Ok(())
        }
        Notice::Limits { org } => s.refresh_limits(&org).await,
    }
}

/// Makes what is held what is stored: everything at first, then only what differs.
async fn resync(s: &Storages) -> Result<(), RegistryError> {
    let pg = postgres(s);
    let _one_at_a_time = s.writes.lock().await;
    if !s.ready() {
        let count = s.reload_stored().await?;
        s.mark_ready();
        tracing::info!(storages = count, "shared registry loaded");
        return Ok(());
    }
    for (org, id) in pg.external_ids().await? {
        if s.external_ids.get(&org).is_none_or(|held| *held != id) {
            s.external_ids.insert(org, id);
        }
    }
    s.reload_limits().await?;
    let stored: HashMap<(String, String), u64> = pg
        .versions()
        .await?
        .into_iter()
        .map(|(org, id, version)| ((org, id), version))
        .collect();
    let mut held = HashSet::new();
    let mut differ = Vec::new();
    for org in s.orgs.iter() {
        for entry in org.api_storages() {
            let key = (org.id.clone(), entry.storage.id.clone());
            if stored.get(&key) != Some(&entry.version) {
                differ.push(key.clone());
            }
            held.insert(key);
        }
    }
    differ.extend(stored.keys().filter(|k| !held.contains(*k)).cloned());
    if differ.is_empty() {
        return Ok(());
    }
    tracing::info!(
        storages = differ.len(),
        "the shared registry differed from what was held; catching up"
    );
    let keys = s.keys.as_ref().ok_or(RegistryError::Locked)?;
    if differ.len() > RELOAD_ABOVE {
        return s.reload_stored().await.map(drop);
    }
    for (org, id) in differ {
        let record = pg.get(&org, &id).await?;
        s.apply(&org, &id, record, keys)?;
    }
    Ok(())
}

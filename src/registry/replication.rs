//! Following the shared registry: one connection LISTENs for the notices every write sends;
//! the pending ones (merged and bounded, `store::postgres::Pending`) are taken together and
//! checked in a few queries, and only storages whose version differs are read again; every
//! `resync_interval` the versions of all stored storages are compared with those held, in
//! case a notice was lost, and so is everything when more notices came than are kept. Cache
//! purges stored by any replica are applied on their notice and at every comparison. When
//! the database goes away the replica keeps serving what it holds, reconnects with backoff,
//! and catches up with a comparison as soon as it is back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::store::postgres::{Batch, Notice};
use super::store::{PostgresStore, Store};
use super::{RegistryError, Storages};

/// First and longest wait between attempts to reach the database.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(15));

/// Beyond this many differences, a comparison reloads everything in one query.
const RELOAD_ABOVE: usize = 1000;

/// Batches of notices are taken as they come while they bring changes. Batches that change
/// nothing (notices anyone with a login may send) are taken [`BURST`] at a time; past that, at
/// most one per `BATCH_GAP` on average, and what arrives meanwhile merges into the next. So
/// real changes, however many, arrive at once, and a flood of notices makes a bounded
/// number of queries.
const BATCH_GAP: Duration = Duration::from_millis(50);
const BURST: usize = 64;

/// Up to this many storages a batch names are read one by one (a change arrives with one
/// query); more are compared by version in one query first, and only those that differ read.
const READ_DIRECTLY: usize = 4;

/// At most one full comparison for overflowing notices in this time (a flood that goes on
/// costs one comparison per gap; once it stops, the last one follows within the gap).
const OVERFLOW_GAP: Duration = Duration::from_millis(500);

/// Follows the shared registry for as long as `storages` lives.
pub(super) async fn follow(storages: Weak<Storages>, resync_interval: Duration) {
    let mut backoff = BACKOFF.0;
    let mut lost = false;
    loop {
        match session(&storages, resync_interval, &mut backoff, &mut lost).await {
            Ok(()) => return,
            Err(e @ RegistryError::Startup(_)) => {
                // Not the database's fault (the master key does not match it): say so every
                // time, at error level, and keep trying (the key may be fixed by a restart only,
                // but the replica must not look ready meanwhile).
                tracing::error!(error = %e, "the shared registry cannot be loaded");
            }
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
    let listener = postgres(&s).listen().await?;
    resync(&s).await?;
    if std::mem::take(lost) {
        tracing::info!("the shared registry is reachable again; caught up");
    } else {
        tracing::info!(database = %postgres(&s).describe(), "following the shared registry");
    }
    *backoff = BACKOFF.0;
    drop(s);
    let mut tick = tokio::time::interval_at(Instant::now() + resync_interval, resync_interval);
    let mut last_overflow = Instant::now();
    let mut recent: VecDeque<Instant> = VecDeque::with_capacity(BURST);
    loop {
        if recent.len() == BURST {
            tokio::time::sleep_until(recent[0] + BATCH_GAP * BURST as u32).await;
        }
        tokio::select! {
            batch = listener.pending.next() => {
                let Some(batch) = batch else {
                    return Err(RegistryError::Unavailable("the notice connection was lost".into()));
                };
                if batch.overflowed {
                    tokio::time::sleep_until(last_overflow + OVERFLOW_GAP).await;
                    last_overflow = Instant::now();
                }
                let Some(s) = alive(storages) else { return Ok(()) };
                if !apply(&s, batch).await? {
                    if recent.len() == BURST {
                        recent.pop_front();
                    }
                    recent.push_back(Instant::now());
                }
            }
            _ = tick.tick() => {
                let Some(s) = alive(storages) else { return Ok(()) };
                resync(&s).await?;
            }
        }
    }
}

/// Checks what a batch of notices names against the database: a few storages read as they
/// are, many compared by version in one query (only those that differ from what is held are
/// read); external IDs and limits in one query each. A batch that overflowed is a full
/// comparison. Says whether a storage or an external ID changed.
async fn apply(s: &Storages, batch: Batch) -> Result<bool, RegistryError> {
    if batch.overflowed {
        tracing::info!("more change notices arrived than are kept; comparing everything instead");
        resync(s).await?;
        return Ok(false);
    }
    let mut changed = false;
    let pg = postgres(s);
    let (mut storages, mut external_ids, mut limits) = (Vec::new(), Vec::new(), Vec::new());
    let mut purges = false;
    for notice in batch.notices {
        match notice {
            Notice::Storage { org, id } => storages.push((org, id)),
            Notice::ExternalId { org } => external_ids.push(org),
            Notice::Limits { org } => limits.push(org),
            Notice::Purge { .. } => purges = true,
        }
    }
    if purges {
        s.apply_purges(pg).await?;
    }
    if !storages.is_empty() {
        let keys = s.keys.as_ref().ok_or(RegistryError::Locked)?;
        let stored: Option<HashMap<(String, String), u64>> = if storages.len() > READ_DIRECTLY {
            let versions = pg.versions_of(&storages).await?;
            Some(versions.into_iter().map(|(org, id, v)| ((org, id), v)).collect())
        } else {
            None
        };
        let _one_at_a_time = s.writes.lock().await;
        for (org, id) in storages {
            let row = match &stored {
                None => pg.get(&org, &id).await?,
                Some(stored) => match stored.get(&(org.clone(), id.clone())).copied() {
                    version if version == s.held_version(&org, &id) => continue,
                    Some(_) => pg.get(&org, &id).await?,
                    None => None,
                },
            };
            changed |= s.apply(&org, &id, row, keys);
        }
    }
    if !external_ids.is_empty() {
        for (org, id) in pg.external_ids_of(&external_ids).await? {
            changed |= s.external_ids.insert(org, id.clone()).is_none_or(|held| held != id);
        }
    }
    if !limits.is_empty() {
        let found: HashMap<String, String> = pg.limits_of(&limits).await?.into_iter().collect();
        for org in limits {
            s.hold_limits(&org, found.get(&org).map(String::as_str));
        }
    }
    Ok(changed)
}

/// Makes what is held what is stored: everything at first, then only what differs.
async fn resync(s: &Storages) -> Result<(), RegistryError> {
    let pg = postgres(s);
    s.apply_purges(pg).await?;
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
    let mut compare = |key: (String, String), version: u64| {
        if stored.get(&key) != Some(&version) {
            differ.push(key.clone());
        }
        held.insert(key);
    };
    for org in s.orgs.iter() {
        for entry in org.api_storages() {
            compare((org.id.clone(), entry.storage.id.clone()), entry.version);
        }
    }
    // A row known to be unreadable at its stored version is not read again.
    for bad in s.bad_rows.iter() {
        compare(bad.key().clone(), bad.value().version);
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
        let row = pg.get(&org, &id).await?;
        s.apply(&org, &id, row, keys);
    }
    Ok(())
}

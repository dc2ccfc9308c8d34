//! Edge cache purges on every replica (README, "Edge cache"): the replica that answers
//! `DELETE /admin/v1/orgs/{org}/cache` stores the purge in the shared registry, tagged under
//! the master key, and every replica applies the purges stored after the last one it applied,
//! when their notice arrives and at every comparison (so a replica that lost the database
//! catches up). A purge whose tag does not verify was not written by a replica: it is
//! skipped and logged, never applied.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::store::postgres::StoredPurge;
use super::store::PostgresStore;
use super::{RegistryError, Storages};
use crate::cache::Purge;
use crate::sealed::Keys;

/// Told of every purge another replica (or this one) stored: drops the matching entries of
/// this replica's cache.
pub type PurgeHook = Box<dyn Fn(&Purge) + Send + Sync>;

/// What a purge's tag authenticates: everything it names, each part marked as present or
/// not, so that no two purges share it.
fn tagged(purge: &Purge) -> String {
    let part = |p: &Option<String>| p.as_deref().map_or("-".to_string(), |v| format!("+{v}"));
    format!(
        "assetgate cache purge v1\n{}\n{}\n{}\n{}",
        purge.org,
        part(&purge.storage),
        part(&purge.bucket),
        part(&purge.prefix)
    )
}

/// The stored form of what `purge` names, besides its org.
fn stored(purge: &Purge) -> String {
    json!({"storage": purge.storage, "bucket": purge.bucket, "prefix": purge.prefix}).to_string()
}

/// The purge a stored row says, if its tag verifies under one of `keys`.
fn verified(row: &StoredPurge, keys: &Keys) -> Option<Purge> {
    let named: Value = serde_json::from_str(&row.purge).ok()?;
    let field = |name: &str| match named.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let purge = Purge {
        org: row.org.clone(),
        storage: field("storage")?,
        bucket: field("bucket")?,
        prefix: field("prefix")?,
    };
    keys.verify(tagged(&purge).as_bytes(), &row.tag).map(|_| purge)
}

impl Storages {
    /// Sets what is told of purges ([`PurgeHook`]); once.
    pub fn on_purge(&self, hook: PurgeHook) {
        let _ = self.purge_hook.set(hook);
    }

    /// Stores `purge` for every replica, when the registry is shared (the embedded store
    /// serves one replica, which purged already).
    pub async fn purge_everywhere(&self, purge: &Purge) -> Result<(), RegistryError> {
        let Some(pg) = self.store.as_ref().and_then(|s| s.postgres()) else {
            return Ok(());
        };
        let keys = self.keys.as_ref().ok_or(RegistryError::Locked)?;
        let tag = keys.current.tag(tagged(purge).as_bytes());
        Ok(pg.put_purge(&purge.org, &stored(purge), &tag).await?)
    }

    /// Applies the purges stored since the last one applied; the first time, only notes
    /// where they end (what was purged before this replica started is not in its cache).
    pub(super) async fn apply_purges(&self, pg: &PostgresStore) -> Result<(), RegistryError> {
        let mut after = self.purged_to.load(Ordering::Acquire);
        if after < 0 {
            self.purged_to.store(pg.last_purge().await?, Ordering::Release);
            return Ok(());
        }
        loop {
            let page = pg.purges_after(after).await?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.seq;
            let mut refused = Vec::new();
            for row in &page {
                match self.keys.as_deref().and_then(|keys| verified(row, keys)) {
                    Some(purge) => {
                        if let Some(hook) = self.purge_hook.get() {
                            hook(&purge);
                        }
                    }
                    None => refused.push(row.seq),
                }
            }
            if let Some(first) = refused.first() {
                // One line per page, however many rows were written to flood the log.
                tracing::warn!(
                    rows = refused.len(),
                    first = first,
                    "stored cache purges not authenticated by the master key; they are not applied"
                );
            }
            self.purged_to.store(after, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::MasterKey;
    use crate::secret::Secret;
    use base64::Engine as _;

    fn keys(byte: u8) -> Keys {
        Keys {
            current: MasterKey::from_base64(&Secret::new(
                base64::engine::general_purpose::STANDARD.encode([byte; 32]),
            ))
            .unwrap(),
            previous: vec![],
        }
    }

    fn row(purge: &Purge, keys: &Keys) -> StoredPurge {
        StoredPurge {
            seq: 1,
            org: purge.org.clone(),
            purge: stored(purge),
            tag: keys.current.tag(tagged(purge).as_bytes()),
        }
    }

    #[test]
    fn a_stored_purge_applies_only_as_it_was_written_by_a_key_holder() {
        let purge = Purge {
            org: "acme".into(),
            storage: Some("main".into()),
            bucket: None,
            prefix: Some("cats/".into()),
        };
        let k = keys(1);
        let good = row(&purge, &k);
        let back = verified(&good, &k).unwrap();
        assert_eq!(
            (back.org, back.storage, back.bucket, back.prefix),
            (
                "acme".to_string(),
                Some("main".to_string()),
                None,
                Some("cats/".to_string())
            )
        );
        assert!(verified(&good, &keys(2)).is_none(), "another key");
        let mut widened = good.clone();
        widened.purge = json!({"storage": "main"}).to_string();
        assert!(verified(&widened, &k).is_none(), "a prefix removed");
        let mut moved = good.clone();
        moved.org = "victim".into();
        assert!(verified(&moved, &k).is_none(), "another org");
        let mut odd = good;
        odd.purge = json!({"storage": 7}).to_string();
        assert!(verified(&odd, &k).is_none());
        // An empty value is not an absent one.
        let empty = Purge {
            prefix: Some(String::new()),
            ..Purge::default()
        };
        assert_ne!(tagged(&empty), tagged(&Purge::default()));
    }
}

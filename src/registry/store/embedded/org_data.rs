//! What the embedded store keeps per org besides storages: usage counts per storage and UTC
//! day, and the limits set through the admin API.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::EmbeddedStore;
use crate::registry::store::{StoreError, UsageCount};

/// `{org}\n{storage}\n{YYYY-MM-DD}` -> requests and bytes, big-endian.
pub(super) const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");

/// `{org}` -> the limits' JSON.
pub(super) const LIMITS: TableDefinition<&str, &str> = TableDefinition::new("limits");

fn usage_key(org: &str, storage: &str, day: &str) -> String {
    format!("{org}\n{storage}\n{day}")
}

/// Requests, bytes and upstream bytes, big-endian (values written before upstream bytes
/// were counted have 16 bytes: those read as 0).
fn counts(value: &[u8]) -> (u64, u64, u64) {
    let number = |range: std::ops::Range<usize>| {
        value
            .get(range)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    };
    (number(0..8), number(8..16), number(16..24))
}

impl EmbeddedStore {
    /// Adds `counts` to the stored ones, all in one transaction.
    pub fn add_usage(&self, counts_to_add: &[UsageCount]) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut table = tx.open_table(USAGE)?;
            for c in counts_to_add {
                let key = usage_key(&c.org, &c.storage, &c.day);
                let (requests, bytes, upstream) = table.get(key.as_str())?.map_or((0, 0, 0), |v| counts(v.value()));
                let mut value = [0u8; 24];
                value[..8].copy_from_slice(&(requests + c.requests).to_be_bytes());
                value[8..16].copy_from_slice(&(bytes + c.bytes).to_be_bytes());
                value[16..].copy_from_slice(&(upstream + c.upstream_bytes).to_be_bytes());
                table.insert(key.as_str(), value.as_slice())?;
            }
            Ok(())
        })
    }

    /// The org's counts for days `from..=to` (`YYYY-MM-DD`), by storage and day.
    pub fn usage(&self, org: &str, from: &str, to: &str) -> Result<Vec<UsageCount>, StoreError> {
        let prefix = format!("{org}\n");
        self.with("read usage", |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(USAGE)?;
            let mut out = Vec::new();
            for row in table.range(prefix.as_str()..)? {
                let (key, value) = row?;
                let Some(rest) = key.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                let Some((storage, day)) = rest.split_once('\n') else {
                    continue;
                };
                if (from..=to).contains(&day) {
                    let (requests, bytes, upstream_bytes) = counts(value.value());
                    out.push(UsageCount {
                        org: org.to_string(),
                        storage: storage.to_string(),
                        day: day.to_string(),
                        requests,
                        bytes,
                        upstream_bytes,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Sets (`Some`) or removes the org's limits.
    pub fn put_limits(&self, org: &str, limits: Option<&str>) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut table = tx.open_table(LIMITS)?;
            match limits {
                Some(json) => table.insert(org, json).map(drop)?,
                None => table.remove(org).map(drop)?,
            }
            Ok(())
        })
    }

    /// The org's limits, if set.
    pub fn limits(&self, org: &str) -> Result<Option<String>, StoreError> {
        self.with("read limits", |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(LIMITS)?;
            Ok(table.get(org)?.map(|v| v.value().to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(org: &str, storage: &str, day: &str, requests: u64, bytes: u64) -> UsageCount {
        UsageCount {
            org: org.into(),
            storage: storage.into(),
            day: day.into(),
            requests,
            bytes,
            upstream_bytes: bytes / 2,
        }
    }

    #[test]
    fn usage_adds_up_per_org_storage_and_day_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .add_usage(&[
                count("acme", "main", "2026-12-01", 2, 100),
                count("acme", "main", "2026-12-02", 1, 5),
            ])
            .unwrap();
        store
            .add_usage(&[
                count("acme", "main", "2026-12-01", 3, 50),
                count("acme-x", "main", "2026-12-01", 9, 9),
            ])
            .unwrap();
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store.usage("acme", "2026-12-01", "2026-12-01").unwrap(),
            [count("acme", "main", "2026-12-01", 5, 150)]
        );
        assert_eq!(store.usage("acme", "2026-11-01", "2026-12-31").unwrap().len(), 2);
        assert!(store.usage("globex", "2026-01-01", "2026-12-31").unwrap().is_empty());
    }

    #[test]
    fn counts_written_before_upstream_bytes_read_as_none_fetched() {
        let mut old = [0u8; 16];
        old[7] = 2;
        old[15] = 9;
        assert_eq!(counts(&old), (2, 9, 0));
        assert_eq!(counts(&[]), (0, 0, 0));
    }

    #[test]
    fn limits_are_set_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put_limits("acme", Some("{\"x\":1}")).unwrap();
        assert_eq!(store.limits("acme").unwrap().as_deref(), Some("{\"x\":1}"));
        assert_eq!(store.load().unwrap().limits.len(), 1);
        store.put_limits("acme", None).unwrap();
        assert_eq!(store.limits("acme").unwrap(), None);
    }
}

//! Usage (README "Usage"): requests served, body bytes sent, and the bytes that came from the
//! bucket for them (`upstream_bytes`: less than `bytes` by what the edge cache saved), per
//! org, storage and UTC day. A
//! request adds to counters in memory (a short lock, no I/O); every [`FLUSH_EVERY`] the
//! counters go to the registry's store in one write, where every replica's add up. A flush
//! that fails keeps its counts for the next one, so a database outage loses nothing while
//! the replica lives; a replica that dies loses at most one interval. Without a store (no
//! `[registry]` master key or URL) the counts stay in memory.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, SystemTime};

use crate::registry::store::UsageCount;
use crate::registry::{RegistryError, Storages};

/// How often counts are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Org, storage and day (days since the Unix epoch, UTC: no date is formatted per request).
type Key = (String, String, u64);

pub use crate::telemetry::metrics::UsageMetrics;

/// What one key counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    bytes: u64,
    upstream_bytes: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.upstream_bytes += other.upstream_bytes;
    }
}

/// Shards of the pending counts: a request counts in its serving thread's shard
/// ([`crate::lane`]), so that threads never wait on one another's lock per request.
const SHARDS: usize = 16;

pub struct Usage {
    pending: [Mutex<HashMap<Key, Counts>>; SHARDS],
    /// Only what nothing can store: counts of a gateway without a store.
    kept: Mutex<HashMap<Key, Counts>>,
    metrics: UsageMetrics,
}

/// `YYYY-MM-DD` of `at`, in UTC.
pub fn day_of(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_string()
}

fn day_number(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400
}

fn day_text(day: u64) -> String {
    day_of(SystemTime::UNIX_EPOCH + Duration::from_secs(day * 86_400))
}

impl Usage {
    pub fn new(metrics: UsageMetrics) -> Usage {
        Usage {
            pending: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            kept: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// One request of `org`'s `storage` that sent `bytes` of body, `upstream_bytes` of them
    /// as they came from the bucket (0 for an answer from the edge cache, whose fetches are
    /// counted by [`Usage::fetched`]).
    pub fn record(&self, org: &str, storage: &str, bytes: u64, upstream_bytes: u64) {
        self.add(
            org,
            storage,
            Counts {
                requests: 1,
                bytes,
                upstream_bytes,
            },
        );
    }

    /// Bytes the edge cache fetched from `org`'s `storage`'s bucket.
    pub fn fetched(&self, org: &str, storage: &str, upstream_bytes: u64) {
        self.add(
            org,
            storage,
            Counts {
                upstream_bytes,
                ..Counts::default()
            },
        );
    }

    fn add(&self, org: &str, storage: &str, counts: Counts) {
        let key = (org.to_string(), storage.to_string(), day_number(SystemTime::now()));
        let shard = &self.pending[crate::lane::pick(SHARDS)];
        *shard.lock().expect("usage lock").entry(key).or_default() += counts;
    }

    /// Everything counted and not yet flushed, taken out of every shard.
    fn take_pending(&self) -> HashMap<Key, Counts> {
        let mut batch = HashMap::new();
        for shard in &self.pending {
            let taken = std::mem::take(&mut *shard.lock().expect("usage lock"));
            merge(&mut batch, taken);
        }
        batch
    }

    /// Writes what was counted since the last flush to `storages`' store; on failure the
    /// counts wait for the next flush.
    pub async fn flush(&self, storages: &Storages) {
        let batch = self.take_pending();
        if batch.is_empty() {
            return;
        }
        let Some(store) = storages.store() else {
            let mut kept = self.kept.lock().expect("usage lock");
            merge(&mut kept, batch);
            return;
        };
        let counts: Vec<UsageCount> = batch.iter().map(|(key, counts)| usage_count(key, *counts)).collect();
        match store.add_usage(&counts).await {
            Ok(()) => {
                self.metrics.flushed.inc();
            }
            Err(e) => {
                self.metrics.failed.inc();
                tracing::warn!(error = %e, "usage counts could not be stored; kept for the next try");
                merge(&mut self.pending[0].lock().expect("usage lock"), batch);
            }
        }
    }

    /// `org`'s usage for days `from..=to`: the store's (every replica's), or this
    /// replica's without a store. Counts not yet flushed are not in it.
    pub async fn of(
        &self,
        storages: &Storages,
        org: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageCount>, RegistryError> {
        match storages.store() {
            Some(store) => Ok(store.usage(org, from, to).await?),
            None => {
                let kept = self.kept.lock().expect("usage lock");
                let mut out: Vec<UsageCount> = kept
                    .iter()
                    .filter(|((o, ..), _)| o == org)
                    .map(|(key, counts)| usage_count(key, *counts))
                    .filter(|count| (from..=to).contains(&count.day.as_str()))
                    .collect();
                out.sort_by(|a, b| (&a.storage, &a.day).cmp(&(&b.storage, &b.day)));
                Ok(out)
            }
        }
    }
}

/// The stored form of one key's counts.
fn usage_count((org, storage, day): &Key, counts: Counts) -> UsageCount {
    UsageCount {
        org: org.clone(),
        storage: storage.clone(),
        day: day_text(*day),
        requests: counts.requests,
        bytes: counts.bytes,
        upstream_bytes: counts.upstream_bytes,
    }
}

fn merge(into: &mut HashMap<Key, Counts>, from: HashMap<Key, Counts>) {
    for (key, counts) in from {
        *into.entry(key).or_default() += counts;
    }
}

/// Flushes every [`FLUSH_EVERY`] while `usage` and `storages` live.
pub fn spawn_flusher(usage: Weak<Usage>, storages: Weak<Storages>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (Some(usage), Some(storages)) = (usage.upgrade(), storages.upgrade()) else {
                return;
            };
            usage.flush(&storages).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(
            day_of(SystemTime::UNIX_EPOCH + Duration::from_secs(86_399)),
            "1970-01-01"
        );
        assert_eq!(
            day_of(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400)),
            "1970-01-02"
        );
    }

    #[test]
    fn day_numbers_name_the_same_day() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_199);
        assert_eq!(day_text(day_number(at)), day_of(at));
        assert_eq!(day_text(20_788), "2026-12-01");
    }

    #[test]
    fn counts_of_every_serving_thread_are_taken_together() {
        let usage = std::sync::Arc::new(Usage::new(UsageMetrics::default()));
        let threads: Vec<_> = (0..2 * SHARDS + 3)
            .map(|lane| {
                let usage = usage.clone();
                std::thread::spawn(move || {
                    crate::lane::enter(lane);
                    usage.record("acme", "main", 10, 4);
                    usage.fetched("acme", "main", 100);
                    usage.record("acme", &format!("s{}", lane % 2), 1, 0);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let batch = usage.take_pending();
        let n = (2 * SHARDS + 3) as u64;
        // Summed over days: a run across midnight UTC counts on two.
        let of = |storage: &str| {
            let mut sum = Counts::default();
            for (_, counts) in batch.iter().filter(|((org, s, _), _)| org == "acme" && s == storage) {
                sum += *counts;
            }
            sum
        };
        assert_eq!(
            of("main"),
            Counts {
                requests: n,
                bytes: 10 * n,
                upstream_bytes: 104 * n
            }
        );
        assert_eq!(of("s0").requests + of("s1").requests, n);
        assert!(usage.take_pending().is_empty(), "taken once");
    }

    #[test]
    fn counts_add_up_per_key() {
        let mut into = HashMap::new();
        let key = ("acme".to_string(), "main".to_string(), 20_788);
        let counts = |requests, bytes, upstream_bytes| Counts {
            requests,
            bytes,
            upstream_bytes,
        };
        merge(&mut into, HashMap::from([(key.clone(), counts(1, 10, 10))]));
        merge(&mut into, HashMap::from([(key.clone(), counts(2, 5, 0))]));
        merge(&mut into, HashMap::from([(key.clone(), counts(0, 0, 7))]));
        assert_eq!(into[&key], counts(3, 15, 17));
    }
}

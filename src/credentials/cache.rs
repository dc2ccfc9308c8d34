//! The cache of temporary credentials (moka), one per issuer (STS, Entra, Google): each entry
//! lives until its own `expiry - refresh_margin`; concurrent misses for one key share one
//! request to the issuer; a failure is remembered for `failure_cache`; while the issuer is
//! down, credentials that have not really expired yet keep being used. A refresh keeps only
//! the request that began it waiting: requests that arrive while it runs are served with the
//! credentials it replaces, as long as those are still valid, so an issuer that is slow or
//! cut off (a refresh waits for its timeout) holds up one request, not every request.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::error::GatewayError;
pub use crate::telemetry::metrics::CacheMetrics;
use moka::future::Cache;
use moka::Expiry;

/// Credentials this close to their real expiry are never used: a request signed with them
/// could reach the bucket after they expired.
const SAFETY: Duration = Duration::from_secs(30);

/// One cache entry.
#[derive(Clone)]
enum Cached<V> {
    /// Fresh from the issuer.
    Fresh { value: V, expires_at: SystemTime },
    /// The issuer failed at refresh time, but these (older) credentials are still valid.
    Stale { value: V, expires_at: SystemTime },
    /// The issuer failed and no valid credentials are left.
    Failed(GatewayError),
}

impl<V> Cached<V> {
    fn into_result(self) -> Result<V, GatewayError> {
        match self {
            Cached::Fresh { value, .. } | Cached::Stale { value, .. } => Ok(value),
            Cached::Failed(err) => Err(err),
        }
    }
}

/// How long each kind of entry lives.
struct Lifetimes {
    refresh_margin: Duration,
    failure_cache: Duration,
}

impl Lifetimes {
    fn of<V>(&self, value: &Cached<V>, now: SystemTime) -> Duration {
        match value {
            Cached::Fresh { expires_at, .. } => fresh_lifetime(*expires_at, now, self.refresh_margin),
            Cached::Stale { expires_at, .. } => {
                let left = expires_at
                    .duration_since(now)
                    .unwrap_or_default()
                    .saturating_sub(SAFETY);
                self.failure_cache.min(left)
            }
            Cached::Failed(_) => self.failure_cache,
        }
    }
}

/// `expires_at - refresh_margin`; credentials shorter-lived than the margin are kept for half
/// their remaining life instead, so that they are neither discarded at once nor used too long.
pub fn fresh_lifetime(expires_at: SystemTime, now: SystemTime, refresh_margin: Duration) -> Duration {
    let left = expires_at.duration_since(now).unwrap_or_default();
    if left > refresh_margin {
        left - refresh_margin
    } else {
        left / 2
    }
}

impl<V> Expiry<String, Cached<V>> for Lifetimes {
    fn expire_after_create(&self, _key: &String, value: &Cached<V>, _created_at: Instant) -> Option<Duration> {
        Some(self.of(value, SystemTime::now()))
    }
}

/// Temporary credentials of one issuer, by key (a storage, a tenant).
pub struct CredentialCache<V: Clone + Send + Sync + 'static> {
    entries: Cache<String, Cached<V>>,
    /// The last good credentials per key, until they really expire: the fallback while the
    /// issuer is down.
    last_good: Cache<String, (V, SystemTime)>,
    /// The keys whose credentials are being asked for right now.
    refreshing: Mutex<HashSet<String>>,
    pub metrics: CacheMetrics,
}

/// Marks a key as being refreshed, until dropped (also when the request that began the
/// refresh goes away: moka then hands the refresh to a request still waiting for it).
struct Refreshing<'a> {
    keys: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> Refreshing<'a> {
    /// Marks `key`; `None` when another request marked it first.
    fn begin(keys: &'a Mutex<HashSet<String>>, key: &str) -> Option<Refreshing<'a>> {
        let mut marked = keys.lock().unwrap_or_else(|e| e.into_inner());
        marked.insert(key.to_string()).then(|| Refreshing {
            keys,
            key: key.to_string(),
        })
    }
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

impl<V: Clone + Send + Sync + 'static> CredentialCache<V> {
    pub fn new(refresh_margin: Duration, failure_cache: Duration, metrics: CacheMetrics) -> CredentialCache<V> {
        let entries = Cache::builder()
            .max_capacity(100_000)
            .expire_after(Lifetimes {
                refresh_margin,
                failure_cache,
            })
            .build();
        let last_good = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(24 * 3600))
            .build();
        CredentialCache {
            entries,
            last_good,
            refreshing: Mutex::new(HashSet::new()),
            metrics,
        }
    }

    /// The credentials of `key`, from `fetch` on a miss (one fetch for concurrent misses).
    pub async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<V, GatewayError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, SystemTime), GatewayError>>,
    {
        if let Some(entry) = self.entries.get(key).await {
            self.metrics.hits.inc();
            return entry.into_result();
        }
        let marked = Refreshing::begin(&self.refreshing, key);
        if marked.is_none() {
            // Another request is asking the issuer: what it replaces serves meanwhile.
            if let Some((value, expires_at)) = self.last_good.get(key).await {
                if expires_at > SystemTime::now() + SAFETY {
                    self.metrics.hits.inc();
                    return Ok(value);
                }
            }
        }
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_insert_with(self.load(key, fetch))
            .await;
        drop(marked);
        let counter = if entry.is_fresh() {
            &self.metrics.misses
        } else {
            &self.metrics.hits
        };
        counter.inc();
        entry.into_value().into_result()
    }

    /// Forgets the credentials of `key` (the bucket said they expired, or the storage changed).
    pub async fn invalidate(&self, key: &str) {
        self.entries.invalidate(key).await;
        self.last_good.invalidate(key).await;
    }

    async fn load<F, Fut>(&self, key: &str, fetch: F) -> Cached<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, SystemTime), GatewayError>>,
    {
        match fetch().await {
            Ok((value, expires_at)) => {
                self.metrics.ok.inc();
                self.last_good
                    .insert(key.to_string(), (value.clone(), expires_at))
                    .await;
                Cached::Fresh { value, expires_at }
            }
            Err(err) => {
                let counter = if err.is_refusal() {
                    &self.metrics.denied
                } else {
                    &self.metrics.unavailable
                };
                counter.inc();
                match self.last_good.get(key).await {
                    Some((value, expires_at)) if expires_at > SystemTime::now() + SAFETY => {
                        tracing::warn!(
                            error = err.code(),
                            "the credentials issuer failed; using credentials that are still valid"
                        );
                        Cached::Stale { value, expires_at }
                    }
                    _ => Cached::Failed(err),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn fresh_credentials_live_until_expiry_minus_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(fresh_lifetime(now + 60 * MIN, now, 5 * MIN), 55 * MIN);
    }

    #[test]
    fn short_lived_credentials_live_half_their_time() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(fresh_lifetime(now + 4 * MIN, now, 5 * MIN), 2 * MIN);
        assert_eq!(fresh_lifetime(now - MIN, now, 5 * MIN), Duration::ZERO);
    }

    #[test]
    fn failures_live_for_failure_cache_and_stale_entries_never_past_expiry() {
        let l = Lifetimes {
            refresh_margin: 5 * MIN,
            failure_cache: Duration::from_secs(10),
        };
        let now = SystemTime::now();
        assert_eq!(
            l.of(&Cached::<u8>::Failed(GatewayError::StsUnavailable), now),
            Duration::from_secs(10)
        );
        let stale = Cached::Stale {
            value: 1u8,
            expires_at: now + Duration::from_secs(35),
        };
        assert_eq!(l.of(&stale, now), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch_and_failures_are_remembered() {
        let cache: std::sync::Arc<CredentialCache<u32>> = std::sync::Arc::new(CredentialCache::new(
            5 * MIN,
            Duration::from_secs(10),
            CacheMetrics::default(),
        ));
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get("k", || async move {
                            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok((7, SystemTime::now() + 60 * MIN))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let denied = cache
            .get("other", || async {
                Err(GatewayError::TokenExchangeDenied("no".into()))
            })
            .await;
        assert!(denied.is_err());
        let again = cache
            .get("other", || async { Ok((1, SystemTime::now() + 60 * MIN)) })
            .await;
        assert!(again.is_err(), "the failure is remembered for failure_cache");
        assert_eq!(cache.metrics.denied.get(), 1);
    }

    #[tokio::test]
    async fn a_slow_refresh_holds_up_only_the_request_that_began_it() {
        // Fresh for 200 ms, then refreshed; valid for an hour.
        let cache: std::sync::Arc<CredentialCache<u32>> = std::sync::Arc::new(CredentialCache::new(
            60 * MIN - Duration::from_millis(200),
            Duration::from_secs(10),
            CacheMetrics::default(),
        ));
        let first = cache.get("k", || async { Ok((1, SystemTime::now() + 60 * MIN)) }).await;
        assert_eq!(first.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get("k", || async {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Ok((2, SystemTime::now() + 60 * MIN))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let began = std::time::Instant::now();
        for _ in 0..20 {
            let meanwhile = cache
                .get("k", || async { panic!("a second refresh was started") })
                .await;
            assert_eq!(meanwhile.unwrap(), 1, "the credentials being replaced serve");
        }
        assert!(began.elapsed() < Duration::from_secs(1), "{:?}", began.elapsed());
        assert_eq!(slow.await.unwrap().unwrap(), 2);
        let after = cache.get("k", || async { panic!("fresh") }).await;
        assert_eq!(after.unwrap(), 2, "the refreshed ones serve once they arrive");
    }

    #[tokio::test]
    async fn without_valid_credentials_every_request_waits_for_the_refresh() {
        let cache: std::sync::Arc<CredentialCache<u32>> = std::sync::Arc::new(CredentialCache::new(
            5 * MIN,
            Duration::from_secs(10),
            CacheMetrics::default(),
        ));
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get("k", || async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok((3, SystemTime::now() + 60 * MIN))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waited = cache.get("k", || async { panic!("a second fetch was started") }).await;
        assert_eq!(waited.unwrap(), 3);
        assert_eq!(slow.await.unwrap().unwrap(), 3);
    }
}

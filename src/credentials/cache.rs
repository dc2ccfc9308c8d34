//! The cache of temporary credentials (moka): each entry lives until its own
//! `Expiration - refresh_margin`; concurrent misses for one storage share one AssumeRole; a
//! failure is remembered for `failure_cache`; while STS is down, credentials that have not
//! really expired yet keep being used.

use std::time::{Duration, Instant, SystemTime};

use aws_smithy_runtime_api::client::identity::Identity;
use moka::future::Cache;
use moka::Expiry;
use prometheus_client::metrics::counter::Counter;

use super::sts::{RoleRequest, Sts, Temporary};
use crate::error::GatewayError;
use crate::telemetry::metrics::Metrics;

/// Credentials this close to their real expiry are never used: a request signed with them
/// could reach the bucket after they expired.
const SAFETY: Duration = Duration::from_secs(30);

/// Counters shown at `/metrics` (`assetgate_assume_role_calls`, `…_credential_cache_lookups`).
#[derive(Debug, Clone, Default)]
pub struct CredentialMetrics {
    pub assume_role_ok: Counter,
    pub assume_role_denied: Counter,
    pub assume_role_unavailable: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
}

impl CredentialMetrics {
    /// The counters, registered in `metrics`.
    pub fn registered(metrics: &Metrics) -> CredentialMetrics {
        CredentialMetrics {
            assume_role_ok: metrics.assume_role("ok"),
            assume_role_denied: metrics.assume_role("denied"),
            assume_role_unavailable: metrics.assume_role("unavailable"),
            cache_hits: metrics.credential_cache("hit"),
            cache_misses: metrics.credential_cache("miss"),
        }
    }
}

/// One cache entry.
#[derive(Clone)]
enum Cached {
    /// Fresh from STS.
    Fresh { identity: Identity, expires_at: SystemTime },
    /// STS failed at refresh time, but these (older) credentials are still valid for a while.
    Stale { identity: Identity, expires_at: SystemTime },
    /// AssumeRole failed and no valid credentials are left.
    Failed(GatewayError),
}

/// How long each kind of entry lives.
struct Lifetimes {
    refresh_margin: Duration,
    failure_cache: Duration,
}

impl Lifetimes {
    fn of(&self, value: &Cached, now: SystemTime) -> Duration {
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

impl Expiry<String, Cached> for Lifetimes {
    fn expire_after_create(&self, _key: &String, value: &Cached, _created_at: Instant) -> Option<Duration> {
        Some(self.of(value, SystemTime::now()))
    }
}

/// Temporary credentials per delegated storage.
pub struct CredentialCache {
    entries: Cache<String, Cached>,
    /// The last good credentials per storage, until they really expire: the fallback while
    /// STS is down.
    last_good: Cache<String, (Identity, SystemTime)>,
    sts: Sts,
    pub metrics: CredentialMetrics,
}

impl CredentialCache {
    pub fn new(
        sts: Sts,
        refresh_margin: Duration,
        failure_cache: Duration,
        metrics: CredentialMetrics,
    ) -> CredentialCache {
        let entries = Cache::builder()
            .max_capacity(100_000)
            .expire_after(Lifetimes {
                refresh_margin,
                failure_cache,
            })
            .build();
        let last_good = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(12 * 3600))
            .build();
        CredentialCache {
            entries,
            last_good,
            sts,
            metrics,
        }
    }

    /// The identity for `key`, assuming the role on a miss.
    pub async fn identity(&self, key: &str, role: &RoleRequest<'_>) -> Result<Identity, GatewayError> {
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_insert_with(self.load(key, role))
            .await;
        let counter = if entry.is_fresh() {
            &self.metrics.cache_misses
        } else {
            &self.metrics.cache_hits
        };
        counter.inc();
        match entry.into_value() {
            Cached::Fresh { identity, .. } | Cached::Stale { identity, .. } => Ok(identity),
            Cached::Failed(err) => Err(err),
        }
    }

    /// Forgets the credentials of `key` (the bucket said they expired, or the storage changed).
    pub async fn invalidate(&self, key: &str) {
        self.entries.invalidate(key).await;
        self.last_good.invalidate(key).await;
    }

    async fn load(&self, key: &str, role: &RoleRequest<'_>) -> Cached {
        match self.sts.assume_role(role).await {
            Ok(temporary) => {
                self.metrics.assume_role_ok.inc();
                let (identity, expires_at) = (identity(&temporary), temporary.expires_at);
                self.last_good
                    .insert(key.to_string(), (identity.clone(), expires_at))
                    .await;
                Cached::Fresh { identity, expires_at }
            }
            Err(err) => {
                let counter = match err {
                    GatewayError::AssumeRoleDenied(_) => &self.metrics.assume_role_denied,
                    _ => &self.metrics.assume_role_unavailable,
                };
                counter.inc();
                match self.last_good.get(key).await {
                    Some((identity, expires_at)) if expires_at > SystemTime::now() + SAFETY => {
                        tracing::warn!(
                            error = err.code(),
                            "AssumeRole failed; using credentials that are still valid"
                        );
                        Cached::Stale { identity, expires_at }
                    }
                    _ => Cached::Failed(err),
                }
            }
        }
    }
}

fn identity(t: &Temporary) -> Identity {
    aws_credential_types::Credentials::new(
        t.access_key_id.clone(),
        t.secret_access_key.clone(),
        Some(t.session_token.clone()),
        Some(t.expires_at),
        "assetgate-sts",
    )
    .into()
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
            l.of(&Cached::Failed(GatewayError::StsUnavailable), now),
            Duration::from_secs(10)
        );
        let identity: Identity = aws_credential_types::Credentials::new("a", "b", None, None, "t").into();
        let stale = Cached::Stale {
            identity,
            expires_at: now + Duration::from_secs(35),
        };
        assert_eq!(l.of(&stale, now), Duration::from_secs(5));
    }
}

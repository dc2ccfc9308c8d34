//! Limits (README "Limits"): per org and per labeler (the token's `sub`), requests per second with a
//! burst (GCRA, the `governor` crate) and concurrent streams (responses whose bodies are
//! still being sent). Over a limit a request gets 429 `rate_limited` with `Retry-After`
//! before the bucket is asked. Limits hold per replica. State stays bounded however many
//! orgs and labelers there are: a labeler's counters go after ten idle minutes, and at most
//! [`MAX_TRACKED`] of each are kept.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

/// Orgs, and labelers, whose counters are kept at most.
pub const MAX_TRACKED: u64 = 100_000;

/// A labeler idle this long starts afresh.
const LABELER_IDLE: Duration = Duration::from_secs(600);

/// One set of limits; each is off when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests that may come at once on top of the rate (default: the rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_streams: Option<u32>,
}

/// An org's limits: for the org as a whole, and for each of its labelers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler_limits: Option<Limit>,
}

impl Limit {
    /// What is wrong with these limits, by key.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.requests_per_second == Some(0) {
            out.push(("requests_per_second", "must be at least 1"));
        }
        match (self.burst, self.requests_per_second) {
            (Some(0), _) => out.push(("burst", "must be at least 1")),
            (Some(_), None) => out.push(("burst", "needs requests_per_second")),
            _ => {}
        }
        if self.concurrent_streams == Some(0) {
            out.push(("concurrent_streams", "must be at least 1"));
        }
        out
    }

    fn quota(&self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.requests_per_second?)?;
        let burst = self.burst.and_then(NonZeroU32::new).unwrap_or(rate);
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

/// The counters of one org or labeler, for the limit they were made for.
struct Counters {
    limit: Limit,
    rate: Option<DefaultDirectRateLimiter>,
    /// Shared with the counters made for a changed limit: streams under way keep counting.
    streams: Arc<AtomicU32>,
}

impl Counters {
    fn new(limit: &Limit, streams: Arc<AtomicU32>) -> Counters {
        Counters {
            limit: limit.clone(),
            rate: limit.quota().map(RateLimiter::direct),
            streams,
        }
    }
}

/// A stream counted against a limit until dropped (the response body ends).
pub struct StreamPermit(Arc<AtomicU32>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub use crate::telemetry::metrics::LimitMetrics;

pub struct Limiter {
    orgs: Cache<String, Arc<Counters>>,
    labelers: Cache<(String, String), Arc<Counters>>,
    metrics: LimitMetrics,
}

impl Limiter {
    pub fn new(metrics: LimitMetrics) -> Limiter {
        Limiter {
            orgs: Cache::builder().max_capacity(MAX_TRACKED).build(),
            labelers: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_idle(LABELER_IDLE)
                .build(),
            metrics,
        }
    }

    /// Admits one request of labeler `sub` of `org` under `limits`: the stream permits to
    /// hold while its body is sent, or 429 `rate_limited`.
    pub fn admit(&self, org: &str, sub: Option<&str>, limits: &OrgLimits) -> Result<Vec<StreamPermit>, GatewayError> {
        let mut permits = Vec::new();
        let labeler = match (&limits.labeler_limits, sub) {
            (Some(limit), Some(sub)) => Some((
                counters(&self.labelers, &(org.to_string(), sub.to_string()), limit),
                &self.metrics.labeler_rate,
                &self.metrics.labeler_streams,
                "labeler",
            )),
            _ => None,
        };
        let whole = limits.limits.as_ref().map(|limit| {
            (
                counters(&self.orgs, org, limit),
                &self.metrics.org_rate,
                &self.metrics.org_streams,
                "organization",
            )
        });
        let scopes = [labeler, whole];
        let scopes = scopes.iter().flatten();
        // Streams first (nothing is spent on a refusal), then the rates.
        for (counters, _, refused, scope) in scopes.clone() {
            if let Some(max) = counters.limit.concurrent_streams {
                match take_stream(&counters.streams, max) {
                    Some(permit) => permits.push(permit),
                    None => {
                        refused.inc();
                        return Err(GatewayError::RateLimited { retry_after: 1, scope });
                    }
                }
            }
        }
        for (counters, refused, _, scope) in scopes {
            if let Some(rate) = &counters.rate {
                if let Err(not_until) = rate.check() {
                    refused.inc();
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    return Err(GatewayError::RateLimited {
                        retry_after: retry_after.max(1),
                        scope,
                    });
                }
            }
        }
        Ok(permits)
    }
}

/// The counters of `key` for `limit`, made afresh when the limit changed. A lookup by
/// reference: an org's request allocates nothing here once its counters exist.
fn counters<K, Q>(cache: &Cache<K, Arc<Counters>>, key: &Q, limit: &Limit) -> Arc<Counters>
where
    K: std::hash::Hash + Eq + Send + Sync + Clone + 'static + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    let held = cache.get_with_by_ref(key, || Arc::new(Counters::new(limit, Arc::default())));
    if held.limit == *limit {
        return held;
    }
    let fresh = Arc::new(Counters::new(limit, held.streams.clone()));
    cache.insert(key.to_owned(), fresh.clone());
    fresh
}

/// One more stream, unless `max` are under way.
fn take_stream(streams: &Arc<AtomicU32>, max: u32) -> Option<StreamPermit> {
    streams
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
        .ok()
        .map(|_| StreamPermit(streams.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(org: Limit, labeler: Option<Limit>) -> OrgLimits {
        OrgLimits {
            limits: Some(org),
            labeler_limits: labeler,
        }
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_holds() {
        let limiter = Limiter::new(LimitMetrics::default());
        let l = limits(
            Limit {
                requests_per_second: Some(1),
                burst: Some(3),
                ..Limit::default()
            },
            None,
        );
        for _ in 0..3 {
            assert!(limiter.admit("acme", None, &l).is_ok());
        }
        match limiter.admit("acme", None, &l) {
            Err(GatewayError::RateLimited { retry_after, scope }) => {
                assert_eq!((retry_after, scope), (1, "organization"));
            }
            other => panic!("{:?}", other.map(|p| p.len())),
        }
        assert!(limiter.admit("globex", None, &l).is_ok(), "orgs are apart");
    }

    #[test]
    fn streams_are_counted_until_their_permits_go() {
        let limiter = Limiter::new(LimitMetrics::default());
        let l = limits(
            Limit {
                concurrent_streams: Some(2),
                ..Limit::default()
            },
            None,
        );
        let a = limiter.admit("acme", None, &l).unwrap();
        let b = limiter.admit("acme", None, &l).unwrap();
        assert!(limiter.admit("acme", None, &l).is_err());
        drop(a);
        let c = limiter.admit("acme", None, &l).unwrap();
        drop((b, c));
        // A changed limit keeps counting the streams under way.
        let held = limiter.admit("acme", None, &l).unwrap();
        let one = limits(
            Limit {
                concurrent_streams: Some(1),
                ..Limit::default()
            },
            None,
        );
        assert!(limiter.admit("acme", None, &one).is_err());
        drop(held);
        assert!(limiter.admit("acme", None, &one).is_ok());
    }

    #[test]
    fn a_labeler_is_limited_alone_and_a_refusal_spends_nothing_of_the_org() {
        let limiter = Limiter::new(LimitMetrics::default());
        let org = Limit {
            requests_per_second: Some(1),
            burst: Some(2),
            ..Limit::default()
        };
        let labeler = Limit {
            concurrent_streams: Some(1),
            ..Limit::default()
        };
        let l = limits(org, Some(labeler));
        let held = limiter.admit("acme", Some("u1"), &l).unwrap();
        assert!(matches!(
            limiter.admit("acme", Some("u1"), &l),
            Err(GatewayError::RateLimited { scope: "labeler", .. })
        ));
        assert!(
            limiter.admit("acme", Some("u2"), &l).is_ok(),
            "another labeler is not held back"
        );
        drop(held);
        assert!(
            limiter.admit("acme", None, &l).is_err(),
            "the org's burst of 2 is spent"
        );
    }

    #[test]
    fn limits_are_checked_and_parsed_strictly() {
        let bad = Limit {
            requests_per_second: Some(0),
            burst: Some(0),
            concurrent_streams: Some(0),
        };
        assert_eq!(bad.problems().len(), 3);
        let orphan = Limit {
            burst: Some(5),
            ..Limit::default()
        };
        assert_eq!(orphan.problems(), [("burst", "needs requests_per_second")]);
        assert!(serde_json::from_str::<OrgLimits>(r#"{"limits": {"rps": 1}}"#).is_err());
        let parsed: OrgLimits = serde_json::from_str(r#"{"labeler_limits": {"requests_per_second": 5}}"#).unwrap();
        assert_eq!(parsed.labeler_limits.unwrap().requests_per_second, Some(5));
    }
}

//! Prometheus metrics (README "Health and metrics") with `prometheus-client`, served at `/metrics` on the admin
//! listener. Labels are bounded (route, status class, result): never an org, a storage or a
//! key, so many orgs cannot explode the series count.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `object`, `resolve`, `health` or `other`.
    pub route: &'static str,
    /// `2xx` … `5xx`.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `org` or `labeler`.
    pub scope: &'static str,
    /// `rate` or `streams`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SideLabels {
    /// `client`, `upstream` or `gateway`: who failed.
    pub side: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `cache` or `upstream`.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// `memory`.
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `data` or `admin`.
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClosedLabels {
    pub listener: &'static str,
    /// `header_timeout`, `idle_timeout`, `client_write_timeout` or `capacity`.
    pub reason: &'static str,
}

/// The connection metrics of one listener.
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    listener: &'static str,
    /// Connections open now.
    pub open: Gauge<i64, AtomicI64>,
    /// Connections closed at once because every connection was busy.
    pub refused: Counter,
    closed: Family<ClosedLabels, Counter>,
}

impl ConnectionMetrics {
    /// Counts a connection the gateway closed, by why.
    pub fn closed(&self, reason: &'static str) {
        let labels = ClosedLabels {
            listener: self.listener,
            reason,
        };
        self.closed.get_or_create(&labels).inc();
    }
}

/// The counters of one credential issuer: its answers, and its cache's hits and misses.
#[derive(Debug, Clone, Default)]
pub struct CacheMetrics {
    pub ok: Counter,
    pub denied: Counter,
    pub unavailable: Counter,
    pub hits: Counter,
    pub misses: Counter,
}

/// Who issues the credentials a cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    Sts,
    OAuth,
}

/// The JWKS fetches (`[auth].jwks_url`): `ok` and `failed`.
#[derive(Debug, Clone, Default)]
pub struct JwksMetrics {
    pub ok: Counter,
    pub failed: Counter,
}

/// Usage flushes to the registry by result.
#[derive(Debug, Clone, Default)]
pub struct UsageMetrics {
    pub flushed: Counter,
    pub failed: Counter,
}

/// 429 refusals, by scope (`org`, `labeler`) and reason (`rate`, `streams`).
#[derive(Debug, Clone, Default)]
pub struct LimitMetrics {
    pub org_rate: Counter,
    pub org_streams: Counter,
    pub labeler_rate: Counter,
    pub labeler_streams: Counter,
}

/// The edge cache's counters and gauges (README, "Edge cache"); no org label.
#[derive(Debug, Clone, Default)]
pub struct EdgeCacheMetrics {
    /// Object requests answered from the cache (`hit`), after a 304 from the bucket
    /// (`revalidated`), fetched (`miss`), or not using the cache (`bypass`).
    pub hit: Counter,
    pub revalidated: Counter,
    pub miss: Counter,
    pub bypass: Counter,
    /// Body bytes sent from the cache, and fetched from buckets for it.
    pub from_cache: Counter,
    pub from_upstream: Counter,
    /// Bytes the memory tier holds.
    pub memory_size: Gauge<i64, AtomicI64>,
    /// Entries the memory tier dropped to make room.
    pub memory_evictions: Counter,
    /// Requests that joined a fetch already under way instead of starting their own.
    pub coalesced: Counter,
    /// Fetches for the cache that failed (the requests reading them failed with them).
    pub errors: Counter,
    /// Bytes the disk tier holds, and its files dropped to make room.
    pub disk_size: Gauge<i64, AtomicI64>,
    pub disk_evictions: Counter,
    /// Disk tier files that could not be written or read, or did not open (the request
    /// went to the bucket).
    pub disk_errors: Counter,
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// The counters of `requests` by route and status class, found once each: counting a
    /// request is then an index and an add, not a lookup in the family's map.
    request_counters: [[std::sync::OnceLock<Counter>; 5]; ROUTES.len()],
    errors: Family<SideLabels, Counter>,
    pub bytes_sent: Counter,
    pub upstream_latency: Histogram,
    pub in_flight: Gauge<i64, AtomicI64>,
    /// Stored storages this replica cannot read and skips (set when `/metrics` is read).
    pub registry_bad_rows: Gauge<i64, AtomicI64>,
    assume_role: Family<ResultLabels, Counter>,
    credential_cache: Family<ResultLabels, Counter>,
    token_requests: Family<ResultLabels, Counter>,
    token_cache: Family<ResultLabels, Counter>,
    jwks_fetches: Family<ResultLabels, Counter>,
    audit_lines: Family<ResultLabels, Counter>,
    usage_flushes: Family<ResultLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    connections_open: Family<ListenerLabels, Gauge<i64, AtomicI64>>,
    connections_refused: Family<ListenerLabels, Counter>,
    connections_closed: Family<ClosedLabels, Counter>,
    edge_cache: EdgeCacheMetrics,
}

/// The routes of `assetgate_requests_total`.
const ROUTES: [&str; 4] = ["object", "resolve", "health", "other"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("assetgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route and status class",
            requests.clone(),
        );
        let errors = Family::<SideLabels, Counter>::default();
        registry.register(
            "errors",
            "Error answers of the data plane, by who failed (client, upstream, gateway)",
            errors.clone(),
        );
        let bytes_sent = Counter::default();
        registry.register("response_body_bytes", "Body bytes sent to clients", bytes_sent.clone());
        // 1 ms .. ~32 s: from a warm local bucket to a slow cross-region one.
        let upstream_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "upstream_first_byte_seconds",
            "Time from sending a request to a bucket until its response headers",
            upstream_latency.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "in_flight_requests",
            "Requests being answered, bodies streaming included",
            in_flight.clone(),
        );
        let registry_bad_rows = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "registry_bad_rows",
            "Stored storages this replica cannot read (corrupt, altered, sealed under a dropped key, a newer version's) and skips",
            registry_bad_rows.clone(),
        );
        let assume_role = Family::<ResultLabels, Counter>::default();
        registry.register(
            "assume_role_calls",
            "AssumeRole calls by result (ok, denied, unavailable)",
            assume_role.clone(),
        );
        let credential_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "credential_cache_lookups",
            "Temporary credential lookups by result (hit, miss)",
            credential_cache.clone(),
        );
        let token_requests = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_requests",
            "OAuth token requests to Entra ID or Google by result (ok, denied, unavailable)",
            token_requests.clone(),
        );
        let token_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_cache_lookups",
            "OAuth access token lookups by result (hit, miss)",
            token_cache.clone(),
        );
        let jwks_fetches = Family::<ResultLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "Fetches of [auth].jwks_url by result (ok, failed)",
            jwks_fetches.clone(),
        );
        let audit_lines = Family::<ResultLabels, Counter>::default();
        registry.register(
            "audit_lines",
            "Audit lines by result (written, dropped: the queue was full or the disk failed)",
            audit_lines.clone(),
        );
        let usage_flushes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "usage_flushes",
            "Writes of usage counts to the registry by result (ok, failed: kept for the next)",
            usage_flushes.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by scope (org, labeler) and reason (rate, streams)",
            rate_limited.clone(),
        );
        let connections_open = Family::<ListenerLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "connections",
            "Client connections open, by listener",
            connections_open.clone(),
        );
        let connections_refused = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed on arrival because max_connections were all busy",
            connections_refused.clone(),
        );
        let connections_closed = Family::<ClosedLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the gateway closed: header, idle or client write timeout, or to make room",
            connections_closed.clone(),
        );
        let cache_requests = Family::<ResultLabels, Counter>::default();
        let cache_bytes = Family::<SourceLabels, Counter>::default();
        let cache_size = Family::<TierLabels, Gauge<i64, AtomicI64>>::default();
        let cache_evictions = Family::<TierLabels, Counter>::default();
        let requests_of = |result| cache_requests.get_or_create(&ResultLabels { result }).clone();
        let bytes_of = |source| cache_bytes.get_or_create(&SourceLabels { source }).clone();
        // One statement each: `get_or_create` holds the family's lock until the end of its
        // statement, and creating a second label needs it.
        let memory_size = cache_size.get_or_create(&TierLabels { tier: "memory" }).clone();
        let disk_size = cache_size.get_or_create(&TierLabels { tier: "disk" }).clone();
        let memory_evictions = cache_evictions.get_or_create(&TierLabels { tier: "memory" }).clone();
        let disk_evictions = cache_evictions.get_or_create(&TierLabels { tier: "disk" }).clone();
        let edge_cache = EdgeCacheMetrics {
            hit: requests_of("hit"),
            revalidated: requests_of("revalidated"),
            miss: requests_of("miss"),
            bypass: requests_of("bypass"),
            from_cache: bytes_of("cache"),
            from_upstream: bytes_of("upstream"),
            memory_size,
            memory_evictions,
            coalesced: Counter::default(),
            errors: Counter::default(),
            disk_size,
            disk_evictions,
            disk_errors: Counter::default(),
        };
        registry.register(
            "cache_requests",
            "Object requests by what the edge cache did (hit, revalidated, miss, bypass)",
            cache_requests,
        );
        registry.register(
            "cache_bytes",
            "Object bytes sent from the edge cache (cache) and fetched from buckets for it (upstream)",
            cache_bytes,
        );
        registry.register("cache_size_bytes", "Bytes the edge cache holds, by tier", cache_size);
        registry.register(
            "cache_evictions",
            "Edge cache entries dropped to make room, by tier",
            cache_evictions,
        );
        registry.register(
            "cache_coalesced",
            "Requests that joined a fetch of the same slice already under way",
            edge_cache.coalesced.clone(),
        );
        registry.register(
            "cache_fetch_errors",
            "Fetches for the edge cache that failed or were cut",
            edge_cache.errors.clone(),
        );
        registry.register(
            "cache_disk_errors",
            "Edge cache disk files that could not be written or read, or did not open (the bucket answered)",
            edge_cache.disk_errors.clone(),
        );
        Metrics {
            edge_cache,
            registry,
            requests,
            request_counters: Default::default(),
            errors,
            bytes_sent,
            upstream_latency,
            in_flight,
            registry_bad_rows,
            assume_role,
            credential_cache,
            token_requests,
            token_cache,
            jwks_fetches,
            audit_lines,
            usage_flushes,
            rate_limited,
            connections_open,
            connections_refused,
            connections_closed,
        }
    }

    /// The edge cache's handles.
    pub fn edge_cache(&self) -> EdgeCacheMetrics {
        self.edge_cache.clone()
    }

    /// The connection metrics of `listener` (`data` or `admin`).
    pub fn connections(&self, listener: &'static str) -> ConnectionMetrics {
        let labels = ListenerLabels { listener };
        ConnectionMetrics {
            listener,
            open: self.connections_open.get_or_create(&labels).clone(),
            refused: self.connections_refused.get_or_create(&labels).clone(),
            closed: self.connections_closed.clone(),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        let labels = || RequestLabels {
            route,
            status: ["1xx", "2xx", "3xx", "4xx", "5xx"][class],
        };
        match ROUTES.iter().position(|r| *r == route) {
            Some(r) => self.request_counters[r][class]
                .get_or_init(|| self.requests.get_or_create(&labels()).clone())
                .inc(),
            None => self.requests.get_or_create(&labels()).inc(),
        };
    }

    /// Counts one error answer, by who failed.
    pub fn error(&self, side: &'static str) {
        self.errors.get_or_create(&SideLabels { side }).inc();
    }

    /// The counters of the JWKS fetches.
    pub fn jwks(&self) -> JwksMetrics {
        let count = |result| self.jwks_fetches.get_or_create(&ResultLabels { result }).clone();
        JwksMetrics {
            ok: count("ok"),
            failed: count("failed"),
        }
    }

    /// The audit's counters.
    pub fn audit(&self) -> super::lines::Counters {
        let count = |result| self.audit_lines.get_or_create(&ResultLabels { result }).clone();
        super::lines::Counters {
            written: count("written"),
            dropped: count("dropped"),
        }
    }

    /// The usage flusher's counters.
    pub fn usage(&self) -> UsageMetrics {
        let count = |result| self.usage_flushes.get_or_create(&ResultLabels { result }).clone();
        UsageMetrics {
            flushed: count("ok"),
            failed: count("failed"),
        }
    }

    /// The limiter's refusal counters.
    pub fn limits(&self) -> LimitMetrics {
        let count = |scope, reason| self.rate_limited.get_or_create(&LimitLabels { scope, reason }).clone();
        LimitMetrics {
            org_rate: count("org", "rate"),
            org_streams: count("org", "streams"),
            labeler_rate: count("labeler", "rate"),
            labeler_streams: count("labeler", "streams"),
        }
    }

    /// The counters of one credential cache: AWS temporary credentials (`Issuer::Sts`,
    /// `assume_role_calls` and `credential_cache_lookups`) or OAuth access tokens
    /// (`Issuer::OAuth`, `token_requests` and `token_cache_lookups`).
    pub fn credential_counters(&self, issuer: Issuer) -> CacheMetrics {
        let (calls, lookups) = match issuer {
            Issuer::Sts => (&self.assume_role, &self.credential_cache),
            Issuer::OAuth => (&self.token_requests, &self.token_cache),
        };
        let call = |result| calls.get_or_create(&ResultLabels { result }).clone();
        let lookup = |result| lookups.get_or_create(&ResultLabels { result }).clone();
        CacheMetrics {
            ok: call("ok"),
            denied: call("denied"),
            unavailable: call("unavailable"),
            hits: lookup("hit"),
            misses: lookup("miss"),
        }
    }

    /// A guard counting one request in flight until it is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// One request in flight; decrements the gauge when dropped.
pub struct InFlight(Gauge<i64, AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({})", self.0.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.request("object", 206);
        m.request("object", 200);
        m.request("object", 404);
        m.request("resolve", 503);
        m.bytes_sent.inc_by(1234);
        m.upstream_latency.observe(0.003);
        m.credential_counters(Issuer::Sts).ok.inc();
        m.credential_counters(Issuer::Sts).hits.inc();
        m.credential_counters(Issuer::OAuth).misses.inc();
        let guard = m.in_flight();
        let text = m.encode();
        for line in [
            "assetgate_requests_total{route=\"object\",status=\"2xx\"} 2",
            "assetgate_requests_total{route=\"resolve\",status=\"5xx\"} 1",
            "assetgate_requests_total{route=\"object\",status=\"4xx\"} 1",
            "assetgate_response_body_bytes_total 1234",
            "assetgate_upstream_first_byte_seconds_count 1",
            "assetgate_in_flight_requests 1",
            "assetgate_assume_role_calls_total{result=\"ok\"} 1",
            "assetgate_credential_cache_lookups_total{result=\"hit\"} 1",
            "assetgate_token_cache_lookups_total{result=\"miss\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        drop(guard);
        assert_eq!(m.in_flight.get(), 0);
    }
}

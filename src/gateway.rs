//! The state every request shares: registry, credentials, policy (tokens, CORS, caching),
//! upstream client, metrics. What SIGHUP may change lives in [`Policy`] and the registry's
//! config storages, swapped atomically; the rest needs a restart.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::config::{Config, CorsConfig};
use crate::credentials::Credentials;
use crate::registry::{RegistryError, Storages};
use crate::secret::Secret;
use crate::telemetry::metrics::Metrics;
use crate::tls::{self, TlsError};
use crate::token::AuthConfig;
use crate::token::TokenVerifier;
use crate::upstream::UpstreamClient;

/// The settings a reload swaps in at once.
pub struct Policy {
    /// Labeler token verification.
    pub tokens: TokenVerifier,
    /// Token keys and lifetime limit, for minting through the admin API.
    pub auth: AuthConfig,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<Secret>,
    /// Global CORS origins and preflight max-age.
    pub cors: CorsConfig,
    /// `Cache-Control` used when the bucket sends none.
    pub cache_control: HeaderValue,
}

impl Policy {
    fn new(config: &Config) -> Policy {
        if config.auth.allow_anonymous {
            tracing::warn!(
                "auth.allow_anonymous is on: requests without a token are served; never do this in production"
            );
        }
        Policy {
            tokens: TokenVerifier::new(&config.auth),
            auth: config.auth.clone(),
            admin_token: config.admin.token.clone(),
            cors: config.cors.clone(),
            cache_control: config.cache_control.clone(),
        }
    }
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("server.upstream_ca_file: {0}")]
    Tls(TlsError),
    #[error("audit.path: cannot open {0}: {1}")]
    Audit(String, std::io::Error),
    #[error("cache.disk: {0}")]
    Cache(#[from] crate::cache::DiskError),
}

/// Shared state of both listeners.
pub struct Gateway {
    /// Orgs and storages, from the config file and the admin API.
    pub storages: Arc<Storages>,
    /// What requests are authorized with: static keys, temporary credentials from
    /// AssumeRole, OAuth tokens of Entra ID and Google.
    pub credentials: Credentials,
    /// Tokens, CORS, caching, admin token: replaced as a whole on reload.
    pub policy: ArcSwap<Policy>,
    /// The audit trail (`[audit].path`).
    pub audit: Option<Arc<crate::audit::Audit>>,
    /// Requests and bytes per org, storage and day, on their way to the registry.
    pub usage: Arc<crate::usage::Usage>,
    /// Per-org and per-labeler limits.
    pub limiter: crate::limits::Limiter,
    /// Trusted proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The platform's key set for labeler tokens (`[auth].jwks_url`).
    pub jwks: Option<Arc<crate::token::jwks::Jwks>>,
    /// Buckets of delegated API storages that showed they belong to their org.
    pub proofs: crate::proof::Proofs,
    /// Pooled clients towards buckets.
    pub upstream: UpstreamClient,
    /// Longest pause in an upstream body before the transfer is aborted.
    pub idle_timeout: Duration,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The edge cache; `None` when `[cache].memory` is 0.
    pub cache: Option<crate::cache::ObjectCache>,
    /// Set once shutdown has begun: `/readyz` then answers 503.
    pub draining: AtomicBool,
}

impl Gateway {
    /// The gateway of `config`: its storages and the stored ones (see [`Storages::open`]),
    /// and the extra CA bundle for HTTPS endpoints.
    pub async fn open(config: &Config) -> Result<Gateway, StartError> {
        let extra_roots = match &config.server.upstream_ca_file {
            Some(path) => tls::certificates(path).map_err(StartError::Tls)?,
            None => Vec::new(),
        };
        let metrics = Metrics::new();
        let server = &config.server;
        let upstream = UpstreamClient::new(
            server.threads,
            server.upstream_connect_timeout,
            server.upstream_first_byte_timeout,
            server.max_upstream_requests,
            config.registry.allow_private_endpoints.clone(),
            extra_roots,
        );
        let jwks = match &config.auth.jwks_url {
            Some(url) => Some(key_set(url, upstream.clone(), &metrics, config.auth.jwks_refresh).await),
            None => None,
        };
        let audit = match &config.audit_path {
            Some(path) => Some(Arc::new(
                crate::audit::Audit::open(path, metrics.audit()).map_err(|e| StartError::Audit(path.clone(), e))?,
            )),
            None => None,
        };
        let storages = Storages::open(config).await?;
        let cache = crate::cache::ObjectCache::new(
            &config.cache,
            server.upstream_idle_timeout,
            metrics.edge_cache(),
            config.registry.master_keys.as_deref().map(|k| &k.current),
        )?;
        if let Some(cache) = cache.clone() {
            // A storage that changed or went takes its cached objects with it, and so does a
            // purge stored by any replica.
            let retiring = cache.clone();
            storages.on_retired(Box::new(move |org, id, now| retiring.retire(org, id, now)));
            storages.on_purge(Box::new(move |purge| cache.purge_behind(purge)));
        }
        let usage = Arc::new(crate::usage::Usage::new(metrics.usage()));
        crate::usage::spawn_flusher(Arc::downgrade(&usage), Arc::downgrade(&storages));
        Ok(Gateway {
            jwks,
            audit,
            usage,
            limiter: crate::limits::Limiter::new(metrics.limits()),
            trusted_proxies: config.server.trusted_proxies.clone(),
            storages,
            credentials: Credentials::new(config.identities(), &metrics, upstream.clone()),
            policy: ArcSwap::from_pointee(Policy::new(config)),
            proofs: crate::proof::Proofs::new(config.sts.failure_cache),
            upstream,
            idle_timeout: server.upstream_idle_timeout,
            cache,
            metrics,
            draining: AtomicBool::new(false),
        })
    }

    /// What reading a bucket's ownership marker takes.
    pub fn proof_means(&self) -> crate::proof::Means<'_> {
        crate::proof::Means {
            credentials: &self.credentials,
            client: &self.upstream,
            storages: &self.storages,
        }
    }

    /// Whether `[azure]` gives the gateway an Entra app (for `entra_delegation` storages).
    pub fn has_entra_app(&self) -> bool {
        self.credentials.has_entra_app()
    }

    /// `/readyz`: 200 `ok` when serving; 503 `draining` during shutdown, `loading` until the
    /// shared registry has been loaded once. The body also counts the stored storages this
    /// replica cannot read (`badRows`), which do not make it unready.
    pub fn readiness(&self) -> (http::StatusCode, serde_json::Value) {
        let (status, state) = if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            (http::StatusCode::SERVICE_UNAVAILABLE, "draining")
        } else if !self.storages.ready() {
            (http::StatusCode::SERVICE_UNAVAILABLE, "loading")
        } else {
            (http::StatusCode::OK, "ok")
        };
        let body = serde_json::json!({ "status": state, "badRows": self.storages.bad_rows() });
        (status, body)
    }

    /// Swaps in the orgs, storages, CORS origins, token keys, caching and admin token of
    /// `config`. Listen addresses, TLS file paths, timeouts, `[sts]` and `[registry]` keep
    /// their values until a restart.
    pub fn reload(&self, config: &Config) {
        self.policy.store(Arc::new(Policy::new(config)));
        self.storages.reload_config(&config.orgs);
    }
}

/// The key set of `url`, fetched once now and every `refresh` while the gateway lives.
async fn key_set(
    url: &http::Uri,
    client: UpstreamClient,
    metrics: &Metrics,
    refresh: Duration,
) -> Arc<crate::token::jwks::Jwks> {
    let set = Arc::new(crate::token::jwks::Jwks::new(url.clone(), client, metrics.jwks()));
    set.refresh().await;
    let weak = Arc::downgrade(&set);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(set) = weak.upgrade() else { return };
            set.refresh().await;
        }
    });
    set
}

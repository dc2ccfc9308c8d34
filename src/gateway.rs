//! The state every request shares: registry, token keys, CORS policy, upstream client.

use std::time::Duration;

use http::HeaderValue;

use crate::config::{Config, CorsConfig};
use crate::credentials::Credentials;
use crate::registry::Registry;
use crate::token::TokenVerifier;
use crate::upstream::UpstreamClient;

/// Shared, read-only state of the data plane.
pub struct Gateway {
    /// Orgs and storages.
    pub registry: Registry,
    /// Signing identities: static keys, and temporary credentials from AssumeRole.
    pub credentials: Credentials,
    /// Labeler token verification.
    pub tokens: TokenVerifier,
    /// Global CORS origins and preflight max-age.
    pub cors: CorsConfig,
    /// `Cache-Control` used when the bucket sends none.
    pub cache_control: HeaderValue,
    /// Pooled client towards buckets.
    pub upstream: UpstreamClient,
    /// Longest pause in an upstream body before the transfer is aborted.
    pub idle_timeout: Duration,
}

impl Gateway {
    pub fn new(config: &Config) -> Gateway {
        if config.auth.allow_anonymous {
            tracing::warn!(
                "auth.allow_anonymous is on: requests without a token are served; never do this in production"
            );
        }
        Gateway {
            registry: Registry::from_config(config),
            credentials: Credentials::new(&config.sts, config.server.upstream_connect_timeout),
            tokens: TokenVerifier::new(&config.auth),
            cors: config.cors.clone(),
            cache_control: HeaderValue::from_str(&config.cache_control).expect("validated in config"),
            upstream: UpstreamClient::new(
                config.server.upstream_connect_timeout,
                config.server.upstream_first_byte_timeout,
            ),
            idle_timeout: config.server.upstream_idle_timeout,
        }
    }
}

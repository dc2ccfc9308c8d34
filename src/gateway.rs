//! The state every request shares: registry, token keys, CORS policy, upstream client.

use std::time::Duration;

use http::HeaderValue;

use crate::config::{AuthConfig, Config, CorsConfig};
use crate::credentials::Credentials;
use crate::registry::{RegistryError, Storages};
use crate::secret::Secret;
use crate::token::TokenVerifier;
use crate::upstream::guard::EndpointPolicy;
use crate::upstream::UpstreamClient;

/// Shared, read-only state of the data plane.
pub struct Gateway {
    /// Orgs and storages, from the config file and the admin API.
    pub storages: Storages,
    /// Signing identities: static keys, and temporary credentials from AssumeRole.
    pub credentials: Credentials,
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
    /// Pooled client towards buckets.
    pub upstream: UpstreamClient,
    /// Longest pause in an upstream body before the transfer is aborted.
    pub idle_timeout: Duration,
}

impl Gateway {
    /// The gateway with the config's storages and the stored ones (see [`Storages::open`]).
    pub fn open(config: &Config) -> Result<Gateway, RegistryError> {
        let storages = Storages::open(config)?;
        Ok(Gateway {
            storages,
            ..Gateway::new(config)
        })
    }

    /// The gateway with the config's storages only.
    pub fn new(config: &Config) -> Gateway {
        if config.auth.allow_anonymous {
            tracing::warn!(
                "auth.allow_anonymous is on: requests without a token are served; never do this in production"
            );
        }
        Gateway {
            storages: Storages::from_config(config),
            credentials: Credentials::new(&config.sts, config.server.upstream_connect_timeout),
            tokens: TokenVerifier::new(&config.auth),
            auth: config.auth.clone(),
            admin_token: config.admin.token.clone(),
            cors: config.cors.clone(),
            cache_control: HeaderValue::from_str(&config.cache_control).expect("validated in config"),
            upstream: UpstreamClient::new(
                config.server.upstream_connect_timeout,
                config.server.upstream_first_byte_timeout,
                EndpointPolicy::new(&config.registry.allow_private_endpoints),
            ),
            idle_timeout: config.server.upstream_idle_timeout,
        }
    }
}

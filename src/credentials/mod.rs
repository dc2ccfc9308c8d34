//! What a storage signs with: static keys (turned into a signing identity once, when the
//! storage is registered), or temporary credentials from AssumeRole (`sts`), cached per
//! storage (`cache`).

pub mod cache;
pub mod sts;

use aws_smithy_runtime_api::client::identity::Identity;

use crate::config::{Storage, StorageCredentials, StsConfig};
use crate::error::GatewayError;
use crate::telemetry::metrics::Metrics;
use crate::upstream::sign;

pub use cache::{CredentialCache, CredentialMetrics};

/// How a storage gets its signing identity.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Access key and secret (and maybe a session token) from the storage's definition.
    Static(Identity),
    /// IAM-role delegation.
    Delegated(Delegation),
}

/// A delegated storage's role, and the cache key of its credentials: it changes when the
/// role or external ID changes, so rotated settings never reuse old credentials.
#[derive(Debug, Clone)]
pub struct Delegation {
    pub cache_key: String,
    pub role_arn: String,
    pub external_id: String,
    pub session_name: String,
}

impl CredentialSource {
    /// The credential source of `storage` of `org`.
    pub fn for_storage(org: &str, storage: &Storage) -> CredentialSource {
        match &storage.credentials {
            StorageCredentials::AccessKey(keys) => CredentialSource::Static(sign::identity(keys)),
            StorageCredentials::AssumeRole { role_arn, external_id } => CredentialSource::Delegated(Delegation {
                cache_key: format!("{org}\n{}\n{role_arn}\n{external_id}", storage.id),
                role_arn: role_arn.clone(),
                external_id: external_id.clone(),
                session_name: sts::role_session_name(org, &storage.id),
            }),
        }
    }

    pub fn is_delegated(&self) -> bool {
        matches!(self, CredentialSource::Delegated(_))
    }
}

/// Resolves credential sources to identities.
pub struct Credentials {
    cache: CredentialCache,
}

impl Credentials {
    pub fn new(config: &StsConfig, connect_timeout: std::time::Duration, metrics: &Metrics) -> Credentials {
        let sts = sts::Sts::new(config.clone(), connect_timeout);
        let counters = CredentialMetrics::registered(metrics);
        Credentials {
            cache: CredentialCache::new(sts, config.refresh_margin, config.failure_cache, counters),
        }
    }

    /// The identity to sign the next request with.
    pub async fn identity(&self, source: &CredentialSource) -> Result<Identity, GatewayError> {
        match source {
            CredentialSource::Static(identity) => Ok(identity.clone()),
            CredentialSource::Delegated(d) => {
                let role = sts::RoleRequest {
                    role_arn: &d.role_arn,
                    external_id: &d.external_id,
                    session_name: &d.session_name,
                };
                self.cache.identity(&d.cache_key, &role).await
            }
        }
    }

    /// Drops cached credentials of `source` (the bucket said they expired).
    pub async fn invalidate(&self, source: &CredentialSource) {
        if let CredentialSource::Delegated(d) = source {
            self.cache.invalidate(&d.cache_key).await;
        }
    }

    /// AssumeRole and cache counters.
    pub fn metrics(&self) -> &CredentialMetrics {
        &self.cache.metrics
    }
}

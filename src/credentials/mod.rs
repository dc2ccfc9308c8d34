//! What a storage's requests are authorized with ([`Authorization`]), and where that comes
//! from ([`CredentialSource`]): static keys, prepared once when the storage is registered;
//! temporary AWS credentials from AssumeRole (`sts`); a bearer token of the gateway's Entra
//! app for the customer's tenant (`entra`); a Google access token for a service account key
//! or by impersonation (`google`). Temporary credentials are cached per storage or tenant
//! (`cache`), one request to the issuer at a time, renewed before they expire.

pub mod cache;
pub mod entra;
pub mod google;
pub mod pinned;
pub mod settings;
pub mod signing_keys;
pub mod sts;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::GatewayError;
use crate::secret::Secret;
use crate::telemetry::metrics::{Issuer, Metrics};
use crate::upstream::Endpoint;
use crate::upstream::{Trust, UpstreamClient};
pub use cache::{CacheMetrics, CredentialCache};
pub use google::ServiceAccountKey;
pub use pinned::{Pin, TokenDestinations};
pub use settings::{AzureConfig, GcpConfig, StaticKeys, StsConfig};
pub use signing_keys::SigningKeys;

/// What a request to a storage is signed or authorized with.
#[derive(Clone)]
pub enum Authorization {
    /// AWS Signature Version 4 (S3, S3-compatible services, GCS HMAC keys).
    SigV4(SigningKeys),
    /// Azure Shared Key: the account and its decoded key.
    SharedKey { account: String, key: Arc<Vec<u8>> },
    /// An Azure shared access signature, added to the URL's query.
    Sas(Secret),
    /// An OAuth 2.0 access token (Entra, Google). A token of the gateway's own identity is
    /// pinned to its cloud: it is sent only where its [`Pin`] allows.
    Bearer { token: Secret, pin: Option<Pin> },
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authorization::SigV4(_) => "SigV4(***)",
            Authorization::SharedKey { .. } => "SharedKey(***)",
            Authorization::Sas(_) => "Sas(***)",
            Authorization::Bearer { .. } => "Bearer(***)",
        })
    }
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

/// Where a storage's authorization comes from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Static keys or a SAS: the same for every request.
    Ready(Authorization),
    /// IAM-role delegation: AssumeRole with the org's external ID.
    AssumeRole(Delegation),
    /// The gateway's Entra app, consented in the customer's tenant, for a storage of
    /// `account` whose requests go to `endpoint`.
    Entra {
        tenant: String,
        account: String,
        endpoint: Endpoint,
    },
    /// A Google service account key of the storage; its `token_uri` is reached with `trust`.
    GoogleKey {
        key: Arc<ServiceAccountKey>,
        cache_key: String,
        trust: Trust,
    },
    /// The gateway's own Google identity, impersonating the customer's service account, for
    /// a storage whose requests go to `endpoint`.
    Impersonate {
        service_account: String,
        cache_key: String,
        endpoint: Endpoint,
    },
}

impl CredentialSource {
    /// Whether the credentials expire (and the bucket may refuse them as expired).
    pub fn is_temporary(&self) -> bool {
        !matches!(self, CredentialSource::Ready(_))
    }

    /// Whether this is AssumeRole (the `assume_role` validation check).
    pub fn is_delegated(&self) -> bool {
        matches!(self, CredentialSource::AssumeRole(_))
    }

    fn cache_key(&self) -> Option<&str> {
        match self {
            CredentialSource::Ready(_) => None,
            CredentialSource::AssumeRole(d) => Some(&d.cache_key),
            CredentialSource::Entra { tenant, .. } => Some(tenant),
            CredentialSource::GoogleKey { cache_key, .. } | CredentialSource::Impersonate { cache_key, .. } => {
                Some(cache_key)
            }
        }
    }
}

/// Resolves credential sources to authorizations, through the caches.
pub struct Credentials {
    sts: sts::Sts,
    aws: CredentialCache<SigningKeys>,
    entra: entra::Entra,
    google: google::Google,
    tokens: CredentialCache<Secret>,
    /// Where tokens of the gateway's own identity may go.
    destinations: Arc<TokenDestinations>,
}

/// The gateway's own identities, as configured: what [`Credentials`] are made of.
#[derive(Debug, Clone, Copy)]
pub struct Identities<'a> {
    pub sts: &'a StsConfig,
    pub azure: Option<&'a AzureConfig>,
    pub gcp: &'a GcpConfig,
    /// How long connecting to STS may take.
    pub connect_timeout: std::time::Duration,
}

impl Identities<'_> {
    /// Where tokens of these identities may go.
    pub fn destinations(&self) -> TokenDestinations {
        TokenDestinations::of(self.azure, self.gcp)
    }
}

impl Credentials {
    pub fn new(identities: Identities<'_>, metrics: &Metrics, client: UpstreamClient) -> Credentials {
        let sts = identities.sts;
        Credentials {
            sts: sts::Sts::new(sts.clone(), identities.connect_timeout),
            aws: CredentialCache::new(
                sts.refresh_margin,
                sts.failure_cache,
                metrics.credential_counters(Issuer::Sts),
            ),
            destinations: Arc::new(identities.destinations()),
            entra: entra::Entra::new(identities.azure.cloned(), client.clone()),
            google: google::Google::new(identities.gcp.clone(), client),
            tokens: CredentialCache::new(
                sts.refresh_margin,
                sts.failure_cache,
                metrics.credential_counters(Issuer::OAuth),
            ),
        }
    }

    /// The authorization to sign the next request with.
    pub async fn authorize(&self, source: &CredentialSource) -> Result<Authorization, GatewayError> {
        match source {
            CredentialSource::Ready(auth) => Ok(auth.clone()),
            // The cache lookups and the requests for new credentials (the STS SDK's, an OAuth
            // exchange) are large futures: boxed, they cost only where they run instead of
            // making every request's future KiBs larger, copied each time it moves.
            _ => Box::pin(self.temporary(source)).await,
        }
    }

    /// Temporary credentials: cached, or asked for.
    async fn temporary(&self, source: &CredentialSource) -> Result<Authorization, GatewayError> {
        match source {
            CredentialSource::Ready(auth) => Ok(auth.clone()),
            CredentialSource::AssumeRole(d) => {
                let role = sts::RoleRequest {
                    role_arn: &d.role_arn,
                    external_id: &d.external_id,
                    session_name: &d.session_name,
                };
                let identity = self
                    .aws
                    .get(&d.cache_key, || async {
                        let t = Box::pin(self.sts.assume_role(&role)).await?;
                        let expires_at = t.expires_at;
                        Ok((sts::identity(t), expires_at))
                    })
                    .await?;
                Ok(Authorization::SigV4(identity))
            }
            CredentialSource::Entra {
                tenant,
                account,
                endpoint,
            } => {
                let pin = Pin::azure(account, self.destinations.clone());
                pinned_to(&pin, endpoint, "Azure")?;
                let token = self
                    .tokens
                    .get(&format!("entra\n{tenant}"), || Box::pin(self.entra.token(tenant)))
                    .await?;
                Ok(Authorization::Bearer { token, pin: Some(pin) })
            }
            CredentialSource::GoogleKey { key, cache_key, trust } => {
                let token = self
                    .tokens
                    .get(cache_key, || Box::pin(self.google.exchange(key, *trust)))
                    .await?;
                Ok(Authorization::Bearer { token, pin: None })
            }
            CredentialSource::Impersonate {
                service_account,
                cache_key,
                endpoint,
            } => {
                let pin = Pin::google(self.destinations.clone());
                pinned_to(&pin, endpoint, "Google")?;
                let token = self
                    .tokens
                    .get(cache_key, || async {
                        let own = self
                            .tokens
                            .get("google\ngateway", || Box::pin(self.google.own_token()))
                            .await?;
                        Box::pin(self.google.impersonate(&own, service_account)).await
                    })
                    .await?;
                Ok(Authorization::Bearer { token, pin: Some(pin) })
            }
        }
    }

    /// Drops cached credentials of `source` (the bucket said they expired, or the storage
    /// changed).
    pub async fn invalidate(&self, source: &CredentialSource) {
        match (source, source.cache_key()) {
            (CredentialSource::AssumeRole(_), Some(key)) => self.aws.invalidate(key).await,
            (CredentialSource::Entra { tenant, .. }, _) => self.tokens.invalidate(&format!("entra\n{tenant}")).await,
            (_, Some(key)) => self.tokens.invalidate(key).await,
            (_, None) => {}
        }
    }

    /// Where tokens of the gateway's own identity may go.
    pub fn destinations(&self) -> &TokenDestinations {
        &self.destinations
    }

    /// Whether the gateway has an Entra app.
    pub fn has_entra_app(&self) -> bool {
        self.entra.configured()
    }

    /// AssumeRole calls and their cache's lookups.
    pub fn sts_metrics(&self) -> &CacheMetrics {
        &self.aws.metrics
    }

    /// Entra and Google token requests and their cache's lookups.
    pub fn token_metrics(&self) -> &CacheMetrics {
        &self.tokens.metrics
    }
}

/// Refuses, before a token is asked for, a storage whose endpoint its token may not go to.
fn pinned_to(pin: &Pin, endpoint: &Endpoint, cloud: &'static str) -> Result<(), GatewayError> {
    if pin.allows(endpoint) {
        return Ok(());
    }
    tracing::warn!(endpoint = %endpoint, cloud, "refused to obtain a token of the gateway's identity for a storage whose endpoint is not its cloud's");
    Err(GatewayError::TokenNotForEndpoint(cloud))
}

/// The longest an access token of a token endpoint is kept: Entra's and Google's live an
/// hour, and an endpoint that claims more (or any number up to `u64::MAX`, which once made
/// the expiry overflow) gets a day.
pub const MAX_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// When a token handed out now expires, from the issuer's `expires_in` (seconds), at most
/// [`MAX_TOKEN_LIFETIME`] from now.
pub fn expiry_in(seconds: u64) -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(seconds).min(MAX_TOKEN_LIFETIME)
}

/// `expires`, from a token endpoint's answer, at most [`MAX_TOKEN_LIFETIME`] from now.
pub fn expiry_at(expires: SystemTime) -> SystemTime {
    expires.min(SystemTime::now() + MAX_TOKEN_LIFETIME)
}

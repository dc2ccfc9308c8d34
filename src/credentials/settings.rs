//! What the configuration file says about the gateway's own identities and static keys
//! (`[sts]`, `[azure]`, `[gcp]`, storages' keys), parsed once by `crate::config` into these
//! types.

use std::time::Duration;

use crate::secret::Secret;
use crate::upstream::Endpoint;

/// The gateway's own AWS identity and how AssumeRole is used (`[sts]`).
#[derive(Debug, Clone)]
pub struct StsConfig {
    pub region: String,
    pub endpoint: Option<Endpoint>,
    pub session_duration: Duration,
    pub refresh_margin: Duration,
    pub failure_cache: Duration,
    /// The gateway's own identity; `None` means the standard AWS credential chain.
    pub credentials: Option<StaticKeys>,
}

/// Static keys: an IAM user's, an S3-compatible service's, or GCS HMAC keys.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The gateway's own Entra app (`[azure]`), for `entra_delegation` storages.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// The multi-tenant app that customer tenants consent to.
    pub client_id: String,
    pub client_secret: Secret,
    /// The token endpoint's base: `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: Endpoint,
    /// Endpoints besides Azure's own that the app's tokens may be sent to (an emulator, a
    /// private endpoint).
    pub endpoints: Vec<Endpoint>,
}

/// The gateway's own Google identity (`[gcp]`), for `impersonate` storages.
#[derive(Debug, Clone)]
pub struct GcpConfig {
    /// Its service account key; without one, the metadata server's account.
    pub key: Option<std::sync::Arc<super::ServiceAccountKey>>,
    /// The IAM Credentials API.
    pub iam_endpoint: Endpoint,
    /// The metadata server (when there is no key).
    pub metadata: Endpoint,
    /// Endpoints besides Google's own that impersonation tokens may be sent to.
    pub endpoints: Vec<Endpoint>,
}

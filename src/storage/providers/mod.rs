//! One module per provider, each the one place for what differs between them: its settings
//! and credentials (read from a draft, stored with secrets sealed, shown in the admin API),
//! addressing, request signing, error mapping, asset-URL forms and validation checks. The
//! rest of the gateway sees a [`Provider`] through the [`Backend`] trait; adding a provider
//! is adding a module and a variant here.

pub mod azure;
pub mod gcs;
pub mod s3;

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::draft::Context;
use super::draft::{Draft, Style};
use super::Storage;
use crate::credentials::{Authorization, CredentialSource};
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::storage::asset_url::AssetUrl;
use crate::upstream::Endpoint;
use crate::upstream::Trust;

/// The kinds of storage, by the names the configuration file and the admin API use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aws,
    S3Compatible,
    Gcs,
    Azure,
}

impl Kind {
    /// `aws`, `s3_compatible`, `gcs`, `azure`; the admin API also takes the names labeling
    /// platforms use (`AWS`, `minio`, `GCP`, `AZURE`, ...).
    pub fn parse(name: &str, style: Style) -> Option<Kind> {
        let canonical = match name {
            "aws" => Some(Kind::Aws),
            "s3_compatible" => Some(Kind::S3Compatible),
            "gcs" => Some(Kind::Gcs),
            "azure" => Some(Kind::Azure),
            _ => None,
        };
        if style == Style::Config {
            return canonical;
        }
        match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "aws" | "s3" | "amazon_s3" => Some(Kind::Aws),
            "s3_compatible" | "minio" | "s3compatible" => Some(Kind::S3Compatible),
            "gcs" | "gcp" | "google" => Some(Kind::Gcs),
            "azure" | "azure_blob" | "azureblob" => Some(Kind::Azure),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Aws => "aws",
            Kind::S3Compatible => "s3_compatible",
            Kind::Gcs => "gcs",
            Kind::Azure => "azure",
        }
    }

    /// What a bucket (Azure: container) name must look like.
    pub fn bucket_rule(self) -> fn(&str) -> Result<(), String> {
        match self {
            Kind::Azure => super::rules::check_container,
            _ => super::rules::check_bucket,
        }
    }
}

/// A storage's provider, with its settings and credentials.
#[derive(Debug, Clone)]
pub enum Provider {
    S3(s3::S3),
    Gcs(gcs::Gcs),
    Azure(azure::Azure),
}

/// What a provider does, implemented once per provider module.
pub trait Backend: Send + Sync {
    fn kind(&self) -> Kind;

    /// The endpoint requests go to when the storage names none.
    fn default_endpoint(&self) -> Endpoint;

    /// Whether the storage cannot work without an endpoint of its own.
    fn needs_endpoint(&self) -> bool {
        false
    }

    /// Why the storage may not send its requests to `endpoint` (its own or the provider's
    /// default), if it may not: a token of the gateway's own identity goes only to its cloud.
    fn endpoint_problem(&self, _endpoint: &Endpoint, _cx: &Context<'_>) -> Option<String> {
        None
    }

    /// Whether an endpoint may carry this path (`""` always may).
    fn endpoint_path_allowed(&self, path: &str) -> bool {
        path.is_empty()
    }

    /// Where the storage's credentials come from, prepared once per storage.
    fn credential_source(&self, org: &str, storage: &Storage, trust: Trust) -> CredentialSource;

    /// The URL of an object, its key encoded exactly once.
    fn object_url(&self, storage: &Storage, bucket: &str, key: &str) -> String;

    /// Signs (or otherwise authorizes) a request built for this storage; every header on it
    /// is final.
    fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        auth: &Authorization,
        now: SystemTime,
    ) -> Result<(), GatewayError>;

    /// What an error answer of the provider means.
    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError;

    /// Whether the provider answers `Range: bytes=-N` itself (Azure does not).
    fn suffix_ranges(&self) -> bool {
        true
    }

    /// Whether an error says the provider refused temporary credentials that fresh ones
    /// could fix.
    fn stale_credentials(&self, err: &GatewayError) -> bool;

    /// (bucket, raw key) of an asset URL of this storage, or `url_outside_storage`.
    fn locate<'a>(&self, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError>;

    /// The provider's fields of the storage object of the admin API. Never a secret.
    fn view(&self, out: &mut Map<String, Value>);

    /// The stored form of the settings, secrets passed through `seal`.
    fn stored(&self, seal: &mut dyn FnMut(&str) -> String) -> Map<String, Value>;

    /// These settings with what a PATCH body changes.
    fn patch(&self, d: &mut Draft<'_>, cx: &Context<'_>) -> Provider;

    /// The external ID a delegated storage assumes its role with.
    fn external_id_mut(&mut self) -> Option<&mut String> {
        None
    }
}

impl Provider {
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Provider::S3(p) => p,
            Provider::Gcs(p) => p,
            Provider::Azure(p) => p,
        }
    }

    fn backend_mut(&mut self) -> &mut dyn Backend {
        match self {
            Provider::S3(p) => p,
            Provider::Gcs(p) => p,
            Provider::Azure(p) => p,
        }
    }

    pub fn kind(&self) -> Kind {
        self.backend().kind()
    }

    /// The external ID of a delegated storage (AWS roles).
    pub fn external_id_mut(&mut self) -> Option<&mut String> {
        self.backend_mut().external_id_mut()
    }
}

/// The provider settings a draft of `kind` gives.
pub fn from_draft(kind: Kind, d: &mut Draft<'_>, cx: &Context<'_>) -> Option<Provider> {
    match kind {
        Kind::Aws | Kind::S3Compatible => s3::from_draft(kind, d, cx).map(Provider::S3),
        Kind::Gcs => gcs::from_draft(d, cx).map(Provider::Gcs),
        Kind::Azure => azure::from_draft(d, cx).map(Provider::Azure),
    }
}

/// Runs the validation checks of `subject`'s provider with the storage's authorization (or
/// why there is none); `object` (`bucket/key`) is read if given.
pub async fn validate(
    subject: super::validation::Subject<'_>,
    auth: Result<Authorization, GatewayError>,
    object: Option<&str>,
) -> super::validation::Report {
    match &subject.storage.provider {
        Provider::S3(p) => s3::checks::run(p, subject, auth, object).await,
        Provider::Gcs(p) => gcs::checks::run(p, subject, auth, object).await,
        Provider::Azure(p) => azure::checks::run(p, subject, auth, object).await,
    }
}

/// The provider settings of a stored record; `open` opens sealed secrets.
pub fn from_stored(
    provider: &str,
    settings: &Map<String, Value>,
    open: &mut dyn FnMut(&str) -> Result<Secret, String>,
) -> Result<Provider, String> {
    let kind = Kind::parse(provider, Style::Config).ok_or_else(|| format!("provider {provider}"))?;
    Ok(match kind {
        Kind::Aws | Kind::S3Compatible => Provider::S3(s3::from_stored(kind, settings, open)?),
        Kind::Gcs => Provider::Gcs(gcs::from_stored(settings, open)?),
        Kind::Azure => Provider::Azure(azure::from_stored(settings, open)?),
    })
}

/// A stored string setting.
pub(crate) fn stored_text(settings: &Map<String, Value>, name: &str) -> Result<String, String> {
    settings
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{name} is missing"))
}

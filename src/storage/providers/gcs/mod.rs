//! Google Cloud Storage, on its XML API (`https://storage.googleapis.com/{bucket}/{key}`):
//! a service account key (exchanged for an access token, `crate::credentials::google`),
//! impersonation of a service account by the gateway's own Google identity, or HMAC keys
//! (SigV4, as S3). Addressing, error codes and listing are S3's; the asset-URL forms are
//! `gs://` and Google's hosts.

pub mod checks;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::s3::{self, address, errors, sign};
use super::{stored_text, Backend, Kind, Provider};
use crate::credentials::StaticKeys;
use crate::credentials::{google, Authorization, CredentialSource, ServiceAccountKey};
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::storage::asset_url::{foreign, foreign_scheme, own_endpoint, path_style, virtual_host, AssetUrl};
use crate::storage::draft::Context;
use crate::storage::draft::{CredentialKind, Draft, Name, Style};
use crate::storage::rules;
use crate::storage::Storage;
use crate::upstream::Trust;
use crate::upstream::{Endpoint, Scheme};

/// A GCS storage's settings.
#[derive(Debug, Clone)]
pub struct Gcs {
    pub path_style: bool,
    /// The SigV4 region of HMAC requests: `auto`, unless the storage names another.
    pub region: String,
    pub credentials: GcsCredentials,
}

/// How a GCS storage authenticates.
#[derive(Debug, Clone)]
pub enum GcsCredentials {
    /// HMAC keys of a service account (Cloud Storage → Settings → Interoperability).
    Hmac(StaticKeys),
    /// A service account key file.
    ServiceAccount(Arc<ServiceAccountKey>),
    /// The gateway's own identity impersonates this service account.
    Impersonate { service_account: String },
}

const PATH_STYLE: Name = Name {
    config: "path_style",
    api: &["pathStyle", "path_style"],
};
const REGION: Name = Name {
    config: "region",
    api: &["region"],
};
const KEY_JSON: Name = Name {
    config: "key_json",
    api: &["serviceAccountKey", "service_account_key", "keyJson"],
};
const SERVICE_ACCOUNT: Name = Name {
    config: "service_account",
    api: &["serviceAccount", "service_account"],
};

fn key(d: &mut Draft<'_>) -> Option<GcsCredentials> {
    let text = match d.cred_value(KEY_JSON)? {
        Value::String(s) => s.clone(),
        Value::Object(_) if d.style == Style::Api => d.cred_value(KEY_JSON)?.to_string(),
        _ => {
            d.fail_cred(KEY_JSON, "must be a service account key file");
            return None;
        }
    };
    match ServiceAccountKey::parse(&text) {
        Ok(key) => Some(GcsCredentials::ServiceAccount(Arc::new(key))),
        Err(m) => {
            d.fail_cred(KEY_JSON, m);
            None
        }
    }
}

fn impersonate(d: &mut Draft<'_>) -> Option<GcsCredentials> {
    let service_account = d.cred_checked(SERVICE_ACCOUNT, rules::check_service_account)?;
    Some(GcsCredentials::Impersonate { service_account })
}

fn credentials(d: &mut Draft<'_>, current: Option<&GcsCredentials>) -> Option<GcsCredentials> {
    let current_keys = match current {
        Some(GcsCredentials::Hmac(k)) => Some(k),
        _ => None,
    };
    let hmac = |d: &mut Draft<'_>| s3::static_keys(d, current_keys).map(GcsCredentials::Hmac);
    let kinds = [
        CredentialKind {
            type_name: "access_key",
            fields: &[s3::ACCESS_KEY_ID, s3::SECRET_ACCESS_KEY],
            required: "is required",
            read: &hmac,
        },
        CredentialKind {
            type_name: "service_account",
            fields: &[KEY_JSON],
            required: "is required: the service account key file's JSON",
            read: &key,
        },
        CredentialKind {
            type_name: "impersonate",
            fields: &[SERVICE_ACCOUNT],
            required: "is required",
            read: &impersonate,
        },
    ];
    d.pick_credentials(
        &kinds,
        current.is_some(),
        "give serviceAccountKey, serviceAccount (to impersonate), or HMAC keys",
    )
}

fn region(d: &mut Draft<'_>) -> Option<String> {
    d.checked(REGION, rules::check_region)
}

pub fn from_draft(d: &mut Draft<'_>, _cx: &Context<'_>) -> Option<Gcs> {
    let path_style = d.flag(PATH_STYLE).unwrap_or(true);
    let region = region(d).unwrap_or_else(|| "auto".into());
    Some(Gcs {
        path_style,
        region,
        credentials: credentials(d, None)?,
    })
}

pub fn from_stored(
    settings: &Map<String, Value>,
    open: &mut dyn FnMut(&str) -> Result<Secret, String>,
) -> Result<Gcs, String> {
    let creds = settings
        .get("credentials")
        .and_then(Value::as_object)
        .ok_or("credentials are missing")?;
    let credentials = match creds.get("type").and_then(Value::as_str) {
        Some("access_key") => GcsCredentials::Hmac(StaticKeys {
            access_key_id: stored_text(creds, "access_key_id")?,
            secret_access_key: open(&stored_text(creds, "sealed_secret")?)?,
            session_token: None,
        }),
        Some("service_account") => {
            let json = open(&stored_text(creds, "sealed_key")?)?;
            GcsCredentials::ServiceAccount(Arc::new(ServiceAccountKey::parse(json.expose())?))
        }
        Some("impersonate") => GcsCredentials::Impersonate {
            service_account: stored_text(creds, "service_account")?,
        },
        _ => return Err("unknown credentials type".into()),
    };
    Ok(Gcs {
        path_style: settings.get("pathStyle").and_then(Value::as_bool).unwrap_or(true),
        region: settings
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or("auto")
            .to_string(),
        credentials,
    })
}

impl Gcs {
    /// The token endpoint a key of the storage names: an API storage's must be Google's
    /// unless the operator allowed it like an endpoint (README "Tokens of the gateway's own identity stay in their cloud").
    pub fn token_uri(&self) -> Option<&str> {
        match &self.credentials {
            GcsCredentials::ServiceAccount(key) => Some(&key.token_uri),
            _ => None,
        }
    }
}

impl Backend for Gcs {
    fn kind(&self) -> Kind {
        Kind::Gcs
    }

    fn default_endpoint(&self) -> Endpoint {
        Endpoint {
            scheme: Scheme::Https,
            host: "storage.googleapis.com".into(),
            port: None,
        }
    }

    fn endpoint_problem(&self, endpoint: &Endpoint, cx: &Context<'_>) -> Option<String> {
        match &self.credentials {
            GcsCredentials::Impersonate { .. } if !cx.destinations.google_allows(endpoint) => {
                Some(cx.destinations.google_rule())
            }
            _ => None,
        }
    }

    fn credential_source(&self, org: &str, storage: &Storage, trust: Trust) -> CredentialSource {
        let storage_id = storage.id.as_str();
        match &self.credentials {
            GcsCredentials::Hmac(keys) => {
                CredentialSource::Ready(Authorization::SigV4(crate::credentials::SigningKeys::from_static(keys)))
            }
            GcsCredentials::ServiceAccount(key) => google::source(org, storage_id, key, trust),
            GcsCredentials::Impersonate { service_account } => CredentialSource::Impersonate {
                cache_key: format!("google\n{org}\n{storage_id}\nimpersonate\n{service_account}"),
                service_account: service_account.clone(),
                endpoint: storage.endpoint(),
            },
        }
    }

    fn object_url(&self, storage: &Storage, bucket: &str, key: &str) -> String {
        address::object_url(&storage.endpoint(), self.path_style, bucket, key)
    }

    fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        auth: &Authorization,
        now: SystemTime,
    ) -> Result<(), GatewayError> {
        match auth {
            // GCS's XML API takes SigV4 with HMAC keys, in region `auto`.
            Authorization::SigV4(identity) => sign::sign_request(request, identity, &self.region, now),
            Authorization::Bearer { token, .. } => {
                let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| GatewayError::internal("the access token cannot be a header value"))?;
                request.headers_mut().insert(header::AUTHORIZATION, value);
                Ok(())
            }
            _ => Err(GatewayError::internal(
                "a GCS storage was handed another provider's kind of credentials",
            )),
        }
    }

    fn error(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> GatewayError {
        errors::map(status, crate::xml::error_code(body).as_deref())
    }

    fn stale_credentials(&self, err: &GatewayError) -> bool {
        matches!(err, GatewayError::UpstreamCredentialsRejected(_))
    }

    fn locate<'a>(&self, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
        match asset.scheme.as_str() {
            "gs" => return Ok(virtual_host(&asset.host, asset)),
            "s3" => return Err(foreign_scheme(asset)),
            _ => {}
        }
        if let Some(found) = own_endpoint(storage, asset) {
            return found;
        }
        // `storage.googleapis.com` (and the browser's `storage.cloud.google.com`) are
        // path-style; `{bucket}.storage.googleapis.com` is virtual-hosted.
        match asset.host.as_str() {
            "storage.googleapis.com" | "storage.cloud.google.com" => path_style(asset),
            host => match host.strip_suffix(".storage.googleapis.com") {
                Some(bucket) => Ok(virtual_host(bucket, asset)),
                None => Err(foreign(host)),
            },
        }
    }

    fn view(&self, out: &mut Map<String, Value>) {
        let (access, account) = match &self.credentials {
            GcsCredentials::Hmac(_) => ("hmac", None),
            GcsCredentials::ServiceAccount(key) => ("service_account", Some(key.client_email.as_str())),
            GcsCredentials::Impersonate { service_account } => ("impersonate", Some(service_account.as_str())),
        };
        out.insert("pathStyle".into(), json!(self.path_style));
        out.insert("accessType".into(), json!(access));
        out.insert("serviceAccount".into(), json!(account));
    }

    fn stored(&self, seal: &mut dyn FnMut(&str) -> String) -> Map<String, Value> {
        let credentials = match &self.credentials {
            GcsCredentials::Hmac(keys) => s3::stored_keys(keys, seal),
            GcsCredentials::ServiceAccount(key) => {
                json!({"type": "service_account", "sealed_key": seal(key.json.expose())})
            }
            GcsCredentials::Impersonate { service_account } => {
                json!({"type": "impersonate", "service_account": service_account})
            }
        };
        let mut out = Map::new();
        out.insert("pathStyle".into(), json!(self.path_style));
        out.insert("region".into(), json!(self.region));
        out.insert("credentials".into(), credentials);
        out
    }

    fn patch(&self, d: &mut Draft<'_>, _cx: &Context<'_>) -> Provider {
        let mut next = self.clone();
        if let Some(path_style) = d.flag(PATH_STYLE) {
            next.path_style = path_style;
        }
        if let Some(region) = region(d) {
            next.region = region;
        }
        if let Some(credentials) = credentials(d, Some(&self.credentials)) {
            next.credentials = credentials;
        }
        Provider::Gcs(next)
    }
}

//! Azure Blob Storage: a storage account's containers, read with the account key, a shared
//! access signature, or a bearer token of the gateway's Entra app for the customer's tenant
//! (`crate::credentials::entra`). Its blob URLs (`address`), request authorization (`sign`,
//! with `shared_key`), error codes (`errors`), asset-URL forms (`resolve`) and validation
//! checks (`checks`) each have a module; Azure has no suffix ranges (the upstream path asks
//! for the size first).

pub mod address;
pub mod checks;
pub mod errors;
pub mod resolve;
pub mod shared_key;
pub mod sign;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::{stored_text, Backend, Kind, Provider};
use crate::credentials::{Authorization, CredentialSource};
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::storage::asset_url::AssetUrl;
use crate::storage::draft::Context;
use crate::storage::draft::{CredentialKind, Draft, Name};
use crate::storage::rules;
use crate::storage::Storage;
use crate::upstream::Trust;
use crate::upstream::{Endpoint, Scheme};
use crate::xml::error_code;

/// The REST API version every request names (`x-ms-version`).
pub const VERSION: &str = "2023-11-03";

/// An Azure storage's settings.
#[derive(Debug, Clone)]
pub struct Azure {
    /// The storage account.
    pub account: String,
    pub credentials: AzureCredentials,
}

/// How an Azure storage authenticates.
#[derive(Debug, Clone)]
pub enum AzureCredentials {
    /// The account's access key (base64).
    SharedKey(Secret),
    /// An account or container SAS (the query string, without `?`).
    Sas(Secret),
    /// The gateway's Entra app, consented in this tenant.
    Entra { tenant_id: String },
}

const ACCOUNT: Name = Name {
    config: "account",
    api: &["account", "accountName", "account_name"],
};
const ACCOUNT_KEY: Name = Name {
    config: "account_key",
    api: &["accountKey", "account_key"],
};
const SAS: Name = Name {
    config: "token",
    api: &["sasToken", "sas_token", "sas"],
};
const TENANT: Name = Name {
    config: "tenant_id",
    api: &["tenantId", "tenant_id"],
};

fn account_key(d: &mut Draft<'_>) -> Option<AzureCredentials> {
    let key = d.cred_text(ACCOUNT_KEY)?;
    match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
        Ok(bytes) if !bytes.is_empty() => Some(AzureCredentials::SharedKey(Secret::new(key.trim()))),
        _ => {
            d.fail_cred(ACCOUNT_KEY, "must be the account's access key (base64)");
            None
        }
    }
}

/// The fields of account, service and user delegation SASs
/// (<https://learn.microsoft.com/rest/api/storageservices/create-service-sas>).
const SAS_FIELDS: [&str; 27] = [
    "sv", "ss", "srt", "sp", "se", "st", "spr", "sip", "sig", "sr", "si", "sdd", "ses", "skoid", "sktid", "skt", "ske",
    "sks", "skv", "saoid", "suoid", "scid", "rscc", "rscd", "rsce", "rscl", "rsct",
];

fn sas(d: &mut Draft<'_>) -> Option<AzureCredentials> {
    let token = d.cred_text(SAS)?;
    let token = token.trim().trim_start_matches('?').to_string();
    let query_like = token.split('&').any(|p| p.starts_with("sig="))
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%&=-_.~:+/,".contains(&b));
    if query_like
        && !token
            .split('&')
            .all(|p| SAS_FIELDS.contains(&p.split('=').next().unwrap_or("")))
    {
        // Anything else (`comp`, `restype`, `snapshot`...) would change what every request
        // of the storage asks for.
        d.fail_cred(
            SAS,
            "may hold only the fields of a shared access signature (sv, sp, se, sig, ...)",
        );
        return None;
    }
    if !query_like {
        d.fail_cred(SAS, "must be a shared access signature (the query string with sig=...)");
        return None;
    }
    Some(AzureCredentials::Sas(Secret::new(token)))
}

fn tenant(d: &mut Draft<'_>, cx: &Context<'_>) -> Option<AzureCredentials> {
    let tenant_id = d.cred_checked(TENANT, rules::check_tenant)?;
    if !cx.entra_app {
        d.fail_cred(
            TENANT,
            "Entra delegation needs the gateway's Entra app, which the operator has not set up ([azure]); give an account key or a SAS",
        );
        return None;
    }
    Some(AzureCredentials::Entra { tenant_id })
}

fn credentials(d: &mut Draft<'_>, cx: &Context<'_>, current: bool) -> Option<AzureCredentials> {
    let tenant = |d: &mut Draft<'_>| tenant(d, cx);
    let kinds = [
        CredentialKind {
            type_name: "shared_key",
            fields: &[ACCOUNT_KEY],
            required: "is required",
            read: &account_key,
        },
        CredentialKind {
            type_name: "sas",
            fields: &[SAS],
            required: "is required",
            read: &sas,
        },
        CredentialKind {
            type_name: "entra_delegation",
            fields: &[TENANT],
            required: "is required",
            read: &tenant,
        },
    ];
    d.pick_credentials(
        &kinds,
        current,
        "give accountKey, sasToken, or tenantId (Entra delegation)",
    )
}

fn account(d: &mut Draft<'_>) -> Option<String> {
    d.checked(ACCOUNT, rules::check_account)
}

pub fn from_draft(d: &mut Draft<'_>, cx: &Context<'_>) -> Option<Azure> {
    let account = account(d);
    if account.is_none() && !d.has(ACCOUNT) {
        d.fail(ACCOUNT, "is required for azure storages");
    }
    let credentials = credentials(d, cx, false);
    Some(Azure {
        account: account?,
        credentials: credentials?,
    })
}

pub fn from_stored(
    settings: &Map<String, Value>,
    open: &mut dyn FnMut(&str) -> Result<Secret, String>,
) -> Result<Azure, String> {
    let creds = settings
        .get("credentials")
        .and_then(Value::as_object)
        .ok_or("credentials are missing")?;
    let credentials = match creds.get("type").and_then(Value::as_str) {
        Some("shared_key") => AzureCredentials::SharedKey(open(&stored_text(creds, "sealed_key")?)?),
        Some("sas") => AzureCredentials::Sas(open(&stored_text(creds, "sealed_token")?)?),
        Some("entra_delegation") => AzureCredentials::Entra {
            tenant_id: stored_text(creds, "tenant_id")?,
        },
        _ => return Err("unknown credentials type".into()),
    };
    Ok(Azure {
        account: stored_text(settings, "account")?,
        credentials,
    })
}

impl Backend for Azure {
    fn kind(&self) -> Kind {
        Kind::Azure
    }

    fn default_endpoint(&self) -> Endpoint {
        Endpoint {
            scheme: Scheme::Https,
            host: format!("{}.blob.core.windows.net", self.account),
            port: None,
        }
    }

    fn endpoint_problem(&self, endpoint: &Endpoint, cx: &Context<'_>) -> Option<String> {
        match &self.credentials {
            AzureCredentials::Entra { .. } if !cx.destinations.azure_allows(&self.account, endpoint) => {
                Some(cx.destinations.azure_rule(&self.account))
            }
            _ => None,
        }
    }

    fn endpoint_path_allowed(&self, path: &str) -> bool {
        path.is_empty() || path == format!("/{}", self.account)
    }

    fn credential_source(&self, _org: &str, storage: &Storage, _trust: Trust) -> CredentialSource {
        match &self.credentials {
            AzureCredentials::SharedKey(key) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(key.expose())
                    .unwrap_or_default();
                CredentialSource::Ready(Authorization::SharedKey {
                    account: self.account.clone(),
                    key: Arc::new(bytes),
                })
            }
            AzureCredentials::Sas(token) => CredentialSource::Ready(Authorization::Sas(token.clone())),
            AzureCredentials::Entra { tenant_id } => CredentialSource::Entra {
                tenant: tenant_id.clone(),
                account: self.account.clone(),
                endpoint: storage.endpoint(),
            },
        }
    }

    fn object_url(&self, storage: &Storage, container: &str, blob: &str) -> String {
        self.blob_url(&storage.endpoint(), container, blob)
    }

    fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        auth: &Authorization,
        now: SystemTime,
    ) -> Result<(), GatewayError> {
        sign::sign_request(request, auth, now)
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError {
        // HEAD answers carry the code in `x-ms-error-code` only.
        let code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| error_code(body));
        errors::map(status, code.as_deref())
    }

    fn suffix_ranges(&self) -> bool {
        false
    }

    fn stale_credentials(&self, err: &GatewayError) -> bool {
        matches!(err, GatewayError::UpstreamCredentialsRejected(_))
    }

    fn locate<'a>(&self, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
        resolve::locate(self, storage, asset)
    }

    fn view(&self, out: &mut Map<String, Value>) {
        let (access, tenant) = match &self.credentials {
            AzureCredentials::SharedKey(_) => ("shared_key", None),
            AzureCredentials::Sas(_) => ("sas", None),
            AzureCredentials::Entra { tenant_id } => ("entra_delegation", Some(tenant_id.as_str())),
        };
        out.insert("account".into(), json!(self.account));
        out.insert("accessType".into(), json!(access));
        out.insert("tenantId".into(), json!(tenant));
    }

    fn stored(&self, seal: &mut dyn FnMut(&str) -> String) -> Map<String, Value> {
        let credentials = match &self.credentials {
            AzureCredentials::SharedKey(key) => json!({"type": "shared_key", "sealed_key": seal(key.expose())}),
            AzureCredentials::Sas(token) => json!({"type": "sas", "sealed_token": seal(token.expose())}),
            AzureCredentials::Entra { tenant_id } => json!({"type": "entra_delegation", "tenant_id": tenant_id}),
        };
        let mut out = Map::new();
        out.insert("account".into(), json!(self.account));
        out.insert("credentials".into(), credentials);
        out
    }

    fn patch(&self, d: &mut Draft<'_>, cx: &Context<'_>) -> Provider {
        let mut next = self.clone();
        if let Some(account) = account(d) {
            next.account = account;
        }
        if let Some(credentials) = credentials(d, cx, true) {
            next.credentials = credentials;
        }
        Provider::Azure(next)
    }
}

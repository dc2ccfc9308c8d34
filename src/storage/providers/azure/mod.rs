//! Azure Blob Storage: a storage account's containers, read with Shared Key (`shared_key`),
//! a shared access signature, or a bearer token of the gateway's Entra app for the
//! customer's tenant (`crate::credentials::entra`). Blob URLs are
//! `https://{account}.blob.core.windows.net/{container}/{blob}`, or
//! `{endpoint}/{account}/{container}/{blob}` on an endpoint that does not name the account
//! (emulators such as Azurite). Azure has no suffix ranges (the upstream path asks for the
//! size first) and its own error codes (`x-ms-error-code`).

pub mod checks;
pub mod shared_key;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::{stored_text, Backend, Kind, Provider};
use crate::credentials::{Authorization, CredentialSource};
use crate::error::GatewayError;
use crate::route::encode_key;
use crate::secret::Secret;
use crate::storage::asset_url::{foreign, foreign_scheme, path_style, AssetUrl};
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

impl Azure {
    /// The URL path prefix of the storage's blobs on `endpoint`: the account, unless the
    /// endpoint's host names it (`{account}.blob.core.windows.net`, custom domains).
    fn account_path(&self, endpoint: &Endpoint) -> String {
        if endpoint.host.starts_with(&format!("{}.", self.account)) {
            String::new()
        } else {
            format!("/{}", self.account)
        }
    }

    /// The URL of a container-level request (`query` such as `restype=container&comp=list`).
    pub fn container_url(&self, storage: &Storage, container: &str, query: &str) -> String {
        let endpoint = storage.endpoint();
        format!("{endpoint}{}/{container}?{query}", self.account_path(&endpoint))
    }
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
        let endpoint = storage.endpoint();
        format!(
            "{endpoint}{}/{container}/{}",
            self.account_path(&endpoint),
            encode_key(blob)
        )
    }

    fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        auth: &Authorization,
        now: SystemTime,
    ) -> Result<(), GatewayError> {
        let headers = request.headers_mut();
        headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
        let date = HeaderValue::from_str(&httpdate::fmt_http_date(now))
            .map_err(|_| GatewayError::internal("x-ms-date cannot be a header value"))?;
        headers.insert("x-ms-date", date);
        let value = match auth {
            Authorization::SharedKey { account, key } => {
                let uri = request.uri();
                let text = shared_key::string_to_sign(
                    request.method().as_str(),
                    account,
                    uri.path(),
                    uri.query(),
                    request.headers(),
                );
                shared_key::authorization(account, key, &text)
            }
            Authorization::Sas(token) => {
                let uri = request.uri();
                let joined = match uri.query() {
                    Some(q) => format!("{}?{q}&{}", uri.path(), token.expose()),
                    None => format!("{}?{}", uri.path(), token.expose()),
                };
                let mut parts = uri.clone().into_parts();
                parts.path_and_query = Some(
                    joined
                        .parse()
                        .map_err(|_| GatewayError::internal("the SAS cannot be added to the URL"))?,
                );
                *request.uri_mut() = http::Uri::from_parts(parts)
                    .map_err(|e| GatewayError::internal(format!("the URL with the SAS is not valid: {e}")))?;
                return Ok(());
            }
            Authorization::Bearer { token, .. } => format!("Bearer {}", token.expose()),
            Authorization::SigV4(_) => return Err(GatewayError::internal("an Azure storage was handed SigV4 keys")),
        };
        let value = HeaderValue::from_str(&value)
            .map_err(|_| GatewayError::internal("the Authorization value cannot be a header value"))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
        Ok(())
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError {
        // HEAD answers carry the code in `x-ms-error-code` only.
        let code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| error_code(body));
        map_error(status, code.as_deref())
    }

    fn suffix_ranges(&self) -> bool {
        false
    }

    fn stale_credentials(&self, err: &GatewayError) -> bool {
        matches!(err, GatewayError::UpstreamCredentialsRejected(_))
    }

    fn locate<'a>(&self, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
        if matches!(asset.scheme.as_str(), "s3" | "gs") {
            return Err(foreign_scheme(asset));
        }
        if asset.host == format!("{}.blob.core.windows.net", self.account) {
            return path_style(asset);
        }
        match &storage.endpoint {
            Some(endpoint) if asset.host == endpoint.authority() => {
                // `{endpoint}/{account}/{container}/{blob}` on an endpoint that does not name
                // the account (emulators), `{endpoint}/{container}/{blob}` on one that does.
                let prefix = self.account_path(endpoint);
                match asset
                    .path
                    .strip_prefix(prefix.as_str())
                    .filter(|rest| rest.starts_with('/'))
                {
                    Some(rest) => path_style(&AssetUrl {
                        path: rest,
                        ..asset.clone()
                    }),
                    None => Err(foreign(&format!("{}{}", asset.host, prefix))),
                }
            }
            _ => Err(foreign(&asset.host)),
        }
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

/// Azure's error codes (SPEC §10), else the status.
/// <https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes>
pub fn map_error(status: StatusCode, code: Option<&str>) -> GatewayError {
    let named = |c: &str| c.to_string();
    match code {
        Some("BlobNotFound") => GatewayError::NoSuchKey,
        Some("ContainerNotFound" | "ResourceNotFound") => GatewayError::NoSuchBucket,
        Some(c @ ("AuthenticationFailed" | "InvalidAuthenticationInfo")) => {
            GatewayError::UpstreamCredentialsRejected(named(c))
        }
        Some(
            c @ ("AuthorizationFailure"
            | "AuthorizationPermissionMismatch"
            | "AuthorizationResourceTypeMismatch"
            | "AuthorizationSourceIPMismatch"
            | "AuthorizationProtocolMismatch"
            | "AccountIsDisabled"),
        ) => GatewayError::UpstreamAccessDenied(named(c)),
        Some("ConditionNotMet") => GatewayError::PreconditionFailed,
        Some("InvalidRange") => GatewayError::RangeNotSatisfiable,
        Some("ServerBusy" | "OperationTimedOut") => {
            GatewayError::UpstreamUnavailable("the storage asked us to slow down, try again".into())
        }
        _ => super::s3::errors::map(status, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_codes_map_as_the_spec_says() {
        let map = |s: u16, c: &str| map_error(StatusCode::from_u16(s).unwrap(), Some(c)).code();
        assert_eq!(map(404, "BlobNotFound"), "no_such_key");
        assert_eq!(map(404, "ContainerNotFound"), "no_such_bucket");
        assert_eq!(map(403, "AuthenticationFailed"), "upstream_credentials_rejected");
        assert_eq!(map(403, "AuthorizationFailure"), "upstream_access_denied");
        assert_eq!(map(403, "AuthorizationPermissionMismatch"), "upstream_access_denied");
        assert_eq!(map(412, "ConditionNotMet"), "precondition_failed");
        assert_eq!(map(416, "InvalidRange"), "range_not_satisfiable");
        assert_eq!(map(503, "ServerBusy"), "upstream_unavailable");
        let other = map_error(StatusCode::INTERNAL_SERVER_ERROR, Some("InternalError"));
        assert_eq!(
            (other.code(), other.upstream_code()),
            ("upstream_error", Some("InternalError"))
        );
    }
}

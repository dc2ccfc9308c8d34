//! AWS S3 and S3-compatible services (MinIO, SeaweedFS, Ceph, ...): an IAM user's access key
//! or IAM-role delegation (AssumeRole with the org's external ID), SigV4 signing (`sign`),
//! path-style or virtual-hosted addressing (`address`), S3's error codes (`errors`), its
//! asset-URL forms (`resolve`) and validation checks (`checks`).

pub mod address;
pub mod checks;
pub mod errors;
pub mod resolve;
pub mod sign;

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::{stored_text, Backend, Kind, Provider};
use crate::credentials::StaticKeys;
use crate::credentials::{sts, Authorization, CredentialSource, Delegation};
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::storage::asset_url::AssetUrl;
use crate::storage::draft::Context;
use crate::storage::draft::{CredentialKind, Draft, Name, Style};
use crate::storage::rules;
use crate::storage::Storage;
use crate::upstream::Endpoint;
use crate::upstream::Trust;

/// AWS itself, or another service speaking its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Aws,
    Compatible,
}

/// An S3 storage's settings.
#[derive(Debug, Clone)]
pub struct S3 {
    pub flavor: Flavor,
    /// The signing region (and, for AWS, the endpoint's).
    pub region: String,
    /// `{endpoint}/{bucket}/{key}` rather than `{bucket}.{host}/{key}`.
    pub path_style: bool,
    pub credentials: S3Credentials,
}

/// How an S3 storage authenticates.
#[derive(Debug, Clone)]
pub enum S3Credentials {
    /// Static keys, used as they are.
    AccessKey(StaticKeys),
    /// IAM-role delegation: the gateway assumes the customer's role with an external ID.
    AssumeRole {
        /// `arn:aws:iam::{account}:role/{name}`
        role_arn: String,
        /// The value the role's trust policy requires in `sts:ExternalId`.
        external_id: String,
    },
}

const REGION: Name = Name {
    config: "region",
    api: &["region"],
};
const PATH_STYLE: Name = Name {
    config: "path_style",
    api: &["pathStyle", "path_style"],
};
pub(crate) const ACCESS_KEY_ID: Name = Name {
    config: "access_key_id",
    api: &["accessKeyId", "access_key_id", "publicKey"],
};
pub(crate) const SECRET_ACCESS_KEY: Name = Name {
    config: "secret_access_key",
    api: &["secretAccessKey", "secret_access_key", "privateKey"],
};
const SESSION_TOKEN: Name = Name {
    config: "session_token",
    api: &[],
};
const ROLE_ARN: Name = Name {
    config: "role_arn",
    api: &["roleArn", "role_arn"],
};
const EXTERNAL_ID: Name = Name {
    config: "external_id",
    api: &["externalId", "external_id"],
};

/// Whether an admin API body gives a role (then the org's external ID is needed, see
/// [`Context::org_external_id`]).
pub fn mentions_role(body: &Value) -> bool {
    Draft::new(body, Style::Api).is_ok_and(|d| d.has_cred(ROLE_ARN))
}

fn region(d: &mut Draft<'_>) -> Option<String> {
    d.checked(REGION, rules::check_region)
}

pub fn from_draft(kind: Kind, d: &mut Draft<'_>, cx: &Context<'_>) -> Option<S3> {
    let flavor = if kind == Kind::Aws {
        Flavor::Aws
    } else {
        Flavor::Compatible
    };
    let region = region(d).unwrap_or_else(|| "us-east-1".into());
    let path_style = d.flag(PATH_STYLE).unwrap_or(flavor == Flavor::Compatible);
    let credentials = credentials(d, cx, None)?;
    Some(S3 {
        flavor,
        region,
        path_style,
        credentials,
    })
}

/// An access key and secret (the secret rotated alone keeps `current`'s key id).
pub(crate) fn static_keys(d: &mut Draft<'_>, current: Option<&StaticKeys>) -> Option<StaticKeys> {
    let id = d
        .cred_text(ACCESS_KEY_ID)
        .or_else(|| current.map(|k| k.access_key_id.clone()));
    let secret = d.cred_text(SECRET_ACCESS_KEY);
    let session_token = d.cred_text(SESSION_TOKEN);
    match (id, secret) {
        (Some(access_key_id), Some(secret)) => Some(StaticKeys {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: session_token.map(Secret::new),
        }),
        (None, _) => {
            d.fail_cred(ACCESS_KEY_ID, "is required with the secret access key");
            None
        }
        (Some(_), None) => {
            d.fail_cred(SECRET_ACCESS_KEY, "is required with the access key ID");
            None
        }
    }
}

fn role(d: &mut Draft<'_>, cx: &Context<'_>) -> Option<S3Credentials> {
    let role_arn = d.cred_text(ROLE_ARN)?;
    let given = d.cred_text(EXTERNAL_ID);
    if let Err(m) = rules::check_role_arn(&role_arn) {
        d.fail_cred(ROLE_ARN, m);
        return None;
    }
    let external_id = match (cx.style, given, cx.org_external_id) {
        // The operator chooses a config storage's external ID.
        (Style::Config, Some(given), _) => match rules::check_external_id(&given) {
            Ok(()) => given,
            Err(m) => {
                d.fail_cred(EXTERNAL_ID, m);
                return None;
            }
        },
        (Style::Config, None, _) => {
            d.fail_cred(EXTERNAL_ID, "is required: the value the role's trust policy names");
            return None;
        }
        // The gateway, not the customer, chooses external IDs: accepting any would let one
        // org register another org's role with that org's ID (the confused deputy of
        // https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
        (Style::Api, _, None) => {
            d.fail_cred(EXTERNAL_ID, "the organization's external ID is not available");
            return None;
        }
        (Style::Api, Some(given), Some(own)) if given != own => {
            d.fail_cred(
                EXTERNAL_ID,
                "must be this organization's own external ID (GET /admin/v1/orgs/{org}/external-id), or left out",
            );
            return None;
        }
        (Style::Api, _, Some(own)) => own.to_string(),
    };
    Some(S3Credentials::AssumeRole { role_arn, external_id })
}

/// The credentials a draft gives (`None` with a problem recorded when it gives none).
fn credentials(d: &mut Draft<'_>, cx: &Context<'_>, current: Option<&S3Credentials>) -> Option<S3Credentials> {
    let current_keys = match current {
        Some(S3Credentials::AccessKey(k)) => Some(k),
        _ => None,
    };
    let keys = |d: &mut Draft<'_>| static_keys(d, current_keys).map(S3Credentials::AccessKey);
    let role = |d: &mut Draft<'_>| role(d, cx);
    let kinds = [
        CredentialKind {
            type_name: "access_key",
            fields: &[ACCESS_KEY_ID, SECRET_ACCESS_KEY],
            required: "is required",
            read: &keys,
        },
        CredentialKind {
            type_name: "assume_role",
            fields: &[ROLE_ARN],
            required: "is required: the role's ARN",
            read: &role,
        },
    ];
    d.pick_credentials(
        &kinds,
        current.is_some(),
        "give accessKeyId and secretAccessKey, or roleArn",
    )
}

pub fn from_stored(
    kind: Kind,
    settings: &Map<String, Value>,
    open: &mut dyn FnMut(&str) -> Result<Secret, String>,
) -> Result<S3, String> {
    let flavor = if kind == Kind::Aws {
        Flavor::Aws
    } else {
        Flavor::Compatible
    };
    let creds = settings
        .get("credentials")
        .and_then(Value::as_object)
        .ok_or("credentials are missing")?;
    let credentials = match creds.get("type").and_then(Value::as_str) {
        Some("access_key") => S3Credentials::AccessKey(StaticKeys {
            access_key_id: stored_text(creds, "access_key_id")?,
            secret_access_key: open(&stored_text(creds, "sealed_secret")?)?,
            session_token: None,
        }),
        Some("assume_role") => S3Credentials::AssumeRole {
            role_arn: stored_text(creds, "role_arn")?,
            external_id: stored_text(creds, "external_id")?,
        },
        _ => return Err("unknown credentials type".into()),
    };
    Ok(S3 {
        flavor,
        region: stored_text(settings, "region")?,
        path_style: settings.get("pathStyle").and_then(Value::as_bool).unwrap_or(true),
        credentials,
    })
}

/// The stored form of static keys: the secret sealed.
pub(crate) fn stored_keys(keys: &StaticKeys, seal: &mut dyn FnMut(&str) -> String) -> Value {
    json!({"type": "access_key", "access_key_id": keys.access_key_id, "sealed_secret": seal(keys.secret_access_key.expose())})
}

impl Backend for S3 {
    fn kind(&self) -> Kind {
        match self.flavor {
            Flavor::Aws => Kind::Aws,
            Flavor::Compatible => Kind::S3Compatible,
        }
    }

    fn default_endpoint(&self) -> Endpoint {
        address::aws_endpoint(&self.region)
    }

    fn needs_endpoint(&self) -> bool {
        self.flavor == Flavor::Compatible
    }

    fn credential_source(&self, org: &str, storage: &Storage, _trust: Trust) -> CredentialSource {
        let storage_id = storage.id.as_str();
        match &self.credentials {
            S3Credentials::AccessKey(keys) => {
                CredentialSource::Ready(Authorization::SigV4(crate::credentials::SigningKeys::from_static(keys)))
            }
            S3Credentials::AssumeRole { role_arn, external_id } => CredentialSource::AssumeRole(Delegation {
                cache_key: format!("{org}\n{storage_id}\n{role_arn}\n{external_id}"),
                role_arn: role_arn.clone(),
                external_id: external_id.clone(),
                session_name: sts::role_session_name(org, storage_id),
            }),
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
            Authorization::SigV4(identity) => sign::sign_request(request, identity, &self.region, now),
            _ => Err(GatewayError::internal(
                "an S3 storage was handed another provider's kind of credentials",
            )),
        }
    }

    fn error(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> GatewayError {
        errors::map(status, crate::xml::error_code(body).as_deref())
    }

    fn stale_credentials(&self, err: &GatewayError) -> bool {
        errors::is_stale_credentials(err)
    }

    fn locate<'a>(&self, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
        resolve::locate(self, storage, asset)
    }

    fn view(&self, out: &mut Map<String, Value>) {
        let (access, role) = match &self.credentials {
            S3Credentials::AccessKey(_) => ("iam_user", None),
            S3Credentials::AssumeRole { role_arn, .. } => ("iam_delegation", Some(role_arn.as_str())),
        };
        out.insert("region".into(), json!(self.region));
        out.insert("pathStyle".into(), json!(self.path_style));
        out.insert("accessType".into(), json!(access));
        out.insert("roleArn".into(), json!(role));
    }

    fn stored(&self, seal: &mut dyn FnMut(&str) -> String) -> Map<String, Value> {
        let credentials = match &self.credentials {
            S3Credentials::AccessKey(keys) => stored_keys(keys, seal),
            S3Credentials::AssumeRole { role_arn, external_id } => {
                json!({"type": "assume_role", "role_arn": role_arn, "external_id": external_id})
            }
        };
        let mut out = Map::new();
        out.insert("region".into(), json!(self.region));
        out.insert("pathStyle".into(), json!(self.path_style));
        out.insert("credentials".into(), credentials);
        out
    }

    fn patch(&self, d: &mut Draft<'_>, cx: &Context<'_>) -> Provider {
        let mut next = self.clone();
        if let Some(region) = region(d) {
            next.region = region;
        }
        if let Some(path_style) = d.flag(PATH_STYLE) {
            next.path_style = path_style;
        }
        if let Some(credentials) = credentials(d, cx, Some(&self.credentials)) {
            next.credentials = credentials;
        }
        Provider::S3(next)
    }

    fn external_id_mut(&mut self) -> Option<&mut String> {
        match &mut self.credentials {
            S3Credentials::AssumeRole { external_id, .. } => Some(external_id),
            S3Credentials::AccessKey(_) => None,
        }
    }
}

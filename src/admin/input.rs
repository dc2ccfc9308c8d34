//! Storage request bodies of the admin API -> typed [`Storage`]. Accepts our own shape and
//! the Ango API v2 and SDK shapes (`provider: "AWS"`, `publicKey`/`privateKey`, a single
//! `bucket`); every problem is reported by field name.

use std::collections::BTreeMap;

use rand::RngCore;
use serde_json::Value;

use crate::config::{
    check_bucket, check_id, check_region, check_role_arn, default_region, Endpoint, Provider, StaticKeys, Storage,
    StorageCredentials,
};
use crate::secret::Secret;

/// Field name -> what is wrong with it.
pub type Fields = BTreeMap<String, String>;

/// Credentials as given in a body, not yet complete.
enum CredentialsDraft {
    Keys {
        access_key_id: Option<String>,
        secret: Option<String>,
    },
    Role {
        role_arn: String,
        external_id: Option<String>,
    },
}

/// Everything a body may say, each part optional until create or update decides.
struct Draft {
    id: Option<String>,
    name: Option<String>,
    provider: Option<Provider>,
    buckets: Option<Vec<String>>,
    region: Option<String>,
    endpoint: Option<Option<Endpoint>>,
    path_style: Option<bool>,
    credentials: Option<CredentialsDraft>,
}

/// Whether a body gives a role (then the org's external ID is needed, see [`create`]).
pub fn mentions_role(body: &Value) -> bool {
    let has = |v: &Value| v.get("roleArn").or_else(|| v.get("role_arn")).is_some();
    has(body) || body.get("credentials").is_some_and(has)
}

/// A body for POST: a complete storage, or the fields at fault. A role uses the org's own
/// external ID, `org_external_id`, which the caller fetched when [`mentions_role`].
pub fn create(body: &Value, org_external_id: Option<&str>) -> Result<Storage, Fields> {
    let mut fields = Fields::new();
    let draft = read(body, &mut fields);
    let provider = draft.provider.or_else(|| {
        fields
            .entry("type".into())
            .or_insert_with(|| "is required: aws, s3_compatible or gcs".into());
        None
    });
    let buckets = draft.buckets.unwrap_or_else(|| {
        fields
            .entry("buckets".into())
            .or_insert_with(|| "at least one bucket is required".into());
        Vec::new()
    });
    let credentials = match draft.credentials {
        None => {
            fields.insert(
                "credentials".into(),
                "give accessKeyId and secretAccessKey, or roleArn".into(),
            );
            None
        }
        Some(c) => complete_credentials(c, None, org_external_id, &mut fields),
    };
    let id = draft.id.unwrap_or_else(new_id);
    let (Some(provider), Some(credentials), true) = (provider, credentials, fields.is_empty()) else {
        return Err(fields);
    };
    let storage = Storage {
        name: draft.name.unwrap_or_else(|| id.clone()),
        id,
        provider,
        buckets,
        region: draft.region.unwrap_or_else(|| default_region(provider).into()),
        endpoint: draft.endpoint.flatten(),
        path_style: draft.path_style.unwrap_or(provider != Provider::Aws),
        credentials,
    };
    finish(storage)
}

/// A body for PATCH applied to `current`: buckets, region, endpoint, name, path style and
/// credentials may change; the id and provider may not.
pub fn update(current: &Storage, body: &Value, org_external_id: Option<&str>) -> Result<Storage, Fields> {
    let mut fields = Fields::new();
    let draft = read(body, &mut fields);
    if draft.id.as_ref().is_some_and(|id| *id != current.id) {
        fields.insert("_id".into(), "cannot be changed".into());
    }
    if draft.provider.is_some_and(|p| p != current.provider) {
        fields.insert("type".into(), "cannot be changed; create a new storage instead".into());
    }
    let mut storage = current.clone();
    if let Some(c) = draft.credentials {
        if let Some(c) = complete_credentials(c, Some(&current.credentials), org_external_id, &mut fields) {
            storage.credentials = c;
        }
    }
    storage.name = draft.name.unwrap_or(storage.name);
    storage.buckets = draft.buckets.unwrap_or(storage.buckets);
    storage.region = draft.region.unwrap_or(storage.region);
    storage.endpoint = draft.endpoint.unwrap_or(storage.endpoint);
    storage.path_style = draft.path_style.unwrap_or(storage.path_style);
    if !fields.is_empty() {
        return Err(fields);
    }
    finish(storage)
}

/// Rules that hold for the whole storage.
fn finish(storage: Storage) -> Result<Storage, Fields> {
    if storage.provider == Provider::S3Compatible && storage.endpoint.is_none() {
        return Err(Fields::from([(
            "endpoint".into(),
            "is required for s3_compatible storages".into(),
        )]));
    }
    Ok(storage)
}

/// A 24-hex-digit id, the shape of the ids labeling platforms use.
fn new_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(body: &Value, fields: &mut Fields) -> Draft {
    let Some(obj) = body.as_object() else {
        fields.insert("body".into(), "must be a JSON object".into());
        return Draft {
            id: None,
            name: None,
            provider: None,
            buckets: None,
            region: None,
            endpoint: None,
            path_style: None,
            credentials: None,
        };
    };
    let text = |names: &[&str], fields: &mut Fields| -> Option<String> {
        let (name, value) = names.iter().find_map(|n| obj.get(*n).map(|v| (*n, v)))?;
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Null => None,
            _ => {
                fields.insert(name.into(), "must be a non-empty string".into());
                None
            }
        }
    };
    let id = text(&["_id", "id"], fields).filter(|id| {
        check_id("_id", id)
            .map_err(|e| fields.insert("_id".into(), e.message))
            .is_ok()
    });
    let name = text(&["name"], fields);
    let provider = provider(obj, fields);
    let buckets = buckets(obj, fields);
    let region =
        text(&["region"], fields).filter(|r| check_region(r).map_err(|m| fields.insert("region".into(), m)).is_ok());
    // Parsed as given, never trimmed: what is checked must be what is used.
    let endpoint = match obj.get("endpoint") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(Value::String(s)) => match Endpoint::parse(s) {
            Ok(e) => Some(Some(e)),
            Err(m) => {
                fields.insert("endpoint".into(), m);
                None
            }
        },
        Some(_) => {
            fields.insert(
                "endpoint".into(),
                "must be a URL string like https://minio.example.com:9000".into(),
            );
            None
        }
    };
    let path_style = match obj.get("pathStyle").or_else(|| obj.get("path_style")) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            fields.insert("pathStyle".into(), "must be true or false".into());
            None
        }
    };
    let creds = obj.get("credentials").and_then(Value::as_object).unwrap_or(obj);
    let ctext = |names: &[&str], fields: &mut Fields| -> Option<String> {
        let (name, value) = names.iter().find_map(|n| creds.get(*n).map(|v| (*n, v)))?;
        match value.as_str().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => {
                fields.insert(name.into(), "must be a non-empty string".into());
                None
            }
        }
    };
    let role_arn = ctext(&["roleArn", "role_arn"], fields);
    let external_id = ctext(&["externalId", "external_id"], fields);
    let access_key_id = ctext(&["accessKeyId", "access_key_id", "publicKey"], fields);
    let secret = ctext(&["secretAccessKey", "secret_access_key", "privateKey"], fields);
    let credentials = match (role_arn, access_key_id.is_some() || secret.is_some()) {
        (Some(_), true) => {
            fields.insert(
                "credentials".into(),
                "give either access keys or a role, not both".into(),
            );
            None
        }
        (Some(role_arn), false) => Some(CredentialsDraft::Role { role_arn, external_id }),
        (None, true) => Some(CredentialsDraft::Keys { access_key_id, secret }),
        (None, false) => None,
    };
    Draft {
        id,
        name,
        provider,
        buckets,
        region,
        endpoint,
        path_style,
        credentials,
    }
}

fn provider(obj: &serde_json::Map<String, Value>, fields: &mut Fields) -> Option<Provider> {
    let (name, value) = ["type", "provider"]
        .iter()
        .find_map(|n| obj.get(*n).and_then(Value::as_str).map(|v| (*n, v)))?;
    let parsed = match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "aws" | "s3" | "amazon_s3" => Some(Provider::Aws),
        "s3_compatible" | "minio" | "s3compatible" => Some(Provider::S3Compatible),
        "gcs" | "gcp" | "google" => Some(Provider::Gcs),
        _ => None,
    };
    if parsed.is_none() {
        fields.insert(name.into(), format!("`{value}` is not one of aws, s3_compatible, gcs"));
    }
    parsed
}

fn buckets(obj: &serde_json::Map<String, Value>, fields: &mut Fields) -> Option<Vec<String>> {
    let list: Vec<String> = match (obj.get("buckets"), obj.get("bucket")) {
        (Some(Value::Array(items)), _) => {
            let names: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
            let Some(names) = names else {
                fields.insert("buckets".into(), "must be a list of bucket names".into());
                return None;
            };
            names
        }
        (Some(_), _) => {
            fields.insert("buckets".into(), "must be a list of bucket names".into());
            return None;
        }
        (None, Some(Value::String(b))) => vec![b.clone()],
        (None, Some(_)) => {
            fields.insert("bucket".into(), "must be a bucket name".into());
            return None;
        }
        (None, None) => return None,
    };
    if list.is_empty() {
        fields.insert("buckets".into(), "at least one bucket is required".into());
        return None;
    }
    let bad: Vec<String> = list.iter().filter_map(|b| check_bucket(b).err()).collect();
    if !bad.is_empty() {
        fields.insert("buckets".into(), bad.join("; "));
        return None;
    }
    Some(list)
}

fn complete_credentials(
    draft: CredentialsDraft,
    current: Option<&StorageCredentials>,
    org_external_id: Option<&str>,
    fields: &mut Fields,
) -> Option<StorageCredentials> {
    match draft {
        CredentialsDraft::Role {
            role_arn,
            external_id: given,
        } => {
            if let Err(m) = check_role_arn(&role_arn) {
                fields.insert("roleArn".into(), m);
                return None;
            }
            let Some(own) = org_external_id else {
                fields.insert(
                    "externalId".into(),
                    "the organization's external ID is not available".into(),
                );
                return None;
            };
            // The gateway, not the customer, chooses external IDs: accepting any would let
            // one org register another org's role with that org's ID (the confused deputy
            // of https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
            if given.as_deref().is_some_and(|g| g != own) {
                fields.insert(
                    "externalId".into(),
                    "must be this organization's own external ID (GET /admin/v1/orgs/{org}/external-id), or left out"
                        .into(),
                );
                return None;
            }
            Some(StorageCredentials::AssumeRole {
                role_arn,
                external_id: own.to_string(),
            })
        }
        CredentialsDraft::Keys { access_key_id, secret } => {
            // Rotating only the secret keeps the current access key ID.
            let current_id = match current {
                Some(StorageCredentials::AccessKey(k)) => Some(k.access_key_id.clone()),
                _ => None,
            };
            match (access_key_id.or(current_id), secret) {
                (Some(access_key_id), Some(secret)) => Some(StorageCredentials::AccessKey(StaticKeys {
                    access_key_id,
                    secret_access_key: Secret::new(secret),
                    session_token: None,
                })),
                (None, _) => {
                    fields.insert("accessKeyId".into(), "is required with secretAccessKey".into());
                    None
                }
                (Some(_), None) => {
                    fields.insert("secretAccessKey".into(), "is required with accessKeyId".into());
                    None
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;

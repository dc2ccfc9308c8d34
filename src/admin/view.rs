//! How a storage looks in admin API responses. Secrets are write-only: never here.

use serde_json::{json, Value};

use crate::config::StorageCredentials;
use crate::registry::record::provider_name;
use crate::registry::{Source, StorageEntry};

/// The storage object of SPEC §6.
pub fn storage(org: &str, entry: &StorageEntry) -> Value {
    let s = &entry.storage;
    let (access_type, role_arn) = match &s.credentials {
        StorageCredentials::AccessKey(_) => ("iam_user", None),
        StorageCredentials::AssumeRole { role_arn, .. } => ("iam_delegation", Some(role_arn.as_str())),
    };
    json!({
        "_id": s.id,
        "name": s.name,
        "type": provider_name(s.provider),
        "buckets": s.buckets,
        "bucket": s.buckets.first(),
        "region": s.region,
        "endpoint": s.endpoint.as_ref().map(ToString::to_string),
        "pathStyle": s.path_style,
        "accessType": access_type,
        "roleArn": role_arn,
        "organization": org,
        "source": match entry.source { Source::Config => "config", Source::Api => "api" },
        "createdAt": entry.created_at,
        "updatedAt": entry.updated_at,
    })
}

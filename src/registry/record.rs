//! Between a typed [`Storage`] and its stored form: the secret is sealed on the way in and
//! opened on the way out.

use super::sealed::{Keys, MasterKey, OpenError};
use super::store::{StoredCredentials, StoredStorage};
use crate::config::{Endpoint, Provider, StaticKeys, Storage, StorageCredentials};

/// The associated data that binds a sealed secret to its record.
fn context(org: &str, id: &str) -> String {
    format!("assetgate:storage:{org}/{id}")
}

pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Aws => "aws",
        Provider::S3Compatible => "s3_compatible",
        Provider::Gcs => "gcs",
    }
}

pub fn parse_provider(name: &str) -> Option<Provider> {
    match name {
        "aws" => Some(Provider::Aws),
        "s3_compatible" => Some(Provider::S3Compatible),
        "gcs" => Some(Provider::Gcs),
        _ => None,
    }
}

/// The stored form of `storage` of `org`, at `version`.
pub fn seal(
    org: &str,
    storage: &Storage,
    key: &MasterKey,
    created_at: &str,
    updated_at: &str,
    version: u64,
) -> StoredStorage {
    let credentials = match &storage.credentials {
        StorageCredentials::AccessKey(keys) => StoredCredentials::AccessKey {
            access_key_id: keys.access_key_id.clone(),
            sealed_secret: key.seal(&context(org, &storage.id), keys.secret_access_key.expose()),
        },
        StorageCredentials::AssumeRole { role_arn, external_id } => StoredCredentials::AssumeRole {
            role_arn: role_arn.clone(),
            external_id: external_id.clone(),
        },
    };
    StoredStorage {
        org: org.to_string(),
        id: storage.id.clone(),
        name: storage.name.clone(),
        provider: provider_name(storage.provider).to_string(),
        buckets: storage.buckets.clone(),
        region: storage.region.clone(),
        endpoint: storage.endpoint.as_ref().map(ToString::to_string),
        path_style: storage.path_style,
        credentials,
        created_at: created_at.to_string(),
        updated_at: updated_at.to_string(),
        version,
    }
}

/// Whether the record's secret (if it has one) is sealed with `key`, or it has none.
pub fn sealed_with(record: &StoredStorage, key: &MasterKey) -> bool {
    match &record.credentials {
        StoredCredentials::AccessKey { sealed_secret, .. } => {
            key.open(&context(&record.org, &record.id), sealed_secret).is_ok()
        }
        StoredCredentials::AssumeRole { .. } => true,
    }
}

/// A record that cannot become a storage.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("stored storage {0} is malformed: {1}")]
    Malformed(String, String),
}

/// The typed storage of a record, its secret opened with the current or a previous key.
pub fn open(record: &StoredStorage, keys: &Keys) -> Result<Storage, RecordError> {
    let malformed = |why: String| RecordError::Malformed(format!("{}/{}", record.org, record.id), why);
    let provider =
        parse_provider(&record.provider).ok_or_else(|| malformed(format!("provider {}", record.provider)))?;
    let endpoint = record
        .endpoint
        .as_deref()
        .map(Endpoint::parse)
        .transpose()
        .map_err(malformed)?;
    let credentials = match &record.credentials {
        StoredCredentials::AccessKey {
            access_key_id,
            sealed_secret,
        } => StorageCredentials::AccessKey(StaticKeys {
            access_key_id: access_key_id.clone(),
            secret_access_key: keys.open(&context(&record.org, &record.id), sealed_secret)?.0,
            session_token: None,
        }),
        StoredCredentials::AssumeRole { role_arn, external_id } => StorageCredentials::AssumeRole {
            role_arn: role_arn.clone(),
            external_id: external_id.clone(),
        },
    };
    Ok(Storage {
        id: record.id.clone(),
        name: record.name.clone(),
        provider,
        buckets: record.buckets.clone(),
        region: record.region.clone(),
        endpoint,
        path_style: record.path_style,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use base64::Engine as _;

    #[test]
    fn seal_then_open_gives_the_storage_back_without_the_secret_in_the_record() {
        let key = |byte: u8| {
            MasterKey::from_base64(&Secret::new(
                base64::engine::general_purpose::STANDARD.encode([byte; 32]),
            ))
            .unwrap()
        };
        let keys = Keys {
            current: key(7),
            previous: vec![],
        };
        let storage = Storage {
            id: "main".into(),
            name: "Main".into(),
            provider: Provider::S3Compatible,
            buckets: vec!["b-bucket".into()],
            region: "us-east-1".into(),
            endpoint: Some(Endpoint::parse("http://minio.internal:9000").unwrap()),
            path_style: true,
            credentials: StorageCredentials::AccessKey(StaticKeys {
                access_key_id: "AK".into(),
                secret_access_key: Secret::new("very-secret-value"),
                session_token: None,
            }),
        };
        let record = seal("acme", &storage, &keys.current, "t0", "t1", 42);
        assert!(!serde_json::to_string(&record).unwrap().contains("very-secret-value"));
        let back = open(&record, &keys).unwrap();
        assert_eq!(back.endpoint, storage.endpoint);
        match back.credentials {
            StorageCredentials::AccessKey(k) => assert_eq!(k.secret_access_key.expose(), "very-secret-value"),
            other => panic!("{other:?}"),
        }
        let moved = StoredStorage {
            id: "other".into(),
            ..record
        };
        assert!(matches!(open(&moved, &keys), Err(RecordError::Open(_))));
    }
}

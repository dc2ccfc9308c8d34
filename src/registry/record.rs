//! Between a typed [`Storage`] and its stored form: common fields as they are, the
//! provider's settings as its module stores them, every secret sealed on the way in (bound
//! to the record's org and id) and opened on the way out.

use super::sealed::{Keys, MasterKey, OpenError};
use super::store::StoredStorage;
use crate::config::Endpoint;
use crate::storage::{providers, Storage};

/// The associated data that binds a sealed secret to its record.
fn context(org: &str, id: &str) -> String {
    format!("assetgate:storage:{org}/{id}")
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
    let aad = context(org, &storage.id);
    StoredStorage {
        org: org.to_string(),
        id: storage.id.clone(),
        name: storage.name.clone(),
        provider: storage.provider.kind().name().to_string(),
        buckets: storage.buckets.clone(),
        endpoint: storage.endpoint.as_ref().map(ToString::to_string),
        settings: storage.backend().stored(&mut |secret| key.seal(&aad, secret)),
        created_at: created_at.to_string(),
        updated_at: updated_at.to_string(),
        version,
    }
}

/// Whether every secret of the record is sealed with `key` (true when it has none).
pub fn sealed_with(record: &StoredStorage, key: &MasterKey) -> bool {
    let aad = context(&record.org, &record.id);
    let mut open = |sealed: &str| {
        key.open(&aad, sealed)
            .map_err(|_| "sealed with another key".to_string())
    };
    providers::from_stored(&record.provider, &record.settings, &mut open).is_ok()
}

/// A record that cannot become a storage.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("stored storage {0} is malformed: {1}")]
    Malformed(String, String),
}

/// The typed storage of a record, its secrets opened with the current or a previous key.
pub fn open(record: &StoredStorage, keys: &Keys) -> Result<Storage, RecordError> {
    let malformed = |why: String| RecordError::Malformed(format!("{}/{}", record.org, record.id), why);
    let endpoint = record
        .endpoint
        .as_deref()
        .map(Endpoint::parse)
        .transpose()
        .map_err(malformed)?;
    let aad = context(&record.org, &record.id);
    let mut refused = None;
    let mut open = |sealed: &str| match keys.open(&aad, sealed) {
        Ok((secret, _)) => Ok(secret),
        Err(e) => {
            refused = Some(e);
            Err("a secret does not open".to_string())
        }
    };
    let provider = providers::from_stored(&record.provider, &record.settings, &mut open);
    if let Some(e) = refused {
        return Err(RecordError::Open(e));
    }
    Ok(Storage {
        id: record.id.clone(),
        name: record.name.clone(),
        buckets: record.buckets.clone(),
        endpoint,
        provider: provider.map_err(malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticKeys;
    use crate::secret::Secret;
    use crate::storage::providers::azure::{Azure, AzureCredentials};
    use crate::storage::providers::s3::{Flavor, S3Credentials, S3};
    use crate::storage::Provider;
    use base64::Engine as _;

    fn keys(byte: u8) -> Keys {
        let key = MasterKey::from_base64(&Secret::new(
            base64::engine::general_purpose::STANDARD.encode([byte; 32]),
        ))
        .unwrap();
        Keys {
            current: key,
            previous: vec![],
        }
    }

    fn storage(provider: Provider) -> Storage {
        Storage {
            id: "main".into(),
            name: "Main".into(),
            buckets: vec!["b-bucket".into()],
            endpoint: Some(Endpoint::parse("http://minio.internal:9000").unwrap()),
            provider,
        }
    }

    #[test]
    fn seal_then_open_gives_the_storage_back_without_the_secret_in_the_record() {
        let keys = keys(7);
        let storage = storage(Provider::S3(S3 {
            flavor: Flavor::Compatible,
            region: "us-east-1".into(),
            path_style: true,
            credentials: S3Credentials::AccessKey(StaticKeys {
                access_key_id: "AK".into(),
                secret_access_key: Secret::new("very-secret-value"),
                session_token: None,
            }),
        }));
        let record = seal("acme", &storage, &keys.current, "t0", "t1", 42);
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("very-secret-value"));
        assert!(json.contains(r#""pathStyle":true"#), "{json}");
        assert!(sealed_with(&record, &keys.current));
        assert!(!sealed_with(&record, &self::keys(8).current));
        let back = open(&record, &keys).unwrap();
        assert_eq!(back.endpoint, storage.endpoint);
        match back.provider {
            Provider::S3(S3 {
                credentials: S3Credentials::AccessKey(k),
                ..
            }) => assert_eq!(k.secret_access_key.expose(), "very-secret-value"),
            other => panic!("{other:?}"),
        }
        let moved = StoredStorage {
            id: "other".into(),
            ..record
        };
        assert!(matches!(open(&moved, &keys), Err(RecordError::Open(_))));
    }

    #[test]
    fn records_written_before_providers_had_modules_still_open() {
        let keys = keys(3);
        let sealed = keys.current.seal(&context("acme", "old"), "old-secret");
        let json = format!(
            r#"{{"org":"acme","id":"old","name":"Old","provider":"aws","buckets":["b-bucket"],
                "region":"eu-west-1","endpoint":null,"pathStyle":false,
                "credentials":{{"type":"access_key","access_key_id":"AK","sealed_secret":"{sealed}"}},
                "createdAt":"t","updatedAt":"t","version":5}}"#
        );
        let record: StoredStorage = serde_json::from_str(&json).unwrap();
        let storage = open(&record, &keys).unwrap();
        let Provider::S3(s3) = &storage.provider else { panic!() };
        assert_eq!((s3.region.as_str(), s3.path_style), ("eu-west-1", false));
    }

    #[test]
    fn azure_keys_are_sealed_too() {
        let keys = keys(9);
        let storage = storage(Provider::Azure(Azure {
            account: "acct".into(),
            credentials: AzureCredentials::SharedKey(Secret::new("c2VjcmV0LWF6dXJlLWtleQ==")),
        }));
        let record = seal("acme", &storage, &keys.current, "t", "t", 1);
        assert!(!serde_json::to_string(&record)
            .unwrap()
            .contains("c2VjcmV0LWF6dXJlLWtleQ=="));
        let Provider::Azure(back) = open(&record, &keys).unwrap().provider else {
            panic!()
        };
        assert!(matches!(back.credentials, AzureCredentials::SharedKey(k) if k.expose() == "c2VjcmV0LWF6dXJlLWtleQ=="));
    }
}

//! Between a typed [`Storage`] and its stored form: common fields as they are, the
//! provider's settings as its module stores them, every secret sealed on the way in (bound
//! to the record's org and id) and opened on the way out, and the whole record authenticated
//! under the master key, bound to its org and id (README, "Many replicas, one registry").
//! Whoever can write to the database but does not hold the master key can neither read a
//! secret, nor change an endpoint, a bucket, a tenant or a service account, nor copy a record
//! to another org or id: such a record is refused like a corrupt one.

use serde_json::{json, Value};

use super::store::StoredStorage;
use crate::sealed::{Keys, MasterKey, OpenError};
use crate::storage::{providers, Storage};
use crate::upstream::Endpoint;

/// The associated data that binds a sealed secret to its record.
fn context(org: &str, id: &str) -> String {
    format!("assetgate:storage:{org}/{id}")
}

/// The bytes a record's tag covers: every field but the version and the tag itself, with the
/// record's org and id (which the stores set from the row's key), in a canonical JSON form
/// (object keys sorted, no whitespace), so that a database that reorders keys (PostgreSQL's
/// `jsonb`) changes nothing.
fn authenticated(record: &StoredStorage) -> Vec<u8> {
    let fields = json!([
        "assetgate:storage:v1",
        record.org,
        record.id,
        record.name,
        record.provider,
        record.buckets,
        record.endpoint,
        record.created_at,
        record.updated_at,
    ]);
    let mut out = Vec::with_capacity(512);
    canonical(&fields, &mut out);
    for (name, value) in sorted(&record.settings) {
        canonical(&Value::String(name.clone()), &mut out);
        canonical(value, &mut out);
    }
    // Appended only when set, so that records written before the field existed keep their tag.
    if let Some(cache) = record.cache {
        canonical(&json!(["cache", cache]), &mut out);
    }
    out
}

fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `value` as JSON with object keys in byte order, whatever order the map keeps them in.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (name, value)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(name.clone()), out);
                out.push(b':');
                canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON scalar serializes"),
    }
}

/// The stored form of `storage` of `org`, at `version`: secrets sealed, the whole record
/// authenticated.
pub fn seal(
    org: &str,
    storage: &Storage,
    key: &MasterKey,
    created_at: &str,
    updated_at: &str,
    version: u64,
) -> StoredStorage {
    let aad = context(org, &storage.id);
    let mut record = StoredStorage {
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
        mac: None,
        cache: (!storage.cache).then_some(false),
    };
    record.mac = Some(key.tag(&authenticated(&record)));
    record
}

/// Whether the record is authenticated and every secret of it sealed with `key` (nothing
/// to reseal).
pub fn sealed_with(record: &StoredStorage, key: &MasterKey) -> bool {
    if !record
        .mac
        .as_deref()
        .is_some_and(|tag| key.verify(&authenticated(record), tag))
    {
        return false;
    }
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
    /// No tag, or one that no configured master key made: altered, moved to another org or
    /// id, or written before records were authenticated.
    #[error("stored storage {0} is not authenticated by the master key: it was altered or copied in the database, or written before records were authenticated (`assetgate registry reseal --authenticate-legacy`)")]
    Unauthenticated(String),
    #[error("stored storage {0} is malformed: {1}")]
    Malformed(String, String),
}

/// The typed storage of a record, authenticated and its secrets opened with the current or
/// a previous key.
pub fn open(record: &StoredStorage, keys: &Keys) -> Result<Storage, RecordError> {
    let authentic = record
        .mac
        .as_deref()
        .and_then(|tag| keys.verify(&authenticated(record), tag));
    if authentic.is_none() {
        return Err(RecordError::Unauthenticated(format!("{}/{}", record.org, record.id)));
    }
    open_secrets(record, keys)
}

/// Whether the record has no tag at all: written before records were authenticated (or
/// stripped of it).
pub fn is_legacy(record: &StoredStorage) -> bool {
    record.mac.is_none()
}

/// The typed storage of a record written before records were authenticated, its secrets
/// opened, its other fields taken on trust: only for `registry reseal --authenticate-legacy`,
/// whose operator vouches for the database's content.
pub fn open_legacy(record: &StoredStorage, keys: &Keys) -> Result<Storage, RecordError> {
    open_secrets(record, keys)
}

/// Whether no secret of the record opens under `keys` (it has some, and the keys are not the
/// ones that sealed them): what tells a wrong master key from a damaged record.
pub fn sealed_with_other_keys(record: &StoredStorage, keys: &Keys) -> bool {
    matches!(open_secrets(record, keys), Err(RecordError::Open(_)))
}

fn open_secrets(record: &StoredStorage, keys: &Keys) -> Result<Storage, RecordError> {
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
        cache: record.cache.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::StaticKeys;
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
            cache: true,
            id: "main".into(),
            name: "Main".into(),
            buckets: vec!["b-bucket".into()],
            endpoint: Some(Endpoint::parse("http://minio.internal:9000").unwrap()),
            provider,
        }
    }

    #[test]
    fn a_storage_the_cache_may_not_keep_stays_so_and_others_store_no_cache_field() {
        let keys = keys(7);
        let mut storage = storage(Provider::Azure(Azure {
            account: "acct".into(),
            credentials: AzureCredentials::Entra {
                tenant_id: "00000000-1111-2222-3333-444444444444".into(),
            },
        }));
        let cached = seal("acme", &storage, &keys.current, "t0", "t1", 1);
        assert_eq!(cached.cache, None);
        assert!(open(&cached, &keys).unwrap().cache);
        storage.cache = false;
        let uncached = seal("acme", &storage, &keys.current, "t0", "t1", 1);
        assert_eq!(uncached.cache, Some(false));
        let json = serde_json::to_value(&uncached).unwrap();
        assert_eq!(json["cache"], serde_json::json!(false));
        let back: StoredStorage = serde_json::from_value(json).unwrap();
        assert!(!open(&back, &keys).unwrap().cache);
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
        assert!(matches!(open(&moved, &keys), Err(RecordError::Unauthenticated(_))));
    }

    /// What a database writer without the master key might change: every field but the
    /// version is covered, and the row's org and id with it.
    #[test]
    fn a_record_altered_or_copied_in_the_database_is_refused() {
        let keys = keys(4);
        let storage = storage(Provider::Azure(Azure {
            account: "acct".into(),
            credentials: AzureCredentials::Entra {
                tenant_id: "00000000-1111-2222-3333-444444444444".into(),
            },
        }));
        let record = seal("acme", &storage, &keys.current, "t0", "t1", 42);
        assert!(open(&record, &keys).is_ok());
        type Change<'a> = Box<dyn Fn(&mut StoredStorage) + 'a>;
        let altered: Vec<(&str, Change<'_>)> = vec![
            ("org", Box::new(|r| r.org = "globex".into())),
            ("id", Box::new(|r| r.id = "copied".into())),
            ("name", Box::new(|r| r.name = "Renamed".into())),
            (
                "endpoint",
                Box::new(|r| r.endpoint = Some("https://evil.example".into())),
            ),
            ("endpoint removed", Box::new(|r| r.endpoint = None)),
            ("buckets", Box::new(|r| r.buckets.push("other-bucket".into()))),
            ("cache turned off", Box::new(|r| r.cache = Some(false))),
            ("provider", Box::new(|r| r.provider = "s3_compatible".into())),
            (
                "tenant",
                Box::new(|r| r.settings["credentials"]["tenant_id"] = json!("ffffffff-1111-2222-3333-444444444444")),
            ),
            ("account", Box::new(|r| r.settings["account"] = json!("victim"))),
            (
                "a field added",
                Box::new(|r| {
                    r.settings.insert("pathStyle".into(), json!(true));
                }),
            ),
            ("created", Box::new(|r| r.created_at = "t9".into())),
            ("tag removed", Box::new(|r| r.mac = None)),
            (
                "tag of another record",
                Box::new(|r| r.mac = Some(keys.current.tag(b"other"))),
            ),
        ];
        for (what, change) in &altered {
            let mut copy = record.clone();
            change(&mut copy);
            assert!(
                matches!(open(&copy, &keys), Err(RecordError::Unauthenticated(_))),
                "{what}"
            );
        }
        drop(altered);
        let mut bumped = record.clone();
        bumped.version = 43;
        assert!(
            open(&bumped, &keys).is_ok(),
            "the version is the row's, not the record's"
        );
        let rotated = Keys {
            current: self::keys(5).current,
            previous: vec![keys.current],
        };
        assert!(open(&record, &rotated).is_ok(), "a previous key still authenticates");
        assert!(!sealed_with(&record, &rotated.current), "and reseal rewrites it");
    }

    #[test]
    fn the_tag_does_not_depend_on_the_order_of_keys() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        canonical(&a, &mut ca);
        canonical(&b, &mut cb);
        assert_eq!(ca, cb);
        assert_eq!(
            String::from_utf8(ca).unwrap(),
            r#"{"a":{"x":"s","y":[1,{"p":3,"q":2}]},"b":1}"#
        );
    }

    #[test]
    fn records_written_before_providers_had_modules_still_open_for_reseal() {
        let keys = keys(3);
        let sealed = keys.current.seal(&context("acme", "old"), "old-secret");
        let json = format!(
            r#"{{"org":"acme","id":"old","name":"Old","provider":"aws","buckets":["b-bucket"],
                "region":"eu-west-1","endpoint":null,"pathStyle":false,
                "credentials":{{"type":"access_key","access_key_id":"AK","sealed_secret":"{sealed}"}},
                "createdAt":"t","updatedAt":"t","version":5}}"#
        );
        let record: StoredStorage = serde_json::from_str(&json).unwrap();
        assert!(is_legacy(&record));
        assert!(
            matches!(open(&record, &keys), Err(RecordError::Unauthenticated(_))),
            "served only once authenticated"
        );
        let storage = open_legacy(&record, &keys).unwrap();
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

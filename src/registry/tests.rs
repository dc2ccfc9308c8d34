use super::*;
use crate::sealed::MasterKey;
use crate::secret::Secret;
use crate::storage::providers::s3::{Flavor, S3Credentials, S3};
use crate::storage::Provider;
use crate::upstream::Endpoint;

fn config(dir: &std::path::Path, orgs: &str) -> Config {
    let text = format!(
        "[auth]\nallow_anonymous = true\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\n{orgs}",
        dir.display(),
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    );
    Config::from_toml(&text, &|_| None).unwrap()
}

fn delegated(id: &str, external_id: &str) -> Storage {
    Storage {
        cache: true,
        id: id.into(),
        name: id.into(),
        buckets: vec!["b-bucket".into()],
        endpoint: Some(Endpoint::parse("https://s3.example.com").unwrap()),
        provider: Provider::S3(S3 {
            flavor: Flavor::Aws,
            region: "us-east-1".into(),
            path_style: false,
            credentials: S3Credentials::AssumeRole {
                role_arn: "arn:aws:iam::111122223333:role/r".into(),
                external_id: external_id.into(),
            },
        }),
    }
}

fn served(storages: &Storages, org: &str, id: &str) -> Arc<StorageEntry> {
    storages.org(org).unwrap().storage(id).cloned().unwrap()
}

#[tokio::test]
async fn a_stored_role_with_another_orgs_external_id_is_loaded_with_its_own() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let key = MasterKey::from_base64(&Secret::new(
            base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
        ))
        .unwrap();
        store.external_id("globex", "globex-own-external-id").unwrap();
        let record = record::seal("globex", &delegated("stolen", "acme-external-id"), &key, "t", "t", 9);
        store.insert(&record).unwrap();
    }
    let storages = Storages::open(&config(dir.path(), "")).await.unwrap();
    match &served(&storages, "globex", "stolen").storage.provider {
        Provider::S3(S3 {
            credentials: S3Credentials::AssumeRole { external_id, .. },
            ..
        }) => assert_eq!(external_id, "globex-own-external-id"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_config_storage_wins_over_an_api_storage_of_the_same_id_and_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = "[[orgs]]\nid = \"acme\"\n[[orgs.storages]]\nid = \"main\"\nprovider = \"aws\"\nbuckets = [\"file-bucket\"]\ncredentials = { type = \"access_key\", access_key_id = \"A\", secret_access_key = \"B\" }\n";
    let storages = Storages::open(&config(dir.path(), "")).await.unwrap();
    let own = storages.external_id("acme").await.unwrap();
    storages.create("acme", delegated("main", &own)).await.unwrap();
    let with_file = config(dir.path(), file);
    storages.reload_config(&with_file.orgs);
    let entry = served(&storages, "acme", "main");
    assert_eq!(
        (entry.source, entry.storage.buckets[0].as_str()),
        (Source::Config, "file-bucket")
    );
    assert!(matches!(
        storages.create("acme", delegated("main", &own)).await,
        Err(RegistryError::Conflict(_))
    ));
    storages.reload_config(&[]);
    assert_eq!(
        served(&storages, "acme", "main").source,
        Source::Api,
        "the stored one comes back when the file drops the id"
    );
}

#[tokio::test]
async fn an_update_from_a_stale_read_is_refused_and_a_change_touches_one_org() {
    let dir = tempfile::tempdir().unwrap();
    let storages = Storages::open(&config(dir.path(), "")).await.unwrap();
    let own = storages.external_id("acme").await.unwrap();
    let other = storages.external_id("globex").await.unwrap();
    let first = storages.create("acme", delegated("main", &own)).await.unwrap();
    storages.create("globex", delegated("main", &other)).await.unwrap();
    let globex_before = storages.org("globex").unwrap();
    let second = storages
        .replace("acme", "main", first.version, delegated("main", &own))
        .await
        .unwrap();
    assert_ne!(first.version, second.version);
    assert!(matches!(
        storages
            .replace("acme", "main", first.version, delegated("main", &own))
            .await,
        Err(RegistryError::Changed(_))
    ));
    assert!(
        Arc::ptr_eq(&globex_before, &storages.org("globex").unwrap()),
        "another org's entry is not rebuilt"
    );
    assert!(matches!(
        storages.delete("acme", "main", Some(first.version)).await,
        Err(RegistryError::Changed(_))
    ));
    storages.delete("acme", "main", Some(second.version)).await.unwrap();
    assert!(
        storages.org("acme").is_none(),
        "an org nothing defines any more is forgotten"
    );
}

#[tokio::test]
async fn stored_storages_survive_a_reopen_with_their_versions() {
    let dir = tempfile::tempdir().unwrap();
    let version = {
        let storages = Storages::open(&config(dir.path(), "")).await.unwrap();
        let own = storages.external_id("acme").await.unwrap();
        storages.create("acme", delegated("main", &own)).await.unwrap().version
    };
    let reopened = Storages::open(&config(dir.path(), "")).await.unwrap();
    assert!(reopened.ready());
    assert_eq!(served(&reopened, "acme", "main").version, version);
}

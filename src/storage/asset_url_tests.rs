use super::*;
use crate::credentials::StaticKeys;
use crate::route::encode_key;
use crate::secret::Secret;
use crate::storage::providers::azure::{Azure, AzureCredentials};
use crate::storage::providers::gcs::{Gcs, GcsCredentials};
use crate::storage::providers::s3::{Flavor, S3Credentials, S3};
use crate::storage::{Kind, Provider};
use crate::upstream::Endpoint;
use proptest::prelude::*;

fn storage(kind: Kind, endpoint: Option<&str>, buckets: &[&str]) -> Storage {
    let keys = StaticKeys {
        access_key_id: "a".into(),
        secret_access_key: Secret::new("s"),
        session_token: None,
    };
    let s3 = |flavor| {
        Provider::S3(S3 {
            flavor,
            region: "eu-central-1".into(),
            path_style: flavor == Flavor::Compatible,
            credentials: S3Credentials::AccessKey(keys.clone()),
        })
    };
    let provider = match kind {
        Kind::Aws => s3(Flavor::Aws),
        Kind::S3Compatible => s3(Flavor::Compatible),
        Kind::Gcs => Provider::Gcs(Gcs {
            path_style: true,
            region: "auto".into(),
            credentials: GcsCredentials::Hmac(keys.clone()),
        }),
        Kind::Azure => Provider::Azure(Azure {
            account: "acmeassets".into(),
            credentials: AzureCredentials::Sas(Secret::new("sig=x")),
        }),
    };
    Storage {
        cache: true,
        id: "s".into(),
        name: "s".into(),
        buckets: buckets.iter().map(|b| b.to_string()).collect(),
        endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
        provider,
    }
}

fn aws() -> Storage {
    storage(Kind::Aws, None, &["my-bucket", "my.dotted.bucket"])
}

fn ok(s: &Storage, url: &str) -> (String, String) {
    locate(s, url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn code(s: &Storage, url: &str) -> &'static str {
    locate(s, url).unwrap_err().code()
}

#[test]
fn every_aws_form_resolves() {
    let want = ("my-bucket".to_string(), "path/img 1.jpg".to_string());
    for url in [
        "https://my-bucket.s3.eu-central-1.amazonaws.com/path/img%201.jpg",
        "https://my-bucket.s3.amazonaws.com/path/img%201.jpg",
        "https://my-bucket.s3-eu-central-1.amazonaws.com/path/img%201.jpg",
        "https://my-bucket.s3.dualstack.eu-central-1.amazonaws.com/path/img%201.jpg",
        "https://s3.eu-central-1.amazonaws.com/my-bucket/path/img%201.jpg",
        "https://s3.amazonaws.com/my-bucket/path/img%201.jpg",
        "https://s3.dualstack.us-east-1.amazonaws.com/my-bucket/path/img%201.jpg",
        "s3://my-bucket/path/img%201.jpg",
        "https://MY-BUCKET.S3.AMAZONAWS.COM/path/img%201.jpg?storageId=abc&integrationId=x#frag",
    ] {
        assert_eq!(ok(&aws(), url), want, "{url}");
    }
    assert_eq!(
        ok(&aws(), "https://my.dotted.bucket.s3.amazonaws.com/k").0,
        "my.dotted.bucket"
    );
}

#[test]
fn gcs_forms_resolve() {
    let gcs = storage(Kind::Gcs, None, &["gcs-bucket"]);
    for url in [
        "https://storage.googleapis.com/gcs-bucket/a/b.png",
        "gs://gcs-bucket/a/b.png",
        "https://gcs-bucket.storage.googleapis.com/a/b.png",
        "https://storage.cloud.google.com/gcs-bucket/a/b.png",
    ] {
        assert_eq!(ok(&gcs, url), ("gcs-bucket".into(), "a/b.png".into()), "{url}");
    }
    assert_eq!(code(&gcs, "s3://gcs-bucket/a"), "url_outside_storage");
}

#[test]
fn azure_forms_resolve() {
    let azure = storage(Kind::Azure, None, &["images"]);
    assert_eq!(
        ok(&azure, "https://acmeassets.blob.core.windows.net/images/a%20b/c.png"),
        ("images".into(), "a b/c.png".into())
    );
    for url in [
        "https://other.blob.core.windows.net/images/a.png",
        "s3://images/a.png",
        "gs://images/a.png",
        "https://acmeassets.blob.core.windows.net/videos/a.png",
    ] {
        assert!(locate(&azure, url).is_err(), "{url}");
    }
    let azurite = storage(Kind::Azure, Some("http://127.0.0.1:10000"), &["images"]);
    assert_eq!(
        ok(&azurite, "http://127.0.0.1:10000/acmeassets/images/x.dcm"),
        ("images".into(), "x.dcm".into())
    );
    assert!(locate(&azurite, "http://127.0.0.1:10000/images/x.dcm").is_err());
}

#[test]
fn the_storages_own_endpoint_in_both_styles() {
    let minio = storage(Kind::S3Compatible, Some("http://minio.local:9000"), &["scans"]);
    assert_eq!(
        ok(&minio, "http://minio.local:9000/scans/x.dcm"),
        ("scans".into(), "x.dcm".into())
    );
    assert_eq!(
        ok(&minio, "http://scans.minio.local:9000/x.dcm"),
        ("scans".into(), "x.dcm".into())
    );
    assert_eq!(
        code(&minio, "http://minio.local:9001/scans/x.dcm"),
        "url_outside_storage"
    );
    assert_eq!(
        code(&minio, "https://scans.s3.amazonaws.com/x.dcm"),
        "url_outside_storage"
    );
}

#[test]
fn keys_are_decoded_exactly_once() {
    assert_eq!(ok(&aws(), "https://my-bucket.s3.amazonaws.com/100%2525").1, "100%25");
    assert_eq!(ok(&aws(), "https://my-bucket.s3.amazonaws.com/a+b").1, "a+b");
    assert_eq!(ok(&aws(), "https://my-bucket.s3.amazonaws.com/%E4%B8%AD").1, "中");
    assert_eq!(ok(&aws(), "https://my-bucket.s3.amazonaws.com/a%2Fb").1, "a/b");
}

#[test]
fn foreign_hosts_buckets_and_tricks_are_refused() {
    for url in [
        "https://evil.example.com/my-bucket/k",
        "https://my-bucket.s3.amazonaws.com.evil.com/k",
        "https://other-bucket.s3.amazonaws.com/k",
        "https://s3.amazonaws.com/other-bucket/k",
        "https://my-bucket.s3.amazonaws.com@evil.com/k",
        "https://s3.amazonaws.com/my-bucket/../other-bucket/k",
        "https://s3.amazonaws.com/my-bucket/a/%2E%2E/b",
        "https://my-bucket.s3.amazonaws.com/./k",
        "https://s3.amazonaws.com/my-bucket%2F..%2Fother-bucket/k",
        "https://s3.amazonaws.com/my%2Dbucket/k",
        "https://my-bucket.s3.evil.amazonaws.com.x/k",
        "gs://my-bucket/k",
    ] {
        assert_eq!(code(&aws(), url), "url_outside_storage", "{url}");
    }
    for url in [
        "not a url",
        "ftp://my-bucket/k",
        "https:///k",
        "https://my-bucket.s3.amazonaws.com/",
        "https://exa mple.com/k",
    ] {
        assert!(locate(&aws(), url).is_err(), "{url}");
    }
}

proptest! {
    #[test]
    fn never_panics(url in "\\PC*") {
        let _ = locate(&aws(), &url);
    }

    #[test]
    fn never_panics_on_url_shaped_input(host in "[a-z0-9.-]{0,40}", path in "[a-z0-9%./]{0,40}") {
        let _ = locate(&aws(), &format!("https://{host}/{path}"));
        let _ = locate(&aws(), &format!("s3://{host}/{path}"));
    }

    #[test]
    fn built_urls_resolve_back(key in "\\PC{1,120}") {
        prop_assume!(!key.split('/').any(|s| s == "." || s == ".."));
        let encoded = encode_key(&key);
        let minio = storage(Kind::S3Compatible, Some("http://minio.local:9000"), &["scans"]);
        for (s, url) in [
            (aws(), format!("https://my-bucket.s3.eu-central-1.amazonaws.com/{encoded}")),
            (aws(), format!("https://s3.eu-central-1.amazonaws.com/my-bucket/{encoded}")),
            (aws(), format!("s3://my-bucket/{encoded}")),
            (minio.clone(), format!("http://minio.local:9000/scans/{encoded}")),
        ] {
            let (_, got) = locate(&s, &url).unwrap();
            prop_assert_eq!(&got, &key);
        }
    }
}

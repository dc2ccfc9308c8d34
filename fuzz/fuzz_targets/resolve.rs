//! `/resolve` asset URLs, as an import file or a labeler's browser sends them: every form of
//! every provider is parsed without a panic, and what resolves is an object of one of the
//! storage's own buckets, with a non-empty key free of dot segments, that the same storage
//! resolves again from its canonical URL.
#![no_main]

use std::sync::OnceLock;

use assetgate::credentials::TokenDestinations;
use assetgate::route::encode_key;
use assetgate::storage::asset_url::locate;
use assetgate::storage::build::build;
use assetgate::storage::draft::{Context, Style};
use assetgate::storage::Storage;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn storages() -> &'static [(Storage, &'static str)] {
    static STORAGES: OnceLock<Vec<(Storage, &'static str)>> = OnceLock::new();
    STORAGES.get_or_init(|| {
        let cx = Context {
            style: Style::Api,
            org_external_id: Some("org-external-id-0123456789"),
            entra_app: false,
            destinations: &TokenDestinations::PUBLIC,
        };
        let keys = json!({"accessKeyId": "AK", "secretAccessKey": "SK"});
        // Each storage with the canonical URL of `{bucket}` and `{key}` in it.
        [
            (json!({"type": "aws", "region": "eu-central-1", "buckets": ["my-bucket", "my.dotted.bucket"], "credentials": keys}),
             "s3://{bucket}/{key}"),
            (json!({"type": "s3_compatible", "endpoint": "https://minio.example.com:9000", "buckets": ["scans", "b-two"], "credentials": keys}),
             "https://minio.example.com:9000/{bucket}/{key}"),
            (json!({"type": "gcs", "buckets": ["gcs-bucket"], "credentials": keys}),
             "gs://{bucket}/{key}"),
            (json!({"type": "azure", "account": "acmeassets", "buckets": ["images"], "credentials": {"sasToken": "sv=2024&sig=x"}}),
             "https://acmeassets.blob.core.windows.net/{bucket}/{key}"),
        ]
        .into_iter()
        .map(|(body, canonical)| (build(&body, &cx).unwrap_or_else(|f| panic!("{f:?}")), canonical))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    for (storage, canonical) in storages() {
        let Ok((bucket, key)) = locate(storage, url) else {
            continue;
        };
        assert!(storage.buckets.contains(&bucket), "{url:?} -> {bucket:?}");
        assert!(!key.is_empty(), "{url:?}");
        assert!(!key.split('/').any(|s| s == "." || s == ".."), "{url:?} -> {key:?}");
        let again = canonical
            .replace("{bucket}", &bucket)
            .replace("{key}", &encode_key(&key));
        assert_eq!(
            locate(storage, &again).ok(),
            Some((bucket, key)),
            "{url:?} then {again:?}"
        );
    }
});

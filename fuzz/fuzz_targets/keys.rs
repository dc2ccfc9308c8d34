//! Object keys on their way to the bucket: any key the gateway accepts is encoded once, so
//! that the bucket decodes exactly that key, whichever provider's URL carries it (S3 and
//! GCS's XML API path-style and virtual-hosted, Azure with and without the account in the
//! path), and the gateway's own object route gives the same key back.
#![no_main]

use assetgate::route::{self, Route, MAX_KEY_BYTES};
use assetgate::secret::Secret;
use assetgate::storage::providers::azure::{Azure, AzureCredentials};
use assetgate::storage::providers::s3::address::object_url;
use assetgate::upstream::Endpoint;
use libfuzzer_sys::fuzz_target;

/// The path of `url` after `prefix`, checked to be a URL `http` accepts as it is.
fn key_part(url: &str, prefix: &str) -> String {
    let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url:?} is not a URI: {e}"));
    let path = uri.path();
    assert_eq!(uri.query(), None, "{url:?}");
    path.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{url:?} does not start with {prefix:?}"))
        .to_string()
}

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else { return };
    if key.is_empty() {
        return;
    }
    let encoded = route::encode_key(key);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)),
        "{encoded:?}"
    );
    assert_eq!(route::decode(&encoded).unwrap(), key);

    // The gateway's own route.
    match route::parse(&format!("/v1/orgs/acme/storages/s1/objects/b/{encoded}")) {
        Ok(Route::Object(object)) => assert_eq!(object.key, key),
        Ok(other) => panic!("{key:?} routed to {other:?}"),
        Err(e) => assert!(key.len() > MAX_KEY_BYTES, "{key:?} refused: {e}"),
    }

    // S3, S3-compatible services and GCS's XML API.
    let aws = Endpoint::parse("https://s3.eu-central-1.amazonaws.com").unwrap();
    let local = Endpoint::parse("http://127.0.0.1:9000").unwrap();
    for (endpoint, path_style, prefix) in [
        (&aws, false, "/"),
        (&aws, true, "/bucket-1/"),
        (&local, false, "/bucket-1/"),
    ] {
        let url = object_url(endpoint, path_style, "bucket-1", key);
        assert_eq!(route::decode(&key_part(&url, prefix)).unwrap(), key, "{url:?}");
    }

    // Azure, on its own host and on an emulator's.
    let azure = Azure {
        account: "acmeassets".into(),
        credentials: AzureCredentials::Sas(Secret::new("sig=x")),
    };
    let own = Endpoint::parse("https://acmeassets.blob.core.windows.net").unwrap();
    for (endpoint, prefix) in [(&own, "/scans/"), (&local, "/acmeassets/scans/")] {
        let url = azure.blob_url(endpoint, "scans", key);
        assert_eq!(route::decode(&key_part(&url, prefix)).unwrap(), key, "{url:?}");
    }
});

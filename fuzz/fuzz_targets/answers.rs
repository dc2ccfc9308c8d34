//! What buckets and token endpoints answer, read by the gateway: S3, GCS and Azure XML
//! error bodies, listings and bucket locations, and the JSON of OAuth 2.0 token answers
//! (Entra, Google) and of Google's generateAccessToken. Never a panic; an error code taken
//! from a body is short and plain; every error maps to a JSON error of the gateway with a
//! status it may send.
#![no_main]

use assetgate::credentials::entra::oauth_token;
use assetgate::credentials::google::impersonated_token;
use assetgate::storage::providers::{azure, s3};
use assetgate::xml;
use http::StatusCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = StatusCode::from_u16(300 + u16::from(first) % 300).expect("a status");

    let code = xml::error_code(body);
    if let Some(code) = &code {
        assert!(!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
    }
    for err in [
        s3::errors::map(status, code.as_deref()),
        azure::errors::map(status, code.as_deref()),
    ] {
        let sent = err.status();
        assert!(sent.is_client_error() || sent.is_server_error(), "{err:?} is {sent}");
        assert!(serde_json::from_slice::<serde_json::Value>(&err.to_json("r")).is_ok());
    }

    if let Ok(text) = std::str::from_utf8(body) {
        for tag in ["Key", "Name", "LocationConstraint"] {
            if let Some(found) = xml::text(text, tag) {
                assert!(text.contains(&found));
                let _ = xml::unescape(&found);
            }
        }
        let _ = s3::checks::bucket_region(xml::text(text, "LocationConstraint").as_deref());
    }

    // Token answers: a token and an expiry, or the issuer's own unavailability.
    let _ = oauth_token(body, "fuzz");
    let _ = impersonated_token(body);
});

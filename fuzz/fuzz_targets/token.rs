//! Labeler tokens as a client sends them (the `Authorization` header or the `token` query
//! parameter): extraction and verification never panic, and nothing but a token signed
//! with the configured key verifies.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use assetgate::secret::Secret;
use assetgate::token::{AuthConfig, TokenKey, TokenVerifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static TokenVerifier {
    static VERIFIER: OnceLock<TokenVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        TokenVerifier::new(&AuthConfig {
            keys: vec![TokenKey {
                kid: "k1".into(),
                secret: Secret::new("fuzz-secret-0123456789abcdef0123456789"),
            }],
            public_keys: vec![],
            jwks_url: None,
            jwks_refresh: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
            require_sub: false,
            allow_anonymous: false,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut headers = http::HeaderMap::new();
    if let Some(rest) = text.strip_prefix("H:") {
        if let Ok(value) = http::HeaderValue::from_str(rest) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
    }
    let query = text.strip_prefix("Q:");
    if let Ok(Some(token)) = assetgate::token::extract(&headers, query) {
        // A fuzzer cannot forge HMAC-SHA256: whatever it sends is refused.
        assert!(verifier().verify_local(&token).is_err(), "{token:?} verified");
    }
    let _ = verifier().verify_local(text);
});

//! Labeler tokens as a client sends them (the `Authorization` header or the `token` query
//! parameter): extraction and verification never panic, and nothing but a token signed
//! with the configured key verifies. Inputs that start with `S:` are a JOSE header and
//! claims (a line each, `NOW` standing for the current time) that the target signs with
//! the configured key, so that the claims' checks are fuzzed too: what verifies is HS256,
//! unexpired, not valid only later, and no longer-lived than the gateway allows.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use assetgate::secret::Secret;
use assetgate::token::{AuthConfig, TokenKey, TokenVerifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";
const MAX_TTL: u64 = 3600;
const LEEWAY: u64 = 30;

fn verifier() -> &'static TokenVerifier {
    static VERIFIER: OnceLock<TokenVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        TokenVerifier::new(&AuthConfig {
            keys: vec![TokenKey {
                kid: "k1".into(),
                secret: Secret::new(SECRET),
            }],
            public_keys: vec![],
            jwks_url: None,
            jwks_refresh: Duration::from_secs(300),
            max_ttl: Duration::from_secs(MAX_TTL),
            leeway: Duration::from_secs(LEEWAY),
            require_sub: false,
            allow_anonymous: false,
        })
    })
}

/// `header.claims.signature`, signed with the configured key whatever the header says.
fn signed(header: &str, claims: &str) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(rest) = text.strip_prefix("S:") {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let (header, claims) = rest.split_once('\n').unwrap_or((rest, ""));
        let claims = claims.replace("NOW", &now.to_string());
        if let Ok(verified) = verifier().verify_local(&signed(header, &claims)) {
            let alg = serde_json::from_str::<serde_json::Value>(header).unwrap()["alg"].clone();
            assert_eq!(alg, "HS256", "{header}");
            assert!(verified.exp + LEEWAY >= now, "expired: {claims}");
            assert!(
                verified.nbf.is_none_or(|nbf| nbf <= now + LEEWAY),
                "not yet valid: {claims}"
            );
            let issued = verified.iat.unwrap_or(now);
            assert!(issued <= now + LEEWAY, "issued later: {claims}");
            assert!(
                verified.exp.saturating_sub(issued) <= MAX_TTL + LEEWAY,
                "too long: {claims}"
            );
        }
        return;
    }
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

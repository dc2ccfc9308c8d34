//! Micro-benchmarks of the per-request work: SigV4 signing, token verification, route
//! parsing with key decoding, key encoding, CORS decisions and header building.
//! Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use assetgate::config::{AuthConfig, StaticKeys, TokenKey};
use assetgate::cors::{self, OriginCheck, OriginPattern};
use assetgate::secret::Secret;
use assetgate::storage::providers::s3::{address, sign};
use assetgate::token::{self, TokenVerifier};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};

fn signing(c: &mut Criterion) {
    let keys = StaticKeys {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let identity = sign::identity(&keys);
    let url = format!(
        "https://bucket.s3.eu-central-1.amazonaws.com/{}",
        address::encode_key("images/2024/scan (1).jpg")
    );
    c.bench_function("sigv4_sign_get_with_range", |b| {
        b.iter(|| {
            let mut request = http::Request::get(url.as_str())
                .header("range", "bytes=0-")
                .body(())
                .unwrap();
            sign::sign_request(&mut request, &identity, "eu-central-1", SystemTime::now()).unwrap();
            black_box(request);
        })
    });
}

fn tokens(c: &mut Criterion) {
    let key = TokenKey {
        kid: "k1".into(),
        secret: Secret::new("bench-signing-key-0123456789abcdef0123"),
    };
    let verifier = TokenVerifier::new(&AuthConfig {
        keys: vec![key.clone()],
        public_keys: vec![],
        jwks_url: None,
        jwks_refresh: Duration::from_secs(300),
        max_ttl: Duration::from_secs(3600),
        allow_anonymous: false,
    });
    let jwt = token::mint(&key, "acme", Some("main"), Some("images/"), Duration::from_secs(600));
    c.bench_function("token_verify_hs256", |b| {
        b.iter(|| black_box(verifier.verify_local(black_box(&jwt)).unwrap()))
    });
}

fn routes(c: &mut Criterion) {
    let path = "/v1/orgs/acme/storages/main/objects/acme-images/2024/%E4%B8%AD%E6%96%87/scan%20(1)+final.jpg";
    c.bench_function("route_parse_and_decode_key", |b| {
        b.iter(|| black_box(assetgate::route::parse(black_box(path)).unwrap()))
    });
    c.bench_function("key_encode", |b| {
        b.iter(|| black_box(address::encode_key(black_box("2024/中文/scan (1)+final.jpg"))))
    });
}

fn cors_headers(c: &mut Criterion) {
    let global = [
        OriginPattern::parse("https://imerit.ango.ai").unwrap(),
        OriginPattern::parse("https://*.example.com").unwrap(),
    ];
    let origin = HeaderValue::from_static("https://labeling.example.com");
    c.bench_function("cors_check_and_response_headers", |b| {
        b.iter(|| {
            let check = cors::check_origin(Some(black_box(&origin)), &global, &[]);
            let mut headers = HeaderMap::new();
            cors::apply_response_headers(&mut headers, &check);
            assert!(matches!(check, OriginCheck::Allowed(_)));
            black_box(headers);
        })
    });
    let requested = HeaderValue::from_static("authorization, range, if-none-match");
    c.bench_function("cors_preflight_headers", |b| {
        b.iter(|| {
            black_box(cors::preflight_headers(
                &origin,
                Some(&requested),
                Duration::from_secs(3600),
            ))
        })
    });
}

criterion_group!(benches, signing, tokens, routes, cors_headers);
criterion_main!(benches);

//! Micro-benchmarks of the per-request work: SigV4 signing, token verification, route
//! parsing with key decoding, key encoding, CORS decisions and header building, and what
//! tenants at scale add to it: the limits' admission, the usage count and the audit line.
//! Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use assetgate::audit::{Audit, AuditLine, AuditMetrics};
use assetgate::cors::{self, OriginCheck, OriginPattern};
use assetgate::credentials::StaticKeys;
use assetgate::limits::{Limit, LimitMetrics, Limiter, OrgLimits};
use assetgate::secret::Secret;
use assetgate::storage::providers::s3::sign;
use assetgate::token::{self, TokenVerifier};
use assetgate::token::{AuthConfig, TokenKey};
use assetgate::usage::{Usage, UsageMetrics};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};

fn signing(c: &mut Criterion) {
    let keys = StaticKeys {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let identity = assetgate::credentials::SigningKeys::from_static(&keys);
    let url = format!(
        "https://bucket.s3.eu-central-1.amazonaws.com/{}",
        assetgate::route::encode_key("images/2024/scan (1).jpg")
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
    let auth = AuthConfig {
        keys: vec![key.clone()],
        public_keys: vec![],
        jwks_url: None,
        jwks_refresh: Duration::from_secs(300),
        max_ttl: Duration::from_secs(3600),
        leeway: Duration::from_secs(token::DEFAULT_LEEWAY_SECS),
        require_sub: false,
        allow_anonymous: false,
    };
    let verifier = TokenVerifier::new(&auth);
    let jwt = token::mint(&key, "acme", Some("main"), Some("images/"), Duration::from_secs(600));
    // A token the verifier has not seen: the signature is checked.
    c.bench_function("token_verify_hs256_first_use", |b| {
        b.iter_batched_ref(
            || TokenVerifier::new(&auth),
            |fresh| black_box(fresh.verify_local(black_box(&jwt)).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    // The same token again, as an editor sends it with every asset.
    c.bench_function("token_verify_hs256_remembered", |b| {
        b.iter(|| black_box(verifier.verify_local(black_box(&jwt)).unwrap()))
    });
}

fn routes(c: &mut Criterion) {
    let path = "/v1/orgs/acme/storages/main/objects/acme-images/2024/%E4%B8%AD%E6%96%87/scan%20(1)+final.jpg";
    c.bench_function("route_parse_and_decode_key", |b| {
        b.iter(|| black_box(assetgate::route::parse(black_box(path)).unwrap()))
    });
    c.bench_function("key_encode", |b| {
        b.iter(|| black_box(assetgate::route::encode_key(black_box("2024/中文/scan (1)+final.jpg"))))
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

fn tenants(c: &mut Criterion) {
    // Rates no benchmark reaches: every request is admitted, as in normal operation.
    let generous = Limit {
        requests_per_second: Some(1_000_000_000),
        burst: None,
        concurrent_streams: Some(1_000_000),
    };
    let limits = OrgLimits {
        limits: Some(generous.clone()),
        labeler_limits: Some(generous),
    };
    let limiter = Limiter::new(LimitMetrics::default());
    c.bench_function("limits_admit_org_and_labeler", |b| {
        b.iter(|| black_box(limiter.admit("acme", Some("labeler-17"), &limits).unwrap()))
    });
    let org_only = OrgLimits {
        limits: limits.limits.clone(),
        labeler_limits: None,
    };
    c.bench_function("limits_admit_org_only", |b| {
        b.iter(|| black_box(limiter.admit("acme", Some("labeler-17"), &org_only).unwrap()))
    });
    c.bench_function("limits_admit_none_set", |b| {
        let none = OrgLimits::default();
        b.iter(|| black_box(limiter.admit("acme", Some("labeler-17"), &none).unwrap()))
    });

    let usage = Usage::new(UsageMetrics::default());
    c.bench_function("usage_record", |b| {
        b.iter(|| usage.record("acme", "main", black_box(4096), black_box(4096)))
    });

    // The writer thread drains into /dev/null: what is measured is the request's side
    // (the line's serialization and its hand-over), never the disk.
    let metrics = AuditMetrics::default();
    let audit = Audit::open("/dev/null", metrics.clone()).unwrap();
    let peer = "10.1.2.3".parse().unwrap();
    let line = || AuditLine {
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        request_id: "0193a4c2-7b1e-7f00-8000-4f2a9c1d3e5b",
        org: Some("acme"),
        storage: Some("main"),
        bucket: Some("acme-images"),
        key: Some("2024/中文/scan (1)+final.jpg"),
        sub: Some("labeler-17"),
        method: "GET",
        range: Some("bytes=0-65535"),
        status: 206,
        bytes: black_box(65536),
        outcome: "complete",
        duration_ms: 3,
        client_ip: Some(peer),
        cache: None,
        truncated: false,
    };
    c.bench_function("audit_line_build_and_serialize", |b| {
        b.iter(|| black_box(serde_json::to_string(&line()).unwrap()))
    });
    c.bench_function("audit_line_build_and_queue", |b| b.iter(|| audit.write(line())));
    println!(
        "audit: {} lines written, {} dropped",
        metrics.written.get(),
        metrics.dropped.get()
    );
}

criterion_group!(benches, signing, tokens, routes, cors_headers, tenants);
criterion_main!(benches);

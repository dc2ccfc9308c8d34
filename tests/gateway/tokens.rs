//! Labeler tokens (README "Labeler tokens"): every failure, query and header forms, and tenant isolation.

use assetgate::token::Claims;

use crate::support::client::get;
use crate::support::seaweed::seaweed;
use crate::support::standin::StandIn;
use crate::support::*;

async fn two_orgs() -> TestGateway {
    let sw = seaweed();
    sw.seed(
        "acme-assets",
        &[("imgs/cat.jpg", b"acme cat"), ("docs/a.pdf", b"acme pdf")],
    )
    .await;
    sw.seed("globex-assets", &[("imgs/cat.jpg", b"globex cat")]).await;
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}{}\n[[orgs]]\nid = \"globex\"\n{}",
        storage("main", &sw.endpoint, &["acme-assets"], &sw.reader),
        storage("second", &sw.endpoint, &["acme-assets"], &sw.reader),
        storage("main", &sw.endpoint, &["globex-assets"], &sw.reader),
    );
    TestGateway::start(&config("", &orgs)).await
}

fn claims(org: &str) -> Claims {
    Claims {
        org: org.into(),
        sto: None,
        pfx: None,
        exp: now() + 300,
        iat: Some(now()),
        nbf: None,
        sub: None,
    }
}

#[tokio::test]
async fn header_and_query_tokens_both_work() {
    let gw = two_orgs().await;
    let url = gw.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    let t = token("acme");
    assert_eq!(
        get(&url, &[("authorization", &format!("Bearer {t}"))]).await.body,
        "acme cat"
    );
    assert_eq!(get(&format!("{url}?token={t}"), &[]).await.body, "acme cat");
}

#[tokio::test]
async fn every_token_failure_has_its_code() {
    let gw = two_orgs().await;
    let url = gw.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    let expired = token_with(&Claims {
        exp: now() - 120,
        iat: Some(now() - 600),
        ..claims("acme")
    });
    let too_long = token_with(&Claims {
        exp: now() + 7200,
        ..claims("acme")
    });
    let not_yet = token_with(&Claims {
        nbf: Some(now() + 600),
        sub: None,
        ..claims("acme")
    });
    let other_key = assetgate::token::mint_claims(
        &assetgate::token::TokenKey {
            kid: "k1".into(),
            secret: assetgate::secret::Secret::new("a-different-key-0123456789abcdef-xyz"),
        },
        &claims("acme"),
    );
    let unknown_kid = assetgate::token::mint_claims(
        &assetgate::token::TokenKey {
            kid: "k2".into(),
            secret: assetgate::secret::Secret::new(TOKEN_SECRET),
        },
        &claims("acme"),
    );
    let cases: [(Option<String>, u16, &str); 7] = [
        (None, 401, "missing_token"),
        (Some("not-a-jwt".into()), 401, "invalid_token"),
        (Some(other_key), 401, "invalid_token"),
        (Some(unknown_kid), 401, "invalid_token"),
        (Some(expired), 401, "expired_token"),
        (Some(too_long), 401, "invalid_token"),
        (Some(not_yet), 401, "invalid_token"),
    ];
    for (t, status, code) in cases {
        let headers: Vec<(&str, String)> = t.iter().map(|t| ("authorization", format!("Bearer {t}"))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(&url, &headers).await;
        assert_eq!((r.status.as_u16(), r.error_code().as_str()), (status, code), "{t:?}");
        if let Some(t) = &t {
            assert!(
                !String::from_utf8_lossy(&r.body).contains(t.as_str()),
                "token echoed in body"
            );
        }
    }
    let r = get(&url, &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(r.error_code(), "invalid_token");
}

#[tokio::test]
async fn a_token_for_one_org_never_reads_another_orgs_storage() {
    let gw = two_orgs().await;
    let acme = format!("Bearer {}", token("acme"));
    let r = get(
        &gw.url("globex", "main", "globex-assets", "imgs/cat.jpg"),
        &[("authorization", &acme)],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (403, "token_scope"));
    // Nor through its own storage, naming the other org's bucket.
    let r = get(
        &gw.url("acme", "main", "globex-assets", "imgs/cat.jpg"),
        &[("authorization", &acme)],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (403, "bucket_not_allowed")
    );
    // Nor by probing for orgs that may not exist.
    let r = get(&gw.url("initech", "main", "x-bucket", "k"), &[("authorization", &acme)]).await;
    assert_eq!(r.error_code(), "token_scope");
}

#[tokio::test]
async fn storage_and_prefix_claims_limit_the_token() {
    let gw = two_orgs().await;
    let scoped = format!(
        "Bearer {}",
        token_with(&Claims {
            sto: Some("main".into()),
            pfx: Some("acme-assets/imgs/".into()),
            ..claims("acme")
        })
    );
    let ok = get(
        &gw.url("acme", "main", "acme-assets", "imgs/cat.jpg"),
        &[("authorization", &scoped)],
    )
    .await;
    assert_eq!(ok.body, "acme cat");
    let r = get(
        &gw.url("acme", "main", "acme-assets", "docs/a.pdf"),
        &[("authorization", &scoped)],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (403, "token_scope"));
    let r = get(
        &gw.url("acme", "second", "acme-assets", "imgs/cat.jpg"),
        &[("authorization", &scoped)],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (403, "token_scope"));
}

#[tokio::test]
async fn the_token_never_goes_upstream() {
    let upstream = StandIn::start(|mut s| async move {
        use tokio::io::AsyncWriteExt;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            .await;
    })
    .await;
    let gw = TestGateway::in_front_of(&upstream, "").await;
    let t = token("acme");
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    assert_eq!(
        get(&format!("{url}?token={t}&x=1"), &[("cookie", "session=abc")])
            .await
            .body,
        "ok"
    );
    assert_eq!(get(&url, &[("authorization", &format!("Bearer {t}"))]).await.body, "ok");
    let heads = upstream.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    for head in heads {
        assert!(!head.contains(&t), "token forwarded: {head}");
        assert!(
            head.starts_with("GET /b-bucket/k.jpg HTTP/1.1\r\n"),
            "query forwarded: {head}"
        );
        assert!(!head.to_ascii_lowercase().contains("cookie"), "{head}");
        assert!(head.contains("AWS4-HMAC-SHA256"), "{head}");
    }
}

#[tokio::test]
async fn a_prefix_scoped_token_cannot_climb_out_with_dot_segments() {
    let gw = two_orgs().await;
    let scoped = token_with(&Claims {
        pfx: Some("acme-assets/imgs/".into()),
        ..claims("acme")
    });
    let auth = format!("Bearer {scoped}");
    let inside = get(
        &gw.url("acme", "main", "acme-assets", "imgs/cat.jpg"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(inside.body, "acme cat");
    let base = format!("{}/v1/orgs/acme/storages/main/objects/acme-assets", gw.base);
    for path in [
        "imgs/../docs/a.pdf",
        "imgs/%2E%2E/docs/a.pdf",
        "imgs/./cat.jpg",
        "imgs/..%5Cdocs/a.pdf",
    ] {
        let r = get(&format!("{base}/{path}"), &[("authorization", &auth)]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (403, "token_scope"),
            "{path}"
        );
        assert!(!String::from_utf8_lossy(&r.body).contains("acme pdf"));
    }
}

/// Whatever the token, a key whose dot segments would climb out of its bucket (or leave
/// nothing of the key) is refused before anything is signed or sent: a server or proxy that
/// resolves dot segments would read another bucket, or list this one. Other dot segments
/// stay ordinary key characters.
#[tokio::test]
async fn keys_that_leave_their_bucket_are_refused_whatever_the_token() {
    let upstream = StandIn::replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let gw = TestGateway::in_front_of(&upstream, "").await;
    let auth = format!("Bearer {}", token("acme"));
    let base = format!("{}/v1/orgs/acme/storages/main/objects/b-bucket", gw.base);
    for path in [
        "../other-bucket/secret",
        "%2E%2E/other-bucket/secret",
        "a/../../other-bucket/secret",
        "..%5Cother-bucket%5Csecret",
        "a//../../other-bucket/secret",
        "a/..",
        ".",
    ] {
        let r = get(&format!("{base}/{path}"), &[("authorization", &auth)]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (403, "token_scope"),
            "{path}"
        );
    }
    assert_eq!(upstream.count(), 0, "nothing was signed or sent");
    let r = get(&format!("{base}/a/../b"), &[("authorization", &auth)]).await;
    assert_eq!(r.status, 200, "a/../b is an ordinary key");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn a_token_listing_critical_extensions_is_refused() {
    use base64::Engine as _;
    let gw = two_orgs().await;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(serde_json::json!({"alg": "HS256", "kid": "k1", "crit": ["x-must-check"], "x-must-check": true}));
    let input = format!("{header}.{}", b64(serde_json::to_value(claims("acme")).unwrap()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, TOKEN_SECRET.as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()));
    let r = get(
        &gw.url("acme", "main", "acme-assets", "imgs/cat.jpg"),
        &[("authorization", &format!("Bearer {input}.{signature}"))],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (401, "invalid_token"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("crit"));
}

/// `[auth].leeway` is how long a token stays good after `exp`: 30 s unless configured, and
/// `0s` means not at all.
#[tokio::test]
async fn the_expiry_leeway_is_the_configured_one() {
    let sw = seaweed();
    sw.seed("acme-assets", &[("imgs/cat.jpg", b"acme cat")]).await;
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &["acme-assets"], &sw.reader)
    );
    let just_expired = token_with(&Claims {
        exp: now() - 5,
        iat: Some(now() - 300),
        ..claims("acme")
    });
    let default = TestGateway::start(&config("", &org)).await;
    let url = default.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    assert_eq!(get(&format!("{url}?token={just_expired}"), &[]).await.status, 200);
    let strict_config = config("", &org).replace("max_ttl = \"1h\"", "max_ttl = \"1h\"\nleeway = \"0s\"");
    let strict = TestGateway::start(&strict_config).await;
    let url = strict.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    let r = get(&format!("{url}?token={just_expired}"), &[]).await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (401, "expired_token"));
}

/// `sub` names the labeler in every audit line and keys per-labeler limits: at most 256
/// bytes, and required with `[auth].require_sub`.
#[tokio::test]
async fn sub_is_bounded_and_can_be_required() {
    let sw = seaweed();
    sw.seed("acme-assets", &[("imgs/cat.jpg", b"acme cat")]).await;
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &["acme-assets"], &sw.reader)
    );
    let with_sub = |sub: Option<String>| token_with(&Claims { sub, ..claims("acme") });
    let gw = TestGateway::start(&config("", &org)).await;
    let url = gw.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    let ask = |t: String| {
        let url = url.clone();
        async move { get(&format!("{url}?token={t}"), &[]).await }
    };
    assert_eq!(ask(with_sub(Some("labeler-7".into()))).await.status, 200);
    assert_eq!(ask(with_sub(Some("u".repeat(256)))).await.status, 200);
    let long = ask(with_sub(Some("u".repeat(2048)))).await;
    assert_eq!(
        (long.status.as_u16(), long.error_code().as_str()),
        (401, "invalid_token")
    );
    assert_eq!(ask(with_sub(None)).await.status, 200, "optional by default");

    let required = config("", &org).replace("max_ttl = \"1h\"", "max_ttl = \"1h\"\nrequire_sub = true");
    let strict = TestGateway::start(&required).await;
    let url = strict.url("acme", "main", "acme-assets", "imgs/cat.jpg");
    let r = get(&format!("{url}?token={}", with_sub(None)), &[]).await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (401, "invalid_token"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("sub"));
    let r = get(&format!("{url}?token={}", with_sub(Some("labeler-7".into()))), &[]).await;
    assert_eq!(r.status, 200);
}

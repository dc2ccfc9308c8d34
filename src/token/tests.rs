use super::*;
use crate::secret::Secret;
use proptest::prelude::*;

fn key(kid: &str) -> TokenKey {
    TokenKey {
        kid: kid.into(),
        secret: Secret::new("0123456789abcdef0123456789abcdef"),
    }
}

fn verifier() -> TokenVerifier {
    verifier_with(DEFAULT_LEEWAY_SECS, false)
}

fn claims(exp_in: i64) -> Claims {
    let now = now_secs() as i64;
    Claims {
        org: "acme".into(),
        sto: None,
        pfx: None,
        exp: (now + exp_in) as u64,
        iat: Some(now as u64),
        nbf: None,
        sub: None,
    }
}

#[test]
fn a_minted_token_verifies() {
    let t = mint(
        &key("k1"),
        "acme",
        Some("main"),
        Some("imgs/"),
        Duration::from_secs(600),
    );
    let c = verifier().verify_local(&t).unwrap();
    assert_eq!(
        (c.org.as_str(), c.sto.as_deref(), c.pfx.as_deref()),
        ("acme", Some("main"), Some("imgs/"))
    );
}

#[test]
fn a_verified_token_is_remembered_while_its_key_is_current_and_until_it_expires() {
    let v = verifier();
    let t = mint_claims(&key("k1"), &claims(600));
    let first = v.verify_local(&t).unwrap();
    assert!(v.verified.get(&t).is_some(), "remembered");
    assert_eq!(v.verify_local(&t).unwrap(), first);

    // Remembered with a key that is no longer the key of its kid (rotated, refetched): not
    // trusted; the token is verified again (and this one is not a JWT at all).
    let stale = Verified {
        claims: Arc::new(claims(600)),
        kid: "k1".into(),
        key: Arc::new(keys::secret(b"another-secret-0123456789abcdef0123")),
    };
    v.verified.insert("not-a-jwt".into(), stale);
    assert!(matches!(
        v.verify_local("not-a-jwt"),
        Err(GatewayError::InvalidToken(_))
    ));
    assert!(v.verified.get("not-a-jwt").is_none(), "forgotten");

    // Remembered, current key, but its exp has passed meanwhile: expired, whether the
    // serving thread remembers it or only the shared cache does.
    let mut old = claims(0);
    old.exp = now_secs() - DEFAULT_LEEWAY_SECS - 1;
    let expired = Verified {
        claims: Arc::new(old),
        kid: "k1".into(),
        key: v.keys["k1"].clone(),
    };
    recent::keep(v.id, &t, &expired);
    assert_eq!(v.verify_local(&t).unwrap_err(), GatewayError::ExpiredToken);
    assert!(
        recent::find(v.id, &t).is_none() && v.verified.get(&t).is_none(),
        "forgotten"
    );
    v.verified.insert(t.clone(), expired);
    assert_eq!(v.verify_local(&t).unwrap_err(), GatewayError::ExpiredToken);

    // A token that fails is never remembered.
    let last = if t.ends_with('x') { "y" } else { "x" };
    let forged = format!("{}{last}", &t[..t.len() - 1]);
    assert!(v.verify_local(&forged).is_err());
    assert!(v.verified.get(&forged).is_none());
}

#[test]
fn expired_is_its_own_error() {
    let mut c = claims(-120);
    c.iat = Some(c.exp - 60);
    let t = mint_claims(&key("k1"), &c);
    assert_eq!(verifier().verify_local(&t).unwrap_err(), GatewayError::ExpiredToken);
}

#[test]
fn expiry_within_leeway_is_accepted() {
    let t = mint_claims(&key("k1"), &claims(-10));
    assert!(verifier().verify_local(&t).is_ok());
}

#[test]
fn bad_signature_unknown_kid_and_garbage_are_invalid() {
    let other = TokenKey {
        kid: "k1".into(),
        secret: Secret::new("another-secret-another-secret-xx"),
    };
    for t in [
        mint_claims(&other, &claims(60)),
        mint_claims(&key("k9"), &claims(60)),
        "abc".into(),
        "a.b.c".into(),
        String::new(),
    ] {
        assert_eq!(verifier().verify_local(&t).unwrap_err().code(), "invalid_token", "{t}");
    }
}

#[test]
fn other_algorithms_are_refused() {
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("k1".into());
    let t = jsonwebtoken::encode(
        &header,
        &claims(60),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    assert_eq!(verifier().verify_local(&t).unwrap_err().code(), "invalid_token");
}

#[test]
fn not_yet_valid_is_invalid() {
    let mut c = claims(600);
    c.nbf = Some(now_secs() + 300);
    let t = mint_claims(&key("k1"), &c);
    assert_eq!(verifier().verify_local(&t).unwrap_err().code(), "invalid_token");
}

#[test]
fn lifetime_longer_than_max_ttl_is_refused() {
    let c = Claims {
        org: "o".into(),
        sto: None,
        pfx: None,
        exp: 10_000,
        iat: Some(1_000),
        nbf: None,
        sub: None,
    };
    let leeway = DEFAULT_LEEWAY_SECS;
    assert!(check_lifetime(&c, 1_000, 9_000, leeway).is_ok());
    assert!(check_lifetime(&c, 1_000, 8_000, leeway).is_err());
    let no_iat = Claims { iat: None, ..c.clone() };
    assert!(check_lifetime(&no_iat, 5_000, 5_000, leeway).is_ok());
    assert!(check_lifetime(&no_iat, 500, 5_000, leeway).is_err());
    let future = Claims { iat: Some(2_000), ..c };
    assert!(check_lifetime(&future, 1_000, 100_000, leeway).is_err());
}

#[test]
fn scope_checks_org_storage_and_prefix() {
    let c = Claims {
        org: "acme".into(),
        sto: Some("main".into()),
        pfx: Some("imgs/cats/".into()),
        exp: 0,
        iat: None,
        nbf: None,
        sub: None,
    };
    assert!(check_scope(&c, "acme", "main", "imgs", "cats/1.jpg").is_ok());
    assert_eq!(
        check_scope(&c, "other", "main", "imgs", "cats/1.jpg").unwrap_err(),
        GatewayError::TokenScope("organization")
    );
    assert_eq!(
        check_scope(&c, "acme", "second", "imgs", "cats/1.jpg").unwrap_err(),
        GatewayError::TokenScope("storage")
    );
    assert_eq!(
        check_scope(&c, "acme", "main", "imgs", "dogs/1.jpg").unwrap_err(),
        GatewayError::TokenScope("object prefix")
    );
    assert_eq!(
        check_scope(&c, "acme", "main", "imgs2", "cats/1.jpg").unwrap_err(),
        GatewayError::TokenScope("object prefix")
    );
}

#[test]
fn dot_segments_are_refused_under_a_prefix_and_ordinary_without_one() {
    let scoped = Claims {
        org: "acme".into(),
        sto: None,
        pfx: Some("imgs/team1/".into()),
        exp: 0,
        iat: None,
        nbf: None,
        sub: None,
    };
    for key in [
        "team1/../other/x.jpg",
        "team1/./x.jpg",
        "team1/a/..",
        "team1/..\\other",
        "team1/x/../../y",
    ] {
        assert_eq!(
            check_scope(&scoped, "acme", "main", "imgs", key).unwrap_err(),
            GatewayError::TokenScope("key with `.` or `..` segments"),
            "{key}"
        );
    }
    for key in ["team1/a..b.jpg", "team1/.hidden", "team1/...", "team1/a.b/c"] {
        assert!(check_scope(&scoped, "acme", "main", "imgs", key).is_ok(), "{key}");
    }
    let unscoped = Claims { pfx: None, ..scoped };
    assert!(check_scope(&unscoped, "acme", "main", "imgs", "a/../b").is_ok());
}

#[test]
fn a_token_with_critical_extensions_is_refused() {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let sign = |header: serde_json::Value| {
        let input = format!("{}.{}", b64(&header), b64(&serde_json::to_value(claims(60)).unwrap()));
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef"),
            input.as_bytes(),
        );
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    };
    let plain = sign(serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}));
    assert!(
        verifier().verify_local(&plain).is_ok(),
        "the hand-made token is well signed"
    );
    let crit = sign(serde_json::json!({"alg": "HS256", "kid": "k1", "crit": ["exp"], "exp": 1}));
    let err = verifier().verify_local(&crit).unwrap_err();
    assert_eq!(err.code(), "invalid_token");
    assert!(err.to_string().contains("crit"), "{err}");
}

#[test]
fn extract_prefers_the_bearer_header() {
    let mut h = HeaderMap::new();
    assert_eq!(extract(&h, Some("token=q")).unwrap().as_deref(), Some("q"));
    assert_eq!(extract(&h, Some("token=")).unwrap(), None);
    assert_eq!(extract(&h, None).unwrap(), None);
    h.insert("authorization", "bearer  h ".parse().unwrap());
    assert_eq!(extract(&h, Some("token=q")).unwrap().as_deref(), Some("h"));
    h.insert("authorization", "Basic dXNlcg==".parse().unwrap());
    assert_eq!(extract(&h, None).unwrap_err().code(), "invalid_token");
}

proptest! {
    #[test]
    fn verify_never_panics(token in "\\PC*") {
        let _ = verifier().verify_local(&token);
    }

    #[test]
    fn verify_never_panics_on_jwt_shaped_input(a in "[A-Za-z0-9_-]{0,60}", b in "[A-Za-z0-9_-]{0,60}", c in "[A-Za-z0-9_-]{0,60}") {
        let _ = verifier().verify_local(&format!("eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0{a}.{b}.{c}"));
    }
}

#[test]
fn bearer_takes_the_scheme_case_insensitively_and_nothing_else() {
    assert_eq!(bearer("Bearer abc"), Some("abc"));
    assert_eq!(bearer("BEARER  abc "), Some("abc"));
    assert_eq!(bearer("Basic abc"), None);
    assert_eq!(bearer("Bearer"), None);
}

mod public_keys {
    use super::*;
    use crate::token::PublicKey;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const RSA_PRIVATE: &str = include_str!("../credentials/google_test_key.pem");
    const RSA_PUBLIC: &str = include_str!("../../tests/gateway/support/google_test_key.pub.pem");

    /// (private PKCS#8 PEM, public PEM) of a fresh key.
    fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let k = rcgen::KeyPair::generate_for(alg).unwrap();
        (k.serialize_pem(), k.public_key_pem())
    }

    fn public(kid: &str, alg: Algorithm, pem: &str) -> PublicKey {
        PublicKey {
            kid: kid.into(),
            key: keys::from_pem(alg, pem).unwrap(),
        }
    }

    fn sign(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        encode(&header, &claims(600), key).unwrap()
    }

    #[test]
    fn each_algorithm_verifies_with_its_own_key_only() {
        let (ed_private, ed_public) = pair(&rcgen::PKCS_ED25519);
        let (ec_private, ec_public) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let v = TokenVerifier::new(&AuthConfig {
            keys: vec![key("h1")],
            public_keys: vec![
                public("ed", Algorithm::EdDSA, &ed_public),
                public("ec", Algorithm::ES256, &ec_public),
                public("rs", Algorithm::RS256, RSA_PUBLIC),
            ],
            jwks_url: None,
            jwks_refresh: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
            leeway: Duration::from_secs(DEFAULT_LEEWAY_SECS),
            require_sub: false,
            allow_anonymous: false,
        });
        let ed = EncodingKey::from_ed_pem(ed_private.as_bytes()).unwrap();
        let ec = EncodingKey::from_ec_pem(ec_private.as_bytes()).unwrap();
        let rs = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        assert!(v.verify_local(&sign(Algorithm::EdDSA, "ed", &ed)).is_ok());
        assert!(v.verify_local(&sign(Algorithm::ES256, "ec", &ec)).is_ok());
        assert!(v.verify_local(&sign(Algorithm::RS256, "rs", &rs)).is_ok());
        // Signed by another key than the one its kid names.
        assert!(v.verify_local(&sign(Algorithm::EdDSA, "ec", &ed)).is_err());
        assert!(v.verify_local(&sign(Algorithm::RS256, "ed", &rs)).is_err());
        // The confusion: HS256 with the public key's PEM as the secret.
        for (kid, pem) in [("ed", &ed_public), ("rs", &RSA_PUBLIC.to_string())] {
            let forged = sign(Algorithm::HS256, kid, &EncodingKey::from_secret(pem.as_bytes()));
            assert_eq!(
                v.verify_local(&forged).unwrap_err(),
                GatewayError::InvalidToken("its `alg` is not the algorithm of its key".into()),
                "{kid}"
            );
        }
        // A public key's algorithm cannot be taken by an HS256 kid either.
        let hs_as_ed = sign(Algorithm::EdDSA, "h1", &ed);
        assert!(v.verify_local(&hs_as_ed).is_err());
    }

    #[test]
    fn alg_none_is_never_a_token() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let unsigned = format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none", "kid": "h1"})),
            b64(serde_json::to_value(claims(600)).unwrap())
        );
        assert!(matches!(
            verifier().verify_local(&unsigned),
            Err(GatewayError::InvalidToken(_))
        ));
    }

    #[test]
    fn private_keys_and_wrong_shapes_are_refused_as_public_keys() {
        let (ed_private, ed_public) = pair(&rcgen::PKCS_ED25519);
        assert!(keys::from_pem(Algorithm::EdDSA, &ed_private)
            .unwrap_err()
            .contains("private key"));
        assert!(keys::from_pem(Algorithm::RS256, &ed_public).is_err());
        assert!(keys::from_pem(Algorithm::ES256, "not a pem").is_err());
    }
}

fn verifier_with(leeway: u64, require_sub: bool) -> TokenVerifier {
    TokenVerifier::new(&AuthConfig {
        keys: vec![key("k1")],
        public_keys: vec![],
        jwks_url: None,
        jwks_refresh: Duration::from_secs(300),
        max_ttl: Duration::from_secs(3600),
        leeway: Duration::from_secs(leeway),
        require_sub,
        allow_anonymous: false,
    })
}

#[test]
fn the_leeway_is_the_configured_one_and_may_be_zero() {
    let just_expired = mint_claims(&key("k1"), &claims(-5));
    assert!(
        verifier_with(30, false).verify_local(&just_expired).is_ok(),
        "within 30 s"
    );
    assert_eq!(
        verifier_with(0, false).verify_local(&just_expired).unwrap_err(),
        GatewayError::ExpiredToken
    );
    let long_ago = mint_claims(&key("k1"), &claims(-40));
    assert_eq!(
        verifier_with(30, false).verify_local(&long_ago).unwrap_err(),
        GatewayError::ExpiredToken
    );
    let not_yet = Claims {
        nbf: Some(now_secs() + 10),
        ..claims(600)
    };
    let not_yet = mint_claims(&key("k1"), &not_yet);
    assert!(verifier_with(30, false).verify_local(&not_yet).is_ok());
    assert!(verifier_with(0, false).verify_local(&not_yet).is_err());
}

#[test]
fn sub_is_bounded_and_may_be_required() {
    let with_sub = |sub: Option<String>| mint_claims(&key("k1"), &Claims { sub, ..claims(600) });
    let v = verifier_with(30, false);
    assert!(v.verify_local(&with_sub(Some("u".repeat(256)))).is_ok());
    assert!(matches!(
        v.verify_local(&with_sub(Some("u".repeat(257)))),
        Err(GatewayError::InvalidToken(_))
    ));
    assert!(v.verify_local(&with_sub(None)).is_ok());
    let strict = verifier_with(30, true);
    assert!(matches!(strict.verify_local(&with_sub(None)), Err(GatewayError::InvalidToken(m)) if m.contains("sub")));
    assert!(strict.verify_local(&with_sub(Some("labeler-7".into()))).is_ok());
    assert_eq!(
        sub_problem(Some(&"u".repeat(257)), false),
        Some("must be at most 256 bytes")
    );
    assert!(sub_problem(None, true).is_some());
    assert_eq!(sub_problem(Some("labeler-7"), true), None);
}

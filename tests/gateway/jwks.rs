//! Public-key labeler tokens (README "Labeler tokens") against SeaweedFS: EdDSA, ES256 and RS256 keys of the
//! file, and a JSON Web Key Set served by the test whose keys change while the gateway runs.
//! The set's server is the test's own (no real identity provider runs here): it serves what
//! the test puts in it, counts fetches, and fails on demand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::client::get;
use crate::support::loopback::serve_http;
use crate::support::seaweed::seaweed;
use crate::support::*;

const RSA_PRIVATE: &str = include_str!("../../src/credentials/google_test_key.pem");
const RSA_PUBLIC: &str = include_str!("support/google_test_key.pub.pem");

/// A key pair of the tests: its signing key, public PEM and JWK.
pub(crate) struct Pair {
    kid: String,
    alg: Algorithm,
    signing: EncodingKey,
    public_pem: String,
    pub(crate) jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn ed25519(kid: &str) -> Pair {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Pair {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        signing: EncodingKey::from_ed_pem(k.serialize_pem().as_bytes()).unwrap(),
        public_pem: k.public_key_pem(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": b64(k.public_key_raw())}),
    }
}

fn p256(kid: &str) -> Pair {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = k.public_key_raw(); // 0x04 || x || y
    Pair {
        kid: kid.into(),
        alg: Algorithm::ES256,
        signing: EncodingKey::from_ec_pem(k.serialize_pem().as_bytes()).unwrap(),
        public_pem: k.public_key_pem(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b64(&raw[1..33]), "y": b64(&raw[33..])}),
    }
}

impl Pair {
    pub(crate) fn token(&self, org: &str, sub: &str) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        let claims = json!({"org": org, "sub": sub, "exp": now() + 600, "iat": now()});
        jsonwebtoken::encode(&header, &claims, &self.signing).unwrap()
    }
}

/// The test's key set server.
#[derive(Clone)]
pub(crate) struct KeySet {
    pub(crate) url: String,
    pub(crate) keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl KeySet {
    pub(crate) async fn start(keys: Vec<Value>) -> KeySet {
        let mut set = KeySet {
            url: String::new(),
            keys: Arc::new(Mutex::new(keys)),
            fetches: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
        };
        let shared = set.clone();
        let addr = serve_http(move |_req| {
            let set = shared.clone();
            async move {
                set.fetches.fetch_add(1, Ordering::SeqCst);
                let (status, body) = if set.down.load(Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, "down".to_string())
                } else {
                    (StatusCode::OK, json!({"keys": *set.keys.lock().unwrap()}).to_string())
                };
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap()
            }
        })
        .await;
        set.url = format!("http://{addr}/.well-known/jwks.json");
        set
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A gateway whose `[auth]` also has `extra`, in front of one SeaweedFS bucket of `acme`.
async fn gateway(extra: &str) -> TestGateway {
    let sw = seaweed();
    sw.seed("jwks-assets", &[("a.txt", b"signed by the platform")]).await;
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &["jwks-assets"], &sw.reader)
    );
    let text = config("", &orgs).replace("max_ttl = \"1h\"", &format!("max_ttl = \"1h\"\n{extra}"));
    TestGateway::start(&text).await
}

async fn status_with(gw: &TestGateway, token: &str) -> (u16, String) {
    let r = get(
        &gw.url("acme", "main", "jwks-assets", "a.txt"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    let code = if r.status.is_success() {
        String::new()
    } else {
        r.error_code()
    };
    (r.status.as_u16(), code)
}

#[tokio::test]
async fn public_keys_of_the_file_verify_tokens_of_their_algorithm_only() {
    let (ed, ec) = (ed25519("file-ed"), p256("file-ec"));
    let keys = format!(
        "keys = [{{ kid = \"k1\", alg = \"HS256\", secret = \"{TOKEN_SECRET}\" }}, \
         {{ kid = \"file-ed\", alg = \"EdDSA\", public_key = \"\"\"{}\"\"\" }}, \
         {{ kid = \"file-ec\", alg = \"ES256\", public_key = \"\"\"{}\"\"\" }}, \
         {{ kid = \"file-rs\", alg = \"RS256\", public_key = \"\"\"{}\"\"\" }}]",
        ed.public_pem, ec.public_pem, RSA_PUBLIC
    );
    let sw = seaweed();
    sw.seed("jwks-assets", &[("a.txt", b"signed by the platform")]).await;
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &["jwks-assets"], &sw.reader)
    );
    let text = config("", &orgs).replace(
        &format!("keys = [{{ kid = \"k1\", alg = \"HS256\", secret = \"{TOKEN_SECRET}\" }}]"),
        &keys,
    );
    let gw = TestGateway::start(&text).await;
    let rs = Pair {
        kid: "file-rs".into(),
        alg: Algorithm::RS256,
        signing: EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        public_pem: RSA_PUBLIC.into(),
        jwk: Value::Null,
    };
    for pair in [&ed, &ec, &rs] {
        assert_eq!(
            status_with(&gw, &pair.token("acme", "u1")).await,
            (200, String::new()),
            "{:?}",
            pair.alg
        );
    }
    assert_eq!(
        status_with(&gw, &token("acme")).await.0,
        200,
        "HS256 keys keep working beside them"
    );
    // HS256 "signed" with a public key's PEM, under that key's kid.
    for pair in [&ed, &rs] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(pair.kid.clone());
        let claims = json!({"org": "acme", "exp": now() + 600});
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(pair.public_pem.as_bytes())).unwrap();
        assert_eq!(
            status_with(&gw, &forged).await,
            (401, "invalid_token".into()),
            "{:?}",
            pair.alg
        );
    }
}

#[tokio::test]
async fn a_key_set_rotates_without_a_restart_and_outlives_its_server() {
    let (first, second) = (ed25519("set-1"), p256("set-2"));
    let set = KeySet::start(vec![first.jwk.clone()]).await;
    let gw = gateway(&format!("jwks_url = \"{}\"\njwks_refresh = \"1h\"", set.url)).await;
    assert_eq!(set.fetches(), 1, "fetched at start");
    assert_eq!(status_with(&gw, &first.token("acme", "u1")).await, (200, String::new()));

    // The platform rotates: the new kid is fetched at once, without a restart.
    *set.keys.lock().unwrap() = vec![first.jwk.clone(), second.jwk.clone()];
    assert_eq!(
        status_with(&gw, &second.token("acme", "u1")).await,
        (200, String::new())
    );
    assert_eq!(set.fetches(), 2);

    // A flood of unknown kids right after: at most one more fetch in 30 s.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let stranger = ed25519(&format!("unknown-{i}"));
            let url = gw.url("acme", "main", "jwks-assets", "a.txt");
            tokio::spawn(async move {
                let auth = format!("Bearer {}", stranger.token("acme", "u1"));
                get(&url, &[("authorization", &auth)]).await.error_code()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "invalid_token");
    }
    assert!(set.fetches() <= 3, "{} fetches for 50 unknown kids", set.fetches());

    // The set's server goes away: the keys fetched keep working.
    set.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for pair in [&first, &second] {
        assert_eq!(status_with(&gw, &pair.token("acme", "u1")).await, (200, String::new()));
    }
    let metrics = gw.gateway.metrics.encode();
    assert!(
        metrics.contains("assetgate_jwks_fetches_total{result=\"ok\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_set_that_cannot_be_fetched_at_start_leaves_the_file_keys_working() {
    let set = KeySet::start(vec![]).await;
    set.down.store(true, Ordering::SeqCst);
    let gw = gateway(&format!("jwks_url = \"{}\"", set.url)).await;
    assert_eq!(status_with(&gw, &token("acme")).await.0, 200);
    let later = ed25519("later");
    assert_eq!(
        status_with(&gw, &later.token("acme", "u1")).await,
        (401, "invalid_token".into())
    );
    // Back, with the key: the unknown kid above refetched (and failed) just now, so the
    // next refetch for one waits 30 s; the periodic refresh (here called at once) does not.
    set.down.store(false, Ordering::SeqCst);
    *set.keys.lock().unwrap() = vec![later.jwk.clone()];
    gw.gateway.jwks.as_ref().unwrap().refresh().await;
    assert_eq!(status_with(&gw, &later.token("acme", "u1")).await, (200, String::new()));
}

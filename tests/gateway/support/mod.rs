//! Test support: real backends started on loopback (SeaweedFS, moto, s3s), a gateway
//! started in-process on 127.0.0.1:0, an HTTP client, and a raw TCP stand-in for the few
//! behaviours no real server can be made to show on demand.

pub mod azurite;
pub mod binary;
pub mod client;
pub mod fake_gcs;
pub mod fake_sts;
pub mod faults;
pub mod loopback;
pub mod moto;
pub mod oauth;
pub mod postgres;
pub mod process;
pub mod relay;
pub mod seaweed;
pub mod standin;
pub mod tls;
pub mod tmpfs;
pub mod traffic;

use std::time::Duration;

use assetgate::credentials::StaticKeys;
use assetgate::route::encode_key;
use assetgate::secret::Secret;
use assetgate::server::ServeOptions;
use assetgate::token::TokenKey;
use assetgate::token::{self, Claims};
use assetgate::upstream::Endpoint;
use assetgate::{Config, Gateway};
use tokio::sync::oneshot;

/// The token signing key of every test gateway.
pub const TOKEN_SECRET: &str = "test-token-key-0123456789abcdef0123456789";

/// The origin every test gateway allows.
pub const EDITOR_ORIGIN: &str = "https://editor.test";

pub fn token_key() -> TokenKey {
    TokenKey {
        kid: "k1".into(),
        secret: Secret::new(TOKEN_SECRET),
    }
}

/// A valid token for `org` (any storage, any object), good for 10 minutes.
pub fn token(org: &str) -> String {
    token::mint(&token_key(), org, None, None, Duration::from_secs(600))
}

/// A token with arbitrary claims, for expiry and scope tests.
pub fn token_with(claims: &Claims) -> String {
    token::mint_claims(&token_key(), claims)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A gateway configuration with the test key, the editor origin, and `orgs` appended.
pub fn config(server: &str, orgs: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server}

[auth]
keys = [{{ kid = "k1", alg = "HS256", secret = "{TOKEN_SECRET}" }}]
max_ttl = "1h"

[cors]
allowed_origins = ["{EDITOR_ORIGIN}"]
max_age = "10m"

{orgs}
"#
    )
}

/// One `[[orgs.storages]]` block for an S3-compatible endpoint with static keys.
pub fn storage(id: &str, endpoint: &Endpoint, buckets: &[&str], keys: &StaticKeys) -> String {
    let buckets: Vec<String> = buckets.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        r#"
[[orgs.storages]]
id = "{id}"
provider = "s3_compatible"
buckets = [{}]
endpoint = "{endpoint}"
credentials = {{ type = "access_key", access_key_id = "{}", secret_access_key = "{}" }}
"#,
        buckets.join(", "),
        keys.access_key_id,
        keys.secret_access_key.expose()
    )
}

/// A storage block (the last table of `block`) that the edge cache leaves alone: for tests
/// of the path to the bucket (its connections, its requests, its credentials), which count
/// what crosses it.
pub fn uncached(block: String) -> String {
    format!("{block}cache = false\n")
}

/// A gateway serving `config` on 127.0.0.1:0 inside the test's runtime; stops when dropped.
pub struct TestGateway {
    pub base: String,
    /// The admin listener.
    pub admin_base: String,
    /// The running gateway's state, for tests that read its counters.
    pub gateway: std::sync::Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    pub async fn start(toml: &str) -> TestGateway {
        let config = Config::from_toml(toml, &|_| None).expect("test config is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let gateway = std::sync::Arc::new(Gateway::open(&config).await.expect("registry opens"));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut options = ServeOptions::from_config(&config.server);
        if let Some(files) = &config.server.tls {
            let store = assetgate::tls::CertStore::load(files).expect("test certificate");
            options.tls = Some(store.acceptor());
            store.watch();
        }
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_base = format!("http://{}", admin.local_addr().unwrap());
        let serve = assetgate::service::serve_gateway(gateway.clone(), listener, Some(admin), options, async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve);
        TestGateway {
            base,
            admin_base,
            gateway,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A gateway whose only org, `acme`, has one storage `id`: `config` plus that org.
    pub async fn acme(config: &str, id: &str, endpoint: &Endpoint, buckets: &[&str], keys: &StaticKeys) -> TestGateway {
        let org = format!("[[orgs]]\nid = \"acme\"\n{}", storage(id, endpoint, buckets, keys));
        TestGateway::start(&format!("{config}\n{org}")).await
    }

    /// A gateway whose org `acme` has storage `main`, bucket `b-bucket`, on a stand-in. Not
    /// cached: a stand-in plays one scripted answer per request, and its tests are about the
    /// path to the bucket.
    pub async fn in_front_of(upstream: &standin::StandIn, server: &str) -> TestGateway {
        let keys = standin::any_keys();
        let org = format!(
            "[[orgs]]\nid = \"acme\"\n{}",
            uncached(storage("main", &upstream.endpoint(), &["b-bucket"], &keys))
        );
        TestGateway::start(&format!("{}\n{org}", config(server, ""))).await
    }

    /// Shuts the gateway down and waits until it has let go of everything (its registry
    /// file among them).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The Prometheus text of the admin listener.
    pub async fn metrics(&self) -> String {
        let reply = client::get(&format!("{}/metrics", self.admin_base), &[]).await;
        String::from_utf8(reply.body.to_vec()).unwrap()
    }

    /// The object URL of `key`, encoded as a client would.
    pub fn url(&self, org: &str, storage: &str, bucket: &str, key: &str) -> String {
        format!(
            "{}/v1/orgs/{org}/storages/{storage}/objects/{bucket}/{}",
            self.base,
            encode_key(key)
        )
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Deterministic, non-repeating-looking bytes, so that a misplaced slice is caught.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 7) as u8 ^ seed)
        .collect()
}

/// Polls `ready` every 20 ms until it holds; says how long that took. Fails after `limit`.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut ready: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !ready().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

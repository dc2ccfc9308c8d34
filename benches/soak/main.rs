//! The soak: hours of mixed traffic at about half the gateway's maximum, while everything
//! around it changes, and what the gateway's process holds over time.
//!
//! `cargo bench --bench soak -- --minutes 30` starts, on this machine: the load benchmark's
//! s3s backend in its own process, PostgreSQL (Debian's server, as `nobody` when run as
//! root) as the registry, a JSON Web Key Set server of its own whose Ed25519 key rotates
//! every minute, and the release gateway configured as in production (`RUST_LOG=info`, its
//! log in a file, CORS on, the edge cache on). It measures the most the gateway serves of
//! the mix for 10 s, then runs the mix at half that rate: small images (every body
//! checked), ranged reads of a video (checked), HEADs, CORS preflights, expired tokens and
//! tokens of another org (401 and 403 expected), and three slow clients reading the video
//! at 256 KiB/s. Meanwhile a storage is created, its credentials rotated and deleted again
//! through the admin API every 3 s, the key set rotates and the config is reloaded (SIGHUP)
//! every minute. Every `--report-every` seconds (60) it prints requests, answers that were
//! not what the request should get (by kind and status), p50 and p99, and the gateway's
//! resident memory, open file descriptors and threads; at the end the slope of memory and
//! descriptors over the last two thirds of the run. Options: `--minutes N` (30),
//! `--rate N` (requests per second instead of half the measured maximum), `--chaos` (the
//! long form of the chaos tests: the bucket, the registry's database and the key set sit
//! behind the tests' fault relay, and every minute one of them fails for 5 to 10 s in turn;
//! an answer a fault may explain, a 502/503/504 or a body visibly cut, is counted apart,
//! and only while the fault lasts and 3 s after). See benches/README.md.

#[path = "../load/backend.rs"]
mod backend;
#[path = "../../tests/gateway/support/faults.rs"]
#[allow(
    dead_code,
    reason = "the soak sets faults; it has no use for the relay's endpoint form"
)]
mod faults;
#[path = "../shared/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use faults::{Fault, FaultRelay};
use process::{free_port, Proc};

const BUCKET: &str = "soak";
const ORIGIN: &str = "https://labeling.example.com";
const ADMIN: &str = "soak-admin-token-0123456789abcdef";
const ACCESS_KEY: &str = "SOAKACCESSKEY";
const SECRET_KEY: &str = "soak-secret-access-key-0123456789";
const IMAGES: usize = 20;
const IMAGE_SIZE: usize = 8 * 1024;
const VIDEO_SIZE: usize = 16 << 20;
const RANGE: usize = 256 * 1024;
const WORKERS: usize = 32;
const SLOW_CLIENTS: usize = 3;

fn main() {
    if backend::serve_if_asked() {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.windows(2)
            .find(|w| w[0] == name)
            .and_then(|w| w[1].parse::<f64>().ok())
    };
    let minutes = option("--minutes").unwrap_or(30.0);
    let rate = option("--rate");
    let every = option("--report-every").unwrap_or(60.0);
    let chaos = args.iter().any(|a| a == "--chaos");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak(minutes, rate, Duration::from_secs_f64(every), chaos));
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed as usize) % 251) as u8).collect()
}

/// PostgreSQL of the soak's own: a fresh cluster, password login for `postgres`.
fn postgres(dir: &std::path::Path) -> (Proc, String) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server (Debian: apt-get install postgresql)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .max()
        .unwrap();
    let root = is_root();
    let pg = dir.join("pg");
    std::fs::create_dir_all(&pg).unwrap();
    std::fs::write(pg.join("pw"), "soak-pw").unwrap();
    if root {
        assert!(Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&pg)
            .status()
            .unwrap()
            .success());
    }
    let run = |program: &std::path::Path| {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    let out = run(&bin.join("initdb"))
        .arg("-D")
        .arg(pg.join("data"))
        .args([
            "-U",
            "postgres",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--pwfile",
        ])
        .arg(pg.join("pw"))
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    let child = run(&bin.join("postgres"))
        .arg("-D")
        .arg(pg.join("data"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(&pg)
        .args(["-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("postgres.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "PostgreSQL did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    (
        Proc(child),
        format!("postgres://postgres:soak-pw@127.0.0.1:{port}/postgres"),
    )
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().next() == Some("0"))
}

/// The key set: Ed25519 keys by `kid`, the newest signs; served as a JWKS.
struct KeySet {
    /// (`kid`, key), oldest first.
    keys: Mutex<Vec<(String, Arc<Ed25519KeyPair>)>>,
    made: AtomicU64,
}

impl KeySet {
    fn new() -> Arc<KeySet> {
        let set = Arc::new(KeySet {
            keys: Mutex::new(Vec::new()),
            made: AtomicU64::new(0),
        });
        set.rotate();
        set
    }

    /// A new key signs from now on; the one before it stays in the set (tokens signed with
    /// it are still out there), older ones leave.
    fn rotate(&self) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let kid = format!("soak-{}", self.made.fetch_add(1, Ordering::SeqCst));
        let mut keys = self.keys.lock().unwrap();
        keys.push((kid, Arc::new(pair)));
        if keys.len() > 2 {
            keys.remove(0);
        }
    }

    fn document(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .lock()
            .unwrap()
            .iter()
            .map(|(kid, pair)| {
                json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                       "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
            })
            .collect();
        json!({ "keys": keys }).to_string()
    }

    /// A token of `org` signed with the newest key, expiring at `exp`.
    fn token(&self, org: &str, exp: u64, sub: &str) -> String {
        let (kid, pair) = {
            let keys = self.keys.lock().unwrap();
            let (kid, pair) = keys.last().unwrap();
            (kid.clone(), pair.clone())
        };
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
        let iat = exp.saturating_sub(600);
        let claims = URL_SAFE_NO_PAD.encode(json!({"org": org, "exp": exp, "iat": iat, "sub": sub}).to_string());
        let input = format!("{header}.{claims}");
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
        format!("{input}.{signature}")
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Serves the key set on a fresh loopback port.
async fn serve_keys(set: Arc<KeySet>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let set = set.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = set.document();
                    async move { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

/// What one request of the mix is, and what it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Image,
    VideoRange,
    Head,
    Preflight,
    Expired,
    Foreign,
    Churned,
    Slow,
}

impl Kind {
    fn of(i: u64) -> Kind {
        match i % 20 {
            0..=9 => Kind::Image,
            10..=12 => Kind::VideoRange,
            13 | 14 => Kind::Head,
            15 => Kind::Preflight,
            16 => Kind::Expired,
            17 => Kind::Foreign,
            _ => Kind::Churned,
        }
    }
}

#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    requests: u64,
    unexpected: BTreeMap<String, u64>,
}

struct Stats {
    window: Mutex<Window>,
    total: AtomicU64,
    unexpected: Mutex<BTreeMap<String, u64>>,
    bytes_checked: AtomicU64,
    /// With `--chaos`: when each fault began and ended (`None` while it lasts).
    faults: Mutex<Vec<(Instant, Option<Instant>)>>,
    /// Answers a fault explains, by kind and what they were.
    explained: Mutex<BTreeMap<String, u64>>,
}

/// How long after a fault ends its effects may still be seen (a request begun during it).
const AFTER_FAULT: Duration = Duration::from_secs(3);

/// Whether a fault can explain `problem`: the gateway's answer for a bucket or registry it
/// cannot reach, or a body visibly cut. Never a wrong or short body taken as complete.
fn a_fault_explains(problem: &str) -> bool {
    ["502", "503", "504", "body cut"].iter().any(|p| problem.starts_with(p))
}

impl Stats {
    /// Whether a fault lasted at some time between `from` and `to` (or shortly before).
    fn under_fault(&self, from: Instant, to: Instant) -> bool {
        self.faults
            .lock()
            .unwrap()
            .iter()
            .any(|(began, ended)| *began <= to && ended.is_none_or(|e| e + AFTER_FAULT >= from))
    }

    fn record(&self, kind: Kind, took: Duration, problem: Option<String>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let ended = Instant::now();
        let problem = match problem {
            Some(p) if a_fault_explains(&p) && self.under_fault(ended - took, ended) => {
                *self
                    .explained
                    .lock()
                    .unwrap()
                    .entry(format!("{kind:?}: {p}"))
                    .or_default() += 1;
                None
            }
            other => other,
        };
        let mut w = self.window.lock().unwrap();
        w.requests += 1;
        w.latencies.push(took);
        if let Some(p) = problem {
            let key = format!("{kind:?}: {p}");
            *w.unexpected.entry(key.clone()).or_default() += 1;
            *self.unexpected.lock().unwrap().entry(key).or_default() += 1;
        }
    }
}

struct Mix {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    keys: Arc<KeySet>,
    images: Vec<Vec<u8>>,
    video: Vec<u8>,
    stats: Arc<Stats>,
}

impl Mix {
    fn url(&self, storage: &str, key: &str) -> String {
        format!("{}/v1/orgs/acme/storages/{storage}/objects/{BUCKET}/{key}", self.base)
    }

    /// One request of `kind`: `None` when it got what it should, else what went wrong.
    async fn one(&self, kind: Kind, i: u64) -> Option<String> {
        let image = (i as usize / 20) % IMAGES;
        let labeler = format!("labeler-{}", i % 50);
        let token = match kind {
            Kind::Expired => self.keys.token("acme", now() - 3600, &labeler),
            Kind::Foreign => self.keys.token("other-org", now() + 600, &labeler),
            _ => self.keys.token("acme", now() + 600, &labeler),
        };
        let (method, url) = match kind {
            Kind::Head => (Method::HEAD, self.url("main", &format!("img-{image}.jpg"))),
            Kind::Preflight => (Method::OPTIONS, self.url("main", &format!("img-{image}.jpg"))),
            Kind::VideoRange | Kind::Slow => (Method::GET, self.url("main", "video.mp4")),
            Kind::Churned => (Method::GET, self.url("churn", &format!("img-{image}.jpg"))),
            _ => (Method::GET, self.url("main", &format!("img-{image}.jpg"))),
        };
        let mut request = Request::builder().method(method).uri(url).header("origin", ORIGIN);
        let mut range = None;
        match kind {
            Kind::Preflight => {
                request = request
                    .header("access-control-request-method", "GET")
                    .header("access-control-request-headers", "authorization, range");
            }
            _ => request = request.header("authorization", format!("Bearer {token}")),
        }
        if kind == Kind::VideoRange {
            let from = (i as usize * 7919 * 4096) % (VIDEO_SIZE - RANGE);
            range = Some(from..from + RANGE);
            request = request.header("range", format!("bytes={from}-{}", from + RANGE - 1));
        }
        let response = match tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request(request.body(Empty::new()).unwrap()),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Some(format!("no answer: {e}")),
            Err(_) => return Some("no answer in 30 s".into()),
        };
        let status = response.status();
        let cors = response
            .headers()
            .get("access-control-allow-origin")
            .is_some_and(|v| v == ORIGIN);
        let want: &[u8] = match (kind, &range) {
            (Kind::VideoRange, Some(r)) => &self.video[r.clone()],
            (Kind::Slow, _) => &self.video,
            _ => &self.images[image],
        };
        let body = if kind == Kind::Slow {
            // 256 KiB/s, frame by frame.
            let mut body = response.into_body();
            let mut got = Vec::with_capacity(VIDEO_SIZE);
            let started = Instant::now();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(data) = f.data_ref() {
                            got.extend_from_slice(data);
                        }
                    }
                    Err(e) => return Some(format!("body cut: {e}")),
                }
                let due = started + Duration::from_secs_f64(got.len() as f64 / (256.0 * 1024.0));
                tokio::time::sleep_until(due.into()).await;
            }
            Bytes::from(got)
        } else {
            match response.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Some(format!("body cut: {e}")),
            }
        };
        let expected = match kind {
            Kind::Image | Kind::Slow => StatusCode::OK,
            Kind::Head => StatusCode::OK,
            Kind::VideoRange => StatusCode::PARTIAL_CONTENT,
            Kind::Preflight => StatusCode::NO_CONTENT,
            Kind::Expired => StatusCode::UNAUTHORIZED,
            Kind::Foreign => StatusCode::FORBIDDEN,
            // The storage is there or is being deleted and created again.
            Kind::Churned if status == StatusCode::NOT_FOUND => StatusCode::NOT_FOUND,
            Kind::Churned => StatusCode::OK,
        };
        if status != expected {
            return Some(format!("{status}"));
        }
        if !cors {
            return Some(format!("{status} without CORS"));
        }
        let checked = matches!(kind, Kind::Image | Kind::VideoRange | Kind::Slow)
            || (kind == Kind::Churned && status == StatusCode::OK);
        if checked {
            if body[..] != *want {
                return Some(format!("{status} with a wrong body ({} bytes)", body.len()));
            }
            self.stats.bytes_checked.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        None
    }
}

/// Resident memory (MiB), open descriptors and threads of `pid`.
fn process(pid: u32) -> (f64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (field("VmRSS:") / 1024.0, fds, field("Threads:") as usize)
}

/// The least-squares slope of `points` (x in minutes), per hour.
fn slope_per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var * 60.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn admin(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    let request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    match client.request(request).await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

async fn soak(minutes: f64, rate: Option<f64>, every: Duration, chaos: bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
    let images: Vec<Vec<u8>> = (0..IMAGES).map(|i| pattern(IMAGE_SIZE + i, i as u8)).collect();
    for (i, data) in images.iter().enumerate() {
        std::fs::write(dir.path().join(BUCKET).join(format!("img-{i}.jpg")), data).unwrap();
    }
    let video = pattern(VIDEO_SIZE, 99);
    std::fs::write(dir.path().join(BUCKET).join("video.mp4"), &video).unwrap();

    let (child, backend_port) = backend::spawn(dir.path(), ACCESS_KEY, SECRET_KEY);
    let _backend = Proc(child);
    let (_pg, mut database) = postgres(dir.path());
    let keys = KeySet::new();
    let mut jwks_port = serve_keys(keys.clone()).await;
    let mut backend_port = backend_port;
    // With --chaos, the bucket, the database and the key set are reached through relays
    // that fail on cue.
    let relays = if chaos {
        let to = |port: u16| FaultRelay::start(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let pg_port: u16 = database
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("the database URL's port");
        let (bucket, registry, key_set) = (to(backend_port).await, to(pg_port).await, to(jwks_port).await);
        database = database.replace(&format!(":{pg_port}/"), &format!(":{}/", registry.addr.port()));
        backend_port = bucket.addr.port();
        jwks_port = key_set.addr.port();
        Some([bucket, registry, key_set])
    } else {
        None
    };
    let backend = format!("http://127.0.0.1:{backend_port}");

    let (port, admin_port) = (free_port(), free_port());
    let config = dir.path().join("gateway.toml");
    let text = move |max_age: &str| {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:{admin_port}"
token = "{ADMIN}"
[registry]
url = "{database}"
master_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
allow_private_endpoints = ["127.0.0.0/8"]
[auth]
jwks_url = "http://127.0.0.1:{jwks_port}/jwks.json"
jwks_refresh = "30s"
[cors]
allowed_origins = ["{ORIGIN}"]
max_age = "{max_age}"
"#
        )
    };
    std::fs::write(&config, text("1h")).unwrap();
    let log = dir.path().join("gateway.log");
    let gateway = Proc(
        Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = gateway.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let admin_base = format!("http://127.0.0.1:{admin_port}");
    let admin_client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let storage = move |id: &str| {
        json!({"_id": id, "type": "s3_compatible", "buckets": [BUCKET], "endpoint": backend,
               "credentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}})
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin(
        &admin_client,
        &admin_base,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        storage("main"),
    )
    .await
        != 201
    {
        assert!(
            Instant::now() < deadline,
            "the gateway did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        admin(
            &admin_client,
            &admin_base,
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            storage("churn")
        )
        .await,
        201
    );

    let stats = Arc::new(Stats {
        window: Mutex::new(Window::default()),
        total: AtomicU64::new(0),
        unexpected: Mutex::new(BTreeMap::new()),
        bytes_checked: AtomicU64::new(0),
        faults: Mutex::new(Vec::new()),
        explained: Mutex::new(BTreeMap::new()),
    });
    let mix = Arc::new(Mix {
        base,
        // Idle connections leave the pool before the gateway's idle_timeout (60 s) closes them: a
        // request sent on a connection as the gateway closes it fails (once in the first 30-minute run).
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http(),
        keys: keys.clone(),
        images,
        video,
        stats: stats.clone(),
    });

    // The most the gateway serves of the mix: 10 s, every worker as fast as it can.
    let rate = match rate {
        Some(r) => r,
        None => {
            let stop = Instant::now() + Duration::from_secs(10);
            let counter = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let (mix, counter) = (mix.clone(), counter.clone());
                    tokio::spawn(async move {
                        while Instant::now() < stop {
                            let i = counter.fetch_add(1, Ordering::Relaxed);
                            let _ = mix.one(Kind::of(i), i).await;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.unwrap();
            }
            let max = counter.load(Ordering::Relaxed) as f64 / 10.0;
            println!("the most the gateway served of the mix: {max:.0} requests/s; the soak runs at half");
            max / 2.0
        }
    };
    *stats.window.lock().unwrap() = Window::default();
    stats.total.store(0, Ordering::Relaxed);
    stats.unexpected.lock().unwrap().clear();

    let length = Duration::from_secs_f64(minutes * 60.0);
    let started = Instant::now();
    let end = started + length;
    // Permits at the rate, to workers that take them as they are free.
    let (permits, taken) = async_channel();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut i = 0u64;
        while Instant::now() < end {
            tick.tick().await;
            if permits.send(i).await.is_err() {
                break;
            }
            i += 1;
        }
    });
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (mix, taken) = (mix.clone(), taken.clone());
        workers.push(tokio::spawn(async move {
            while let Some(i) = taken.recv().await {
                let kind = Kind::of(i);
                let t = Instant::now();
                let problem = mix.one(kind, i).await;
                mix.stats.record(kind, t.elapsed(), problem);
            }
        }));
    }
    for s in 0..SLOW_CLIENTS {
        let mix = mix.clone();
        workers.push(tokio::spawn(async move {
            let mut i = s as u64;
            while Instant::now() < end {
                let t = Instant::now();
                let problem = mix.one(Kind::Slow, i).await;
                mix.stats.record(Kind::Slow, t.elapsed(), problem);
                i += 1;
            }
        }));
    }
    // The world changing around it.
    let churn = {
        let (client, admin_base, storage) = (admin_client.clone(), admin_base.clone(), storage.clone());
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut step = 0u64;
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let path = "/admin/v1/orgs/acme/storages/churn";
                let (what, status, want) = match step % 3 {
                    0 => (
                        "rotate",
                        admin(
                            &client,
                            &admin_base,
                            Method::PATCH,
                            path,
                            json!({"credentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}}),
                        )
                        .await,
                        200,
                    ),
                    1 => (
                        "delete",
                        admin(&client, &admin_base, Method::DELETE, path, json!({})).await,
                        200,
                    ),
                    _ => (
                        "create",
                        admin(
                            &client,
                            &admin_base,
                            Method::POST,
                            "/admin/v1/orgs/acme/storages",
                            storage("churn"),
                        )
                        .await,
                        201,
                    ),
                };
                if status != want {
                    let key = format!("admin {what}: {status}");
                    let now = Instant::now();
                    if status == 503 && stats.under_fault(now, now) {
                        // The registry is away: the same change again next time, so the
                        // storage's life keeps its order.
                        *stats.explained.lock().unwrap().entry(key).or_default() += 1;
                        continue;
                    }
                    *stats.unexpected.lock().unwrap().entry(key).or_default() += 1;
                }
                step += 1;
            }
        })
    };
    let rotate = {
        let keys = keys.clone();
        tokio::spawn(async move {
            while Instant::now() + Duration::from_secs(60) < end {
                tokio::time::sleep(Duration::from_secs(60)).await;
                keys.rotate();
            }
        })
    };
    let reload = {
        let config = config.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() + Duration::from_secs(60) < end {
                tokio::time::sleep(Duration::from_secs(60)).await;
                n += 1;
                std::fs::write(&config, text(if n % 2 == 0 { "1h" } else { "30m" })).unwrap();
                let _ = Command::new("kill").args(["-HUP", &pid.to_string()]).status();
            }
        })
    };

    let faults = relays.map(|relays| {
        let stats = stats.clone();
        tokio::spawn(async move { fail_in_turn(&relays, &stats, end).await })
    });

    println!(
        "soak: {minutes} min at {rate:.0} requests/s ({WORKERS} workers, {SLOW_CLIENTS} slow clients at 256 KiB/s){}\n",
        if chaos { ", a fault every minute" } else { "" }
    );
    println!(
        "{:>6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>6} {:>8}",
        "minute", "requests", "unexpected", "p50 ms", "p99 ms", "RSS MiB", "fds", "threads"
    );
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    let mut next = started + every;
    while Instant::now() < end {
        tokio::time::sleep_until(next.min(end).into()).await;
        next += every;
        let window = std::mem::take(&mut *stats.window.lock().unwrap());
        let mut latencies = window.latencies;
        latencies.sort_unstable();
        let (rss, fds, threads) = process(pid);
        let minute = started.elapsed().as_secs_f64() / 60.0;
        samples.push((minute, rss, fds as f64));
        println!(
            "{minute:>6.1} {:>9} {:>10} {:>9.2} {:>9.2} {rss:>9.1} {fds:>6} {threads:>8}",
            window.requests,
            window.unexpected.values().sum::<u64>(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
    for w in workers {
        let _ = w.await;
    }
    let _ = churn.await;
    rotate.abort();
    reload.abort();
    if let Some(faults) = faults {
        faults.abort();
    }

    let total = stats.total.load(Ordering::Relaxed);
    let unexpected = stats.unexpected.lock().unwrap().clone();
    println!(
        "\n{total} requests, {:.1} GiB of bodies checked byte for byte, {} answers not as expected",
        stats.bytes_checked.load(Ordering::Relaxed) as f64 / (1u64 << 30) as f64,
        unexpected.values().sum::<u64>()
    );
    for (what, n) in &unexpected {
        println!("  {n:>6}  {what}");
    }
    if chaos {
        let explained = stats.explained.lock().unwrap().clone();
        println!(
            "{} faults; {} answers they explain (a 502/503/504 or a body visibly cut, during a fault or {AFTER_FAULT:?} after):",
            stats.faults.lock().unwrap().len(),
            explained.values().sum::<u64>()
        );
        for (what, n) in &explained {
            println!("  {n:>6}  {what}");
        }
    }
    let tail: Vec<&(f64, f64, f64)> = samples.iter().filter(|s| s.0 >= minutes / 3.0).collect();
    let rss: Vec<(f64, f64)> = tail.iter().map(|s| (s.0, s.1)).collect();
    let fds: Vec<(f64, f64)> = tail.iter().map(|s| (s.0, s.2)).collect();
    let spread = |v: &[(f64, f64)]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        (lo, hi)
    };
    let (rss_lo, rss_hi) = spread(&rss);
    let (fd_lo, fd_hi) = spread(&fds);
    println!(
        "over the last two thirds: RSS {rss_lo:.1}..{rss_hi:.1} MiB, slope {:+.2} MiB/hour; descriptors {fd_lo}..{fd_hi}, slope {:+.1}/hour",
        slope_per_hour(&rss),
        slope_per_hour(&fds),
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    println!("gateway log: {} ERROR lines", errors.len());
    // What they said, each message once (the text after the level, without its time).
    let mut said = std::collections::BTreeSet::new();
    for line in errors {
        let message = line.split_once(" ERROR ").map_or(line, |(_, m)| m);
        if said.insert(message.to_string()) && said.len() <= 10 {
            println!("  {message}");
        }
    }
    drop(gateway);
}

/// With `--chaos`: every minute, 30 s after the reload, one fault in turn on the bucket's,
/// the database's or the key set's relay ([bucket, registry, key set]), each recorded in
/// `stats` while it lasts.
async fn fail_in_turn(relays: &[FaultRelay; 3], stats: &Stats, end: Instant) {
    let cycle = [
        (0, Fault::ResetAfter(64 * 1024), 5),
        (0, Fault::StallAfter(64 * 1024), 5),
        (0, Fault::Refuse, 5),
        (1, Fault::Down, 10),
        (0, Fault::Partition, 5),
        (2, Fault::Down, 10),
        (0, Fault::Unreachable, 5),
        (0, Fault::Latency(Duration::from_millis(50)), 10),
        (1, Fault::Partition, 10),
    ];
    tokio::time::sleep(Duration::from_secs(30)).await;
    for (n, (relay, fault, seconds)) in cycle.iter().cycle().enumerate() {
        let lasts = Duration::from_secs(*seconds);
        if Instant::now() + lasts + AFTER_FAULT >= end {
            return;
        }
        let which = ["bucket", "registry", "key set"][*relay];
        println!("        fault {}: {which} {fault:?} for {seconds} s", n + 1);
        stats.faults.lock().unwrap().push((Instant::now(), None));
        relays[*relay].set(*fault);
        tokio::time::sleep(lasts).await;
        relays[*relay].set(Fault::Pass);
        if let Some(last) = stats.faults.lock().unwrap().last_mut() {
            last.1 = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(60) - lasts).await;
    }
}

/// A bounded channel many workers take from (tokio's mpsc has one receiver).
fn async_channel() -> (tokio::sync::mpsc::Sender<u64>, Arc<SharedReceiver>) {
    let (tx, rx) = tokio::sync::mpsc::channel(WORKERS * 4);
    (tx, Arc::new(SharedReceiver(tokio::sync::Mutex::new(rx))))
}

struct SharedReceiver(tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>);

impl SharedReceiver {
    async fn recv(&self) -> Option<u64> {
        self.0.lock().await.recv().await
    }
}

//! The shared registry at scale: `cargo bench --bench registry`.
//!
//! Starts Debian's PostgreSQL on 127.0.0.1 (as in the tests), fills a database with 100,000
//! storages in 10,000 orgs (sealed records, a fifth of them delegated), then starts release
//! `assetgate serve` replicas on it and measures: the time from start to `/readyz` 200 (the
//! whole registry loaded), the resident memory that adds over a replica of an empty registry
//! (per storage), and how long a create, a change and a delete made through one replica take
//! to be in effect on the other. Options after `--`: `--storages N` (default 100000),
//! `--orgs N` (10000), `--rounds N` (20). Writes target/bench-report/registry.md.

#[allow(dead_code)]
#[path = "../tests/gateway/support/process.rs"]
mod process;

#[allow(dead_code)]
#[path = "../tests/gateway/support/postgres.rs"]
mod postgres;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assetgate::config::DatabaseUrl;
use assetgate::credentials::StaticKeys;
use assetgate::registry::{record, store};
use assetgate::sealed::MasterKey;
use assetgate::secret::Secret;
use assetgate::storage::providers::s3::{Flavor, S3Credentials, S3};
use assetgate::storage::{Provider, Storage};
use assetgate::upstream::Endpoint;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};

const ADMIN: &str = "bench-admin-token-0123456789";
const MASTER: [u8; 32] = [7; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |flag: &str, default: usize| {
        args.windows(2)
            .find(|w| w[0] == flag)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(default)
    };
    let (storages, orgs, rounds) = (
        number("--storages", 100_000),
        number("--orgs", 10_000),
        number("--rounds", 20),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(storages, orgs.max(1), rounds));
}

/// A replica killed when dropped.
struct Replica {
    child: Child,
    admin: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    process::free_ports(1)[0]
}

impl Replica {
    /// Starts a replica of `url`; returns it with the time until it was ready.
    async fn start(url: &str) -> (Replica, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let (data, admin) = (free_port(), free_port());
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{data}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{ADMIN}\"\n\
             [auth]\nkeys = [{{ kid = \"k1\", alg = \"HS256\", secret = \"bench-token-key-0123456789abcdef0123\" }}]\n\
             [registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
            base64::engine::general_purpose::STANDARD.encode(MASTER)
        );
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["serve", "--config", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
            .spawn()
            .unwrap();
        let replica = Replica {
            child,
            admin,
            _dir: dir,
        };
        loop {
            if replica.status("/readyz").await == Some(200) {
                return (replica, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the replica was not ready in 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    async fn call(&self, method: http::Method, path: &str, body: &str) -> Option<u16> {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{}{path}", self.admin))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .unwrap();
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Some(status)
    }

    async fn status(&self, path: &str) -> Option<u16> {
        self.call(http::Method::GET, path, "").await
    }
}

/// The storage `j` of org `i`, as a platform would register it.
fn storage(i: usize, j: usize) -> Storage {
    let credentials = if j % 5 == 4 {
        S3Credentials::AssumeRole {
            role_arn: format!("arn:aws:iam::{:012}:role/labeling-read-{j}", 100_000_000_000 + i),
            external_id: external_id(i),
        }
    } else {
        S3Credentials::AccessKey(StaticKeys {
            access_key_id: format!("AKIA{i:08}{j:04}XMPL"),
            secret_access_key: Secret::new(format!("secret-{i}-{j}-wJalrXUtnFEMI/K7MDENG/bPxRfiCY")),
            session_token: None,
        })
    };
    Storage {
        cache: true,
        id: format!("{:024x}", i * 1000 + j),
        name: format!("Images of project {j} of org {i}"),
        buckets: vec![format!("org-{i}-images"), format!("org-{i}-thumbnails")],
        endpoint: Some(Endpoint::parse(&format!("https://minio-{i}.storage.example.com")).unwrap()),
        provider: Provider::S3(S3 {
            flavor: Flavor::Compatible,
            region: "eu-central-1".into(),
            path_style: true,
            credentials,
        }),
    }
}

fn org(i: usize) -> String {
    format!("org-{i:05}")
}

fn external_id(i: usize) -> String {
    format!("external-id-of-org-{i:05}-0123456789abcdefghijkl")
}

/// Fills `url` with `count` storages in `orgs` orgs, in batches.
async fn fill(url: &str, count: usize, orgs: usize) -> Duration {
    let parsed = DatabaseUrl::parse(url).unwrap();
    let pg = store::PostgresStore::new(&parsed, &[]).unwrap();
    pg.load().await.unwrap(); // creates the schema
    let (client, connection) = parsed.connect.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let key = MasterKey::from_base64(&Secret::new(base64::engine::general_purpose::STANDARD.encode(MASTER))).unwrap();
    let started = Instant::now();
    let per_org = count.div_ceil(orgs);
    let mut batch: (Vec<String>, Vec<String>, Vec<String>, Vec<i64>) = Default::default();
    let now = "2026-12-01T00:00:00Z";
    for n in 0..count {
        let (i, j) = (n / per_org, n % per_org);
        let record = record::seal(&org(i), &storage(i, j), &key, now, now, store::new_version());
        batch.0.push(record.org.clone());
        batch.1.push(record.id.clone());
        batch.2.push(serde_json::to_string(&record).unwrap());
        batch.3.push(record.version as i64);
        if batch.0.len() == 2000 || n + 1 == count {
            client
                .execute(
                    "INSERT INTO assetgate_storages (org, id, record, version)
                     SELECT o, i, r::jsonb, v FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(o, i, r, v)",
                    &[&batch.0, &batch.1, &batch.2, &batch.3],
                )
                .await
                .unwrap();
            batch = Default::default();
        }
    }
    let ids: Vec<String> = (0..orgs).map(org).collect();
    let externals: Vec<String> = (0..orgs).map(external_id).collect();
    client
        .execute(
            "INSERT INTO assetgate_external_ids (org, external_id) SELECT * FROM unnest($1::text[], $2::text[])",
            &[&ids, &externals],
        )
        .await
        .unwrap();
    started.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and maximum.
fn spread(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    (ms(samples[samples.len() / 2]), ms(*samples.last().unwrap()))
}

/// Polls `path` on `replica` every 2 ms until it answers `status`; how long that took.
async fn until(replica: &Replica, path: &str, status: u16) -> Duration {
    let started = Instant::now();
    while replica.status(path).await != Some(status) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

async fn bench(count: usize, orgs: usize, rounds: usize) {
    let pg = postgres::Postgres::start("bench");
    let empty = pg.database("empty");
    let url = pg.database("registry");
    println!("filling the registry with {count} storages in {orgs} orgs...");
    let filled = fill(&url, count, orgs).await;
    println!("  inserted in {:.1} s", filled.as_secs_f64());

    let (baseline, _) = Replica::start(&empty).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base_rss = baseline.rss();
    drop(baseline);
    let (a, load_a) = Replica::start(&url).await;
    let (b, load_b) = Replica::start(&url).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_a, rss_b) = (a.rss(), b.rss());
    let per_storage = (rss_a.min(rss_b).saturating_sub(base_rss)) as f64 / count as f64;

    let probe_org = org(orgs / 2);
    let mut created = Vec::new();
    let mut changed = Vec::new();
    let mut deleted = Vec::new();
    for n in 0..rounds {
        let id = format!("probe-{n}");
        let path = format!("/admin/v1/orgs/{probe_org}/storages/{id}");
        let body = serde_json::json!({"_id": id, "type": "s3_compatible", "bucket": "probe-bucket",
            "endpoint": "http://127.0.0.1:9", "accessKeyId": "AK", "secretAccessKey": "probe-secret"});
        let status = a
            .call(
                http::Method::POST,
                &format!("/admin/v1/orgs/{probe_org}/storages"),
                &body.to_string(),
            )
            .await;
        assert_eq!(status, Some(201));
        created.push(until(&b, &path, 200).await);
        let patch = serde_json::json!({"region": "eu-west-1"}).to_string();
        assert_eq!(b.call(http::Method::PATCH, &path, &patch).await, Some(200));
        let started = Instant::now();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        loop {
            let request = http::Request::get(format!("http://127.0.0.1:{}{path}", a.admin))
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Full::new(bytes::Bytes::new()))
                .unwrap();
            let body = client
                .request(request)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes();
            if String::from_utf8_lossy(&body).contains("eu-west-1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        changed.push(started.elapsed());
        assert_eq!(a.call(http::Method::DELETE, &path, "").await, Some(200));
        deleted.push(until(&b, &path, 404).await);
    }
    let (c50, cmax) = spread(created);
    let (u50, umax) = spread(changed);
    let (d50, dmax) = spread(deleted);
    let report = format!(
        "| measure | value |\n|---|---|\n\
         | storages / orgs | {count} / {orgs} |\n\
         | start to ready (whole registry loaded), replica A / B | {:.2} s / {:.2} s |\n\
         | resident memory, empty registry / loaded (A, B) | {:.1} MiB / {:.1} MiB, {:.1} MiB |\n\
         | memory per storage | {:.0} bytes |\n\
         | create on A, in effect on B: median / max of {rounds} | {c50:.1} ms / {cmax:.1} ms |\n\
         | change on B, in effect on A: median / max | {u50:.1} ms / {umax:.1} ms |\n\
         | delete on A, refused on B: median / max | {d50:.1} ms / {dmax:.1} ms |\n",
        load_a.as_secs_f64(),
        load_b.as_secs_f64(),
        base_rss as f64 / (1 << 20) as f64,
        rss_a as f64 / (1 << 20) as f64,
        rss_b as f64 / (1 << 20) as f64,
        per_storage,
    );
    println!("\n{report}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-report");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("registry.md"), &report).unwrap();
    drop((a, b, pg));
}

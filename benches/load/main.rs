//! The load benchmark: the cost of the gateway, side by side with going direct, in one run.
//!
//! `cargo bench --bench load` starts, on this machine: a fast S3 backend (s3s, this binary
//! in another role) in its own process, the release gateway in its own process configured
//! as in production (`RUST_LOG=info`, its log written to a file, CORS on), plain nginx as a
//! reference proxy when installed, and a load generator (wrk when installed, else a bounded
//! built-in loop). It measures objects of 4 KiB, 1 MiB and 64 MiB at 1, 16 and 64
//! connections, direct (presigned URLs), through nginx (the same presigned URLs) and through
//! the gateway (a bearer token and an `Origin` on every request), interleaved in rounds;
//! then memory while streaming a 1 GiB object made up by the backend; then 1,000 concurrent
//! cold requests to a delegated storage; then the edge cache against nginx's `proxy_cache`
//! (`cache`). The gateway of the size cells runs with the edge cache off: they measure the
//! path to the bucket, which every miss takes. Options after `--`: `--seconds N` per run
//! (default 5), `--rounds N` (default 2), `--only SIZE` (e.g. `4KiB`; or `tls`, `memory`,
//! `sts`, `cache`: that part alone), `--quick` (2 s, one round, fewer cells),
//! `--nginx-workers N` (nginx's `worker_processes`; `auto`, one per CPU, by default). Every
//! cell starts with an unmeasured warm-up of each target; the report says how much CPU the
//! hypervisor took (steal) during the measured runs. See benches/README.md.

mod backend;
mod cache;
mod drive;
mod nginx;
mod relay;
mod report;
mod tls;

#[path = "../shared/process.rs"]
mod process;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use assetgate::credentials::StaticKeys;
use assetgate::secret::Secret;
use assetgate::token::TokenKey;
use process::{free_port, Proc};
use report::{Cell, Memory, Report, Round, Sample, Sts, TlsCell, TlsRound};

const BUCKET: &str = "bench";
const GIB: u64 = 1 << 30;
const ORIGIN: &str = "https://labeling.example.com";

fn main() {
    if backend::serve_if_asked() {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let option = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let options = Options {
        quick,
        seconds: option("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2 } else { 5 }),
        rounds: option("--rounds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 1 } else { 2 }),
        only: option("--only"),
        nginx_workers: option("--nginx-workers").unwrap_or_else(|| "auto".into()),
    };
    if let Some(threads) = option("--gateway-threads") {
        let _ = GATEWAY_THREADS.set(threads.parse().expect("--gateway-threads takes a number"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(options));
}

struct Options {
    quick: bool,
    seconds: u64,
    rounds: usize,
    /// nginx's `worker_processes`: `auto` (one per CPU, as the gateway's threads) or a number.
    nginx_workers: String,
    /// One object size only (`4KiB`, `1MiB`, `64MiB`).
    only: Option<String>,
}

async fn bench(options: Options) {
    let Options {
        quick,
        seconds,
        rounds,
        only,
        nginx_workers,
    } = options;
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(&'static str, usize)> = vec![("4 KiB", 4 << 10), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20)];
    let measured: Vec<(&'static str, usize)> = sizes
        .iter()
        .copied()
        .filter(|(label, _)| only.as_ref().is_none_or(|o| label.replace(' ', "") == *o))
        .collect();
    std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
    for (_, size) in &sizes {
        let data: Vec<u8> = (0..*size).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(dir.path().join(BUCKET).join(format!("obj-{size}")), data).unwrap();
    }
    let extra = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if extra("cache") {
        // Objects each cache case reads cold, once.
        let data: Vec<u8> = (0..64usize << 20).map(|i| (i * 37 % 253) as u8).collect();
        for key in [
            "cold-lone",
            "cold-shared",
            "cold-far-lone",
            "cold-far-shared",
            "cold-drop-a",
            "cold-drop-b",
            "cold-nginx-lone",
            "cold-nginx-shared",
        ] {
            std::fs::write(dir.path().join(BUCKET).join(key), &data).unwrap();
        }
    }
    let keys = StaticKeys {
        access_key_id: "BENCHACCESSKEY".into(),
        secret_access_key: Secret::new("bench-secret-access-key-0123456789"),
        session_token: None,
    };

    let (child, backend_port) = backend::spawn(dir.path(), &keys.access_key_id, keys.secret_access_key.expose());
    let _backend = Proc(child);

    let sts_calls = Arc::new(AtomicUsize::new(0));
    let sts_port = fake_sts(keys.clone(), sts_calls.clone()).await;
    let (gw_port, admin_port) = (free_port(), free_port());
    let token_key = TokenKey {
        kid: "bench".into(),
        secret: Secret::new("bench-token-signing-key-0123456789abcdef"),
    };
    // The gateway's configuration, on a listener of its own (plain or TLS) and with a data
    // directory of its own: the TLS run starts a second gateway beside the first.
    let gateway_config = |listen: u16, admin: u16, tls: Option<&tls::Certificate>, data: &str| {
        let tls = tls.map_or(String::new(), |c| {
            format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}",
                c.cert.display(),
                c.key.display()
            )
        });
        format!(
            r#"
[server]
listen = "127.0.0.1:{listen}"
{tls}
{}
[admin]
listen = "127.0.0.1:{admin}"
[registry]
data_dir = "{}"
[auth]
keys = [{{ kid = "bench", alg = "HS256", secret = "{}" }}]
[cors]
allowed_origins = ["{ORIGIN}"]
[cache]
memory = "0"
[sts]
endpoint = "http://127.0.0.1:{sts_port}"
credentials = {{ access_key_id = "GATEWAY", secret_access_key = "gateway-secret" }}
[[orgs]]
id = "bench"
[[orgs.storages]]
id = "main"
provider = "s3_compatible"
buckets = ["{BUCKET}"]
endpoint = "http://127.0.0.1:{backend_port}"
credentials = {{ type = "access_key", access_key_id = "{}", secret_access_key = "{}" }}
[[orgs.storages]]
id = "delegated"
provider = "s3_compatible"
buckets = ["{BUCKET}"]
endpoint = "http://127.0.0.1:{backend_port}"
credentials = {{ type = "assume_role", role_arn = "arn:aws:iam::111122223333:role/bench", external_id = "bench-external-id" }}
"#,
            server_settings(),
            dir.path().join(data).display(),
            token_key.secret.expose(),
            keys.access_key_id,
            keys.secret_access_key.expose()
        )
    };
    let config = gateway_config(gw_port, admin_port, None, "data");
    let config_path = dir.path().join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.path().join("gateway.log");
    let mut gateway = Proc(spawn_gateway(&config_path, &log_path));
    let mut gw_pid = gateway.0.id();
    wait_for(admin_port).await;
    let token = assetgate::token::mint(&token_key, "bench", None, None, Duration::from_secs(12 * 3600));
    let gateway_url = |storage: &str, key: &str| {
        format!("http://127.0.0.1:{gw_port}/v1/orgs/bench/storages/{storage}/objects/{BUCKET}/{key}?token={token}")
    };
    // As a labeling editor sends them: the token in the header, the editor's origin.
    let gateway_headers = vec![
        ("Authorization".to_string(), format!("Bearer {token}")),
        ("Origin".to_string(), ORIGIN.to_string()),
    ];
    let gateway_plain_url =
        |key: &str| format!("http://127.0.0.1:{gw_port}/v1/orgs/bench/storages/main/objects/{BUCKET}/{key}");
    let direct_url = |key: &str| presign(&format!("http://127.0.0.1:{backend_port}/{BUCKET}/{key}"), &keys);
    let certificate = tls::certificate(dir.path());
    let (nginx_port, nginx_tls_port, nginx_cache_port) = (free_port(), free_port(), free_port());
    let nginx = nginx::start(
        dir.path(),
        nginx_port,
        Some((&certificate, nginx_tls_port)),
        nginx_cache_port,
        backend_port,
        &nginx_workers,
    );
    if let Some(n) = &nginx {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", nginx_port)).is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("nginx pids {:?}", n.processes());
    } else {
        eprintln!("nginx is not installed: no reference proxy (apt-get install nginx-light)");
    }
    // nginx passes the presigned path and query through; the backend checks the signature.
    let nginx_url = |direct: &str| direct.replace(&format!(":{backend_port}/"), &format!(":{nginx_port}/"));

    let connections: &[usize] = if quick { &[1, 16] } else { &[1, 16, 64] };
    let duration = Duration::from_secs(seconds);
    let mut cells = Vec::new();
    for (label, size) in &measured {
        for &conns in connections {
            let key = format!("obj-{size}");
            let (direct_url, bytes) = (direct_url(&key), *size as u64);
            let mut cell = Cell {
                size: label,
                connections: conns,
                rounds: Vec::new(),
            };
            // A warm-up of each, not measured: connections, pools, caches and allocators
            // as in steady state before the first measured round.
            let warm_up = Duration::from_secs(1);
            let _ = drive::load(&direct_url, &[], conns, warm_up, bytes).await;
            if nginx.is_some() {
                let _ = drive::load(&nginx_url(&direct_url), &[], conns, warm_up, bytes).await;
            }
            let _ = drive::load(&gateway_plain_url(&key), &gateway_headers, conns, warm_up, bytes).await;
            for _ in 0..rounds {
                let direct = drive::load(&direct_url, &[], conns, duration, bytes).await;
                let nginx = match &nginx {
                    Some(n) => {
                        let pids = n.processes();
                        let before = drive::used(&pids);
                        let run = drive::load(&nginx_url(&direct_url), &[], conns, duration, bytes).await;
                        Some(Sample::new(run, drive::used(&pids) - before))
                    }
                    None => None,
                };
                drive::reset_peak(gw_pid);
                let before = drive::used(&[gw_pid]);
                let run = drive::load(&gateway_plain_url(&key), &gateway_headers, conns, duration, bytes).await;
                let gateway = Sample::new(run, drive::used(&[gw_pid]) - before);
                eprintln!(
                    "{label} x{conns}: direct {:.0} req/s, nginx {}, gateway {:.0} req/s {:.2} CPU s/10k {:.2} switches/req",
                    direct.rps(),
                    nginx.as_ref().map_or("-".into(), |n| format!(
                        "{:.0} req/s {:.2} CPU s/10k {:.2} switches/req",
                        n.run.rps(),
                        n.cpu_per_10k_requests(),
                        n.switches_per_request()
                    )),
                    gateway.run.rps(),
                    gateway.cpu_per_10k_requests(),
                    gateway.switches_per_request(),
                );
                cell.rounds.push(Round {
                    direct,
                    nginx,
                    gateway,
                    gateway_peak_rss_mib: drive::peak_rss_mib(gw_pid),
                });
            }
            cells.push(cell);
        }
    }

    // TLS: a second gateway, as the first but on a TLS listener, beside nginx's TLS port.
    let mut tls_cells = Vec::new();
    let has_h2load = Command::new("h2load").arg("--version").output().is_ok();
    if extra("tls") && !has_h2load {
        eprintln!("h2load is not installed: no TLS runs (apt-get install nghttp2-client)");
    }
    if extra("tls") && has_h2load {
        let (tls_port, tls_admin_port) = (free_port(), free_port());
        let tls_config = dir.path().join("gateway-tls.toml");
        std::fs::write(
            &tls_config,
            gateway_config(tls_port, tls_admin_port, Some(&certificate), "data-tls"),
        )
        .unwrap();
        let tls_gateway = Proc(spawn_gateway(&tls_config, &dir.path().join("gateway-tls.log")));
        let tls_pid = tls_gateway.0.id();
        wait_for(tls_admin_port).await;
        for case in tls::cases(&certificate) {
            let key = format!("obj-{}", case.size);
            let nginx_tls_url = direct_url(&key).replace(
                &format!("http://127.0.0.1:{backend_port}/"),
                &format!("https://127.0.0.1:{nginx_tls_port}/"),
            );
            let gateway_tls_url =
                format!("https://127.0.0.1:{tls_port}/v1/orgs/bench/storages/main/objects/{BUCKET}/{key}");
            let mut cell = TlsCell {
                case: case.name,
                per: case.per,
                rounds: Vec::new(),
            };
            // A warm-up of each, not measured (TLS sessions, pools, allocators).
            if nginx.is_some() {
                let _ = case.run(&nginx_tls_url, &[], Duration::from_secs(1));
            }
            let _ = case.run(&gateway_tls_url, &gateway_headers, Duration::from_secs(1));
            for _ in 0..rounds {
                let nginx = nginx.as_ref().and_then(|n| {
                    let pids = n.processes();
                    let before = drive::used(&pids);
                    let run = case.run(&nginx_tls_url, &[], duration)?;
                    Some(Sample::new(run, drive::used(&pids) - before))
                });
                let before = drive::used(&[tls_pid]);
                let Some(run) = case.run(&gateway_tls_url, &gateway_headers, duration) else {
                    break;
                };
                let gateway = Sample::new(run, drive::used(&[tls_pid]) - before);
                let resumed = |run: &drive::Run| run.resumed.map_or(String::new(), |r| format!(", {r} resumed"));
                eprintln!(
                    "TLS {}: nginx {}, gateway {:.0} req/s {:.2} CPU s{}",
                    case.name,
                    nginx.as_ref().map_or("-".into(), |n| format!(
                        "{:.0} req/s {:.2} CPU s{}",
                        n.run.rps(),
                        n.cpu_seconds,
                        resumed(&n.run)
                    )),
                    gateway.run.rps(),
                    gateway.cpu_seconds,
                    resumed(&gateway.run),
                );
                cell.rounds.push(TlsRound { nginx, gateway });
            }
            tls_cells.push(cell);
        }
    }
    let cache = if extra("cache") {
        let setup = cache::Setup {
            dir: dir.path(),
            backend_port,
            token_secret: token_key.secret.expose(),
            token: &token,
            keys: (&keys.access_key_id, keys.secret_access_key.expose()),
            nginx: nginx.as_ref().map(|n| {
                let url = move |key: &str| {
                    direct_url(key).replace(&format!(":{backend_port}/"), &format!(":{nginx_cache_port}/"))
                };
                (n.processes(), Box::new(url) as Box<dyn Fn(&str) -> String>)
            }),
            seconds,
            rounds: options.rounds,
        };
        cache::run(&setup).await
    } else {
        Vec::new()
    };
    // Its worker processes, as configured (its cache manager and loader are processes too).
    let nginx_worker_count = nginx.as_ref().map(|_| {
        nginx_workers
            .parse()
            .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    });
    drop(nginx);

    // The TLS, memory and STS runs belong to a whole run, or to `--only tls|memory|sts`.
    let memory = if extra("memory") {
        // A fresh gateway, so that its idle memory is where the runs above did not leave it.
        drop(gateway);
        gateway = Proc(spawn_gateway(&config_path, &log_path));
        gw_pid = gateway.0.id();
        wait_for(admin_port).await;
        Some(
            memory(
                &gateway_url("main", &format!("generated/{GIB}")),
                gw_pid,
                if quick { 20 } else { 50 },
            )
            .await,
        )
    } else {
        None
    };
    let sts = if extra("sts") {
        Some(cold_sts(&gateway_url("delegated", &format!("obj-{}", 4 << 10)), 1000, &sts_calls).await)
    } else {
        None
    };
    let report = Report {
        machine: machine(),
        nginx_workers: nginx_worker_count,
        load_generator: if Command::new("wrk").arg("--version").output().is_ok() {
            "wrk"
        } else {
            "built-in hyper client"
        },
        seconds_per_run: seconds,
        rounds,
        gateway_setup: "release build, RUST_LOG=info, log written to a file, CORS on, token in the Authorization header, Origin on every request".into(),
        cells,
        tls: tls_cells,
        memory,
        sts,
        cache,
    };
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("bench-report");
    report::write(&out, &report);
    println!("{}", report::markdown(&report));
    println!("written: {}/load.{{md,json,svg}}", out.display());
}

/// Waits until something listens on `port` (a gateway's admin listener once it started).
async fn wait_for(port: u16) {
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `--gateway-threads N`: the gateways' `[server].threads` (default: theirs, one per CPU).
static GATEWAY_THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// The `[server]` lines every gateway of the benchmark gets besides its listener.
fn server_settings() -> String {
    GATEWAY_THREADS
        .get()
        .map_or(String::new(), |n| format!("threads = {n}\n"))
}

/// The release gateway as in production: `RUST_LOG=info`, its log (the access log
/// included) written to `log`.
fn spawn_gateway(config: &std::path::Path, log: &std::path::Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// A presigned GET URL (SigV4 in the query), valid for an hour.
fn presign(url: &str, keys: &StaticKeys) -> String {
    let identity = aws_credential_types::Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose().to_string(),
        None,
        None,
        "bench",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(3600));
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::UnsignedPayload).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::get(url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request.uri().to_string()
}

/// One GET, the body read to the end; (bytes, seconds).
async fn fetch_all(url: &str) -> (u64, f64) {
    let started = Instant::now();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    (bytes, started.elapsed().as_secs_f64())
}

/// Peak RSS while streaming 1 GiB to one fast client, then to `slow` clients that each take
/// 64 KiB every 50 ms for 8 seconds.
async fn memory(url: &str, pid: u32, slow: usize) -> Memory {
    let idle_rss_mib = drive::rss_mib(pid);
    drive::reset_peak(pid);
    let (bytes, secs) = fetch_all(url).await;
    assert_eq!(bytes, GIB, "the 1 GiB download was cut");
    let one_client_peak_rss_mib = drive::peak_rss_mib(pid);
    drive::reset_peak(pid);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..slow {
        let url = url.to_string();
        clients.spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let mut body = client.get(url.parse().unwrap()).await.unwrap().into_body();
            let deadline = Instant::now() + Duration::from_secs(8);
            let mut bytes = 0u64;
            while Instant::now() < deadline {
                match body.frame().await {
                    Some(Ok(frame)) => bytes += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            bytes
        });
    }
    let mut moved = 0;
    while let Some(Ok(b)) = clients.join_next().await {
        moved += b;
    }
    Memory {
        idle_rss_mib,
        one_client_peak_rss_mib,
        one_client_mb_per_s: bytes as f64 / secs / 1e6,
        slow_clients: slow,
        slow_clients_peak_rss_mib: drive::peak_rss_mib(pid),
        slow_clients_bytes: moved,
    }
}

/// `n` concurrent requests to a delegated storage nobody has used yet.
async fn cold_sts(url: &str, n: usize, calls: &AtomicUsize) -> Sts {
    let started = Instant::now();
    let first = Arc::new(std::sync::OnceLock::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, first) = (url.to_string(), first.clone());
        tasks.spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let ok = match client.get(url.parse().unwrap()).await {
                Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
                Err(_) => false,
            };
            let _ = first.set(started.elapsed());
            ok
        });
    }
    let mut succeeded = 0;
    while let Some(Ok(ok)) = tasks.join_next().await {
        succeeded += usize::from(ok);
    }
    Sts {
        concurrent_requests: n,
        succeeded,
        assume_role_calls: calls.load(Ordering::SeqCst),
        first_response_ms: first.get().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        all_responses_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// The project's STS stand-in: counts AssumeRole calls, answers with the backend's keys
/// (s3s checks signatures, not session tokens).
async fn fake_sts(keys: StaticKeys, calls: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (keys, calls) = (keys.clone(), calls.clone());
            let service = hyper::service::service_fn(move |_req| {
                calls.fetch_add(1, Ordering::SeqCst);
                let expiration = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
                let body = format!(
                    "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>bench-token</SessionToken><Expiration>{expiration}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>",
                    keys.access_key_id,
                    keys.secret_access_key.expose()
                );
                async move { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
            });
            tokio::spawn(
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned(),
            );
        }
    });
    port
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    format!("{model}, {cores} cores, {total} RAM")
}

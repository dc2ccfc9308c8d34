//! The edge cache, measured in the same run as the rest: two gateways of its own (one with
//! duration freshness, one revalidating every hit) in front of the same backend, some of
//! their storages behind relays of the benchmark's own that count the backend's bytes or
//! hold them 20 ms each way, and nginx with `proxy_cache` (`slice 1m`, `proxy_cache_lock
//! on`) as the reference cache. Each case prints one line and one row of the report.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioExecutor;

use crate::report::{CacheRow, Sample, Spread};
use crate::{drive, relay, spawn_gateway, wait_for, Proc, BUCKET, ORIGIN};

const MIB: u64 = 1 << 20;

/// The presigned URL of a key through nginx's cache.
pub type UrlOf<'a> = Box<dyn Fn(&str) -> String + 'a>;

/// What the cache runs need from the rest of the benchmark.
pub struct Setup<'a> {
    pub dir: &'a Path,
    pub backend_port: u16,
    pub token_secret: &'a str,
    pub token: &'a str,
    pub keys: (&'a str, &'a str),
    /// nginx's `proxy_cache` port and processes, and the presigned URL of a key through it.
    pub nginx: Option<(Vec<u32>, UrlOf<'a>)>,
    pub seconds: u64,
    /// Interleaved rounds of the hot cases.
    pub rounds: usize,
}

struct Gateway {
    process: Proc,
    port: u16,
}

impl Gateway {
    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    fn url(&self, storage: &str, key: &str, token: &str) -> String {
        format!(
            "http://127.0.0.1:{}/v1/orgs/bench/storages/{storage}/objects/{BUCKET}/{key}?token={token}",
            self.port
        )
    }
}

/// A gateway with `[cache]` as given (and a master key, which a disk tier needs) and five
/// storages: `near` (the backend), `counted` and `counted_uncached` (through the counting
/// relay), `far` and `far_uncached` (through the 40 ms relay).
async fn gateway(s: &Setup<'_>, name: &str, cache: &str, counted: u16, far: u16) -> Gateway {
    let (port, admin) = (crate::free_port(), crate::free_port());
    let storage = |id: &str, port: u16, extra: &str| {
        format!(
            "[[orgs.storages]]\nid = \"{id}\"\nprovider = \"s3_compatible\"\nbuckets = [\"{BUCKET}\"]\nendpoint = \"http://127.0.0.1:{port}\"\n\
             credentials = {{ type = \"access_key\", access_key_id = \"{}\", secret_access_key = \"{}\" }}\n{extra}\n",
            s.keys.0, s.keys.1
        )
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n{}[admin]\nlisten = \"127.0.0.1:{admin}\"\n[registry]\ndata_dir = \"{}\"\n\
         master_key = \"YmVuY2gtbWFzdGVyLWtleS1mb3ItdGhlLWRpc2stdGk=\"\n\
         [auth]\nkeys = [{{ kid = \"bench\", alg = \"HS256\", secret = \"{}\" }}]\n[cors]\nallowed_origins = [\"{ORIGIN}\"]\n\
         [cache]\n{cache}\n[[orgs]]\nid = \"bench\"\n{}{}{}{}{}",
        crate::server_settings(),
        s.dir.join(format!("data-{name}")).display(),
        s.token_secret,
        storage("near", s.backend_port, ""),
        storage("counted", counted, ""),
        storage("counted_uncached", counted, "cache = false"),
        storage("far", far, ""),
        storage("far_uncached", far, "cache = false"),
    );
    let path = s.dir.join(format!("gateway-{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let process = Proc(spawn_gateway(&path, &s.dir.join(format!("gateway-{name}.log"))));
    wait_for(admin).await;
    Gateway { process, port }
}

fn client() -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// One GET read to the end (or `take` bytes, then dropped): bytes, time to the first body
/// byte and to the end.
async fn get(url: &str, range: Option<&str>, take: Option<u64>) -> (u64, Duration, Duration) {
    let started = Instant::now();
    let mut request = http::Request::get(url);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = client().request(request.body(Empty::new()).unwrap()).await.unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
    let mut body = response.into_body();
    let (mut bytes, mut first) = (0u64, None);
    while let Some(Ok(frame)) = body.frame().await {
        first.get_or_insert_with(|| started.elapsed());
        bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
        if take.is_some_and(|t| bytes >= t) {
            break;
        }
    }
    (bytes, first.unwrap_or_default(), started.elapsed())
}

/// The slowest first byte of 100 concurrent GETs of `shared` (64 MiB, read to the end).
async fn slowest_of_100(shared: &str) -> Duration {
    let url = Arc::new(shared.to_string());
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let url = url.clone();
        readers.spawn(async move { get(&url, None, None).await });
    }
    let mut slowest = Duration::ZERO;
    while let Some(Ok((bytes, first, _))) = readers.join_next().await {
        assert_eq!(bytes, 64 * MIB);
        slowest = slowest.max(first);
    }
    slowest
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One round of a hot case: the gateway's run, then nginx's, each with what it used.
struct HotRound {
    gw: Sample,
    ng: Sample,
}

impl HotRound {
    /// Medians over the rounds, ratios with their min–max.
    fn summary(rounds: &[HotRound]) -> String {
        let spread = |f: &dyn Fn(&HotRound) -> f64| Spread::of(rounds.iter().map(f));
        let median = |f: &dyn Fn(&HotRound) -> f64| spread(f).map_or(f64::NAN, |s| s.median);
        let ratio = |f: &dyn Fn(&HotRound) -> f64| Spread::text(spread(f), rounds.len(), 2);
        let errors: u64 = rounds.iter().map(|r| r.gw.run.errors).sum();
        let nginx_errors: u64 = rounds.iter().map(|r| r.ng.run.errors).sum();
        format!(
            "gateway {:.0} req/s ({:.0} MB/s), nginx proxy_cache {:.0} req/s ({:.0} MB/s): {}x; CPU per request gateway/nginx {}x; context switches per request {:.2}/{:.2}; errors {errors}/{nginx_errors}{}",
            median(&|r| r.gw.run.rps()),
            median(&|r| r.gw.run.mbps()),
            median(&|r| r.ng.run.rps()),
            median(&|r| r.ng.run.mbps()),
            ratio(&|r| r.gw.run.rps() / r.ng.run.rps()),
            ratio(&|r| r.gw.cpu_per_10k_requests() / r.ng.cpu_per_10k_requests()),
            median(&|r| r.gw.switches_per_request()),
            median(&|r| r.ng.switches_per_request()),
            if rounds.len() > 1 {
                format!("; medians of {} interleaved rounds", rounds.len())
            } else {
                String::new()
            }
        )
    }
}

/// Every cache case; objects `obj-{size}` (4 KiB, 1 MiB, 64 MiB) and the 64 MiB `cold-*`
/// objects exist in the backend's bucket.
pub async fn run(s: &Setup<'_>) -> Vec<CacheRow> {
    let counting = relay::start(s.backend_port, Duration::ZERO).await;
    let far = relay::start(s.backend_port, Duration::from_millis(20)).await;
    let duration_gw = gateway(
        s,
        "cache-60s",
        "memory = \"256MiB\"\nfreshness = \"60s\"",
        counting.port,
        far.port,
    )
    .await;
    // This one has a disk tier smaller than what goes through it: it must stay within size.
    let disk = s.dir.join("disk-tier");
    let revalidating = gateway(
        s,
        "cache-revalidate",
        &format!(
            "memory = \"256MiB\"\ndisk = {{ path = \"{}\", size = \"{DISK_TIER_MIB}MiB\" }}",
            disk.display()
        ),
        counting.port,
        far.port,
    )
    .await;
    let disk_watch = watch_disk(disk.clone());
    let mut rows = Vec::new();
    let seconds = Duration::from_secs(s.seconds);

    // Hot objects: the gateway with duration freshness against nginx's proxy_cache, both
    // warmed by one request first, in interleaved rounds (gateway, nginx, gateway, ...).
    drive::reset_peak(duration_gw.pid());
    for (label, size, conns) in [("hot 4 KiB x16", 4u64 << 10, 16), ("hot 64 MiB x4", 64 * MIB, 4)] {
        let key = format!("obj-{size}");
        let url = duration_gw.url("near", &key, s.token);
        get(&url, None, None).await;
        let headers = [("Origin".to_string(), ORIGIN.to_string())];
        let Some((pids, nginx_url)) = &s.nginx else {
            let gw = drive::load(&url, &headers, conns, seconds, size).await;
            rows.push(CacheRow::new(
                label,
                format!("gateway {:.0} req/s, {:.0} MB/s; no nginx", gw.rps(), gw.mbps()),
            ));
            continue;
        };
        let nginx_url = nginx_url(&key);
        get(&nginx_url, None, None).await;
        let mut rounds = Vec::new();
        for _ in 0..s.rounds.max(1) {
            let before = drive::used(&[duration_gw.pid()]);
            let gw = drive::load(&url, &headers, conns, seconds, size).await;
            let gw = Sample::new(gw, drive::used(&[duration_gw.pid()]) - before);
            let before = drive::used(pids);
            let ng = drive::load(&nginx_url, &[], conns, seconds, size).await;
            let ng = Sample::new(ng, drive::used(pids) - before);
            rounds.push(HotRound { gw, ng });
        }
        let text = HotRound::summary(&rounds);
        eprintln!("cache {label}: {text}");
        rows.push(CacheRow::new(label, text));
    }
    let peak = drive::peak_rss_mib(duration_gw.pid());
    rows.push(CacheRow::new(
        "peak RSS under the hot runs",
        format!("{peak:.1} MiB with a 256 MiB memory tier (target: at most 296 MiB)"),
    ));

    // Revalidate mode: 100 reads of one 64 MiB object; what the bucket sent for them.
    let url = revalidating.url("counted", &format!("obj-{}", 64 * MIB), s.token);
    get(&url, None, None).await;
    let before = counting.bytes();
    let mut served = 0;
    for _ in 0..100 {
        served += get(&url, None, None).await.0;
    }
    let bucket = counting.bytes() - before;
    rows.push(CacheRow::new(
        "revalidate, 100 reads of 64 MiB",
        format!(
            "bucket sent {bucket} bytes for {served} served: {:.4} % (target: at most 1 %)",
            bucket as f64 * 100.0 / served as f64
        ),
    ));

    // 100 concurrent cold readers of one 64 MiB object, against one lone cold reader: the
    // bucket next to the gateway, and 40 ms away.
    for (label, storage, relay, prefix) in [
        ("100 concurrent cold GETs of 64 MiB", "counted", &counting, "cold"),
        ("the same, bucket 40 ms away", "far", &far, "cold-far"),
    ] {
        let lone = get(
            &revalidating.url(storage, &format!("{prefix}-lone"), s.token),
            None,
            None,
        )
        .await
        .1;
        let before = relay.bytes();
        let slowest_first = slowest_of_100(&revalidating.url(storage, &format!("{prefix}-shared"), s.token)).await;
        let bucket = relay.bytes() - before;
        let mut text = format!(
            "bucket sent {:.3}x the object (target: at most 1.02x); slowest first byte {:.1} ms against a lone cold request's {:.1} ms: {:.2}x (target: at most 2x)",
            bucket as f64 / (64 * MIB) as f64,
            slowest_first.as_secs_f64() * 1e3,
            lone.as_secs_f64() * 1e3,
            slowest_first.as_secs_f64() / lone.as_secs_f64()
        );
        if storage == "counted" {
            // What a hundred readers of one 64 MiB object cost on this machine with no
            // fetch at all: the same 100 as hits (duration freshness).
            let hot = duration_gw.url(storage, &format!("{prefix}-shared"), s.token);
            get(&hot, None, None).await;
            let lone_hit = get(&hot, None, None).await.1;
            let slowest_hit = slowest_of_100(&hot).await;
            text.push_str(&format!(
                "; the same 100 as hits, no fetch at all: slowest first byte {:.1} ms against a lone hit's {:.1} ms",
                slowest_hit.as_secs_f64() * 1e3,
                lone_hit.as_secs_f64() * 1e3
            ));
        }
        if let (Some((_, nginx_url)), "counted") = (&s.nginx, storage) {
            // The reference cache in the same case, next door: proxy_cache_lock on.
            let lone = get(&nginx_url("cold-nginx-lone"), None, None).await.1;
            let slowest = slowest_of_100(&nginx_url("cold-nginx-shared")).await;
            // And the same 100 as hits of nginx's cache: what 100 new readers of 64 MiB cost
            // the reference on this machine.
            let slowest_hit = slowest_of_100(&nginx_url("cold-nginx-shared")).await;
            text.push_str(&format!(
                "; nginx proxy_cache (proxy_cache_lock on): slowest {:.1} ms against a lone {:.1} ms: {:.2}x, as hits: slowest {:.1} ms",
                slowest.as_secs_f64() * 1e3,
                lone.as_secs_f64() * 1e3,
                slowest.as_secs_f64() / lone.as_secs_f64(),
                slowest_hit.as_secs_f64() * 1e3
            ));
        }
        rows.push(CacheRow::new(label, text));
    }

    // A `bytes=0-` probe that takes 100 KiB and leaves, cached and uncached.
    let mut dropped = Vec::new();
    for (storage, key) in [("counted_uncached", "cold-drop-a"), ("counted", "cold-drop-b")] {
        let before = counting.bytes();
        get(
            &revalidating.url(storage, key, s.token),
            Some("bytes=0-"),
            Some(100 << 10),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        dropped.push(counting.bytes() - before);
    }
    rows.push(CacheRow::new(
        "a bytes=0- probe of 64 MiB that takes 100 KiB",
        format!(
            "the bucket sent {:.1} MiB uncached, {:.1} MiB through the cache",
            dropped[0] as f64 / MIB as f64,
            dropped[1] as f64 / MIB as f64
        ),
    ));

    // The bucket 40 ms away: hot 1 MiB with duration freshness against the uncached path.
    let mut p50 = Vec::new();
    for storage in ["far", "far_uncached"] {
        let url = duration_gw.url(storage, &format!("obj-{MIB}"), s.token);
        get(&url, None, None).await;
        let mut times = Vec::new();
        for _ in 0..30 {
            times.push(get(&url, None, None).await.2.as_secs_f64() * 1e3);
        }
        p50.push(median(times));
    }
    rows.push(CacheRow::new(
        "1 MiB, bucket 40 ms away",
        format!(
            "p50 {:.2} ms from the cache (target: at most 2 ms), {:.1} ms uncached",
            p50[0], p50[1]
        ),
    ));
    let (largest, written) = disk_watch.stop().await;
    rows.push(CacheRow::new(
        "disk tier",
        format!(
            "at most {:.1} MiB in its files, sampled every 20 ms, while {:.0} MiB went through it; size {DISK_TIER_MIB} MiB (target: never above)",
            largest as f64 / MIB as f64,
            written as f64 / MIB as f64
        ),
    ));
    for row in &rows {
        eprintln!("cache {}: {}", row.case, row.result);
    }
    rows
}

/// The size of the revalidating gateway's disk tier.
const DISK_TIER_MIB: u64 = 192;

/// Samples what the files of a disk tier hold until stopped: the largest total seen, and the
/// bytes of the distinct files seen (what was written through it).
struct DiskWatch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl DiskWatch {
    async fn stop(self) -> (u64, u64) {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

fn watch_disk(dir: std::path::PathBuf) -> DiskWatch {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (mut largest, mut seen) = (0u64, std::collections::HashMap::new());
        // Bounded: the cache runs take minutes, never an hour.
        let deadline = Instant::now() + Duration::from_secs(3600);
        while stopped.try_recv().is_err() && Instant::now() < deadline {
            let mut total = 0;
            for folder in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                    let len = file.metadata().map_or(0, |m| m.len());
                    total += len;
                    seen.insert(file.file_name(), len);
                }
            }
            largest = largest.max(total);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (largest, seen.values().sum())
    });
    DiskWatch { stop, task }
}

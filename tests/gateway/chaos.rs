//! Chaos under load (the clients are `support/traffic.rs`'s): traffic flows while the
//! bucket's network misbehaves (latency, resets mid-body, stalls, refused connections, a
//! partition, a host that answers no SYN) through the tests' own fault relay
//! (`support/faults.rs`), while the registry's database is cut off or stopped and
//! restarted, and while the binary reloads and shuts down. Pass means: every answer is complete and byte-exact or visibly cut short (never a
//! short body presented as complete), every request that could be served was served, none
//! hangs past the gateway's timeouts, and the gateway recovers by itself; the recovery time
//! is printed. The issuers' outages are in `chaos_issuers.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::faults::{Fault, FaultRelay};
use crate::support::postgres::{database, postgres, Postgres};
use crate::support::seaweed::seaweed;
use crate::support::tmpfs::Tmpfs;
use crate::support::traffic::{self, count, finish, nothing_wrong, Outcome, Record};
use crate::support::*;

const BUCKET: &str = "chaos-assets";
const CLIENTS: usize = 8;
const SERVER: &str =
    "upstream_connect_timeout = \"1s\"\nupstream_first_byte_timeout = \"2s\"\nupstream_idle_timeout = \"2s\"";

/// The objects of the bucket: (key, bytes).
fn objects() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small.jpg", pattern(4 * 1024, 1)),
        ("medium.png", pattern(300 * 1024 + 7, 2)),
        ("large.mp4", pattern(3 * 1024 * 1024 + 11, 3)),
    ]
}

/// Puts [`objects`] into the chaos bucket of SeaweedFS.
async fn seed() {
    let objects = objects();
    let pairs: Vec<(&str, &[u8])> = objects.iter().map(|(k, v)| (*k, &v[..])).collect();
    seaweed().seed(BUCKET, &pairs).await;
}

/// `CLIENTS` clients reading the bucket's objects from storage `storage` of the data plane
/// at `base` until `stop`.
fn load_from(base: &str, storage: &str, stop: Instant) -> Vec<tokio::task::JoinHandle<Vec<Record>>> {
    traffic::load(
        traffic::targets(base, "acme", storage, BUCKET, &objects()),
        format!("Bearer {}", token("acme")),
        CLIENTS,
        stop,
    )
}

/// [`load_from`] through a test gateway.
fn load(gw: &TestGateway, storage: &str, stop: Instant) -> Vec<tokio::task::JoinHandle<Vec<Record>>> {
    load_from(&gw.base, storage, stop)
}

/// The bucket's network goes through every fault while eight clients read objects whole
/// and by range; the edge cache is off, so every request crosses the faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_faults_under_load_cut_answers_visibly_and_the_gateway_recovers() {
    seed().await;
    let sw = seaweed();
    let relay = FaultRelay::start(
        format!("{}:{}", sw.endpoint.host, sw.endpoint.port.unwrap())
            .parse()
            .unwrap(),
    )
    .await;
    let gw = TestGateway::acme(
        &format!("{}\n[cache]\nmemory = \"0\"\n", config(SERVER, "")),
        "chaos",
        &relay.endpoint(),
        &[BUCKET],
        &sw.reader,
    )
    .await;

    let phase = Duration::from_millis(2500);
    let faults = [
        Fault::Pass,
        Fault::Latency(Duration::from_millis(40)),
        Fault::ResetAfter(100_000),
        Fault::StallAfter(150_000),
        Fault::Refuse,
        Fault::Partition,
        Fault::Unreachable,
    ];
    let start = Instant::now();
    let recovered_at = start + phase * faults.len() as u32;
    let clients = load(&gw, "chaos", recovered_at + Duration::from_secs(8));
    let mut phases = Vec::new();
    for fault in faults {
        relay.set(fault);
        let from = Instant::now();
        tokio::time::sleep(phase).await;
        phases.push((fault, from, Instant::now()));
    }
    relay.set(Fault::Pass);
    let healed = Instant::now();
    let records = finish(clients).await;
    nothing_wrong(&records);
    assert_eq!(count(&records, |o| *o == Outcome::Refused(401)), 0);

    for (fault, from, to) in &phases {
        let within: Vec<Record> = records
            .iter()
            .filter(|r| r.started >= *from && r.ended <= *to)
            .cloned()
            .collect();
        let begun: Vec<Record> = records
            .iter()
            .filter(|r| r.started >= *from && r.started < *to)
            .cloned()
            .collect();
        let longest = traffic::longest(&begun);
        eprintln!(
            "{fault:?}: {} requests begun, {} complete, {} cut short, {} refused; the longest took {longest:?}",
            begun.len(),
            count(&begun, |o| *o == Outcome::Complete),
            count(&begun, |o| *o == Outcome::CutShort),
            count(&begun, |o| matches!(o, Outcome::Refused(_))),
        );
        // None waits past the gateway's timeouts (2 s to a first byte, 2 s of silence).
        assert!(
            longest < Duration::from_secs(10),
            "{fault:?}: a request took {longest:?}"
        );
        if matches!(fault, Fault::Pass | Fault::Latency(_)) {
            // Nothing kept these from being served.
            assert_eq!(count(&within, |o| *o == Outcome::Complete), within.len(), "{fault:?}");
            assert!(!within.is_empty(), "{fault:?}: no request ran");
        }
    }
    // Recovery: from the moment the network heals, the first request begun afterwards that
    // is served; every request begun after that one is served too.
    let first = records
        .iter()
        .filter(|r| r.started >= healed && r.outcome == Outcome::Complete)
        .map(|r| r.started)
        .min()
        .expect("requests are served again");
    eprintln!("recovered {:?} after the network healed", first.duration_since(healed));
    let after: Vec<&Record> = records.iter().filter(|r| r.started >= first).collect();
    assert!(after.len() >= CLIENTS, "{} requests after recovery", after.len());
    assert!(
        after.iter().all(|r| r.outcome == Outcome::Complete),
        "{:?}",
        after.iter().find(|r| r.outcome != Outcome::Complete)
    );
    assert!(first.duration_since(healed) < Duration::from_secs(5));
    // Nothing is left in flight: every stalled or cut request was ended.
    let metrics = gw.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "assetgate_in_flight_requests 0"),
        "{metrics}"
    );
}

/// The registry's PostgreSQL is cut off (a partition, then refused connections) while
/// clients read through a storage created by the admin API: the storages the gateway holds
/// keep serving every request, and once the database is back a change made through the
/// admin API lands and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_database_cut_off_under_load_fails_no_request_it_can_serve() {
    let (_, url) = database();
    let pg = postgres();
    let relay = FaultRelay::start(format!("127.0.0.1:{}", pg.port).parse().unwrap()).await;
    let through = url.replace(&format!(":{}/", pg.port), &format!(":{}/", relay.addr.port()));
    assert_ne!(through, url);
    registry_outage_under_load(&through, async {
        relay.set(Fault::Partition);
        tokio::time::sleep(Duration::from_secs(4)).await;
        relay.set(Fault::Refuse);
        tokio::time::sleep(Duration::from_secs(4)).await;
        relay.set(Fault::Pass);
    })
    .await;
}

/// The registry's PostgreSQL server is stopped (a fast shutdown: its connections closed)
/// and started again while clients read: as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_database_stopped_and_restarted_under_load_fails_no_request_it_can_serve() {
    let pg = Postgres::start("chaos");
    let url = pg.database("registry");
    registry_outage_under_load(&url, async {
        pg.stop();
        tokio::time::sleep(Duration::from_secs(5)).await;
        pg.resume();
    })
    .await;
}

/// Clients read through a storage created by the admin API on a gateway whose registry is
/// at `url` while `outage` takes the database away and brings it back: every request is
/// served, and the admin API writes again soon after (the time printed).
async fn registry_outage_under_load(url: &str, outage: impl std::future::Future<Output = ()>) {
    seed().await;
    let admin_token = "chaos-admin-token-0123456789";
    let registry = format!(
        "[admin]\ntoken = \"{admin_token}\"\n[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\nresync_interval = \"2s\"\n",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    let gw = TestGateway::start(&format!("{}\n[cache]\nmemory = \"0\"\n{registry}", config(SERVER, ""))).await;
    let create = |id: &'static str| {
        client::admin(
            &gw.admin_base,
            admin_token,
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(seaweed().api_storage(id, &[BUCKET])),
        )
    };
    let created = create("api").await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));

    let clients = load(&gw, "api", Instant::now() + Duration::from_secs(16));
    tokio::time::sleep(Duration::from_secs(1)).await;
    outage.await;
    let healed = Instant::now();
    // A change through the admin API lands once the database answers again.
    let landed = loop {
        let r = create("after").await;
        if r.status == 201 {
            break Instant::now();
        }
        assert!(
            matches!(r.status.as_u16(), 503),
            "{}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            healed.elapsed() < Duration::from_secs(30),
            "the registry never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "the admin API wrote again {:?} after the database came back",
        landed.duration_since(healed)
    );
    let auth = format!("Bearer {}", token("acme"));
    let served = client::get(
        &gw.url("acme", "after", BUCKET, "small.jpg"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(served.status, 200);

    let records = finish(clients).await;
    nothing_wrong(&records);
    let served = count(&records, |o| *o == Outcome::Complete);
    eprintln!(
        "{} requests during the outage and after, {served} served",
        records.len()
    );
    assert_eq!(
        served,
        records.len(),
        "every request could be served from the storages held"
    );
}

/// The audit trail's disk and the edge cache's disk fill up while clients read: every
/// request is served, at full speed (the audit trail counts what it could not write, the
/// cache what it could not store); once there is room again both write again, without a
/// restart, and every line of the audit file is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_audit_and_cache_disks_fail_no_request_and_recover() {
    seed().await;
    let sw = seaweed();
    let later: Vec<(&str, Vec<u8>)> = ["later-1.bin", "later-2.bin", "later-3.bin", "later-4.bin"]
        .into_iter()
        .enumerate()
        .map(|(i, key)| (key, pattern(200 * 1024 + i, 20 + i as u8)))
        .collect();
    let pairs: Vec<(&str, &[u8])> = later.iter().map(|(k, v)| (*k, &v[..])).collect();
    sw.seed(BUCKET, &pairs).await;
    let (audit_disk, cache_disk) = (Tmpfs::mount("16m"), Tmpfs::mount("16m"));
    let audit = audit_disk.0.join("audit.jsonl");
    let registry = tempfile::tempdir().unwrap();
    // A memory tier smaller than the objects read, so the disk tier is written throughout.
    let sections = format!(
        "[audit]\npath = \"{}\"\n[cache]\nmemory = \"256KiB\"\ndisk = {{ path = \"{}\", size = \"1GiB\" }}\n\
         [registry]\nmaster_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\ndata_dir = \"{}\"\n",
        audit.display(),
        cache_disk.0.join("cache").display(),
        registry.path().display()
    );
    let gw = TestGateway::acme(&config(SERVER, &sections), "full", &sw.endpoint, &[BUCKET], &sw.reader).await;
    let counter = |name: &str| binary::metric(&gw.gateway.metrics.encode(), name);
    let (audit_written, audit_dropped, cache_errors) = (
        "assetgate_audit_lines_total{result=\"written\"}",
        "assetgate_audit_lines_total{result=\"dropped\"}",
        "assetgate_cache_disk_errors_total",
    );

    let clients = load(&gw, "full", Instant::now() + Duration::from_secs(12));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fillers = (audit_disk.fill(), cache_disk.fill());
    let full = Instant::now();
    // Objects not read before, for the disk tier to try to store while it is full.
    let unseen = traffic::targets(&gw.base, "acme", "full", BUCKET, &later);
    let client = traffic::client();
    let auth = format!("Bearer {}", token("acme"));
    for target in &unseen {
        assert_eq!(traffic::one(&client, target, &auth, None).await, Outcome::Complete);
    }
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(full.elapsed())).await;
    let (dropped, errors) = (counter(audit_dropped), counter(cache_errors));
    std::fs::remove_file(fillers.0).unwrap();
    std::fs::remove_file(fillers.1).unwrap();
    let room = Instant::now();
    // Room again: the audit trail writes again, while the clients read on.
    let (written, stored) = (counter(audit_written), files_in(&cache_disk.0).len());
    let size = || std::fs::metadata(&audit).map_or(0, |m| m.len());
    let before = size();
    let again = within(Duration::from_secs(5), "the audit trail to write again", || {
        std::future::ready(counter(audit_written) > written && size() > before)
    })
    .await;
    eprintln!("the audit trail wrote again {again:?} after there was room");
    let records = finish(clients).await;
    nothing_wrong(&records);
    let while_full: Vec<Record> = records
        .iter()
        .filter(|r| r.started >= full && r.started < room)
        .cloned()
        .collect();
    eprintln!(
        "{} requests, {} while the disks were full (the longest took {:?}); audit lines dropped {dropped}, cache disk errors {errors}",
        records.len(),
        while_full.len(),
        traffic::longest(&while_full)
    );
    assert_eq!(count(&records, |o| *o == Outcome::Complete), records.len());
    assert!(!while_full.is_empty());
    assert!(traffic::longest(&while_full) < Duration::from_secs(1));
    assert!(dropped > 0.0, "lines the full disk refused are counted as dropped");
    assert!(errors > 0.0, "stores the full disk refused are counted");

    // The disk tier stores again: an object not read before lands on disk.
    let (key, bytes) = ("after-room.bin", pattern(200 * 1024, 30));
    sw.seed(BUCKET, &[(key, &bytes)]).await;
    let target = &traffic::targets(&gw.base, "acme", "full", BUCKET, &[(key, bytes.clone())])[0];
    assert_eq!(traffic::one(&client, target, &auth, None).await, Outcome::Complete);
    within(Duration::from_secs(10), "the disk tier to store again", || {
        std::future::ready(files_in(&cache_disk.0).len() > stored)
    })
    .await;
    // Every line of the audit file is whole once the last batch is flushed: a line the full
    // disk took only part of was finished when there was room.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&audit).unwrap();
        if text.ends_with('\n') {
            break text;
        }
        assert!(Instant::now() < deadline, "the audit file ends in half a line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for line in text.lines() {
        let line: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a torn audit line ({e}): {line}"));
        assert_eq!(line["org"], "acme");
    }
}

/// The files under `dir`, however deep.
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The binary reloads its configuration (SIGHUP) every 300 ms while clients read, a broken
/// file every other time (the last good one stays): no request is lost. Then SIGTERM
/// arrives with downloads in flight: each completes, byte for byte, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_a_shutdown_mid_stream_lose_no_request() {
    seed().await;
    let sw = seaweed();
    let dir = tempfile::tempdir().unwrap();
    let rest = format!(
        "[cache]\nmemory = \"0\"\n[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    let served = binary::Served::start(dir.path(), SERVER, &rest);
    let base = format!("http://{}", served.data);
    let good = std::fs::read_to_string(&served.config).unwrap();
    let changed = good.replace("max_age = \"10m\"", "max_age = \"5m\"");
    assert_ne!(good, changed);

    let stop = Instant::now() + Duration::from_secs(6);
    let clients = load_from(&base, "main", stop);
    let mut reloads = 0;
    while Instant::now() < stop {
        served.rewrite(match reloads % 3 {
            0 => &changed,
            1 => "this is [not toml",
            _ => &good,
        });
        served.signal("HUP");
        reloads += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let records = finish(clients).await;
    nothing_wrong(&records);
    eprintln!("{} requests during {reloads} reloads", records.len());
    assert_eq!(count(&records, |o| *o == Outcome::Complete), records.len());

    // SIGTERM with downloads of the large object in flight.
    let (key, want) = objects().pop().unwrap();
    let url = format!("{base}/v1/orgs/acme/storages/main/objects/{BUCKET}/{key}");
    let auth = format!("Bearer {}", token("acme"));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut downloads = Vec::new();
    for _ in 0..CLIENTS {
        let request = Request::get(&url)
            .header("authorization", &auth)
            .body(Empty::new())
            .unwrap();
        downloads.push(client.request(request).await.unwrap());
    }
    served.signal("TERM");
    for response in downloads {
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("completes after SIGTERM")
            .to_bytes();
        assert!(body[..] == want[..], "{} bytes", body.len());
    }
    let mut served = served;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
}

//! The edge cache (README, "Edge cache") against SeaweedFS, through a relay of the test's own
//! that counts what the bucket is asked for and sends: hits cross no object bytes, changes in
//! the bucket and in the registry are never hidden by the cache, concurrent readers share
//! one fetch per slice, and answers from the cache are the bucket's, byte for byte and
//! header for header.

use std::sync::Arc;
use std::time::Duration;

use assetgate::cache::{Lookup, ObjectKey};
use http::Method;
use http_body_util::BodyExt;
use serde_json::json;

use crate::support::client::{get, head, send, Reply};
use crate::support::relay::Relay;
use crate::support::seaweed::seaweed;
use crate::support::*;

const MIB: usize = 1 << 20;
const ADMIN: &str = "admin-token-for-cache-tests-0123456789";

/// A gateway whose storage `main` of org `acme` reads `bucket` through `relay`, with
/// `[cache]` set to `cache` (and the admin API on).
async fn gateway(relay: &Relay, bucket: &str, cache: &str, storage_extra: &str) -> TestGateway {
    TestGateway::start(&gateway_config(relay, bucket, cache, storage_extra)).await
}

/// The config of [`gateway`]; `cache` may end with tables of its own.
fn gateway_config(relay: &Relay, bucket: &str, cache: &str, storage_extra: &str) -> String {
    let server = format!("[admin]\ntoken = \"{ADMIN}\"\n[cache]\n{cache}\n");
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}{storage_extra}\n",
        storage("main", &relay.endpoint, &[bucket], &seaweed().reader)
    );
    format!("{}\n{org}", config("", &server))
}

async fn read(url: &str, extra: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {}", token("acme"));
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    get(url, &headers).await
}

/// The headers an answer from the cache must share with the bucket's own.
const SAME: [&str; 9] = [
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "access-control-expose-headers",
];

#[tokio::test]
async fn a_second_read_is_confirmed_with_the_bucket_and_no_object_bytes_cross() {
    let bucket = "cache-second-read";
    let data = pattern(2 * MIB + 12_345, 3);
    seaweed().seed(bucket, &[("scan.tif", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = gw.url("acme", "main", bucket, "scan.tif");
    let first = read(&url, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, data);
    assert_eq!(first.header("cache-status"), "assetgate; fwd=miss; stored");
    let (requests, bytes) = (relay.requests(), relay.bytes());
    let seen = relay.seen();
    assert_eq!(requests, 3, "one request per slice: {seen:?}");
    assert!(seen.iter().all(|s| s.method == "GET"));
    assert!(!seen[0].if_match, "the first slice learns the version");
    assert!(
        seen[1..].iter().all(|s| s.if_match),
        "the others must be of that version: {seen:?}"
    );
    assert_eq!(bytes, data.len() as u64);
    let second = read(&url, &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, data);
    assert_eq!(second.header("cache-status"), "assetgate; fwd=stale; fwd-status=304");
    for name in SAME {
        assert_eq!(second.header(name), first.header(name), "{name}");
    }
    let seen = relay.seen();
    assert_eq!(seen.len(), requests + 1, "one conditional request: {seen:?}");
    assert!(seen.last().unwrap().if_none_match);
    assert_eq!(relay.bytes(), bytes, "no object byte crossed again");
}

#[tokio::test]
async fn answers_from_the_cache_are_the_buckets_answers() {
    let bucket = "cache-same-answers";
    let data = pattern(3 * MIB + 77, 4);
    seaweed().seed(bucket, &[("video.mp4", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let cached = gateway(&relay, bucket, "memory = \"64MiB\"\nslice = \"1MiB\"", "").await;
    let plain = gateway(&relay, bucket, "memory = \"0\"", "").await;
    let (cached_url, plain_url) = (
        cached.url("acme", "main", bucket, "video.mp4"),
        plain.url("acme", "main", bucket, "video.mp4"),
    );
    let etag = read(&plain_url, &[]).await.header("etag").to_string();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("range", "bytes=0-")],
        vec![("range", "bytes=100-199")],
        vec![("range", "bytes=1048570-2097160")],
        vec![("range", "bytes=-10")],
        vec![("range", "bytes=3145000-")],
        vec![("range", "bytes=3000000-99999999")],
        vec![("range", "bytes=99999999-")],
        vec![("if-none-match", &etag)],
        vec![("if-match", "\"another\"")],
        vec![("if-range", "\"another\""), ("range", "bytes=0-9")],
        vec![("if-range", &etag), ("range", "bytes=10-19")],
        vec![("range", "bytes=0-1,5-6")],
        vec![("origin", EDITOR_ORIGIN), ("range", "bytes=5-9")],
    ];
    for warm in [false, true] {
        for case in &cases {
            let (from_cache, from_bucket) = (read(&cached_url, case).await, read(&plain_url, case).await);
            assert_eq!(from_cache.status, from_bucket.status, "{case:?} warm={warm}");
            if from_bucket.status.is_client_error() {
                // Error bodies carry their own request id.
                assert_eq!(
                    from_cache.error_code(),
                    from_bucket.error_code(),
                    "{case:?} warm={warm}"
                );
            } else {
                assert!(
                    from_cache.body == from_bucket.body,
                    "{case:?} warm={warm}: bodies differ"
                );
            }
            for name in SAME {
                assert_eq!(
                    from_cache.header(name),
                    from_bucket.header(name),
                    "{case:?} warm={warm}: {name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn duration_freshness_asks_the_bucket_nothing_within_its_duration() {
    let bucket = "cache-duration";
    let data = pattern(300_000, 5);
    seaweed().seed(bucket, &[("thumb.jpg", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"\nfreshness = \"1h\"", "").await;
    let url = gw.url("acme", "main", bucket, "thumb.jpg");
    assert_eq!(read(&url, &[]).await.body, data);
    let requests = relay.requests();
    for _ in 0..5 {
        let r = read(&url, &[("range", "bytes=1000-1999")]).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, data[1000..2000]);
        assert_eq!(r.header("cache-status"), "assetgate; hit");
    }
    assert_eq!(relay.requests(), requests, "{:?}", relay.seen());
}

#[tokio::test]
async fn an_object_changed_or_deleted_in_the_bucket_is_never_served_from_the_old_entry() {
    let bucket = "cache-changed";
    let (old, new) = (pattern(1_500_000, 6), pattern(900_000, 7));
    let sw = seaweed();
    sw.seed(bucket, &[("frame.png", &old)]).await;
    let relay = Relay::start(&sw.endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = gw.url("acme", "main", bucket, "frame.png");
    assert_eq!(read(&url, &[]).await.body, old);
    sw.writer()
        .put(bucket, "frame.png", "image/png", new.clone())
        .await
        .unwrap();
    let r = read(&url, &[]).await;
    assert_eq!(r.body, new);
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.header("cache-status"), "assetgate; fwd=miss; stored");
    assert_eq!(
        read(&url, &[]).await.header("cache-status"),
        "assetgate; fwd=stale; fwd-status=304"
    );
    sw.writer().delete(bucket, "frame.png").await.unwrap();
    let r = read(&url, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "no_such_key");
    let entry = gw
        .gateway
        .storages
        .org("acme")
        .unwrap()
        .storage("main")
        .unwrap()
        .clone();
    let key = Arc::new(ObjectKey {
        org: "acme".into(),
        storage: "main".into(),
        revision: entry.revision,
        bucket: bucket.into(),
        key: "frame.png".into(),
    });
    assert!(matches!(
        gw.gateway.cache.as_ref().unwrap().lookup(&key).await,
        Lookup::Cold
    ));
}

#[tokio::test]
async fn fifty_concurrent_cold_readers_share_one_fetch_per_slice() {
    let bucket = "cache-coalesced";
    let data = Arc::new(pattern(4 * MIB + 1, 8));
    seaweed().seed(bucket, &[("series.dcm", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = gw.url("acme", "main", bucket, "series.dcm");
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (url, data) = (url.clone(), data.clone());
            tokio::spawn(async move {
                let r = read(&url, &[]).await;
                assert_eq!(r.status, 200);
                assert!(r.body == data[..], "a reader got other bytes");
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let seen = relay.seen();
    assert_eq!(seen.len(), 5, "one request per slice: {seen:?}");
    assert_eq!(relay.bytes(), data.len() as u64);
    let metrics = gw.metrics().await;
    assert!(
        binary::metric(&metrics, "assetgate_cache_coalesced_total") >= 49.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_cold_range_fetches_only_the_slices_it_covers() {
    let bucket = "cache-cold-range";
    let data = pattern(5 * MIB, 9);
    seaweed().seed(bucket, &[("movie.mp4", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = gw.url("acme", "main", bucket, "movie.mp4");
    let r = read(&url, &[("range", "bytes=2500000-2600000")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        format!("bytes 2500000-2600000/{}", data.len())
    );
    assert_eq!(r.body, data[2_500_000..=2_600_000]);
    let seen = relay.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=2097152-3145727"));
    // The rest of the slice is fetched for the cache after the client had its bytes.
    within(Duration::from_secs(5), "the slice to complete", || async {
        relay.bytes() >= MIB as u64
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(relay.bytes(), MIB as u64);
    let again = read(&url, &[("range", "bytes=2200000-2200099")]).await;
    assert_eq!(again.body, data[2_200_000..2_200_100]);
    assert_eq!(relay.requests(), 2, "a conditional request only: {:?}", relay.seen());
    assert_eq!(relay.bytes(), MIB as u64);
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_fetching() {
    let bucket = "cache-dropped";
    let data = pattern(24 * MIB, 10);
    seaweed().seed(bucket, &[("long.mp4", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = gw.url("acme", "main", bucket, "long.mp4");
    let auth = format!("Bearer {}", token("acme"));
    let response = send(Method::GET, &url, &[("authorization", &auth), ("range", "bytes=0-")]).await;
    assert_eq!(response.status(), 206);
    let mut body = response.into_body();
    let mut taken = 0;
    while taken < 100_000 {
        taken += body.frame().await.unwrap().unwrap().into_data().map_or(0, |d| d.len());
    }
    drop(body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the client's socket and the loopback buffers took (a few MiB the gateway cannot
    // tell from reading), the slice under way and the one fetched ahead; never the 24 MiB.
    let pulled = relay.bytes();
    assert!(
        pulled <= 4 * MIB as u64,
        "the bucket sent {pulled} bytes for a client that took {taken}"
    );
}

#[tokio::test]
async fn storages_with_cache_off_and_no_store_objects_are_never_kept() {
    let bucket = "cache-never";
    let sw = seaweed();
    sw.seed(bucket, &[("plain.bin", &pattern(10_000, 1))]).await;
    sw.writer()
        .put_with(
            bucket,
            "secret.dcm",
            &[("content-type", "application/dicom"), ("cache-control", "no-store")],
            pattern(10_000, 2),
        )
        .await
        .unwrap();
    let relay = Relay::start(&sw.endpoint).await;
    let off = gateway(&relay, bucket, "memory = \"64MiB\"", "cache = false").await;
    let url = off.url("acme", "main", bucket, "plain.bin");
    for _ in 0..2 {
        let r = read(&url, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-status"), "assetgate; fwd=bypass");
    }
    assert_eq!(relay.bytes(), 20_000);
    let on = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let url = on.url("acme", "main", bucket, "secret.dcm");
    for _ in 0..3 {
        let r = read(&url, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, pattern(10_000, 2));
        assert_eq!(r.header("cache-status"), "assetgate; fwd=miss");
    }
    assert_eq!(off.gateway.cache.as_ref().unwrap().purge(&purge_all()).await, 0);
    assert_eq!(on.gateway.cache.as_ref().unwrap().purge(&purge_all()).await, 0);
    let r = head(&url, &[("authorization", &format!("Bearer {}", token("acme")))]).await;
    assert_eq!(r.header("cache-status"), "assetgate; fwd=method");
}

fn purge_all() -> assetgate::cache::Purge {
    assetgate::cache::Purge {
        org: "acme".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn purge_through_the_admin_api_drops_the_orgs_entries() {
    let bucket = "cache-purge";
    let sw = seaweed();
    sw.seed(
        bucket,
        &[("a/1.jpg", &pattern(5000, 1)), ("b/2.jpg", &pattern(5000, 2))],
    )
    .await;
    let relay = Relay::start(&sw.endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"\nfreshness = \"1h\"", "").await;
    for key in ["a/1.jpg", "b/2.jpg"] {
        read(&gw.url("acme", "main", bucket, key), &[]).await;
    }
    let admin =
        |body| crate::support::client::admin(&gw.admin_base, ADMIN, Method::DELETE, "/admin/v1/orgs/acme/cache", body);
    let r = admin(Some(json!({"storage": "main", "prefix": "a/"}))).await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    assert_eq!(r.json()["data"]["purged"], 1);
    let a = read(&gw.url("acme", "main", bucket, "a/1.jpg"), &[]).await;
    assert_eq!(a.header("cache-status"), "assetgate; fwd=miss; stored");
    let b = read(&gw.url("acme", "main", bucket, "b/2.jpg"), &[]).await;
    assert_eq!(b.header("cache-status"), "assetgate; hit");
    let r = admin(None).await;
    assert_eq!(r.json()["data"]["purged"], 2);
    let r = crate::support::client::admin(
        &gw.admin_base,
        ADMIN,
        Method::DELETE,
        "/admin/v1/orgs/acme/cache",
        Some(json!({"bucket": 7})),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn metrics_and_the_audit_trail_say_what_the_cache_did() {
    let bucket = "cache-metrics";
    seaweed().seed(bucket, &[("m.bin", &pattern(100_000, 1))]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let settings = format!(
        "memory = \"64MiB\"\nfreshness = \"1h\"\n[audit]\npath = \"{}\"",
        audit.display()
    );
    let gw = gateway(&relay, bucket, &settings, "").await;
    let url = gw.url("acme", "main", bucket, "m.bin");
    for _ in 0..3 {
        read(&url, &[]).await;
    }
    let m = gw.metrics().await;
    assert_eq!(
        binary::metric(&m, "assetgate_cache_requests_total{result=\"miss\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        binary::metric(&m, "assetgate_cache_requests_total{result=\"hit\"}"),
        2.0
    );
    assert_eq!(
        binary::metric(&m, "assetgate_cache_bytes_total{source=\"cache\"}"),
        200_000.0
    );
    assert_eq!(
        binary::metric(&m, "assetgate_cache_bytes_total{source=\"upstream\"}"),
        100_000.0
    );
    assert!(binary::metric(&m, "assetgate_cache_size_bytes{tier=\"memory\"}") >= 100_000.0);
    let lines = || std::fs::read_to_string(&audit).unwrap_or_default();
    within(Duration::from_secs(5), "three audit lines", || async {
        lines().lines().count() == 3
    })
    .await;
    let said: Vec<String> = lines()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["cache"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(said, ["miss", "hit", "hit"]);
}

#[tokio::test]
async fn credentials_rotated_or_a_storage_deleted_through_the_admin_api_never_serve_old_entries() {
    let bucket = "cache-admin";
    let sw = seaweed();
    let data = pattern(200_000, 11);
    sw.seed(bucket, &[("x.jpg", &data)]).await;
    let relay = Relay::start(&sw.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    // Duration freshness: the bucket is not asked again, so only the storage's new revision
    // can keep old entries from being served.
    let settings = format!(
        "memory = \"64MiB\"\nfreshness = \"1h\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]",
        dir.path().display(),
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    );
    let gw = gateway(&relay, bucket, &settings, "").await;
    let admin =
        |method, path: &'static str, body| crate::support::client::admin(&gw.admin_base, ADMIN, method, path, body);
    let keys = |k: &assetgate::credentials::StaticKeys| json!({"accessKeyId": k.access_key_id, "secretAccessKey": k.secret_access_key.expose()});
    let created = admin(
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(json!({"_id": "api", "type": "s3_compatible", "buckets": [bucket],
                    "endpoint": relay.endpoint.to_string(), "credentials": keys(&sw.reader)})),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    assert_eq!(created.json()["data"]["storage"]["cache"], true);
    let url = gw.url("acme", "api", bucket, "x.jpg");
    assert_eq!(
        read(&url, &[]).await.header("cache-status"),
        "assetgate; fwd=miss; stored"
    );
    assert_eq!(read(&url, &[]).await.header("cache-status"), "assetgate; hit");
    let patched = admin(
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/api",
        Some(json!({"credentials": keys(&sw.limited)})),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.json());
    // The old revision's entries are dropped with the change, not left to age out.
    let size = &gw.gateway.cache.as_ref().unwrap().metrics().memory_size;
    assert_eq!(size.get(), 0, "nothing of the old revision is held");
    let r = read(&url, &[]).await;
    assert_eq!(r.status, 403, "the new credentials are refused by the bucket");
    assert_eq!(r.error_code(), "upstream_access_denied");
    let patched = admin(
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/api",
        Some(json!({"credentials": keys(&sw.reader), "cache": false})),
    )
    .await;
    assert_eq!(patched.json()["data"]["storage"]["cache"], false);
    let r = read(&url, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.header("cache-status")),
        (200, "assetgate; fwd=bypass")
    );
    assert_eq!(
        admin(Method::DELETE, "/admin/v1/orgs/acme/storages/api", None)
            .await
            .status,
        200
    );
    let r = read(&url, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "unknown_storage");
}

#[tokio::test]
async fn a_bucket_that_ignores_if_none_match_still_confirms_an_entry_by_its_etag() {
    // s3s (the demo's backend) answers the conditional request with the byte it asked for
    // and the object's ETag: the same strong tag is the same object.
    let dir = tempfile::tempdir().unwrap();
    let backend = assetgate::demo::Backend::start(dir.path()).await.unwrap();
    let writer = assetgate::demo::seed::S3Writer::new(backend.endpoint.clone(), backend.keys.clone(), "us-east-1");
    writer.create_bucket("s3s-bucket").await.unwrap();
    let data = pattern(2 * MIB + 5, 12);
    writer
        .put("s3s-bucket", "scan.tif", "image/tiff", data.clone())
        .await
        .unwrap();
    let relay = Relay::start(&backend.endpoint).await;
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &relay.endpoint, &["s3s-bucket"], &backend.keys)
    );
    let gw = TestGateway::start(&format!("{}\n{org}", config("", ""))).await;
    let url = gw.url("acme", "main", "s3s-bucket", "scan.tif");
    assert_eq!(read(&url, &[]).await.body, data);
    let bytes = relay.bytes();
    let again = read(&url, &[]).await;
    assert_eq!(again.body, data);
    assert_eq!(again.header("cache-status"), "assetgate; fwd=stale; fwd-status=304");
    assert_eq!(relay.bytes(), bytes + 1, "one byte crossed: the conditional request's");
}

#[tokio::test]
async fn usage_says_what_came_from_the_bucket_and_what_the_cache_saved() {
    let bucket = "cache-usage";
    let data = pattern(1_500_000, 13);
    seaweed().seed(bucket, &[("a.png", &data), ("b.png", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let gw = gateway(&relay, bucket, "memory = \"64MiB\"", "").await;
    let cached = gw.url("acme", "main", bucket, "a.png");
    for _ in 0..3 {
        assert_eq!(read(&cached, &[]).await.body, data);
    }
    // HEAD goes to the bucket: no body, nothing fetched.
    let auth = format!("Bearer {}", token("acme"));
    assert_eq!(
        head(&gw.url("acme", "main", bucket, "b.png"), &[("authorization", &auth)])
            .await
            .status,
        200
    );
    let size = data.len() as u64;
    within(Duration::from_secs(15), "usage to be flushed", || async {
        let r = crate::support::client::admin(&gw.admin_base, ADMIN, Method::GET, "/admin/v1/orgs/acme/usage", None).await;
        let rows = r.json()["data"]["usage"].clone();
        rows == json!([{"storage": "main", "day": rows[0]["day"], "requests": 4, "bytes": 3 * size, "upstream_bytes": size}])
    })
    .await;
}

#[tokio::test]
async fn a_bucket_that_answers_ranges_with_the_whole_object_is_asked_once_per_request() {
    // A stand-in (no real server ignores ranges on demand) that answers every request,
    // ranged or not, with the whole object.
    let upstream = crate::support::standin::StandIn::replying(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nETag: \"v1\"\r\nConnection: close\r\n\r\nwhole",
    )
    .await;
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage(
            "main",
            &upstream.endpoint(),
            &["b-bucket"],
            &crate::support::standin::any_keys()
        )
    );
    let gw = TestGateway::start(&format!("{}\n{org}", config("", ""))).await;
    let url = gw.url("acme", "main", "b-bucket", "k.txt");
    let first = read(&url, &[]).await;
    assert_eq!((first.status.as_u16(), &first.body[..]), (200, &b"whole"[..]));
    assert_eq!(first.header("cache-status"), "assetgate; fwd=miss");
    let asked = upstream.heads.lock().unwrap().len();
    assert_eq!(asked, 2, "the cache's ranged request, then the client's");
    for _ in 0..3 {
        let r = read(&url, &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.header("cache-status")),
            (200, "assetgate; fwd=miss")
        );
    }
    assert_eq!(
        upstream.heads.lock().unwrap().len(),
        asked + 3,
        "once per request from then on"
    );
}

/// Answers from the cache carry the default `Cache-Control` of the config in force: a
/// reload that changes it (and leaves the storage as it was, so its entries stay) reaches
/// entries cached before it.
#[tokio::test]
async fn a_reloaded_default_cache_control_reaches_answers_from_the_cache() {
    let bucket = "cache-reloaded-policy";
    seaweed().seed(bucket, &[("plain.bin", &pattern(5000, 6))]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    // With a master key a storage's revision is its definition's: the same after a reload.
    let toml = |max_age: u32| {
        let cache = format!(
            "memory = \"64MiB\"\nfreshness = \"1h\"\ncache_control = \"private, max-age={max_age}\"\n\
             [registry]\nmaster_key = \"{}\"\ndata_dir = \"{}\"",
            crate::cache_disk::MASTER_KEY,
            dir.path().display()
        );
        gateway_config(&relay, bucket, &cache, "")
    };
    let gw = TestGateway::start(&toml(60)).await;
    let url = gw.url("acme", "main", bucket, "plain.bin");
    for expected in ["assetgate; fwd=miss; stored", "assetgate; hit"] {
        let reply = read(&url, &[]).await;
        assert_eq!(reply.header("cache-status"), expected);
        assert_eq!(reply.header("cache-control"), "private, max-age=60");
    }
    let reloaded = assetgate::config::Config::from_toml(&toml(7), &|_| None).unwrap();
    gw.gateway.reload(&reloaded);
    let reply = read(&url, &[]).await;
    assert_eq!(reply.header("cache-status"), "assetgate; hit");
    assert_eq!(reply.header("cache-control"), "private, max-age=7");
    assert_eq!(reply.body, pattern(5000, 6));
}

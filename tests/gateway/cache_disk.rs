//! The edge cache's disk tier (README, "Edge cache") against SeaweedFS, through a counting
//! relay of the test's own: entries survive a restart and are served without their bytes
//! crossing again, nothing rests on disk in the clear, a damaged file or a full disk cost
//! only the disk tier (the bucket answers, with the right bytes), storages with the cache
//! off leave nothing on disk, and a purge empties it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::client::{get, Reply};
use crate::support::relay::Relay;
use crate::support::seaweed::seaweed;
use crate::support::tmpfs::Tmpfs;
use crate::support::*;

const MIB: usize = 1 << 20;
pub const MASTER_KEY: &str = "ZGlzay10aWVyLXRlc3QtbWFzdGVyLWtleS0zMi1ieXQ=";

/// A gateway whose storage `main` of org `acme` reads `bucket` through `relay`, with a disk
/// tier of `size` in `disk`, its registry in `data`.
async fn gateway(relay: &Relay, bucket: &str, disk: &Path, size: &str, data: &Path, extra: &str) -> TestGateway {
    let sections = format!(
        "[cache]\nmemory = \"64MiB\"\ndisk = {{ path = \"{}\", size = \"{size}\" }}\n\
         [registry]\nmaster_key = \"{MASTER_KEY}\"\ndata_dir = \"{}\"\n",
        disk.display(),
        data.display()
    );
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}{extra}\n",
        storage("main", &relay.endpoint, &[bucket], &seaweed().reader)
    );
    TestGateway::start(&format!("{}\n{org}", config("", &sections))).await
}

async fn read(url: &str) -> Reply {
    get(url, &[("authorization", &format!("Bearer {}", token("acme")))]).await
}

/// The files of the disk tier, with their sizes.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for folder in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
            if file.path().extension().is_none() {
                out.push((file.path(), file.metadata().unwrap().len()));
            }
        }
    }
    out
}

/// Waits until the disk tier holds `count` files (it writes behind the response).
async fn wait_for_files(dir: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(dir).len() < count {
        assert!(Instant::now() < deadline, "{} files of {count}", files(dir).len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn disk_errors(gw: &TestGateway) -> u64 {
    gw.gateway.cache.as_ref().unwrap().metrics().disk_errors.get()
}

#[tokio::test]
async fn entries_survive_a_restart_and_nothing_rests_on_disk_in_the_clear() {
    let bucket = "disk-restart";
    let data = pattern(2 * MIB + 4_321, 11);
    let key = "patients/jane-doe/scan.tif";
    seaweed().seed(bucket, &[(key, &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let (disk, registry) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let url = gw.url("acme", "main", bucket, key);
    let first = read(&url).await;
    assert_eq!(
        (first.status.as_u16(), first.header("cache-status")),
        (200, "assetgate; fwd=miss; stored")
    );
    assert_eq!(first.body, data);
    // The object's entry and its three slices.
    wait_for_files(disk.path(), 4).await;
    gw.stop().await;

    let on_disk: u64 = files(disk.path()).iter().map(|f| f.1).sum();
    assert!(on_disk > data.len() as u64, "{on_disk}");
    for (path, _) in files(disk.path()) {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.to_string_lossy().to_string();
        assert!(!name.contains("jane") && !name.contains(bucket), "{name}");
        for needle in [
            &b"jane-doe"[..],
            bucket.as_bytes(),
            b"acme",
            first.header("etag").as_bytes(),
            &data[MIB..MIB + 32],
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{name} holds something in the clear"
            );
        }
    }

    let (requests, bytes) = (relay.requests(), relay.bytes());
    let again = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let url = again.url("acme", "main", bucket, key);
    let second = read(&url).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, data);
    assert_eq!(second.header("cache-status"), "assetgate; fwd=stale; fwd-status=304");
    for name in ["etag", "content-type", "last-modified", "content-length"] {
        assert_eq!(second.header(name), first.header(name), "{name}");
    }
    let seen = relay.seen();
    assert_eq!(seen.len(), requests + 1, "one conditional request: {seen:?}");
    assert!(seen.last().unwrap().if_none_match);
    assert_eq!(relay.bytes(), bytes, "no object byte crossed after the restart");
    // A range within the object, from disk too.
    let r = get(
        &url,
        &[
            ("authorization", &format!("Bearer {}", token("acme"))),
            ("range", "bytes=1048000-1049000"),
        ],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[1_048_000..=1_049_000]);
    assert_eq!(relay.bytes(), bytes);
    assert_eq!(disk_errors(&again), 0);
}

#[tokio::test]
async fn a_damaged_disk_entry_is_never_served_and_the_bucket_answers() {
    let bucket = "disk-damaged";
    let data = pattern(3 * MIB, 12);
    seaweed().seed(bucket, &[("video.mp4", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let (disk, registry) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let url = gw.url("acme", "main", bucket, "video.mp4");
    assert_eq!(read(&url).await.body, data);
    wait_for_files(disk.path(), 4).await;
    gw.stop().await;
    // Every slice is damaged in another way: a flipped byte, a cut, another slice's file.
    let mut slices: Vec<(PathBuf, u64)> = files(disk.path()).into_iter().filter(|f| f.1 > MIB as u64).collect();
    slices.sort();
    assert_eq!(slices.len(), 3);
    let mut flipped = std::fs::read(&slices[0].0).unwrap();
    flipped[MIB / 2] ^= 0x20;
    std::fs::write(&slices[0].0, flipped).unwrap();
    let cut = std::fs::read(&slices[1].0).unwrap();
    std::fs::write(&slices[1].0, &cut[..cut.len() - 1000]).unwrap();
    std::fs::copy(&slices[0].0, &slices[2].0).unwrap();

    let bytes = relay.bytes();
    let again = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let r = read(&again.url("acme", "main", bucket, "video.mp4")).await;
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the bytes are the object's, never a damaged file's");
    assert_eq!(disk_errors(&again), 3, "each damaged file is counted");
    assert_eq!(
        relay.bytes() - bytes,
        data.len() as u64,
        "the three slices came from the bucket"
    );
    // And were written again: the next restart serves them from disk.
    wait_for_files(disk.path(), 4).await;
    let metrics = again.metrics().await;
    assert!(metrics.contains("assetgate_cache_disk_errors_total 3"), "{metrics}");
    assert!(
        metrics.contains("assetgate_cache_size_bytes{tier=\"disk\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_disk_costs_only_the_disk_tier() {
    let bucket = "disk-full";
    let (one, two) = (pattern(2 * MIB, 13), pattern(2 * MIB, 14));
    seaweed().seed(bucket, &[("one.bin", &one), ("two.bin", &two)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let tmpfs = Tmpfs::mount("3m");
    let dir = tmpfs.0.join("cache");
    let registry = tempfile::tempdir().unwrap();
    let gw = gateway(&relay, bucket, &dir, "1GiB", registry.path(), "").await;
    let filler = tmpfs.fill();
    let url = gw.url("acme", "main", bucket, "one.bin");
    let first = read(&url).await;
    assert_eq!(
        (first.status.as_u16(), first.header("cache-status")),
        (200, "assetgate; fwd=miss; stored")
    );
    assert!(first.body == one);
    let deadline = Instant::now() + Duration::from_secs(10);
    while disk_errors(&gw) < 3 {
        assert!(
            Instant::now() < deadline,
            "writes to a full disk are counted: {}",
            disk_errors(&gw)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(files(&dir).is_empty(), "nothing half-written is left");
    // The memory tier still serves.
    let bytes = relay.bytes();
    let second = read(&url).await;
    assert!(second.body == one);
    assert_eq!(second.header("cache-status"), "assetgate; fwd=stale; fwd-status=304");
    assert_eq!(relay.bytes(), bytes);
    // Room again: the disk tier works again without a restart.
    std::fs::remove_file(filler).unwrap();
    let url = gw.url("acme", "main", bucket, "two.bin");
    assert!(read(&url).await.body == two);
    wait_for_files(&dir, 3).await;
}

#[tokio::test]
async fn storages_with_the_cache_off_and_no_store_objects_leave_nothing_on_disk_and_a_purge_empties_it() {
    let bucket = "disk-off-and-purge";
    let data = pattern(MIB + 1, 15);
    seaweed().seed(bucket, &[("a.bin", &data)]).await;
    let relay = Relay::start(&seaweed().endpoint).await;
    let (disk, registry) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let off = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "cache = false").await;
    let r = read(&off.url("acme", "main", bucket, "a.bin")).await;
    assert!(r.body == data);
    assert_eq!(r.header("cache-status"), "assetgate; fwd=bypass");
    off.stop().await;
    // Nor does an object the bucket says `no-store` of, on a storage with the cache on.
    seaweed()
        .writer()
        .put_with(bucket, "secret.dcm", &[("cache-control", "no-store")], pattern(MIB, 16))
        .await
        .unwrap();
    let on = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let r = read(&on.url("acme", "main", bucket, "secret.dcm")).await;
    assert_eq!(
        (r.status.as_u16(), r.header("cache-status")),
        (200, "assetgate; fwd=miss")
    );
    on.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(files(disk.path()).is_empty(), "{:?}", files(disk.path()));

    let on = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    assert!(read(&on.url("acme", "main", bucket, "a.bin")).await.body == data);
    wait_for_files(disk.path(), 3).await;
    on.stop().await;
    // After a restart, the entries are on disk only: a purge finds them there.
    let again = gateway(&relay, bucket, disk.path(), "64MiB", registry.path(), "").await;
    let purge = assetgate::cache::Purge {
        org: "acme".into(),
        ..Default::default()
    };
    assert_eq!(again.gateway.cache.as_ref().unwrap().purge(&purge).await, 1);
    assert!(files(disk.path()).is_empty());
}

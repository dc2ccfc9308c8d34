//! Many replicas, one registry (README "Many replicas, one registry"): two or three `assetgate serve` processes sharing a
//! real PostgreSQL, SeaweedFS behind them. Changes made through one replica are in effect on
//! the others within a second; creates race to one 201; stale `If-Match` answers 412; the
//! database holds no secret in the clear; replicas serve on while it is down and catch up
//! when it is back; embedded stores migrate and keys rotate; usage adds up over replicas and
//! limits set through one hold on the others.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::support::binary::{Served, ADMIN_TOKEN};
use crate::support::client::{get, request_body, Reply};
use crate::support::postgres::{database, sql, Postgres, PASSWORD};
use crate::support::seaweed::seaweed;
use crate::support::*;

pub(crate) const BUCKET: &str = "replica-assets";

pub(crate) fn key(byte: u8) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [byte; 32])
}

/// The `[registry]` section of a replica of `url`.
pub(crate) fn registry(url: &str, extra: &str) -> String {
    format!(
        "[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\nresync_interval = \"5s\"\n{extra}\n",
        key(1)
    )
}

/// A replica with `registry` as its `[registry]` section, started in a directory of its own.
pub(crate) struct Replica {
    pub(crate) served: Served,
    _dir: tempfile::TempDir,
}

impl Replica {
    pub(crate) fn start(registry: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let served = Served::start(dir.path(), "", registry);
        Replica { served, _dir: dir }
    }

    /// Started, and ready (the shared registry loaded).
    pub(crate) async fn ready(registry: &str) -> Replica {
        let replica = Replica::start(registry);
        replica.wait_ready().await;
        replica
    }

    pub(crate) async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.served.admin);
        within(Duration::from_secs(20), "the replica to be ready", || async {
            get(&url, &[]).await.status == 200
        })
        .await;
    }

    pub(crate) async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        request_body(method, &format!("http://{}{path}", self.served.admin), &all, body).await
    }

    /// Creates storage `id` of org acme on the shared bucket, through this replica.
    pub(crate) async fn create(&self, id: &str) {
        let r = self
            .admin(
                Method::POST,
                "/admin/v1/orgs/acme/storages",
                Some(storage_body(id, &reader_secret())),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }

    /// The data plane's answer for `key` of storage `id` of org acme.
    pub(crate) async fn object(&self, id: &str, key: &str) -> Reply {
        let url = format!(
            "http://{}/v1/orgs/acme/storages/{id}/objects/{BUCKET}/{key}?token={}",
            self.served.data,
            token("acme")
        );
        get(&url, &[]).await
    }

    async fn external_id(&self, org: &str) -> String {
        let r = self
            .admin(Method::GET, &format!("/admin/v1/orgs/{org}/external-id"), None, &[])
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["data"]["externalId"].as_str().unwrap().to_string()
    }
}

pub(crate) fn storage_body(id: &str, secret: &str) -> Value {
    let sw = seaweed();
    json!({"_id": id, "type": "s3_compatible", "buckets": [BUCKET], "endpoint": sw.endpoint.to_string(),
           "credentials": {"accessKeyId": sw.reader.access_key_id, "secretAccessKey": secret}})
}

pub(crate) fn reader_secret() -> String {
    seaweed().reader.secret_access_key.expose().to_string()
}

pub(crate) async fn seed() {
    seaweed().seed(BUCKET, &[("a.txt", b"replicated bytes")]).await;
}

#[tokio::test]
async fn a_change_on_one_replica_is_in_effect_on_the_others_within_a_second() {
    seed().await;
    let (_, url) = database();
    let (a, b) = (
        Replica::ready(&registry(&url, "")).await,
        Replica::ready(&registry(&url, "")).await,
    );
    let external_id = a.external_id("acme").await;
    assert_eq!(b.external_id("acme").await, external_id, "one external ID per org");

    let created = a
        .admin(
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body("shared", &reader_secret())),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let took = within(Duration::from_secs(5), "B to serve the new storage", || async {
        b.object("shared", "a.txt").await.status == 200
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "created on A, served by B after {took:?}"
    );
    assert_eq!(b.object("shared", "a.txt").await.body, "replicated bytes");
    let listed = b
        .admin(Method::GET, "/admin/v1/orgs/acme/storages/shared", None, &[])
        .await;
    assert_eq!(listed.status, 200);

    let rotate = |secret: &str| json!({"credentials": {"secretAccessKey": secret}});
    let r = b
        .admin(
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/shared",
            Some(rotate("wrong-secret")),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let took = within(Duration::from_secs(5), "A to sign with the rotated secret", || async {
        a.object("shared", "a.txt").await.status == 502
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "rotated on B, re-signed on A after {took:?}"
    );
    let r = b
        .admin(
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/shared",
            Some(rotate(&reader_secret())),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    within(
        Duration::from_secs(1),
        "A to sign with the right secret again",
        || async { a.object("shared", "a.txt").await.status == 200 },
    )
    .await;

    let r = a
        .admin(Method::DELETE, "/admin/v1/orgs/acme/storages/shared", None, &[])
        .await;
    assert_eq!(r.status, 200);
    // The org's last storage: the org itself is gone (404 unknown_org).
    let took = within(Duration::from_secs(5), "B to refuse the deleted storage", || async {
        let r = b.object("shared", "a.txt").await;
        r.status == 404 && ["unknown_storage", "unknown_org"].contains(&r.error_code().as_str())
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "deleted on A, refused by B after {took:?}"
    );
    assert_eq!(
        b.admin(Method::GET, "/admin/v1/orgs/acme/storages/shared", None, &[])
            .await
            .status,
        404
    );

    drop(a);
    let restarted = Replica::ready(&registry(&url, "")).await;
    assert_eq!(
        restarted.external_id("acme").await,
        external_id,
        "stable across restarts"
    );
    let logs = restarted.served.logs() + &b.served.logs();
    assert!(!logs.contains(PASSWORD), "the database password is never logged");
}

#[tokio::test]
async fn usage_adds_up_over_replicas_and_limits_set_on_one_hold_on_the_other() {
    seed().await;
    let (_, url) = database();
    let (a, b) = (
        Replica::ready(&registry(&url, "")).await,
        Replica::ready(&registry(&url, "")).await,
    );
    let created = a
        .admin(
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body("billed", &reader_secret())),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    within(Duration::from_secs(5), "B to serve the new storage", || async {
        b.object("billed", "a.txt").await.status == 200
    })
    .await;
    // One request on B above; three more on A and one more on B: 5 requests, 16 bytes each.
    for replica in [&a, &a, &a, &b] {
        assert_eq!(replica.object("billed", "a.txt").await.status, 200);
    }
    let usage = || async {
        let r = b.admin(Method::GET, "/admin/v1/orgs/acme/usage", None, &[]).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["data"]["usage"].clone()
    };
    // Each replica flushes every 5 s. Each has its own edge cache: the object came from the
    // bucket once to each (16 + 16 upstream bytes).
    within(
        Duration::from_secs(15),
        "both replicas' counts in the registry",
        || async {
            usage().await.as_array().is_some_and(|rows| {
                rows.iter().any(|row| {
                    row["storage"] == "billed"
                        && row["requests"] == 5
                        && row["bytes"] == 80
                        && row["upstream_bytes"] == 32
                })
            })
        },
    )
    .await;

    let put = a
        .admin(
            Method::PUT,
            "/admin/v1/orgs/acme/limits",
            Some(json!({"limits": {"requests_per_second": 1, "burst": 1}})),
            &[],
        )
        .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json()["data"]["source"], "api");
    let took = within(Duration::from_secs(5), "B to apply A's limits", || async {
        b.object("billed", "a.txt").await.status == 429
    })
    .await;
    assert!(
        took < Duration::from_secs(2),
        "limits set on A held on B after {took:?}"
    );
    let read = b.admin(Method::GET, "/admin/v1/orgs/acme/limits", None, &[]).await;
    assert_eq!(read.json()["data"]["limits"]["requests_per_second"], 1);

    let removed = b
        .admin(Method::PUT, "/admin/v1/orgs/acme/limits", Some(json!({})), &[])
        .await;
    assert_eq!(removed.status, 200);
    within(Duration::from_secs(5), "A to drop the limits", || async {
        let burst = futures::future::join_all((0..3).map(|_| a.object("billed", "a.txt"))).await;
        burst.iter().all(|r| r.status == 200)
    })
    .await;
}

#[tokio::test]
async fn creates_race_to_one_201_and_a_stale_if_match_is_412() {
    seed().await;
    let (_, url) = database();
    let (a, b) = (
        Replica::ready(&registry(&url, "")).await,
        Replica::ready(&registry(&url, "")).await,
    );
    for round in 0..5 {
        let id = format!("raced-{round}");
        let body = storage_body(&id, &reader_secret());
        let (ra, rb) = tokio::join!(
            a.admin(Method::POST, "/admin/v1/orgs/acme/storages", Some(body.clone()), &[]),
            b.admin(Method::POST, "/admin/v1/orgs/acme/storages", Some(body), &[]),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
        let conflict = if ra.status == 409 { &ra } else { &rb };
        assert_eq!(conflict.json()["error"]["code"], "conflict");
    }

    let read = a
        .admin(Method::GET, "/admin/v1/orgs/acme/storages/raced-0", None, &[])
        .await;
    let first = read.header("etag").to_string();
    assert!(first.starts_with('"') && first.len() > 2, "{first:?}");
    let renamed = b
        .admin(
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/raced-0",
            Some(json!({"name": "renamed on B"})),
            &[("if-match", &first)],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", String::from_utf8_lossy(&renamed.body));
    let second = renamed.header("etag").to_string();
    assert_ne!(first, second);
    // A may not have heard of B's change yet: the database decides, and says stale.
    for (method, body) in [
        (Method::PATCH, Some(json!({"name": "lost update"}))),
        (Method::DELETE, None),
    ] {
        let r = a
            .admin(
                method,
                "/admin/v1/orgs/acme/storages/raced-0",
                body,
                &[("if-match", &first)],
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), r.json()["error"]["code"].as_str()),
            (412, Some("precondition_failed"))
        );
    }
    // Propagation takes milliseconds (benches/registry.rs measures it); the bound here is
    // loose because the whole suite shares two cores.
    within(Duration::from_secs(5), "A to see B's change", || async {
        a.admin(Method::GET, "/admin/v1/orgs/acme/storages/raced-0", None, &[])
            .await
            .header("etag")
            == second
    })
    .await;
    let deleted = a
        .admin(
            Method::DELETE,
            "/admin/v1/orgs/acme/storages/raced-0",
            None,
            &[("if-match", &second)],
        )
        .await;
    assert_eq!(deleted.status, 200);
}

#[tokio::test]
async fn the_database_holds_no_secret_in_the_clear() {
    seed().await;
    let (name, url) = database();
    let a = Replica::ready(&registry(&url, "")).await;
    let secret = "a-storage-secret-for-pg-dump-0123";
    let r = a
        .admin(
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body("dumped", secret)),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    let dump = crate::support::postgres::postgres().dump(&name);
    assert!(dump.contains("dumped"), "the storage is in the dump");
    assert!(!dump.contains(secret), "the secret is in the dump in the clear");
    assert!(!dump.contains(&key(1)), "the master key is in the dump");
}

#[tokio::test]
async fn replicas_serve_on_while_the_database_is_down_and_catch_up_when_it_is_back() {
    seed().await;
    let pg = Postgres::start("outage");
    let url = pg.database("registry");
    let (a, b) = (
        Replica::ready(&registry(&url, "")).await,
        Replica::ready(&registry(&url, "")).await,
    );
    let r = a
        .admin(
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body("held", &reader_secret())),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    within(Duration::from_secs(5), "B to serve the storage", || async {
        b.object("held", "a.txt").await.status == 200
    })
    .await;

    pg.stop();
    let late = Replica::start(&registry(&url, ""));
    for _ in 0..10 {
        for replica in [&a, &b] {
            let r = replica.object("held", "a.txt").await;
            assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"replicated bytes"[..]));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = a
        .admin(
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body("new", &reader_secret())),
            &[],
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()["error"]["code"].as_str()),
        (503, Some("registry_unavailable"))
    );
    for replica in [&a, &b] {
        assert_eq!(
            get(&format!("http://{}/readyz", replica.served.admin), &[])
                .await
                .status,
            200
        );
    }
    let not_ready = get(&format!("http://{}/readyz", late.served.admin), &[]).await;
    assert_eq!(
        (not_ready.status.as_u16(), not_ready.json()["status"].as_str()),
        (503, Some("loading")),
        "a replica that never loaded the registry is not ready"
    );

    pg.resume();
    within(Duration::from_secs(20), "B to write again", || async {
        let r = b
            .admin(
                Method::POST,
                "/admin/v1/orgs/acme/storages",
                Some(storage_body("new", &reader_secret())),
                &[],
            )
            .await;
        r.status == 201 || r.status == 409
    })
    .await;
    for replica in [&a, &late] {
        within(
            Duration::from_secs(20),
            "every replica to serve the new storage",
            || async { replica.object("new", "a.txt").await.status == 200 },
        )
        .await;
    }
    late.wait_ready().await;
}

/// `assetgate registry ...` with a config file of `registry`.
pub(crate) fn registry_command(dir: &Path, args: &[&str], registry: &str) -> (bool, String) {
    let config = dir.join("registry-command.toml");
    std::fs::write(&config, format!("{}\n{registry}", config_text())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .arg("registry")
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn config_text() -> String {
    config("", "")
}

#[tokio::test]
async fn an_embedded_store_migrates_idempotently_and_the_master_key_rotates() {
    seed().await;
    let embedded_dir = tempfile::tempdir().unwrap();
    let embedded = format!(
        "[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        embedded_dir.path().display(),
        key(1)
    );
    let external_id = {
        let single = Replica::ready(&embedded).await;
        for id in ["first", "second"] {
            single.create(id).await;
        }
        single.external_id("acme").await
    };
    let (name, url) = database();
    let work = tempfile::tempdir().unwrap();
    let from = embedded_dir.path().to_str().unwrap();
    let (ok, out) = registry_command(work.path(), &["migrate", "--from", from], &registry(&url, ""));
    assert!(ok, "{out}");
    assert!(out.contains("copied 2 storages and 1 external IDs"), "{out}");
    let (ok, again) = registry_command(work.path(), &["migrate", "--from", from], &registry(&url, ""));
    assert!(
        ok && again.contains("copied 0 storages") && again.contains("2 storages were there already"),
        "{again}"
    );

    let shared = Replica::ready(&registry(&url, "")).await;
    assert_eq!(shared.external_id("acme").await, external_id);
    assert_eq!(shared.object("first", "a.txt").await.body, "replicated bytes");
    drop(shared);

    // Rotation: the new key seals, the old one still opens, reseal, then the old key goes.
    let rotating = format!(
        "[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nprevious_master_keys = [\"{}\"]\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        key(2),
        key(1)
    );
    let during = Replica::ready(&rotating).await;
    assert_eq!(during.object("second", "a.txt").await.status, 200);
    drop(during);
    let (ok, out) = registry_command(work.path(), &["reseal"], &rotating);
    assert!(ok && out.contains("resealed 2 storages"), "{out}");
    let after = format!(
        "[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        key(2)
    );
    let rotated = Replica::ready(&after).await;
    assert_eq!(rotated.object("first", "a.txt").await.body, "replicated bytes");
    let dump = crate::support::postgres::postgres().dump(&name);
    assert!(!dump.contains(&reader_secret()));
}

#[tokio::test]
async fn the_shared_registry_is_reached_over_tls_whose_certificate_is_verified() {
    let (pg, ca) = Postgres::start_tls("tls");
    let url = pg.database("registry");
    let files = tempfile::tempdir().unwrap();
    let trusted = files.path().join("db-ca.pem");
    std::fs::write(&trusted, ca).unwrap();
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", trusted.display());
    let replica = Replica::ready(&registry(&verified, "")).await;
    assert!(replica.external_id("acme").await.len() >= 32);

    // A server whose certificate no configured CA signed is never trusted, not even by
    // sslmode=require (stricter than libpq, which would not check it).
    let stranger = files.path().join("other-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(&stranger, other.cert.pem()).unwrap();
    let untrusted = Replica::start(&registry(
        &format!("{url}?sslmode=require&sslrootcert={}", stranger.display()),
        "",
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = get(&format!("http://{}/readyz", untrusted.served.admin), &[]).await;
    assert_eq!((r.status.as_u16(), r.json()["status"].as_str()), (503, Some("loading")));
    assert!(
        untrusted.served.logs().to_lowercase().contains("certificate"),
        "{}",
        untrusted.served.logs()
    );
}

/// `sslmode=prefer` falls back to plain text whenever the server offers no TLS, which anyone
/// on the path can arrange: the replica works, and says so at start.
#[tokio::test]
async fn sslmode_prefer_is_warned_about_at_start() {
    let (_, url) = database();
    let replica = Replica::ready(&registry(&format!("{url}?sslmode=prefer"), "")).await;
    let logs = replica.served.logs();
    assert!(
        logs.contains("sslmode=prefer") && logs.contains("verify-full"),
        "{logs}"
    );
    assert!(!logs.contains(PASSWORD), "the password is never logged");
}

/// Two replicas of one database whose cache serves for an hour without asking the bucket,
/// and storage `id` created through A, whose `a.txt` B has cached: the database's URL, A, B.
async fn cached_on_the_other_replica(id: &str) -> (String, Replica, Replica) {
    seed().await;
    let (_, url) = database();
    let config = format!("{}[cache]\nfreshness = \"1h\"\n", registry(&url, ""));
    let (a, b) = (Replica::ready(&config).await, Replica::ready(&config).await);
    a.create(id).await;
    within(Duration::from_secs(5), "B to serve the new storage", || async {
        b.object(id, "a.txt").await.status == 200
    })
    .await;
    assert_eq!(b.object(id, "a.txt").await.header("cache-status"), "assetgate; hit");
    (url, a, b)
}

#[tokio::test]
async fn what_one_replica_cached_is_never_served_after_a_change_through_another() {
    // Duration freshness: B does not ask the bucket again, so only the storage's new revision,
    // arriving through the shared registry, can keep B from serving what it cached.
    let (_, a, b) = cached_on_the_other_replica("rotated").await;
    let limited = &seaweed().limited;
    let patched = a
        .admin(
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/rotated",
            Some(json!({"credentials": {"accessKeyId": limited.access_key_id,
                                        "secretAccessKey": limited.secret_access_key.expose()}})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.body));
    within(Duration::from_secs(5), "B to use the rotated credentials", || async {
        b.object("rotated", "a.txt").await.status == 403
    })
    .await;
    // B dropped what it held of the old revision when the change reached it.
    let metrics = b.served.metrics().await;
    assert!(
        metrics.contains("assetgate_cache_size_bytes{tier=\"memory\"} 0"),
        "{metrics}"
    );
    for _ in 0..3 {
        assert_eq!(
            b.object("rotated", "a.txt").await.status,
            403,
            "a cached answer came back"
        );
    }
    let deleted = a
        .admin(Method::DELETE, "/admin/v1/orgs/acme/storages/rotated", None, &[])
        .await;
    assert_eq!(deleted.status, 200);
    within(Duration::from_secs(5), "B to forget the storage", || async {
        b.object("rotated", "a.txt").await.status == 404
    })
    .await;
}

#[tokio::test]
async fn a_purge_through_one_replica_empties_every_replicas_cache_and_a_forged_one_none() {
    // Duration freshness: B does not ask the bucket again, so only the purge empties it.
    let (url, a, b) = cached_on_the_other_replica("purged").await;

    // A purge row written by someone with a database login but not the master key, and
    // its notice, change nothing.
    let db = sql(&url).await;
    db.execute(
        "INSERT INTO assetgate_cache_purges (org, purge, tag) VALUES ('acme', '{}', 'Zm9yZ2Vk')",
        &[],
    )
    .await
    .unwrap();
    db.execute("SELECT pg_notify('assetgate_registry', 'p acme')", &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.object("purged", "a.txt").await.header("cache-status"),
        "assetgate; hit"
    );
    assert!(
        b.served.logs().contains("not authenticated by the master key"),
        "{}",
        b.served.logs()
    );

    let purged = a
        .admin(
            Method::DELETE,
            "/admin/v1/orgs/acme/cache",
            Some(json!({"storage": "purged"})),
            &[],
        )
        .await;
    assert_eq!(purged.status, 202, "{}", String::from_utf8_lossy(&purged.body));
    let started = std::time::Instant::now();
    within(Duration::from_secs(5), "the purge to reach B", || async {
        b.object("purged", "a.txt").await.header("cache-status") == "assetgate; fwd=miss; stored"
    })
    .await;
    println!("the purge reached the other replica in {:?}", started.elapsed());
}

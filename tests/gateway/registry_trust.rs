//! Whoever can reach the shared registry's database is not trusted beyond what it can already
//! read (README, "Many replicas, one registry"): a row no replica can read is skipped and
//! reported without stopping the others; a row copied to another org or edited in the
//! database is refused like a corrupt one; `registry reseal` says which rows it left alone
//! and exits 1. Rows are planted with plain SQL, as a database login would.

use std::time::Duration;

use http::Method;
use serde_json::json;

use crate::replicas::{registry, registry_command, seed, Replica, BUCKET};
use crate::support::binary::metric;
use crate::support::client::get;
use crate::support::postgres::{database, sql};
use crate::support::*;

/// Announces a change of storage `org/id`, as every write does.
async fn notify(db: &tokio_postgres::Client, org: &str, id: &str) {
    db.execute(
        "SELECT pg_notify('assetgate_registry', $1)",
        &[&format!("s {org} {id}")],
    )
    .await
    .unwrap();
}

/// Writes `record` (JSON text) as storage `org/id`.
async fn plant(db: &tokio_postgres::Client, org: &str, id: &str, record: &str) {
    db.execute(
        "INSERT INTO assetgate_storages (org, id, record, version) VALUES ($1, $2, $3::text::jsonb, 1)",
        &[&org, &id, &record],
    )
    .await
    .unwrap();
    notify(db, org, id).await;
}

/// The `badRows` count of a replica's `/readyz`, which must say ready.
async fn bad_rows(replica: &Replica) -> u64 {
    let r = get(&format!("http://{}/readyz", replica.served.admin), &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["badRows"].as_u64().unwrap()
}

/// Waits until `replica` reports `count` unreadable rows; says how long that took.
async fn until_bad_rows(replica: &Replica, count: u64) -> Duration {
    within(Duration::from_secs(10), "the replica to report the row", || async {
        bad_rows(replica).await == count
    })
    .await
}

#[tokio::test]
async fn an_unreadable_row_is_skipped_while_the_rest_load_and_change_within_a_second() {
    seed().await;
    let (_, url) = database();
    let a = Replica::ready(&registry(&url, "")).await;
    let b = Replica::ready(&registry(&url, "")).await;
    a.create("first").await;
    let db = sql(&url).await;

    // A provider written by a newer version, in a rolling upgrade.
    let future = json!({"org": "acme", "id": "from-the-future", "name": "f", "provider": "quantum",
        "buckets": [BUCKET], "endpoint": null, "createdAt": "t", "updatedAt": "t"});
    plant(&db, "acme", "from-the-future", &future.to_string()).await;
    let took = until_bad_rows(&b, 1).await;
    assert!(took < Duration::from_secs(1), "reported after {took:?}");
    assert!(b.served.logs().contains("from-the-future"), "a log line names the row");
    assert_eq!(metric(&b.served.metrics().await, "assetgate_registry_bad_rows "), 1.0);

    // Changes keep arriving at once: the registry did not count as unreachable.
    a.create("second").await;
    let took = within(Duration::from_secs(5), "B to serve the new storage", || async {
        b.object("second", "a.txt").await.status == 200
    })
    .await;
    assert!(took < Duration::from_secs(1), "served by B after {took:?}");
    let deleted = a
        .admin(Method::DELETE, "/admin/v1/orgs/acme/storages/first", None, &[])
        .await;
    assert_eq!(deleted.status, 200);
    let took = within(Duration::from_secs(5), "B to refuse the deleted storage", || async {
        b.object("first", "a.txt").await.status == 404
    })
    .await;
    assert!(took < Duration::from_secs(1), "refused by B after {took:?}");

    // A replica that starts now loads and is ready, with the row counted.
    let c = Replica::ready(&registry(&url, "")).await;
    assert_eq!(c.object("second", "a.txt").await.body, "replicated bytes");
    assert_eq!(bad_rows(&c).await, 1);

    // Not even JSON of a storage: skipped the same way.
    plant(&db, "acme", "garbled", r#"{"not": "a storage"}"#).await;
    until_bad_rows(&c, 2).await;
    until_bad_rows(&b, 2).await;

    // The operator can delete what no replica can read; every replica follows.
    for id in ["from-the-future", "garbled"] {
        let r = c
            .admin(Method::DELETE, &format!("/admin/v1/orgs/acme/storages/{id}"), None, &[])
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    until_bad_rows(&b, 0).await;
    assert_eq!(b.object("second", "a.txt").await.status, 200);
}

#[tokio::test]
async fn a_row_copied_to_another_org_or_edited_in_the_database_is_refused() {
    seed().await;
    let (_, url) = database();
    let a = Replica::ready(&registry(&url, "")).await;
    let b = Replica::ready(&registry(&url, "")).await;
    a.create("vault").await;
    within(Duration::from_secs(5), "B to serve the storage", || async {
        b.object("vault", "a.txt").await.status == 200
    })
    .await;
    let db = sql(&url).await;

    // acme's storage, with acme's credentials, copied to globex.
    db.execute(
        "INSERT INTO assetgate_storages (org, id, record, version)
         SELECT 'globex', 'copied', record, version FROM assetgate_storages WHERE org = 'acme' AND id = 'vault'",
        &[],
    )
    .await
    .unwrap();
    notify(&db, "globex", "copied").await;
    let took = until_bad_rows(&b, 1).await;
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
    let stolen = format!(
        "http://{}/v1/orgs/globex/storages/copied/objects/{BUCKET}/a.txt?token={}",
        b.served.data,
        token("globex")
    );
    assert_eq!(get(&stolen, &[]).await.status, 404, "never served to globex");

    // acme's own row, pointed somewhere else.
    db.execute(
        "UPDATE assetgate_storages SET record = jsonb_set(record, '{endpoint}', '\"https://evil.example\"'),
         version = version + 1 WHERE org = 'acme' AND id = 'vault'",
        &[],
    )
    .await
    .unwrap();
    notify(&db, "acme", "vault").await;
    until_bad_rows(&b, 2).await;
    let refused = b.object("vault", "a.txt").await;
    assert_eq!(refused.status, 404, "no longer served (acme has no other storage)");
    assert!(b.served.logs().contains("not authenticated"), "{}", b.served.logs());

    // reseal cannot vouch for them: it names both and exits 1.
    let work = tempfile::tempdir().unwrap();
    let (ok, out) = registry_command(work.path(), &["reseal"], &registry(&url, ""));
    assert!(!ok, "{out}");
    assert!(
        out.contains("acme/vault") && out.contains("globex/copied") && out.contains("2 could not be resealed"),
        "{out}"
    );
    for path in [
        "/admin/v1/orgs/acme/storages/vault",
        "/admin/v1/orgs/globex/storages/copied",
    ] {
        assert_eq!(b.admin(Method::DELETE, path, None, &[]).await.status, 200);
    }
    until_bad_rows(&b, 0).await;

    // A record without a tag (written before records were authenticated, or stripped of it)
    // is refused too, until an operator who trusts the database authenticates it.
    a.create("legacy").await;
    db.execute(
        "UPDATE assetgate_storages SET record = record - 'mac', version = version + 1
         WHERE org = 'acme' AND id = 'legacy'",
        &[],
    )
    .await
    .unwrap();
    notify(&db, "acme", "legacy").await;
    until_bad_rows(&b, 1).await;
    let (ok, out) = registry_command(work.path(), &["reseal"], &registry(&url, ""));
    assert!(!ok && out.contains("--authenticate-legacy"), "{out}");
    let (ok, out) = registry_command(work.path(), &["reseal", "--authenticate-legacy"], &registry(&url, ""));
    assert!(ok && out.contains("resealed 1 storages"), "{out}");
    let took = within(Duration::from_secs(5), "B to serve the resealed storage", || async {
        b.object("legacy", "a.txt").await.status == 200
    })
    .await;
    assert!(took < Duration::from_secs(1), "served again after {took:?}");
    assert_eq!(bad_rows(&b).await, 0);
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Any database login may send notices. A flood of them (distinct names, past the bound a
/// replica keeps, and one name over and over) costs bounded memory, and a real change, made
/// during the flood or after it, is in effect within a second of its end.
#[tokio::test]
async fn a_flood_of_notices_costs_bounded_memory_and_real_changes_still_arrive() {
    seed().await;
    let (_, url) = database();
    let a = Replica::ready(&registry(&url, "")).await;
    let b = Replica::ready(&registry(&url, "")).await;
    for id in ["during", "after"] {
        a.create(id).await;
    }
    within(Duration::from_secs(5), "B to serve both", || async {
        b.object("during", "a.txt").await.status == 200 && b.object("after", "a.txt").await.status == 200
    })
    .await;
    let before = peak_rss_kib(b.served.child.id());
    let db = sql(&url).await;
    let flood = |from: i64| {
        let db = &db;
        async move {
            // One transaction per statement: PostgreSQL delivers its notices on commit, and
            // merges only identical ones within a transaction.
            db.execute(
                "SELECT pg_notify('assetgate_registry', 's acme flood-' || g) FROM generate_series($1::int8, $1::int8 + 99999) g",
                &[&from],
            )
            .await
            .unwrap();
            db.execute(
                "SELECT pg_notify('assetgate_registry', 's acme after ' || g % 2) FROM generate_series(1, 1000) g",
                &[],
            )
            .await
            .unwrap();
        }
    };
    for round in 0..3 {
        flood(round * 100_000).await;
    }
    // A real change in the middle of the flood: its notice may be dropped with the others.
    let deleted = a
        .admin(Method::DELETE, "/admin/v1/orgs/acme/storages/during", None, &[])
        .await;
    assert_eq!(deleted.status, 200);
    for round in 3..6 {
        flood(round * 100_000).await;
    }
    let stopped = std::time::Instant::now();
    within(
        Duration::from_secs(10),
        "B to refuse the storage deleted during the flood",
        || async { b.object("during", "a.txt").await.status == 404 },
    )
    .await;
    let took = stopped.elapsed();
    eprintln!("the change made during the flood arrived {took:?} after it");
    assert!(
        took < Duration::from_secs(1),
        "the change made during the flood arrived {took:?} after it"
    );

    let deleted = a
        .admin(Method::DELETE, "/admin/v1/orgs/acme/storages/after", None, &[])
        .await;
    assert_eq!(deleted.status, 200);
    let took = within(
        Duration::from_secs(5),
        "B to refuse the storage deleted after it",
        || async { b.object("after", "a.txt").await.status == 404 },
    )
    .await;
    assert!(
        took < Duration::from_secs(1),
        "a change after the flood arrived after {took:?}"
    );
    let grown = peak_rss_kib(b.served.child.id()).saturating_sub(before);
    eprintln!("600,000 notices: peak RSS {before} KiB before, grew by {grown} KiB");
    assert!(
        grown < 32 * 1024,
        "600,000 notices grew the replica's peak memory by {grown} KiB"
    );
    assert_eq!(bad_rows(&b).await, 0);
}

//! The embedded registry under faults and clashes, on the real binary: a data_dir on a small
//! tmpfs that fills up (writes fail cleanly, nothing half-done, and work again without a
//! restart once there is room), and config-file ids against API ids.

use std::path::Path;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::support::binary::{Served, ADMIN_TOKEN as ADMIN};
use crate::support::client::{get, request_body, Reply};
use crate::support::seaweed::seaweed;
use crate::support::tmpfs::Tmpfs;
use crate::support::*;

const BUCKET: &str = "registry-assets";

async fn admin(served: &Served, method: Method, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let url = format!("http://{}{path}", served.admin);
    request_body(method, &url, &[("authorization", &format!("Bearer {ADMIN}"))], body).await
}

fn registry(dir: &Path) -> String {
    format!(
        "[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        dir.display(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    )
}

fn storage_body(id: &str) -> Value {
    let sw = seaweed();
    json!({"_id": id, "type": "s3_compatible", "buckets": [BUCKET], "endpoint": sw.endpoint.to_string(),
           "credentials": {"accessKeyId": sw.reader.access_key_id, "secretAccessKey": sw.reader.secret_access_key.expose()}})
}

/// The ids the admin API lists for org acme.
async fn listed(served: &Served) -> Vec<String> {
    let r = admin(served, Method::GET, "/admin/v1/orgs/acme/storages?limit=100", None).await;
    r.json()["data"]["storages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["_id"].as_str().unwrap().to_string())
        .collect()
}

/// The data plane's status for the object of storage `id`.
async fn served_status(served: &Served, id: &str) -> u16 {
    let url = format!(
        "http://{}/v1/orgs/acme/storages/{id}/objects/{BUCKET}/a.txt?token={}",
        served.data,
        token("acme")
    );
    get(&url, &[]).await.status.as_u16()
}

#[tokio::test]
async fn a_full_disk_fails_writes_cleanly_and_they_work_again_once_there_is_room() {
    seaweed().seed(BUCKET, &[("a.txt", b"registry bytes")]).await;
    let disk = Tmpfs::mount("4m");
    let data_dir = disk.0.join("data");
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "", &registry(&data_dir));
    for id in ["kept", "changed"] {
        let r = admin(
            &served,
            Method::POST,
            "/admin/v1/orgs/acme/storages",
            Some(storage_body(id)),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let filler = disk.fill();

    let refused = admin(
        &served,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(storage_body("new")),
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()["error"]["code"].as_str()),
        (503, Some("registry_unavailable"))
    );
    let delete = admin(&served, Method::DELETE, "/admin/v1/orgs/acme/storages/kept", None).await;
    assert_eq!(delete.status, 503, "{}", String::from_utf8_lossy(&delete.body));
    let patch = admin(
        &served,
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/changed",
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(patch.status, 503);
    // Nothing was half-done: what the API lists is what the data plane serves.
    assert_eq!(listed(&served).await, ["changed", "kept"]);
    assert_eq!(served_status(&served, "kept").await, 200);
    assert_eq!(served_status(&served, "new").await, 404);
    let read = admin(&served, Method::GET, "/admin/v1/orgs/acme/storages/changed", None).await;
    assert_eq!(read.json()["data"]["storage"]["name"], "changed");

    // Room again: writes work at once, without a restart.
    std::fs::remove_file(filler).unwrap();
    let created = admin(
        &served,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(storage_body("new")),
    )
    .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(
        admin(&served, Method::DELETE, "/admin/v1/orgs/acme/storages/kept", None)
            .await
            .status,
        200
    );
    assert_eq!(served_status(&served, "new").await, 200);
    assert_eq!(served_status(&served, "kept").await, 404);
    assert!(served.logs().contains("No space left on device"), "the cause is logged");

    // And a restart shows exactly what the API said.
    drop(served);
    let served = Served::start(dir.path(), "", &registry(&data_dir));
    assert_eq!(listed(&served).await, ["changed", "new"]);
    assert_eq!(served_status(&served, "kept").await, 404);
    assert_eq!(served_status(&served, "new").await, 200);
}

#[tokio::test]
async fn a_config_storage_id_cannot_be_created_and_the_file_wins_on_reload() {
    let sw = seaweed();
    sw.seed(BUCKET, &[("a.txt", b"registry bytes")]).await;
    sw.seed("registry-file-assets", &[("a.txt", b"the file's bytes")]).await;
    let dir = tempfile::tempdir().unwrap();
    let file_storage = |id: &str| storage(id, &sw.endpoint, &["registry-file-assets"], &sw.reader);
    let orgs = |extra: &str| format!("[[orgs]]\nid = \"acme\"\n{}{extra}", file_storage("fixed"));
    let rest = format!("{}\n{}", registry(&dir.path().join("data")), orgs(""));
    let served = Served::start(dir.path(), "", &rest);
    let clash = admin(
        &served,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(storage_body("fixed")),
    )
    .await;
    assert_eq!(
        (clash.status.as_u16(), clash.json()["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let later = admin(
        &served,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(storage_body("later")),
    )
    .await;
    assert_eq!(later.status, 201);
    let object = |id: &str| {
        format!(
            "http://{}/v1/orgs/acme/storages/{id}/objects/{{bucket}}/a.txt?token={}",
            served.data,
            token("acme")
        )
    };
    assert_eq!(
        get(&object("later").replace("{bucket}", BUCKET), &[]).await.body,
        "registry bytes"
    );

    // The file now defines `later` too: the file's storage is served, with a warning.
    let text = std::fs::read_to_string(&served.config).unwrap();
    served.rewrite(&text.replace(&orgs(""), &orgs(&file_storage("later"))));
    served.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = get(&object("later").replace("{bucket}", "registry-file-assets"), &[]).await;
        if r.status == 200 {
            assert_eq!(r.body, "the file's bytes");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the reload did not take effect");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let read = admin(&served, Method::GET, "/admin/v1/orgs/acme/storages/later", None).await;
    assert_eq!(read.json()["data"]["storage"]["source"], "config");
    assert_eq!(
        admin(&served, Method::DELETE, "/admin/v1/orgs/acme/storages/later", None)
            .await
            .status,
        409
    );
    assert!(
        served.logs().contains("the file's is served"),
        "a warning names the clash:\n{}",
        served.logs()
    );
}

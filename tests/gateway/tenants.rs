//! Tenants at scale (README "Usage, audit and limits") against SeaweedFS: usage per org and storage, exact and kept
//! across a restart; the audit trail, line by line; limits per org and per labeler, from the
//! file and from the admin API.

use std::path::Path;
use std::time::{Duration, Instant};

use assetgate::token::Claims;
use http::Method;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::support::client::{get, head, send, Reply};
use crate::support::seaweed::seaweed;
use crate::support::*;

const ADMIN: &str = "admin-token-for-tenant-tests-01";
const BUCKET: &str = "tenant-assets";

fn registry(dir: &Path) -> String {
    format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\n",
        dir.display(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [11u8; 32])
    )
}

/// `acme` and `globex` each with storage `main` on the same bucket; `extra` goes after the
/// `[server]` section's keys, `org_extra` into acme's `[[orgs]]` table.
async fn gateway(dir: &Path, server: &str, org_extra: &str) -> TestGateway {
    let sw = seaweed();
    let orgs = format!(
        "{}\n[[orgs]]\nid = \"acme\"\n{org_extra}\n{}\n[[orgs]]\nid = \"globex\"\n{}",
        registry(dir),
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader),
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader),
    );
    TestGateway::start(&config(server, &orgs)).await
}

async fn seed() -> Vec<u8> {
    let big = pattern(4 * 1024 * 1024, 7);
    seaweed()
        .seed(
            BUCKET,
            &[("a.txt", b"0123456789"), ("big.bin", &big), ("b.txt", b"abc")],
        )
        .await;
    big
}

fn labeler_token(org: &str, sub: &str) -> String {
    token_with(&Claims {
        org: org.into(),
        sto: None,
        pfx: None,
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
        sub: Some(sub.into()),
    })
}

async fn fetch(gw: &TestGateway, org: &str, key: &str, token: &str, extra: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("origin", EDITOR_ORIGIN)];
    headers.extend_from_slice(extra);
    get(&gw.url(org, "main", BUCKET, key), &headers).await
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> Reply {
    crate::support::client::admin(&gw.admin_base, ADMIN, method, path, body).await
}

async fn usage_of(gw: &TestGateway, org: &str) -> Vec<Value> {
    let r = admin(gw, Method::GET, &format!("/admin/v1/orgs/{org}/usage"), None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["data"]["usage"].as_array().unwrap().clone()
}

/// Polls `org`'s usage until it equals `want`; fails after 15 s (counts reach the registry every 5 s, README "Usage").
async fn usage_becomes(gw: &TestGateway, org: &str, want: Value) {
    let started = Instant::now();
    loop {
        let got = usage_of(gw, org).await;
        let rows: Vec<Value> = got
            .iter()
            .map(|r| json!({"storage": r["storage"], "requests": r["requests"], "bytes": r["bytes"]}))
            .collect();
        if Value::Array(rows.clone()) == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "usage of {org} is {rows:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn usage_is_exact_per_org_and_kept_across_a_restart() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "", "").await;
    let acme = token("acme");
    for _ in 0..3 {
        assert_eq!(fetch(&gw, "acme", "a.txt", &acme, &[]).await.status, 200);
    }
    assert_eq!(
        fetch(&gw, "acme", "a.txt", &acme, &[("range", "bytes=2-4")])
            .await
            .body
            .len(),
        3
    );
    let h = head(
        &gw.url("acme", "main", BUCKET, "b.txt"),
        &[("authorization", &format!("Bearer {acme}"))],
    )
    .await;
    assert_eq!(h.status, 200);
    assert_eq!(fetch(&gw, "globex", "b.txt", &token("globex"), &[]).await.status, 200);
    // 3 × 10 + 3 + 0 (HEAD) bytes in 5 requests for acme; globex apart.
    usage_becomes(&gw, "acme", json!([{"storage": "main", "requests": 5, "bytes": 33}])).await;
    usage_becomes(&gw, "globex", json!([{"storage": "main", "requests": 1, "bytes": 3}])).await;
    let day = usage_of(&gw, "acme").await[0]["day"].as_str().unwrap().to_string();
    assert_eq!(day.len(), 10);
    gw.stop().await;

    let again = gateway(dir.path(), "", "").await;
    usage_becomes(&again, "acme", json!([{"storage": "main", "requests": 5, "bytes": 33}])).await;
    assert_eq!(fetch(&again, "acme", "b.txt", &acme, &[]).await.status, 200);
    usage_becomes(&again, "acme", json!([{"storage": "main", "requests": 6, "bytes": 36}])).await;
    let dated = admin(
        &again,
        Method::GET,
        &format!("/admin/v1/orgs/acme/usage?from={day}&to={day}"),
        None,
    )
    .await;
    assert_eq!(dated.json()["data"]["usage"].as_array().unwrap().len(), 1);
    let past = admin(
        &again,
        Method::GET,
        "/admin/v1/orgs/acme/usage?from=2020-01-01&to=2020-01-31",
        None,
    )
    .await;
    assert_eq!(past.json()["data"]["usage"], json!([]));
    let bad = admin(&again, Method::GET, "/admin/v1/orgs/acme/usage?from=2026-13-01", None).await;
    assert_eq!(
        (bad.status.as_u16(), bad.json()["error"]["fields"]["from"].is_string()),
        (400, true)
    );
    let backwards = admin(
        &again,
        Method::GET,
        "/admin/v1/orgs/acme/usage?from=2026-12-02&to=2026-12-01",
        None,
    )
    .await;
    assert_eq!(backwards.status, 400);
}

/// The audit lines written so far, once `count` are there.
async fn audit_lines(path: &Path, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} audit lines, not {count}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_object_request_leaves_one_audit_line_without_its_token() {
    let big = seed().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let server = "trusted_proxies = [\"127.0.0.1\"]";
    let sw = seaweed();
    let orgs = format!(
        "{}\n[audit]\npath = \"{}\"\n[[orgs]]\nid = \"acme\"\n{}",
        registry(dir.path()),
        path.display(),
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    let gw = TestGateway::start(&config(server, &orgs)).await;
    let t = labeler_token("acme", "labeler-7");
    let full = fetch(&gw, "acme", "a.txt", &t, &[("x-forwarded-for", "203.0.113.50")]).await;
    assert_eq!(full.status, 200);
    assert_eq!(
        fetch(&gw, "acme", "a.txt", &t, &[("range", "bytes=0-3")]).await.status,
        206
    );
    assert_eq!(
        head(
            &gw.url("acme", "main", BUCKET, "b.txt"),
            &[("authorization", &format!("Bearer {t}"))]
        )
        .await
        .status,
        200
    );
    assert_eq!(fetch(&gw, "acme", "absent.txt", &t, &[]).await.status, 404);
    // An abandoned download: a few bytes read, then the connection dropped.
    let mut response = send(
        Method::GET,
        &format!("{}?token={t}", gw.url("acme", "main", BUCKET, "big.bin")),
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    let _ = response.body_mut().frame().await;
    drop(response);

    let lines = audit_lines(&path, 5).await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&t), "the token never reaches the audit file");
    let by = |key: &str, method: &str| {
        lines
            .iter()
            .filter(|l| l["key"] == key && l["method"] == method)
            .collect::<Vec<_>>()
    };
    let gets = by("a.txt", "GET");
    assert_eq!(gets.len(), 2);
    let whole = gets.iter().find(|l| l["range"].is_null()).unwrap();
    for (field, value) in [
        ("org", json!("acme")),
        ("storage", json!("main")),
        ("bucket", json!(BUCKET)),
        ("sub", json!("labeler-7")),
        ("status", json!(200)),
        ("bytes", json!(10)),
        ("outcome", json!("complete")),
        ("clientIp", json!("203.0.113.50")),
    ] {
        assert_eq!(whole[field], value, "{field} of {whole}");
    }
    assert!(whole["requestId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(whole["durationMs"].is_u64() && whole["time"].as_str().unwrap().ends_with('Z'));
    let ranged = gets.iter().find(|l| l["range"] == "bytes=0-3").unwrap();
    assert_eq!(
        (ranged["status"].clone(), ranged["bytes"].clone()),
        (json!(206), json!(4))
    );
    assert_eq!(ranged["clientIp"], "127.0.0.1", "without X-Forwarded-For: the peer");
    assert_eq!(by("b.txt", "HEAD")[0]["bytes"], 0);
    let error = by("absent.txt", "GET")[0];
    assert_eq!(
        (error["status"].clone(), error["outcome"].clone()),
        (json!(404), json!("complete"))
    );
    let abandoned = by("big.bin", "GET")[0];
    assert_eq!(abandoned["outcome"], "client_gone");
    assert!(abandoned["bytes"].as_u64().unwrap() < big.len() as u64, "{abandoned}");
    let metrics = gw.gateway.metrics.encode();
    assert!(
        metrics.contains("assetgate_audit_lines_total{result=\"written\"} 5"),
        "{metrics}"
    );
}

/// An audit line is one line for every reader: U+2028, U+2029 and U+0085 in a key are
/// escaped, and a key longer than 1 KiB (an asset URL's, through `/resolve`) is cut with
/// `"truncated": true`.
#[tokio::test]
async fn audit_lines_stay_one_bounded_line_whatever_the_key() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sw = seaweed();
    let orgs = format!(
        "[audit]\npath = \"{}\"\n[[orgs]]\nid = \"acme\"\n{}",
        path.display(),
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    let t = labeler_token("acme", "labeler-7");
    let separated = "a\u{2028}b\u{2029}c\u{85}d.txt";
    assert_eq!(fetch(&gw, "acme", separated, &t, &[]).await.status, 404);
    let long_key = "k".repeat(3000);
    let asset = format!("s3://{BUCKET}/{long_key}");
    let resolve = format!(
        "{}/v1/orgs/acme/storages/main/resolve?url={}&token={t}",
        gw.base,
        percent_encoding::utf8_percent_encode(&asset, percent_encoding::NON_ALPHANUMERIC)
    );
    assert_eq!(get(&resolve, &[]).await.status, 404);
    let lines = audit_lines(&path, 2).await;
    let raw = std::fs::read_to_string(&path).unwrap();
    assert_eq!(raw.lines().count(), 2, "{raw}");
    for separator in ['\u{2028}', '\u{2029}', '\u{85}'] {
        assert!(!raw.contains(separator), "raw {separator:?} in {raw}");
    }
    assert!(raw.contains(r"a\u2028b\u2029c\u0085d.txt"), "{raw}");
    let escaped = lines
        .iter()
        .find(|l| l["key"] == separated)
        .expect("the key reads back");
    assert!(escaped.get("truncated").is_none());
    let cut = lines.iter().find(|l| l["truncated"] == true).expect("a truncated line");
    assert_eq!(cut["key"].as_str().unwrap(), &long_key[..1024]);
}

#[tokio::test]
async fn a_limited_org_gets_429_while_another_is_served() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "", "limits = { requests_per_second = 1, burst = 2 }").await;
    let acme = token("acme");
    for _ in 0..2 {
        assert_eq!(fetch(&gw, "acme", "a.txt", &acme, &[]).await.status, 200);
    }
    let limited = fetch(&gw, "acme", "a.txt", &acme, &[]).await;
    assert_eq!(
        (limited.status.as_u16(), limited.error_code().as_str()),
        (429, "rate_limited")
    );
    assert_eq!(limited.header("retry-after"), "1");
    assert_eq!(limited.header("access-control-allow-origin"), EDITOR_ORIGIN);
    let globex = token("globex");
    for _ in 0..5 {
        assert_eq!(
            fetch(&gw, "globex", "a.txt", &globex, &[]).await.status,
            200,
            "another org is unaffected"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        fetch(&gw, "acme", "a.txt", &acme, &[]).await.status,
        200,
        "the rate refills"
    );
    // The file's limits are read-only through the API.
    let put = admin(
        &gw,
        Method::PUT,
        "/admin/v1/orgs/acme/limits",
        Some(json!({"limits": {"requests_per_second": 100}})),
    )
    .await;
    assert_eq!(put.status, 409);
    let read = admin(&gw, Method::GET, "/admin/v1/orgs/acme/limits", None).await;
    assert_eq!(read.json()["data"]["source"], "config");
    assert!(gw
        .gateway
        .metrics
        .encode()
        .contains("assetgate_rate_limited_total{scope=\"org\",reason=\"rate\"} 1"));
}

#[tokio::test]
async fn concurrent_streams_hold_while_slow_downloads_run() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    // Larger than every buffer on the way (the sockets' on loopback take several MiB), so
    // that a stalled download really is still being sent.
    seaweed()
        .seed(BUCKET, &[("huge.bin", &pattern(32 * 1024 * 1024, 3))])
        .await;
    let gw = gateway(dir.path(), "", "limits = { concurrent_streams = 1 }").await;
    let t = token("acme");
    let url = format!("{}?token={t}", gw.url("acme", "main", BUCKET, "huge.bin"));
    // A download that reads one frame, then stalls: its body is still being sent.
    let mut slow = send(Method::GET, &url, &[]).await;
    assert_eq!(slow.status(), 200);
    let _ = slow.body_mut().frame().await;
    let second = fetch(&gw, "acme", "a.txt", &t, &[]).await;
    assert_eq!(
        (second.status.as_u16(), second.error_code().as_str()),
        (429, "rate_limited")
    );
    assert_eq!(fetch(&gw, "globex", "a.txt", &token("globex"), &[]).await.status, 200);
    drop(slow);
    let started = Instant::now();
    loop {
        let r = fetch(&gw, "acme", "a.txt", &t, &[]).await;
        if r.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stream's slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn labeler_limits_hold_one_labeler_and_the_admin_api_changes_them() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "", "").await;
    let read = admin(&gw, Method::GET, "/admin/v1/orgs/acme/limits", None).await;
    assert_eq!(read.json()["data"]["source"], Value::Null);
    for (body, field) in [
        (
            json!({"limits": {"requests_per_second": 0}}),
            "limits.requests_per_second",
        ),
        (json!({"labeler_limits": {"burst": 3}}), "labeler_limits.burst"),
    ] {
        let r = admin(&gw, Method::PUT, "/admin/v1/orgs/acme/limits", Some(body)).await;
        assert_eq!(r.status, 400);
        assert!(
            r.json()["error"]["fields"][field].is_string(),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let unknown = admin(
        &gw,
        Method::PUT,
        "/admin/v1/orgs/acme/limits",
        Some(json!({"limits": {"rps": 1}})),
    )
    .await;
    assert_eq!(unknown.status, 400);

    let put = admin(
        &gw,
        Method::PUT,
        "/admin/v1/orgs/acme/limits",
        Some(json!({"labeler_limits": {"requests_per_second": 1, "burst": 1}})),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json()["data"]["source"], "api");
    let (busy, calm) = (labeler_token("acme", "busy"), labeler_token("acme", "calm"));
    assert_eq!(fetch(&gw, "acme", "a.txt", &busy, &[]).await.status, 200);
    let held = fetch(&gw, "acme", "a.txt", &busy, &[]).await;
    assert_eq!(
        (held.status.as_u16(), held.error_code().as_str()),
        (429, "rate_limited")
    );
    assert!(held.json()["error"]["message"].as_str().unwrap().contains("labeler"));
    assert_eq!(
        fetch(&gw, "acme", "a.txt", &calm, &[]).await.status,
        200,
        "another labeler is not held back"
    );

    // Removed: served again at once; and the limits are stored.
    let removed = admin(&gw, Method::PUT, "/admin/v1/orgs/acme/limits", Some(json!({}))).await;
    assert_eq!(removed.json()["data"]["source"], Value::Null);
    assert_eq!(fetch(&gw, "acme", "a.txt", &busy, &[]).await.status, 200);
    admin(
        &gw,
        Method::PUT,
        "/admin/v1/orgs/acme/limits",
        Some(json!({"limits": {"concurrent_streams": 3}})),
    )
    .await;
    gw.stop().await;
    let again = gateway(dir.path(), "", "").await;
    let read = admin(&again, Method::GET, "/admin/v1/orgs/acme/limits", None).await;
    assert_eq!(read.json()["data"]["limits"], json!({"concurrent_streams": 3}));
}

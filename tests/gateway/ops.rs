//! Operating the gateway: TLS and HTTP/2 with a certificate swap, metrics, SIGHUP reloads,
//! SIGTERM draining, and the slowloris guard. Signal tests run the real binary; the bucket
//! is the embedded s3s backend.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use assetgate::demo::{seed::S3Writer, Backend};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::binary::Served;
use crate::support::client::get;
use crate::support::*;

const BUCKET: &str = "ops-assets";

/// The s3s backend with `objects`, and its storage block.
async fn backend(dir: &Path, objects: &[(&str, Vec<u8>)]) -> (Backend, String) {
    let backend = Backend::start(dir).await.unwrap();
    let writer = S3Writer::new(backend.endpoint.clone(), backend.keys.clone(), "us-east-1");
    writer.create_bucket(BUCKET).await.unwrap();
    for (key, data) in objects {
        writer
            .put(BUCKET, key, "application/octet-stream", data.clone())
            .await
            .unwrap();
    }
    let block = storage("main", &backend.endpoint, &[BUCKET], &backend.keys);
    (backend, block)
}

/// GET over TLS with ALPN h2; returns the HTTP version, status, body and the server's
/// certificate.
async fn get_h2(addr: &str, name: &str, trusted: &[u8], path: &str) -> (http::Version, u16, Bytes, Vec<u8>) {
    let tls = tls::connect(addr, name, tls::client_config(&[trusted], &[b"h2"])).await;
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(format!("https://{name}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (version, status) = (response.version(), response.status().as_u16());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (version, status, body, presented)
}

#[tokio::test]
async fn tls_and_http2_with_a_certificate_swapped_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, block) = backend(dir.path(), &[("a.txt", b"over h2".to_vec())]).await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, first) = tls::write_cert(certs.path(), "gateway.test");
    let server = tls::server_line(&cert, &key);
    let gw = TestGateway::start(&config(&server, &format!("[[orgs]]\nid = \"acme\"\n{block}"))).await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let path = format!(
        "/v1/orgs/acme/storages/main/objects/{BUCKET}/a.txt?token={}",
        token("acme")
    );
    let (version, status, body, presented) = get_h2(&addr, "gateway.test", &first, &path).await;
    assert_eq!(
        (version, status, &body[..]),
        (http::Version::HTTP_2, 200, &b"over h2"[..])
    );
    assert_eq!(presented, first);

    // New files on disk: the watcher swaps them in; connections in flight are untouched.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    let (_, _, second) = tls::write_cert(certs.path(), "gateway.test");
    let deadline = Instant::now() + Duration::from_secs(12);
    while presented_of(&addr, &first, &second).await != second {
        assert!(Instant::now() < deadline, "the new certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (version, status, _, presented) = get_h2(&addr, "gateway.test", &second, &path).await;
    assert_eq!((version, status, presented), (http::Version::HTTP_2, 200, second));
}

/// The certificate the server presents now (trusting either of the two).
async fn presented_of(addr: &str, first: &[u8], second: &[u8]) -> Vec<u8> {
    let tls = tls::connect(addr, "gateway.test", tls::client_config(&[first, second], &[])).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn metrics_appear_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, block) = backend(dir.path(), &[("m.bin", vec![7u8; 1000])]).await;
    // Uncached: the test counts the requests that reach the bucket.
    let block = uncached(block);
    let gw = TestGateway::start(&config("", &format!("[[orgs]]\nid = \"acme\"\n{block}"))).await;
    let auth = format!("Bearer {}", token("acme"));
    for _ in 0..3 {
        assert_eq!(
            get(&gw.url("acme", "main", BUCKET, "m.bin"), &[("authorization", &auth)])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        get(&gw.url("acme", "main", BUCKET, "missing"), &[("authorization", &auth)])
            .await
            .status,
        404
    );
    let text = gw.metrics().await;
    for line in [
        "assetgate_requests_total{route=\"object\",status=\"2xx\"} 3",
        "assetgate_requests_total{route=\"object\",status=\"4xx\"} 1",
        "assetgate_upstream_first_byte_seconds_count 4",
        "assetgate_in_flight_requests 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    let bytes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("assetgate_response_body_bytes_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes >= 3000, "{bytes}");
}

#[tokio::test]
async fn a_client_sending_headers_too_slowly_is_cut_off() {
    let gw = TestGateway::start(&config("header_read_timeout = \"1s\"", "")).await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .map(|_| String::from_utf8_lossy(&buf).into_owned())
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "not cut off: {elapsed:?}");
    if let Ok(reply) = outcome {
        assert!(!reply.contains("200 OK"), "{reply}");
    }
}

#[tokio::test]
async fn sighup_applies_a_changed_cors_list_and_keeps_the_old_config_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, block) = backend(dir.path(), &[("c.txt", b"cors".to_vec())]).await;
    let org = format!("[[orgs]]\nid = \"acme\"\n{block}");
    let process = Served::start(dir.path(), "", &org);
    let url = process.url(BUCKET, "c.txt");
    let newcomer = "https://new-editor.test";
    assert_eq!(get(&url, &[("origin", newcomer)]).await.status, 403);

    let original = std::fs::read_to_string(&process.config).unwrap();
    process.rewrite(&original.replace(
        &format!("allowed_origins = [\"{EDITOR_ORIGIN}\"]"),
        &format!("allowed_origins = [\"{EDITOR_ORIGIN}\", \"{newcomer}\"]"),
    ));
    process.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(&url, &[("origin", newcomer)]).await;
        if r.status == 200 {
            assert_eq!(r.header("access-control-allow-origin"), newcomer);
            break;
        }
        assert!(Instant::now() < deadline, "the reload did not take effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    process.rewrite("this is [not toml");
    process.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = get(&url, &[("origin", newcomer)]).await;
    assert_eq!(
        (r.status.as_u16(), &r.body[..]),
        (200, &b"cors"[..]),
        "the old config must keep serving"
    );
}

#[tokio::test]
async fn sigterm_lets_a_large_download_finish_refuses_new_connections_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 << 20;
    let (_backend, block) = backend(dir.path(), &[("big.bin", pattern(size, 3))]).await;
    let mut process = Served::start(dir.path(), "", &format!("[[orgs]]\nid = \"acme\"\n{block}"));
    let response = crate::support::client::send(http::Method::GET, &process.url(BUCKET, "big.bin"), &[]).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut signalled = false;
    while let Some(frame) = body.frame().await {
        received += frame
            .expect("the download must not be cut")
            .data_ref()
            .map_or(0, |d| d.len());
        if !signalled && received > (1 << 20) {
            process.signal("TERM");
            signalled = true;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let refused = TcpStream::connect_timeout(&process.data, Duration::from_secs(1));
            assert!(refused.is_err(), "a new connection was accepted after SIGTERM");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(received, size);
    let status = process.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Labelers who come back skip the full handshake however many there are: the gateway
/// issues stateless TLS 1.3 tickets (README "TLS and HTTP/2"). With rustls' default, a cache
/// of 256 sessions on the server and two tickets per handshake, none of these 200 clients
/// resumed: each handshake of the second round pushed out the sessions of clients still to
/// come (with 100 clients, all resumed).
#[tokio::test]
async fn returning_tls_clients_resume_their_sessions_however_many_there_are() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CLIENTS: usize = 200;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, der) = tls::write_cert(certs.path(), "gateway.test");
    let gw = TestGateway::start(&config(&tls::server_line(&cert, &key), "")).await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    // One configuration per client: each remembers only its own sessions.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tls::client_config(&[&der], &[b"http/1.1"]))
        .collect();
    let mut kinds = Vec::new();
    for round in 0..2 {
        for client in &clients {
            let mut tls = tls::connect(&addr, "gateway.test", client.clone()).await;
            kinds.push((round, tls.get_ref().1.handshake_kind()));
            // Reading the answer takes in the tickets sent after the handshake.
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await.unwrap();
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    let count = |round, kind| kinds.iter().filter(|k| **k == (round, Some(kind))).count();
    assert_eq!(count(0, rustls::HandshakeKind::Full), CLIENTS);
    assert_eq!(
        count(1, rustls::HandshakeKind::Resumed),
        CLIENTS,
        "clients of {CLIENTS} resumed on their second connection"
    );
}

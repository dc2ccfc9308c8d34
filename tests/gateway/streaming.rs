//! True streaming. A stand-in bucket is used because no real server can be told to hold a
//! body back, stall, or die half-way on demand.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::support::client::send;
use crate::support::standin::StandIn;
use crate::support::*;

const TOTAL: usize = 4 << 20;
const FIRST: usize = 64 << 10;

async fn gateway_for(upstream: &StandIn, server: &str) -> (TestGateway, String) {
    let gw = TestGateway::in_front_of(upstream, server).await;
    let url = gw.url("acme", "main", "b-bucket", "big.mp4");
    (gw, url)
}

fn head_for(len: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: video/mp4\r\n\r\n")
}

#[tokio::test]
async fn the_first_chunk_arrives_while_the_bucket_holds_back_the_rest() {
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let upstream = StandIn::start(move |mut s| {
        let gate = gate.clone();
        async move {
            let _ = s.write_all(head_for(TOTAL).as_bytes()).await;
            let _ = s.write_all(&pattern(FIRST, 1)).await;
            gate.notified().await;
            let _ = s.write_all(&pattern(TOTAL - FIRST, 2)).await;
        }
    })
    .await;
    let (_gw, url) = gateway_for(&upstream, "").await;
    let auth = format!("Bearer {}", token("acme"));
    let response = send(Method::GET, &url, &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], TOTAL.to_string().as_str());
    let mut body = response.into_body();
    let mut received = 0;
    while received < FIRST {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("first bytes must arrive before the bucket sends the rest")
            .unwrap()
            .unwrap();
        received += frame.data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(received, FIRST, "more than the bucket sent so far");
    release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(received + rest.len(), TOTAL);
}

#[tokio::test]
async fn a_bucket_that_dies_mid_body_aborts_the_client_transfer() {
    let upstream = StandIn::start(|mut s| async move {
        let _ = s.write_all(head_for(TOTAL).as_bytes()).await;
        let _ = s.write_all(&pattern(FIRST, 3)).await;
        // Connection closed here, far short of Content-Length.
    })
    .await;
    let (_gw, url) = gateway_for(&upstream, "").await;
    let auth = format!("Bearer {}", token("acme"));
    let response = send(Method::GET, &url, &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 200);
    let result = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .unwrap();
    assert!(result.is_err(), "a short body was delivered as complete");
}

#[tokio::test]
async fn a_chunked_body_that_dies_mid_way_aborts_too() {
    let upstream = StandIn::start(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n")
            .await;
        let _ = s.write_all(&pattern(1024, 4)).await;
        let _ = s.write_all(b"\r\n").await;
    })
    .await;
    let (_gw, url) = gateway_for(&upstream, "").await;
    let response = send(
        Method::GET,
        &url,
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    let result = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .unwrap();
    assert!(result.is_err(), "a truncated chunked body was delivered as complete");
}

#[tokio::test]
async fn a_stalled_bucket_is_cut_off_after_the_idle_timeout() {
    let upstream = StandIn::start(|mut s| async move {
        let _ = s.write_all(head_for(TOTAL).as_bytes()).await;
        let _ = s.write_all(&pattern(FIRST, 5)).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let (_gw, url) = gateway_for(&upstream, "upstream_idle_timeout = \"1s\"").await;
    let response = send(
        Method::GET,
        &url,
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .unwrap();
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

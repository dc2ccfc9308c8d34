//! Connections that do nothing useful cost the gateway nothing it cannot take back (README "Connections"),
//! tested on the real binary with real sockets: silent TCP, half a TLS handshake, half an
//! HTTP/2 preface, TLS or HTTP/2 connections that go quiet, idle keep-alive connections, a
//! client that stops reading, a full table of connections, and the HTTP/2 stream cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::support::binary::{metric, Served};
use crate::support::standin::{any_keys, StandIn};
use crate::support::*;

/// Half of the 24-byte HTTP/2 connection preface (RFC 9113 §3.4).
const HALF_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The first bytes of a TLS ClientHello record, and no more.
const HALF_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03];

/// Completes when the peer closes `io` (end of stream or an error), with the time it did.
async fn closed(mut io: impl AsyncRead + Unpin) -> Instant {
    let mut buf = [0u8; 4096];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return Instant::now(),
            Ok(_) => {}
        }
    }
}

/// Waits (at most `limit`) for `closing` and says how long after `since` it completed.
async fn closes(what: &str, closing: tokio::task::JoinHandle<Instant>, since: Instant, limit: Duration) -> f64 {
    let at = tokio::time::timeout(limit, closing)
        .await
        .unwrap_or_else(|_| panic!("the gateway kept {what} open"))
        .unwrap();
    (at - since).as_secs_f64()
}

fn watch(io: impl AsyncRead + Unpin + Send + 'static) -> tokio::task::JoinHandle<Instant> {
    tokio::spawn(closed(io))
}

/// An HTTP/1.1 keep-alive connection that has had one `/healthz` answered.
async fn keep_alive(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"{\"status\":\"ok\"}") {
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// An HTTP/2 connection over `io` that has had one `/healthz` answered; the handle completes
/// when the gateway closes the connection. The sender must be kept: hyper closes a client
/// connection whose senders are all gone.
async fn h2_after_one_request<I>(io: I) -> (H2Sender, tokio::task::JoinHandle<Instant>)
where
    I: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
        Instant::now()
    });
    let request = Request::get("http://gw/healthz").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response.into_body().collect().await.unwrap());
    (sender, task)
}

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// `/healthz` on a new connection answers within a second.
async fn healthz_answers_at_once(url: &str) {
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(2), crate::support::client::get(url, &[]))
        .await
        .expect("/healthz must answer while the table is full of idle connections");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

fn assert_in(what: &str, secs: f64, window: std::ops::Range<f64>) {
    assert!(
        window.contains(&secs),
        "{what} closed after {secs:.2}s, expected {window:?}"
    );
}

fn closed_count(text: &str, reason: &str) -> f64 {
    metric(
        text,
        &format!("assetgate_connections_closed_total{{listener=\"data\",reason=\"{reason}\"}}"),
    )
}

const LIMIT: Duration = Duration::from_secs(8);

/// A connection being watched: what it is, since when its timeout counts, its closing.
type Watched = (&'static str, Instant, tokio::task::JoinHandle<Instant>);

/// The first of `unproductive` made room for a newcomer at `asked`; the others close at the
/// header timeout (2 s) after they were opened, and the `idle` ones at the idle timeout (3 s)
/// after their last response.
async fn assert_closings(asked: Instant, mut unproductive: Vec<Watched>, idle: Vec<Watched>) {
    let (what, _, oldest) = unproductive.remove(0);
    assert_in(what, closes(what, oldest, asked, LIMIT).await, 0.0..1.0);
    for (what, since, closing) in unproductive {
        assert_in(what, closes(what, closing, since, LIMIT).await, 1.9..3.5);
    }
    for (what, since, closing) in idle {
        assert_in(what, closes(what, closing, since, LIMIT).await, 2.9..4.5);
    }
}

#[tokio::test]
async fn idle_and_half_open_connections_are_closed_and_healthz_answers_while_they_are_open() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        "header_read_timeout = \"2s\"\nidle_timeout = \"3s\"\nmax_connections = 12",
        "",
    );
    let mut unproductive: Vec<Watched> = Vec::new();
    for _ in 0..3 {
        let s = TcpStream::connect(served.data).await.unwrap();
        unproductive.push(("a silent connection", Instant::now(), watch(s)));
    }
    for _ in 0..3 {
        let mut s = TcpStream::connect(served.data).await.unwrap();
        let since = Instant::now();
        s.write_all(HALF_PREFACE).await.unwrap();
        unproductive.push(("half an HTTP/2 preface", since, watch(s)));
    }
    let (mut idle, mut senders) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let s = keep_alive(served.data).await;
        idle.push(("an idle keep-alive connection", Instant::now(), watch(s)));
        let (sender, h2) = h2_after_one_request(TcpStream::connect(served.data).await.unwrap()).await;
        idle.push(("an idle HTTP/2 connection", Instant::now(), h2));
        senders.push(sender);
    }

    // Twelve connections fill the table: a newcomer takes the place of the one that has
    // waited longest for a request, the first silent connection.
    let asked = Instant::now();
    healthz_answers_at_once(&format!("http://{}/healthz", served.data)).await;
    assert_closings(asked, unproductive, idle).await;
    // A client sees its connection closed a moment before the gateway has counted it.
    let started = Instant::now();
    loop {
        let text = served.metrics().await;
        let counts = ["capacity", "header_timeout", "idle_timeout"].map(|r| closed_count(&text, r));
        let open = metric(&text, "assetgate_connections{listener=\"data\"}");
        if counts == [1.0, 5.0, 6.0] && open == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "closings counted {counts:?}, {open} open: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tls_connections_that_stall_in_or_after_the_handshake_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = tls::write_cert(dir.path(), "gateway.test");
    let server = format!(
        "{}\nheader_read_timeout = \"2s\"\nidle_timeout = \"3s\"\nmax_connections = 8",
        tls::server_line(&cert, &key)
    );
    let served = Served::start(dir.path(), &server, "");
    let addr = served.data.to_string();
    let h2 = tls::client_config(&[&der], &[b"h2"]);
    let mut unproductive: Vec<Watched> = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(served.data).await.unwrap();
        let since = Instant::now();
        s.write_all(HALF_CLIENT_HELLO).await.unwrap();
        unproductive.push(("half a TLS handshake", since, watch(s)));
    }
    for _ in 0..2 {
        let since = Instant::now();
        let s = tls::connect(&addr, "gateway.test", h2.clone()).await;
        unproductive.push(("a TLS connection silent after its handshake", since, watch(s)));
    }
    for _ in 0..2 {
        let since = Instant::now();
        let mut s = tls::connect(&addr, "gateway.test", h2.clone()).await;
        s.write_all(HALF_PREFACE).await.unwrap();
        unproductive.push(("half an HTTP/2 preface over TLS", since, watch(s)));
    }
    let (mut idle, mut senders) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let (sender, closing) = h2_after_one_request(tls::connect(&addr, "gateway.test", h2.clone()).await).await;
        idle.push(("an idle HTTP/2 connection over TLS", Instant::now(), closing));
        senders.push(sender);
    }

    // The table is full; a TLS client still gets its answer, in place of the oldest waiter.
    let asked = Instant::now();
    let tls = tls::connect(&addr, "gateway.test", tls::client_config(&[&der], &[b"http/1.1"])).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::get("https://gateway.test/healthz")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), sender.send_request(request))
        .await
        .expect("/healthz must answer while the table is full")
        .unwrap();
    assert_eq!(response.status(), 200);
    drop((sender, response));
    assert_closings(asked, unproductive, idle).await;
    let text = served.metrics().await;
    let counts = ["capacity", "header_timeout", "idle_timeout"].map(|r| closed_count(&text, r));
    assert_eq!(counts, [1.0, 5.0, 2.0], "{text}");
}

/// A bucket stand-in streaming an endless object: no S3 server reports when the gateway
/// hung up on it, and this test is about exactly that moment. It records when its writes
/// start failing.
async fn endless_bucket() -> (StandIn, Arc<std::sync::Mutex<Option<Instant>>>) {
    let gone = Arc::new(std::sync::Mutex::new(None));
    let seen = gone.clone();
    let upstream = StandIn::start(move |mut s| {
        let seen = seen.clone();
        async move {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1073741824\r\n\r\n";
            let chunk = pattern(64 * 1024, 9);
            let mut result = s.write_all(head.as_bytes()).await;
            while result.is_ok() {
                result = s.write_all(&chunk).await;
            }
            *seen.lock().unwrap() = Some(Instant::now());
        }
    })
    .await;
    (upstream, gone)
}

fn stand_in_org(upstream: &StandIn) -> String {
    format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        uncached(storage("main", &upstream.endpoint(), &["b-bucket"], &any_keys()))
    )
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_its_upstream_request_ended() {
    let (upstream, upstream_gone) = endless_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "client_write_timeout = \"2s\"", &stand_in_org(&upstream));
    let mut client = TcpStream::connect(served.data).await.unwrap();
    let path = served.url("b-bucket", "endless.bin");
    let path = path.trim_start_matches(&format!("http://{}", served.data));
    let request = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while received < (1 << 20) {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        received += n;
    }
    // The client stops reading; the gateway fills the socket buffers, then waits.
    let stopped = Instant::now();
    assert_in(
        "the upstream request",
        upstream_ended(&upstream_gone, stopped).await,
        1.9..4.5,
    );
    // What the socket still holds is drained; then the connection ends, far short of 1 GiB.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut more = 0usize;
        while let Ok(n @ 1..) = client.read(&mut buf).await {
            more += n;
        }
        more
    })
    .await
    .expect("the connection to the stalled client was not closed");
    assert!(received + rest < (1 << 30));
    let text = served.metrics().await;
    assert_eq!(closed_count(&text, "client_write_timeout"), 1.0, "{text}");
}

/// Waits until the endless bucket reports its request ended; returns when, after `since`.
async fn upstream_ended(gone: &std::sync::Mutex<Option<Instant>>, since: Instant) -> f64 {
    let deadline = since + Duration::from_secs(10);
    loop {
        if let Some(at) = *gone.lock().unwrap() {
            return (at - since).as_secs_f64();
        }
        assert!(Instant::now() < deadline, "the upstream request was never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_http2_stream_whose_window_stays_shut_is_cut_off_too() {
    let (upstream, upstream_gone) = endless_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "client_write_timeout = \"2s\"", &stand_in_org(&upstream));
    // The client keeps its socket read (it answers pings) but never reads the stream's body,
    // so it never opens the stream's flow-control window again.
    let io = TokioIo::new(TcpStream::connect(served.data).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .handshake(io)
        .await
        .unwrap();
    let connection = tokio::spawn(conn);
    let url = served.url("b-bucket", "endless.bin");
    let response = sender
        .send_request(Request::get(url.as_str()).body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stalled = Instant::now();
    assert_in(
        "the upstream request",
        upstream_ended(&upstream_gone, stalled).await,
        1.9..4.5,
    );
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the HTTP/2 connection was not closed")
        .unwrap()
        .ok();
    drop(response);
    let text = served.metrics().await;
    assert_eq!(closed_count(&text, "client_write_timeout"), 1.0, "{text}");
}

/// A bucket stand-in that answers each request only once the test adds a permit: no real
/// server holds a response on demand.
async fn held_bucket() -> (StandIn, Arc<Semaphore>) {
    let release = Arc::new(Semaphore::new(0));
    let permits = release.clone();
    let upstream = StandIn::start(move |mut s| {
        let permits = permits.clone();
        async move {
            if let Ok(permit) = permits.acquire().await {
                permit.forget();
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nheld")
                    .await;
            }
        }
    })
    .await;
    (upstream, release)
}

/// An HTTP/2 connection (prior knowledge, plain TCP) to `addr`, driven in the background.
async fn h2_client(addr: std::net::SocketAddr) -> H2Sender {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Waits until the stand-in has received `n` requests.
async fn received(upstream: &StandIn, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.count() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} requests arrived",
            upstream.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_http2_connection_runs_at_most_the_configured_number_of_streams() {
    let (upstream, release) = held_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "http2_max_concurrent_streams = 2", &stand_in_org(&upstream));
    let sender = h2_client(served.data).await;
    let url = served.url("b-bucket", "held.txt");
    // A first exchange, so that the client has the gateway's SETTINGS (a stream opened
    // before them is refused with REFUSED_STREAM, RFC 9113 §5.1.2).
    release.add_permits(1);
    let first = sender
        .clone()
        .send_request(Request::get(url.as_str()).body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let mut sender = sender.clone();
            let request = Request::get(url.as_str()).body(Empty::<Bytes>::new()).unwrap();
            tokio::spawn(async move {
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                (status, response.into_body().collect().await.unwrap().to_bytes())
            })
        })
        .collect();
    received(&upstream, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.count(), 3, "a third stream ran beside two");
    release.add_permits(1);
    received(&upstream, 4).await;
    release.add_permits(2);
    for r in requests {
        let (status, body) = r.await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"held"[..]));
    }
}

#[tokio::test]
async fn when_every_connection_has_a_request_in_flight_a_newcomer_is_refused() {
    let (upstream, release) = held_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "max_connections = 2", &stand_in_org(&upstream));
    let url = served.url("b-bucket", "held.txt");
    let busy = held_requests(&url, &upstream, 2).await;
    let text = newcomers_refused(&served, 1).await;
    assert_eq!(metric(&text, "assetgate_connections{listener=\"data\"}"), 2.0, "{text}");
    release.add_permits(2);
    for b in busy {
        assert_eq!(b.await.unwrap().body, "held");
    }
}

/// `n` requests for `url` (a held object), once the bucket has them all.
async fn held_requests(
    url: &str,
    upstream: &StandIn,
    n: usize,
) -> Vec<tokio::task::JoinHandle<crate::support::client::Reply>> {
    let busy = (0..n)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move { crate::support::client::get(&url, &[]).await })
        })
        .collect();
    received(upstream, n).await;
    busy
}

/// Connects `n` times, one after the other, and sees each connection closed at once and
/// counted as refused; gives the metrics' text.
async fn newcomers_refused(served: &Served, n: usize) -> String {
    for _ in 0..n {
        let refused = TcpStream::connect(served.data).await.unwrap();
        let at = Instant::now();
        assert_in(
            "a connection beyond the limit",
            closes("it", watch(refused), at, LIMIT).await,
            0.0..1.0,
        );
    }
    let text = served.metrics().await;
    assert_eq!(
        metric(&text, "assetgate_connections_refused_total{listener=\"data\"}"),
        n as f64,
        "{text}"
    );
    text
}

/// The data plane runs on `threads` threads of its own (README "Threads"), the admin API
/// on none of them, and all of them share one table of connections: with three lanes and
/// room for two connections, two busy ones refuse every newcomer, whichever lane takes it.
#[tokio::test]
async fn the_data_plane_runs_on_its_own_threads_which_share_one_table_of_connections() {
    let (upstream, release) = held_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "threads = 3\nmax_connections = 2", &stand_in_org(&upstream));
    let lanes = std::fs::read_dir(format!("/proc/{}/task", served.child.id()))
        .unwrap()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with("assetgate-lane-"))
        })
        .count();
    assert_eq!(lanes, 3, "one thread per lane, none for the admin API");
    let url = served.url("b-bucket", "held.txt");
    let busy = held_requests(&url, &upstream, 2).await;
    newcomers_refused(&served, 6).await;
    release.add_permits(2);
    for b in busy {
        assert_eq!(b.await.unwrap().body, "held");
    }
    // Connections given back on any lane make room again.
    release.add_permits(1);
    assert_eq!(crate::support::client::get(&url, &[]).await.body, "held");
}

/// Requests to buckets in flight are capped for the whole gateway (`max_upstream_requests`):
/// many HTTP/2 streams cannot open a socket each without end. Past the cap a request waits
/// up to `upstream_connect_timeout`, then gets 503; a request holds its place while it waits
/// for the bucket's answer and while its body streams, and gives it back when done.
#[tokio::test]
async fn requests_to_buckets_in_flight_are_capped_and_their_places_come_back() {
    let (held, release) = held_bucket().await;
    let (endless, _) = endless_bucket().await;
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}{}",
        uncached(storage("main", &held.endpoint(), &["b-bucket"], &any_keys())),
        uncached(storage("stream", &endless.endpoint(), &["b-bucket"], &any_keys()))
    );
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        "max_upstream_requests = 3\nupstream_connect_timeout = \"1s\"",
        &orgs,
    );
    let sender = h2_client(served.data).await;
    let url = served.url("b-bucket", "held.txt");
    let ask = |url: String| {
        let mut sender = sender.clone();
        tokio::spawn(async move {
            let response = sender
                .send_request(Request::get(url.as_str()).body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        })
    };
    // A streaming body holds one place.
    let streaming = {
        let mut sender = sender.clone();
        let url = url.replace("/storages/main/", "/storages/stream/");
        sender
            .send_request(Request::get(url.as_str()).body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap()
    };
    assert_eq!(streaming.status(), 200);
    let waiting: Vec<_> = (0..4).map(|_| ask(url.clone())).collect();
    received(&held, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        held.count(),
        2,
        "three places: one streaming, two waiting on the bucket"
    );
    // The other two wait a second for a place, and are refused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut refused = 0;
    release.add_permits(2);
    for w in waiting {
        let (status, body) = w.await.unwrap();
        match status.as_u16() {
            200 => assert_eq!(body, "held"),
            503 => {
                refused += 1;
                assert!(String::from_utf8_lossy(&body).contains("upstream_unavailable"));
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(refused, 2, "two waited a second for a place and were refused");
    // The stream ends: its place comes back, and so do those of the finished requests.
    drop(streaming);
    release.add_permits(3);
    let after: Vec<_> = (0..3).map(|_| ask(url.clone())).collect();
    for a in after {
        assert_eq!(a.await.unwrap().0, 200);
    }
}

//! Logs never contain a secret, a token or an `Authorization` value, even at trace level.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use assetgate::demo::Demo;

use crate::support::client::get;
use crate::support::*;

/// Collects every log line of this test's thread.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Captures this thread's log lines at `level` (and those of the gateway's serving threads
/// it starts) while the guard lives.
///
/// tracing caches whether anyone listens at each log call site, process-wide. While exactly
/// one subscriber exists it asks the thread that first reaches a call site, or the thread
/// that creates the subscriber before it is set, and a thread without this subscriber
/// answers "no one" for good (tracing issues #2874 and #3611): lines of this test went
/// missing when other tests reached a call site first. A second, silent subscriber kept
/// for the whole process, and the cache rebuilt once this one is set, make every call site
/// ask all subscribers instead.
pub fn capture(level: &str) -> (Capture, tracing::subscriber::DefaultGuard) {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(assetgate::telemetry::log_filter(level))
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (capture, guard)
}

#[tokio::test]
async fn nothing_secret_reaches_the_logs_at_trace_level() {
    let (capture, _guard) = capture("trace");

    // The demo's in-process s3s backend, with one good and one wrong-secret storage.
    let demo = Demo::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let backend = &demo.backend;
    let wrong_secret = "wrong-secret-never-to-be-logged-42";
    let mut wrong = backend.keys.clone();
    wrong.secret_access_key = assetgate::secret::Secret::new(wrong_secret);
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}{}",
        storage("main", &backend.endpoint, &[assetgate::demo::BUCKET], &backend.keys),
        storage("wrong", &backend.endpoint, &[assetgate::demo::BUCKET], &wrong),
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    let t = token("acme");
    let key = assetgate::demo::ASSETS[0].0;
    let ok = get(
        &format!("{}?token={t}", gw.url("acme", "main", assetgate::demo::BUCKET, key)),
        &[],
    )
    .await;
    assert_eq!(ok.status, 200);
    let bad = get(
        &gw.url("acme", "wrong", assetgate::demo::BUCKET, key),
        &[("authorization", &format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(bad.status, 502);
    let expired = get(
        &gw.url("acme", "main", assetgate::demo::BUCKET, key),
        &[("authorization", "Bearer not.a.token")],
    )
    .await;
    assert_eq!(expired.status, 401);
    drop(gw);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let logs = capture.text();
    assert_eq!(
        logs.matches("assetgate::access").count(),
        3,
        "one access line per request:\n{logs}"
    );
    for secret in [
        t.as_str(),
        wrong_secret,
        backend.keys.secret_access_key.expose(),
        TOKEN_SECRET,
        "Bearer",
        "not.a.token",
    ] {
        assert!(!logs.contains(secret), "`{secret}` appears in the logs");
    }
}

/// The real binary, at the most verbose setting `RUST_LOG` can express, signing with
/// temporary keys (a session token) towards a stand-in bucket (which does not check
/// signatures: this test is about what the gateway writes, not what the bucket accepts).
#[tokio::test]
async fn the_binary_at_trace_level_writes_no_secret_whatever_rust_log_says() {
    let upstream = crate::support::standin::StandIn::replying(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let (secret, session) = ("secret-key-never-logged-7", "session-token-never-logged-9");
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n[[orgs.storages]]\nid = \"main\"\nprovider = \"s3_compatible\"\nbuckets = [\"b-bucket\"]\nendpoint = \"{}\"\ncredentials = {{ type = \"access_key\", access_key_id = \"AKIDTRACE\", secret_access_key = \"{secret}\", session_token = \"{session}\" }}\ncache = false\n",
        upstream.endpoint()
    );
    let dir = tempfile::tempdir().unwrap();
    let everything =
        "trace,aws_sigv4=trace,aws_sigv4::http_request=trace,aws_smithy_runtime=trace,hyper=trace,h2=trace";
    let served = crate::support::binary::Served::start_with_env(dir.path(), "", &org, &[("RUST_LOG", everything)]);
    let t = token("acme");
    let url = served.url("b-bucket", "k.txt");
    assert_eq!(get(&url, &[]).await.body, "ok");
    let bare = url.split('?').next().unwrap();
    assert_eq!(get(bare, &[("authorization", &format!("Bearer {t}"))]).await.body, "ok");
    let heads = upstream.heads.lock().unwrap().join("\n");
    assert!(heads.contains(session), "the session token is sent upstream");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = served.logs();
    assert_eq!(logs.matches("assetgate::access").count(), 2, "{logs}");
    // The signing, HTTP and TLS crates stay at info whatever RUST_LOG asks: their debug and
    // trace events describe requests (aws-sigv4's name the key and the signed headers).
    for line in logs.lines() {
        let mut words = line.split_whitespace().skip(1);
        let (level, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let chatty = ["aws_", "hyper", "h2::", "rustls", "tokio_rustls"]
            .iter()
            .any(|c| target.starts_with(c));
        assert!(!(chatty && matches!(level, "DEBUG" | "TRACE")), "{line}");
    }
    for leaked in [secret, session, t.as_str(), TOKEN_SECRET, "Signature=", "Bearer"] {
        assert!(!logs.contains(leaked), "`{leaked}` appears in the logs:\n{logs}");
    }
}

/// The real binary writes its access lines in the format the rest of its log has (here
/// JSON lines, `--log-format json`), and `RUST_LOG` turns them off alone.
#[tokio::test]
async fn access_lines_follow_the_log_format_and_rust_log() {
    let upstream = crate::support::standin::StandIn::replying(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        uncached(storage(
            "main",
            &upstream.endpoint(),
            &["b-bucket"],
            &crate::support::standin::any_keys()
        ))
    );
    let dir = tempfile::tempdir().unwrap();
    let json = crate::support::binary::Served::start_with_args(
        dir.path(),
        "",
        &org,
        &[("RUST_LOG", "info")],
        &["--log-format", "json"],
    );
    assert_eq!(get(&json.url("b-bucket", "k.txt"), &[]).await.body, "ok");
    assert_eq!(get(&json.url("b-bucket", "k2.txt"), &[]).await.body, "ok");
    let logs = json.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "assetgate::access").collect();
    assert_eq!(access.len(), 2, "{logs}");
    for line in &access {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["org"], "acme");
        assert_eq!(line["storage"], "main");
        assert_eq!(line["bucket"], "b-bucket");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["status"], 200);
        assert_eq!(line["upstream_status"], 200);
        assert_eq!(line["bytes"], 2);
        assert_eq!(line["outcome"], "Complete");
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        assert_eq!(line["request_id"].as_str().unwrap().len(), 24, "{line}");
    }
    drop(json);

    let quiet_dir = tempfile::tempdir().unwrap();
    let quiet = crate::support::binary::Served::start_with_env(
        quiet_dir.path(),
        "",
        &org,
        &[("RUST_LOG", "info,assetgate::access=off")],
    );
    assert_eq!(get(&quiet.url("b-bucket", "k.txt"), &[]).await.body, "ok");
    let logs = quiet.logs();
    assert!(logs.contains(" INFO "), "the rest of the log is written: {logs}");
    assert!(!logs.contains("assetgate::access"), "{logs}");
}

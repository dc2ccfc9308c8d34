//! Request ids, metrics (`metrics`) and the access log: one structured line per request, written when the last
//! byte has been sent (or the transfer was cut), with no secret, token or `Authorization`.

pub mod lines;
pub mod metrics;

use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method};

/// Crates whose debug and trace events can print request details: canonical requests with
/// session tokens (aws-sigv4), STS responses with credentials (the smithy runtime), header
/// values (hyper, h2), TLS secrets' surroundings (rustls).
const CHATTY: [&str; 21] = [
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_smithy_types",
    "aws_smithy_xml",
    "aws_smithy_query",
    "aws_config",
    "aws_sdk_sts",
    "aws_credential_types",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "h2",
    "rustls",
    "tokio_rustls",
    "tower",
    "s3s",
    "s3s_fs",
    "redb",
];

fn is_chatty(target: &str) -> bool {
    CHATTY.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether an event may be written at all: events of [`CHATTY`] crates only up to `info`,
/// whatever `RUST_LOG` says (even `aws_sigv4::http_request=trace`), so that no verbosity
/// setting can put a signature or a header value in a log.
pub fn may_log(metadata: &tracing::Metadata<'_>) -> bool {
    *metadata.level() <= tracing::Level::INFO || !is_chatty(metadata.target())
}

/// The log filter: `directives` (`RUST_LOG` syntax, e.g. "info" or "assetgate=debug"), with
/// the [`CHATTY`] crates at `info` by default. [`may_log`] caps them whatever is asked.
pub fn log_filter(directives: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::builder().parse_lossy(directives);
    for crate_name in CHATTY {
        filter = filter.add_directive(format!("{crate_name}=info").parse().expect("a crate directive"));
    }
    filter
}

/// The log's line queue, once logging is installed.
static LOG_LINES: std::sync::OnceLock<lines::LineQueue> = std::sync::OnceLock::new();

/// Installs the process's logger on standard error: `RUST_LOG` (default `info`) through
/// [`log_filter`] and [`may_log`], as text or JSON lines. Lines are written in batches by a
/// thread of their own (see [`lines`]), so a request never waits for a `write(2)`;
/// [`finish_logging`] writes what is queued before the process ends.
pub fn init_logging(json: bool) {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = log_filter(&directives).and(tracing_subscriber::filter::filter_fn(may_log));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let make_writer = match lines::LineQueue::start("assetgate-log", lines::Sink::stderr(), lines::Counters::default())
    {
        Ok(queue) => {
            let queue: &'static lines::LineQueue = LOG_LINES.get_or_init(|| queue);
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || lines::QueuedLine::new(queue))
        }
        // No thread could be started: write each line directly.
        Err(_) => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(make_writer)
        .with_ansi(ansi);
    let layer = if json {
        layer.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    };
    tracing_subscriber::registry().with(layer).init();
}

/// Writes the log lines still queued (before the process ends).
pub fn finish_logging() {
    if let Some(queue) = LOG_LINES.get() {
        queue.finish();
    }
}

/// Header carrying the request id in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The request id: the client's own when it is a sane token (so ids can be followed across
/// systems), otherwise a fresh random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| is_valid_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id)
}

fn is_valid_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> HeaderValue {
    HeaderValue::try_from(crate::hex::random_id()).expect("hex is a valid header value")
}

/// What the access log line says about a request; filled in along the request's path.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub request_id: HeaderValue,
    pub method: Method,
    pub org: Option<String>,
    pub storage: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The token's `sub`.
    pub sub: Option<String>,
    /// The `Range` asked for.
    pub range: Option<String>,
    pub client_ip: Option<std::net::IpAddr>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub error: Option<&'static str>,
    /// Where an object request is reported when it ends: the audit trail, and usage once
    /// its storage is known.
    pub report: Option<Report>,
    started: Instant,
}

/// The sinks an object request ends in.
#[derive(Clone)]
pub struct Report {
    pub audit: Option<std::sync::Arc<crate::audit::Audit>>,
    pub usage: std::sync::Arc<crate::usage::Usage>,
    /// Set once the org and storage exist: only then is it usage.
    pub counts: bool,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Report(audit: {}, counts: {})", self.audit.is_some(), self.counts)
    }
}

impl Outcome {
    /// `complete`, `aborted` or `client_gone`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Aborted => "aborted",
            Outcome::ClientGone => "client_gone",
        }
    }
}

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was sent.
    Complete,
    /// The upstream failed or stalled mid-body; the client connection was aborted.
    Aborted,
    /// The client went away before the end.
    ClientGone,
}

impl AccessLog {
    pub fn new(request_id: HeaderValue, method: Method) -> AccessLog {
        AccessLog {
            request_id,
            method,
            org: None,
            storage: None,
            bucket: None,
            key: None,
            sub: None,
            range: None,
            client_ip: None,
            status: 0,
            upstream_status: None,
            error: None,
            report: None,
            started: Instant::now(),
        }
    }

    /// Writes the line, and reports an object request to usage and the audit trail.
    pub fn finish(&self, bytes: u64, outcome: Outcome) {
        self.log(bytes, outcome);
        let Some(report) = &self.report else { return };
        if let (true, Some(org), Some(storage)) = (report.counts, &self.org, &self.storage) {
            report.usage.record(org, storage, bytes);
        }
        if let Some(audit) = &report.audit {
            audit.write(crate::audit::AuditLine {
                time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                request_id: self.request_id.to_str().unwrap_or(""),
                org: self.org.as_deref(),
                storage: self.storage.as_deref(),
                bucket: self.bucket.as_deref(),
                key: self.key.as_deref(),
                sub: self.sub.as_deref(),
                method: self.method.as_str(),
                range: self.range.as_deref(),
                status: self.status,
                bytes,
                outcome: outcome.label(),
                duration_ms: self.started.elapsed().as_millis() as u64,
                client_ip: self.client_ip,
                truncated: false,
            });
        }
    }

    fn log(&self, bytes: u64, outcome: Outcome) {
        tracing::info!(
            target: "assetgate::access",
            request_id = self.request_id.to_str().unwrap_or(""),
            method = %self.method,
            org = self.org.as_deref().unwrap_or("-"),
            storage = self.storage.as_deref().unwrap_or("-"),
            bucket = self.bucket.as_deref().unwrap_or("-"),
            status = self.status,
            upstream_status = self.upstream_status.unwrap_or(0),
            error = self.error.unwrap_or("-"),
            bytes,
            outcome = ?outcome,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatty_crates_are_matched_by_crate_not_by_prefix() {
        for t in ["aws_sigv4", "aws_sigv4::http_request::sign", "h2::codec", "hyper"] {
            assert!(is_chatty(t), "{t}");
        }
        for t in ["assetgate", "assetgate::access", "hyperion", "h2o", "aws_sigv4x"] {
            assert!(!is_chatty(t), "{t}");
        }
    }

    #[test]
    fn keeps_a_sane_incoming_id() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y:z"));
        assert_eq!(request_id(&h), "abc-123_x.y:z");
    }

    #[test]
    fn replaces_a_missing_or_odd_id() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 24);
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
        h.insert(REQUEST_ID, HeaderValue::from_str(&"a".repeat(129)).unwrap());
        assert_eq!(request_id(&h).len(), 24);
    }
}

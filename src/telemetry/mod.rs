//! What the gateway says about itself: request ids, metric handles (`metrics`), and the
//! process's log, written in batches off the requests' tasks (`lines`), in which no verbosity
//! setting can put a secret, a token or an `Authorization` value.

pub mod access;
pub mod lines;
pub mod metrics;

use http::{HeaderMap, HeaderValue};

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

/// Whether [`init_logging`] installed the process's logger.
static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the process's logger is installed ([`init_logging`]): then every thread logs
/// to it; else (a test's process) each thread logs to its own subscriber, if any.
pub fn logging_installed() -> bool {
    INSTALLED.load(std::sync::atomic::Ordering::Acquire)
}

/// The log's line queue, once logging is installed, and how it writes lines.
static LOG_LINES: std::sync::OnceLock<Log> = std::sync::OnceLock::new();

struct Log {
    lines: lines::LineQueue<access::LogLine>,
    style: access::Style,
    /// Whether the filter lets access lines through (`RUST_LOG` may turn them off).
    access: std::sync::atomic::AtomicBool,
}

/// Installs the process's logger on standard error: `directives` (`RUST_LOG`'s, default
/// `info`) through [`log_filter`] and [`may_log`], as text or JSON lines. Lines are written in batches by a
/// thread of their own (see [`lines`]), so a request never waits for a `write(2)`, and
/// access lines are formatted there ([`access`]); [`finish_logging`] writes what is queued
/// before the process ends.
pub fn init_logging(directives: &str, json: bool) {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = log_filter(directives).and(tracing_subscriber::filter::filter_fn(may_log));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let style = match (json, ansi) {
        (true, _) => access::Style::Json,
        (false, true) => access::Style::Ansi,
        (false, false) => access::Style::Text,
    };
    let make_writer = match lines::LineQueue::start("assetgate-log", lines::Sink::stderr(), lines::Counters::default())
    {
        Ok(queue) => {
            let log = LOG_LINES.get_or_init(|| Log {
                lines: queue,
                style,
                access: std::sync::atomic::AtomicBool::new(false),
            });
            let queue: &'static lines::LineQueue<access::LogLine> = &log.lines;
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
    INSTALLED.store(true, std::sync::atomic::Ordering::Release);
    if let Some(log) = LOG_LINES.get() {
        let enabled = tracing::enabled!(target: access::TARGET, tracing::Level::INFO);
        log.access.store(enabled, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Writes a request's access line: handed to the log's writer, which formats it, when the
/// process's logger is installed; else an event of whatever subscriber there is.
pub fn log_access(line: access::AccessLine) {
    match LOG_LINES.get() {
        Some(log) if log.access.load(std::sync::atomic::Ordering::Relaxed) => {
            lines::push_or_write(&log.lines, access::LogLine::Access(Box::new(line), log.style));
        }
        Some(_) => {}
        None => line.trace(),
    }
}

/// Writes the log lines still queued (before the process ends).
pub fn finish_logging() {
    if let Some(log) = LOG_LINES.get() {
        log.lines.finish();
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

/// 96 bits as 24 hex digits, the shape of the ids labeling platforms use: a keyed hash
/// (SipHash, whose keys std draws from the operating system for each thread) of the thread's
/// count of ids. Unique and unguessable like 96 random bits, without a `getrandom(2)` per
/// request (that was 2 % of a cached answer's CPU).
fn new_request_id() -> HeaderValue {
    use std::hash::BuildHasher as _;
    thread_local! {
        static IDS: (std::collections::hash_map::RandomState, std::cell::Cell<u64>) = Default::default();
    }
    let bytes = IDS.with(|(keys, count)| {
        let n = count.get();
        count.set(n.wrapping_add(1));
        let (high, low) = (keys.hash_one((n, 0u8)), keys.hash_one((n, 1u8)));
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes()[..4]);
        bytes
    });
    HeaderValue::try_from(crate::hex::encode(&bytes)).expect("hex is a valid header value")
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
    fn fresh_ids_are_24_hex_digits_and_never_repeat_across_threads() {
        let ids: Vec<String> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..5000)
                        .map(|_| new_request_id().to_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|t| t.join().unwrap())
            .collect();
        for id in &ids {
            assert!(
                id.len() == 24 && id.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{id}"
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Every digit position varies: no counter shows through.
        for i in 0..24 {
            let at: std::collections::HashSet<u8> = ids.iter().map(|id| id.as_bytes()[i]).collect();
            assert_eq!(at.len(), 16, "position {i}");
        }
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

//! Request ids, metrics (`metrics`) and the access log: one structured line per request, written when the last
//! byte has been sent (or the transfer was cut), with no secret, token or `Authorization`.

pub mod metrics;

use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method};
use rand::RngCore;

/// The log filter: `directives` (`RUST_LOG` syntax, e.g. "info" or "assetgate=debug"). Crates
/// that may print request details at their debug and trace levels stay at `info`, whatever
/// is asked, so that no verbosity setting can put a signature or header value in a log.
pub fn log_filter(directives: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::builder().parse_lossy(directives);
    for quiet in [
        "aws_sigv4=info",
        "hyper=info",
        "hyper_util=info",
        "rustls=info",
        "s3s=info",
    ] {
        filter = filter.add_directive(quiet.parse().expect("static directive"));
    }
    filter
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
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&hex).expect("hex is a valid header value")
}

/// What the access log line says about a request; filled in along the request's path.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub request_id: HeaderValue,
    pub method: Method,
    pub org: Option<String>,
    pub storage: Option<String>,
    pub bucket: Option<String>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub error: Option<&'static str>,
    started: Instant,
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
            status: 0,
            upstream_status: None,
            error: None,
            started: Instant::now(),
        }
    }

    /// Writes the line.
    pub fn finish(&self, bytes: u64, outcome: Outcome) {
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

//! The request's end: the access log line (one per request, written when the last byte has
//! been sent or the transfer was cut, with no secret, token or `Authorization`), and where an
//! object request is reported: usage, and the audit trail.

use std::time::Instant;

use http::{HeaderValue, Method};

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
    /// Who failed, for an error answer: `client`, `upstream` or `gateway`.
    pub side: Option<&'static str>,
    /// Where an object request is reported when it ends: the audit trail, and usage once
    /// its storage is known.
    pub report: Option<Report>,
    /// What the edge cache did (the audit line's `cache`).
    pub cache: Option<&'static str>,
    /// The body came straight from the bucket (not from the edge cache), so its bytes count
    /// as `upstream_bytes` too.
    pub from_bucket: bool,
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
    /// `Complete`, `Aborted` or `ClientGone`: the access log's word.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Complete => "Complete",
            Outcome::Aborted => "Aborted",
            Outcome::ClientGone => "ClientGone",
        }
    }

    /// `complete`, `aborted` or `client_gone`: the audit trail's.
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
        AccessLog::new_at(request_id, method, Instant::now())
    }

    fn new_at(request_id: HeaderValue, method: Method, started: Instant) -> AccessLog {
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
            side: None,
            report: None,
            cache: None,
            from_bucket: false,
            started,
        }
    }

    /// The line, handed to a streamed body that writes it when it ends; what stays behind
    /// (request id, status, who failed) is what the response's headers still need.
    pub fn hand_over(&mut self) -> AccessLog {
        let rest = AccessLog {
            status: self.status,
            side: self.side,
            ..AccessLog::new_at(self.request_id.clone(), self.method.clone(), self.started)
        };
        std::mem::replace(self, rest)
    }

    /// Reports an object request to usage and the audit trail, and writes the line (which
    /// takes the request's names: it is the last to need them).
    pub fn finish(&mut self, bytes: u64, outcome: Outcome) {
        if let Some(report) = &self.report {
            if let (true, Some(org), Some(storage)) = (report.counts, &self.org, &self.storage) {
                let upstream = if self.from_bucket { bytes } else { 0 };
                report.usage.record(org, storage, bytes, upstream);
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
                    cache: self.cache,
                    truncated: false,
                });
            }
        }
        crate::telemetry::log_access(crate::telemetry::access::AccessLine {
            time: std::time::SystemTime::now(),
            request_id: self.request_id.clone(),
            method: self.method.clone(),
            org: self.org.take(),
            storage: self.storage.take(),
            bucket: self.bucket.take(),
            status: self.status,
            upstream_status: self.upstream_status.unwrap_or(0),
            error: self.error,
            side: self.side,
            bytes,
            outcome: outcome.name(),
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
        });
    }
}

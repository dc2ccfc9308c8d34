//! TLS at the edge, side by side: the gateway's rustls (ring) and nginx's OpenSSL serving
//! one self-signed ECDSA P-256 certificate, driven by h2load over HTTP/1.1 and HTTP/2 (ALPN):
//! small objects over kept-alive connections, a large object, and a new connection (a full
//! TLS handshake) for every request.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::drive::{self, Run};

/// The certificate both proxies serve, as PEM files.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A fresh self-signed certificate for 127.0.0.1 in `dir`.
pub fn certificate(dir: &Path) -> Certificate {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("a self-signed certificate");
    let certificate = Certificate {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    std::fs::write(&certificate.cert, generated.cert.pem()).unwrap();
    std::fs::write(&certificate.key, generated.signing_key.serialize_pem()).unwrap();
    certificate
}

/// What a case's CPU is counted per.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub enum Per {
    TenThousandRequests,
    GiB,
    Handshake,
}

/// One TLS measurement: an object over a protocol and a connection pattern.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    /// The object's size in bytes (`obj-{size}` in the bucket).
    pub size: usize,
    pub per: Per,
    http2: bool,
    connections: usize,
    /// HTTP/2 streams in flight per connection.
    streams: usize,
    /// A new connection for each request.
    handshakes: bool,
}

/// The cases: 4 KiB over HTTP/1.1 and over HTTP/2 on kept-alive connections, 64 MiB over
/// both, and 4 KiB with a TLS handshake per request.
pub fn cases() -> Vec<Case> {
    let case = |name, size, per, http2, connections, streams, handshakes| Case {
        name,
        size,
        per,
        http2,
        connections,
        streams,
        handshakes,
    };
    vec![
        case(
            "4 KiB, HTTP/1.1, 16 connections",
            4 << 10,
            Per::TenThousandRequests,
            false,
            16,
            1,
            false,
        ),
        case(
            "4 KiB, HTTP/2, 4 connections x 16 streams",
            4 << 10,
            Per::TenThousandRequests,
            true,
            4,
            16,
            false,
        ),
        case(
            "64 MiB, HTTP/1.1, 4 connections",
            64 << 20,
            Per::GiB,
            false,
            4,
            1,
            false,
        ),
        case("64 MiB, HTTP/2, 4 connections", 64 << 20, Per::GiB, true, 4, 1, false),
        case(
            "4 KiB, a new connection per request",
            4 << 10,
            Per::Handshake,
            false,
            50,
            1,
            true,
        ),
    ]
}

impl Case {
    /// Runs the case against `url` for about `duration`; `None` without h2load.
    pub fn run(&self, url: &str, headers: &[(String, String)], duration: Duration) -> Option<Run> {
        let mut args: Vec<String> = Vec::new();
        if !self.http2 {
            args.push("--h1".into());
        }
        args.extend(["-c".into(), self.connections.to_string()]);
        args.extend(["-m".into(), self.streams.to_string()]);
        if !self.handshakes {
            args.extend(["-D".into(), duration.as_secs().max(1).to_string()]);
            return drive::h2load(url, headers, &args, self.size as u64);
        }
        // One request per client: as many handshakes as requests, repeated until the time
        // is up.
        args.extend(["-n".into(), self.connections.to_string()]);
        let started = Instant::now();
        let mut total = Run::default();
        while started.elapsed() < duration {
            let run = drive::h2load(url, headers, &args, self.size as u64)?;
            total.requests += run.requests;
            total.errors += run.errors;
            total.bytes += run.bytes;
            total.seconds += run.seconds;
        }
        Some(total)
    }
}

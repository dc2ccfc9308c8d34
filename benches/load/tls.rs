//! TLS at the edge, side by side: the gateway's rustls (ring) and nginx's OpenSSL serving
//! one self-signed ECDSA P-256 certificate, driven by h2load over HTTP/1.1 and HTTP/2 (ALPN):
//! small objects over kept-alive connections, a large object, a new connection (a full TLS
//! handshake) for every request, and clients that come back and resume their sessions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

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
    /// Clients that come back, trusting this certificate: see [`Returning`].
    returning: Option<Returning>,
}

/// The cases: 4 KiB over HTTP/1.1 and over HTTP/2 on kept-alive connections, 64 MiB over
/// both, 4 KiB with a TLS handshake per request, and 4 KiB to clients that come back.
pub fn cases(certificate: &Certificate) -> Vec<Case> {
    let case = |name, size, per, http2, connections, streams, handshakes| Case {
        name,
        size,
        per,
        http2,
        connections,
        streams,
        handshakes,
        returning: None,
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
        Case {
            returning: Some(Returning::new(certificate)),
            ..case(
                "4 KiB, 500 clients that come back, a new connection per request",
                4 << 10,
                Per::Handshake,
                false,
                8,
                1,
                true,
            )
        },
    ]
}

impl Case {
    /// Runs the case against `url` for about `duration`; `None` without h2load.
    pub fn run(&self, url: &str, headers: &[(String, String)], duration: Duration) -> Option<Run> {
        if let Some(returning) = &self.returning {
            return Some(returning.run(url, headers, self.connections, duration));
        }
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

/// Labelers come back: a browser keeps the TLS sessions it was given and offers one on its
/// next connection, which then skips the certificate's signature. `CLIENTS` clients, each
/// with a rustls configuration of its own (its own session store), take turns: each asks
/// for the object on a new connection, offering its last session. A target's first run
/// (the unmeasured warm-up) gives every client its first sessions; the runs after it count
/// the handshakes that resumed.
pub struct Returning {
    /// What every client trusts: the run's certificate.
    roots: Arc<rustls::RootCertStore>,
    /// Each target's clients, by its address (sessions of one server are no use to another).
    clients: RefCell<HashMap<String, Arc<Vec<Arc<rustls::ClientConfig>>>>>,
}

/// How many clients come back.
const CLIENTS: usize = 500;

impl Returning {
    fn new(certificate: &Certificate) -> Returning {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&certificate.cert).expect("the run's certificate"))
            .expect("a usable certificate");
        Returning {
            roots: Arc::new(roots),
            clients: RefCell::new(HashMap::new()),
        }
    }

    /// The clients of the target at `authority`, made at its first run.
    fn clients_of(&self, authority: &str) -> Arc<Vec<Arc<rustls::ClientConfig>>> {
        self.clients
            .borrow_mut()
            .entry(authority.to_string())
            .or_insert_with(|| {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let client = || {
                    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                        .with_safe_default_protocol_versions()
                        .expect("ring supports the default TLS versions")
                        .with_root_certificates(self.roots.clone())
                        .with_no_client_auth();
                    config.alpn_protocols = vec![b"http/1.1".to_vec()];
                    Arc::new(config)
                };
                Arc::new((0..CLIENTS).map(|_| client()).collect())
            })
            .clone()
    }

    /// Every client asks once, `threads` at a time, and again until `duration` is up.
    fn run(&self, url: &str, headers: &[(String, String)], threads: usize, duration: Duration) -> Run {
        let uri: http::Uri = url.parse().expect("a URL");
        let authority = uri.authority().expect("an address").as_str().to_string();
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let clients = self.clients_of(&authority);
        let (requests, errors, resumed, bytes) = (
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
        );
        let started = Instant::now();
        let next = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| loop {
                    let turn = next.fetch_add(1, Ordering::Relaxed) as usize;
                    // At least one turn for every client, then until the time is up.
                    if turn >= CLIENTS && started.elapsed() >= duration {
                        break;
                    }
                    match ask(&clients[turn % CLIENTS], &authority, request.as_bytes()) {
                        Some((was_resumed, body)) => {
                            requests.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(body, Ordering::Relaxed);
                            resumed.fetch_add(u64::from(was_resumed), Ordering::Relaxed);
                        }
                        None => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        Run {
            requests: requests.into_inner(),
            errors: errors.into_inner(),
            bytes: bytes.into_inner(),
            seconds: started.elapsed().as_secs_f64(),
            resumed: Some(resumed.into_inner()),
            ..Run::default()
        }
    }
}

/// One request on a new connection: whether its handshake resumed a session, and the bytes
/// of the answer; `None` unless the answer is a 200.
fn ask(client: &Arc<rustls::ClientConfig>, authority: &str, request: &[u8]) -> Option<(bool, u64)> {
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut tls = rustls::ClientConnection::new(client.clone(), name).ok()?;
    let mut socket = TcpStream::connect(authority).ok()?;
    socket.set_nodelay(true).ok()?;
    while tls.is_handshaking() {
        tls.complete_io(&mut socket).ok()?;
    }
    let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let mut stream = rustls::Stream::new(&mut tls, &mut socket);
    stream.write_all(request).ok()?;
    let mut answer = Vec::new();
    // The answer ends with the connection; a server that closes without close_notify still
    // answered.
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(_) => return None,
    }
    answer
        .starts_with(b"HTTP/1.1 200")
        .then_some((resumed, answer.len() as u64))
}

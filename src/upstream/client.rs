//! The pooled HTTP(S) client towards buckets: hyper-util's pooled client over hyper-rustls
//! (ring, webpki roots), with connect and first-byte timeouts, a cap on the requests in
//! flight at once, and transport failures classified into gateway errors.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::guard::{EndpointPolicy, Resolver};
use crate::error::GatewayError;

/// Largest read buffer of an upstream connection: what one stream holds from its bucket
/// while its client is slower (as nginx's `proxy_buffer_size 64k`). 128 KiB held 42.7 MiB
/// peak RSS for 50 slow clients in the load benchmark, 64 KiB 33.4 MiB, with the same MB/s.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// Connections kept idle in the pool this long before they are closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// hyper-util's pooled client over rustls; requests carry no body.
type Pooled = Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// Pooled clients; cloning shares the pools.
#[derive(Clone)]
pub struct UpstreamClient {
    /// One pair of pools per serving thread ([`crate::lane`]): a bucket connection is opened,
    /// driven and reused on the thread of the requests that use it.
    lanes: Arc<[Pools]>,
    /// Which internal addresses API-created storages may still reach.
    policy: Arc<EndpointPolicy>,
    /// How long a bucket may take to send response headers.
    first_byte_timeout: Duration,
    /// One permit per request in flight (`[server].max_upstream_requests`), held until its
    /// response body is gone: every socket to a bucket counts, whichever client opened it.
    slots: Arc<Semaphore>,
    /// How long a request waits for a permit (the connect timeout) before it is refused.
    slot_wait: Duration,
}

/// The pools of one lane.
struct Pools {
    /// For config-file storages.
    trusted: Pooled,
    /// For API-created storages: resolving through the endpoint guard.
    guarded: Pooled,
}

/// A request's place among those in flight; its response carries it (in its extensions)
/// until whoever streams the body takes it along.
#[derive(Clone)]
pub struct UpstreamSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Whose endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A config-file storage: the operator wrote the endpoint.
    Operator,
    /// An API-created storage: the endpoint must pass the guard.
    Tenant,
}

impl UpstreamClient {
    /// Clients trusting the webpki roots plus `extra_roots` (a private CA's certificates),
    /// with pools for `lanes` serving threads.
    pub fn new(
        lanes: usize,
        connect_timeout: Duration,
        first_byte_timeout: Duration,
        max_requests: usize,
        policy: EndpointPolicy,
        extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> UpstreamClient {
        let policy = Arc::new(policy);
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            if let Err(e) = roots.add(cert) {
                tracing::warn!(error = %e, "a certificate of server.upstream_ca_file is not a usable CA");
            }
        }
        let tls = tls_config(Arc::new(roots));
        let lanes = (0..lanes.max(1))
            .map(|_| Pools {
                trusted: build(Resolver::trusted(), connect_timeout, &tls),
                guarded: build(Resolver::guarded(policy.clone()), connect_timeout, &tls),
            })
            .collect();
        UpstreamClient {
            lanes,
            policy,
            first_byte_timeout,
            slots: Arc::new(Semaphore::new(max_requests.max(1))),
            slot_wait: connect_timeout,
        }
    }

    /// Which internal endpoints API-created storages may reach.
    pub fn policy(&self) -> &EndpointPolicy {
        &self.policy
    }

    /// Sends a request (signed, or to a token endpoint) and waits for the response headers.
    /// The response holds its [`UpstreamSlot`] until it (or the slot taken from it) is
    /// dropped.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        trust: Trust,
    ) -> Result<http::Response<Incoming>, GatewayError> {
        let slot = self.slot().await?;
        let mut response = self.send_now(request, trust).await?;
        response.extensions_mut().insert(UpstreamSlot(Arc::new(slot)));
        Ok(response)
    }

    /// A permit to send, waiting at most `slot_wait` for one.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, GatewayError> {
        let waiting = self.slots.clone().acquire_owned();
        match tokio::time::timeout(self.slot_wait, waiting).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                tracing::warn!("server.max_upstream_requests are all in flight; a request was refused");
                Err(GatewayError::UpstreamCapacity)
            }
        }
    }

    async fn send_now(
        &self,
        request: http::Request<Full<Bytes>>,
        trust: Trust,
    ) -> Result<http::Response<Incoming>, GatewayError> {
        let pools = &self.lanes[crate::lane::pick(self.lanes.len())];
        let pending = match trust {
            Trust::Operator => pools.trusted.request(request),
            Trust::Tenant => {
                // The resolver never sees IP literals: check those here.
                let literal = request
                    .uri()
                    .host()
                    .map(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>());
                if let Some(Ok(ip)) = literal {
                    if !self.policy.ip_allowed(ip) {
                        return Err(GatewayError::EndpointNotAllowed);
                    }
                }
                pools.guarded.request(request)
            }
        };
        match tokio::time::timeout(self.first_byte_timeout, pending).await {
            Err(_) => Err(GatewayError::UpstreamTimeout),
            Ok(Err(err)) => Err(classify(&err)),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// The TLS settings every pool shares: ring, and `roots`. One configuration, so that every
/// pool of every lane resumes the TLS sessions any of them made.
fn tls_config(roots: Arc<rustls::RootCertStore>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn build(resolver: Resolver, connect_timeout: Duration, tls: &rustls::ClientConfig) -> Pooled {
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // Bounds what one connection buffers from a bucket: memory stays flat however
        // many slow clients stream at once.
        .http1_max_buf_size(MAX_READ_BUFFER)
        .build(https)
}

/// Transport failures: a connect timeout is 504, anything else that kept us from getting a
/// response (refused, unreachable, DNS, TLS, reset) is 503.
fn classify(err: &hyper_util::client::legacy::Error) -> GatewayError {
    match io_kind(err) {
        Some(std::io::ErrorKind::TimedOut) => return GatewayError::UpstreamTimeout,
        Some(std::io::ErrorKind::PermissionDenied) => return GatewayError::EndpointNotAllowed,
        _ => {}
    }
    let reason = if err.is_connect() {
        "cannot connect to the storage endpoint"
    } else {
        "the connection to the storage endpoint failed"
    };
    tracing::debug!(error = %chain(err), "upstream transport error");
    GatewayError::UpstreamUnavailable(reason.into())
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// The error and its sources on one line, for debug logs.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

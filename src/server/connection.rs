//! One client connection, from accept to close: the TLS handshake, HTTP/1.1 or HTTP/2
//! (hyper-util's auto builder), and beside it a watchdog that enforces the timeouts of README "Connections"
//! (see [`super::activity::verdict`]), closes the connection when the listener needs its
//! slot, and drains it at shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::activity::{verdict, Activity, Reason, Timeouts, Verdict};
use super::slots::Lease;
use super::watched::{Tracked, WatchedIo};
use super::Signal;
use crate::body::Body;
use crate::telemetry::metrics::ConnectionMetrics;

/// How long an idle connection asked to close (HTTP/2 GOAWAY) may take to do so.
const GOODBYE: Duration = Duration::from_secs(1);

/// What a connection needs besides its socket.
pub struct Context<H> {
    pub lease: Lease,
    pub handler: H,
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub timeouts: Timeouts,
    /// Fires when the listener starts draining: finish what is in flight, take nothing new.
    pub draining: Signal,
    /// Fires when the drain period is over: close now.
    pub aborted: Signal,
    pub metrics: ConnectionMetrics,
}

/// Serves one connection until it closes, times out, is asked to make room, or shutdown
/// ends it.
pub async fn serve<H, F>(stream: TcpStream, cx: Context<H>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let activity = cx.lease.activity().clone();
    let peer = stream.peer_addr().ok().map(super::Peer);
    let io = WatchedIo::new(stream, activity.clone());
    match cx.tls.clone() {
        None => http(io, &activity, cx, peer).await,
        Some(acceptor) => {
            let mut aborted = cx.aborted.clone();
            let tls = tokio::select! {
                handshake = acceptor.accept(io) => match handshake {
                    Ok(tls) => tls,
                    Err(err) => return tracing::debug!(error = %err, "TLS handshake failed"),
                },
                reason = watchdog(&activity, &cx.timeouts) => return cx.metrics.closed(reason.label()),
                () = aborted.fired() => return,
            };
            http(tls, &activity, cx, peer).await
        }
    }
}

/// HTTP on an established (plain or TLS) connection.
async fn http<I, H, F>(io: I, activity: &Arc<Activity>, cx: Context<H>, peer: Option<super::Peer>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let (handler, requests) = (cx.handler.clone(), activity.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(peer);
        }
        let guard = requests.request_started(request.version() == Version::HTTP_2);
        let response = handler(request);
        async move { Ok::<_, Infallible>(response.await.map(|body| Tracked::new(body, guard))) }
    });
    let connection = cx.builder.serve_connection(TokioIo::new(io), service);
    // Polled beside its watchdog and the listener's shutdown signals.
    tokio::pin!(connection);
    let (mut draining, mut aborted) = (cx.draining.clone(), cx.aborted.clone());
    let mut drained = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            reason = watchdog(activity, &cx.timeouts) => {
                tracing::debug!(reason = reason.label(), "closing the connection");
                cx.metrics.closed(reason.label());
                if matches!(reason, Reason::IdleTimeout | Reason::Capacity) && !drained {
                    // Nothing is in flight: let HTTP/2 say GOAWAY rather than vanish.
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GOODBYE, connection.as_mut()).await;
                }
                return;
            }
            () = draining.fired(), if !drained => {
                drained = true;
                connection.as_mut().graceful_shutdown();
            }
            () = aborted.fired() => return,
        }
    }
}

/// Completes with the reason the connection must close: a timeout, or the listener needing
/// its slot. Sleeps until the next moment the answer can change.
async fn watchdog(activity: &Activity, timeouts: &Timeouts) -> Reason {
    loop {
        if activity.close_requested() {
            return Reason::Capacity;
        }
        match verdict(&activity.snapshot(), timeouts) {
            Verdict::Close(reason) => return reason,
            Verdict::LookAgainAt(at) => {
                let deadline = tokio::time::Instant::from_std(activity.instant(at));
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = activity.changed() => {}
                }
            }
        }
    }
}

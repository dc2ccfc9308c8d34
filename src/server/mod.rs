//! The listeners: accept connections into a table of at most `max_connections`
//! (`slots`), serve each one (`connection`: optional TLS with ALPN h2 and http/1.1, HTTP/1.1
//! and HTTP/2) under the timeouts of README "Connections" (`activity`), and shut down gracefully when the
//! `shutdown` future completes: stop accepting, let responses in flight finish for up to
//! `shutdown_grace`, then close what is left.

mod activity;
mod connection;
mod lanes;
mod slots;
mod watched;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use activity::{Reason, Timeouts};

use crate::body::Body;
use crate::config::ServerConfig;
use crate::telemetry::metrics::ConnectionMetrics;

/// The address a request's connection comes from, in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Listener settings taken from `[server]`.
#[derive(Clone)]
pub struct ServeOptions {
    /// Header read, idle and client write timeouts.
    pub timeouts: Timeouts,
    /// Requests one HTTP/2 connection may run at once.
    pub http2_max_concurrent_streams: u32,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight responses get after shutdown starts.
    pub shutdown_grace: Duration,
    /// TLS for this listener, if any.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Threads the listener's connections are served on; 1 serves them on the caller's
    /// runtime.
    pub lanes: usize,
}

impl ServeOptions {
    pub fn from_config(server: &ServerConfig) -> ServeOptions {
        ServeOptions {
            timeouts: Timeouts {
                header_read: server.header_read_timeout,
                idle: server.idle_timeout,
                client_write: server.client_write_timeout,
            },
            http2_max_concurrent_streams: server.http2_max_concurrent_streams,
            max_connections: server.max_connections,
            shutdown_grace: server.shutdown_grace,
            tls: None,
            lanes: server.threads,
        }
    }
}

/// What one HTTP/1.1 connection queues for a client before the body waits for the client
/// to take it (hyper's default is about 400 KiB): a slow client holds this much, not more,
/// besides the kernel's socket buffer.
const CLIENT_WRITE_BUFFER: usize = 64 * 1024;

/// The HTTP/1.1 and HTTP/2 settings. Timeouts are the watchdog's (`activity`), not hyper's:
/// hyper's own header timeout would also close idle keep-alive connections at
/// `header_read_timeout` instead of `idle_timeout`.
fn http_builder(options: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(CLIENT_WRITE_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.http2_max_concurrent_streams);
    builder
}

/// Serves `handler` on `listener` until `shutdown` completes: on the calling task's runtime,
/// or with `options.lanes` above 1 on that many threads of their own (README, "Threads"),
/// each accepting from the same socket into its own event loop. The connections of every
/// lane share one table of `max_connections`.
pub async fn run<H, F>(
    listener: TcpListener,
    handler: H,
    options: ServeOptions,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = slots::Slots::new(options.max_connections, metrics.clone());
    let (drain, draining) = Signal::new();
    let (abort, aborted) = Signal::new();
    let acceptor = Acceptor {
        balance: (options.lanes > 1).then(|| lanes::Balance::new(options.lanes)),
        handler,
        builder: Arc::new(http_builder(&options)),
        slots: slots.clone(),
        tls: options.tls.clone(),
        timeouts: options.timeouts,
        draining,
        aborted,
        metrics,
    };
    let (stop_accepting, accepting) = Signal::new();
    let stop = async {
        shutdown.await;
        stop_accepting.fire();
    };
    let lanes = if options.lanes > 1 {
        let mut lanes = match lanes::Lanes::start(options.lanes, listener, acceptor, accepting) {
            Ok(lanes) => lanes,
            Err(err) => {
                tracing::error!(error = %err, "the listener cannot be shared by the serving threads");
                return;
            }
        };
        tokio::join!(lanes.stopped_accepting(), stop);
        Some(lanes)
    } else {
        tokio::join!(acceptor.accept(listener, accepting), stop);
        None
    };
    tracing::info!("shutting down: no new connections, waiting for responses in flight");
    drain.fire();
    tokio::select! {
        () = slots.emptied() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("shutdown grace period over, closing remaining connections");
            abort.fire();
        }
    }
    if let Some(lanes) = lanes {
        lanes.finish().await;
    }
}

/// What a listener needs to take in a connection and serve it, whichever thread accepts it.
#[derive(Clone)]
struct Acceptor<H> {
    /// The lanes' shares of the connections, when there are lanes.
    balance: Option<Arc<lanes::Balance>>,
    handler: H,
    builder: Arc<auto::Builder<TokioExecutor>>,
    slots: Arc<slots::Slots>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeouts: Timeouts,
    /// Fires when the listener starts draining.
    draining: Signal,
    /// Fires when the drain period is over.
    aborted: Signal,
    metrics: ConnectionMetrics,
}

impl<H, F> Acceptor<H>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    /// Accepts connections on `listener` until `stop` fires, each served on a task of the
    /// calling runtime.
    async fn accept(&self, listener: TcpListener, mut stop: Signal) {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop.fired() => return,
            };
            let Some(lease) = self.slots.admit() else {
                tracing::debug!("connection refused: every connection has a request in flight");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let cx = connection::Context {
                lease,
                handler: self.handler.clone(),
                builder: self.builder.clone(),
                tls: self.tls.clone(),
                timeouts: self.timeouts,
                draining: self.draining.clone(),
                aborted: self.aborted.clone(),
                metrics: self.metrics.clone(),
            };
            let Some(balance) = &self.balance else {
                tokio::spawn(connection::serve(stream, cx));
                continue;
            };
            let share = balance.place();
            if share.here() {
                serve_counted(stream, cx, share);
                continue;
            }
            // To another lane, to be registered with its event loop there.
            let Ok(stream) = stream.into_std() else { continue };
            balance.hand(
                share.lane(),
                Box::new(move || match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => serve_counted(stream, cx, share),
                    Err(err) => tracing::debug!(error = %err, "a connection handed to another lane failed"),
                }),
            );
        }
    }
}

/// Serves a connection on a task of the calling thread's runtime, counted on its lane while
/// it lasts.
fn serve_counted<H, F>(stream: tokio::net::TcpStream, cx: connection::Context<H>, share: lanes::Share)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    tokio::spawn(async move {
        let _share = share;
        connection::serve(stream, cx).await;
    });
}

/// A one-way, one-time signal shared by many tasks.
#[derive(Clone)]
pub struct Signal(tokio::sync::watch::Receiver<bool>);

/// Fires its [`Signal`]s.
pub struct Trigger(tokio::sync::watch::Sender<bool>);

impl Signal {
    pub fn new() -> (Trigger, Signal) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Trigger(tx), Signal(rx))
    }

    /// Completes once the trigger fired (at once if it already has).
    pub async fn fired(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

/// One shutdown signal shared by several servers: every clone's [`Stop::wait`] completes once
/// the trigger of [`Stop::after`] has run.
#[derive(Clone)]
pub struct Stop(Signal);

impl Stop {
    /// `(trigger, stop)`: drive `trigger`; it completes when `shutdown` does and then stops
    /// every clone of `stop`.
    pub fn after(shutdown: impl Future<Output = ()>) -> (impl Future<Output = ()>, Stop) {
        let (trigger, signal) = Signal::new();
        let trigger = async move {
            shutdown.await;
            trigger.fire();
        };
        (trigger, Stop(signal))
    }

    /// Completes once shutdown has been asked for.
    pub async fn wait(mut self) {
        self.0.fired().await;
    }
}

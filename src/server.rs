//! The listeners: accept connections (at most `max_connections` at once), optionally TLS
//! (ALPN h2 and http/1.1), serve HTTP/1.1 and HTTP/2 with a header read timeout, and shut
//! down gracefully when the `shutdown` future completes: stop accepting, let responses in
//! flight finish for up to `shutdown_grace`, then return.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::config::ServerConfig;

/// Listener settings taken from `[server]`.
#[derive(Clone)]
pub struct ServeOptions {
    /// Slowloris guard: time allowed to send request headers (and to finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight responses get after shutdown starts.
    pub shutdown_grace: Duration,
    /// TLS for this listener, if any.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl ServeOptions {
    pub fn from_config(server: &ServerConfig) -> ServeOptions {
        ServeOptions {
            header_read_timeout: server.header_read_timeout,
            max_connections: server.max_connections,
            shutdown_grace: server.shutdown_grace,
            tls: None,
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` completes.
pub async fn run<H, F>(listener: TcpListener, handler: H, options: ServeOptions, shutdown: impl Future<Output = ()>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
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
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (builder, handler, watcher, tls) = (
            builder.clone(),
            handler.clone(),
            graceful.watcher(),
            options.tls.clone(),
        );
        let handshake_timeout = options.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => serve_io(&builder, stream, handler, watcher).await,
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_io(&builder, tls_stream, handler, watcher).await,
                    Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, waiting for responses in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.shutdown_grace) => tracing::warn!("shutdown grace period over, closing remaining connections"),
    }
}

/// Serves one connection, plain or TLS, until it closes or shutdown ends it.
async fn serve_io<I, H, F>(builder: &auto::Builder<TokioExecutor>, io: I, handler: H, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = service_fn(move |request| {
        let response = handler(request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service).into_owned();
    let _ = watcher.watch(connection).await;
}

/// Runs the data plane on `data` and, when given, the admin API on `admin`, until
/// `shutdown` completes; both stop accepting at once and drain their connections. While
/// draining, `/readyz` answers 503 so that load balancers stop sending traffic.
pub async fn serve_gateway(
    gateway: Arc<crate::Gateway>,
    data: TcpListener,
    admin: Option<TcpListener>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let draining = gateway.clone();
    let (trigger, stop) = Stop::after(async move {
        shutdown.await;
        draining.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let gw = gateway.clone();
    let data_plane = run(
        data,
        move |r| crate::proxy::handle(gw.clone(), r),
        options.clone(),
        stop.clone().wait(),
    );
    let admin_options = ServeOptions {
        tls: None,
        ..options.clone()
    };
    let admin_plane = async {
        if let Some(listener) = admin {
            let gw = gateway.clone();
            run(
                listener,
                move |r| crate::admin::handle(gw.clone(), r),
                admin_options,
                stop.clone().wait(),
            )
            .await;
        }
    };
    tokio::join!(data_plane, admin_plane, trigger);
}

/// One shutdown signal shared by several servers: every clone's [`Stop::wait`] completes once
/// the trigger of [`Stop::after`] has run.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// `(trigger, stop)`: drive `trigger`; it completes when `shutdown` does and then stops
    /// every clone of `stop`.
    pub fn after(shutdown: impl Future<Output = ()>) -> (impl Future<Output = ()>, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let trigger = async move {
            shutdown.await;
            let _ = tx.send(true);
        };
        (trigger, Stop(rx))
    }

    /// Completes once shutdown has been asked for.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

//! The data-plane listener: accepts connections (at most `max_connections` at once), serves
//! HTTP/1.1 and HTTP/2 (prior knowledge) with a header read timeout, and shuts down
//! gracefully when the `shutdown` future completes: stop accepting, let responses in flight
//! finish for up to `grace`, then return.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::gateway::Gateway;
use crate::proxy;

/// How long in-flight responses may run on after shutdown was asked for.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Listener settings taken from `[server]`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Slowloris guard: time allowed to send request headers.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight responses get after shutdown starts.
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    pub fn from_config(server: &ServerConfig) -> ServeOptions {
        ServeOptions {
            header_read_timeout: server.header_read_timeout,
            max_connections: server.max_connections,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
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
        let gw = gateway.clone();
        let service = service_fn(move |request| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(proxy::handle(gw, request).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
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

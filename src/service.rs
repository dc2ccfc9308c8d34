//! `assetgate serve` as a process: load the config, bind both listeners, TLS, and the
//! signals: SIGHUP reloads the config (and the TLS certificate), SIGTERM or Ctrl+C drains
//! and stops. An invalid new config is refused, logged, and the old one kept.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::server::{self, ServeOptions};
use crate::tls::CertStore;
use crate::Gateway;

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration {path}: {problem}")]
    Config {
        path: PathBuf,
        problem: crate::config::ConfigError,
    },
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] crate::gateway::StartError),
    // The messages carry their cause's text, so the cause is not also a `source` (which
    // `{:#}` would print a second time).
    #[error("server.tls: {0}")]
    Tls(crate::tls::TlsError),
}

/// Serves until SIGTERM or Ctrl+C, reloading on SIGHUP.
pub async fn serve(path: &Path) -> Result<(), ServeError> {
    let config = Config::load(path).map_err(|problem| ServeError::Config {
        path: path.into(),
        problem,
    })?;
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|error| ServeError::Bind { addr, error })
    };
    let (data, admin) = (bind(config.server.listen).await?, bind(config.admin.listen).await?);
    let gateway = Arc::new(Gateway::open(&config).await?);
    let mut options = ServeOptions::from_config(&config.server);
    let certs = match &config.server.tls {
        Some(files) => {
            let store = CertStore::load(files).map_err(ServeError::Tls)?;
            options.tls = Some(store.acceptor());
            store.clone().watch();
            Some(store)
        }
        None => None,
    };
    tracing::info!(
        listen = %config.server.listen,
        admin = %config.admin.listen,
        tls = certs.is_some(),
        "assetgate serving"
    );
    tokio::spawn(reload_on_hangup(path.to_path_buf(), gateway.clone(), certs));
    serve_gateway(gateway.clone(), data, Some(admin), options, terminate()).await;
    // What was counted and logged since the last flush, before the process goes.
    gateway.usage.flush(&gateway.storages).await;
    if let Some(audit) = &gateway.audit {
        audit.finish();
    }
    Ok(())
}

/// Runs the data plane on `data` and, when given, the admin API on `admin`, until
/// `shutdown` completes; both stop accepting at once and drain their connections. While
/// draining, `/readyz` answers 503 so that load balancers stop sending traffic.
pub async fn serve_gateway(
    gateway: Arc<Gateway>,
    data: TcpListener,
    admin: Option<TcpListener>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let draining = gateway.clone();
    let (trigger, stop) = server::Stop::after(async move {
        shutdown.await;
        draining.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let gw = gateway.clone();
    let data_plane = server::run(
        data,
        move |r| crate::proxy::handle(gw.clone(), r),
        options.clone(),
        gateway.metrics.connections("data"),
        stop.clone().wait(),
    );
    // The admin API is light: it runs on the main runtime, beside the background tasks.
    let admin_options = ServeOptions {
        tls: None,
        lanes: 1,
        ..options.clone()
    };
    let admin_plane = async {
        if let Some(listener) = admin {
            let gw = gateway.clone();
            server::run(
                listener,
                move |r| crate::admin::handle(gw.clone(), r),
                admin_options,
                gateway.metrics.connections("admin"),
                stop.clone().wait(),
            )
            .await;
        }
    };
    tokio::join!(data_plane, admin_plane, trigger);
}

/// On every SIGHUP: the config file again, the TLS certificate, and the audit file.
async fn reload_on_hangup(path: PathBuf, gateway: Arc<Gateway>, certs: Option<Arc<CertStore>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            if let Some(audit) = &gateway.audit {
                audit.reopen();
            }
            match Config::load(&path) {
                Ok(config) => {
                    gateway.reload(&config);
                    tracing::info!(config = %path.display(), "configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, config = %path.display(), "configuration NOT reloaded; keeping the running one")
                }
            }
            if let Some(certs) = &certs {
                match certs.reload(true) {
                    Ok(_) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "TLS certificate NOT reloaded; keeping the current one"),
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, gateway, certs);
}

/// Completes on Ctrl+C or SIGTERM.
pub async fn terminate() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}

/// The status of a plain GET to `url` (for container health checks), within 3 seconds.
pub async fn probe(url: &str) -> Result<http::StatusCode, Box<dyn std::error::Error + Send + Sync>> {
    use http_body_util::Empty;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::get(url).body(Empty::<bytes::Bytes>::new())?;
    let response = tokio::time::timeout(std::time::Duration::from_secs(3), client.request(request)).await??;
    Ok(response.status())
}

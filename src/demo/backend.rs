//! An S3-compatible server in this process: `s3s` over `s3s-fs`, on loopback, with SigV4
//! checking on. It backs `assetgate demo` and the fast in-process tests.

use std::net::SocketAddr;
use std::path::Path;

use crate::hex;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::body::BoxError;
use crate::credentials::StaticKeys;
use crate::secret::Secret;
use crate::upstream::{Endpoint, Scheme};

/// A running embedded S3 server. Stops when dropped.
pub struct Backend {
    /// `http://127.0.0.1:{port}`
    pub endpoint: Endpoint,
    /// The only keys it accepts, random per start.
    pub keys: StaticKeys,
    /// The accept loop.
    task: JoinHandle<()>,
}

impl Backend {
    /// Starts serving the buckets under `root` (one directory per bucket).
    pub async fn start(root: &Path) -> Result<Backend, BoxError> {
        let keys = StaticKeys {
            access_key_id: format!("DEMO{}", hex::encode(&hex::random_bytes::<8>()).to_uppercase()),
            secret_access_key: Secret::new(hex::encode(&hex::random_bytes::<20>())),
            session_token: None,
        };
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("cannot open {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose(),
        ));
        let service = builder.build();
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(serve(listener, service));
        let endpoint = Endpoint {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port: Some(port),
        };
        Ok(Backend { endpoint, keys, task })
    }
}

/// Serves an s3s service on `listener` until the listener fails.
pub async fn serve(listener: TcpListener, service: s3s::service::S3Service) {
    let http = auto::Builder::new(TokioExecutor::new());
    while let Ok((stream, _)) = listener.accept().await {
        // Without TCP_NODELAY every keep-alive response stalls on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let conn = http
            .serve_connection(TokioIo::new(stream), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

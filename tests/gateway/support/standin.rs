//! A raw TCP stand-in for a bucket, for what no real S3 server does on demand: hold a body
//! back, die mid-body, never answer, or send CORS headers of its own on every response.
//! Each test scripts the bytes it writes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use assetgate::credentials::StaticKeys;
use assetgate::secret::Secret;
use assetgate::upstream::{Endpoint, Scheme};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::loopback::listen;

pub struct StandIn {
    pub addr: SocketAddr,
    /// Requests received so far.
    pub requests: Arc<AtomicUsize>,
    /// The request heads received, as text.
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    /// Serves every connection with `handler`, after reading the request head.
    pub async fn start<F, Fut>(handler: F) -> StandIn
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        StandIn::with_head(move |stream, _head| handler(stream)).await
    }

    /// A stand-in that answers every request with the same bytes.
    pub async fn replying(reply: &'static [u8]) -> StandIn {
        use tokio::io::AsyncWriteExt;
        StandIn::start(move |mut s| async move {
            let _ = s.write_all(reply).await;
        })
        .await
    }

    /// Like `start`, with the request head (as text) passed to the handler.
    pub async fn with_head<F, Fut>(handler: F) -> StandIn
    where
        F: Fn(TcpStream, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let requests = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (requests.clone(), heads.clone());
        let handler = Arc::new(handler);
        let addr = listen(move |mut stream| {
            let (handler, count, seen) = (handler.clone(), count.clone(), seen.clone());
            async move {
                if let Some(head) = read_head(&mut stream).await {
                    count.fetch_add(1, Ordering::SeqCst);
                    seen.lock().unwrap().push(head.clone());
                    handler(stream, head).await;
                }
            }
        })
        .await;
        StandIn { addr, requests, heads }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port: Some(self.addr.port()),
        }
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Any keys: the stand-in does not check signatures.
pub fn any_keys() -> StaticKeys {
    StaticKeys {
        access_key_id: "STANDIN".into(),
        secret_access_key: Secret::new("standin-secret"),
        session_token: None,
    }
}

/// Reads until the end of the request head; `None` if the peer closed first.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

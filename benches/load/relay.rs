//! A TCP relay of the benchmark's own between a gateway and the backend: it counts the bytes
//! the backend sends (what the bucket's egress would be) and can hold every chunk for a
//! while in each direction, to put the bucket at a distance (this machine's kernel has no
//! `netem`). Bytes keep their order; a delay of 20 ms each way is a 40 ms round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

pub struct Relay {
    pub port: u16,
    /// Bytes the backend sent through the relay.
    pub from_backend: Arc<AtomicU64>,
}

impl Relay {
    pub fn bytes(&self) -> u64 {
        self.from_backend.load(Ordering::Relaxed)
    }
}

/// A relay to `backend_port`, each chunk held `one_way` in each direction.
pub async fn start(backend_port: u16, one_way: Duration) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let from_backend = Arc::new(AtomicU64::new(0));
    let counted = from_backend.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(backend) = TcpStream::connect(("127.0.0.1", backend_port)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = backend.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (backend_read, backend_write) = backend.into_split();
                let none = Arc::new(AtomicU64::new(0));
                tokio::spawn(pump(client_read, backend_write, one_way, none));
                pump(backend_read, client_write, one_way, counted).await;
            });
        }
    });
    Relay { port, from_backend }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pump(
    mut from: impl AsyncReadExt + Unpin + Send + 'static,
    mut to: impl AsyncWriteExt + Unpin + Send + 'static,
    delay: Duration,
    counted: Arc<AtomicU64>,
) {
    // Without a delay the relay holds what a socket would (so that what it counts is what a
    // bucket would have sent); with one, what crosses the link during the delay.
    let capacity = if delay.is_zero() { 2 } else { 512 };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(capacity);
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                counted.fetch_add(n as u64, Ordering::Relaxed);
                if tx.send((Instant::now() + delay, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

//! A fault-injecting TCP relay of the tests' own (this machine's kernel has no `netem`):
//! between the gateway and a real server, it passes bytes both ways until told to add
//! latency, reset connections after some bytes of the answer, stall them, refuse new ones,
//! or drop everything without a word (a partition, as both sides see it: connections stay
//! open and nothing arrives), go away as a server that stopped does (its connections
//! closed, new ones refused), or become unreachable (new connections get no answer to
//! their SYN: the kernel's own behaviour, on loopback, for a port whose queue is full). A
//! fault applies at once, to open connections and new ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use assetgate::upstream::Endpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// What the relay does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass as they come.
    Pass,
    /// Each chunk of the answer waits this long.
    Latency(Duration),
    /// A connection is reset (RST) once this many bytes of the answer crossed it.
    ResetAfter(u64),
    /// A connection stops passing the answer once this many bytes crossed it.
    StallAfter(u64),
    /// New connections are reset as soon as they are accepted.
    Refuse,
    /// Nothing passes either way and nothing is closed: a partition.
    Partition,
    /// The server went away: open connections are closed at once and new ones reset.
    Down,
    /// The host is cut off: open connections are partitioned, and new ones get no answer to
    /// their SYN (the relay's port listens with a full queue, so the kernel drops them), as
    /// with a cable pulled or a firewall that drops; a connect waits for its own timeout.
    Unreachable,
}

impl Fault {
    /// Whether nothing passes on open connections.
    fn blocks(self) -> bool {
        matches!(self, Fault::Partition | Fault::Unreachable)
    }
}

pub struct FaultRelay {
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
}

impl FaultRelay {
    /// A relay to `target` on a fresh loopback port, passing bytes.
    pub async fn start(target: SocketAddr) -> FaultRelay {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 1024);
        let addr = listener.local_addr().unwrap();
        let (fault, watching) = watch::channel(Fault::Pass);
        let mut control = watching.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if *control.borrow_and_update() == Fault::Unreachable {
                    // The port listens with room for no connection, and one fills it.
                    drop(listener.take());
                    let hole = listen(addr, 0);
                    let _filler = TcpStream::connect(addr).await.unwrap();
                    if control.wait_for(|f| *f != Fault::Unreachable).await.is_err() {
                        return;
                    }
                    drop(hole);
                    listener = Some(listen(addr, 1024));
                    continue;
                }
                let open = listener.as_ref().expect("listening");
                tokio::select! {
                    accepted = open.accept() => match accepted {
                        Ok((client, _)) => {
                            tokio::spawn(relay(client, target, watching.clone()));
                        }
                        Err(_) => return,
                    },
                    changed = control.changed() => if changed.is_err() {
                        return;
                    },
                }
            }
        });
        FaultRelay { addr, fault }
    }

    /// The relay as an endpoint for a storage.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("http://{}", self.addr)).unwrap()
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

/// A listener on `addr` (reused: the relay's port changes hands while its connections
/// live) with a queue of `backlog` connections not yet accepted.
fn listen(addr: SocketAddr, backlog: u32) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(backlog).unwrap()
}

/// Closes `stream` with a reset rather than a FIN.
#[allow(deprecated, reason = "a zero linger never blocks: the close is a reset")]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn relay(client: TcpStream, target: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let now = *fault.borrow_and_update();
    if matches!(now, Fault::Refuse | Fault::Down) {
        return reset(client);
    }
    if now.blocks() {
        // Hold the connection until the partition ends, then serve it, unless the server
        // went away meanwhile.
        let _ = fault.wait_for(|f| !f.blocks()).await;
        if *fault.borrow_and_update() == Fault::Down {
            return reset(client);
        }
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return reset(client);
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cut = Arc::new(tokio::sync::Notify::new());
    let fault_watch = fault.clone();
    let mut to_server = fault.clone();
    let cut_upstream = cut.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = tokio::select! {
                read = client_read.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
                _ = cut_upstream.notified() => break,
            };
            if to_server.borrow_and_update().blocks() {
                let _ = to_server.wait_for(|f| !f.blocks()).await;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
        client_read
    };
    let downstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let current = *fault.borrow_and_update();
            match current {
                Fault::Latency(delay) => tokio::time::sleep(delay).await,
                Fault::ResetAfter(limit) if sent + n as u64 > limit => {
                    let keep = limit.saturating_sub(sent) as usize;
                    let _ = client_write.write_all(&buf[..keep]).await;
                    #[allow(deprecated, reason = "a zero linger never blocks: the close is a reset")]
                    let _ = client_write.as_ref().set_linger(Some(Duration::ZERO));
                    cut.notify_one();
                    return client_write;
                }
                Fault::StallAfter(limit) if sent + n as u64 > limit => {
                    let keep = limit.saturating_sub(sent) as usize;
                    let _ = client_write.write_all(&buf[..keep]).await;
                    let _ = fault.wait_for(|f| !matches!(f, Fault::StallAfter(_))).await;
                    let _ = client_write.write_all(&buf[keep..n]).await;
                    sent += n as u64;
                    continue;
                }
                Fault::Partition | Fault::Unreachable => {
                    let _ = fault.wait_for(|f| !f.blocks()).await;
                }
                _ => {}
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            sent += n as u64;
        }
        let _ = client_write.shutdown().await;
        client_write
    };
    // Both halves end before the socket closes: with its linger at zero, in a reset. A
    // server that goes away closes both connections as they are.
    let mut down = fault_watch;
    tokio::select! {
        (read, write) = async { tokio::join!(upstream, downstream) } => drop(read.reunite(write)),
        _ = down.wait_for(|f| *f == Fault::Down) => {}
    }
}

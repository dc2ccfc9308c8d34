//! The serving threads (README, "Threads"): one per lane, each with a current-thread
//! runtime of its own accepting from a duplicate of the same listening socket. Whichever
//! thread is free first takes a new connection, and the connection, its requests and the
//! tasks they start stay on that thread: no work stealing, no request or chunk handed to
//! another thread's queue. A lane that serves more connections than the others hands the
//! next ones it accepts to the least busy lane ([`Balance`]).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::{Acceptor, Signal, Trigger};
use crate::body::Body;

/// The running lanes of one listener.
pub(super) struct Lanes {
    /// One per lane: fires when its accept loop has ended.
    accepting: Vec<oneshot::Receiver<()>>,
    /// One per lane: fires when its thread and everything on it has ended.
    ended: Vec<oneshot::Receiver<()>>,
    /// Ends the lanes' runtimes once their connections are drained or aborted.
    finish: Trigger,
}

impl Lanes {
    /// Starts `count` threads accepting on `listener` until `stop` fires. Fails only when the
    /// listener cannot be shared at all; a lane whose thread cannot start is left out (logged)
    /// as long as one can.
    pub(super) fn start<H, F>(
        count: usize,
        listener: TcpListener,
        acceptor: Acceptor<H>,
        stop: Signal,
    ) -> io::Result<Lanes>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = listener.into_std()?;
        // With the process's logger set (the binary), the lanes log to it as every thread
        // does. Without one (the tests), they log where their starter does, to its thread's
        // subscriber; only then is a thread's own subscriber set, which would take every
        // event off tracing's fast path for the global one.
        let dispatch = (!crate::telemetry::logging_installed()).then(|| tracing::dispatcher::get_default(Clone::clone));
        let (finish, finished) = Signal::new();
        let (mut accepting, mut ended) = (Vec::new(), Vec::new());
        let mut last_error = None;
        for index in 0..count {
            let (accept_done, accept_ended) = oneshot::channel();
            let (thread_done, thread_ended) = oneshot::channel();
            let started = listener.try_clone().and_then(|socket| {
                let (acceptor, stop, finished) = (acceptor.clone(), stop.clone(), finished.clone());
                let dispatch = dispatch.clone();
                std::thread::Builder::new()
                    .name(format!("assetgate-lane-{index}"))
                    .spawn(move || {
                        let _logging = dispatch.as_ref().map(tracing::dispatcher::set_default);
                        crate::lane::enter(index);
                        lane(socket, acceptor, stop, finished, accept_done);
                        let _ = thread_done.send(());
                    })
            });
            match started {
                Ok(_) => {
                    accepting.push(accept_ended);
                    ended.push(thread_ended);
                }
                Err(err) => {
                    tracing::error!(lane = index, error = %err, "a serving thread cannot start");
                    last_error = Some(err);
                }
            }
        }
        if accepting.is_empty() {
            return Err(last_error.unwrap_or_else(|| io::Error::other("no serving thread")));
        }
        Ok(Lanes {
            accepting,
            ended,
            finish,
        })
    }

    /// Completes once every lane has stopped accepting.
    pub(super) async fn stopped_accepting(&mut self) {
        for lane in &mut self.accepting {
            let _ = lane.await;
        }
    }

    /// Ends the lanes (what is still running on them is dropped) and waits for their threads.
    pub(super) async fn finish(self) {
        self.finish.fire();
        for lane in self.ended {
            let _ = lane.await;
        }
    }
}

/// One lane's thread: its runtime accepts until `stop`, then runs its connections on until
/// `finished`.
fn lane<H, F>(
    socket: std::net::TcpListener,
    acceptor: Acceptor<H>,
    stop: Signal,
    mut finished: Signal,
    accept_done: oneshot::Sender<()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "a serving thread cannot start its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        if let Some(balance) = acceptor.balance.clone() {
            tokio::spawn(async move { balance.take_handed().await });
        }
        match TcpListener::from_std(socket) {
            Ok(listener) => acceptor.accept(listener, stop).await,
            Err(err) => tracing::error!(error = %err, "a serving thread cannot listen"),
        }
        let _ = accept_done.send(());
        finished.fired().await;
    });
}

/// A connection handed to another lane: run there, it serves the connection on that lane.
pub(super) type Handed = Box<dyn FnOnce() + Send>;

/// How many connections each lane serves. Connections that arrive together (a load
/// balancer's, a browser's, a load generator's) would otherwise all go to the lane that
/// happens to be awake, which then serves every one of them on one CPU while the others
/// idle: a lane that accepts a connection while it serves more than one above the least
/// busy lane hands it to that lane.
pub(super) struct Balance {
    open: Box<[AtomicUsize]>,
    /// Each lane's queue of connections handed to it, and its end (taken when the lane
    /// starts).
    queues: Box<[mpsc::UnboundedSender<Handed>]>,
    receivers: Mutex<Vec<Option<mpsc::UnboundedReceiver<Handed>>>>,
}

/// A connection's count on its lane, given back when dropped.
pub(super) struct Share {
    balance: Arc<Balance>,
    lane: usize,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.balance.open[self.lane].fetch_sub(1, Ordering::AcqRel);
    }
}

impl Balance {
    pub(super) fn new(lanes: usize) -> Arc<Balance> {
        let (queues, receivers) = (0..lanes.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Arc::new(Balance {
            open: (0..lanes.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            queues: queues.into(),
            receivers: Mutex::new(receivers.into_iter().map(Some).collect()),
        })
    }

    /// The lane a connection accepted by the calling thread's lane goes to, and its count
    /// there: this lane, unless it serves more than one connection above the least busy one.
    pub(super) fn place(self: &Arc<Self>) -> Share {
        let open: Vec<usize> = self.open.iter().map(|n| n.load(Ordering::Acquire)).collect();
        let lane = placed(&open, crate::lane::pick(open.len()));
        self.open[lane].fetch_add(1, Ordering::AcqRel);
        Share {
            balance: self.clone(),
            lane,
        }
    }

    /// Hands `connection` to `lane`; dropped (and so closed) if that lane has ended.
    pub(super) fn hand(&self, lane: usize, connection: Handed) {
        let _ = self.queues[lane].send(connection);
    }

    /// Serves the connections handed to the calling thread's lane, on it, until the lanes
    /// end.
    pub(super) async fn take_handed(&self) {
        let lane = crate::lane::pick(self.open.len());
        let receiver = self
            .receivers
            .lock()
            .ok()
            .and_then(|mut r| r.get_mut(lane).and_then(Option::take));
        let Some(mut receiver) = receiver else { return };
        while let Some(connection) = receiver.recv().await {
            connection();
        }
    }
}

impl Share {
    /// The lane the connection goes to.
    pub(super) fn lane(&self) -> usize {
        self.lane
    }

    /// Whether the connection goes to the calling thread's lane.
    pub(super) fn here(&self) -> bool {
        self.lane == crate::lane::pick(self.balance.open.len())
    }
}

/// The lane a connection goes to when `open` are the lanes' counts and `lane` accepted it.
fn placed(open: &[usize], lane: usize) -> usize {
    let (least, fewest) = open
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or((lane, 0), |(i, n)| (i, *n));
    if open.get(lane).is_some_and(|&mine| mine > fewest + 1) {
        least
    } else {
        lane
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn connections_that_arrive_together_are_shared_by_the_lanes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = super::super::ServeOptions {
            timeouts: super::super::Timeouts {
                header_read: Duration::from_secs(10),
                idle: Duration::from_secs(10),
                client_write: Duration::from_secs(10),
            },
            http2_max_concurrent_streams: 10,
            max_connections: 100,
            shutdown_grace: Duration::from_secs(1),
            tls: None,
            lanes: 2,
        };
        // Each answer says which lane served it.
        let handler = |_request: Request<Incoming>| async {
            Response::new(crate::body::full(crate::lane::current().to_string()))
        };
        let metrics = crate::telemetry::metrics::Metrics::new().connections("data");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(super::super::run(listener, handler, options, metrics, async {
            let _ = stopped.await;
        }));
        // 16 connections at once, then a request on each; they stay open.
        let lanes = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut connections: Vec<_> = (0..16).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
            let mut served = [0usize; 2];
            for connection in &mut connections {
                connection.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
                let mut answer = Vec::new();
                let mut byte = [0u8; 1];
                // The answer's body is one digit, its last byte.
                while !answer.ends_with(b"\r\n\r\n") {
                    connection.read_exact(&mut byte).unwrap();
                    answer.push(byte[0]);
                }
                connection.read_exact(&mut byte).unwrap();
                served[usize::from(byte[0] - b'0')] += 1;
            }
            served
        })
        .await
        .unwrap();
        let _ = stop.send(());
        server.await.unwrap();
        // Within two of each other (both lanes may place one at the same moment).
        assert!(lanes.iter().all(|&n| n >= 6), "connections per lane: {lanes:?}");
    }

    #[test]
    fn a_lane_more_than_one_connection_ahead_hands_the_next_to_the_least_busy() {
        assert_eq!(placed(&[0, 0], 0), 0);
        assert_eq!(placed(&[1, 0], 0), 0);
        assert_eq!(placed(&[2, 0], 0), 1);
        assert_eq!(placed(&[2, 1], 0), 0);
        assert_eq!(placed(&[5, 3, 1, 4], 0), 2);
        assert_eq!(placed(&[5, 3, 1, 4], 2), 2);
        assert_eq!(placed(&[0], 0), 0);
    }

    #[test]
    fn a_share_counts_on_its_lane_until_dropped() {
        let balance = Balance::new(2);
        // This thread is lane 0: two here, then the third goes to lane 1.
        let (a, b) = (balance.place(), balance.place());
        assert!(a.here() && b.here());
        let c = balance.place();
        assert!(!c.here());
        assert_eq!(c.lane, 1);
        drop((a, b));
        assert!(balance.place().here());
        drop(c);
    }
}

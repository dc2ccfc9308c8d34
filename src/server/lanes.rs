//! The serving threads (README, "Threads"): one per lane, each with a current-thread
//! runtime of its own accepting from a duplicate of the same listening socket. Whichever
//! thread is free first takes a new connection, and the connection, its requests and the
//! tasks they start stay on that thread: no work stealing, no request or chunk handed to
//! another thread's queue. A lane that serves more connections than the others lets them
//! take the next ones ([`Balance`]).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

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
        match TcpListener::from_std(socket) {
            Ok(listener) => acceptor.accept(listener, stop).await,
            Err(err) => tracing::error!(error = %err, "a serving thread cannot listen"),
        }
        let _ = accept_done.send(());
        finished.fired().await;
    });
}

/// Longest a lane leaves new connections to the others (when none of them takes one, say
/// because none is accepting any more).
const LEAVE_FOR: Duration = Duration::from_millis(50);

/// How many connections each lane serves. Connections that arrive together (a load
/// balancer's, a browser's, a load generator's) would otherwise all go to the lane that
/// happens to be awake, which then serves every one of them on one CPU while the others
/// idle: a lane serving more than one connection above the least busy one leaves the next
/// connection to the others.
pub(super) struct Balance {
    open: Box<[AtomicUsize]>,
    changed: Notify,
}

/// A connection's count on its lane, given back when dropped.
pub(super) struct Share {
    balance: Arc<Balance>,
    lane: usize,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.balance.open[self.lane].fetch_sub(1, Ordering::AcqRel);
        self.balance.changed.notify_waiters();
    }
}

impl Balance {
    pub(super) fn new(lanes: usize) -> Arc<Balance> {
        Arc::new(Balance {
            open: (0..lanes.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            changed: Notify::new(),
        })
    }

    /// Counts a connection the calling thread's lane took.
    pub(super) fn took(self: &Arc<Self>) -> Share {
        let lane = crate::lane::pick(self.open.len());
        self.open[lane].fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        Share {
            balance: self.clone(),
            lane,
        }
    }

    fn ahead(&self, lane: usize) -> bool {
        let least = self.open.iter().map(|n| n.load(Ordering::Acquire)).min().unwrap_or(0);
        self.open[lane].load(Ordering::Acquire) > least + 1
    }

    /// Returns once the calling thread's lane may take the next connection: at once unless
    /// it serves more than one connection above the least busy lane, else when that is no
    /// longer so, or after [`LEAVE_FOR`].
    pub(super) async fn turn(&self) {
        let lane = crate::lane::pick(self.open.len());
        let until = tokio::time::Instant::now() + LEAVE_FOR;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.ahead(lane) {
                return;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(until) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(lanes.iter().all(|&n| n >= 5), "connections per lane: {lanes:?}");
    }

    /// Lane 0 waiting for its turn on a task of its own (already waiting): how long it
    /// waited, once it is its turn.
    async fn waiting_for_its_turn(balance: &Arc<Balance>) -> tokio::task::JoinHandle<Duration> {
        let balance = balance.clone();
        let waiting = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            balance.turn().await;
            started.elapsed()
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        waiting
    }

    #[tokio::test(start_paused = true)]
    async fn a_lane_ahead_of_the_least_busy_one_waits_for_it_or_for_a_while() {
        let balance = Balance::new(2);
        // This thread is lane 0.
        let (a, _b) = (balance.took(), balance.took());
        let started = tokio::time::Instant::now();
        balance.turn().await;
        assert_eq!(started.elapsed(), LEAVE_FOR, "two ahead of lane 1: waited all it may");
        // Lane 1 takes one: lane 0's turn comes at once.
        let waiting = waiting_for_its_turn(&balance).await;
        let other = std::thread::spawn({
            let balance = balance.clone();
            move || {
                crate::lane::enter(1);
                balance.took()
            }
        })
        .join()
        .unwrap();
        assert_eq!(waiting.await.unwrap(), Duration::ZERO);
        // Ahead again; a connection of its own that ends has the same effect.
        let _c = balance.took();
        let waiting = waiting_for_its_turn(&balance).await;
        drop(a);
        assert_eq!(waiting.await.unwrap(), Duration::ZERO);
        drop(other);
    }
}

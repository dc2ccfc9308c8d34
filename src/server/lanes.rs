//! The serving threads (README, "Threads"): one per lane, each with a current-thread
//! runtime of its own accepting from a duplicate of the same listening socket. Whichever
//! thread is free first takes a new connection, and the connection, its requests and the
//! tasks they start stay on that thread: no work stealing, no request or chunk handed to
//! another thread's queue.

use std::future::Future;
use std::io;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

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

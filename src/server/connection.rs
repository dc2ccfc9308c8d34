//! One client connection, from accept to close: the TLS handshake, HTTP/1.1 or HTTP/2
//! (hyper-util's auto builder), and beside it a watchdog that enforces the timeouts of README "Connections"
//! (see [`super::activity::verdict`]), closes the connection when the listener needs its
//! slot, and drains it at shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::activity::{verdict, Activity, Reason, Timeouts, Verdict};
use super::slots::Lease;
use super::watched::{Tracked, WatchedIo};
use super::Signal;
use crate::body::Body;
use crate::telemetry::metrics::ConnectionMetrics;

/// How long an idle connection asked to close (HTTP/2 GOAWAY) may take to do so.
const GOODBYE: Duration = Duration::from_secs(1);

/// What a connection needs besides its socket.
pub struct Context<H> {
    pub lease: Lease,
    pub handler: H,
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub timeouts: Timeouts,
    /// Fires when the listener starts draining: finish what is in flight, take nothing new.
    pub draining: Signal,
    /// Fires when the drain period is over: close now.
    pub aborted: Signal,
    pub metrics: ConnectionMetrics,
}

/// Serves one connection until it closes, times out, is asked to make room, or shutdown
/// ends it.
pub async fn serve<H, F>(stream: TcpStream, cx: Context<H>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let activity = cx.lease.activity().clone();
    let peer = stream.peer_addr().ok().map(super::Peer);
    let io = WatchedIo::new(stream, activity.clone());
    match cx.tls.clone() {
        None => http(io, &activity, cx, peer).await,
        Some(acceptor) => {
            let mut aborted = cx.aborted.clone();
            let tls = tokio::select! {
                handshake = acceptor.accept(io) => match handshake {
                    Ok(tls) => tls,
                    Err(err) => return tracing::debug!(error = %err, "TLS handshake failed"),
                },
                reason = watchdog(&activity, &cx.timeouts) => return cx.metrics.closed(reason.label()),
                () = aborted.fired() => return,
            };
            http(tls, &activity, cx, peer).await
        }
    }
}

/// HTTP on an established (plain or TLS) connection.
async fn http<I, H, F>(io: I, activity: &Arc<Activity>, cx: Context<H>, peer: Option<super::Peer>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let (handler, requests) = (cx.handler.clone(), activity.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(peer);
        }
        let guard = requests.request_started(request.version() == Version::HTTP_2);
        let response = handler(request);
        async move { Ok::<_, Infallible>(response.await.map(|body| Tracked::new(body, guard))) }
    });
    let connection = cx.builder.serve_connection(TokioIo::new(io), service);
    // Polled beside its watchdog and the listener's shutdown signals.
    tokio::pin!(connection);
    let (mut draining, mut aborted) = (cx.draining.clone(), cx.aborted.clone());
    let mut drained = false;
    loop {
        // Looked at only when one of them woke the task, not on every wakeup of the
        // connection (each look at a waiting signal takes a lock).
        let events = WhenWoken::new(async {
            tokio::select! {
                reason = watchdog(activity, &cx.timeouts) => Event::Close(reason),
                () = draining.fired(), if !drained => Event::Drain,
                () = aborted.fired() => Event::Abort,
            }
        });
        let event = tokio::select! {
            biased;
            _ = connection.as_mut() => return,
            event = events => event,
        };
        match event {
            Event::Close(reason) => {
                tracing::debug!(reason = reason.label(), "closing the connection");
                cx.metrics.closed(reason.label());
                if matches!(reason, Reason::IdleTimeout | Reason::Capacity) && !drained {
                    // Nothing is in flight: let HTTP/2 say GOAWAY rather than vanish.
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GOODBYE, connection.as_mut()).await;
                }
                return;
            }
            Event::Drain => {
                drained = true;
                connection.as_mut().graceful_shutdown();
            }
            Event::Abort => return,
        }
    }
}

/// What ends or changes a connection besides its client.
enum Event {
    Close(Reason),
    Drain,
    Abort,
}

/// A future polled only when it woke its task itself (and the first time), however often
/// the task is woken for other reasons.
struct WhenWoken<F> {
    inner: Pin<Box<F>>,
    wake: Arc<Woken>,
}

struct Woken {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> WhenWoken<F> {
    fn new(inner: F) -> WhenWoken<F> {
        WhenWoken {
            inner: Box::pin(inner),
            wake: Arc::new(Woken {
                woken: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.wake.task.register(cx.waker());
        if !self.wake.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(self.wake.clone());
        self.inner.as_mut().poll(&mut TaskContext::from_waker(&waker))
    }
}

/// Completes with the reason the connection must close: a timeout, or the listener needing
/// its slot. Sleeps until the next moment the answer can change.
async fn watchdog(activity: &Activity, timeouts: &Timeouts) -> Reason {
    loop {
        if activity.close_requested() {
            return Reason::Capacity;
        }
        match verdict(&activity.snapshot(), timeouts) {
            Verdict::Close(reason) => return reason,
            Verdict::LookAgainAt(at) => {
                let deadline = tokio::time::Instant::from_std(activity.instant(at));
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = activity.changed() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Pending forever; counts its polls and keeps the last waker it was given.
    #[derive(Default)]
    struct Watched {
        polls: Mutex<(usize, Option<Waker>)>,
    }

    #[test]
    fn a_future_beside_others_is_polled_only_when_it_woke_the_task() {
        let watched = Arc::new(Watched::default());
        let inner = {
            let watched = watched.clone();
            std::future::poll_fn(move |cx| {
                let mut polls = watched.polls.lock().unwrap();
                polls.0 += 1;
                polls.1 = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
        };
        let mut events = Box::pin(WhenWoken::new(inner));
        let task = Arc::new(Woken {
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(task.clone());
        let mut cx = TaskContext::from_waker(&waker);
        // Polled the first time, then not while the task is woken by others.
        for _ in 0..5 {
            assert!(events.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(watched.polls.lock().unwrap().0, 1);
        // It wakes: the task is woken, and the next poll reaches it.
        let its_waker = watched.polls.lock().unwrap().1.clone().unwrap();
        its_waker.wake();
        assert!(task.woken.load(Ordering::Acquire), "the task was woken");
        assert!(events.as_mut().poll(&mut cx).is_pending());
        assert!(events.as_mut().poll(&mut cx).is_pending());
        assert_eq!(watched.polls.lock().unwrap().0, 2);
    }
}

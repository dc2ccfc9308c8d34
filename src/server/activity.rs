//! What one connection is doing, as its watchdog sees it: when it was accepted, how many
//! requests it has started and has in flight, since when it has been idle, whether writes to
//! the client are stuck and, on HTTP/2, since when a response stream has been waiting for
//! the client to take its bytes (both reported by `watched`). [`verdict`] turns a
//! [`Snapshot`] of that into "look again at" or "close, because".

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::slots::Slots;

/// The connection timeouts of `[server]` (README "Connections").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to the first complete request head: TLS handshake, protocol detection,
    /// HTTP/2 preface and the head itself.
    pub header_read: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle: Duration,
    /// A client that takes no bytes of a response for this long is cut off.
    pub client_write: Duration,
}

/// Why a connection was closed by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No complete request head within `header_read_timeout` of accept.
    HeaderTimeout,
    /// No request in flight for `idle_timeout`.
    IdleTimeout,
    /// The client took no bytes for `client_write_timeout`.
    ClientWriteTimeout,
    /// The listener was full and this connection had been waiting for a request the longest.
    Capacity,
}

impl Reason {
    /// The label of `assetgate_connections_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::HeaderTimeout => "header_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::ClientWriteTimeout => "client_write_timeout",
            Reason::Capacity => "capacity",
        }
    }
}

/// A connection's state at one moment; times are counted from accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub now: Duration,
    /// Requests whose head was complete, ever.
    pub requests: u64,
    /// Requests whose response has not ended.
    pub in_flight: usize,
    /// When the last request in flight ended.
    pub idle_since: Duration,
    /// Since when a write to the client's socket has been pending without progress.
    pub write_blocked_since: Option<Duration>,
    /// HTTP/2: since when the longest-waiting response stream has been waiting for the
    /// client to take the bytes it was handed.
    pub stream_waiting_since: Option<Duration>,
}

/// What the watchdog does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do before this time (counted from accept).
    LookAgainAt(Duration),
    Close(Reason),
}

/// The timeout rules of README "Connections" applied to one snapshot. The next look is never more than a
/// quarter of `client_write_timeout` away: a request may start at any moment without waking
/// the watchdog, and a client that stops reading its response must be cut off within 1.25
/// times that timeout.
pub fn verdict(s: &Snapshot, t: &Timeouts) -> Verdict {
    let due = |since: Duration, limit: Duration, reason| {
        let at = since.saturating_add(limit);
        if s.now >= at {
            Err(reason)
        } else {
            Ok(at)
        }
    };
    let period = s.now + (t.client_write / 4).max(Duration::from_millis(10));
    let stuck = match (s.write_blocked_since, s.stream_waiting_since) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let next = match (s.in_flight, s.requests, stuck) {
        (0, 0, _) => due(Duration::ZERO, t.header_read, Reason::HeaderTimeout).map(|at| at.min(period)),
        (0, _, _) => due(s.idle_since, t.idle, Reason::IdleTimeout).map(|at| at.min(period)),
        // A stuck write has an exact deadline; progress before it only pushes it back.
        (_, _, Some(since)) => due(since, t.client_write, Reason::ClientWriteTimeout),
        (_, _, None) => Ok(period),
    };
    match next {
        Ok(at) => Verdict::LookAgainAt(at),
        Err(reason) => Verdict::Close(reason),
    }
}

/// Encodes an optional time since accept into an atomic: 0 is "none".
fn encode(at: Duration) -> u64 {
    u64::try_from(at.as_millis()).unwrap_or(u64::MAX - 1) + 1
}

fn decode(raw: u64) -> Option<Duration> {
    (raw != 0).then(|| Duration::from_millis(raw - 1))
}

/// One connection's activity, shared by its IO, its response bodies, its watchdog and the
/// listener's table of connections.
pub struct Activity {
    /// When the connection was accepted; every other time is counted from here.
    opened: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last response ended (encoded; 0 before the first).
    idle_since: AtomicU64,
    /// When a socket write started to wait without progress (encoded; 0 when none waits).
    write_blocked_since: AtomicU64,
    /// HTTP/2 response streams, each holding since when it waits for the client (encoded).
    streams: Mutex<Vec<Arc<AtomicU64>>>,
    /// Set when the table asks this connection to make room.
    close_requested: AtomicBool,
    /// Set while the watchdog sleeps on a verdict made with requests in flight: the end of
    /// the last of them must wake it, since the idle deadline then applies.
    watching_busy: AtomicBool,
    /// Wakes the watchdog: a close request, or the last request in flight ended.
    changed: Notify,
    /// The table this connection counts in.
    slots: Arc<Slots>,
    /// Position in the table's queue of connections waiting for a request; 0 when not queued.
    /// Read and written only under the table's lock.
    pub(super) queued: AtomicU64,
}

impl Activity {
    pub(super) fn new(slots: Arc<Slots>) -> Activity {
        Activity {
            opened: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            streams: Mutex::new(Vec::new()),
            close_requested: AtomicBool::new(false),
            watching_busy: AtomicBool::new(false),
            changed: Notify::new(),
            slots,
            queued: AtomicU64::new(0),
        }
    }

    fn now(&self) -> Duration {
        self.opened.elapsed()
    }

    /// The instant `at` (counted from accept) stands for.
    pub fn instant(&self, at: Duration) -> Instant {
        self.opened + at
    }

    /// Whether no request is in flight (the table may then close it to make room).
    pub fn is_waiting_for_a_request(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.close_requested.load(Ordering::Acquire)
    }

    /// A request's head is complete: it is in flight until the returned guard is dropped
    /// (with the response body, or with the handler when the connection goes first).
    pub fn request_started(self: &Arc<Self>, http2: bool) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let stream = http2.then(|| {
            let cell = Arc::new(AtomicU64::new(0));
            self.streams.lock().expect("streams lock").push(cell.clone());
            cell
        });
        // Busy now; the table finds out when it looks (see `Slots::sync`).
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            activity: self.clone(),
            stream,
        }
    }

    fn request_ended(self: &Arc<Self>, stream: Option<&Arc<AtomicU64>>) {
        if let Some(cell) = stream {
            self.streams
                .lock()
                .expect("streams lock")
                .retain(|c| !Arc::ptr_eq(c, cell));
        }
        // Before the count drops, so that a watchdog seeing zero also sees the new time.
        self.idle_since.store(encode(self.now()), Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.slots.sync(self);
            if self.watching_busy.swap(false, Ordering::SeqCst) {
                self.changed.notify_one();
            }
        }
    }

    /// Asks the connection to close (the table needs its slot).
    pub(super) fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Whether the table asked this connection to close.
    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    /// Completes when something the watchdog must look at changed: a close request, or the
    /// last request in flight ended after the snapshot said there were some.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The state now, for the watchdog.
    pub fn snapshot(&self) -> Snapshot {
        // Claimed before the count is read: a request that ends after the read then finds
        // the claim and wakes the watchdog.
        self.watching_busy.store(true, Ordering::SeqCst);
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        if in_flight == 0 {
            self.watching_busy.store(false, Ordering::SeqCst);
        }
        let stream_waiting_since = self
            .streams
            .lock()
            .expect("streams lock")
            .iter()
            .filter_map(|c| decode(c.load(Ordering::Relaxed)))
            .min();
        Snapshot {
            now: self.now(),
            requests: self.requests.load(Ordering::Relaxed),
            in_flight,
            idle_since: decode(self.idle_since.load(Ordering::Relaxed)).unwrap_or_default(),
            write_blocked_since: decode(self.write_blocked_since.load(Ordering::Relaxed)),
            stream_waiting_since,
        }
    }

    /// Records what a write to the client's socket did.
    pub(super) fn note_write<T>(&self, result: &Poll<io::Result<T>>) {
        let blocked = self.write_blocked_since.load(Ordering::Relaxed) != 0;
        match (result.is_pending(), blocked) {
            (true, false) => self.write_blocked_since.store(encode(self.now()), Ordering::Relaxed),
            (false, true) => self.write_blocked_since.store(0, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// One request in flight; see [`Activity::request_started`].
pub struct RequestGuard {
    activity: Arc<Activity>,
    /// HTTP/2 only: since when this stream waits for the client (encoded; 0 when it does not).
    stream: Option<Arc<AtomicU64>>,
}

impl RequestGuard {
    /// Whether the request came over HTTP/2 (its progress is watched per stream).
    pub(super) fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// The response body handed a frame over: until asked for the next one, it waits for the
    /// client.
    pub(super) fn handed_over(&self) {
        if let Some(cell) = &self.stream {
            cell.store(encode(self.activity.now()), Ordering::Relaxed);
        }
    }

    /// The connection asked for the next frame.
    pub(super) fn asked(&self) {
        if let Some(cell) = &self.stream {
            cell.store(0, Ordering::Relaxed);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.activity.request_ended(self.stream.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        client_write: Duration::from_secs(40),
    };

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn snapshot(now: u64) -> Snapshot {
        Snapshot {
            now: at(now),
            requests: 0,
            in_flight: 0,
            idle_since: Duration::ZERO,
            write_blocked_since: None,
            stream_waiting_since: None,
        }
    }

    #[test]
    fn a_connection_without_a_request_is_cut_at_the_header_timeout_from_accept() {
        assert_eq!(verdict(&snapshot(3), &T), Verdict::LookAgainAt(at(10)));
        assert_eq!(verdict(&snapshot(10), &T), Verdict::Close(Reason::HeaderTimeout));
    }

    #[test]
    fn an_idle_connection_is_cut_at_the_idle_timeout_after_its_last_response() {
        let s = Snapshot {
            requests: 3,
            idle_since: at(100),
            ..snapshot(155)
        };
        assert_eq!(verdict(&s, &T), Verdict::LookAgainAt(at(160)));
        assert_eq!(
            verdict(&Snapshot { now: at(160), ..s }, &T),
            Verdict::Close(Reason::IdleTimeout)
        );
    }

    #[test]
    fn an_idle_connection_is_still_looked_at_every_quarter_of_the_write_timeout() {
        // A request may start meanwhile; its client may stop reading at once.
        let s = Snapshot {
            requests: 3,
            idle_since: at(100),
            ..snapshot(120)
        };
        assert_eq!(verdict(&s, &T), Verdict::LookAgainAt(at(130)));
    }

    #[test]
    fn a_long_response_is_not_idle_and_is_looked_at_every_quarter_of_the_write_timeout() {
        let s = Snapshot {
            requests: 1,
            in_flight: 1,
            ..snapshot(5000)
        };
        assert_eq!(verdict(&s, &T), Verdict::LookAgainAt(at(5010)));
    }

    #[test]
    fn a_client_that_takes_no_bytes_is_cut_at_the_write_timeout() {
        let s = Snapshot {
            requests: 1,
            in_flight: 1,
            write_blocked_since: Some(at(50)),
            ..snapshot(70)
        };
        assert_eq!(verdict(&s, &T), Verdict::LookAgainAt(at(90)));
        assert_eq!(
            verdict(&Snapshot { now: at(90), ..s }, &T),
            Verdict::Close(Reason::ClientWriteTimeout)
        );
    }

    #[test]
    fn the_longest_waiting_http2_stream_counts_like_a_blocked_socket() {
        let s = Snapshot {
            requests: 2,
            in_flight: 2,
            write_blocked_since: Some(at(60)),
            stream_waiting_since: Some(at(45)),
            ..snapshot(70)
        };
        assert_eq!(verdict(&s, &T), Verdict::LookAgainAt(at(85)));
        assert_eq!(
            verdict(&Snapshot { now: at(85), ..s }, &T),
            Verdict::Close(Reason::ClientWriteTimeout)
        );
    }

    #[test]
    fn encoded_times_keep_zero_for_none() {
        assert_eq!(decode(0), None);
        assert_eq!(decode(encode(Duration::ZERO)), Some(Duration::ZERO));
        assert_eq!(decode(encode(at(7))), Some(at(7)));
    }
}

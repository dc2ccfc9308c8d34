//! A listener's table of connections: at most `max_connections` at once. When the table is
//! full, a new connection takes the place of the one that has been waiting for a request the
//! longest (a client that connected and sent nothing, or an idle keep-alive connection), the
//! way nginx reuses idle connections when it runs out of them; only when every connection has
//! a request in flight is the newcomer refused. Connections that do nothing useful can thus
//! never lock others out, however many an attacker opens.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::activity::Activity;
use crate::telemetry::metrics::ConnectionMetrics;

/// The table of one listener.
pub struct Slots {
    capacity: usize,
    inner: Mutex<Inner>,
    /// Notified when the last connection is gone.
    emptied: Notify,
    metrics: ConnectionMetrics,
}

struct Inner {
    open: usize,
    /// Connections without a request in flight, oldest first.
    waiting: BTreeMap<u64, Arc<Activity>>,
    next: u64,
}

/// A connection's place in the table, given back when dropped.
pub struct Lease {
    slots: Arc<Slots>,
    activity: Arc<Activity>,
}

impl Lease {
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slots.release(&self.activity);
    }
}

impl Slots {
    pub fn new(capacity: usize, metrics: ConnectionMetrics) -> Arc<Slots> {
        Arc::new(Slots {
            capacity,
            inner: Mutex::new(Inner {
                open: 0,
                waiting: BTreeMap::new(),
                next: 0,
            }),
            emptied: Notify::new(),
            metrics,
        })
    }

    /// A place for a new connection, or `None` when every connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Lease> {
        let mut inner = self.inner.lock().expect("slots lock");
        if inner.open >= self.capacity {
            // The queue keeps a connection whose request started after it was queued (it is
            // only put right when that request ends): such ones are skipped, and queued
            // again when they are idle again.
            let victim = loop {
                let Some((_, waiting)) = inner.waiting.pop_first() else {
                    self.metrics.refused.inc();
                    return None;
                };
                waiting.queued.store(0, Ordering::Relaxed);
                if waiting.is_waiting_for_a_request() {
                    break waiting;
                }
            };
            victim.request_close();
        }
        inner.open += 1;
        self.metrics.open.set(inner.open as i64);
        let activity = Arc::new(Activity::new(self.clone()));
        inner.enqueue(&activity);
        Some(Lease {
            slots: self.clone(),
            activity,
        })
    }

    /// Puts `activity` at the back of the queue of waiting connections (called when its
    /// last request in flight ended). A connection is not taken out of the queue when a
    /// request starts, which would cost every request a second turn of this lock:
    /// [`Slots::admit`] skips the busy ones it finds.
    pub(super) fn sync(&self, activity: &Arc<Activity>) {
        let mut inner = self.inner.lock().expect("slots lock");
        let queued = activity.queued.swap(0, Ordering::Relaxed);
        if queued != 0 {
            inner.waiting.remove(&queued);
        }
        if activity.is_waiting_for_a_request() {
            inner.enqueue(activity);
        }
    }

    fn release(&self, activity: &Arc<Activity>) {
        let mut inner = self.inner.lock().expect("slots lock");
        let queued = activity.queued.swap(0, Ordering::Relaxed);
        if queued != 0 {
            inner.waiting.remove(&queued);
        }
        inner.open -= 1;
        self.metrics.open.set(inner.open as i64);
        if inner.open == 0 {
            self.emptied.notify_waiters();
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().expect("slots lock").open
    }

    /// Completes once no connection is left.
    pub async fn emptied(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    fn enqueue(&mut self, activity: &Arc<Activity>) {
        self.next += 1;
        self.waiting.insert(self.next, activity.clone());
        activity.queued.store(self.next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::Metrics;

    fn slots(capacity: usize) -> (Arc<Slots>, ConnectionMetrics) {
        let metrics = Metrics::new().connections("data");
        (Slots::new(capacity, metrics.clone()), metrics)
    }

    #[test]
    fn a_full_table_closes_the_connection_waiting_longest() {
        let (slots, _) = slots(2);
        let first = slots.admit().unwrap();
        let second = slots.admit().unwrap();
        let third = slots.admit().expect("room is made");
        assert!(first.activity().close_requested());
        assert!(!second.activity().close_requested());
        assert!(!third.activity().close_requested());
    }

    #[test]
    fn busy_connections_are_never_closed_and_a_newcomer_is_refused() {
        let (slots, metrics) = slots(2);
        let a = slots.admit().unwrap();
        let b = slots.admit().unwrap();
        let _ra = a.activity().request_started(false);
        let rb = b.activity().request_started(false);
        assert!(slots.admit().is_none());
        assert_eq!(metrics.refused.get(), 1);
        drop(rb);
        let c = slots.admit().expect("b is idle again");
        assert!(b.activity().close_requested() && !a.activity().close_requested());
        assert_eq!(slots.open(), 3, "b counts until its task lets go");
        drop((b, c));
        assert_eq!((slots.open(), metrics.open.get()), (1, 1));
    }

    #[test]
    fn a_busy_connection_still_in_the_queue_is_skipped_and_queued_again_when_idle() {
        let (slots, metrics) = slots(3);
        let a = slots.admit().unwrap();
        let b = slots.admit().unwrap();
        let c = slots.admit().unwrap();
        // a and b are busy but still at the front of the queue.
        let ra = a.activity().request_started(false);
        let rb = b.activity().request_started(false);
        let _d = slots.admit().expect("c is idle");
        assert!(c.activity().close_requested());
        assert!(!a.activity().close_requested() && !b.activity().close_requested());
        drop(c);
        let _ = slots.admit().expect("d is idle");
        assert!(slots.admit().is_none(), "a, b busy; the newest idle one went");
        assert_eq!(metrics.refused.get(), 1);
        drop(rb);
        let _ = slots.admit().expect("b is idle again, and queued again");
        assert!(b.activity().close_requested() && !a.activity().close_requested());
        drop(ra);
    }

    #[test]
    fn a_connection_idle_again_goes_to_the_back_of_the_queue() {
        let (slots, _) = slots(2);
        let a = slots.admit().unwrap();
        let b = slots.admit().unwrap();
        drop(a.activity().request_started(false));
        let _c = slots.admit().unwrap();
        assert!(b.activity().close_requested() && !a.activity().close_requested());
    }
}

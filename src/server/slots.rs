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
            let Some((_, victim)) = inner.waiting.pop_first() else {
                self.metrics.refused.inc();
                return None;
            };
            victim.queued.store(0, Ordering::Relaxed);
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

    /// Puts `activity` in or out of the queue of waiting connections, as its requests in
    /// flight say now (called when that number leaves or reaches zero).
    pub(super) fn sync(&self, activity: &Arc<Activity>) {
        let mut inner = self.inner.lock().expect("slots lock");
        let queued = activity.queued.load(Ordering::Relaxed);
        match (activity.is_waiting_for_a_request(), queued) {
            (true, 0) => inner.enqueue(activity),
            (false, q) if q != 0 => {
                inner.waiting.remove(&q);
                activity.queued.store(0, Ordering::Relaxed);
            }
            _ => {}
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
    fn a_connection_idle_again_goes_to_the_back_of_the_queue() {
        let (slots, _) = slots(2);
        let a = slots.admit().unwrap();
        let b = slots.admit().unwrap();
        drop(a.activity().request_started(false));
        let _c = slots.admit().unwrap();
        assert!(b.activity().close_requested() && !a.activity().close_requested());
    }
}

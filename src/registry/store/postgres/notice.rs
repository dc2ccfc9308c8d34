//! Change notices: every write announces the storage or external ID it changed on the
//! `assetgate_registry` channel (in its own transaction, so the notice goes out on commit),
//! and each replica listens on a connection of its own.
//!
//! Notices are hints, never data: any database login may send them. So what a replica keeps
//! of them is bounded and merged: a set of at most [`MAX_PENDING`] distinct changes (by org
//! and storage), which the replica takes whole and checks against the database in a few
//! queries. Past the bound the set is dropped and one full comparison scheduled instead, so a
//! flood costs bounded memory and work, and a real change still arrives once it stops.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::{describe, unavailable, StoreError};
use crate::storage::rules::check_id;

/// Distinct pending changes kept at most; past this, one full comparison replaces them.
pub const MAX_PENDING: usize = 1024;

/// The notification channel.
pub(super) const CHANNEL: &str = "assetgate_registry";

/// A change another replica (or this one) made, as announced on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notice {
    /// Storage `id` of `org` was created, changed or deleted.
    Storage { org: String, id: String },
    /// `org` got its external ID.
    ExternalId { org: String },
    /// `org`'s limits were set or removed.
    Limits { org: String },
    /// A purge of `org`'s cached objects was stored.
    Purge { org: String },
}

impl Notice {
    pub(super) fn payload(&self) -> String {
        match self {
            Notice::Storage { org, id } => format!("s {org} {id}"),
            Notice::ExternalId { org } => format!("x {org}"),
            Notice::Limits { org } => format!("l {org}"),
            Notice::Purge { org } => format!("p {org}"),
        }
    }

    /// Org and storage ids have no spaces (`check_id`), so a space separates them; a notice
    /// naming anything else is no change of ours.
    fn parse(payload: &str) -> Option<Notice> {
        let mut parts = payload.split(' ');
        let kind = parts.next()?;
        let org = parts.next().filter(|o| check_id(o).is_ok())?;
        let id = parts.next();
        if id.is_some_and(|i| check_id(i).is_err()) {
            return None;
        }
        let notice = match (kind, org, id) {
            ("s", org, Some(id)) => Notice::Storage {
                org: org.into(),
                id: id.into(),
            },
            ("x", org, None) => Notice::ExternalId { org: org.into() },
            ("l", org, None) => Notice::Limits { org: org.into() },
            ("p", org, None) => Notice::Purge { org: org.into() },
            _ => return None,
        };
        parts.next().is_none().then_some(notice)
    }
}

/// What a replica has to look at next.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Distinct changes announced since the last batch.
    pub notices: Vec<Notice>,
    /// More were announced than are kept: compare everything instead.
    pub overflowed: bool,
}

#[derive(Default)]
struct PendingSet {
    notices: HashSet<Notice>,
    overflowed: bool,
    closed: bool,
}

/// The changes announced and not yet taken, merged and bounded.
#[derive(Default)]
pub struct Pending {
    set: Mutex<PendingSet>,
    arrived: Notify,
}

impl Pending {
    /// Adds a change (a repeat is merged with the first); past [`MAX_PENDING`] distinct
    /// ones, drops them all and asks for a full comparison.
    pub fn push(&self, notice: Notice) {
        let mut set = self.set.lock().expect("pending notices");
        if set.overflowed {
            return;
        }
        if set.notices.len() >= MAX_PENDING && !set.notices.contains(&notice) {
            set.notices = HashSet::new();
            set.overflowed = true;
        } else {
            set.notices.insert(notice);
        }
        drop(set);
        self.arrived.notify_one();
    }

    /// The connection is gone: [`Pending::next`] answers `None` once drained.
    fn close(&self) {
        self.set.lock().expect("pending notices").closed = true;
        self.arrived.notify_one();
    }

    /// Everything pending, once there is something; `None` once the connection is lost.
    pub async fn next(&self) -> Option<Batch> {
        loop {
            let arrived = self.arrived.notified();
            {
                let mut set = self.set.lock().expect("pending notices");
                if set.overflowed || !set.notices.is_empty() {
                    let notices = std::mem::take(&mut set.notices).into_iter().collect();
                    let overflowed = std::mem::take(&mut set.overflowed);
                    return Some(Batch { notices, overflowed });
                }
                if set.closed {
                    return None;
                }
            }
            arrived.await;
        }
    }
}

/// The notices of one listening connection.
pub struct Listener {
    pub pending: Arc<Pending>,
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
}

pub(super) async fn listen_with<T>(config: &tokio_postgres::Config, tls: T) -> Result<Listener, StoreError>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await.map_err(unavailable("connect"))?;
    let pending = Arc::new(Pending::default());
    let sink = Arc::downgrade(&pending);
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            let Some(pending) = sink.upgrade() else { return };
            match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(notice) = Notice::parse(n.payload()) {
                        pending.push(notice);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %describe(&e), "the shared registry's notice connection failed");
                    pending.close();
                    return;
                }
                None => {
                    pending.close();
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(unavailable("listen"))?;
    Ok(Listener {
        pending,
        _client: client,
    })
}

pub(super) async fn notify(tx: &deadpool_postgres::Transaction<'_>, notice: &Notice) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &notice.payload()])
        .await
        .map_err(unavailable("notify"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_nonsense_is_ignored() {
        for notice in [
            Notice::Storage {
                org: "acme".into(),
                id: "main".into(),
            },
            Notice::ExternalId { org: "acme".into() },
            Notice::Limits { org: "acme".into() },
            Notice::Purge { org: "acme".into() },
        ] {
            assert_eq!(Notice::parse(&notice.payload()), Some(notice));
        }
        for bad in [
            "",
            "s acme",
            "x",
            "x acme extra",
            "s a b c",
            "q acme main",
            "p acme main",
            "x ac/me",
            "s acme ma\u{0}in",
        ] {
            assert_eq!(Notice::parse(bad), None, "{bad}");
        }
        let long = format!("s acme {}", "a".repeat(129));
        assert_eq!(Notice::parse(&long), None, "ids are bounded");
    }

    fn storage(id: usize) -> Notice {
        Notice::Storage {
            org: "acme".into(),
            id: format!("s{id}"),
        }
    }

    #[tokio::test]
    async fn repeated_notices_merge_and_a_flood_becomes_one_comparison() {
        let pending = Pending::default();
        for _ in 0..10_000 {
            pending.push(storage(1));
            pending.push(Notice::Limits { org: "acme".into() });
        }
        let batch = pending.next().await.unwrap();
        assert_eq!((batch.notices.len(), batch.overflowed), (2, false));
        for i in 0..MAX_PENDING {
            pending.push(storage(i));
        }
        assert_eq!(pending.set.lock().unwrap().notices.len(), MAX_PENDING, "at the bound");
        for i in 0..1_000_000 {
            pending.push(storage(i));
        }
        assert!(pending.set.lock().unwrap().notices.is_empty(), "nothing kept past it");
        assert_eq!(
            pending.next().await.unwrap(),
            Batch {
                notices: vec![],
                overflowed: true
            }
        );
        pending.push(storage(7));
        pending.close();
        assert_eq!(pending.next().await.unwrap().notices, [storage(7)]);
        assert_eq!(pending.next().await, None, "drained, then closed");
    }
}

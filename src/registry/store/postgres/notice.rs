//! Change notices: every write announces the storage or external ID it changed on the
//! `assetgate_registry` channel (in its own transaction, so the notice goes out on commit),
//! and each replica listens on a connection of its own.

use tokio::sync::mpsc;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::{describe, unavailable, StoreError};

/// The notification channel.
pub(super) const CHANNEL: &str = "assetgate_registry";

/// A change another replica (or this one) made, as announced on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Storage `id` of `org` was created, changed or deleted.
    Storage { org: String, id: String },
    /// `org` got its external ID.
    ExternalId { org: String },
    /// `org`'s limits were set or removed.
    Limits { org: String },
}

impl Notice {
    pub(super) fn payload(&self) -> String {
        match self {
            Notice::Storage { org, id } => format!("s {org} {id}"),
            Notice::ExternalId { org } => format!("x {org}"),
            Notice::Limits { org } => format!("l {org}"),
        }
    }

    /// Org and storage ids have no spaces (`check_id`), so a space separates them.
    fn parse(payload: &str) -> Option<Notice> {
        let mut parts = payload.split(' ');
        let notice = match (parts.next()?, parts.next()?, parts.next()) {
            ("s", org, Some(id)) => Notice::Storage {
                org: org.into(),
                id: id.into(),
            },
            ("x", org, None) => Notice::ExternalId { org: org.into() },
            ("l", org, None) => Notice::Limits { org: org.into() },
            _ => return None,
        };
        parts.next().is_none().then_some(notice)
    }
}

/// The notices of one listening connection; `recv` answers `None` once it is lost.
pub struct Listener {
    pub notices: mpsc::UnboundedReceiver<Notice>,
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
}

pub(super) async fn listen_with<T>(config: &tokio_postgres::Config, tls: T) -> Result<Listener, StoreError>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await.map_err(unavailable("connect"))?;
    let (tx, notices) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(notice) = Notice::parse(n.payload()) {
                        if tx.send(notice).is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %describe(&e), "the shared registry's notice connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(unavailable("listen"))?;
    Ok(Listener {
        notices,
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
        ] {
            assert_eq!(Notice::parse(&notice.payload()), Some(notice));
        }
        for bad in ["", "s acme", "x", "x acme extra", "s a b c", "q acme main"] {
            assert_eq!(Notice::parse(bad), None, "{bad}");
        }
    }
}

//! Purges of the edge cache for every replica: the replica that answers a purge writes it
//! here and announces it like a change, and every replica reads the purges after the last
//! one it applied. Rows are authenticated by the replica that wrote them (a tag under the
//! master key), so that a database login cannot empty every replica's cache; they are kept
//! for a day, long enough for a replica that lost the database for a while to catch up.

use super::notice::notify;
use super::{unavailable, Notice, PostgresStore};
use crate::registry::store::StoreError;

/// A purge as stored: its place in the order of purges, its org, what it names (JSON), and
/// its tag.
#[derive(Debug, Clone)]
pub struct StoredPurge {
    pub seq: i64,
    pub org: String,
    pub purge: String,
    pub tag: String,
}

/// Purges read at most per query.
const PAGE: i64 = 1000;

impl PostgresStore {
    /// Stores a purge of `org` and announces it; drops purges older than a day.
    pub async fn put_purge(&self, org: &str, purge: &str, tag: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable("begin"))?;
        tx.execute(
            "INSERT INTO assetgate_cache_purges (org, purge, tag) VALUES ($1, $2::text::jsonb, $3)",
            &[&org, &purge, &tag],
        )
        .await
        .map_err(unavailable("store a purge"))?;
        tx.execute(
            "DELETE FROM assetgate_cache_purges WHERE created_at < now() - interval '1 day'",
            &[],
        )
        .await
        .map_err(unavailable("drop old purges"))?;
        notify(&tx, &Notice::Purge { org: org.into() }).await?;
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(())
    }

    /// Where the purges stored so far end: a replica starting now applies only later ones.
    pub async fn last_purge(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT coalesce(max(seq), 0) FROM assetgate_cache_purges", &[])
            .await
            .map_err(unavailable("read purges"))?;
        Ok(row.get(0))
    }

    /// The purges stored after `seq`, in order, a page at a time.
    pub async fn purges_after(&self, seq: i64) -> Result<Vec<StoredPurge>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                // No field of a purge written by a replica is long: a longer one (written by
                // someone else) is read cut, and does not verify.
                "SELECT seq, left(org, 200), left(purge::text, 4096), left(tag, 200)
                 FROM assetgate_cache_purges WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&seq, &PAGE],
            )
            .await
            .map_err(unavailable("read purges"))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredPurge {
                seq: r.get(0),
                org: r.get(1),
                purge: r.get(2),
                tag: r.get(3),
            })
            .collect())
    }
}

//! What the shared registry keeps per org besides storages: usage counts per storage and
//! UTC day, added to by every replica (one upsert per flush), and the limits set through the
//! admin API, announced like storages so every replica applies them at once.

use super::notice::notify;
use super::{unavailable, Notice, PostgresStore};
use crate::registry::store::{StoreError, UsageCount};

impl PostgresStore {
    /// Adds `counts` to the stored ones in one statement.
    pub async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&UsageCount) -> &str| counts.iter().map(f).collect::<Vec<&str>>();
        let (orgs, storages, days) = (column(|c| &c.org), column(|c| &c.storage), column(|c| &c.day));
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let requests: Vec<i64> = counts.iter().map(|c| number(c.requests)).collect();
        let bytes: Vec<i64> = counts.iter().map(|c| number(c.bytes)).collect();
        let upstream: Vec<i64> = counts.iter().map(|c| number(c.upstream_bytes)).collect();
        self.client()
            .await?
            .execute(
                "INSERT INTO assetgate_usage (org, storage, day, requests, bytes, upstream_bytes)
                 SELECT o, s, d::date, r, b, u
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])
                     AS t(o, s, d, r, b, u)
                 ON CONFLICT (org, storage, day) DO UPDATE
                 SET requests = assetgate_usage.requests + EXCLUDED.requests,
                     bytes = assetgate_usage.bytes + EXCLUDED.bytes,
                     upstream_bytes = assetgate_usage.upstream_bytes + EXCLUDED.upstream_bytes",
                &[&orgs, &storages, &days, &requests, &bytes, &upstream],
            )
            .await
            .map_err(unavailable("add usage"))?;
        Ok(())
    }

    /// The org's counts for days `from..=to`.
    pub async fn usage(&self, org: &str, from: &str, to: &str) -> Result<Vec<UsageCount>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT storage, day::text, requests, bytes, upstream_bytes FROM assetgate_usage
                 WHERE org = $1 AND day BETWEEN $2::text::date AND $3::text::date ORDER BY storage, day",
                &[&org, &from, &to],
            )
            .await
            .map_err(unavailable("read usage"))?;
        Ok(rows
            .into_iter()
            .map(|r| UsageCount {
                org: org.to_string(),
                storage: r.get(0),
                day: r.get(1),
                requests: r.get::<_, i64>(2).max(0) as u64,
                bytes: r.get::<_, i64>(3).max(0) as u64,
                upstream_bytes: r.get::<_, i64>(4).max(0) as u64,
            })
            .collect())
    }

    /// Sets or removes the org's limits, and announces it.
    pub async fn put_limits(&self, org: &str, limits: Option<&str>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable("begin"))?;
        match limits {
            Some(json) => tx
                .execute(
                    "INSERT INTO assetgate_limits (org, limits) VALUES ($1, $2::text::jsonb)
                     ON CONFLICT (org) DO UPDATE SET limits = EXCLUDED.limits, updated_at = now()",
                    &[&org, &json],
                )
                .await
                .map_err(unavailable("store limits"))?,
            None => tx
                .execute("DELETE FROM assetgate_limits WHERE org = $1", &[&org])
                .await
                .map_err(unavailable("remove limits"))?,
        };
        notify(&tx, &Notice::Limits { org: org.into() }).await?;
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(())
    }

    /// The limits of those of `orgs` that have some, in one query.
    pub async fn limits_of(&self, orgs: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT org, limits::text FROM assetgate_limits WHERE org = ANY($1)",
                &[&orgs],
            )
            .await
            .map_err(unavailable("read limits"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every org's limits.
    pub async fn all_limits(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT org, limits::text FROM assetgate_limits ORDER BY org", &[])
            .await
            .map_err(unavailable("read limits"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

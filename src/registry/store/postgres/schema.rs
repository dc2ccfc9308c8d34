//! The shared registry's schema: versioned migrations, applied once each, by one replica at
//! a time (an advisory lock serialises replicas starting together).

use super::{unavailable, StoreError};

/// Any constant shared by all replicas: the key of the migrations' advisory lock.
const MIGRATION_LOCK: i64 = 0x6173_7365_7467_6174;

/// Schema versions, applied in order, each once (`assetgate_schema_migrations`). Only ever
/// add to this list: replicas of the previous version may still run beside a new one.
const MIGRATIONS: [(i32, &str); 4] = [
    (
        1,
        "CREATE TABLE assetgate_storages (
        org text NOT NULL,
        id text NOT NULL,
        record jsonb NOT NULL,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (org, id)
    );
    CREATE TABLE assetgate_external_ids (
        org text PRIMARY KEY,
        external_id text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
    );",
    ),
    (
        2,
        "CREATE TABLE assetgate_usage (
        org text NOT NULL,
        storage text NOT NULL,
        day date NOT NULL,
        requests bigint NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (org, storage, day)
    );
    CREATE TABLE assetgate_limits (
        org text PRIMARY KEY,
        limits jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );",
    ),
    // What came from the bucket; replicas of the previous version add 0.
    (
        3,
        "ALTER TABLE assetgate_usage ADD COLUMN upstream_bytes bigint NOT NULL DEFAULT 0;",
    ),
    // Edge cache purges for every replica; replicas of the previous versions ignore them.
    (
        4,
        "CREATE TABLE assetgate_cache_purges (
        seq bigserial PRIMARY KEY,
        org text NOT NULL,
        purge jsonb NOT NULL,
        tag text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );",
    ),
];

/// Applies the migrations this database lacks, one replica at a time.
pub(super) async fn migrate(client: &deadpool_postgres::Object) -> Result<(), StoreError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(unavailable("begin migrations"))?;
    let result = async {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS assetgate_schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .await?;
        let applied: Vec<i32> = client
            .query("SELECT version FROM assetgate_schema_migrations", &[])
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if !applied.contains(&version) {
                client.batch_execute(sql).await?;
                client
                    .execute(
                        "INSERT INTO assetgate_schema_migrations (version) VALUES ($1)",
                        &[&version],
                    )
                    .await?;
                tracing::info!(version, "shared registry schema migrated");
            }
        }
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if applied.iter().any(|v| *v > newest) {
            tracing::warn!("the shared registry's schema is newer than this assetgate; running on it as it is");
        }
        Ok::<_, tokio_postgres::Error>(())
    }
    .await;
    match result {
        Ok(()) => client
            .batch_execute("COMMIT")
            .await
            .map_err(unavailable("commit migrations")),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(unavailable("migrate the schema")(e))
        }
    }
}

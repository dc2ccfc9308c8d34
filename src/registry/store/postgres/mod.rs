//! The shared registry in PostgreSQL (tokio-postgres, a deadpool pool, TLS through rustls
//! with ring): every replica reads and writes the same two tables, and every write announces
//! itself on the `assetgate_registry` channel (LISTEN/NOTIFY) in its own transaction, so the
//! notice goes out exactly when the change is committed. The schema is created and migrated
//! on first connection, under an advisory lock, so replicas starting together are safe.

use std::sync::Arc;
use std::time::Duration;

mod notice;
mod org_data;
mod purges;
mod schema;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

use notice::{listen_with, notify};
pub use notice::{Batch, Listener, Notice, Pending, MAX_PENDING};
pub use purges::StoredPurge;

use super::{Loaded, StoreError, StoredRow, StoredStorage};
use crate::config::{DatabaseTls, DatabaseUrl};

/// Storages read per query while loading.
const LOAD_PAGE: i64 = 5000;

/// How long a write waits for a database connection before answering `registry_unavailable`.
const CONNECTION_WAIT: Duration = Duration::from_secs(3);

pub struct PostgresStore {
    url: DatabaseUrl,
    pool: Pool,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Set once the schema is known to be current (per process).
    migrated: OnceCell<()>,
}

fn unavailable(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{what}: {}", describe(&e)))
}

/// A database error without the query (which could hold values) but with its causes
/// (`error performing TLS handshake: invalid peer certificate: UnknownIssuer`).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl PostgresStore {
    /// The store of `url`; connects lazily, on first use.
    pub fn new(
        url: &DatabaseUrl,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<PostgresStore, String> {
        let mut connect = url.connect.clone();
        if connect.get_connect_timeout().is_none() {
            connect.connect_timeout(CONNECTION_WAIT);
        }
        // A database that vanishes without closing its sockets is noticed within a minute.
        connect
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(20))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        if url.tls == DatabaseTls::Prefer {
            tracing::warn!(
                database = %url.describe(),
                "registry.url has sslmode=prefer: the connection falls back to plain text (the password and sealed records readable on the way) whenever the server does not offer TLS, which anyone on the path can arrange; use sslmode=verify-full (or require)"
            );
        }
        let tls = match url.tls {
            DatabaseTls::Disable => None,
            DatabaseTls::Prefer | DatabaseTls::Require => Some(rustls_connector(url, extra_roots)?),
        };
        let config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(connect.clone(), tls.clone(), config),
            None => Manager::from_config(connect.clone(), NoTls, config),
        };
        let pool = Pool::builder(manager)
            .max_size(4)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot set up the database pool: {e}"))?;
        Ok(PostgresStore {
            url: DatabaseUrl { connect, ..url.clone() },
            pool,
            tls,
            migrated: OnceCell::new(),
        })
    }

    /// `user@host:port/db`, for logs.
    pub fn describe(&self) -> String {
        self.url.describe()
    }

    /// A pooled connection, with the schema migrated.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let client = self.pool.get().await.map_err(|e| {
            let cause = match e {
                deadpool_postgres::PoolError::Backend(e) => describe(&e),
                other => other.to_string(),
            };
            StoreError::Unavailable(format!("cannot reach the database {}: {cause}", self.describe()))
        })?;
        self.migrated.get_or_try_init(|| schema::migrate(&client)).await?;
        Ok(client)
    }

    /// Everything stored.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded {
            external_ids: self.external_ids().await?,
            limits: self.all_limits().await?,
            ..Loaded::default()
        };
        self.each_storage(&mut |r| loaded.storages.push(r)).await?;
        Ok(loaded)
    }

    /// Hands every stored storage to `visit`, read in pages, so that memory stays flat
    /// however many storages there are.
    pub async fn each_storage(&self, visit: &mut (dyn FnMut(StoredRow) + Send)) -> Result<(), StoreError> {
        let client = self.client().await?;
        let (mut org, mut id) = (String::new(), String::new());
        loop {
            let rows = client
                .query(
                    "SELECT org, id, record::text, version FROM assetgate_storages
                     WHERE (org, id) > ($1, $2) ORDER BY org, id LIMIT $3",
                    &[&org, &id, &LOAD_PAGE],
                )
                .await
                .map_err(unavailable("load storages"))?;
            let Some(last) = rows.last() else { return Ok(()) };
            (org, id) = (last.get(0), last.get(1));
            for row in rows {
                visit(decode(row.get(0), row.get(1), row.get(2), row.get(3)));
            }
        }
    }

    /// (org, id, version) of every stored storage: what a resync compares.
    pub async fn versions(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT org, id, version FROM assetgate_storages", &[])
            .await
            .map_err(unavailable("list versions"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect())
    }

    /// (org, id, version) of those of `keys` (org, id) that are stored, in one query.
    pub async fn versions_of(&self, keys: &[(String, String)]) -> Result<Vec<(String, String, u64)>, StoreError> {
        let orgs: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT s.org, s.id, s.version FROM assetgate_storages s
                 JOIN unnest($1::text[], $2::text[]) AS k(org, id) ON s.org = k.org AND s.id = k.id",
                &[&orgs, &ids],
            )
            .await
            .map_err(unavailable("compare versions"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect())
    }

    /// The external IDs of those of `orgs` that have one, in one query.
    pub async fn external_ids_of(&self, orgs: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT org, external_id FROM assetgate_external_ids WHERE org = ANY($1)",
                &[&orgs],
            )
            .await
            .map_err(unavailable("read external IDs"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn get(&self, org: &str, id: &str) -> Result<Option<StoredRow>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record::text, version FROM assetgate_storages WHERE org = $1 AND id = $2",
                &[&org, &id],
            )
            .await
            .map_err(unavailable("read a storage"))?;
        Ok(row.map(|r| decode(org, id, r.get(0), r.get(1))))
    }

    /// Every external ID (what a resync compares).
    pub async fn external_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT org, external_id FROM assetgate_external_ids", &[])
            .await
            .map_err(unavailable("load external IDs"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn insert(&self, record: &StoredStorage) -> Result<(), StoreError> {
        let (json, version) = (encode(record), record.version as i64);
        let rows = self
            .write(
                &record.org,
                &record.id,
                "INSERT INTO assetgate_storages (org, id, record, version) VALUES ($1, $2, $3::text::jsonb, $4)
                 ON CONFLICT (org, id) DO NOTHING",
                &[&record.org, &record.id, &json, &version],
            )
            .await?;
        match rows {
            0 => Err(StoreError::Exists(record.id.clone())),
            _ => Ok(()),
        }
    }

    pub async fn update(&self, record: &StoredStorage, expected: u64) -> Result<(), StoreError> {
        let (json, version, expected) = (encode(record), record.version as i64, expected as i64);
        let rows = self
            .write(
                &record.org,
                &record.id,
                "UPDATE assetgate_storages SET record = $3::text::jsonb, version = $4, updated_at = now()
                 WHERE org = $1 AND id = $2 AND version = $5",
                &[&record.org, &record.id, &json, &version, &expected],
            )
            .await?;
        self.refusal(rows, &record.org, &record.id).await
    }

    pub async fn delete(&self, org: &str, id: &str, expected: u64) -> Result<(), StoreError> {
        let expected = expected as i64;
        let rows = self
            .write(
                org,
                id,
                "DELETE FROM assetgate_storages WHERE org = $1 AND id = $2 AND version = $3",
                &[&org, &id, &expected],
            )
            .await?;
        self.refusal(rows, org, id).await
    }

    /// Why a conditional write touched no row: the storage is gone, or at another version.
    async fn refusal(&self, rows: u64, org: &str, id: &str) -> Result<(), StoreError> {
        if rows > 0 {
            return Ok(());
        }
        match self.get(org, id).await? {
            Some(_) => Err(StoreError::Stale(id.to_string())),
            None => Err(StoreError::Missing(id.to_string())),
        }
    }

    /// Runs one statement on storage `org/id` and, if it changed a row, its notice, in one
    /// transaction. Returns the rows changed.
    async fn write(
        &self,
        org: &str,
        id: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable("begin"))?;
        let rows = tx.execute(sql, params).await.map_err(unavailable("write a storage"))?;
        if rows > 0 {
            let notice = Notice::Storage {
                org: org.into(),
                id: id.into(),
            };
            notify(&tx, &notice).await?;
        }
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(rows)
    }

    pub async fn external_id(&self, org: &str, fresh: &str) -> Result<String, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable("begin"))?;
        let inserted = tx
            .execute(
                "INSERT INTO assetgate_external_ids (org, external_id) VALUES ($1, $2) ON CONFLICT (org) DO NOTHING",
                &[&org, &fresh],
            )
            .await
            .map_err(unavailable("store an external ID"))?;
        let id: String = tx
            .query_one("SELECT external_id FROM assetgate_external_ids WHERE org = $1", &[&org])
            .await
            .map_err(unavailable("read an external ID"))?
            .get(0);
        if inserted > 0 {
            notify(&tx, &Notice::ExternalId { org: org.into() }).await?;
        }
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(id)
    }

    /// Opens a connection of its own that listens on the channel.
    pub async fn listen(&self) -> Result<Listener, StoreError> {
        // The schema first: there is nothing to follow before it exists.
        drop(self.client().await?);
        match &self.tls {
            Some(tls) => listen_with(&self.url.connect, tls.clone()).await,
            None => listen_with(&self.url.connect, NoTls).await,
        }
    }
}

fn encode(record: &StoredStorage) -> String {
    serde_json::to_string(record).expect("records serialize")
}

/// The row of `org`/`id`: its columns are the key and version, whatever the JSON says.
fn decode(org: &str, id: &str, json: &str, version: i64) -> StoredRow {
    StoredRow::decode(org, id, json.as_bytes(), Some(version as u64))
}

/// TLS towards the database: the public roots, `sslrootcert` and `[server].upstream_ca_file`,
/// always verified.
fn rustls_connector(
    url: &DatabaseUrl,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut add = |cert: rustls::pki_types::CertificateDer<'static>| {
        roots
            .add(cert)
            .map_err(|e| format!("registry.url: a certificate of sslrootcert is not a usable CA: {e}"))
    };
    if let Some(path) = &url.root_cert {
        for cert in crate::tls::certificates(path).map_err(|e| format!("registry.url sslrootcert: {e}"))? {
            add(cert)?;
        }
    }
    for cert in extra_roots {
        add(cert.clone())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

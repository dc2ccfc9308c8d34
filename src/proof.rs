//! Proof that a bucket was shared with the org that registered it, for API storages whose
//! credentials are the gateway's own identity: Entra delegation (the gateway's app, one for
//! every customer) and GCS impersonation (the gateway's service account). Nothing in such a
//! storage is secret (a tenant ID, an account name, a service account's email), so without a
//! proof any org could register another org's storage and read it through the gateway: the
//! confused deputy that external IDs prevent for AWS roles. The org admin puts an object
//! named [`MARKER`] holding the org's external ID into each bucket (container); the gateway
//! reads it with the storage's own credentials before serving the bucket, and again every
//! [`PROVEN_FOR`]. Storages of the configuration file are the operator's and need none;
//! storages with keys or a SAS prove themselves by holding them.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use moka::future::Cache;
use subtle::ConstantTimeEq;

use crate::credentials::{CredentialSource, Credentials};
use crate::error::GatewayError;
use crate::registry::{StorageEntry, Storages};
use crate::upstream::{Trust, UpstreamClient};

/// What reading a marker takes: the storage's credentials, the client towards buckets, and
/// the registry, which knows the org's external ID.
#[derive(Clone, Copy)]
pub struct Means<'a> {
    pub credentials: &'a Credentials,
    pub client: &'a UpstreamClient,
    pub storages: &'a Storages,
}

/// The object each bucket holds, its content the org's external ID.
pub const MARKER: &str = ".assetgate-org";

/// How long a proof holds before it is read again (removing the marker revokes the sharing
/// within this time).
pub const PROVEN_FOR: Duration = Duration::from_secs(600);

/// Largest marker read.
const MAX_MARKER: usize = 1024;

/// Whether requests to `entry` need its buckets to prove they belong to its org.
pub fn required(entry: &StorageEntry) -> bool {
    entry.trust() == Trust::Tenant
        && matches!(
            entry.credentials,
            CredentialSource::Entra { .. } | CredentialSource::Impersonate { .. }
        )
}

/// Proofs found (for [`PROVEN_FOR`]) and refused (for `failure_cache`), per storage
/// version and bucket.
pub struct Proofs {
    proven: Cache<String, ()>,
    refused: Cache<String, GatewayError>,
}

impl Proofs {
    pub fn new(failure_cache: Duration) -> Proofs {
        Proofs {
            proven: Cache::builder().max_capacity(100_000).time_to_live(PROVEN_FOR).build(),
            refused: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(failure_cache.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// Ok when `bucket` of `org`'s storage `entry` needs no proof or has shown one; else
    /// `ownership_not_proven`, or why the marker could not be read. Concurrent first
    /// requests share one read.
    pub async fn check(
        &self,
        means: Means<'_>,
        org: &str,
        entry: &StorageEntry,
        bucket: &str,
    ) -> Result<(), GatewayError> {
        if !required(entry) {
            return Ok(());
        }
        let key = format!("{org}\n{}\n{}\n{bucket}", entry.storage.id, entry.version);
        if let Some(err) = self.refused.get(&key).await {
            return Err(err);
        }
        let result = self
            .proven
            .try_get_with(key.clone(), Box::pin(read(means, org, entry, bucket)))
            .await
            .map_err(|e| (*e).clone());
        if let Err(err @ GatewayError::OwnershipNotProven { .. }) = &result {
            self.refused.insert(key, err.clone()).await;
        }
        result
    }
}

/// Reads the marker of `bucket` with the storage's credentials and compares it with the
/// org's external ID.
pub async fn read(means: Means<'_>, org: &str, entry: &StorageEntry, bucket: &str) -> Result<(), GatewayError> {
    let auth = means.credentials.authorize(&entry.credentials).await?;
    let target = crate::storage::request::Target {
        storage: &entry.storage,
        trust: entry.trust(),
        auth: &auth,
        method: &Method::GET,
        bucket,
        key: MARKER,
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-1023"));
    let response = target.fetch(means.client, headers).await?;
    let not_proven = || GatewayError::OwnershipNotProven {
        bucket: bucket.to_string(),
        org: org.to_string(),
    };
    match response.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
        StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE => {
            return match crate::storage::request::read_error(&entry.storage, response).await {
                GatewayError::NoSuchKey | GatewayError::RangeNotSatisfiable => Err(not_proven()),
                other => Err(other),
            };
        }
        _ => return Err(crate::storage::request::read_error(&entry.storage, response).await),
    }
    let body = tokio::time::timeout(
        Duration::from_secs(10),
        Limited::new(response.into_body(), MAX_MARKER).collect(),
    )
    .await
    .map_err(|_| GatewayError::UpstreamTimeout)?
    .map_err(|_| not_proven())?
    .to_bytes();
    // An org without an external ID yet cannot have written it into a marker.
    let own = means.storages.known_external_id(org).ok_or_else(not_proven)?;
    if matches_id(&body, &own) {
        Ok(())
    } else {
        tracing::warn!(org, storage = %entry.storage.id, bucket, "a bucket's ownership marker names another external ID");
        Err(not_proven())
    }
}

/// Whether a marker's content (whitespace around it ignored) is `own`, compared in constant
/// time.
fn matches_id(content: &[u8], own: &str) -> bool {
    let text = String::from_utf8_lossy(content);
    let given = text.trim().as_bytes();
    given.len() == own.len() && bool::from(given.ct_eq(own.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_must_hold_the_org_external_id_and_nothing_else() {
        assert!(matches_id(b"abc-123\n", "abc-123"));
        assert!(matches_id(b"  abc-123 \r\n", "abc-123"));
        assert!(!matches_id(b"abc-1234", "abc-123"));
        assert!(!matches_id(b"other", "abc-123"));
        assert!(!matches_id(b"", "abc-123"));
        assert!(!matches_id(b"abc-123 abc-123", "abc-123"));
    }
}

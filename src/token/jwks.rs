//! The platform's JSON Web Key Set (`[auth].jwks_url`): fetched at start and every
//! `jwks_refresh` with the gateway's pooled client, and at once when a token names a `kid`
//! it does not hold: such refetches happen at most once every [`REFETCH_AT_MOST`] however
//! many unknown `kid`s arrive (those arriving during one wait for it). While the set cannot be fetched, the keys last fetched
//! keep working.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full, Limited};

use super::keys::{from_jwk, VerifyKey};
use crate::upstream::{Trust, UpstreamClient};

/// Unknown `kid`s make at most one fetch in this time.
pub const REFETCH_AT_MOST: Duration = Duration::from_secs(30);

/// Largest key set read.
const MAX_SET: usize = 1024 * 1024;

/// Longest a fetch may take, body included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::telemetry::metrics::JwksMetrics;

pub struct Jwks {
    url: http::Uri,
    client: UpstreamClient,
    keys: ArcSwap<HashMap<String, Arc<VerifyKey>>>,
    /// When the last refetch for an unknown `kid` began; held while one runs, so concurrent
    /// unknown `kid`s wait for it rather than starting their own.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    metrics: JwksMetrics,
}

impl Jwks {
    pub fn new(url: http::Uri, client: UpstreamClient, metrics: JwksMetrics) -> Jwks {
        Jwks {
            url,
            client,
            keys: ArcSwap::from_pointee(HashMap::new()),
            last_refetch: tokio::sync::Mutex::new(None),
            metrics,
        }
    }

    /// The key `kid` of the set as last fetched (no fetch).
    pub fn current(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.load().get(kid).cloned()
    }

    /// The key `kid`, fetching the set once more if it is unknown and the last such refetch
    /// is at least [`REFETCH_AT_MOST`] old.
    pub async fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        if let Some(key) = self.keys.load().get(kid) {
            return Some(key.clone());
        }
        let mut last = self.last_refetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.keys.load().get(kid) {
            return Some(key.clone());
        }
        if last.is_some_and(|at| at.elapsed() < REFETCH_AT_MOST) {
            return None;
        }
        *last = Some(Instant::now());
        self.fetch().await;
        drop(last);
        self.keys.load().get(kid).cloned()
    }

    /// Fetches the set now (start, and every `jwks_refresh`).
    pub async fn refresh(&self) {
        self.fetch().await;
    }

    /// The `kid`s held.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.load().keys().cloned().collect();
        kids.sort();
        kids
    }

    async fn fetch(&self) {
        match tokio::time::timeout(FETCH_TIMEOUT, self.download()).await {
            Ok(Ok(keys)) => {
                self.metrics.ok.inc();
                tracing::debug!(keys = keys.len(), "JWKS fetched");
                self.keys.store(Arc::new(keys));
            }
            Ok(Err(why)) => {
                self.metrics.failed.inc();
                tracing::warn!(url = %self.url, why, "the JWKS could not be fetched; the keys fetched before stay in use");
            }
            Err(_) => {
                self.metrics.failed.inc();
                tracing::warn!(url = %self.url, "the JWKS did not arrive in time; the keys fetched before stay in use");
            }
        }
    }

    async fn download(&self) -> Result<HashMap<String, Arc<VerifyKey>>, String> {
        let request = Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|_| "the URL is not valid".to_string())?;
        let response = self
            .client
            .send(request, Trust::Operator)
            .await
            .map_err(|e| unreachable(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_SET)
            .collect()
            .await
            .map_err(|_| "the answer is too large or broke off".to_string())?
            .to_bytes();
        parse(&body)
    }
}

/// What kept the key set from arriving, in words about the key set's server (the pooled
/// client's own errors speak of storages).
fn unreachable(e: &crate::error::GatewayError) -> String {
    use crate::error::GatewayError;
    match e {
        GatewayError::UpstreamTimeout => "the key set's server did not answer in time".into(),
        GatewayError::UpstreamUnavailable(_) => {
            "the key set's server cannot be reached (connection refused or reset, the name does not resolve, or TLS failed)".into()
        }
        other => format!("the request for the key set failed ({})", other.code()),
    }
}

/// The usable keys of a key set; a set that is no JWKS at all is an error (the keys held
/// stay), one whose keys are all unusable is an empty set.
pub fn parse(body: &[u8]) -> Result<HashMap<String, Arc<VerifyKey>>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("the answer has no `keys` list")?;
    // Key by key: one key of a type this gateway does not know leaves the others usable.
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()).ok())
        .filter_map(|jwk| from_jwk(&jwk))
        .map(|(kid, key)| (kid, Arc::new(key)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fetch_is_described_as_the_key_sets_not_a_storages() {
        use crate::error::GatewayError;
        let why = unreachable(&GatewayError::UpstreamUnavailable(
            "cannot connect to the storage endpoint".into(),
        ));
        assert!(why.contains("key set") && !why.contains("storage"), "{why}");
        assert!(unreachable(&GatewayError::UpstreamTimeout).contains("key set"));
    }

    #[test]
    fn a_set_with_unknown_key_types_keeps_the_known_ones() {
        let body = br#"{"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "PQC", "kid": "future", "x": "abc"},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "a", "y": "b"}
        ]}"#;
        let keys = parse(body).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["ed"]);
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"no": "keys"}"#).is_err());
        assert!(parse(br#"{"keys": []}"#).unwrap().is_empty());
    }
}

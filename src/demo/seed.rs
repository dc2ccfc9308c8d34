//! A minimal signed S3 writer: creates buckets and puts objects. It seeds the demo bucket
//! and the test buckets; the gateway itself only ever reads.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::credentials::StaticKeys;
use crate::route::encode_key;
use crate::storage::providers::s3::sign;
use crate::upstream::Endpoint;

/// Writes to one S3-compatible endpoint (plain HTTP, path-style) with one set of keys.
pub struct S3Writer {
    endpoint: Endpoint,
    keys: StaticKeys,
    region: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A failed write, with the status and S3 body for the developer running the demo or tests.
#[derive(Debug, thiserror::Error)]
#[error("S3 {method} {path} failed: {detail}")]
pub struct WriteError {
    method: Method,
    path: String,
    detail: String,
}

impl S3Writer {
    pub fn new(endpoint: Endpoint, keys: StaticKeys, region: &str) -> S3Writer {
        let client = Client::builder(TokioExecutor::new()).build_http();
        S3Writer {
            endpoint,
            keys,
            region: region.to_string(),
            client,
        }
    }

    /// Creates `bucket`; an existing bucket of ours is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), WriteError> {
        let res = self.send(Method::PUT, &format!("/{bucket}"), &[], Bytes::new()).await;
        match res {
            Err(e) if e.detail.contains("BucketAlreadyOwnedByYou") || e.detail.contains("BucketAlreadyExists") => {
                Ok(())
            }
            other => other,
        }
    }

    /// Puts one object.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        data: impl Into<Bytes>,
    ) -> Result<(), WriteError> {
        self.put_with(bucket, key, &[("content-type", content_type)], data)
            .await
    }

    /// Puts one object with the given headers (`Content-Type`, `Cache-Control`, ...), which
    /// the bucket stores and sends back on reads.
    pub async fn put_with(
        &self,
        bucket: &str,
        key: &str,
        headers: &[(&str, &str)],
        data: impl Into<Bytes>,
    ) -> Result<(), WriteError> {
        let path = format!("/{bucket}/{}", encode_key(key));
        self.send(Method::PUT, &path, headers, data.into()).await
    }

    /// Deletes one object.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), WriteError> {
        let path = format!("/{bucket}/{}", encode_key(key));
        self.send(Method::DELETE, &path, &[], Bytes::new()).await
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Result<(), WriteError> {
        let fail = |detail: String| WriteError {
            method: method.clone(),
            path: path.to_string(),
            detail,
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.endpoint));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder = builder.header(http::header::CONTENT_LENGTH, body.len());
        let mut request = builder.body(Full::new(body)).map_err(|e| fail(e.to_string()))?;
        sign::sign_request(
            &mut request,
            &crate::credentials::SigningKeys::from_static(&self.keys),
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| fail(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        if status == StatusCode::OK || status == StatusCode::NO_CONTENT {
            Ok(())
        } else {
            Err(fail(format!("{status}: {}", String::from_utf8_lossy(&body))))
        }
    }
}

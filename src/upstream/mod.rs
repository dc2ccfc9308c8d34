//! Everything that talks to buckets: addressing (`address`), SigV4 (`sign`), the pooled
//! client (`client`), and what comes back (`response`).

pub mod address;
pub mod client;
pub mod response;
pub mod sign;

use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;

use crate::config::Storage;
use crate::error::GatewayError;
use crate::range::ByteRange;

pub use client::UpstreamClient;

/// Conditional request headers forwarded as they are (RFC 9110 §13).
const CONDITIONALS: [HeaderName; 5] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// Largest S3 error body we read to find its `<Code>`.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// How long we wait for an S3 error body.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// The client headers that go upstream: the conditionals and a well-formed single `Range`,
/// nothing else (no cookies, no `Authorization`, no token).
pub fn forwarded_headers(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in &CONDITIONALS {
        if let Some(v) = client.get(name).filter(|v| v.to_str().is_ok()) {
            out.insert(name.clone(), v.clone());
        }
    }
    let range = client
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse);
    if let Some(range) = range {
        out.insert(
            header::RANGE,
            HeaderValue::from_str(&range.to_header()).expect("digits are a valid header value"),
        );
    }
    out
}

/// Builds, signs and sends the upstream request for one object.
pub async fn fetch(
    client: &UpstreamClient,
    storage: &Storage,
    identity: &Identity,
    method: &Method,
    bucket: &str,
    key: &str,
    headers: HeaderMap,
) -> Result<Response<Incoming>, GatewayError> {
    let url = address::object_url(storage, bucket, key);
    let mut request = Request::builder()
        .method(method.clone())
        .uri(&url)
        .body(Empty::<Bytes>::new())
        .map_err(|_| {
            GatewayError::InvalidRequest("the object key cannot be expressed in a URL".into())
        })?;
    *request.headers_mut() = headers;
    sign::sign_request(&mut request, identity, &storage.region, SystemTime::now())?;
    client.send(request).await
}

/// Turns an upstream error response into a gateway error, reading at most a small XML body.
pub async fn read_error(response: Response<Incoming>) -> GatewayError {
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ERROR_BODY).collect();
    let code = match tokio::time::timeout(ERROR_BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => response::s3_error_code(&collected.to_bytes()),
        _ => None,
    };
    response::map_error(status, code.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_only_conditionals_and_a_clean_range() {
        let mut h = HeaderMap::new();
        h.insert("range", "bytes=0-".parse().unwrap());
        h.insert("if-none-match", "\"abc\"".parse().unwrap());
        h.insert("authorization", "Bearer t".parse().unwrap());
        h.insert("cookie", "c=1".parse().unwrap());
        h.insert("x-amz-security-token", "evil".parse().unwrap());
        let out = forwarded_headers(&h);
        assert_eq!(out.len(), 2);
        assert_eq!(out["range"], "bytes=0-");
        assert_eq!(out["if-none-match"], "\"abc\"");
    }

    #[test]
    fn a_range_we_cannot_honour_is_dropped() {
        let mut h = HeaderMap::new();
        h.insert("range", "bytes=0-1,4-5".parse().unwrap());
        assert!(forwarded_headers(&h).is_empty());
        h.insert("range", " bytes = 5 - 9".parse().unwrap());
        assert_eq!(forwarded_headers(&h)["range"], "bytes=5-9");
    }
}

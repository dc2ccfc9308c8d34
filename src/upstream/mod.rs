//! Everything that talks to buckets: addressing (`address`), SigV4 (`sign`), the pooled
//! client (`client`), and what comes back (`response`).

pub mod address;
pub mod client;
pub mod guard;
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

pub use client::{Trust, UpstreamClient};

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

/// Makes `If-Range` work on every bucket, including those that ignore it (SeaweedFS,
/// MinIO): RFC 9110 §13.1.5 says a range is served only while the validator still matches,
/// else the whole object. We send the validator as `If-Match` (entity tag) or
/// `If-Unmodified-Since` (date), which S3 implementations honour; a 412 then means "changed",
/// and the caller fetches the whole object instead. Returns whether that fallback applies.
/// Without a `Range`, or beside the client's own `If-Match`/`If-Unmodified-Since`,
/// `If-Range` is forwarded as it is; a weak tag can never match, so the range is dropped.
pub fn emulate_if_range(headers: &mut HeaderMap) -> bool {
    let Some(validator) = headers.get(header::IF_RANGE).cloned() else {
        return false;
    };
    if !headers.contains_key(header::RANGE) {
        headers.remove(header::IF_RANGE);
        return false;
    }
    if headers.contains_key(header::IF_MATCH) || headers.contains_key(header::IF_UNMODIFIED_SINCE) {
        return false;
    }
    headers.remove(header::IF_RANGE);
    let bytes = validator.as_bytes();
    if bytes.starts_with(b"W/") {
        headers.remove(header::RANGE);
        return false;
    }
    let condition = if bytes.starts_with(b"\"") {
        header::IF_MATCH
    } else {
        header::IF_UNMODIFIED_SINCE
    };
    headers.insert(condition, validator);
    true
}

/// The request for the whole object after an emulated `If-Range` did not match.
pub fn without_range(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in [header::RANGE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE] {
        out.remove(name);
    }
    out
}

/// One object of one storage, and how to ask for it.
pub struct Target<'a> {
    pub storage: &'a Storage,
    /// Whether the storage's endpoint must pass the guard (API-created storages).
    pub trust: Trust,
    pub identity: &'a Identity,
    pub method: &'a Method,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl Target<'_> {
    /// Builds, signs and sends the upstream request with `headers`.
    pub async fn fetch(&self, client: &UpstreamClient, headers: HeaderMap) -> Result<Response<Incoming>, GatewayError> {
        let url = address::object_url(self.storage, self.bucket, self.key);
        send_signed(
            client,
            self.storage,
            self.trust,
            self.identity,
            self.method,
            &url,
            headers,
        )
        .await
    }
}

/// Signs a bodiless request to `url` for `storage` and sends it.
pub async fn send_signed(
    client: &UpstreamClient,
    storage: &Storage,
    trust: Trust,
    identity: &Identity,
    method: &Method,
    url: &str,
    headers: HeaderMap,
) -> Result<Response<Incoming>, GatewayError> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(url)
        .body(Empty::<Bytes>::new())
        .map_err(|_| GatewayError::InvalidRequest("the object key cannot be expressed in a URL".into()))?;
    *request.headers_mut() = headers;
    sign::sign_request(&mut request, identity, &storage.region, SystemTime::now())?;
    client.send(request, trust).await
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

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn if_range_with_an_etag_becomes_if_match() {
        let mut h = headers(&[("range", "bytes=0-9"), ("if-range", "\"abc\"")]);
        assert!(emulate_if_range(&mut h));
        assert_eq!(h, headers(&[("range", "bytes=0-9"), ("if-match", "\"abc\"")]));
        assert_eq!(without_range(&h), HeaderMap::new());
    }

    #[test]
    fn if_range_with_a_date_becomes_if_unmodified_since() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        let mut h = headers(&[("range", "bytes=0-9"), ("if-range", date)]);
        assert!(emulate_if_range(&mut h));
        assert_eq!(h, headers(&[("range", "bytes=0-9"), ("if-unmodified-since", date)]));
    }

    #[test]
    fn weak_if_range_drops_the_range() {
        let mut h = headers(&[("range", "bytes=0-9"), ("if-range", "W/\"abc\"")]);
        assert!(!emulate_if_range(&mut h));
        assert!(h.is_empty());
    }

    #[test]
    fn if_range_without_range_is_dropped_and_beside_if_match_kept() {
        let mut h = headers(&[("if-range", "\"abc\"")]);
        assert!(!emulate_if_range(&mut h));
        assert!(h.is_empty());
        let mut h = headers(&[("range", "bytes=0-9"), ("if-range", "\"a\""), ("if-match", "\"b\"")]);
        assert!(!emulate_if_range(&mut h));
        assert_eq!(h.len(), 3);
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

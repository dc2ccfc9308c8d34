//! Everything that talks to buckets, whatever the provider: which client headers go
//! upstream (and `If-Range` and suffix ranges made to work everywhere), the signed request
//! for an object (its URL and signature are the provider's, `crate::storage::providers`),
//! the pooled client (`client`) behind the endpoint guard (`guard`), and what comes back
//! (`response`).

pub mod client;
pub mod endpoint;
pub mod guard;
pub mod response;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::range::ByteRange;
use crate::storage::Storage;

pub use client::{Trust, UpstreamClient, UpstreamSlot};
pub use endpoint::{Endpoint, Scheme};

/// Conditional request headers forwarded as they are (RFC 9110 §13).
const CONDITIONALS: [HeaderName; 5] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// Largest error body read to find its code.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// How long we wait for an error body.
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

/// The request for the whole object after `If-Range` did not match: without the range and
/// the preconditions that stood for it (the gateway judges the client's own itself,
/// `crate::conditional`).
pub fn without_range(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
    ] {
        out.remove(name);
    }
    out
}

/// One object of one storage, and how to ask for it.
pub struct Target<'a> {
    pub storage: &'a Storage,
    /// Whether the storage's endpoint must pass the guard (API-created storages).
    pub trust: Trust,
    pub auth: &'a Authorization,
    pub method: &'a Method,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl Target<'_> {
    /// Builds, signs and sends the request for the object with `headers`. A suffix range
    /// (`bytes=-N`) for a provider that has none (Azure) becomes the closed range of the
    /// last N bytes, from the object's size (RFC 9110 §14.1.2).
    pub async fn fetch(&self, client: &UpstreamClient, headers: HeaderMap) -> Result<Response<Incoming>, GatewayError> {
        if self.storage.backend().suffix_ranges() {
            return self.send(client, self.method, headers).await;
        }
        let Some(ByteRange::Suffix { len }) = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(ByteRange::parse)
        else {
            return self.send(client, self.method, headers).await;
        };
        // Twice at most: the object may change between the size and the bytes.
        for _ in 0..2 {
            let mut probe = headers.clone();
            probe.remove(header::RANGE);
            let head = self.send(client, &Method::HEAD, probe).await?;
            if head.status() != StatusCode::OK {
                // 304, 412, 404...: the answer the client gets anyway.
                return Ok(head);
            }
            let head = head.into_parts().0.headers;
            let size: Option<u64> = head
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let etag = head.get(header::ETAG).cloned();
            let Some(size) = size else {
                return self.send(client, self.method, without_range(&headers)).await;
            };
            let mut exact = headers.clone();
            exact.insert(header::RANGE, suffix_as_closed(len, size));
            let ours = match etag {
                Some(tag) if !headers.contains_key(header::IF_MATCH) => {
                    exact.insert(header::IF_MATCH, tag);
                    true
                }
                _ => false,
            };
            let response = self.send(client, self.method, exact).await?;
            if !(ours && response.status() == StatusCode::PRECONDITION_FAILED) {
                return Ok(response);
            }
        }
        Err(GatewayError::UpstreamUnavailable(
            "the object kept changing while its last bytes were asked for".into(),
        ))
    }

    async fn send(
        &self,
        client: &UpstreamClient,
        method: &Method,
        headers: HeaderMap,
    ) -> Result<Response<Incoming>, GatewayError> {
        let url = self.storage.backend().object_url(self.storage, self.bucket, self.key);
        send_signed(client, self.storage, self.trust, self.auth, method, &url, headers).await
    }
}

/// The closed range of the last `len` bytes of an object of `size` bytes; a range past the
/// end (which the provider answers 416) when there are none: `bytes=-0`, or an empty object.
pub fn suffix_as_closed(len: u64, size: u64) -> HeaderValue {
    let value = if len == 0 || size == 0 {
        format!("bytes={size}-")
    } else {
        format!("bytes={}-{}", size.saturating_sub(len), size - 1)
    };
    HeaderValue::from_str(&value).expect("digits are a valid header value")
}

/// Signs a bodiless request to `url` for `storage` and sends it.
pub async fn send_signed(
    client: &UpstreamClient,
    storage: &Storage,
    trust: Trust,
    auth: &Authorization,
    method: &Method,
    url: &str,
    headers: HeaderMap,
) -> Result<Response<Incoming>, GatewayError> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(url)
        .body(Full::new(Bytes::new()))
        .map_err(|_| GatewayError::InvalidRequest("the object key cannot be expressed in a URL".into()))?;
    *request.headers_mut() = headers;
    // A token of the gateway's own identity goes only to its cloud, whatever built the URL.
    if let Authorization::Bearer { pin: Some(pin), .. } = auth {
        if !pin.allows_uri(request.uri()) {
            return Err(GatewayError::TokenNotForEndpoint("the provider"));
        }
    }
    storage.backend().sign(&mut request, auth, SystemTime::now())?;
    client.send(request, trust).await
}

/// Turns an upstream error response into a gateway error, reading at most a small body.
pub async fn read_error(storage: &Storage, response: Response<Incoming>) -> GatewayError {
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ERROR_BODY).collect();
    let bytes = match tokio::time::timeout(ERROR_BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    storage.backend().error(parts.status, &parts.headers, &bytes)
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
    fn suffix_ranges_become_the_last_bytes() {
        assert_eq!(suffix_as_closed(10, 100), "bytes=90-99");
        assert_eq!(suffix_as_closed(500, 100), "bytes=0-99");
        assert_eq!(suffix_as_closed(1, 1), "bytes=0-0");
        assert_eq!(suffix_as_closed(0, 100), "bytes=100-", "-0 is unsatisfiable");
        assert_eq!(suffix_as_closed(5, 0), "bytes=0-", "so are the last bytes of nothing");
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

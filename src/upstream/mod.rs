//! Everything that talks to buckets, whatever the provider and whatever the storage: which
//! client headers go upstream (and `If-Range` made to work everywhere), the pooled client
//! (`client`) behind the endpoint guard (`guard`), what an endpoint is (`endpoint`), and the
//! header policy of what comes back (`response`). A storage's signed requests are built on
//! this by `crate::storage::request`.

pub mod client;
pub mod endpoint;
pub mod guard;
pub mod response;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::range::ByteRange;

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

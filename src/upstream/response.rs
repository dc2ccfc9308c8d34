//! What comes back from a bucket: the response header policy of README "Routes" (which headers pass,
//! what a bucket's content may not do on our origin, how it may be cached), for every
//! provider.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

/// Response headers passed from the bucket to the client; everything else (`x-amz-*`,
/// `Server`, upstream CORS, vendor headers) is dropped.
const PASSED_HEADERS: [HeaderName; 11] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::EXPIRES,
];

/// What a 304 passes of the bucket's headers: those RFC 9110 §15.4.5 asks for.
const NOT_MODIFIED_HEADERS: [HeaderName; 3] = [header::ETAG, header::CACHE_CONTROL, header::EXPIRES];

/// Statuses passed through with the bucket's body (or none).
pub fn is_passed_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200 | 206 | 304)
}

/// `Some(size)` for a 206 whose `Content-Range` names no bytes (Azurite's answer to a range
/// that starts at the end): the client gets the 416 RFC 9110 §14.1.2 asks for instead.
pub fn empty_partial<B>(response: &http::Response<B>) -> Option<Option<u64>> {
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return None;
    }
    let value = response.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    crate::range::check_content_range(value).err()
}

/// The client-facing headers of a successful upstream response (200, 206, 304).
/// `Cache-Control` is always private, and falls back to `default_cache_control` when the
/// bucket sends none (except on a 304, whose headers would replace those the browser stored
/// with the object, RFC 9111 §4.3.4); content a browser would run as a page of our origin is
/// sandboxed and downloaded instead.
pub fn client_headers(status: StatusCode, upstream: &HeaderMap, default_cache_control: &HeaderValue) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(PASSED_HEADERS.len() + 6);
    // A 304 carries what RFC 9110 §15.4.5 asks of what a 200 would (the entity tag and
    // freshness), whether the bucket answered it or the gateway judged it.
    let passed: &[HeaderName] = if status == StatusCode::NOT_MODIFIED {
        &NOT_MODIFIED_HEADERS
    } else {
        &PASSED_HEADERS
    };
    for name in passed {
        for value in upstream.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out.remove(header::CACHE_CONTROL);
    let cache_control = joined(upstream, &header::CACHE_CONTROL)
        .and_then(|value| HeaderValue::from_str(&private_cache_control(&value)).ok())
        .or_else(|| (status != StatusCode::NOT_MODIFIED).then(|| default_cache_control.clone()));
    if let Some(value) = cache_control {
        out.insert(header::CACHE_CONTROL, value);
    }
    // Every range we get is forwarded, so we do accept ranges even when a bucket (s3s, some
    // MinIO versions) does not say so; players need it to offer seeking.
    if status != StatusCode::NOT_MODIFIED && !out.contains_key(header::ACCEPT_RANGES) {
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    // A 304 has no content of its own: its headers would only update the cached ones.
    if status != StatusCode::NOT_MODIFIED && is_active_content(&out) {
        let disposition = attachment(out.get(header::CONTENT_DISPOSITION));
        out.insert(header::CONTENT_DISPOSITION, disposition);
        out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    out
}

/// Every value of a header, comma-joined (RFC 9110 §5.3); `None` when absent or not text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Option<Vec<&str>> = headers.get_all(name).iter().map(|v| v.to_str().ok()).collect();
    values.filter(|v| !v.is_empty()).map(|v| v.join(", "))
}

/// Whether a browser navigating to content with these headers would render it as a document
/// that can run script on our origin: HTML, XHTML, any XML type (SVG among them: an XML
/// document may embed XHTML script; WHATWG MIME Sniffing §4.6 "XML MIME type"),
/// `multipart/x-mixed-replace`, and content with no usable type at all. Several
/// `Content-Type` values, or a comma in one, count as no usable type: browsers take the last
/// valid type of the list (Fetch, "extract a MIME type"), which a bucket, a tenant's own
/// S3-compatible server included, could choose to be `text/html` behind an `image/png`.
pub fn is_active_content(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return true;
    };
    let Some(essence) = value
        .to_str()
        .ok()
        .filter(|v| !v.contains(','))
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|e| e.contains('/'))
    else {
        return true;
    };
    let subtype = essence.split_once('/').map_or("", |(_, s)| s);
    matches!(
        essence.as_str(),
        "text/html" | "application/xhtml+xml" | "text/xml" | "application/xml" | "multipart/x-mixed-replace"
    ) || subtype.ends_with("+xml")
}

/// `Content-Disposition: attachment`, keeping the bucket's parameters (`filename`, ...).
fn attachment(current: Option<&HeaderValue>) -> HeaderValue {
    let params = current
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(';'))
        .map(|(_, params)| params.trim())
        .filter(|p| !p.is_empty());
    match params {
        Some(params) => HeaderValue::from_str(&format!("attachment; {params}"))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
        None => HeaderValue::from_static("attachment"),
    }
}

/// A `Cache-Control` value (RFC 9111 §5.2) that no shared cache may store: `public` becomes
/// `private`, `s-maxage` and `proxy-revalidate` (shared caches only) are dropped, a qualified
/// `private="field"` (which lets shared caches store the rest) becomes plain `private`, and
/// `private` is added unless `no-store` or `no-cache` already keep the response from being
/// reused unchecked. Other directives pass in their order.
pub fn private_cache_control(value: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let (mut private, mut uncached) = (false, false);
    for directive in directives(value) {
        let (name, argument) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (directive, None),
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "public" | "private" => {
                if !private {
                    out.push("private");
                    private = true;
                }
                continue;
            }
            "s-maxage" | "proxy-revalidate" => continue,
            "no-store" | "no-cache" if argument.is_none() => uncached = true,
            _ => {}
        }
        out.push(directive);
    }
    if !private && !uncached {
        out.insert(0, "private");
    }
    out.join(", ")
}

/// The directives of a `Cache-Control` value: split on commas outside quoted strings,
/// trimmed, empty ones left out.
fn directives(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|d| !d.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(up: &HeaderMap) -> HeaderMap {
        client_headers(StatusCode::OK, up, &HeaderValue::from_static("private, max-age=300"))
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn only_the_documented_headers_pass() {
        let up = with(&[
            ("content-type", "image/png"),
            ("etag", "\"abc\""),
            ("x-amz-request-id", "R"),
            ("x-amz-meta-owner", "secret-team"),
            ("server", "AmazonS3"),
            ("access-control-allow-origin", "*"),
            ("seaweed-x-amz-owner", "admin"),
        ]);
        let out = passed(&up);
        let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "etag", "cache-control", "accept-ranges"]);
        assert_eq!(out["cache-control"], "private, max-age=300");
    }

    #[test]
    fn upstream_cache_control_is_kept_but_made_private() {
        assert_eq!(
            passed(&with(&[("cache-control", "no-store")]))["cache-control"],
            "no-store"
        );
        assert_eq!(
            passed(&with(&[("cache-control", "no-cache")]))["cache-control"],
            "no-cache"
        );
        assert_eq!(
            passed(&with(&[("cache-control", "public, max-age=86400, s-maxage=604800")]))["cache-control"],
            "private, max-age=86400"
        );
        assert_eq!(
            passed(&with(&[("cache-control", "max-age=60, immutable")]))["cache-control"],
            "private, max-age=60, immutable"
        );
    }

    #[test]
    fn cache_control_rewrite_rules() {
        let cases = [
            ("public", "private"),
            ("PUBLIC, Max-Age=5", "private, Max-Age=5"),
            ("s-maxage=10", "private"),
            ("private, public", "private"),
            ("private=\"set-cookie, x\", max-age=9", "private, max-age=9"),
            ("no-cache=\"set-cookie\"", "private, no-cache=\"set-cookie\""),
            ("public, no-store", "private, no-store"),
            (
                "must-revalidate, proxy-revalidate, max-age=0",
                "private, must-revalidate, max-age=0",
            ),
            (" , ,max-age=1,, ", "private, max-age=1"),
            ("ext=\"a,\\\"b\", no-cache", "ext=\"a,\\\"b\", no-cache"),
        ];
        for (given, sent) in cases {
            assert_eq!(private_cache_control(given), sent, "{given}");
        }
    }

    #[test]
    fn several_cache_control_lines_are_judged_together() {
        let mut up = HeaderMap::new();
        up.append("cache-control", HeaderValue::from_static("max-age=60"));
        up.append("cache-control", HeaderValue::from_static("public"));
        assert_eq!(passed(&up)["cache-control"], "max-age=60, private");
    }

    #[test]
    fn active_content_is_sandboxed_and_downloaded() {
        for ct in [
            "text/html",
            "Text/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "application/rss+xml",
            "multipart/x-mixed-replace; boundary=x",
            "",
            "garbage",
        ] {
            let mut up = HeaderMap::new();
            up.insert("content-type", HeaderValue::from_str(ct).unwrap());
            let out = passed(&up);
            assert_eq!(out["content-security-policy"], "sandbox", "{ct}");
            assert_eq!(out["content-disposition"], "attachment", "{ct}");
        }
        let none = passed(&HeaderMap::new());
        assert_eq!(none["content-security-policy"], "sandbox");
        let mut two = HeaderMap::new();
        two.append("content-type", HeaderValue::from_static("image/png"));
        two.append("content-type", HeaderValue::from_static("text/html"));
        assert_eq!(passed(&two)["content-security-policy"], "sandbox", "two types");
        let listed = passed(&with(&[("content-type", "image/png, text/html")]));
        assert_eq!(listed["content-security-policy"], "sandbox", "a list in one value");
        let named = passed(&with(&[
            ("content-type", "image/svg+xml"),
            ("content-disposition", "inline; filename=\"logo.svg\""),
        ]));
        assert_eq!(named["content-disposition"], "attachment; filename=\"logo.svg\"");
    }

    #[test]
    fn passive_content_keeps_its_disposition_and_has_no_sandbox() {
        for ct in [
            "image/jpeg",
            "video/mp4",
            "application/pdf",
            "application/dicom",
            "text/plain",
            "application/json",
        ] {
            let out = passed(&with(&[("content-type", ct), ("content-disposition", "inline")]));
            assert!(!out.contains_key("content-security-policy"), "{ct}");
            assert_eq!(out["content-disposition"], "inline", "{ct}");
        }
        let not_modified = client_headers(
            StatusCode::NOT_MODIFIED,
            &HeaderMap::new(),
            &HeaderValue::from_static("private"),
        );
        assert!(!not_modified.contains_key("content-security-policy"));
        assert!(!not_modified.contains_key("cache-control"), "the stored one stays");
    }

    #[test]
    fn a_304_carries_the_tag_and_freshness_and_nothing_of_the_body() {
        let up = with(&[
            ("etag", "\"abc\""),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("content-type", "image/png"),
            ("content-length", "5000"),
            ("accept-ranges", "bytes"),
            ("cache-control", "max-age=60"),
            ("expires", "Wed, 21 Oct 2015 08:28:00 GMT"),
        ]);
        let out = client_headers(StatusCode::NOT_MODIFIED, &up, &HeaderValue::from_static("private"));
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["cache-control", "etag", "expires"]);
        assert_eq!(out["cache-control"], "private, max-age=60");
    }
}

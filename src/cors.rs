//! CORS (README "CORS"), as pure functions over headers: which origins an org allows, and the
//! headers of actual and preflight responses. Rules follow the Fetch standard
//! (<https://fetch.spec.whatwg.org/#http-cors-protocol>).

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};

/// Headers a browser script may read on our responses.
pub const EXPOSE_HEADERS: &str =
    "Content-Length, Content-Range, Accept-Ranges, Content-Type, ETag, Last-Modified, X-Request-Id, Cache-Status";

/// Methods every route answers.
pub const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";

/// Request headers a preflight may ask for: the forwarded conditionals plus the token header.
const ALLOWED_REQUEST_HEADERS: [&str; 7] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "authorization",
];

/// An allowed origin: exact (`https://app.example.com`) or one wildcard label
/// (`https://*.example.com`, which matches any subdomain but not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(String),
    Subdomains {
        /// `https://`
        scheme: String,
        /// `.example.com` or `.example.com:8443`
        suffix: String,
    },
}

impl OriginPattern {
    /// Parses a configured origin. Refuses paths and anything that is not `scheme://host[:port]`,
    /// since such a pattern could never match a browser's `Origin` header.
    pub fn parse(input: &str) -> Result<OriginPattern, String> {
        let lower = input.to_ascii_lowercase();
        let (scheme, rest) = lower
            .split_once("://")
            .ok_or_else(|| "is not an origin like https://app.example.com".to_string())?;
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err("is not an origin like https://app.example.com (no path, no trailing /)".into());
        }
        match rest.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => Ok(OriginPattern::Subdomains {
                scheme: format!("{scheme}://"),
                suffix: format!(".{suffix}"),
            }),
            Some(_) => Err("a wildcard must be followed by a domain".into()),
            None if rest.contains('*') => {
                Err("`*` is only allowed as the first label, as in https://*.example.com".into())
            }
            None => Ok(OriginPattern::Exact(lower)),
        }
    }

    /// Whether a browser's `Origin` value matches (case-insensitively, as hosts are).
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Exact(exact) => exact.eq_ignore_ascii_case(origin),
            OriginPattern::Subdomains { scheme, suffix } => {
                let origin = origin.to_ascii_lowercase();
                origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|host| host.strip_suffix(suffix.as_str()))
                    .is_some_and(|label| {
                        !label.is_empty()
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                            && !label.starts_with('.')
                    })
            }
        }
    }
}

/// What the request's `Origin` means for this response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin`: a server or curl, not subject to CORS.
    Absent,
    /// An allowed origin, to be echoed in `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    /// An origin that is not allowed: 403 `origin_not_allowed`, no bytes from the bucket.
    Denied,
}

/// Checks `Origin` against the union of the global and the org's allowed origins.
pub fn check_origin(origin: Option<&HeaderValue>, global: &[OriginPattern], org: &[OriginPattern]) -> OriginCheck {
    let Some(value) = origin else {
        return OriginCheck::Absent;
    };
    let allowed = value
        .to_str()
        .is_ok_and(|o| global.iter().chain(org).any(|p| p.matches(o)));
    if allowed {
        OriginCheck::Allowed(value.clone())
    } else {
        OriginCheck::Denied
    }
}

/// Adds the headers every response to an allowed origin carries (200, 206, 304, errors).
/// Upstream CORS headers must already be gone: ours replace them, never sit beside them.
pub fn apply_response_headers(headers: &mut HeaderMap, check: &OriginCheck) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let OriginCheck::Allowed(origin) = check {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}

/// Headers of a preflight answer (204) for an allowed origin.
pub fn preflight_headers(origin: &HeaderValue, requested: Option<&HeaderValue>, max_age: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    let allowed = requested
        .and_then(|v| v.to_str().ok())
        .map(allowed_request_headers)
        .unwrap_or_default();
    if !allowed.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age.as_secs()));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
    );
    headers
}

/// The requested headers (`Access-Control-Request-Headers`) that we allow, lowercase,
/// comma-separated, without duplicates. Others are left out, and the browser then refuses.
pub fn allowed_request_headers(requested: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for name in requested.split(',').map(str::trim) {
        if let Some(allowed) = ALLOWED_REQUEST_HEADERS.iter().find(|a| a.eq_ignore_ascii_case(name)) {
            if !out.contains(allowed) {
                out.push(allowed);
            }
        }
    }
    out.join(", ")
}

/// Whether a header name is a CORS response header (dropped from upstream responses).
pub fn is_cors_header(name: &str) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case("access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_origin_matches_case_insensitively_and_nothing_else() {
        let p = pat("https://Imerit.Ango.ai");
        assert!(p.matches("https://imerit.ango.ai"));
        assert!(!p.matches("http://imerit.ango.ai"));
        assert!(!p.matches("https://imerit.ango.ai.evil.com"));
        assert!(!p.matches("https://imerit.ango.ai:8443"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let p = pat("https://*.example.com");
        assert!(p.matches("https://a.example.com"));
        assert!(p.matches("https://a.b.example.com"));
        assert!(!p.matches("https://example.com"));
        assert!(!p.matches("https://evilexample.com"));
        assert!(!p.matches("http://a.example.com"));
        assert!(!p.matches("https://a.example.com:444"));
        assert!(!p.matches("https://a/b.example.com"));
    }

    #[test]
    fn wildcard_with_port() {
        let p = pat("http://*.local.test:8080");
        assert!(p.matches("http://x.local.test:8080"));
        assert!(!p.matches("http://x.local.test"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "example.com",
            "https://a.com/",
            "https://a.com/path",
            "ftp://a.com",
            "https://a.*.com",
            "https://*.",
            "https://",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_origin_uses_global_and_org_lists() {
        let global = [pat("https://a.test")];
        let org = [pat("https://b.test")];
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(check_origin(None, &global, &org), OriginCheck::Absent);
        assert_eq!(
            check_origin(Some(&v("https://b.test")), &global, &org),
            OriginCheck::Allowed(v("https://b.test"))
        );
        assert_eq!(
            check_origin(Some(&v("https://a.test")), &global, &[]),
            OriginCheck::Allowed(v("https://a.test"))
        );
        assert_eq!(
            check_origin(Some(&v("https://c.test")), &global, &org),
            OriginCheck::Denied
        );
        assert_eq!(check_origin(Some(&v("null")), &global, &org), OriginCheck::Denied);
    }

    #[test]
    fn response_headers_echo_the_origin_and_vary() {
        let mut h = HeaderMap::new();
        apply_response_headers(
            &mut h,
            &OriginCheck::Allowed(HeaderValue::from_static("https://a.test")),
        );
        assert_eq!(h["access-control-allow-origin"], "https://a.test");
        assert_eq!(h["vary"], "Origin");
        assert!(h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("Content-Range"));
        let mut h = HeaderMap::new();
        apply_response_headers(&mut h, &OriginCheck::Absent);
        assert!(h.get("access-control-allow-origin").is_none());
    }

    #[test]
    fn preflight_allows_only_known_request_headers() {
        assert_eq!(
            allowed_request_headers("Range, X-Custom, authorization, RANGE"),
            "range, authorization"
        );
        assert_eq!(allowed_request_headers(""), "");
        let h = preflight_headers(
            &HeaderValue::from_static("https://a.test"),
            Some(&HeaderValue::from_static("range,if-none-match")),
            Duration::from_secs(3600),
        );
        assert_eq!(h["access-control-allow-methods"], "GET, HEAD, OPTIONS");
        assert_eq!(h["access-control-allow-headers"], "range, if-none-match");
        assert_eq!(h["access-control-max-age"], "3600");
    }

    #[test]
    fn cors_header_names_are_recognised() {
        assert!(is_cors_header("Access-Control-Allow-Origin"));
        assert!(is_cors_header("access-control-expose-headers"));
        assert!(!is_cors_header("content-type"));
    }
}

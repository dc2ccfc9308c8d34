//! Conditional requests are the gateway's promise, not the bucket's (RFC 9110 §13): whatever a
//! bucket does with `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`
//! and `If-Range` (some ignore one or the other), the client gets what the RFC says for the
//! validators (`ETag`, `Last-Modified`) of the object it would receive. Pure functions over
//! the client's headers and the validators of the bucket's answer.

use std::time::SystemTime;

use http::header::{self, HeaderMap};

/// The validators of a representation: its entity tag (as sent, quotes included) and its
/// modification time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<SystemTime>,
}

impl<'a> Validators<'a> {
    /// The validators of a response's headers.
    pub fn of(headers: &'a HeaderMap) -> Validators<'a> {
        Validators {
            etag: headers.get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::trim),
            last_modified: headers
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        }
    }
}

/// What the preconditions of a GET or HEAD say (RFC 9110 §13.2.2, steps 1 to 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve the representation (a `Range` still applies).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// Whether the request has a precondition of steps 1 to 4 (most requests have none, and
/// need no validator parsed).
pub fn has_preconditions(request: &HeaderMap) -> bool {
    [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|name| request.contains_key(name))
}

/// Evaluates the client's preconditions in the RFC's order: `If-Match`, else
/// `If-Unmodified-Since`; then `If-None-Match`, else `If-Modified-Since`.
pub fn evaluate(request: &HeaderMap, v: &Validators<'_>) -> Verdict {
    if let Some(list) = text(request, &header::IF_MATCH) {
        if !matches_list(list, v.etag, Comparison::Strong) {
            return Verdict::PreconditionFailed;
        }
    } else if let Some(since) = date(request, &header::IF_UNMODIFIED_SINCE) {
        if v.last_modified.is_some_and(|modified| modified > since) {
            return Verdict::PreconditionFailed;
        }
    }
    if let Some(list) = text(request, &header::IF_NONE_MATCH) {
        if matches_list(list, v.etag, Comparison::Weak) {
            return Verdict::NotModified;
        }
    } else if let Some(since) = date(request, &header::IF_MODIFIED_SINCE) {
        if v.last_modified.is_some_and(|modified| modified <= since) {
            return Verdict::NotModified;
        }
    }
    Verdict::Proceed
}

/// Whether a `Range` may be served (RFC 9110 §13.1.5): true without `If-Range`; with an entity
/// tag, when it matches the representation's strongly; with a date, when it is exactly its
/// `Last-Modified`. Otherwise the whole representation is sent with 200.
pub fn if_range_holds(request: &HeaderMap, v: &Validators<'_>) -> bool {
    let Some(value) = text(request, &header::IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return tags(value).is_some_and(|t| t.len() == 1 && v.etag.is_some_and(|e| strong_eq(t[0], e)));
    }
    match (httpdate::parse_http_date(value), v.last_modified) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Comparison {
    Strong,
    Weak,
}

fn text<'h>(headers: &'h HeaderMap, name: &header::HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An HTTP-date header; an invalid date is ignored, as RFC 9110 §13.1.3 and §13.1.4 say.
fn date(headers: &HeaderMap, name: &header::HeaderName) -> Option<SystemTime> {
    text(headers, name).and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// Whether an `If-Match`/`If-None-Match` value (`*` or a list of entity tags) matches the
/// representation's tag. `*` matches any representation that exists (the bucket answered
/// with one). A list that does not parse matches nothing.
fn matches_list(list: &str, etag: Option<&str>, how: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let (Some(etag), Some(tags)) = (etag, tags(list)) else {
        return false;
    };
    tags.into_iter().any(|t| match how {
        Comparison::Strong => strong_eq(t, etag),
        Comparison::Weak => opaque(t) == opaque(etag),
    })
}

/// The entity tags of a comma-separated list (`"a", W/"b"`), or `None` if it is not one.
fn tags(list: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let start = if rest.starts_with("W/\"") {
            2
        } else if rest.starts_with('"') {
            0
        } else {
            return None;
        };
        let end = start + 1 + rest[start + 1..].find('"')?;
        out.push(&rest[..=end]);
        rest = rest[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The tag without its weakness indicator.
fn opaque(tag: &str) -> &str {
    tag.trim().strip_prefix("W/").unwrap_or(tag.trim())
}

/// Strong comparison (RFC 9110 §8.8.3.2): both strong, and the same.
fn strong_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TAG: &str = "\"abc\"";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date_header(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    fn object() -> Validators<'static> {
        Validators {
            etag: Some(TAG),
            last_modified: Some(at(1_000_000)),
        }
    }

    #[test]
    fn if_none_match_with_the_current_tag_is_not_modified_weakly_compared() {
        for value in [TAG, "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            let h = request(&[("if-none-match", value)]);
            assert_eq!(evaluate(&h, &object()), Verdict::NotModified, "{value}");
        }
        let h = request(&[("if-none-match", "\"other\"")]);
        assert_eq!(evaluate(&h, &object()), Verdict::Proceed);
    }

    #[test]
    fn if_match_needs_a_strong_match() {
        for value in [TAG, "\"x\", \"abc\"", "*"] {
            assert_eq!(
                evaluate(&request(&[("if-match", value)]), &object()),
                Verdict::Proceed,
                "{value}"
            );
        }
        for value in ["\"other\"", "W/\"abc\"", "garbage", ""] {
            assert_eq!(
                evaluate(&request(&[("if-match", value)]), &object()),
                Verdict::PreconditionFailed,
                "{value}"
            );
        }
        let weak_object = Validators {
            etag: Some("W/\"abc\""),
            ..object()
        };
        assert_eq!(
            evaluate(&request(&[("if-match", "W/\"abc\"")]), &weak_object),
            Verdict::PreconditionFailed
        );
    }

    #[test]
    fn dates_compare_with_last_modified_and_invalid_ones_are_ignored() {
        let modified = 1_000_000;
        let cases = [
            ("if-modified-since", date_header(modified), Verdict::NotModified),
            ("if-modified-since", date_header(modified + 10), Verdict::NotModified),
            ("if-modified-since", date_header(modified - 10), Verdict::Proceed),
            ("if-modified-since", "not a date".to_string(), Verdict::Proceed),
            ("if-unmodified-since", date_header(modified), Verdict::Proceed),
            (
                "if-unmodified-since",
                date_header(modified - 10),
                Verdict::PreconditionFailed,
            ),
            ("if-unmodified-since", "yesterday".to_string(), Verdict::Proceed),
        ];
        for (name, value, verdict) in cases {
            assert_eq!(
                evaluate(&request(&[(name, &value)]), &object()),
                verdict,
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn the_rfcs_order_decides_between_several_preconditions() {
        let old = date_header(10);
        // If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since.
        let h = request(&[("if-match", TAG), ("if-unmodified-since", &old)]);
        assert_eq!(evaluate(&h, &object()), Verdict::Proceed);
        let h = request(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &date_header(2_000_000)),
        ]);
        assert_eq!(evaluate(&h, &object()), Verdict::Proceed);
        // A failed If-Match is 412 even where If-None-Match would say 304.
        let h = request(&[("if-match", "\"other\""), ("if-none-match", TAG)]);
        assert_eq!(evaluate(&h, &object()), Verdict::PreconditionFailed);
    }

    #[test]
    fn without_validators_only_a_star_matches() {
        let none = Validators::default();
        assert_eq!(
            evaluate(&request(&[("if-match", TAG)]), &none),
            Verdict::PreconditionFailed
        );
        assert_eq!(evaluate(&request(&[("if-match", "*")]), &none), Verdict::Proceed);
        assert_eq!(evaluate(&request(&[("if-none-match", TAG)]), &none), Verdict::Proceed);
        assert_eq!(
            evaluate(&request(&[("if-modified-since", &date_header(5))]), &none),
            Verdict::Proceed
        );
    }

    #[test]
    fn if_range_holds_for_the_same_strong_tag_or_the_exact_date() {
        assert!(if_range_holds(&HeaderMap::new(), &object()));
        assert!(if_range_holds(&request(&[("if-range", TAG)]), &object()));
        assert!(!if_range_holds(&request(&[("if-range", "\"old\"")]), &object()));
        assert!(!if_range_holds(&request(&[("if-range", "W/\"abc\"")]), &object()));
        assert!(if_range_holds(
            &request(&[("if-range", &date_header(1_000_000))]),
            &object()
        ));
        assert!(!if_range_holds(
            &request(&[("if-range", &date_header(1_000_001))]),
            &object()
        ));
        assert!(!if_range_holds(
            &request(&[("if-range", &date_header(999_999))]),
            &object()
        ));
        assert!(!if_range_holds(&request(&[("if-range", "soon")]), &object()));
        assert!(!if_range_holds(&request(&[("if-range", TAG)]), &Validators::default()));
    }

    #[test]
    fn entity_tag_lists_parse_quoted_commas_and_refuse_junk() {
        assert_eq!(
            tags("\"a\", W/\"b\",\"c,d\""),
            Some(vec!["\"a\"", "W/\"b\"", "\"c,d\""])
        );
        for junk in ["a", "\"a", "\"a\" \"b\"", "W/a", ",", ""] {
            assert_eq!(tags(junk), None, "{junk}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the client sends, evaluation answers, and a tag list containing the
            /// object's own tag always matches it.
            #[test]
            fn any_header_is_judged_and_the_own_tag_always_matches(
                value in "[ -~]{0,60}",
                tag in "[!#-~]{0,20}",
            ) {
                let etag = format!("\"{tag}\"");
                let v = Validators { etag: Some(&etag), last_modified: Some(at(5)) };
                for name in ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range"] {
                    if let Ok(value) = value.parse::<http::HeaderValue>() {
                        let mut h = HeaderMap::new();
                        h.insert(header::HeaderName::from_static(name), value);
                        let _ = evaluate(&h, &v);
                        let _ = if_range_holds(&h, &v);
                    }
                }
                if !tag.contains('"') {
                    let list = format!("\"x\", {etag}");
                    let h = request(&[("if-match", &list)]);
                    prop_assert_eq!(evaluate(&h, &v), Verdict::Proceed);
                    let h = request(&[("if-none-match", &list)]);
                    prop_assert_eq!(evaluate(&h, &v), Verdict::NotModified);
                }
            }
        }
    }
}

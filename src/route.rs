//! Request path -> [`Route`]. Path segments are percent-decoded exactly once; inside an object
//! key `/`, `..`, `//`, a trailing `/`, `+` and spaces are ordinary characters (README "Routes"). And
//! the other way: a key encoded exactly once for a URL path ([`encode_key`]), as every
//! provider's requests and our own URLs carry it.

use std::borrow::Cow;

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::GatewayError;

/// S3 `UriEncode` for object keys: every byte but `A-Za-z0-9-_.~` and `/` becomes `%XX`
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>).
/// The same string is sent on the wire and used as the SigV4 canonical URI, so signing must
/// not encode it again.
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes an object key for a URL path (S3's rules, which Azure and GCS accept; also safe
/// for our own routes).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ENCODE_SET).to_string()
}

/// S3's limit on key length, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v1/orgs/{org}/storages/{storage}/objects/{bucket}/{key...}`
    Object(ObjectPath),
    /// `/v1/orgs/{org}/storages/{storage}/resolve?url=…`: (org, storage)
    Resolve(String, String),
    /// `/healthz`
    Health,
    /// `/readyz`
    Ready,
}

/// The decoded parts of an object route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub org: String,
    pub storage: String,
    pub bucket: String,
    /// The object key, decoded once, exactly as stored in the bucket.
    pub key: String,
}

/// Parses the raw (still percent-encoded) path of a request.
pub fn parse(path: &str) -> Result<Route, GatewayError> {
    match path {
        "/healthz" => return Ok(Route::Health),
        "/readyz" => return Ok(Route::Ready),
        _ => {}
    }
    let rest = path.strip_prefix("/v1/orgs/").ok_or(GatewayError::RouteNotFound)?;
    let (org, rest) = rest.split_once('/').ok_or(GatewayError::RouteNotFound)?;
    let rest = rest.strip_prefix("storages/").ok_or(GatewayError::RouteNotFound)?;
    let (storage, rest) = rest.split_once('/').ok_or(GatewayError::RouteNotFound)?;
    if rest == "resolve" {
        return Ok(Route::Resolve(
            segment(org, "organization")?,
            segment(storage, "storage")?,
        ));
    }
    let rest = rest.strip_prefix("objects/").ok_or(GatewayError::RouteNotFound)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(|| {
        GatewayError::InvalidRequest("the path must name an object: .../objects/{bucket}/{key}".into())
    })?;
    let object = ObjectPath {
        org: segment(org, "organization")?,
        storage: segment(storage, "storage")?,
        bucket: segment(bucket, "bucket")?,
        key: decode(key)?,
    };
    if object.key.is_empty() {
        return Err(GatewayError::InvalidRequest("the object key is empty".into()));
    }
    if object.key.len() > MAX_KEY_BYTES {
        return Err(GatewayError::InvalidRequest(format!(
            "the object key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(Route::Object(object))
}

/// A single path segment (org, storage, bucket): decoded, non-empty, without `/`.
fn segment(raw: &str, what: &str) -> Result<String, GatewayError> {
    let value = decode(raw)?;
    if value.is_empty() || value.contains('/') {
        return Err(GatewayError::InvalidRequest(format!(
            "the {what} in the path is empty or malformed"
        )));
    }
    Ok(value)
}

/// Whether a key would name something outside its bucket if a server (or a proxy on the way)
/// resolved its dot segments (RFC 3986 §5.2.4): a `..` that climbs above the bucket
/// (`../other-bucket/k`, `a/../../b`), or dot segments that leave nothing of the key (`.`,
/// `a/..`: the bucket itself, whose listing is no object). Empty segments count as nothing,
/// since some servers collapse `//`; backslashes count as separators, since some servers
/// treat them so. Other keys with dot segments (`a/../b`) stay ordinary keys.
pub fn leaves_bucket(key: &str) -> bool {
    let (mut depth, mut dotted) = (0usize, false);
    for segment in key.split(['/', '\\']) {
        match segment {
            ".." => {
                dotted = true;
                match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return true,
                }
            }
            "." => dotted = true,
            "" => {}
            _ => depth += 1,
        }
    }
    dotted && depth == 0
}

/// Percent-decodes once. Malformed escapes (`%`, `%4`, `%zz`) and bytes that are not UTF-8
/// are refused rather than guessed at: a guess could name another object.
pub fn decode(raw: &str) -> Result<String, GatewayError> {
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(GatewayError::InvalidRequest(
            "malformed percent-encoding in the path".into(),
        ));
    }
    percent_decode(bytes)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| GatewayError::InvalidRequest("the path is not valid UTF-8 once decoded".into()))
}

/// The value of query parameter `name`, percent-decoded (`+` is a space, as in forms):
/// borrowed from the query when there is nothing to decode (tokens among others).
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            if !v.contains(['%', '+']) {
                return Cow::Borrowed(v);
            }
            Cow::Owned(
                percent_decode(v.replace('+', " ").as_bytes())
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_whose_dot_segments_leave_the_bucket() {
        for out in [
            "../other-bucket/secret",
            "a/../../b",
            "..",
            ".",
            "a/..",
            "./",
            "a/./..",
            "a//../../b",
            "a\\..\\..\\b",
            "a/b/../../../c",
        ] {
            assert!(leaves_bucket(out), "{out}");
        }
        for inside in ["a/../b", "a/./b", "a//b", "a/", "...", "..a/b", "a/b/../c", "a..b", "x"] {
            assert!(!leaves_bucket(inside), "{inside}");
        }
    }

    use super::*;

    #[test]
    fn encodes_every_reserved_byte_once_and_keeps_slashes() {
        assert_eq!(
            encode_key("a b+c(1)'!*=@&$,;:%.jpg"),
            "a%20b%2Bc%281%29%27%21%2A%3D%40%26%24%2C%3B%3A%25.jpg"
        );
        assert_eq!(encode_key("a//b/./c/../d/"), "a//b/./c/../d/");
        assert_eq!(encode_key("~-_."), "~-_.");
        assert_eq!(encode_key("中"), "%E4%B8%AD");
    }
    use proptest::prelude::*;

    fn object(path: &str) -> ObjectPath {
        match parse(path).unwrap() {
            Route::Object(o) => o,
            other => panic!("not an object route: {other:?}"),
        }
    }

    #[test]
    fn splits_org_storage_bucket_and_key() {
        let o = object("/v1/orgs/acme/storages/main/objects/imgs/a/b/c.jpg");
        assert_eq!(
            (o.org.as_str(), o.storage.as_str(), o.bucket.as_str(), o.key.as_str()),
            ("acme", "main", "imgs", "a/b/c.jpg")
        );
    }

    #[test]
    fn key_is_decoded_exactly_once() {
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/100%2525.txt").key, "100%25.txt");
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/a%20b+c").key, "a b+c");
        assert_eq!(
            object("/v1/orgs/a/storages/s/objects/b/%E4%B8%AD%F0%9F%98%80").key,
            "中😀"
        );
    }

    #[test]
    fn dot_segments_double_and_trailing_slashes_are_kept() {
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/a/../b").key, "a/../b");
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/a/./b").key, "a/./b");
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/a//b").key, "a//b");
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/dir/").key, "dir/");
        assert_eq!(object("/v1/orgs/a/storages/s/objects/b/a%2Fb").key, "a/b");
    }

    #[test]
    fn resolve_route() {
        assert_eq!(
            parse("/v1/orgs/a/storages/s/resolve").unwrap(),
            Route::Resolve("a".into(), "s".into())
        );
        assert_eq!(
            parse("/v1/orgs/a/storages/s/resolve/x").unwrap_err(),
            GatewayError::RouteNotFound
        );
    }

    #[test]
    fn health_routes() {
        assert_eq!(parse("/healthz").unwrap(), Route::Health);
        assert_eq!(parse("/readyz").unwrap(), Route::Ready);
    }

    #[test]
    fn unknown_paths_are_not_found_and_bad_ones_invalid() {
        assert_eq!(parse("/").unwrap_err(), GatewayError::RouteNotFound);
        assert_eq!(
            parse("/v1/orgs/a/storages/s/things/b/k").unwrap_err(),
            GatewayError::RouteNotFound
        );
        for bad in [
            "/v1/orgs/a/storages/s/objects/b",
            "/v1/orgs/a/storages/s/objects/b/",
            "/v1/orgs//storages/s/objects/b/k",
            "/v1/orgs/a/storages/s/objects/b%2Fc/k",
            "/v1/orgs/a/storages/s/objects/b/100%",
            "/v1/orgs/a/storages/s/objects/b/%zz",
            "/v1/orgs/a/storages/s/objects/b/%FF",
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn keys_over_1024_bytes_are_refused() {
        let ok = format!("/v1/orgs/a/storages/s/objects/b/{}", "k".repeat(1024));
        assert_eq!(object(&ok).key.len(), 1024);
        let long = format!("/v1/orgs/a/storages/s/objects/b/{}", "k".repeat(1025));
        assert_eq!(parse(&long).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn query_param_finds_and_decodes() {
        assert_eq!(query_param(Some("a=1&token=x%2Ey&b"), "token").as_deref(), Some("x.y"));
        assert_eq!(query_param(Some("token"), "token").as_deref(), Some(""));
        assert_eq!(query_param(Some("tokens=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }

    proptest! {
        #[test]
        fn a_query_value_decodes_as_a_form_value(value in "[a-zA-Z0-9%+._~=-]{0,30}|%[0-9a-fA-F]{2}[a-z+]{0,4}|\\PC{0,10}") {
            prop_assume!(!value.contains('&'));
            let expected = percent_decode(value.replace('+', " ").as_bytes()).decode_utf8_lossy().into_owned();
            let query = format!("x=1&token={value}&y");
            prop_assert_eq!(query_param(Some(&query), "token").map(|v| v.into_owned()), Some(expected));
        }

        #[test]
        fn parse_never_panics(path in "\\PC*") {
            let _ = parse(&path);
        }

        #[test]
        fn parse_never_panics_on_route_shaped_input(rest in "[a-z%/.0-9A-F]{0,40}") {
            let _ = parse(&format!("/v1/orgs/a/storages/s/objects/{rest}"));
        }

        #[test]
        fn encoded_keys_come_back_unchanged(key in "\\PC{1,200}") {
            let path = format!("/v1/orgs/a/storages/s/objects/b/{}", encode_key(&key));
            prop_assert_eq!(object(&path).key, key);
        }
    }
}

//! Where an object lives in the S3 API (S3, S3-compatible services, GCS's XML API): the URL
//! for (endpoint, bucket, key), in path-style or virtual-hosted style, with the key encoded
//! exactly once by S3's rules.

use crate::route::encode_key;
use crate::upstream::{Endpoint, Scheme};

/// AWS's regional S3 endpoint (`s3.{region}.amazonaws.com`; `.com.cn` in the China
/// partition).
pub fn aws_endpoint(region: &str) -> Endpoint {
    let host = if region.starts_with("cn-") {
        format!("s3.{region}.amazonaws.com.cn")
    } else {
        format!("s3.{region}.amazonaws.com")
    };
    Endpoint {
        scheme: Scheme::Https,
        host,
        port: None,
    }
}

/// Whether `bucket` can be a DNS label in front of `endpoint`. Buckets with dots break
/// TLS wildcard certificates, and uppercase or `_` are not valid host names: those fall back
/// to path-style, as the AWS SDKs do.
fn virtual_host_ok(bucket: &str, endpoint: &Endpoint) -> bool {
    let dns_label = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    dns_label && !endpoint.host_is_ip() && !(bucket.contains('.') && endpoint.scheme == Scheme::Https)
}

/// Where a bucket's requests go: `scheme://bucket.host[:port]` (virtual-hosted) or
/// `scheme://host[:port]/bucket` (path-style), with room for `more` bytes after it; and
/// whether it is the virtual host. Built on every request, so without the formatting
/// machinery.
fn bucket_base(endpoint: &Endpoint, path_style: bool, bucket: &str, more: usize) -> (String, bool) {
    let mut url = String::with_capacity(endpoint.host.len() + bucket.len() + more + 16);
    let virtual_host = !path_style && virtual_host_ok(bucket, endpoint);
    endpoint
        .write_to(&mut url, virtual_host.then_some(bucket))
        .expect("a String takes any text");
    if !virtual_host {
        url.push('/');
        url.push_str(bucket);
    }
    (url, virtual_host)
}

/// The URL of an object, ready to be sent and signed.
pub fn object_url(endpoint: &Endpoint, path_style: bool, bucket: &str, key: &str) -> String {
    let key = encode_key(key);
    let (mut url, _) = bucket_base(endpoint, path_style, bucket, key.len() + 1);
    url.push('/');
    url.push_str(&key);
    url
}

/// The URL of a bucket-level request (`query` such as `location` or
/// `list-type=2&max-keys=1`), addressed like the bucket's objects.
pub fn bucket_url(endpoint: &Endpoint, path_style: bool, bucket: &str, query: &str) -> String {
    let (mut url, virtual_host) = bucket_base(endpoint, path_style, bucket, query.len() + 2);
    url.push_str(if virtual_host { "/?" } else { "?" });
    url.push_str(query);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(e: &str) -> Endpoint {
        Endpoint::parse(e).unwrap()
    }

    #[test]
    fn aws_defaults_to_the_regional_virtual_host() {
        assert_eq!(
            object_url(&aws_endpoint("eu-central-1"), false, "my-bucket", "a b.jpg"),
            "https://my-bucket.s3.eu-central-1.amazonaws.com/a%20b.jpg"
        );
    }

    #[test]
    fn dotted_buckets_fall_back_to_path_style_over_https() {
        assert_eq!(
            object_url(&aws_endpoint("eu-central-1"), false, "my.bucket", "k"),
            "https://s3.eu-central-1.amazonaws.com/my.bucket/k"
        );
    }

    #[test]
    fn custom_endpoint_with_port_path_style() {
        assert_eq!(
            object_url(&endpoint("http://127.0.0.1:9000"), true, "b", "x/y"),
            "http://127.0.0.1:9000/b/x/y"
        );
    }

    #[test]
    fn custom_endpoint_virtual_hosted_unless_ip() {
        assert_eq!(
            object_url(&endpoint("http://localhost:8333"), false, "bkt", "k"),
            "http://bkt.localhost:8333/k"
        );
        assert_eq!(
            object_url(&endpoint("http://10.0.0.1:8333"), false, "bkt", "k"),
            "http://10.0.0.1:8333/bkt/k"
        );
    }

    #[test]
    fn bucket_urls_follow_the_same_addressing() {
        assert_eq!(
            bucket_url(&aws_endpoint("eu-central-1"), false, "my-bucket", "location"),
            "https://my-bucket.s3.eu-central-1.amazonaws.com/?location"
        );
        assert_eq!(
            bucket_url(&endpoint("http://127.0.0.1:9000"), true, "b", "list-type=2&max-keys=1"),
            "http://127.0.0.1:9000/b?list-type=2&max-keys=1"
        );
    }

    #[test]
    fn china_endpoints() {
        assert_eq!(
            object_url(&aws_endpoint("cn-north-1"), true, "b", "k"),
            "https://s3.cn-north-1.amazonaws.com.cn/b/k"
        );
    }
}

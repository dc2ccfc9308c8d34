//! Where an object lives: the upstream URL for (storage, bucket, key), in path-style or
//! virtual-hosted style, with the key encoded exactly once by S3's rules.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::config::{Endpoint, Provider, Scheme, Storage};

/// S3 `UriEncode` for object keys: every byte but `A-Za-z0-9-_.~` and `/` becomes `%XX`
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>).
/// The same string is sent on the wire and used as the SigV4 canonical URI, so signing must
/// not encode it again (`PercentEncodingMode::Single`).
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes an object key for a URL path (S3's rules; also safe for our own routes).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ENCODE_SET).to_string()
}

/// The endpoint a storage talks to: its own, or the provider's public one for its region.
pub fn storage_endpoint(storage: &Storage) -> Endpoint {
    if let Some(endpoint) = &storage.endpoint {
        return endpoint.clone();
    }
    let host = match storage.provider {
        Provider::Gcs => "storage.googleapis.com".to_string(),
        Provider::Aws | Provider::S3Compatible => aws_s3_host(&storage.region),
    };
    Endpoint {
        scheme: Scheme::Https,
        host,
        port: None,
    }
}

/// AWS's regional S3 host (`s3.{region}.amazonaws.com`; `.com.cn` in the China partition).
fn aws_s3_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("s3.{region}.amazonaws.com.cn")
    } else {
        format!("s3.{region}.amazonaws.com")
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

/// The upstream URL of an object, ready to be sent and signed.
pub fn object_url(storage: &Storage, bucket: &str, key: &str) -> String {
    let endpoint = storage_endpoint(storage);
    let key = encode_key(key);
    if !storage.path_style && virtual_host_ok(bucket, &endpoint) {
        format!("{}/{key}", endpoint.with_subdomain(bucket))
    } else {
        format!("{endpoint}/{bucket}/{key}")
    }
}

/// The upstream URL of a bucket-level request (`query` such as `location` or
/// `list-type=2&max-keys=1`), addressed like the bucket's objects.
pub fn bucket_url(storage: &Storage, bucket: &str, query: &str) -> String {
    let endpoint = storage_endpoint(storage);
    if !storage.path_style && virtual_host_ok(bucket, &endpoint) {
        format!("{}/?{query}", endpoint.with_subdomain(bucket))
    } else {
        format!("{endpoint}/{bucket}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{StaticKeys, StorageCredentials};
    use crate::secret::Secret;

    fn storage(provider: Provider, endpoint: Option<&str>, path_style: bool) -> Storage {
        Storage {
            id: "s".into(),
            name: "s".into(),
            provider,
            buckets: vec!["b".into()],
            region: "eu-central-1".into(),
            endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
            path_style,
            credentials: StorageCredentials::AccessKey(StaticKeys {
                access_key_id: "a".into(),
                secret_access_key: Secret::new("s"),
                session_token: None,
            }),
        }
    }

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

    #[test]
    fn aws_defaults_to_the_regional_virtual_host() {
        let s = storage(Provider::Aws, None, false);
        assert_eq!(
            object_url(&s, "my-bucket", "a b.jpg"),
            "https://my-bucket.s3.eu-central-1.amazonaws.com/a%20b.jpg"
        );
    }

    #[test]
    fn dotted_buckets_fall_back_to_path_style_over_https() {
        let s = storage(Provider::Aws, None, false);
        assert_eq!(
            object_url(&s, "my.bucket", "k"),
            "https://s3.eu-central-1.amazonaws.com/my.bucket/k"
        );
    }

    #[test]
    fn custom_endpoint_with_port_path_style() {
        let s = storage(Provider::S3Compatible, Some("http://127.0.0.1:9000"), true);
        assert_eq!(object_url(&s, "b", "x/y"), "http://127.0.0.1:9000/b/x/y");
    }

    #[test]
    fn custom_endpoint_virtual_hosted_unless_ip() {
        let s = storage(Provider::S3Compatible, Some("http://localhost:8333"), false);
        assert_eq!(object_url(&s, "bkt", "k"), "http://bkt.localhost:8333/k");
        let s = storage(Provider::S3Compatible, Some("http://10.0.0.1:8333"), false);
        assert_eq!(object_url(&s, "bkt", "k"), "http://10.0.0.1:8333/bkt/k");
    }

    #[test]
    fn bucket_urls_follow_the_same_addressing() {
        let s = storage(Provider::Aws, None, false);
        assert_eq!(
            bucket_url(&s, "my-bucket", "location"),
            "https://my-bucket.s3.eu-central-1.amazonaws.com/?location"
        );
        let s = storage(Provider::S3Compatible, Some("http://127.0.0.1:9000"), true);
        assert_eq!(
            bucket_url(&s, "b", "list-type=2&max-keys=1"),
            "http://127.0.0.1:9000/b?list-type=2&max-keys=1"
        );
    }

    #[test]
    fn china_and_gcs_endpoints() {
        let mut s = storage(Provider::Aws, None, true);
        s.region = "cn-north-1".into();
        assert_eq!(object_url(&s, "b", "k"), "https://s3.cn-north-1.amazonaws.com.cn/b/k");
        let s = storage(Provider::Gcs, None, true);
        assert_eq!(object_url(&s, "b", "k"), "https://storage.googleapis.com/b/k");
    }
}

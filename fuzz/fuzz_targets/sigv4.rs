//! The SigV4 signer against `aws-sigv4`, the AWS SDKs' own, on the requests the gateway
//! sends to S3-style buckets: any key, in path-style and virtual-hosted URLs, bucket-level
//! queries, the client's headers that are passed on, any region, time and session token.
//! Both must give the same `Authorization`, date, payload hash and token headers.
#![no_main]

use std::time::{Duration, SystemTime};

use assetgate::credentials::{SigningKeys, StaticKeys};
use assetgate::route::encode_key;
use assetgate::secret::Secret;
use assetgate::storage::providers::s3::address::{bucket_url, object_url};
use assetgate::storage::providers::s3::sign::sign_request;
use assetgate::upstream::Endpoint;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A string of the bytes `allowed` says are allowed, at most `max` long.
fn text(u: &mut Unstructured<'_>, max: usize, allowed: impl Fn(char) -> bool) -> Result<String> {
    let raw: &str = u.arbitrary()?;
    Ok(raw.chars().filter(|&c| allowed(c)).take(max).collect())
}

#[path = "../../src/storage/providers/s3/sign_reference.rs"]
mod sign_reference;

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let endpoint = match u.int_in_range(0..=2)? {
        0 => "https://s3.eu-central-1.amazonaws.com",
        1 => "http://127.0.0.1:8333",
        _ => "https://minio.example.com:9000",
    };
    let endpoint = Endpoint::parse(endpoint).unwrap();
    let path_style: bool = u.arbitrary()?;
    let bucket = text(u, 63, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
    })?;
    if bucket.len() < 3 {
        return Ok(());
    }
    let url = match u.int_in_range(0..=2)? {
        0 => {
            let key: String = u.arbitrary()?;
            if key.is_empty() {
                return Ok(());
            }
            object_url(&endpoint, path_style, &bucket, &key)
        }
        1 => bucket_url(&endpoint, path_style, &bucket, "location"),
        _ => {
            let prefix: String = u.arbitrary()?;
            bucket_url(
                &endpoint,
                path_style,
                &bucket,
                &format!(
                    "list-type=2&max-keys=1&prefix={}",
                    encode_key(&prefix).replace('/', "%2F")
                ),
            )
        }
    };
    let mut request = http::Request::get(&url);
    // What a client's request may carry on to the bucket: visible ASCII and spaces.
    let visible = |c: char| c == ' ' || c.is_ascii_graphic();
    for name in [
        "range",
        "if-none-match",
        "if-match",
        "if-modified-since",
        "if-unmodified-since",
    ] {
        if u.arbitrary()? {
            let value = text(u, 200, visible)?;
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(()) else { return Ok(()) };
    let region = text(u, 30, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')?;
    if region.is_empty() {
        return Ok(());
    }
    let session_token = if u.arbitrary()? {
        let token = text(u, 400, |c| c.is_ascii_graphic())?;
        (!token.is_empty()).then(|| Secret::new(token))
    } else {
        None
    };
    let keys = StaticKeys {
        access_key_id: text(u, 40, |c| c.is_ascii_alphanumeric())?,
        secret_access_key: Secret::new(text(u, 60, |c| c.is_ascii_graphic())?),
        session_token,
    };
    if keys.access_key_id.is_empty() {
        return Ok(());
    }
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u.arbitrary::<u32>()?));

    let token = keys.session_token.as_ref().map(|t| t.expose().to_string());
    let want = sign_reference::reference(
        &request,
        &keys.access_key_id,
        keys.secret_access_key.expose(),
        token.as_deref(),
        &region,
        time,
    );
    let mut got = request.clone();
    sign_request(&mut got, &SigningKeys::from_static(&keys), &region, time).unwrap();
    sign_reference::assert_same_signature(&got, &want, &format_args!("{url} {:?}", request.headers()));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

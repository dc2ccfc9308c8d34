//! SigV4 signing of S3 requests with `aws-sigv4`, configured for S3
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>): the
//! path is already `UriEncode`d once and must not be encoded again or normalised (S3 keys
//! may contain `//`, `.` and `..` segments), and the payload is `UNSIGNED-PAYLOAD`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::config::StaticKeys;
use crate::error::GatewayError;

/// Signing service name of S3 (and of GCS's and other providers' S3-compatible APIs).
const SERVICE: &str = "s3";

/// The S3 signing settings: single encoding, no normalisation, `x-amz-content-sha256`.
fn s3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings
}

/// The signing identity for a set of static or temporary keys.
pub fn identity(keys: &StaticKeys) -> Identity {
    Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose().to_string(),
        keys.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "assetgate",
    )
    .into()
}

/// Signs `request` in place: adds `Authorization`, `x-amz-date`, `x-amz-content-sha256` and,
/// for temporary credentials, `x-amz-security-token`. Every header already on the request
/// is signed, so nothing can be added after this call.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<(), GatewayError> {
    let settings = s3_settings();
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| GatewayError::Internal)?
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(request.method().as_str(), uri, headers, SignableBody::UnsignedPayload)
        .map_err(|_| GatewayError::Internal)?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| GatewayError::Internal)?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn keys(token: Option<&str>) -> StaticKeys {
        StaticKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
        }
    }

    fn signed(uri: &str, token: Option<&str>) -> http::Request<()> {
        let mut req = http::Request::get(uri).body(()).unwrap();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign_request(&mut req, &identity(&keys(token)), "us-east-1", time).unwrap();
        req
    }

    #[test]
    fn signs_with_unsigned_payload_and_the_s3_scope() {
        let req = signed("https://examplebucket.s3.amazonaws.com/test.txt", None);
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert_eq!(req.headers()["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
    }

    #[test]
    fn path_is_neither_re_encoded_nor_normalised() {
        // The request URI is kept as built; a signer that normalised `a/../b` or encoded `%20`
        // again would produce another signature than the bucket computes.
        let a = signed("https://b.s3.amazonaws.com/a/../b%20c", None);
        let b = signed("https://b.s3.amazonaws.com/b%20c", None);
        let c = signed("https://b.s3.amazonaws.com/a/../b%2520c", None);
        let sig = |r: &http::Request<()>| {
            r.headers()["authorization"]
                .to_str()
                .unwrap()
                .rsplit('=')
                .next()
                .unwrap()
                .to_string()
        };
        assert_ne!(sig(&a), sig(&b));
        assert_ne!(sig(&a), sig(&c));
        assert_eq!(a.uri().path(), "/a/../b%20c");
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let req = signed("https://b.s3.amazonaws.com/k", Some("FQoGZXIvYXdzEXAMPLE"));
        assert_eq!(req.headers()["x-amz-security-token"], "FQoGZXIvYXdzEXAMPLE");
        assert!(req.headers()["authorization"]
            .to_str()
            .unwrap()
            .contains("x-amz-security-token"));
    }

    #[test]
    fn forwarded_headers_are_signed_too() {
        let mut req = http::Request::get("https://b.s3.amazonaws.com/k")
            .header("range", "bytes=0-")
            .body(())
            .unwrap();
        sign_request(&mut req, &identity(&keys(None)), "us-east-1", SystemTime::now()).unwrap();
        assert!(req.headers()["authorization"]
            .to_str()
            .unwrap()
            .contains("host;range;x-amz-content-sha256"));
    }
}

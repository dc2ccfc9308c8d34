//! The reference the SigV4 signer is checked against, by its unit tests and by the fuzz
//! target `sigv4` (fuzz/): the same request signed by `aws-sigv4`, set up as the AWS SDK
//! signs S3's GetObject. Only tests include this file.

use std::time::SystemTime;

/// `request` signed by `aws-sigv4` with these keys, for S3 in `region` at `time`.
pub fn reference(
    request: &http::Request<()>,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    time: SystemTime,
) -> http::Request<()> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode,
    };
    let identity = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.map(str::to_string),
        None,
        "reference",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = request.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap()));
    let uri = request.uri().to_string();
    let signable =
        SignableRequest::new(request.method().as_str(), uri, headers, SignableBody::UnsignedPayload).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut out = request.clone();
    instructions.apply_to_request_http1x(&mut out);
    out
}

/// The headers a signature adds.
const SIGNATURE_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// Fails unless `got` carries the same signature headers as `want`, naming `what`.
pub fn assert_same_signature(got: &http::Request<()>, want: &http::Request<()>, what: &dyn std::fmt::Display) {
    for name in SIGNATURE_HEADERS {
        assert_eq!(got.headers().get(name), want.headers().get(name), "{name} of {what}");
    }
}

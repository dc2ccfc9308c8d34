//! What an S3 error answer means
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>): its `<Code>`,
//! mapped to the gateway's errors. GCS's XML API answers with the same codes.

use http::StatusCode;

use crate::error::GatewayError;

/// Maps an upstream error status (and S3 error code, absent for HEAD) to a gateway error.
pub fn map(status: StatusCode, code: Option<&str>) -> GatewayError {
    if let Some(code) = code {
        if let Some(err) = map_code(code) {
            return err;
        }
    }
    let code = code.map(str::to_string);
    match status.as_u16() {
        404 => GatewayError::NoSuchKey,
        401 => GatewayError::UpstreamCredentialsRejected(code.unwrap_or_else(|| "Unauthorized".into())),
        403 => GatewayError::UpstreamAccessDenied(code.unwrap_or_else(|| "AccessDenied".into())),
        412 => GatewayError::PreconditionFailed,
        416 => GatewayError::RangeNotSatisfiable,
        503 => GatewayError::UpstreamUnavailable("the storage is overloaded or unavailable, try again".into()),
        301 | 307 => GatewayError::UpstreamError {
            code: code.unwrap_or_else(|| "PermanentRedirect".into()),
            hint: Some(REGION_HINT),
        },
        s => GatewayError::UpstreamError {
            code: code.unwrap_or_else(|| format!("HTTP{s}")),
            hint: None,
        },
    }
}

/// Whether the bucket refused credentials in a way fresh temporary credentials can fix.
pub fn is_stale_credentials(err: &GatewayError) -> bool {
    matches!(err, GatewayError::UpstreamCredentialsRejected(code)
        if matches!(code.as_str(), "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" | "InvalidAccessKeyId"))
}

const REGION_HINT: &str = "the bucket is in another region or behind another endpoint than the storage says";

fn map_code(code: &str) -> Option<GatewayError> {
    Some(match code {
        "NoSuchKey" => GatewayError::NoSuchKey,
        "NoSuchBucket" => GatewayError::NoSuchBucket,
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" | "InvalidObjectState" => {
            GatewayError::UpstreamAccessDenied(code.into())
        }
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "InvalidSecurity"
        | "RequestTimeTooSkewed" => GatewayError::UpstreamCredentialsRejected(code.into()),
        "PreconditionFailed" => GatewayError::PreconditionFailed,
        "InvalidRange" => GatewayError::RangeNotSatisfiable,
        "SlowDown" | "ServiceUnavailable" => {
            GatewayError::UpstreamUnavailable("the storage asked us to slow down, try again".into())
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
            GatewayError::UpstreamError {
                code: code.into(),
                hint: Some(REGION_HINT),
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_s3_codes() {
        let map = |s: u16, c: &str| map(StatusCode::from_u16(s).unwrap(), Some(c)).code();
        assert_eq!(map(404, "NoSuchKey"), "no_such_key");
        assert_eq!(map(404, "NoSuchBucket"), "no_such_bucket");
        assert_eq!(map(403, "AccessDenied"), "upstream_access_denied");
        assert_eq!(map(403, "InvalidAccessKeyId"), "upstream_credentials_rejected");
        assert_eq!(map(403, "SignatureDoesNotMatch"), "upstream_credentials_rejected");
        assert_eq!(map(400, "ExpiredToken"), "upstream_credentials_rejected");
        assert_eq!(map(503, "SlowDown"), "upstream_unavailable");
        assert_eq!(map(301, "PermanentRedirect"), "upstream_error");
        assert_eq!(map(500, "InternalError"), "upstream_error");
    }

    #[test]
    fn maps_bodiless_statuses_of_head_requests() {
        let map = |s: u16| map(StatusCode::from_u16(s).unwrap(), None);
        assert_eq!(map(404).code(), "no_such_key");
        assert_eq!(map(403).code(), "upstream_access_denied");
        assert_eq!(map(416).code(), "range_not_satisfiable");
        assert_eq!(map(500).upstream_code(), Some("HTTP500"));
    }
}

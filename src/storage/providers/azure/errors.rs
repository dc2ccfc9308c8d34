//! What an Azure error answer means
//! (<https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes>): its code,
//! from `x-ms-error-code` or the XML body, mapped to the gateway's errors as the README's
//! "Errors" section lists them; a code Azure shares with S3, or none, maps as S3's does.

use http::StatusCode;

use crate::error::GatewayError;

/// Maps an upstream error status (and Azure error code, if any) to a gateway error.
pub fn map(status: StatusCode, code: Option<&str>) -> GatewayError {
    let named = |c: &str| c.to_string();
    match code {
        Some("BlobNotFound") => GatewayError::NoSuchKey,
        Some("ContainerNotFound" | "ResourceNotFound") => GatewayError::NoSuchBucket,
        Some(c @ ("AuthenticationFailed" | "InvalidAuthenticationInfo")) => {
            GatewayError::UpstreamCredentialsRejected(named(c))
        }
        Some(
            c @ ("AuthorizationFailure"
            | "AuthorizationPermissionMismatch"
            | "AuthorizationResourceTypeMismatch"
            | "AuthorizationSourceIPMismatch"
            | "AuthorizationProtocolMismatch"
            | "AccountIsDisabled"),
        ) => GatewayError::UpstreamAccessDenied(named(c)),
        Some("ConditionNotMet") => GatewayError::PreconditionFailed,
        Some("InvalidRange") => GatewayError::RangeNotSatisfiable,
        Some("ServerBusy" | "OperationTimedOut") => {
            GatewayError::UpstreamUnavailable("the storage asked us to slow down, try again".into())
        }
        _ => crate::storage::providers::s3::errors::map(status, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_codes_map_as_the_readme_says() {
        let code = |s: u16, c: &str| map(StatusCode::from_u16(s).unwrap(), Some(c)).code();
        assert_eq!(code(404, "BlobNotFound"), "no_such_key");
        assert_eq!(code(404, "ContainerNotFound"), "no_such_bucket");
        assert_eq!(code(403, "AuthenticationFailed"), "upstream_credentials_rejected");
        assert_eq!(code(403, "AuthorizationFailure"), "upstream_access_denied");
        assert_eq!(code(403, "AuthorizationPermissionMismatch"), "upstream_access_denied");
        assert_eq!(code(412, "ConditionNotMet"), "precondition_failed");
        assert_eq!(code(416, "InvalidRange"), "range_not_satisfiable");
        assert_eq!(code(503, "ServerBusy"), "upstream_unavailable");
        let other = map(StatusCode::INTERNAL_SERVER_ERROR, Some("InternalError"));
        assert_eq!(
            (other.code(), other.upstream_code()),
            ("upstream_error", Some("InternalError"))
        );
    }
}

//! The one error type of the request path. Status codes, error codes and JSON bodies
//! (README "Errors") are decided here and nowhere else.

use http::StatusCode;
use serde::Serialize;

/// Why a storage endpoint was refused (`endpoint_not_allowed`): the endpoint guard's refusal,
/// whether found when the storage was checked or on connecting.
pub const FORBIDDEN: &str = "the storage endpoint resolves only to addresses the gateway may not connect to";

/// Everything that can go wrong while serving a request. Messages are written for the
/// person reading the JSON (a labeler's developer tools, an org admin); they never contain a
/// secret, a token or upstream XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    UrlOutsideStorage(String),
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("a token is required: send `Authorization: Bearer <token>` or the `token` query parameter")]
    MissingToken,
    #[error("the token is not valid: {0}")]
    InvalidToken(String),
    #[error("the token has expired")]
    ExpiredToken,
    #[error("the token does not cover this {0}")]
    TokenScope(&'static str),
    #[error("this origin is not allowed to load assets of this organization")]
    OriginNotAllowed,
    #[error("bucket `{0}` is not part of this storage")]
    BucketNotAllowed(String),
    #[error("the bucket refused access to this object ({0})")]
    UpstreamAccessDenied(String),
    #[error("unknown organization `{0}`")]
    UnknownOrg(String),
    #[error("unknown storage `{0}`")]
    UnknownStorage(String),
    #[error("the object does not exist")]
    NoSuchKey,
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("only GET, HEAD and OPTIONS are allowed")]
    MethodNotAllowed,
    #[error("a precondition (If-Match or If-Unmodified-Since) failed")]
    PreconditionFailed,
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable,
    #[error(
        "the bucket rejected the storage's credentials ({0}); an org admin should check the access key and secret"
    )]
    UpstreamCredentialsRejected(String),
    #[error("{0}")]
    AssumeRoleDenied(String),
    /// Entra ID or Google refused the gateway's token request (a wrong secret, a disabled key,
    /// a missing permission); the message says which and never carries the answer's body.
    #[error("{0}")]
    TokenExchangeDenied(String),
    #[error(
        "bucket `{bucket}` does not show that it was shared with organization {org}: an org admin must put an object named .assetgate-org into it holding the organization's external ID (GET /admin/v1/orgs/{org}/external-id)"
    )]
    OwnershipNotProven { bucket: String, org: String },
    #[error("the bucket answered with an error ({code})")]
    UpstreamError { code: String, hint: Option<&'static str> },
    #[error("{}", FORBIDDEN)]
    EndpointNotAllowed,
    /// A storage whose credential is a token of the gateway's own identity names an endpoint
    /// that is not its cloud's: no token is asked for or sent (README, "Azure Blob Storage").
    #[error(
        "this storage's endpoint is not {0}'s own, and the gateway sends tokens of its own identity only there; an org admin must set the provider's endpoint (or none)"
    )]
    TokenNotForEndpoint(&'static str),
    #[error("the credentials service (STS) is unavailable")]
    StsUnavailable,
    #[error("the token service ({0}) is unavailable")]
    TokenServiceUnavailable(String),
    #[error("too many requests for this {scope}; retry after {retry_after} s")]
    RateLimited { retry_after: u64, scope: &'static str },
    #[error("the storage is unavailable: {0}")]
    UpstreamUnavailable(String),
    #[error("the storage did not answer in time")]
    UpstreamTimeout,
    /// `[server].max_upstream_requests` are all in flight: the gateway's own limit.
    #[error("the gateway has as many requests to buckets in flight as it allows; try again")]
    UpstreamCapacity,
    /// A fault of the gateway's own, with its cause for the log (never a secret); the client
    /// is told no more than "internal error".
    #[error("internal error")]
    Internal(String),
}

/// Who failed: the client (what it asked for or sent), the upstream side (the bucket, STS,
/// a token endpoint, or how the storage is set up), or the gateway itself. The access log
/// names it, and `assetgate_errors_total{side}` counts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Upstream,
    Gateway,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Gateway => "gateway",
        }
    }
}

/// The JSON error body (README "Errors").
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorFields<'a> {
    code: &'static str,
    message: String,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_code: Option<&'a str>,
}

impl GatewayError {
    /// The HTTP status of the error response.
    pub fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            InvalidRequest(_) | UrlOutsideStorage(_) => StatusCode::BAD_REQUEST,
            MissingToken | InvalidToken(_) | ExpiredToken => StatusCode::UNAUTHORIZED,
            TokenScope(_)
            | OriginNotAllowed
            | BucketNotAllowed(_)
            | OwnershipNotProven { .. }
            | UpstreamAccessDenied(_) => StatusCode::FORBIDDEN,
            RouteNotFound | UnknownOrg(_) | UnknownStorage(_) | NoSuchKey | NoSuchBucket => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            UpstreamCredentialsRejected(_)
            | AssumeRoleDenied(_)
            | TokenExchangeDenied(_)
            | UpstreamError { .. }
            | TokenNotForEndpoint(_)
            | EndpointNotAllowed => StatusCode::BAD_GATEWAY,
            StsUnavailable | TokenServiceUnavailable(_) | UpstreamUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            UpstreamCapacity => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented error code.
    pub fn code(&self) -> &'static str {
        use GatewayError::*;
        match self {
            InvalidRequest(_) => "invalid_request",
            UrlOutsideStorage(_) => "url_outside_storage",
            RouteNotFound => "not_found",
            MissingToken => "missing_token",
            InvalidToken(_) => "invalid_token",
            ExpiredToken => "expired_token",
            TokenScope(_) => "token_scope",
            OriginNotAllowed => "origin_not_allowed",
            BucketNotAllowed(_) => "bucket_not_allowed",
            OwnershipNotProven { .. } => "ownership_not_proven",
            UpstreamAccessDenied(_) => "upstream_access_denied",
            UnknownOrg(_) => "unknown_org",
            UnknownStorage(_) => "unknown_storage",
            NoSuchKey => "no_such_key",
            NoSuchBucket => "no_such_bucket",
            MethodNotAllowed => "method_not_allowed",
            PreconditionFailed => "precondition_failed",
            RangeNotSatisfiable => "range_not_satisfiable",
            RateLimited { .. } => "rate_limited",
            UpstreamCredentialsRejected(_) => "upstream_credentials_rejected",
            AssumeRoleDenied(_) => "assume_role_denied",
            TokenExchangeDenied(_) => "token_exchange_denied",
            UpstreamError { .. } | TokenNotForEndpoint(_) => "upstream_error",
            EndpointNotAllowed => "endpoint_not_allowed",
            StsUnavailable => "sts_unavailable",
            TokenServiceUnavailable(_) => "token_service_unavailable",
            UpstreamUnavailable(_) => "upstream_unavailable",
            UpstreamTimeout => "upstream_timeout",
            UpstreamCapacity => "upstream_unavailable",
            Internal(_) => "internal_error",
        }
    }

    /// A fault of the gateway's own, with its cause.
    pub fn internal(cause: impl Into<String>) -> GatewayError {
        GatewayError::Internal(cause.into())
    }

    /// Who failed.
    pub fn side(&self) -> Side {
        use GatewayError::*;
        match self {
            InvalidRequest(_)
            | UrlOutsideStorage(_)
            | RouteNotFound
            | MissingToken
            | InvalidToken(_)
            | ExpiredToken
            | TokenScope(_)
            | OriginNotAllowed
            | BucketNotAllowed(_)
            | UnknownOrg(_)
            | UnknownStorage(_)
            | NoSuchKey
            | NoSuchBucket
            | MethodNotAllowed
            | PreconditionFailed
            | RangeNotSatisfiable
            | RateLimited { .. } => Side::Client,
            UpstreamAccessDenied(_)
            | UpstreamCredentialsRejected(_)
            | AssumeRoleDenied(_)
            | TokenExchangeDenied(_)
            | OwnershipNotProven { .. }
            | UpstreamError { .. }
            | EndpointNotAllowed
            | TokenNotForEndpoint(_)
            | StsUnavailable
            | TokenServiceUnavailable(_)
            | UpstreamUnavailable(_)
            | UpstreamTimeout => Side::Upstream,
            UpstreamCapacity | Internal(_) => Side::Gateway,
        }
    }

    /// The S3 error code behind this error, when the bucket sent one.
    pub fn upstream_code(&self) -> Option<&str> {
        use GatewayError::*;
        match self {
            UpstreamAccessDenied(c) | UpstreamCredentialsRejected(c) | UpstreamError { code: c, .. } => Some(c),
            NoSuchKey => Some("NoSuchKey"),
            NoSuchBucket => Some("NoSuchBucket"),
            _ => None,
        }
    }

    /// The message, with an operator hint where one helps.
    pub fn message(&self) -> String {
        match self {
            GatewayError::UpstreamError { hint: Some(hint), .. } => format!("{self}: {hint}"),
            _ => self.to_string(),
        }
    }

    /// Whether a credentials service refused the gateway (as opposed to being unreachable):
    /// a refusal is cached briefly, so a misconfigured storage does not hammer STS or a token
    /// endpoint.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            GatewayError::AssumeRoleDenied(_) | GatewayError::TokenExchangeDenied(_)
        )
    }

    /// The JSON body of this error for the request `request_id`.
    pub fn to_json(&self, request_id: &str) -> Vec<u8> {
        let body = ErrorBody {
            error: ErrorFields {
                code: self.code(),
                message: self.message(),
                request_id,
                upstream_code: self.upstream_code(),
            },
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{\"code\":\"internal_error\"}}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_code_message_request_id_and_upstream_code() {
        let body = GatewayError::NoSuchKey.to_json("req-1");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "no_such_key");
        assert_eq!(v["error"]["requestId"], "req-1");
        assert_eq!(v["error"]["upstreamCode"], "NoSuchKey");
        assert!(v["error"]["message"].as_str().unwrap().contains("does not exist"));
    }

    #[test]
    fn upstream_code_is_left_out_when_there_is_none() {
        let v: serde_json::Value = serde_json::from_slice(&GatewayError::MissingToken.to_json("r")).unwrap();
        assert!(v["error"].get("upstreamCode").is_none());
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        use GatewayError::*;
        let cases: [(GatewayError, u16, &str); 10] = [
            (TokenExchangeDenied("x".into()), 502, "token_exchange_denied"),
            (
                TokenServiceUnavailable("Entra".into()),
                503,
                "token_service_unavailable",
            ),
            (UrlOutsideStorage("x".into()), 400, "url_outside_storage"),
            (ExpiredToken, 401, "expired_token"),
            (BucketNotAllowed("b".into()), 403, "bucket_not_allowed"),
            (UnknownStorage("s".into()), 404, "unknown_storage"),
            (MethodNotAllowed, 405, "method_not_allowed"),
            (
                UpstreamCredentialsRejected("SignatureDoesNotMatch".into()),
                502,
                "upstream_credentials_rejected",
            ),
            (
                UpstreamUnavailable("connection refused".into()),
                503,
                "upstream_unavailable",
            ),
            (UpstreamTimeout, 504, "upstream_timeout"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status().as_u16(), err.code()), (status, code));
        }
    }

    #[test]
    fn every_error_says_who_failed_and_internal_causes_stay_out_of_the_answer() {
        use GatewayError::*;
        assert_eq!(NoSuchKey.side(), Side::Client);
        assert_eq!(ExpiredToken.side(), Side::Client);
        assert_eq!(UpstreamCredentialsRejected("x".into()).side(), Side::Upstream);
        assert_eq!(StsUnavailable.side(), Side::Upstream);
        assert_eq!(UpstreamCapacity.side(), Side::Gateway);
        let internal = GatewayError::internal("x-amz-date cannot be a header value");
        assert_eq!((internal.side(), internal.code()), (Side::Gateway, "internal_error"));
        let body = String::from_utf8(internal.to_json("r")).unwrap();
        assert!(!body.contains("x-amz-date"), "{body}");
        assert_eq!(UpstreamCapacity.code(), "upstream_unavailable");
    }

    #[test]
    fn hints_are_appended_to_the_message() {
        let e = GatewayError::UpstreamError {
            code: "PermanentRedirect".into(),
            hint: Some("check the region"),
        };
        assert_eq!(
            e.message(),
            "the bucket answered with an error (PermanentRedirect): check the region"
        );
    }
}

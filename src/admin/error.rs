//! The one error type of the admin API: every refusal it can answer, with its status, code
//! and message decided here and nowhere else (README, "Admin API").

use http::StatusCode;

use crate::registry::RegistryError;
use crate::storage::Fields;

/// Why an admin request was refused.
#[derive(Debug)]
pub enum AdminError {
    /// 400 `validation_error`: each bad field, named.
    Invalid(Fields),
    /// 400 `invalid_request`: the request itself cannot be read (a malformed `%` escape).
    BadRequest(&'static str),
    /// 401 `unauthorized`.
    Unauthorized(&'static str),
    /// 404 `not_found`.
    NotFound(&'static str),
    /// 405 `method_not_allowed`, with the method and the route's methods (its `Allow`).
    MethodNotAllowed { method: String, allow: &'static str },
    /// 408 `invalid_request`: the body did not arrive in time.
    BodyTimeout,
    /// 413 `validation_error`: the body is too large.
    TooLarge,
    /// 409 `conflict`, 409 `read_only`, 412 `precondition_failed`, 503 `registry_locked` or
    /// `registry_unavailable`: what the registry refused.
    Registry(RegistryError),
    /// 409 `conflict`: the storage changed under every try of a write.
    KeptChanging(&'static str),
    /// 412 `precondition_failed`: `If-Match` names another version.
    Stale,
    /// 503 `no_signing_key`: tokens cannot be minted without `[auth].keys`.
    NoSigningKey,
}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> AdminError {
        AdminError::Registry(e)
    }
}

impl AdminError {
    /// One problem of one field.
    pub fn field(name: &str, problem: impl Into<String>) -> AdminError {
        AdminError::Invalid(Fields::from([(name.to_string(), problem.into())]))
    }

    pub fn status(&self) -> StatusCode {
        use AdminError::*;
        match self {
            Invalid(_) | BadRequest(_) => StatusCode::BAD_REQUEST,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            KeptChanging(_) => StatusCode::CONFLICT,
            Stale => StatusCode::PRECONDITION_FAILED,
            NoSigningKey => StatusCode::SERVICE_UNAVAILABLE,
            Registry(e) => match e {
                RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
                RegistryError::ReadOnly(_) | RegistryError::Conflict(_) => StatusCode::CONFLICT,
                RegistryError::Changed(_) => StatusCode::PRECONDITION_FAILED,
                RegistryError::Locked | RegistryError::Unavailable(_) | RegistryError::Startup(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
        }
    }

    pub fn code(&self) -> &'static str {
        use AdminError::*;
        match self {
            Invalid(_) | TooLarge => "validation_error",
            BadRequest(_) | BodyTimeout => "invalid_request",
            Unauthorized(_) => "unauthorized",
            NotFound(_) => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            KeptChanging(_) => "conflict",
            Stale => "precondition_failed",
            NoSigningKey => "no_signing_key",
            Registry(e) => match e {
                RegistryError::NotFound(_) => "not_found",
                RegistryError::ReadOnly(_) => "read_only",
                RegistryError::Conflict(_) => "conflict",
                RegistryError::Changed(_) => "precondition_failed",
                RegistryError::Locked => "registry_locked",
                RegistryError::Unavailable(_) | RegistryError::Startup(_) => "registry_unavailable",
            },
        }
    }

    /// The message, in words for the platform's developers; never a secret.
    pub fn message(&self) -> String {
        use AdminError::*;
        match self {
            Invalid(fields) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("invalid fields: {}", names.join(", "))
            }
            BadRequest(m) | Unauthorized(m) | NotFound(m) => m.to_string(),
            MethodNotAllowed { method, allow } => format!("{method} is not allowed here (allowed: {allow})"),
            BodyTimeout => "the request body did not arrive in time".into(),
            TooLarge => "the body is too large".into(),
            KeptChanging(what) => format!("the storage kept changing while {what}; try again"),
            Stale => "the storage changed since the ETag given in If-Match; read it again".into(),
            NoSigningKey => "auth.keys is empty".into(),
            Registry(RegistryError::Unavailable(_) | RegistryError::Startup(_)) => {
                "the storage registry cannot be read or written right now; nothing was changed, try again".into()
            }
            Registry(e) => e.to_string(),
        }
    }

    /// The fields at fault, for a validation error.
    pub fn fields(&self) -> Option<&Fields> {
        match self {
            AdminError::Invalid(fields) => Some(fields),
            _ => None,
        }
    }

    /// Logged where the answer is built: the cause of a registry failure, which the answer
    /// does not carry.
    pub fn log(&self) {
        if let AdminError::Registry(e @ (RegistryError::Unavailable(_) | RegistryError::Startup(_))) = self {
            tracing::error!(error = %e, "the storage registry failed; nothing was changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_status_and_code() {
        let cases: [(AdminError, u16, &str); 8] = [
            (AdminError::field("endpoint", "is wrong"), 400, "validation_error"),
            (AdminError::BadRequest("x"), 400, "invalid_request"),
            (AdminError::TooLarge, 413, "validation_error"),
            (
                AdminError::Registry(RegistryError::ReadOnly("storage `a`".into())),
                409,
                "read_only",
            ),
            (
                AdminError::Registry(RegistryError::Changed("a".into())),
                412,
                "precondition_failed",
            ),
            (
                AdminError::Registry(RegistryError::Unavailable("db".into())),
                503,
                "registry_unavailable",
            ),
            (AdminError::Stale, 412, "precondition_failed"),
            (AdminError::KeptChanging("it was deleted"), 409, "conflict"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status().as_u16(), err.code()), (status, code), "{err:?}");
        }
        let hidden = AdminError::Registry(RegistryError::Unavailable("password=hunter2".into()));
        assert!(
            !hidden.message().contains("hunter2"),
            "the cause is logged, not answered"
        );
    }
}

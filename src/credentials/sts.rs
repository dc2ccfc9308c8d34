//! AssumeRole through STS (`aws-sdk-sts` over a ring-based rustls client). The gateway's own
//! identity is `[sts].credentials` when given, otherwise the standard AWS chain: environment,
//! shared config and credentials files, web-identity token file (EKS IRSA), ECS and EC2
//! metadata endpoints.

use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tokio::sync::OnceCell;

use crate::credentials::StsConfig;
use crate::error::GatewayError;

/// AWS's limit on `RoleSessionName`.
const MAX_SESSION_NAME: usize = 64;

/// How long one AssumeRole call may take, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Temporary credentials returned by AssumeRole.
#[derive(Clone)]
pub struct Temporary {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: SystemTime,
}

/// What one AssumeRole call needs.
pub struct RoleRequest<'a> {
    pub role_arn: &'a str,
    pub external_id: &'a str,
    pub session_name: &'a str,
}

/// The STS client, built on first use so that a gateway without delegated storages never
/// looks for AWS credentials.
pub struct Sts {
    config: StsConfig,
    connect_timeout: Duration,
    client: OnceCell<aws_sdk_sts::Client>,
}

impl Sts {
    pub fn new(config: StsConfig, connect_timeout: Duration) -> Sts {
        Sts {
            config,
            connect_timeout,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_sts::Client {
        self.client
            .get_or_init(|| build_client(&self.config, self.connect_timeout))
            .await
    }

    /// Calls AssumeRole once; errors are classified as README "Errors" lists them.
    pub async fn assume_role(&self, role: &RoleRequest<'_>) -> Result<Temporary, GatewayError> {
        let duration = i32::try_from(self.config.session_duration.as_secs()).unwrap_or(3600);
        let result = self
            .client()
            .await
            .assume_role()
            .role_arn(role.role_arn)
            .external_id(role.external_id)
            .role_session_name(role.session_name)
            .duration_seconds(duration)
            .send()
            .await;
        let output = result.map_err(|e| classify(&e, role.role_arn))?;
        let creds = output.credentials().ok_or(GatewayError::StsUnavailable)?;
        let expires_at = SystemTime::try_from(*creds.expiration()).map_err(|_| GatewayError::StsUnavailable)?;
        Ok(Temporary {
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            session_token: creds.session_token().to_string(),
            expires_at,
        })
    }
}

async fn build_client(config: &StsConfig, connect_timeout: Duration) -> aws_sdk_sts::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(connect_timeout)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(2));
    if let Some(keys) = &config.credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().to_string(),
            keys.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "assetgate-config",
        ));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint.to_string());
    }
    aws_sdk_sts::Client::new(&loader.load().await)
}

/// The signing identity of temporary credentials.
pub fn identity(t: Temporary) -> crate::credentials::SigningKeys {
    let token = crate::secret::Secret::new(t.session_token);
    crate::credentials::SigningKeys::from_static(&crate::credentials::StaticKeys {
        access_key_id: t.access_key_id,
        secret_access_key: crate::secret::Secret::new(t.secret_access_key),
        session_token: Some(token),
    })
}

/// STS refused: tell the org admin what to check. STS unreachable: 503.
fn classify(
    err: &SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError, HttpResponse>,
    role_arn: &str,
) -> GatewayError {
    let SdkError::ServiceError(service) = err else {
        tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(err), "AssumeRole failed to reach STS");
        return GatewayError::StsUnavailable;
    };
    // Some STS implementations (moto) wrap errors in `<Errors>`, which the SDK's parser does
    // not read; the code is then taken from the raw body.
    let raw_code = service.raw().body().bytes().and_then(crate::xml::error_code);
    let code = service.err().code().or(raw_code.as_deref()).unwrap_or("Unknown");
    tracing::warn!(code, role_arn, "AssumeRole refused");
    match code {
        "AccessDenied" => GatewayError::AssumeRoleDenied(format!(
            "the gateway may not assume {role_arn}: an org admin should check that the role's trust policy names \
             this gateway's AWS principal and requires the org's external ID, and that the storage has the same \
             external ID (STS said AccessDenied)"
        )),
        "RegionDisabledException" => GatewayError::AssumeRoleDenied(format!(
            "STS is not activated in this region for the account of {role_arn} (RegionDisabledException)"
        )),
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidAccessKeyId" => {
            GatewayError::AssumeRoleDenied(format!(
                "STS rejected the gateway's own AWS identity ({code}): the operator should check [sts].credentials \
                 or the AWS credentials of the host"
            ))
        }
        "MalformedPolicyDocument" | "PackedPolicyTooLarge" | "ValidationError" => {
            GatewayError::AssumeRoleDenied(format!("STS refused the request for {role_arn} ({code})"))
        }
        _ => GatewayError::StsUnavailable,
    }
}

/// `RoleSessionName` for an org's storage: shows up in the customer's CloudTrail, so it
/// says who is reading. Only `[\w+=,.@-]`, at most 64 characters; a long name keeps a hash
/// of the whole so that two storages never share a session name.
pub fn role_session_name(org: &str, storage: &str) -> String {
    let raw = format!("assetgate-{org}-{storage}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= MAX_SESSION_NAME && clean == raw {
        return clean;
    }
    let hash = fnv1a(raw.as_bytes());
    let keep = MAX_SESSION_NAME - 9;
    format!("{}-{hash:08x}", &clean[..clean.len().min(keep)])
}

/// 32-bit FNV-1a: a stable hash (unlike `DefaultHasher`, it never changes between builds).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5, |h: u32, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (2..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    }

    #[test]
    fn short_names_are_readable() {
        assert_eq!(role_session_name("acme", "main"), "assetgate-acme-main");
    }

    #[test]
    fn long_names_are_cut_to_64_with_a_distinguishing_hash() {
        let a = role_session_name(&"o".repeat(100), "storage-a");
        let b = role_session_name(&"o".repeat(100), "storage-b");
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn invalid_characters_are_replaced_and_hashed() {
        let n = role_session_name("org with space", "st/x");
        assert!(valid(&n), "{n}");
        assert_ne!(n, role_session_name("org_with_space", "st_x"));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }
}

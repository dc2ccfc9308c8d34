//! Google access tokens. A service account key is exchanged for a token with the
//! JWT-bearer grant (RFC 7523): an assertion signed RS256 with the key's private key
//! (jsonwebtoken, ring) posted to the key's `token_uri`
//! (<https://developers.google.com/identity/protocols/oauth2/service-account#httprest>).
//! Impersonation: the gateway's own identity (`[gcp].key_json`, else the metadata server)
//! asks the IAM Credentials API for a token of the customer's service account, which has
//! granted it *Service Account Token Creator*
//! (<https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::entra::{exchange, form, oauth_token};
use crate::credentials::GcpConfig;
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::upstream::{Trust, UpstreamClient};

/// What storages may do with a token: read objects.
pub const READ_ONLY: &str = "https://www.googleapis.com/auth/devstorage.read_only";

/// What the gateway's own identity needs to impersonate.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google's token endpoint, the only one an API storage's key may name unless allowed.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The parts of a service account key file the gateway uses.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// PEM (PKCS#8) RSA private key: the secret.
    pub private_key: Secret,
    pub token_uri: String,
    /// The whole key file, kept to be stored (sealed) as it was given.
    pub json: Secret,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceAccountKey({}, ***)", self.client_email)
    }
}

impl ServiceAccountKey {
    /// A key file (`"type": "service_account"`), its private key checked to be a usable RSA
    /// key. Messages never contain the file's values.
    pub fn parse(json: &str) -> Result<ServiceAccountKey, String> {
        let v: Value =
            serde_json::from_str(json).map_err(|_| "is not a service account key file (JSON)".to_string())?;
        if v["type"] != "service_account" {
            return Err("is not a service account key file (\"type\": \"service_account\")".into());
        }
        let text = |name: &str| {
            v[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("has no {name}"))
        };
        let private_key = text("private_key")?;
        EncodingKey::from_rsa_pem(private_key.as_bytes())
            .map_err(|_| "has a private_key that is not an RSA key in PEM".to_string())?;
        Ok(ServiceAccountKey {
            client_email: text("client_email")?,
            private_key_id: v["private_key_id"].as_str().map(str::to_string),
            private_key: Secret::new(private_key),
            token_uri: v["token_uri"].as_str().unwrap_or(GOOGLE_TOKEN_URI).to_string(),
            json: Secret::new(json),
        })
    }

    /// The signed JWT-bearer assertion for `scope`, valid for an hour from `now`.
    pub fn assertion(&self, scope: &str, now: SystemTime) -> Result<String, GatewayError> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + 3600,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let key = EncodingKey::from_rsa_pem(self.private_key.expose().as_bytes())
            .map_err(|e| GatewayError::internal(format!("the service account key cannot sign: {e}")))?;
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| GatewayError::internal(format!("the JWT-bearer assertion cannot be signed: {e}")))
    }
}

pub struct Google {
    config: GcpConfig,
    client: UpstreamClient,
}

impl Google {
    pub fn new(config: GcpConfig, client: UpstreamClient) -> Google {
        Google { config, client }
    }

    /// A read-only token for a storage's key; its `token_uri` is reached with `trust`.
    pub async fn exchange(&self, key: &ServiceAccountKey, trust: Trust) -> Result<(Secret, SystemTime), GatewayError> {
        self.grant(key, READ_ONLY, trust).await
    }

    async fn grant(
        &self,
        key: &ServiceAccountKey,
        scope: &str,
        trust: Trust,
    ) -> Result<(Secret, SystemTime), GatewayError> {
        let assertion = key.assertion(scope, SystemTime::now())?;
        let body = form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ]);
        let request = Request::builder()
            .method(Method::POST)
            .uri(key.token_uri.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| GatewayError::TokenExchangeDenied("the key's token_uri is not a URL".into()))?;
        let (status, answer) = exchange(&self.client, request, trust, "Google").await?;
        if status.is_success() {
            return oauth_token(&answer, "Google");
        }
        let code = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        tracing::warn!(account = %key.client_email, code, "Google refused a service account key");
        if status.is_server_error() {
            return Err(GatewayError::TokenServiceUnavailable("Google".into()));
        }
        Err(GatewayError::TokenExchangeDenied(format!(
            "Google refused the key of service account {} ({code}): the key may have been deleted or disabled; \
             an org admin should create a new key",
            key.client_email
        )))
    }

    /// A token of the gateway's own Google identity: its key (`[gcp].key_json`), else the
    /// metadata server of the machine it runs on.
    pub async fn own_token(&self) -> Result<(Secret, SystemTime), GatewayError> {
        if let Some(key) = &self.config.key {
            return self.grant(key, CLOUD_PLATFORM, Trust::Operator).await;
        }
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            self.config.metadata
        );
        let request = Request::get(url)
            .header("metadata-flavor", "Google")
            .body(Full::new(Bytes::new()))
            .map_err(|e| GatewayError::internal(format!("the Google token request cannot be built: {e}")))?;
        let (status, answer) = exchange(&self.client, request, Trust::Operator, "the metadata server").await?;
        if !status.is_success() {
            return Err(GatewayError::TokenServiceUnavailable("the metadata server".into()));
        }
        oauth_token(&answer, "the metadata server")
    }

    /// A read-only token of `service_account`, asked for with the gateway's `own` token.
    pub async fn impersonate(&self, own: &Secret, service_account: &str) -> Result<(Secret, SystemTime), GatewayError> {
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken",
            self.config.iam_endpoint
        );
        let body = json!({ "scope": [READ_ONLY], "lifetime": "3600s" }).to_string();
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {}", own.expose()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| GatewayError::internal(format!("the impersonation request cannot be built: {e}")))?;
        let (status, answer) = exchange(&self.client, request, Trust::Operator, "Google IAM").await?;
        if status.is_success() {
            return impersonated_token(&answer);
        }
        tracing::warn!(
            service_account,
            status = status.as_u16(),
            "Google refused to impersonate"
        );
        if status.is_server_error() {
            return Err(GatewayError::TokenServiceUnavailable("Google IAM".into()));
        }
        Err(GatewayError::TokenExchangeDenied(format!(
            "Google refused the gateway a token of {service_account} (HTTP {}): an org admin should grant the \
             gateway's service account the Service Account Token Creator role on it",
            status.as_u16()
        )))
    }
}

/// `{"accessToken", "expireTime"}` of generateAccessToken.
pub fn impersonated_token(answer: &[u8]) -> Result<(Secret, SystemTime), GatewayError> {
    let unavailable = || GatewayError::TokenServiceUnavailable("Google IAM".into());
    let v: Value = serde_json::from_slice(answer).map_err(|_| unavailable())?;
    let token = v["accessToken"].as_str().ok_or_else(unavailable)?;
    let expires = v["expireTime"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next()?).ok())
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
    Ok((Secret::new(token), super::expiry_at(expires)))
}

/// The key of a storage, ready to be a credential source (cache key: org, storage, account).
pub fn source(org: &str, storage: &str, key: &Arc<ServiceAccountKey>, trust: Trust) -> super::CredentialSource {
    super::CredentialSource::GoogleKey {
        cache_key: format!("google\n{org}\n{storage}\n{}", key.client_email),
        key: key.clone(),
        trust,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit RSA key (PKCS#8 PEM), generated for these tests only.
    pub(crate) const TEST_KEY: &str = include_str!("google_test_key.pem");

    fn key_file(extra: &str) -> String {
        format!(
            r#"{{"type":"service_account","project_id":"p","private_key_id":"kid-1","private_key":{},"client_email":"reader@p.iam.gserviceaccount.com","token_uri":"https://oauth2.googleapis.com/token"{extra}}}"#,
            serde_json::to_string(TEST_KEY).unwrap()
        )
    }

    #[test]
    fn a_key_file_parses_and_signs_an_rs256_assertion_for_its_token_uri() {
        let key = ServiceAccountKey::parse(&key_file("")).unwrap();
        assert_eq!(key.client_email, "reader@p.iam.gserviceaccount.com");
        let jwt = key
            .assertion(READ_ONLY, UNIX_EPOCH + Duration::from_secs(1_000))
            .unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::RS256, Some("kid-1")));
        let payload = jwt.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], GOOGLE_TOKEN_URI);
        assert_eq!(
            (claims["iat"].as_u64(), claims["exp"].as_u64()),
            (Some(1000), Some(4600))
        );
        assert_eq!(claims["scope"], READ_ONLY);
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn broken_key_files_are_refused_without_echoing_them() {
        for bad in [
            "not json".to_string(),
            r#"{"type":"authorized_user"}"#.to_string(),
            key_file("").replace("BEGIN PRIVATE KEY", "BEGIN NOTHING"),
            r#"{"type":"service_account","client_email":"a@b","private_key":"hunter2"}"#.to_string(),
        ] {
            let e = ServiceAccountKey::parse(&bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn impersonated_tokens_carry_their_expiry_up_to_a_day() {
        let hour = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600)).to_string();
        let answer = format!(
            r#"{{"accessToken":"ya29.x","expireTime":"{}.123456Z"}}"#,
            hour.trim_end_matches('Z')
        );
        let (t, at) = impersonated_token(answer.as_bytes()).unwrap();
        assert_eq!(t.expose(), "ya29.x");
        assert_eq!(humantime::format_rfc3339_seconds(at).to_string(), hour);
        let (_, at) = impersonated_token(br#"{"accessToken":"ya29.y","expireTime":"9999-12-31T23:59:59Z"}"#).unwrap();
        assert!(at <= SystemTime::now() + crate::credentials::MAX_TOKEN_LIFETIME);
    }
}

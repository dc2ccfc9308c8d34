//! Tokens of the gateway's own Entra (Azure AD) app for a customer's tenant: the OAuth 2.0
//! client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token` with the scope
//! `https://storage.azure.com/.default`
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
//! The app is multi-tenant; each customer's admin consents to it in their tenant and gives
//! it *Storage Blob Data Reader* on their storage account.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

use crate::credentials::AzureConfig;
use crate::error::GatewayError;
use crate::secret::Secret;
use crate::upstream::{Trust, UpstreamClient};

const SCOPE: &str = "https://storage.azure.com/.default";

/// Largest token answer read.
const MAX_ANSWER: usize = 64 * 1024;

pub struct Entra {
    config: Option<AzureConfig>,
    client: UpstreamClient,
}

impl Entra {
    pub fn new(config: Option<AzureConfig>, client: UpstreamClient) -> Entra {
        Entra { config, client }
    }

    pub fn configured(&self) -> bool {
        self.config.is_some()
    }

    /// A token for `tenant`, and when it expires.
    pub async fn token(&self, tenant: &str) -> Result<(Secret, SystemTime), GatewayError> {
        let Some(config) = &self.config else {
            return Err(GatewayError::TokenExchangeDenied(
                "the operator has not set [azure] (the gateway's Entra app): entra_delegation storages cannot work"
                    .into(),
            ));
        };
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &config.client_id),
            ("client_secret", config.client_secret.expose()),
            ("scope", SCOPE),
        ]);
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{tenant}/oauth2/v2.0/token", config.authority))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| GatewayError::internal(format!("the Entra token request cannot be built: {e}")))?;
        let (status, answer) = exchange(&self.client, request, Trust::Operator, "Entra").await?;
        if status.is_success() {
            return oauth_token(&answer, "Entra");
        }
        let code = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        tracing::warn!(tenant, code, "Entra refused the gateway's token request");
        if status.is_server_error() {
            return Err(GatewayError::TokenServiceUnavailable("Entra".into()));
        }
        Err(GatewayError::TokenExchangeDenied(format!(
            "Entra refused the gateway's token for tenant {tenant} ({code}): the tenant's admin must consent to the \
             gateway's app, and the operator check [azure].client_id and client_secret"
        )))
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends a token request; the status and (at most 64 KiB of) body, or 503 when the issuer
/// cannot be reached.
pub(crate) async fn exchange(
    client: &UpstreamClient,
    request: Request<Full<Bytes>>,
    trust: Trust,
    issuer: &str,
) -> Result<(StatusCode, Bytes), GatewayError> {
    let unavailable = || GatewayError::TokenServiceUnavailable(issuer.to_string());
    let response = match client.send(request, trust).await {
        Ok(r) => r,
        Err(GatewayError::EndpointNotAllowed) => return Err(GatewayError::EndpointNotAllowed),
        Err(e) => {
            tracing::warn!(issuer, error = e.code(), "the token endpoint cannot be reached");
            return Err(unavailable());
        }
    };
    let status = response.status();
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        Limited::new(response.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .map_err(|_| unavailable())?
    .map_err(|_| unavailable())?
    .to_bytes();
    Ok((status, body))
}

/// `{"access_token", "expires_in"}` of an OAuth 2.0 token answer (RFC 6749 §5.1).
pub fn oauth_token(answer: &[u8], issuer: &str) -> Result<(Secret, SystemTime), GatewayError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(answer).map_err(|_| {
        tracing::warn!(issuer, "the token endpoint answered something other than a token");
        GatewayError::TokenServiceUnavailable(issuer.to_string())
    })?;
    // Entra has sent `expires_in` as a string at times; an hour when it is missing.
    let seconds = match a.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok((Secret::new(a.access_token), super::expiry_in(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_encode_every_reserved_byte() {
        assert_eq!(
            form(&[("scope", SCOPE), ("client_secret", "a+b/c=&d e")]),
            "scope=https%3A%2F%2Fstorage%2Eazure%2Ecom%2F%2Edefault&client%5Fsecret=a%2Bb%2Fc%3D%26d%20e"
        );
    }

    #[test]
    fn token_answers_with_numeric_or_string_lifetimes() {
        let (token, expires) =
            oauth_token(br#"{"access_token":"t1","expires_in":3599,"token_type":"Bearer"}"#, "x").unwrap();
        assert_eq!(token.expose(), "t1");
        assert!(expires > SystemTime::now() + std::time::Duration::from_secs(3500));
        assert!(oauth_token(br#"{"access_token":"t2","expires_in":"60"}"#, "x").is_ok());
        // A lifetime past what a clock can hold (found by the fuzz target `answers`) is a day.
        let day = SystemTime::now() + super::super::MAX_TOKEN_LIFETIME;
        for forever in ["18446744073709551615", "\"18446744073709551615\"", "315360000"] {
            let answer = format!(r#"{{"access_token":"t3","expires_in":{forever}}}"#);
            let (_, expires) = oauth_token(answer.as_bytes(), "x").unwrap();
            assert!(expires <= day + std::time::Duration::from_secs(5), "{forever}");
        }
        assert_eq!(
            oauth_token(b"<html>", "x").unwrap_err().code(),
            "token_service_unavailable"
        );
    }
}

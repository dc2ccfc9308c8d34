//! Token endpoint stand-ins, where no real implementation runs on loopback: Entra ID's
//! client-credentials grant, Google's JWT-bearer grant (RFC 7523; the assertion's RS256
//! signature is verified with the service account's public key) and IAM Credentials'
//! generateAccessToken. Each counts its requests, can be slowed to show that concurrent
//! misses share one request, and refuses or fails on demand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::loopback::serve_http;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

/// The Entra app the gateway is configured with.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "entra-client-secret-for-tests";
/// The tenant that consented to the app.
pub const TENANT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
/// The service account of the test key (src/credentials/google_test_key.pem).
pub const KEY_EMAIL: &str = "reader@acme-proj.iam.gserviceaccount.com";
/// The gateway's own Google identity, and the account it may impersonate.
pub const GATEWAY_EMAIL: &str = "assetgate@gateway-proj.iam.gserviceaccount.com";
pub const IMPERSONATED: &str = "customer-reader@acme-proj.iam.gserviceaccount.com";
/// The scope a read-only GCS token is asked for.
pub const READ_ONLY: &str = "https://www.googleapis.com/auth/devstorage.read_only";

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Issue,
    /// 400/401/403 with an OAuth error, as for a wrong secret or a deleted key.
    Deny,
    /// 503.
    Down,
}

struct State {
    mode: Mode,
    delay: Duration,
    lifetime: Duration,
    /// Requests per path kind: `entra`, `google`, `iam`.
    calls: HashMap<&'static str, usize>,
    /// Google access tokens issued, with their scope.
    google_tokens: HashMap<String, String>,
}

#[derive(Clone)]
pub struct OAuth {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl OAuth {
    pub async fn start() -> OAuth {
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Issue,
            delay: Duration::ZERO,
            lifetime: Duration::from_secs(3600),
            calls: HashMap::new(),
            google_tokens: HashMap::new(),
        }));
        let shared = state.clone();
        let addr = serve_http(move |req| {
            let state = shared.clone();
            async move { answer(&state, req).await }
        })
        .await;
        OAuth { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token URI a key file names to reach this stand-in.
    pub fn google_token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    pub fn calls(&self, kind: &str) -> usize {
        self.state.lock().unwrap().calls.get(kind).copied().unwrap_or(0)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Whether `token` is a read-only Google token this stand-in issued.
    pub fn is_read_token(&self, token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .google_tokens
            .get(token)
            .is_some_and(|s| s == READ_ONLY)
    }

    /// Makes every Google token issued so far invalid, as if it had expired.
    pub fn revoke_all(&self) {
        self.state.lock().unwrap().google_tokens.clear();
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url_pairs(std::str::from_utf8(body).unwrap_or(""))
}

fn url_pairs(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        assetgate::hex::encode(&assetgate::hex::random_bytes::<16>())
    )
}

async fn answer(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let kind = if path.ends_with("/oauth2/v2.0/token") {
        "entra"
    } else if path == "/token" {
        "google"
    } else if path.ends_with(":generateAccessToken") {
        "iam"
    } else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "not_found"}));
    };
    let (mode, delay, lifetime) = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(kind).or_default() += 1;
        (s.mode, s.delay, s.lifetime)
    };
    tokio::time::sleep(delay).await;
    if mode == Mode::Down {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily_unavailable"}),
        );
    }
    if parts.method != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "invalid_request"}));
    }
    match kind {
        "entra" => entra(&path, &form(&body), mode, lifetime),
        "google" => google(state, &form(&body), mode, lifetime),
        _ => iam(state, &parts.headers, &path, &body, mode, lifetime),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`, client credentials: a JWT Azurite's `--oauth basic`
/// accepts (issuer, audience, lifetime).
fn entra(path: &str, f: &HashMap<String, String>, mode: Mode, lifetime: Duration) -> Response<Full<Bytes>> {
    let tenant = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let right = f.get("grant_type").map(String::as_str) == Some("client_credentials")
        && f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && f.get("scope").map(String::as_str) == Some("https://storage.azure.com/.default");
    if mode == Mode::Deny || !right {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    if tenant != TENANT {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
        );
    }
    let iat = now();
    let claims = json!({
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "aud": "https://storage.azure.com",
        "tid": tenant,
        "appid": CLIENT_ID,
        "iat": iat, "nbf": iat - 60, "exp": iat + lifetime.as_secs(),
    });
    let token = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"entra-stand-in"),
    )
    .unwrap();
    reply(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "access_token": token}),
    )
}

fn public_key() -> DecodingKey {
    DecodingKey::from_rsa_pem(include_bytes!("google_test_key.pub.pem")).unwrap()
}

/// `POST /token`, JWT-bearer: the assertion must be signed by the test key, name this
/// endpoint as audience and ask for a scope.
fn google(state: &Mutex<State>, f: &HashMap<String, String>, mode: Mode, lifetime: Duration) -> Response<Full<Bytes>> {
    let deny = |why: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": why}),
        )
    };
    if f.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return deny("unsupported grant");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    let Ok(data) = jsonwebtoken::decode::<Value>(
        f.get("assertion").map_or("", String::as_str),
        &public_key(),
        &validation,
    ) else {
        return deny("Invalid JWT Signature.");
    };
    let claims = data.claims;
    let aud_ok = claims["aud"].as_str().is_some_and(|a| a.ends_with("/token"));
    let iat = claims["iat"].as_u64().unwrap_or(0);
    if !aud_ok || claims["exp"].as_u64().unwrap_or(0) > iat + 3600 || iat > now() + 60 {
        return deny("Invalid JWT: bad audience or lifetime.");
    }
    let email = claims["iss"].as_str().unwrap_or("");
    if mode == Mode::Deny {
        return deny("Invalid grant: account not found");
    }
    let scope = claims["scope"].as_str().unwrap_or("").to_string();
    if email != KEY_EMAIL && email != GATEWAY_EMAIL {
        return deny("Invalid JWT: unknown account");
    }
    let token = random_token("ya29.stand-in.");
    state.lock().unwrap().google_tokens.insert(token.clone(), scope);
    reply(
        StatusCode::OK,
        json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
    )
}

/// `POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken`, asked with a token of the
/// gateway's own identity; only IMPERSONATED granted it Token Creator.
fn iam(
    state: &Mutex<State>,
    headers: &http::HeaderMap,
    path: &str,
    body: &[u8],
    mode: Mode,
    lifetime: Duration,
) -> Response<Full<Bytes>> {
    let caller = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let known = state.lock().unwrap().google_tokens.contains_key(caller);
    if !known {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}),
        );
    }
    let account = path
        .rsplit('/')
        .next()
        .and_then(|s| s.strip_suffix(":generateAccessToken"))
        .unwrap_or("");
    let asked: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let scope = asked["scope"][0].as_str().unwrap_or("").to_string();
    if mode == Mode::Deny || account != IMPERSONATED {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "iam.serviceAccounts.getAccessToken denied"}}),
        );
    }
    let token = random_token("ya29.impersonated.");
    state.lock().unwrap().google_tokens.insert(token.clone(), scope);
    let expire = humantime::format_rfc3339_seconds(SystemTime::now() + lifetime).to_string();
    reply(StatusCode::OK, json!({"accessToken": token, "expireTime": expire}))
}

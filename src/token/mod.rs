//! Labeler tokens (README "Labeler tokens"): JWTs chosen by `kid` (HS256 secrets, public keys of the file,
//! and the platform's key set, `jwks`), taken from `Authorization: Bearer` or the `token`
//! query parameter, checked for expiry, lifetime and scope.

pub mod jwks;
pub mod keys;
mod recent;
pub mod settings;

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;
use jwks::Jwks;
use keys::VerifyKey;
pub use settings::{AuthConfig, PublicKey, TokenKey};

/// The default clock leeway for `exp`, `nbf` and `iat` (`[auth].leeway`).
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Longest `sub` accepted, in bytes: it is written to every audit line and keys the
/// per-labeler limits.
pub const MAX_SUB: usize = 256;

/// The claims of a labeler token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Organization the token is for; must equal the route's org.
    pub org: String,
    /// Storage the token is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sto: Option<String>,
    /// `{bucket}/{key}` prefix the token is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfx: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Who the labeler is (the platform's user id): audit lines and per-labeler limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// Tokens remembered as verified at most (a few MiB at most).
const VERIFIED_MAX: u64 = 10_000;

/// How long a verified token is remembered at most (its expiry is checked on every use).
const VERIFIED_FOR: Duration = Duration::from_secs(300);

/// A token that verified: its claims, and the key that verified it.
#[derive(Clone)]
struct Verified {
    claims: Arc<Claims>,
    kid: Arc<str>,
    key: Arc<VerifyKey>,
}

/// Verifies tokens against the configured keys.
pub struct TokenVerifier {
    /// The file's keys by `kid`, each with its one algorithm.
    keys: HashMap<String, Arc<VerifyKey>>,
    /// Tokens verified lately, by their whole text: an editor sends one token with hundreds
    /// of requests, and the signature check is most of a request's token work. A hit
    /// counts only while the key that verified it is still the key of its `kid` (a key
    /// rotated out or refetched verifies anew), and its expiry is checked every time.
    verified: moka::sync::Cache<String, Verified>,
    /// This verifier among every one the process made (each configuration has its own):
    /// what each serving thread remembers in front of `verified` is its own.
    id: u64,
    /// Longest accepted `exp - iat`.
    max_ttl: u64,
    /// Clock leeway, seconds.
    leeway: u64,
    /// Whether a token must name its labeler (`sub`).
    require_sub: bool,
    /// Whether requests without a token are served (local experiments only).
    pub allow_anonymous: bool,
}

impl TokenVerifier {
    pub fn new(auth: &AuthConfig) -> TokenVerifier {
        let secrets = auth
            .keys
            .iter()
            .map(|k| (k.kid.clone(), Arc::new(keys::secret(k.secret.expose().as_bytes()))));
        let public = auth
            .public_keys
            .iter()
            .map(|k| (k.kid.clone(), Arc::new(k.key.clone())));
        TokenVerifier {
            keys: secrets.chain(public).collect(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_MAX)
                .time_to_live(VERIFIED_FOR)
                .build(),
            id: {
                static VERIFIERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                VERIFIERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            max_ttl: auth.max_ttl.as_secs(),
            leeway: auth.leeway.as_secs(),
            require_sub: auth.require_sub,
            allow_anonymous: auth.allow_anonymous,
        }
    }

    /// Checks signature, `kid`, expiry, `nbf` and lifetime with the file's keys, then the
    /// key set's (fetching it again for an unknown `kid`, see [`Jwks::key`]).
    pub async fn verify(&self, token: &str, jwks: Option<&Jwks>) -> Result<Arc<Claims>, GatewayError> {
        if let Some(claims) = self.remembered(token, jwks)? {
            return Ok(claims);
        }
        let kid = kid_of(token)?;
        let key = match (self.keys.get(&kid), jwks) {
            (Some(key), _) => key.clone(),
            (None, Some(set)) => set.key(&kid).await.ok_or_else(|| invalid("unknown `kid`"))?,
            (None, None) => return Err(invalid("unknown `kid`")),
        };
        self.verify_and_remember(token, kid, key)
    }

    /// [`TokenVerifier::verify`] with the file's keys only.
    pub fn verify_local(&self, token: &str) -> Result<Arc<Claims>, GatewayError> {
        if let Some(claims) = self.remembered(token, None)? {
            return Ok(claims);
        }
        let kid = kid_of(token)?;
        let key = self.keys.get(&kid).ok_or_else(|| invalid("unknown `kid`"))?.clone();
        self.verify_and_remember(token, kid, key)
    }

    /// The claims of `token` if it verified lately with a key still current; expired once
    /// its `exp` (with the leeway) has passed.
    fn remembered(&self, token: &str, jwks: Option<&Jwks>) -> Result<Option<Arc<Claims>>, GatewayError> {
        let hit = match recent::find(self.id, token) {
            Some(hit) => hit,
            None => {
                let Some(hit) = self.verified.get(token) else {
                    return Ok(None);
                };
                recent::keep(self.id, token, &hit);
                hit
            }
        };
        let current = self
            .keys
            .get(&*hit.kid)
            .cloned()
            .or_else(|| jwks.and_then(|set| set.current(&hit.kid)));
        if !current.is_some_and(|key| Arc::ptr_eq(&key, &hit.key)) {
            self.forget(token);
            return Ok(None);
        }
        if hit.claims.exp + self.leeway < now_secs() {
            self.forget(token);
            return Err(GatewayError::ExpiredToken);
        }
        Ok(Some(hit.claims))
    }

    fn forget(&self, token: &str) {
        recent::forget(self.id, token);
        self.verified.invalidate(token);
    }

    fn verify_and_remember(&self, token: &str, kid: String, key: Arc<VerifyKey>) -> Result<Arc<Claims>, GatewayError> {
        let claims = verify_with(token, &key, self.max_ttl, self.leeway)?;
        check_sub(&claims, self.require_sub)?;
        let claims = Arc::new(claims);
        let remembered = Verified {
            claims: claims.clone(),
            kid: kid.into(),
            key,
        };
        recent::keep(self.id, token, &remembered);
        self.verified.insert(token.to_string(), remembered);
        Ok(claims)
    }
}

/// The `kid` of a token's header; refused when the header is no JOSE header, has no `kid`,
/// or lists `crit` extensions.
fn kid_of(token: &str) -> Result<String, GatewayError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("it is not a JWT"))?;
    if lists_critical_extensions(token) {
        return Err(invalid(
            "its header lists `crit` extensions, which the gateway does not understand",
        ));
    }
    header.kid.ok_or_else(|| invalid("the header has no `kid`"))
}

/// Verifies `token` with `key`, whose algorithm is the only one accepted.
fn verify_with(token: &str, key: &VerifyKey, max_ttl: u64, leeway: u64) -> Result<Claims, GatewayError> {
    let mut validation = Validation::new(key.alg);
    validation.leeway = leeway;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => GatewayError::ExpiredToken,
        ErrorKind::ImmatureSignature => invalid("it is not valid yet (`nbf`)"),
        ErrorKind::InvalidSignature => invalid("bad signature"),
        ErrorKind::InvalidAlgorithm => invalid("its `alg` is not the algorithm of its key"),
        ErrorKind::MissingRequiredClaim(_) => invalid("`exp` is required"),
        _ => invalid("malformed claims"),
    })?;
    check_lifetime(&data.claims, now_secs(), max_ttl, leeway)?;
    Ok(data.claims)
}

/// Why a token cannot be minted with lifetime `ttl` (the admin API, the CLI): it must be
/// longer than zero and at most `[auth].max_ttl`, which verification enforces too.
pub fn ttl_problem(ttl: Duration, max_ttl: Duration) -> Option<String> {
    (ttl.is_zero() || ttl > max_ttl).then(|| {
        format!(
            "must be longer than zero and at most {} ([auth].max_ttl)",
            humantime::format_duration(max_ttl)
        )
    })
}

/// Why a labeler id cannot be a token's `sub` (for minting: the admin API, the CLI).
pub fn sub_problem(sub: Option<&str>, required: bool) -> Option<&'static str> {
    match sub {
        Some(s) if s.len() > MAX_SUB => Some("must be at most 256 bytes"),
        Some("") => Some("must not be empty"),
        None if required => Some("is required: this gateway refuses tokens without one ([auth].require_sub)"),
        _ => None,
    }
}

/// `sub` is at most [`MAX_SUB`] bytes, and present when the gateway requires it.
fn check_sub(claims: &Claims, required: bool) -> Result<(), GatewayError> {
    match &claims.sub {
        Some(sub) if sub.len() > MAX_SUB => Err(invalid("its `sub` is longer than 256 bytes")),
        None if required => Err(invalid(
            "it has no `sub`, which this gateway requires ([auth].require_sub)",
        )),
        _ => Ok(()),
    }
}

/// Whether the JOSE header has a `crit` member. RFC 7515 §4.1.11: a recipient that does not
/// understand every extension it lists must reject the token; this gateway understands none.
/// (jsonwebtoken ignores header members it does not know, `crit` among them.)
fn lists_critical_extensions(token: &str) -> bool {
    use base64::Engine as _;
    let encoded = token.split('.').next().unwrap_or("");
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|header| header.get("crit").is_some())
}

fn invalid(why: &str) -> GatewayError {
    GatewayError::InvalidToken(why.to_string())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `exp - iat` (or `exp - now` without `iat`) may not exceed `max_ttl`; `iat` may not lie in
/// the future. A long-lived token is refused even when its signature is good.
pub fn check_lifetime(claims: &Claims, now: u64, max_ttl: u64, leeway: u64) -> Result<(), GatewayError> {
    let issued = match claims.iat {
        Some(iat) if iat > now + leeway => return Err(invalid("`iat` is in the future")),
        Some(iat) => iat,
        None => now,
    };
    if claims.exp.saturating_sub(issued) > max_ttl + leeway {
        return Err(invalid(
            "its lifetime is longer than the gateway allows (`[auth].max_ttl`)",
        ));
    }
    Ok(())
}

/// Whether the claims cover this object: org, then storage, then `{bucket}/{key}` prefix.
pub fn check_scope(claims: &Claims, org: &str, storage: &str, bucket: &str, key: &str) -> Result<(), GatewayError> {
    check_storage_scope(claims, org, storage)?;
    check_object_scope(claims, bucket, key)
}

/// Whether the claims cover this org, then this storage (checked before the request learns
/// whether either exists).
pub fn check_storage_scope(claims: &Claims, org: &str, storage: &str) -> Result<(), GatewayError> {
    if claims.org != org {
        return Err(GatewayError::TokenScope("organization"));
    }
    if claims.sto.as_deref().is_some_and(|s| s != storage) {
        return Err(GatewayError::TokenScope("storage"));
    }
    Ok(())
}

/// Whether the claims' prefix covers `{bucket}/{key}`.
pub fn check_object_scope(claims: &Claims, bucket: &str, key: &str) -> Result<(), GatewayError> {
    if let Some(prefix) = &claims.pfx {
        let object = format!("{bucket}/{key}");
        if !object.starts_with(prefix.as_str()) {
            return Err(GatewayError::TokenScope("object prefix"));
        }
        // `team1/../other` starts with `team1/`, but a server or proxy that resolves dot
        // segments (RFC 3986 §5.2.4) would read `other`. Backslashes count as separators
        // too, as some servers treat them.
        if key.split(['/', '\\']).any(|segment| segment == "." || segment == "..") {
            return Err(GatewayError::TokenScope("key with `.` or `..` segments"));
        }
    }
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive,
/// RFC 9110 §11.1); `None` for any other scheme or shape.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The token of a request: the bearer header first, else the `token` query parameter.
pub fn extract<'r>(headers: &'r HeaderMap, query: Option<&'r str>) -> Result<Option<Cow<'r, str>>, GatewayError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| invalid("the Authorization header is malformed"))?;
        let token = bearer(value).ok_or_else(|| invalid("use `Authorization: Bearer <token>`"))?;
        return Ok(Some(Cow::Borrowed(token)));
    }
    Ok(crate::route::query_param(query, "token").filter(|t| !t.is_empty()))
}

/// The claims of a token for `org` (and labeler `sub`) issued now, valid for `ttl`.
pub fn claims(org: &str, storage: Option<&str>, prefix: Option<&str>, sub: Option<&str>, ttl: Duration) -> Claims {
    let now = now_secs();
    Claims {
        org: org.to_string(),
        sto: storage.map(str::to_string),
        pfx: prefix.map(str::to_string),
        exp: now + ttl.as_secs(),
        iat: Some(now),
        nbf: None,
        sub: sub.map(str::to_string),
    }
}

/// Signs a token with `key` (for the demo, tests and benchmarks).
pub fn mint(key: &TokenKey, org: &str, storage: Option<&str>, prefix: Option<&str>, ttl: Duration) -> String {
    mint_claims(key, &claims(org, storage, prefix, None, ttl))
}

/// Signs `claims` (`assetgate token`, the admin API, and tests' expired and scoped tokens).
pub fn mint_claims(key: &TokenKey, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(key.secret.expose().as_bytes()),
    )
    .expect("HS256 signing of serialisable claims cannot fail")
}

#[cfg(test)]
mod tests;

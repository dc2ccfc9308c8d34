//! What the configuration file says about labeler tokens (`[auth]`), parsed once by
//! `crate::config` into these types.

use std::time::Duration;

use crate::secret::Secret;

/// Labeler token verification and minting.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secrets for labeler tokens, chosen by the token's `kid`; the first signs the
    /// tokens the gateway mints.
    pub keys: Vec<TokenKey>,
    /// Public keys (EdDSA, ES256, RS256) of the platform, chosen by `kid` as well.
    pub public_keys: Vec<PublicKey>,
    /// The platform's JSON Web Key Set, and how often it is fetched again.
    pub jwks_url: Option<http::Uri>,
    pub jwks_refresh: Duration,
    /// Longest lifetime a token may claim (`exp - iat`).
    pub max_ttl: Duration,
    /// Clock leeway for `exp`, `nbf` and `iat`: a token is refused once `exp + leeway` has
    /// passed.
    pub leeway: Duration,
    /// Refuse tokens without a `sub` (every request then names its labeler).
    pub require_sub: bool,
    /// Accept requests without a token (local experiments only).
    pub allow_anonymous: bool,
}

/// A public key of the platform (`[auth].keys` with `public_key`), by `kid`.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub key: super::keys::VerifyKey,
}

/// An HS256 secret (`[auth].keys` with `secret`), by `kid`.
#[derive(Debug, Clone)]
pub struct TokenKey {
    pub kid: String,
    pub secret: Secret,
}

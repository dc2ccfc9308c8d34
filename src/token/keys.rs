//! The keys labeler tokens are verified with, each bound to one algorithm: HS256 secrets,
//! Ed25519 (`EdDSA`), P-256 (`ES256`) and RSA (`RS256`) public keys in PEM, and the same from
//! a JSON Web Key Set (RFC 7517). A token's `alg` must be its key's: a public key never
//! verifies an HS256 token (the classic confusion, where the PEM text becomes an HMAC
//! secret), and `none` does not exist here.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A verification key and the only algorithm it verifies.
#[derive(Clone)]
pub struct VerifyKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyKey({:?})", self.alg)
    }
}

/// The algorithms a configured public key may have.
pub fn public_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

/// An HS256 secret.
pub fn secret(secret: &[u8]) -> VerifyKey {
    VerifyKey {
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(secret),
    }
}

/// A public key of `alg` in PEM (SubjectPublicKeyInfo; RSA also PKCS#1). The message never
/// repeats the key.
pub fn from_pem(alg: Algorithm, pem: &str) -> Result<VerifyKey, String> {
    if pem.contains("PRIVATE KEY") {
        return Err("holds a private key; give the public key (openssl pkey -pubout)".into());
    }
    let bytes = pem.trim().as_bytes();
    let key = match alg {
        Algorithm::EdDSA => DecodingKey::from_ed_pem(bytes).map_err(|_| "is not an Ed25519 public key in PEM"),
        Algorithm::ES256 => DecodingKey::from_ec_pem(bytes).map_err(|_| "is not a P-256 public key in PEM"),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(bytes).map_err(|_| "is not an RSA public key in PEM"),
        _ => Err("has an algorithm without public keys"),
    }?;
    Ok(VerifyKey { alg, key })
}

/// The `kid` and key of one JWK: Ed25519, P-256 or RSA, for signing, with a `kid`; its
/// algorithm is the JWK's `alg` when given (and must fit the key type), else the key type's
/// (RSA: RS256). Symmetric and other keys are skipped: a key set is public.
pub fn from_jwk(jwk: &Jwk) -> Option<(String, VerifyKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(_) => return None,
    };
    if named != by_type {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerifyKey { alg: named, key }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_algorithms_have_public_keys() {
        assert_eq!(public_algorithm("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(public_algorithm("RS256"), Some(Algorithm::RS256));
        for other in ["HS256", "none", "ES384", "PS256", "eddsa", ""] {
            assert_eq!(public_algorithm(other), None, "{other}");
        }
    }

    #[test]
    fn jwks_keys_are_bound_to_their_type() {
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-as-rs", "alg": "RS256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]}))
        .unwrap();
        let keys: Vec<(String, Algorithm)> = set.keys.iter().filter_map(from_jwk).map(|(k, v)| (k, v.alg)).collect();
        assert_eq!(keys, [("ed".to_string(), Algorithm::EdDSA)]);
    }
}

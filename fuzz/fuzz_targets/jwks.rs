//! JSON Web Key Sets as a key-set URL answers them: never a panic, and only public keys
//! for signing, with a `kid`, each bound to its own asymmetric algorithm, are kept; an HMAC
//! ("oct") key from a key set would let whoever serves the set mint tokens.
#![no_main]

use assetgate::token::jwks;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = jwks::parse(data) {
        for (kid, key) in &keys {
            assert!(!kid.is_empty());
            assert!(
                matches!(key.alg, Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256),
                "{kid}: {:?}",
                key.alg
            );
        }
    }
});

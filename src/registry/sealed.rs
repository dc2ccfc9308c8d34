//! Secrets at rest: AES-256-GCM under `[registry].master_key` (ring's AEAD), a fresh random
//! nonce per record, and the record's identity (`org/storage`) as associated data, so that a
//! sealed secret copied onto another record does not open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::Secret;

/// The key that seals stored secrets.
pub struct MasterKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// A secret that cannot be opened: wrong master key, or a record tampered with.
#[derive(Debug, thiserror::Error)]
#[error(
    "a stored secret cannot be decrypted: the master key is not the one it was stored with, or the record was altered"
)]
pub struct OpenError;

impl MasterKey {
    /// From the configured base64 of 32 bytes (validated when the config was loaded).
    pub fn from_base64(encoded: &Secret) -> Option<MasterKey> {
        let bytes = STANDARD.decode(encoded.expose().trim()).ok()?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).ok()?;
        Some(MasterKey {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` bound to `context`; returns base64 of nonce || ciphertext || tag.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("the system random generator works");
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("AES-GCM sealing of a small buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        STANDARD.encode(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Secret, OpenError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut data = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| OpenError)?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| OpenError)
    }
}

/// The master key that seals, and the previous ones that still open, while a key is being
/// rotated (`[registry].previous_master_keys`, then `assetgate registry reseal`).
pub struct Keys {
    pub current: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl Keys {
    /// Opens with the current key, else with a previous one; says which opened it.
    pub fn open(&self, context: &str, sealed: &str) -> Result<(Secret, bool), OpenError> {
        if let Ok(secret) = self.current.open(context, sealed) {
            return Ok((secret, true));
        }
        self.previous
            .iter()
            .find_map(|k| k.open(context, sealed).ok())
            .map(|secret| (secret, false))
            .ok_or(OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_base64(&Secret::new(STANDARD.encode([byte; 32]))).unwrap()
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let k = key(1);
        let sealed = k.seal("acme/main", "wJalrXUtnFEMI");
        assert!(!sealed.contains("wJalrXUtnFEMI"));
        assert_eq!(k.open("acme/main", &sealed).unwrap().expose(), "wJalrXUtnFEMI");
    }

    #[test]
    fn every_seal_uses_a_new_nonce() {
        let k = key(1);
        assert_ne!(k.seal("c", "same"), k.seal("c", "same"));
    }

    #[test]
    fn wrong_key_context_or_tampering_fail() {
        let sealed = key(1).seal("acme/main", "secret");
        assert!(key(2).open("acme/main", &sealed).is_err());
        assert!(key(1).open("acme/other", &sealed).is_err());
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(key(1).open("acme/main", &STANDARD.encode(bytes)).is_err());
        assert!(key(1).open("acme/main", "not base64!").is_err());
        assert!(key(1).open("acme/main", "AAAA").is_err());
    }

    #[test]
    fn previous_keys_open_what_the_current_one_cannot() {
        let old = key(1).seal("acme/main", "rotated");
        let keys = Keys {
            current: key(2),
            previous: vec![key(3), key(1)],
        };
        let (secret, current) = keys.open("acme/main", &old).unwrap();
        assert_eq!((secret.expose(), current), ("rotated", false));
        let new = keys.current.seal("acme/main", "fresh");
        assert!(keys.open("acme/main", &new).unwrap().1);
        let without = Keys {
            current: key(2),
            previous: vec![],
        };
        assert!(without.open("acme/main", &old).is_err());
    }

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert!(MasterKey::from_base64(&Secret::new(STANDARD.encode([0u8; 16]))).is_none());
        assert!(MasterKey::from_base64(&Secret::new("%%%")).is_none());
    }
}

//! Secrets at rest: AES-256-GCM under `[registry].master_key` (ring's AEAD), a fresh random
//! nonce per record, and the record's identity (`org/storage`) as associated data, so that a
//! sealed secret copied onto another record does not open. Records are also authenticated as
//! a whole: an HMAC-SHA256 under a key derived from the master key (HKDF-SHA256, RFC 5869),
//! so that nothing of a record, its endpoint and buckets included, can be changed or moved
//! by someone who can write to the database but does not hold the master key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

use crate::secret::Secret;

/// The key that seals stored secrets.
pub struct MasterKey {
    key: LessSafeKey,
    /// Authenticates whole records: derived from the master key, never the key itself.
    mac: hmac::Key,
    /// What keys for other purposes are derived from (HKDF's extracted key).
    prk: hkdf::Prk,
    rng: SystemRandom,
}

/// What the record-authentication key is derived for (HKDF's `info`): another purpose
/// derives another key from the same master key.
const RECORD_MAC: &[u8] = b"assetgate registry record authentication v1";

/// A secret that cannot be opened: wrong master key, or a record tampered with.
#[derive(Debug, thiserror::Error)]
#[error(
    "a stored secret cannot be decrypted: the master key is not the one it was stored with, or the record was altered"
)]
pub struct OpenError;

impl MasterKey {
    /// From the configured base64 of 32 bytes.
    pub fn from_base64(encoded: &Secret) -> Option<MasterKey> {
        MasterKey::parse(encoded).ok()
    }

    /// From the configured base64 of 32 bytes, or what is wrong with it (in words for the
    /// configuration file; never the key).
    pub fn parse(encoded: &Secret) -> Result<MasterKey, &'static str> {
        let bytes = STANDARD
            .decode(encoded.expose().trim())
            .map_err(|_| "is not valid base64")?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "must be the base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"assetgate").extract(&bytes);
        Ok(MasterKey {
            key: LessSafeKey::new(key),
            mac: derive(&prk, RECORD_MAC),
            prk,
            rng: SystemRandom::new(),
        })
    }

    /// An HMAC-SHA256 key for `purpose` (HKDF's `info`), derived from the master key: each
    /// purpose gets a key of its own, and none of them reveals the master key.
    pub fn derived_mac_key(&self, purpose: &[u8]) -> hmac::Key {
        derive(&self.prk, purpose)
    }

    /// An AES-256-GCM key for `purpose`, derived from the master key as
    /// [`MasterKey::derived_mac_key`] is.
    pub fn derived_aead_key(&self, purpose: &[u8]) -> LessSafeKey {
        let info = [purpose];
        let okm = self
            .prk
            .expand(&info, &AES_256_GCM)
            .expect("an AES key's length is within HKDF's limit");
        LessSafeKey::new(UnboundKey::from(okm))
    }

    /// The authentication tag of `data` (base64).
    pub fn tag(&self, data: &[u8]) -> String {
        STANDARD.encode(hmac::sign(&self.mac, data))
    }

    /// Whether `tag` is this key's tag of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &str) -> bool {
        STANDARD
            .decode(tag)
            .is_ok_and(|tag| hmac::verify(&self.mac, data, &tag).is_ok())
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

/// An HMAC-SHA256 key for `purpose`, derived from the master key's extracted key.
fn derive(prk: &hkdf::Prk, purpose: &[u8]) -> hmac::Key {
    let info = [purpose];
    let okm = prk
        .expand(&info, hmac::HMAC_SHA256)
        .expect("an HMAC key's length is within HKDF's limit");
    hmac::Key::from(okm)
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// The master key that seals, and the previous ones that still open, while a key is being
/// rotated (`[registry].previous_master_keys`, then `assetgate registry reseal`).
#[derive(Debug)]
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

    /// Whether `tag` authenticates `data` under the current key (`Some(true)`) or a
    /// previous one (`Some(false)`); `None` under none of them.
    pub fn verify(&self, data: &[u8], tag: &str) -> Option<bool> {
        if self.current.verify(data, tag) {
            return Some(true);
        }
        self.previous.iter().any(|k| k.verify(data, tag)).then_some(false)
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
    fn tags_verify_under_their_key_only_and_never_equal_the_key() {
        let k = key(1);
        let tag = k.tag(b"record");
        assert!(k.verify(b"record", &tag));
        assert!(!k.verify(b"record!", &tag));
        assert!(!key(2).verify(b"record", &tag));
        assert!(!k.verify(b"record", "not base64!"));
        let keys = Keys {
            current: key(2),
            previous: vec![key(1)],
        };
        assert_eq!(keys.verify(b"record", &tag), Some(false));
        assert_eq!(keys.verify(b"record", &keys.current.tag(b"record")), Some(true));
        assert_eq!(keys.verify(b"other", &tag), None);
        // The derived key is not the master key: a tag under the raw key does not verify.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, &[1u8; 32]);
        assert!(!k.verify(b"record", &STANDARD.encode(hmac::sign(&raw, b"record"))));
    }

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert!(MasterKey::from_base64(&Secret::new(STANDARD.encode([0u8; 16]))).is_none());
        assert!(MasterKey::from_base64(&Secret::new("%%%")).is_none());
    }
}

//! Lowercase hex: signatures and digests (SigV4), and the random ids of storages,
//! drawn from the operating system's generator (ring).

use ring::rand::{SecureRandom, SystemRandom};

/// `bytes` as lowercase hex digits, two per byte.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The bytes of lowercase hex `text` (as [`encode`] writes it); `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

/// `N` bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator");
    bytes
}

/// 96 random bits as 24 hex digits: the shape of the ids labeling platforms use.
pub fn random_id() -> String {
    encode(&random_bytes::<12>())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encodes_as_the_formatter_does(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(super::encode(&bytes), expected);
        }

        #[test]
        fn decodes_what_it_encodes_and_nothing_else(bytes in proptest::collection::vec(any::<u8>(), 0..64), text in "\\PC{0,20}") {
            prop_assert_eq!(super::decode(&super::encode(&bytes)), Some(bytes));
            let canonical = text.len().is_multiple_of(2) && text.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
            prop_assert_eq!(super::decode(&text).is_some(), canonical);
        }
    }

    #[test]
    fn random_ids_are_24_hex_digits_and_differ() {
        let (a, b) = (super::random_id(), super::random_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 24);
            assert!(
                id.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{id}"
            );
        }
        assert_ne!(a, b);
    }
}

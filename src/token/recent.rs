//! The tokens each serving thread verified last, in front of the shared cache of verified
//! tokens: an editor sends one token with every asset request, and the thread serving it
//! finds it here by one comparison of the token's text, where the shared cache hashes the
//! whole token and counts the read. What a slot holds is checked on every use as a shared
//! hit is (the key still current, the token not expired); a slot is taken by whichever
//! token lands on it last, so a thread holds at most [`SLOTS`] tokens.

use std::cell::RefCell;

use super::Verified;

/// Slots per thread.
pub const SLOTS: usize = 64;

struct Slot {
    /// Which verifier remembered it (each configuration's verifier is another).
    verifier: u64,
    token: Box<str>,
    verified: Verified,
}

thread_local! {
    static RECENT: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// The slot of a token: from the last bytes of its signature, which differ from token to
/// token (a token that lands on another's slot only takes it over).
fn slot_of(token: &str) -> usize {
    let bytes = token.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(4)..];
    tail.iter()
        .fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b)))
        % SLOTS
}

/// What `verifier` remembered of `token` on this thread.
pub fn find(verifier: u64, token: &str) -> Option<Verified> {
    RECENT.with_borrow(|slots| match slots.get(slot_of(token)) {
        Some(Some(slot)) if slot.verifier == verifier && *slot.token == *token => Some(slot.verified.clone()),
        _ => None,
    })
}

/// Remembers `token` as `verifier` verified it, on this thread.
pub fn keep(verifier: u64, token: &str, verified: &Verified) {
    RECENT.with_borrow_mut(|slots| {
        if slots.is_empty() {
            slots.resize_with(SLOTS, || None);
        }
        slots[slot_of(token)] = Some(Slot {
            verifier,
            token: token.into(),
            verified: verified.clone(),
        });
    });
}

/// Forgets `token` on this thread.
pub fn forget(verifier: u64, token: &str) {
    RECENT.with_borrow_mut(|slots| {
        if let Some(slot) = slots.get_mut(slot_of(token)) {
            if slot
                .as_ref()
                .is_some_and(|s| s.verifier == verifier && *s.token == *token)
            {
                *slot = None;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn verified(org: &str) -> Verified {
        Verified {
            claims: Arc::new(super::super::Claims {
                org: org.into(),
                sto: None,
                pfx: None,
                exp: 1,
                iat: None,
                nbf: None,
                sub: None,
            }),
            kid: "k".into(),
            key: Arc::new(super::super::keys::secret(b"0123456789abcdef0123456789abcdef")),
        }
    }

    #[test]
    fn a_slot_answers_only_its_token_of_its_verifier_on_its_thread() {
        keep(1, "aaa.bbb.ccc", &verified("acme"));
        assert_eq!(find(1, "aaa.bbb.ccc").unwrap().claims.org, "acme");
        assert!(find(2, "aaa.bbb.ccc").is_none(), "another verifier");
        assert!(find(1, "aaa.bbb.ccX").is_none(), "another token");
        assert!(std::thread::spawn(|| find(1, "aaa.bbb.ccc").is_none()).join().unwrap());
        // Tokens on the same slot take it over, and forgetting one forgets only it.
        let other = (0..10_000)
            .map(|i| format!("xyz.{i}"))
            .find(|t| slot_of(t) == slot_of("aaa.bbb.ccc"))
            .unwrap();
        keep(1, &other, &verified("other"));
        assert!(find(1, "aaa.bbb.ccc").is_none());
        forget(1, "aaa.bbb.ccc");
        assert_eq!(find(1, &other).unwrap().claims.org, "other");
        forget(1, &other);
        assert!(find(1, &other).is_none());
    }
}

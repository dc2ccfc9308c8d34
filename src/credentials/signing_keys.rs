//! AWS keys ready to sign with (Signature Version 4): static keys of a storage or of GCS's HMAC
//! interoperability, or temporary credentials from AssumeRole. The signing key (four HMACs
//! over the secret) is derived once per day, region and service, and shared by clones.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use ring::hmac;

use super::StaticKeys;
use crate::secret::Secret;

/// Keys ready to sign with: static keys or temporary credentials. Clones share one
/// derived signing key.
#[derive(Clone)]
pub struct SigningKeys(Arc<Keys>);

struct Keys {
    access_key_id: String,
    secret: Secret,
    session_token: Option<HeaderValue>,
    /// The signing key of the day, region and service signed for last.
    derived: ArcSwapOption<Derived>,
}

struct Derived {
    date: [u8; 8],
    region: String,
    service: &'static str,
    key: hmac::Key,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({})", self.0.access_key_id)
    }
}

impl SigningKeys {
    /// Keys from their parts; `None` when the session token cannot be a header value.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Option<SigningKeys> {
        let session_token = match session_token {
            Some(t) => {
                let mut value = HeaderValue::from_str(t).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Some(SigningKeys(Arc::new(Keys {
            access_key_id: access_key_id.to_string(),
            secret: Secret::new(secret_access_key),
            session_token,
            derived: ArcSwapOption::empty(),
        })))
    }

    /// The signing keys for a set of static or temporary keys. A session token no header
    /// can carry is left out: the bucket then says what is wrong.
    pub fn from_static(keys: &StaticKeys) -> SigningKeys {
        let token = keys.session_token.as_ref().map(|t| t.expose());
        SigningKeys::new(&keys.access_key_id, keys.secret_access_key.expose(), token).unwrap_or_else(|| {
            SigningKeys::new(&keys.access_key_id, keys.secret_access_key.expose(), None).expect("no token to refuse")
        })
    }

    pub fn access_key_id(&self) -> &str {
        &self.0.access_key_id
    }

    /// `x-amz-security-token` of temporary credentials.
    pub fn session_token(&self) -> Option<&HeaderValue> {
        self.0.session_token.as_ref()
    }

    /// The signing key for `date` (`YYYYMMDD`), `region` and `service`: derived once, then
    /// reused (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>).
    pub fn signing_key(&self, date: [u8; 8], region: &str, service: &'static str) -> hmac::Key {
        let keys = &self.0;
        if let Some(held) = keys.derived.load_full() {
            if held.date == date && held.region == region && held.service == service {
                return held.key.clone();
            }
        }
        let step = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        let secret = format!("AWS4{}", keys.secret.expose());
        let k_date = step(secret.as_bytes(), &date);
        let k_region = step(k_date.as_ref(), region.as_bytes());
        let k_service = step(k_region.as_ref(), service.as_bytes());
        let k_signing = step(k_service.as_ref(), b"aws4_request");
        let key = hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref());
        keys.derived.store(Some(Arc::new(Derived {
            date,
            region: region.to_string(),
            service,
            key: key.clone(),
        })));
        key
    }
}

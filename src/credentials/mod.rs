//! Credentials a storage signs with. Static keys are turned into a signing identity once,
//! when the storage is registered, not on every request.

use aws_smithy_runtime_api::client::identity::Identity;

use crate::config::{Storage, StorageCredentials};
use crate::error::GatewayError;
use crate::upstream::sign;

/// How a storage gets its signing identity.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Access key and secret (and maybe a session token) from the storage's definition.
    Static(Identity),
}

impl CredentialSource {
    /// The credential source of a storage.
    pub fn for_storage(storage: &Storage) -> CredentialSource {
        match &storage.credentials {
            StorageCredentials::AccessKey(keys) => CredentialSource::Static(sign::identity(keys)),
        }
    }

    /// The identity to sign the next request with.
    pub async fn identity(&self) -> Result<Identity, GatewayError> {
        match self {
            CredentialSource::Static(identity) => Ok(identity.clone()),
        }
    }
}

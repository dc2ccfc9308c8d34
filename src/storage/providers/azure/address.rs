//! Where a blob lives: `https://{account}.blob.core.windows.net/{container}/{blob}`, or
//! `{endpoint}/{account}/{container}/{blob}` on an endpoint whose host does not name the
//! account (emulators such as Azurite), the blob name encoded exactly once.

use super::Azure;
use crate::route::encode_key;
use crate::upstream::Endpoint;

impl Azure {
    /// The URL path prefix of the storage's blobs on `endpoint`: the account, unless the
    /// endpoint's host names it (`{account}.blob.core.windows.net`, custom domains).
    pub fn account_path(&self, endpoint: &Endpoint) -> String {
        if endpoint.host.starts_with(&format!("{}.", self.account)) {
            String::new()
        } else {
            format!("/{}", self.account)
        }
    }

    /// The URL of a container-level request (`query` such as `restype=container&comp=list`).
    pub fn container_url(&self, endpoint: &Endpoint, container: &str, query: &str) -> String {
        format!("{endpoint}{}/{container}?{query}", self.account_path(endpoint))
    }

    /// The URL of a blob.
    pub fn blob_url(&self, endpoint: &Endpoint, container: &str, blob: &str) -> String {
        format!(
            "{endpoint}{}/{container}/{}",
            self.account_path(endpoint),
            encode_key(blob)
        )
    }
}

//! The asset-URL forms of Azure storages: the account's own host
//! (`{account}.blob.core.windows.net/{container}/{blob}`) and the storage's endpoint (with the
//! account as the first path segment when the endpoint's host does not name it).

use super::Azure;
use crate::error::GatewayError;
use crate::storage::asset_url::{foreign, foreign_scheme, path_style, AssetUrl};
use crate::storage::Storage;

pub fn locate<'a>(azure: &Azure, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
    if matches!(asset.scheme.as_str(), "s3" | "gs") {
        return Err(foreign_scheme(asset));
    }
    if asset.host == format!("{}.blob.core.windows.net", azure.account) {
        return path_style(asset);
    }
    match &storage.endpoint {
        Some(endpoint) if asset.host == endpoint.authority() => {
            // `{endpoint}/{account}/{container}/{blob}` on an endpoint that does not name
            // the account (emulators), `{endpoint}/{container}/{blob}` on one that does.
            let prefix = azure.account_path(endpoint);
            match asset
                .path
                .strip_prefix(prefix.as_str())
                .filter(|rest| rest.starts_with('/'))
            {
                Some(rest) => path_style(&AssetUrl {
                    path: rest,
                    ..asset.clone()
                }),
                None => Err(foreign(&format!("{}{}", asset.host, prefix))),
            }
        }
        _ => Err(foreign(&asset.host)),
    }
}

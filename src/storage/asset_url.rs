//! Asset URLs as written in import files -> (bucket, key) of a storage, for the `/resolve`
//! route (README "Routes"). Parsed by hand, not by a WHATWG URL parser: that would normalise `..`
//! and re-encode the path, and the key must be the path decoded exactly once. Which hosts
//! and schemes name a storage's buckets is its provider's to say (`Backend::locate`).

use super::rules::check_bucket;
use super::Storage;
use crate::error::GatewayError;
use crate::route::decode;

/// The parts of an asset URL we use. Query and fragment (`storageId`, `integrationId`,
/// anything else) are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetUrl<'a> {
    /// `http`, `https`, `s3` or `gs`, lowercase.
    pub scheme: String,
    /// Host (with port, if any), lowercase.
    pub host: String,
    /// The raw path, from its leading `/`, still percent-encoded.
    pub path: &'a str,
}

fn outside(why: String) -> GatewayError {
    GatewayError::UrlOutsideStorage(why)
}

/// Splits an asset URL; refuses what is not a URL or carries user info.
pub fn parse(input: &str) -> Result<AssetUrl<'_>, GatewayError> {
    let invalid = || {
        GatewayError::InvalidRequest(
            "`url` must be an absolute asset URL like https://bucket.s3.amazonaws.com/key".into(),
        )
    };
    let input = input.trim();
    let (scheme, rest) = input.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "s3" | "gs") {
        return Err(invalid());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(outside("asset URLs may not carry user info".into()));
    }
    if authority.is_empty()
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    {
        return Err(invalid());
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    Ok(AssetUrl {
        scheme,
        host: authority.to_ascii_lowercase(),
        path: &tail[..path_end],
    })
}

/// Where `url` points inside `storage`: its bucket and key, or `url_outside_storage`.
pub fn locate(storage: &Storage, url: &str) -> Result<(String, String), GatewayError> {
    let asset = parse(url)?;
    let (bucket, raw_key) = storage.backend().locate(storage, &asset)?;
    if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) || check_bucket(&bucket).is_err() {
        return Err(outside(format!("`{bucket}` is not a bucket name")));
    }
    if !storage.buckets.contains(&bucket) {
        return Err(outside(format!("bucket `{bucket}` is not part of this storage")));
    }
    let key = decode(raw_key)?;
    if key.is_empty() {
        return Err(GatewayError::InvalidRequest("the asset URL names no object".into()));
    }
    // `.` and `..` segments mean different objects to different clients and servers (some
    // normalise them away): an import file cannot name such a key unambiguously.
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(outside("asset URLs may not contain `.` or `..` path segments".into()));
    }
    Ok((bucket, key))
}

/// (bucket, raw key) of a path-style URL: `/{bucket}/{key}`.
pub fn path_style<'a>(asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
    let path = asset.path.strip_prefix('/').unwrap_or(asset.path);
    let (bucket, key) = path
        .split_once('/')
        .ok_or_else(|| outside("the asset URL names no object".into()))?;
    Ok((bucket.to_string(), key))
}

/// (bucket, raw key) of a virtual-hosted URL: the bucket is named by the host.
pub fn virtual_host<'a>(bucket: &str, asset: &AssetUrl<'a>) -> (String, &'a str) {
    (bucket.to_string(), asset.path.strip_prefix('/').unwrap_or(asset.path))
}

/// The forms of the storage's own endpoint, when it has one: `{endpoint}/{bucket}/{key}`
/// and `{scheme}://{bucket}.{endpoint host}/{key}`.
pub fn own_endpoint<'a>(storage: &Storage, asset: &AssetUrl<'a>) -> Option<Result<(String, &'a str), GatewayError>> {
    let own = storage.endpoint.as_ref()?.authority();
    if asset.host == own {
        return Some(path_style(asset));
    }
    let bucket = asset.host.strip_suffix(own.as_str())?.strip_suffix('.')?;
    Some(Ok(virtual_host(bucket, asset)))
}

/// A URL of another provider's scheme (`s3://` for GCS, `gs://` for S3).
pub fn foreign_scheme(asset: &AssetUrl<'_>) -> GatewayError {
    outside(format!("{}:// URLs do not belong to this storage", asset.scheme))
}

/// A host that is not the storage's.
pub fn foreign(host: &str) -> GatewayError {
    outside(format!("host `{host}` does not belong to this storage"))
}

#[cfg(test)]
#[path = "asset_url_tests.rs"]
mod tests;

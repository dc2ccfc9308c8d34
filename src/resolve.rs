//! Asset URLs as written in import files -> (bucket, key) of a storage, for the `/resolve`
//! route (SPEC §3). Parsed by hand, not by a WHATWG URL parser: that would normalise `..`
//! and re-encode the path, and the key must be the path decoded exactly once.

use crate::config::{check_bucket, Provider, Storage};
use crate::error::GatewayError;
use crate::route::decode;
use crate::upstream::address::storage_endpoint;

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
    let (bucket, raw_key) = split(storage, &asset)?;
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

/// (bucket, raw key) by the URL's form.
fn split<'a>(storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
    let path = asset.path.strip_prefix('/').unwrap_or(asset.path);
    let path_style = || -> Result<(String, &'a str), GatewayError> {
        let (bucket, key) = path
            .split_once('/')
            .ok_or_else(|| outside("the asset URL names no object".into()))?;
        Ok((bucket.to_string(), key))
    };
    let virtual_host = |bucket: &str| (bucket.to_string(), path);
    let provider = storage.provider;
    match asset.scheme.as_str() {
        "s3" if provider != Provider::Gcs => return Ok(virtual_host(&asset.host)),
        "gs" if provider == Provider::Gcs => return Ok(virtual_host(&asset.host)),
        "s3" | "gs" => {
            return Err(outside(format!(
                "{}:// URLs do not belong to this storage",
                asset.scheme
            )))
        }
        _ => {}
    }
    if storage.endpoint.is_some() || provider == Provider::S3Compatible || provider == Provider::Gcs {
        let own = storage_endpoint(storage).authority();
        if asset.host == own {
            return path_style();
        }
        if let Some(bucket) = asset.host.strip_suffix(own.as_str()).and_then(|b| b.strip_suffix('.')) {
            return Ok(virtual_host(bucket));
        }
    }
    match provider {
        Provider::Aws => match aws_bucket(&asset.host) {
            Some(None) => path_style(),
            Some(Some(bucket)) => Ok(virtual_host(bucket)),
            None => Err(foreign(&asset.host)),
        },
        Provider::Gcs => match gcs_bucket(&asset.host) {
            Some(None) => path_style(),
            Some(Some(bucket)) => Ok(virtual_host(bucket)),
            None => Err(foreign(&asset.host)),
        },
        Provider::S3Compatible => Err(foreign(&asset.host)),
    }
}

fn foreign(host: &str) -> GatewayError {
    outside(format!("host `{host}` does not belong to this storage"))
}

/// An S3 host: `Some(None)` for path-style hosts (`s3.amazonaws.com`,
/// `s3.eu-central-1.amazonaws.com`, `s3-eu-west-1…`, `s3.dualstack.…`), `Some(Some(bucket))`
/// for virtual-hosted ones, `None` for anything else.
fn aws_bucket(host: &str) -> Option<Option<&str>> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    let s3 = labels.iter().rposition(|l| *l == "s3" || l.starts_with("s3-"))?;
    let tail = &labels[s3 + 1..];
    let region_like = |l: &&str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if tail.len() > 2 || !tail.iter().all(region_like) {
        return None;
    }
    if s3 == 0 {
        return Some(None);
    }
    let bucket_len = labels[..s3].iter().map(|l| l.len() + 1).sum::<usize>() - 1;
    Some(Some(&rest[..bucket_len]))
}

/// A GCS host: `storage.googleapis.com` (and the browser form `storage.cloud.google.com`)
/// are path-style; `{bucket}.storage.googleapis.com` is virtual-hosted.
fn gcs_bucket(host: &str) -> Option<Option<&str>> {
    match host {
        "storage.googleapis.com" | "storage.cloud.google.com" => Some(None),
        _ => host.strip_suffix(".storage.googleapis.com").map(Some),
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;

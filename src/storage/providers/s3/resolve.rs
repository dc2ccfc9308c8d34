//! The asset-URL forms of S3 storages: `s3://bucket/key`, AWS's virtual-hosted and
//! path-style hosts (regional, legacy global, `s3-region`, dualstack), and the storage's own
//! endpoint.

use super::{Flavor, S3};
use crate::error::GatewayError;
use crate::storage::asset_url::{foreign, foreign_scheme, own_endpoint, path_style, virtual_host, AssetUrl};
use crate::storage::Storage;

pub fn locate<'a>(s3: &S3, storage: &Storage, asset: &AssetUrl<'a>) -> Result<(String, &'a str), GatewayError> {
    match asset.scheme.as_str() {
        "s3" => return Ok(virtual_host(&asset.host, asset)),
        "gs" => return Err(foreign_scheme(asset)),
        _ => {}
    }
    if let Some(found) = own_endpoint(storage, asset) {
        return found;
    }
    match (s3.flavor, aws_bucket(&asset.host)) {
        (Flavor::Aws, Some(None)) => path_style(asset),
        (Flavor::Aws, Some(Some(bucket))) => Ok(virtual_host(bucket, asset)),
        _ => Err(foreign(&asset.host)),
    }
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

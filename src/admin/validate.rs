//! Storage validation (SPEC §6): does the storage work, and if not, what should an org admin
//! fix? Checks run in order; once the credentials fail, the rest are skipped.

use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;

use crate::config::{Provider, Storage};
use crate::error::GatewayError;
use crate::registry::StorageEntry;
use crate::upstream::{self, address};
use crate::Gateway;

/// Largest bucket-level XML answer read.
const MAX_XML: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One check of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valid: bool,
    pub checks: Vec<Check>,
}

fn check(name: &'static str, status: Status, message: impl Into<String>) -> Check {
    Check {
        name,
        status,
        message: message.into(),
    }
}

/// Runs every check on `entry`; `object` (`bucket/key`) is read by `object_read` if given.
pub async fn run(gw: &Gateway, entry: &StorageEntry, object: Option<&str>) -> Report {
    let mut checks = Vec::new();
    let storage = &entry.storage;
    let identity = match gw.credentials.identity(&entry.credentials).await {
        Ok(identity) => {
            let message = if entry.credentials.is_delegated() {
                "the role was assumed"
            } else {
                "the storage uses access keys, not a role"
            };
            let status = if entry.credentials.is_delegated() {
                Status::Pass
            } else {
                Status::Skip
            };
            checks.push(check("assume_role", status, message));
            identity
        }
        Err(err) => {
            checks.push(check("assume_role", Status::Fail, err.message()));
            for name in ["credentials", "bucket_location", "list", "object_read"] {
                checks.push(check(name, Status::Skip, "skipped: the role could not be assumed"));
            }
            return report(checks);
        }
    };
    let probe = Probe {
        gw,
        storage,
        trust: entry.trust(),
        identity: &identity,
    };
    let first = &storage.buckets[0];
    match probe.list(first).await {
        Err(GatewayError::UpstreamCredentialsRejected(code)) => {
            checks.push(check("credentials", Status::Fail, credentials_message(&code)));
            for name in ["bucket_location", "list", "object_read"] {
                checks.push(check(name, Status::Skip, "skipped: the credentials do not work"));
            }
            return report(checks);
        }
        Err(GatewayError::EndpointNotAllowed) => {
            checks.push(check("credentials", Status::Fail, crate::upstream::guard::FORBIDDEN));
            return report(checks);
        }
        Err(GatewayError::UpstreamUnavailable(_) | GatewayError::UpstreamTimeout) => {
            let message = format!(
                "the storage endpoint {} cannot be reached",
                address::storage_endpoint(storage)
            );
            checks.push(check("credentials", Status::Fail, message));
            return report(checks);
        }
        _ => checks.push(check(
            "credentials",
            Status::Pass,
            "the storage accepted the credentials",
        )),
    }
    checks.push(probe.locations().await);
    let (list_check, first_key) = probe.lists().await;
    checks.push(list_check);
    let object = object.map(str::to_string).or(first_key);
    checks.push(probe.object_read(object.as_deref()).await);
    report(checks)
}

fn report(checks: Vec<Check>) -> Report {
    Report {
        valid: checks.iter().all(|c| c.status != Status::Fail),
        checks,
    }
}

fn credentials_message(code: &str) -> String {
    match code {
        "InvalidAccessKeyId" => "the access key ID is not known to the storage".into(),
        "SignatureDoesNotMatch" => "the secret key is wrong (the storage computed another signature)".into(),
        "RequestTimeTooSkewed" => "the clocks of the gateway and the storage differ too much".into(),
        other => format!("the storage rejected the credentials ({other})"),
    }
}

/// Bucket-level requests signed with the storage's identity.
struct Probe<'a> {
    gw: &'a Gateway,
    storage: &'a Storage,
    trust: upstream::Trust,
    identity: &'a Identity,
}

impl Probe<'_> {
    /// GET with `query` on `bucket`; the XML body on 200, else the mapped error.
    async fn bucket_xml(&self, bucket: &str, query: &str) -> Result<String, GatewayError> {
        let url = address::bucket_url(self.storage, bucket, query);
        let response = upstream::send_signed(
            &self.gw.upstream,
            self.storage,
            self.trust,
            self.identity,
            &Method::GET,
            &url,
            HeaderMap::new(),
        )
        .await?;
        if response.status() != StatusCode::OK {
            return Err(upstream::read_error(response).await);
        }
        let body = Limited::new(response.into_body(), MAX_XML)
            .collect()
            .await
            .map_err(|_| GatewayError::UpstreamError {
                code: "BodyTooLarge".into(),
                hint: None,
            })?;
        Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    }

    /// ListObjectsV2 with max-keys 1: the first key, if any.
    async fn list(&self, bucket: &str) -> Result<Option<String>, GatewayError> {
        let xml = self.bucket_xml(bucket, "list-type=2&max-keys=1").await?;
        Ok(xml_text(&xml, "Key").map(|k| xml_unescape(&k)))
    }

    async fn locations(&self) -> Check {
        let mut problems = Vec::new();
        for bucket in &self.storage.buckets {
            match self.bucket_xml(bucket, "location").await {
                Ok(xml) => {
                    let location = bucket_region(xml_text(&xml, "LocationConstraint").as_deref());
                    if self.storage.provider != Provider::Gcs && location != self.storage.region {
                        problems.push(format!(
                            "bucket {bucket} is in {location}, the storage says {}",
                            self.storage.region
                        ));
                    }
                }
                Err(err) => problems.push(bucket_problem(bucket, &err, "s3:GetBucketLocation")),
            }
        }
        verdict("bucket_location", problems, "every bucket is in the storage's region")
    }

    async fn lists(&self) -> (Check, Option<String>) {
        let mut problems = Vec::new();
        let mut first_key = None;
        for bucket in &self.storage.buckets {
            match self.list(bucket).await {
                Ok(Some(key)) if first_key.is_none() => first_key = Some(format!("{bucket}/{key}")),
                Ok(_) => {}
                Err(err) => problems.push(bucket_problem(bucket, &err, "s3:ListBucket")),
            }
        }
        (verdict("list", problems, "every bucket can be listed"), first_key)
    }

    async fn object_read(&self, object: Option<&str>) -> Check {
        let Some(object) = object else {
            return check(
                "object_read",
                Status::Skip,
                "no object to read: the buckets are empty; name one with {\"object\": \"bucket/key\"}",
            );
        };
        let Some((bucket, key)) = object.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()) else {
            return check(
                "object_read",
                Status::Fail,
                format!("`{object}` is not of the form bucket/key"),
            );
        };
        if !self.storage.buckets.iter().any(|b| b == bucket) {
            return check(
                "object_read",
                Status::Fail,
                format!("bucket {bucket} is not part of this storage"),
            );
        }
        let target = upstream::Target {
            storage: self.storage,
            trust: self.trust,
            identity: self.identity,
            method: &Method::HEAD,
            bucket,
            key,
        };
        let head = target.fetch(&self.gw.upstream, HeaderMap::new()).await;
        let mut one_byte = HeaderMap::new();
        one_byte.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-0"));
        let get = upstream::Target {
            method: &Method::GET,
            ..target
        };
        for result in [head, get.fetch(&self.gw.upstream, one_byte).await] {
            let failure = match result {
                Ok(r) if r.status().is_success() => {
                    drain(r).await;
                    continue;
                }
                Ok(r) => upstream::read_error(r).await,
                Err(e) => e,
            };
            let message = match failure {
                GatewayError::NoSuchKey => format!("object {object} does not exist"),
                ref e => bucket_problem(bucket, e, "s3:GetObject"),
            };
            return check("object_read", Status::Fail, message);
        }
        check(
            "object_read",
            Status::Pass,
            format!("{object} can be read (HEAD and a one-byte ranged GET)"),
        )
    }
}

async fn drain(response: http::Response<hyper::body::Incoming>) {
    let _ = Limited::new(response.into_body(), 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_else(|_| Bytes::new());
}

fn verdict(name: &'static str, problems: Vec<String>, ok: &str) -> Check {
    if problems.is_empty() {
        check(name, Status::Pass, ok)
    } else {
        check(name, Status::Fail, problems.join("; "))
    }
}

/// What an error on a bucket means for an org admin.
fn bucket_problem(bucket: &str, err: &GatewayError, permission: &str) -> String {
    match err {
        GatewayError::NoSuchBucket => format!("bucket {bucket} does not exist"),
        GatewayError::UpstreamAccessDenied(_) => {
            format!("the credentials have no {permission} permission on bucket {bucket}")
        }
        GatewayError::UpstreamError { code, hint: Some(hint) } => format!("bucket {bucket}: {hint} ({code})"),
        other => format!("bucket {bucket}: {}", other.message()),
    }
}

/// `LocationConstraint` to a region: empty means us-east-1, `EU` is the old name of eu-west-1.
pub fn bucket_region(location: Option<&str>) -> String {
    match location.map(str::trim) {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(region) => region.to_string(),
    }
}

/// The text of the first `<tag>…</tag>` (or `None` for `<tag/>` and absence).
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).or_else(|| {
        // `<LocationConstraint xmlns="...">`
        let with_attrs = format!("<{tag} ");
        xml.find(&with_attrs)
            .and_then(|i| xml[i..].find('>').map(|j| i + j + 1 - open.len()))
    })? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].to_string())
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_regions() {
        assert_eq!(bucket_region(None), "us-east-1");
        assert_eq!(bucket_region(Some("")), "us-east-1");
        assert_eq!(bucket_region(Some("EU")), "eu-west-1");
        assert_eq!(bucket_region(Some("ap-south-1")), "ap-south-1");
    }

    #[test]
    fn xml_text_reads_plain_and_attributed_tags() {
        assert_eq!(xml_text("<a><Key>x/y.jpg</Key></a>", "Key").as_deref(), Some("x/y.jpg"));
        let loc = r#"<?xml version="1.0"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>"#;
        assert_eq!(xml_text(loc, "LocationConstraint").as_deref(), Some("eu-west-1"));
        assert_eq!(xml_text("<LocationConstraint/>", "LocationConstraint"), None);
        assert_eq!(xml_text("<a></a>", "Key"), None);
        assert_eq!(xml_unescape("a&amp;b&lt;c"), "a&b<c");
    }

    #[test]
    fn credential_messages_speak_plainly() {
        assert!(credentials_message("SignatureDoesNotMatch").contains("secret key is wrong"));
        assert!(credentials_message("InvalidAccessKeyId").contains("access key ID"));
    }
}

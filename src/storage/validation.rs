//! Storage validation (README, "Validation"): does a storage work, and if not, what should an
//! org admin fix? The checks are the provider's (`super::providers::*::checks`), run through
//! `super::providers::validate`; this module holds the report and what they share: requests signed as the
//! storage's, reading an object, naming a problem in words an admin understands. What only
//! the registry knows (a keyless API storage's proof of ownership) the admin API adds.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;

use super::Storage;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::upstream::{Trust, UpstreamClient};

/// Largest bucket-level answer read.
const MAX_ANSWER: usize = 256 * 1024;

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

pub fn check(name: &'static str, status: Status, message: impl Into<String>) -> Check {
    Check {
        name,
        status,
        message: message.into(),
    }
}

/// The report of `checks`: valid when none failed.
pub fn report(checks: Vec<Check>) -> Report {
    Report {
        valid: checks.iter().all(|c| c.status != Status::Fail),
        checks,
    }
}

/// Every check `names` skipped for `why`.
pub fn skipped(checks: &mut Vec<Check>, names: &[&'static str], why: &str) {
    for name in names {
        checks.push(check(name, Status::Skip, format!("skipped: {why}")));
    }
}

/// The report when no credentials could be had at all: check `name` fails with the reason and
/// the `later` checks are skipped for `why`.
pub fn no_credentials(
    mut checks: Vec<Check>,
    name: &'static str,
    err: &GatewayError,
    later: &[&'static str],
    why: &str,
) -> Report {
    checks.push(check(name, Status::Fail, err.message()));
    skipped(&mut checks, later, why);
    report(checks)
}

/// The `credentials` check, from what was wrong with the first listing (`problem`, see
/// [`credentials_problem`]): when the storage refused them, the final report with the `later`
/// checks skipped; else `None`, with the check passed, to go on.
pub fn credentials_verdict(checks: &mut Vec<Check>, problem: Option<String>, later: &[&'static str]) -> Option<Report> {
    match problem {
        Some(problem) => {
            checks.push(check("credentials", Status::Fail, problem));
            skipped(checks, later, "the credentials do not work");
            Some(report(std::mem::take(checks)))
        }
        None => {
            checks.push(check(
                "credentials",
                Status::Pass,
                "the storage accepted the credentials",
            ));
            None
        }
    }
}

/// The `list` check on every bucket (`list` lists one and says its first key), and the first
/// object found (`bucket/key`) for `object_read`.
pub async fn list_every<'b, Listed>(
    buckets: &'b [String],
    list: impl Fn(&'b str) -> Listed,
    permission: &str,
    ok: &str,
) -> (Check, Option<String>)
where
    Listed: std::future::Future<Output = Result<Option<String>, GatewayError>>,
{
    let mut problems = Vec::new();
    let mut first = None;
    for bucket in buckets {
        match list(bucket).await {
            Ok(Some(key)) if first.is_none() => first = Some(format!("{bucket}/{key}")),
            Ok(_) => {}
            Err(err) => problems.push(bucket_problem(bucket, &err, permission)),
        }
    }
    (verdict("list", problems, ok), first)
}

/// What is validated: a storage, and how its requests are sent.
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub storage: &'a Storage,
    /// Whether its endpoint must pass the guard (API storages).
    pub trust: Trust,
    pub client: &'a UpstreamClient,
    /// Whether its credentials come from AssumeRole (the `assume_role` check).
    pub delegated: bool,
}

/// Requests signed as the storage's.
pub struct Probe<'a> {
    pub subject: Subject<'a>,
    pub auth: Authorization,
}

impl<'a> Probe<'a> {
    /// The storage this probe signs for.
    pub fn storage(&self) -> &'a Storage {
        self.subject.storage
    }

    /// A signed GET of `url`: the body of a 200, else the mapped error.
    pub async fn text(&self, url: &str, headers: HeaderMap) -> Result<String, GatewayError> {
        let storage = self.subject.storage;
        let response = super::request::send_signed(
            self.subject.client,
            storage,
            self.subject.trust,
            &self.auth,
            &Method::GET,
            url,
            headers,
        )
        .await?;
        if response.status() != StatusCode::OK {
            return Err(super::request::read_error(storage, response).await);
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|_| GatewayError::UpstreamError {
                code: "BodyTooLarge".into(),
                hint: None,
            })?;
        Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    }

    /// `object_read`: HEAD and a one-byte ranged GET of `object` (`bucket/key`), the way the
    /// data plane asks for objects; `permission` names what the credentials would lack.
    pub async fn object_read(&self, object: Option<&str>, permission: &str) -> Check {
        let storage = self.subject.storage;
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
        if !storage.buckets.iter().any(|b| b == bucket) {
            return check(
                "object_read",
                Status::Fail,
                format!("bucket {bucket} is not part of this storage"),
            );
        }
        let target = super::request::Target {
            storage,
            trust: self.subject.trust,
            auth: &self.auth,
            method: &Method::HEAD,
            bucket,
            key,
        };
        let head = target.fetch(self.subject.client, HeaderMap::new()).await;
        let mut one_byte = HeaderMap::new();
        one_byte.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-0"));
        let get = super::request::Target {
            method: &Method::GET,
            ..target
        };
        for result in [head, get.fetch(self.subject.client, one_byte).await] {
            let failure = match result {
                Ok(r) if r.status().is_success() => {
                    drain(r).await;
                    continue;
                }
                Ok(r) => super::request::read_error(storage, r).await,
                Err(e) => e,
            };
            let message = match failure {
                GatewayError::NoSuchKey => format!("object {object} does not exist"),
                ref e => bucket_problem(bucket, e, permission),
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

/// The `credentials` check of the first request's outcome: fail with the reason when the
/// storage refused the credentials or cannot be reached; `None` to go on.
pub fn credentials_problem(storage: &Storage, err: &GatewayError) -> Option<String> {
    Some(match err {
        GatewayError::UpstreamCredentialsRejected(code) => credentials_message(code),
        GatewayError::EndpointNotAllowed => crate::error::FORBIDDEN.to_string(),
        GatewayError::UpstreamUnavailable(_) | GatewayError::UpstreamTimeout => {
            format!("the storage endpoint {} cannot be reached", storage.endpoint())
        }
        _ => return None,
    })
}

fn credentials_message(code: &str) -> String {
    match code {
        "InvalidAccessKeyId" => "the access key ID is not known to the storage".into(),
        "SignatureDoesNotMatch" => "the secret key is wrong (the storage computed another signature)".into(),
        "RequestTimeTooSkewed" => "the clocks of the gateway and the storage differ too much".into(),
        "AuthenticationFailed" => {
            "the storage refused the credentials: the account key or SAS is wrong, or has expired".into()
        }
        other => format!("the storage rejected the credentials ({other})"),
    }
}

pub fn verdict(name: &'static str, problems: Vec<String>, ok: &str) -> Check {
    if problems.is_empty() {
        check(name, Status::Pass, ok)
    } else {
        check(name, Status::Fail, problems.join("; "))
    }
}

/// What an error on a bucket means for an org admin.
pub fn bucket_problem(bucket: &str, err: &GatewayError, permission: &str) -> String {
    match err {
        GatewayError::NoSuchBucket => format!("bucket {bucket} does not exist"),
        GatewayError::UpstreamAccessDenied(_) => {
            format!("the credentials have no {permission} permission on bucket {bucket}")
        }
        GatewayError::UpstreamError { code, hint: Some(hint) } => format!("bucket {bucket}: {hint} ({code})"),
        other => format!("bucket {bucket}: {}", other.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_messages_speak_plainly() {
        assert!(credentials_message("SignatureDoesNotMatch").contains("secret key is wrong"));
        assert!(credentials_message("InvalidAccessKeyId").contains("access key ID"));
        assert!(credentials_message("AuthenticationFailed").contains("account key or SAS"));
    }
}

//! The validation checks of Azure storages, in order: `credentials` (a token could be had for
//! Entra delegation, and the first listing is not refused for its credentials), `container`
//! (Get Container Properties: every container exists), `list` (List Blobs with
//! `maxresults=1` on every container), `object_read`.

use http::HeaderMap;

use super::Azure;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::storage::validation::{
    bucket_problem, credentials_problem, credentials_verdict, list_every, no_credentials, report, verdict, Check,
    Probe, Report, Subject,
};

/// The checks after `credentials`.
const LATER: &[&str] = &["container", "list", "object_read"];

/// What a role assignment must grant, in the words of Azure's portal.
const READER: &str = "read (the Storage Blob Data Reader role, or a SAS with r and l)";

pub async fn run(
    azure: &Azure,
    subject: Subject<'_>,
    auth: Result<Authorization, GatewayError>,
    object: Option<&str>,
) -> Report {
    let mut checks = Vec::new();
    let probe = match auth {
        Ok(auth) => Probe { subject, auth },
        Err(err) => return no_credentials(checks, "credentials", &err, LATER, "no access token could be had"),
    };
    let containers = Containers { probe: &probe, azure };
    let failure = containers.list(&subject.storage.buckets[0]).await.err();
    let problem = failure.and_then(|err| credentials_problem(subject.storage, &err).or_else(|| refused(&err)));
    if let Some(done) = credentials_verdict(&mut checks, problem, LATER) {
        return done;
    }
    checks.push(containers.exist().await);
    let (list, first) = containers.lists().await;
    checks.push(list);
    let object = object.map(str::to_string).or(first);
    checks.push(probe.object_read(object.as_deref(), READER).await);
    report(checks)
}

/// Container-level requests of the Blob service.
struct Containers<'a> {
    probe: &'a Probe<'a>,
    azure: &'a Azure,
}

impl Containers<'_> {
    /// List Blobs with `maxresults=1`: the first blob's name, if any.
    async fn list(&self, container: &str) -> Result<Option<String>, GatewayError> {
        let url = self.azure.container_url(
            &self.probe.storage().endpoint(),
            container,
            "restype=container&comp=list&maxresults=1",
        );
        let xml = self.probe.text(&url, HeaderMap::new()).await?;
        Ok(first_blob(&xml))
    }

    /// `container`: Get Container Properties of every container. Credentials that may list
    /// and read blobs but not read container properties (some SAS) leave it to `list`.
    async fn exist(&self) -> Check {
        let mut problems = Vec::new();
        for container in &self.probe.storage().buckets {
            let url = self
                .azure
                .container_url(&self.probe.storage().endpoint(), container, "restype=container");
            match self.probe.text(&url, HeaderMap::new()).await {
                Ok(_) | Err(GatewayError::UpstreamAccessDenied(_)) => {}
                Err(GatewayError::NoSuchBucket) => problems.push(format!("container {container} does not exist")),
                Err(err) => problems.push(bucket_problem(container, &err, "read")),
            }
        }
        verdict("container", problems, "every container exists")
    }

    /// `list` on every container, and the first blob found (`container/blob`).
    async fn lists(&self) -> (Check, Option<String>) {
        let containers = &self.probe.storage().buckets;
        list_every(containers, |c| self.list(c), "list", "every container can be listed").await
    }
}

/// `AuthorizationFailure` on the first listing: Azure's answer to a request its network
/// rules refuse, and Azurite's to a wrong account key. Either way nothing else can work.
fn refused(err: &GatewayError) -> Option<String> {
    matches!(err, GatewayError::UpstreamAccessDenied(code) if code == "AuthorizationFailure").then(|| {
        "the storage refused the request (AuthorizationFailure): the account key or SAS is wrong, or the \
         account's network rules do not admit the gateway"
            .to_string()
    })
}

/// The first `<Blob><Name>` of a List Blobs answer.
fn first_blob(xml: &str) -> Option<String> {
    let blobs = &xml[xml.find("<Blobs>")?..];
    let blob = &blobs[blobs.find("<Blob>")?..];
    crate::xml::text(blob, "Name").map(|n| crate::xml::unescape(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_blob_is_read_from_a_listing() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1:1/acct" ContainerName="c"><Prefix/><MaxResults>1</MaxResults><Blobs><Blob><Name>a &amp; b/x.jpg</Name><Properties/></Blob></Blobs><NextMarker>m</NextMarker></EnumerationResults>"#;
        assert_eq!(first_blob(xml).as_deref(), Some("a & b/x.jpg"));
        let empty = r#"<EnumerationResults ContainerName="c"><Blobs /><NextMarker /></EnumerationResults>"#;
        assert_eq!(first_blob(empty), None);
        let no_blobs = r#"<EnumerationResults><Name>not a blob</Name><Blobs></Blobs></EnumerationResults>"#;
        assert_eq!(first_blob(no_blobs), None);
    }
}

//! The validation checks of S3 storages, in order: `assume_role` (delegated storages),
//! `credentials` (the first signed request is not refused for its credentials),
//! `bucket_location` (GetBucketLocation agrees with the region), `list` (ListObjectsV2 with
//! max-keys 1 on every bucket), `object_read`. Once the credentials fail, the rest are
//! skipped. GCS's XML API shares the listing.

use http::HeaderMap;

use super::address::bucket_url;
use super::S3;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::storage::validation::{
    bucket_problem, check, credentials_problem, credentials_verdict, list_every, no_credentials, report, verdict,
    Check, Probe, Report, Status, Subject,
};

pub async fn run(
    s3: &S3,
    subject: Subject<'_>,
    auth: Result<Authorization, GatewayError>,
    object: Option<&str>,
) -> Report {
    let mut checks = Vec::new();
    let probe = match auth {
        Ok(auth) => Probe { subject, auth },
        Err(err) => {
            let later = ["credentials", "bucket_location", "list", "object_read"];
            return no_credentials(checks, "assume_role", &err, &later, "the role could not be assumed");
        }
    };
    checks.push(if subject.delegated {
        check("assume_role", Status::Pass, "the role was assumed")
    } else {
        check("assume_role", Status::Skip, "the storage uses access keys, not a role")
    });
    let lister = Lister {
        probe: &probe,
        path_style: s3.path_style,
    };
    let failure = lister.list(&subject.storage.buckets[0]).await.err();
    let problem = failure.and_then(|err| credentials_problem(subject.storage, &err));
    if let Some(done) = credentials_verdict(&mut checks, problem, &["bucket_location", "list", "object_read"]) {
        return done;
    }
    checks.push(lister.locations(&s3.region).await);
    let (list, first) = lister.lists().await;
    checks.push(list);
    let object = object.map(str::to_string).or(first);
    checks.push(probe.object_read(object.as_deref(), "s3:GetObject").await);
    report(checks)
}

/// Bucket-level requests of the S3 API.
pub struct Lister<'a> {
    pub probe: &'a Probe<'a>,
    pub path_style: bool,
}

impl Lister<'_> {
    async fn bucket_xml(&self, bucket: &str, query: &str) -> Result<String, GatewayError> {
        let url = bucket_url(&self.probe.storage().endpoint(), self.path_style, bucket, query);
        self.probe.text(&url, HeaderMap::new()).await
    }

    /// ListObjectsV2 with max-keys 1: the first key, if any.
    pub async fn list(&self, bucket: &str) -> Result<Option<String>, GatewayError> {
        let xml = self.bucket_xml(bucket, "list-type=2&max-keys=1").await?;
        Ok(crate::xml::text(&xml, "Key").map(|k| crate::xml::unescape(&k)))
    }

    async fn locations(&self, region: &str) -> Check {
        let mut problems = Vec::new();
        for bucket in &self.probe.storage().buckets {
            match self.bucket_xml(bucket, "location").await {
                Ok(xml) => {
                    let location = bucket_region(crate::xml::text(&xml, "LocationConstraint").as_deref());
                    if location != region {
                        problems.push(format!("bucket {bucket} is in {location}, the storage says {region}"));
                    }
                }
                Err(err) => problems.push(bucket_problem(bucket, &err, "s3:GetBucketLocation")),
            }
        }
        verdict("bucket_location", problems, "every bucket is in the storage's region")
    }

    /// `list` on every bucket, and the first object found (`bucket/key`).
    pub async fn lists(&self) -> (Check, Option<String>) {
        let buckets = &self.probe.storage().buckets;
        list_every(buckets, |b| self.list(b), "s3:ListBucket", "every bucket can be listed").await
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
}

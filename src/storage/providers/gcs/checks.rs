//! The validation checks of GCS storages: `credentials` (a token could be had, and the first
//! listing is not refused for its credentials), `list` (on every bucket, as S3's), and
//! `object_read`.

use super::Gcs;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::storage::providers::s3::checks::Lister;
use crate::storage::validation::{check, credentials_problem, report, skipped, Probe, Report, Status, Subject};

pub async fn run(
    gcs: &Gcs,
    subject: Subject<'_>,
    auth: Result<Authorization, GatewayError>,
    object: Option<&str>,
) -> Report {
    let mut checks = Vec::new();
    let probe = match auth {
        Ok(auth) => Probe { subject, auth },
        Err(err) => {
            checks.push(check("credentials", Status::Fail, err.message()));
            skipped(&mut checks, &["list", "object_read"], "no access token could be had");
            return report(checks);
        }
    };
    let lister = Lister {
        probe: &probe,
        path_style: gcs.path_style,
    };
    if let Err(err) = lister.list(&subject.storage.buckets[0]).await {
        if let Some(problem) = credentials_problem(subject.storage, &err) {
            checks.push(check("credentials", Status::Fail, problem));
            skipped(&mut checks, &["list", "object_read"], "the credentials do not work");
            return report(checks);
        }
    }
    checks.push(check(
        "credentials",
        Status::Pass,
        "the storage accepted the credentials",
    ));
    let (list, first) = lister.lists().await;
    checks.push(list);
    let object = object.map(str::to_string).or(first);
    checks.push(probe.object_read(object.as_deref(), "storage.objects.get").await);
    report(checks)
}

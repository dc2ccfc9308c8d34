//! The validation checks of GCS storages: `credentials` (a token could be had, and the first
//! listing is not refused for its credentials), `list` (on every bucket, as S3's), and
//! `object_read`.

use super::Gcs;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::storage::providers::s3::checks::Lister;
use crate::storage::validation::{
    credentials_problem, credentials_verdict, no_credentials, report, Probe, Report, Subject,
};

/// The checks after `credentials`.
const LATER: &[&str] = &["list", "object_read"];

pub async fn run(
    gcs: &Gcs,
    subject: Subject<'_>,
    auth: Result<Authorization, GatewayError>,
    object: Option<&str>,
) -> Report {
    let mut checks = Vec::new();
    let probe = match auth {
        Ok(auth) => Probe { subject, auth },
        Err(err) => return no_credentials(checks, "credentials", &err, LATER, "no access token could be had"),
    };
    let lister = Lister {
        probe: &probe,
        path_style: gcs.path_style,
    };
    let failure = lister.list(&subject.storage.buckets[0]).await.err();
    let problem = failure.and_then(|err| credentials_problem(subject.storage, &err));
    if let Some(done) = credentials_verdict(&mut checks, problem, LATER) {
        return done;
    }
    let (list, first) = lister.lists().await;
    checks.push(list);
    let object = object.map(str::to_string).or(first);
    checks.push(probe.object_read(object.as_deref(), "storage.objects.get").await);
    report(checks)
}

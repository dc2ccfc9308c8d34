//! The validation checks of GCS storages: `credentials` (a token could be had, and the first
//! listing is not refused for its credentials), `list` (on every bucket, as S3's), and
//! `object_read`.

use crate::admin::validate::{check, credentials_problem, report, skipped, Probe, Report, Status};
use crate::registry::StorageEntry;
use crate::storage::providers::s3::checks::Lister;
use crate::storage::Provider;
use crate::Gateway;

pub async fn run(gw: &Gateway, entry: &StorageEntry, object: Option<&str>) -> Report {
    let Provider::Gcs(gcs) = &entry.storage.provider else {
        unreachable!("GCS checks for a GCS storage")
    };
    let mut checks = Vec::new();
    let probe = match Probe::authorize(gw, entry).await {
        Ok(probe) => probe,
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
    if let Err(err) = lister.list(&entry.storage.buckets[0]).await {
        if let Some(problem) = credentials_problem(entry, &err) {
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

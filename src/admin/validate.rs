//! Storage validation through the admin API and `assetgate validate`: the provider's checks
//! (`crate::storage::validation`) with the storage's credentials, and for a keyless API
//! storage its proof of ownership (`crate::proof`).

use crate::error::GatewayError;
use crate::proof;
use crate::registry::StorageEntry;
use crate::storage::validation::{bucket_problem, check, verdict, Check, Report, Status, Subject};
use crate::Gateway;

/// Runs the provider's checks on `org`'s storage `entry`; `object` (`bucket/key`) is read if
/// given. A delegated API storage adds `ownership` (see [`crate::proof`]).
pub async fn run(gw: &Gateway, org: &str, entry: &StorageEntry, object: Option<&str>) -> Report {
    let subject = Subject {
        storage: &entry.storage,
        trust: entry.trust(),
        client: &gw.upstream,
        delegated: entry.credentials.is_delegated(),
    };
    let auth = gw.credentials.authorize(&entry.credentials).await;
    let mut report = crate::storage::providers::validate(subject, auth, object).await;
    if proof::required(entry) {
        let check = if report
            .checks
            .iter()
            .any(|c| c.name == "credentials" && c.status != Status::Pass)
        {
            check("ownership", Status::Skip, "skipped: the credentials do not work")
        } else {
            ownership(gw, org, entry).await
        };
        report.checks.push(check);
        report.valid = report.checks.iter().all(|c| c.status != Status::Fail);
    }
    report
}

/// `ownership`: every bucket holds the org's marker.
async fn ownership(gw: &Gateway, org: &str, entry: &StorageEntry) -> Check {
    let mut problems = Vec::new();
    for bucket in &entry.storage.buckets {
        match proof::read(gw.proof_means(), org, entry, bucket).await {
            Ok(()) => {}
            Err(GatewayError::OwnershipNotProven { .. }) => problems.push(format!(
                "bucket {bucket} has no object {} holding this organization's external ID",
                proof::MARKER
            )),
            Err(err) => problems.push(bucket_problem(bucket, &err, "read")),
        }
    }
    verdict(
        "ownership",
        problems,
        "every bucket holds this organization's external ID in .assetgate-org",
    )
}

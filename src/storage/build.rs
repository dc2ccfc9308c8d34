//! The one function that builds and checks a storage, whoever wrote it (`build`), and the one
//! that applies a change to it (`update`). Each problem is reported by the field's name.

use serde_json::Value;

use super::draft::{Context, Draft, Fields, Name, Style};
use super::providers::{self, Kind};
use super::{rules, Storage};

const ID: Name = Name {
    config: "id",
    api: &["_id", "id"],
};
const NAME: Name = Name {
    config: "name",
    api: &["name"],
};
pub(crate) const TYPE: Name = Name {
    config: "provider",
    api: &["type", "provider"],
};
const BUCKETS: Name = Name {
    config: "buckets",
    api: &["buckets"],
};
const BUCKET: Name = Name {
    config: "bucket",
    api: &["bucket"],
};
const ENDPOINT: Name = Name {
    config: "endpoint",
    api: &["endpoint"],
};
const CACHE: Name = Name {
    config: "cache",
    api: &["cache"],
};

fn kind(d: &mut Draft<'_>) -> Option<Kind> {
    let style = d.style;
    let name = d.text(TYPE)?;
    let kind = Kind::parse(&name, style);
    if kind.is_none() {
        d.fail(TYPE, "is not one of aws, s3_compatible, gcs, azure");
    }
    kind
}

fn id(d: &mut Draft<'_>) -> Option<String> {
    d.checked(ID, rules::check_id)
}

/// The endpoint a storage of `storage`'s provider may have (checked for its path, and for
/// where its credentials may be sent).
fn check_endpoint(d: &mut Draft<'_>, storage: &Storage, path: &str, cx: &Context<'_>) {
    if let Some(problem) = storage.backend().endpoint_problem(&storage.endpoint(), cx) {
        d.fail(ENDPOINT, problem);
    }
    if !storage.backend().endpoint_path_allowed(path) {
        d.fail(ENDPOINT, "must not have a path or query");
    }
    if storage.endpoint.is_none() && storage.backend().needs_endpoint() {
        d.fail(
            ENDPOINT,
            format!("is required for {} storages", storage.provider.kind().name()),
        );
    }
}

/// `storage` once its endpoint is checked, or every field of the draft at fault.
fn finish(mut d: Draft<'_>, storage: Storage, endpoint_path: &str, cx: &Context<'_>) -> Result<Storage, Fields> {
    check_endpoint(&mut d, &storage, endpoint_path, cx);
    d.finish()?;
    Ok(storage)
}

/// A complete storage from a draft, or every field at fault.
pub fn build(value: &Value, cx: &Context<'_>) -> Result<Storage, Fields> {
    let mut d = Draft::new(value, cx.style)?;
    let id = id(&mut d);
    if id.is_none() && cx.style == Style::Config && !d.failed() {
        d.fail(ID, "is required");
    }
    let name = d.text(NAME);
    let kind = kind(&mut d);
    if kind.is_none() && !d.has(TYPE) {
        d.fail(TYPE, "is required: aws, s3_compatible, gcs or azure");
    }
    let rule = kind.map_or(rules::check_bucket as fn(&str) -> Result<(), String>, Kind::bucket_rule);
    let buckets = d.names(BUCKETS, BUCKET, rule);
    if buckets.is_none() && !d.has(BUCKETS) && !d.has(BUCKET) {
        d.fail(BUCKETS, "at least one bucket is required");
    }
    let endpoint = d.endpoint(ENDPOINT).flatten();
    let cache = d.flag(CACHE).unwrap_or(true);
    let provider = kind.and_then(|k| providers::from_draft(k, &mut d, cx));
    let (Some(provider), Some(buckets)) = (provider, buckets) else {
        return Err(d.finish().err().unwrap_or_default());
    };
    let id = id.unwrap_or_else(crate::hex::random_id);
    let (endpoint, path) = endpoint.map_or((None, String::new()), |(e, p)| (Some(e), p));
    let storage = Storage {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        buckets,
        endpoint,
        provider,
        cache,
    };
    finish(d, storage, &path, cx)
}

/// `current` with what a PATCH body changes: name, buckets, endpoint (null clears it), cache and
/// the provider's settings and credentials; the id and the provider may not change.
pub fn update(current: &Storage, value: &Value, cx: &Context<'_>) -> Result<Storage, Fields> {
    let mut d = Draft::new(value, cx.style)?;
    if d.text(ID).is_some_and(|id| id != current.id) {
        d.fail(ID, "cannot be changed");
    }
    if kind(&mut d).is_some_and(|k| k != current.provider.kind()) {
        d.fail(TYPE, "cannot be changed; create a new storage instead");
    }
    let name = d.text(NAME).unwrap_or_else(|| current.name.clone());
    let buckets = d
        .names(BUCKETS, BUCKET, current.provider.kind().bucket_rule())
        .unwrap_or_else(|| current.buckets.clone());
    let (endpoint, path) = match d.endpoint(ENDPOINT) {
        None => (current.endpoint.clone(), String::new()),
        Some(None) => (None, String::new()),
        Some(Some((e, p))) => (Some(e), p),
    };
    let cache = d.flag(CACHE).unwrap_or(current.cache);
    let provider = current.backend().patch(&mut d, cx);
    let storage = Storage {
        id: current.id.clone(),
        name,
        buckets,
        endpoint,
        provider,
        cache,
    };
    finish(d, storage, &path, cx)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

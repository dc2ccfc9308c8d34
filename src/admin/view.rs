//! How a storage looks in admin API responses: the common fields, then the provider's.
//! Secrets are write-only: never here.

use serde_json::{json, Map, Value};

use crate::registry::{Source, StorageEntry};

/// The storage object of the admin API (README "Admin API").
pub fn storage(org: &str, entry: &StorageEntry) -> Value {
    let s = &entry.storage;
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put("_id", json!(s.id));
    put("name", json!(s.name));
    put("type", json!(s.provider.kind().name()));
    put("buckets", json!(s.buckets));
    put("cache", json!(s.cache));
    put("bucket", json!(s.buckets.first()));
    put("endpoint", json!(s.endpoint.as_ref().map(ToString::to_string)));
    put("organization", json!(org));
    put(
        "source",
        json!(match entry.source {
            Source::Config => "config",
            Source::Api => "api",
        }),
    );
    put("createdAt", json!(entry.created_at));
    put("updatedAt", json!(entry.updated_at));
    s.backend().view(&mut out);
    Value::Object(out)
}

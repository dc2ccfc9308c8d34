//! Admin API bodies: a storage created (POST) or changed (PATCH) from any JSON. Never a panic;
//! a refusal names fields and never repeats a secret it was sent (checked with every secret
//! of the body swapped for a marker, valid or not); what is accepted is a storage with
//! buckets, and changing it with the same body again gives the same storage.
#![no_main]

use assetgate::credentials::TokenDestinations;
use assetgate::storage::build::{build, update};
use assetgate::storage::draft::{Context, Style};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The fields whose values are secrets, in every spelling the API takes.
const SECRET_FIELDS: [&str; 10] = [
    "secretAccessKey",
    "secret_access_key",
    "privateKey",
    "accountKey",
    "account_key",
    "sasToken",
    "sas_token",
    "sas",
    "serviceAccountKey",
    "service_account_key",
];

/// `value` with every secret string swapped for a marker that no message can hold by chance.
fn marked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, v)| {
                    let v = match v {
                        Value::String(_) if SECRET_FIELDS.contains(&name.as_str()) => Value::String(MARKER.into()),
                        _ => marked(v),
                    };
                    (name.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(marked).collect()),
        other => other.clone(),
    }
}

const MARKER: &str = "SECRET-MARKER-9f3a";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for style in [Style::Api, Style::Config] {
        let cx = Context {
            style,
            org_external_id: Some("org-external-id-0123456789"),
            entra_app: true,
            destinations: &TokenDestinations::PUBLIC,
        };
        if let Ok(storage) = build(&body, &cx) {
            assert!(!storage.buckets.is_empty() && !storage.id.is_empty());
            if style == Style::Api {
                let changed = update(&storage, &body, &cx).unwrap_or_else(|f| panic!("{body} then {f:?}"));
                assert_eq!(format!("{changed:?}"), format!("{storage:?}"));
            }
        }
        if let Err(fields) = build(&marked(&body), &cx) {
            assert!(!fields.is_empty(), "{body}: refused without a field");
            for (field, problem) in &fields {
                assert!(
                    !field.contains(MARKER) && !problem.contains(MARKER),
                    "{body}: {field}: {problem} repeats a secret"
                );
            }
        }
    }
});

//! The org routes of the admin API besides storages: usage (README "Usage", summed over every
//! replica through the registry) and limits (kept in the registry, so every replica applies
//! them).

use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::{json, Value};

use super::{answer, check_org, AdminError, Reply};
use crate::limits::OrgLimits;
use crate::route::query_param;
use crate::storage::Fields;
use crate::usage::day_of;
use crate::Gateway;

/// Longest span of days one usage answer covers.
const MAX_DAYS: u64 = 400;

/// A `YYYY-MM-DD` date, as the seconds of its midnight UTC.
fn parse_day(text: &str) -> Option<SystemTime> {
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    well_formed
        .then(|| humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).ok())
        .flatten()
}

/// `GET /admin/v1/orgs/{org}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD` (both default to today,
/// UTC).
pub async fn usage(gw: &Gateway, org: &str, query: Option<&str>) -> Reply {
    check_org(org)?;
    let today = day_of(SystemTime::now());
    let mut fields = Fields::new();
    let mut day = |name: &str| {
        let text = query_param(query, name).map_or_else(|| today.clone(), |t| t.into_owned());
        match parse_day(&text) {
            Some(at) => Some((text, at)),
            None => {
                fields.insert(name.into(), "must be a date like 2026-12-01".into());
                None
            }
        }
    };
    let (from, to) = (day("from"), day("to"));
    let (Some((from, from_at)), Some((to, to_at))) = (from, to) else {
        return Err(AdminError::Invalid(fields));
    };
    let span = to_at
        .duration_since(from_at)
        .map_err(|_| AdminError::field("to", "must not be before from"))?;
    if span > Duration::from_secs(MAX_DAYS * 86_400) {
        return Err(AdminError::field(
            "to",
            format!("must be at most {MAX_DAYS} days after from"),
        ));
    }
    let counts = gw.usage.of(&gw.storages, org, &from, &to).await?;
    let rows: Vec<Value> = counts
        .iter()
        .map(|c| {
            json!({"storage": c.storage, "day": c.day, "requests": c.requests, "bytes": c.bytes,
                   "upstream_bytes": c.upstream_bytes})
        })
        .collect();
    Ok(answer(
        StatusCode::OK,
        json!({"organization": org, "from": from, "to": to, "usage": rows}),
    ))
}

/// `GET /admin/v1/orgs/{org}/limits`.
pub fn read_limits(gw: &Gateway, org: &str) -> Reply {
    check_org(org)?;
    let limits = gw.storages.limits(org);
    let source = match (&limits, gw.storages.limits_in_config(org)) {
        (None, _) => Value::Null,
        (Some(_), true) => json!("config"),
        (Some(_), false) => json!("api"),
    };
    let shown = limits.map_or(json!({}), |l| serde_json::to_value(&*l).expect("limits serialize"));
    Ok(answer(
        StatusCode::OK,
        json!({"organization": org, "limits": shown["limits"], "labeler_limits": shown["labeler_limits"], "source": source}),
    ))
}

/// `PUT /admin/v1/orgs/{org}/limits` with `{"limits"?, "labeler_limits"?}`: replaces the
/// org's limits (an empty object removes them).
pub async fn put_limits(gw: &Gateway, org: &str, body: &Value) -> Result<super::Answer, AdminError> {
    check_org(org)?;
    // serde would take a list for a table of limits, its values by position.
    for name in ["limits", "labeler_limits"] {
        if body.get(name).is_some_and(|v| !v.is_object() && !v.is_null()) {
            return Err(AdminError::field(
                name,
                "must be {\"requests_per_second\", \"burst\", \"concurrent_streams\"} or null",
            ));
        }
    }
    let parsed: OrgLimits = serde_json::from_value(whole_numbers(body)).map_err(|e| {
        AdminError::field(
            "body",
            format!("must be {{\"limits\": {{...}}, \"labeler_limits\": {{...}}}} with requests_per_second, burst and concurrent_streams: {e}"),
        )
    })?;
    let mut fields = Fields::new();
    for (name, limit) in [("limits", &parsed.limits), ("labeler_limits", &parsed.labeler_limits)] {
        for (key, problem) in limit.iter().flat_map(|l| l.problems()) {
            fields.insert(format!("{name}.{key}"), problem.into());
        }
    }
    if !fields.is_empty() {
        return Err(AdminError::Invalid(fields));
    }
    let stored = (parsed.limits.is_some() || parsed.labeler_limits.is_some()).then_some(parsed);
    gw.storages.set_limits(org, stored).await?;
    tracing::info!(org, "limits changed");
    read_limits(gw, org)
}

/// `value` with every number that is a whole number written with a fraction (`200.0`, as
/// some JSON writers send integers) made an integer, as JSON Schema counts it.
fn whole_numbers(value: &Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&f) => Value::from(f as u32),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), whole_numbers(v))).collect()),
        other => other.clone(),
    }
}

/// `DELETE /admin/v1/orgs/{org}/cache`, with an optional body `{"storage", "bucket",
/// "prefix"}`: drops the matching entries of this replica's edge cache (README, "Edge
/// cache") and says how many objects that was; with a shared registry, stores the purge so
/// that every other replica applies it too (503 when it cannot be stored: try again).
pub async fn purge_cache(gw: &Gateway, org: &str, body: &Value) -> Result<super::Answer, AdminError> {
    check_org(org)?;
    let mut fields = Fields::new();
    let Some(object) = body.as_object() else {
        return Err(AdminError::field("body", "must be a JSON object"));
    };
    for name in object.keys() {
        if !matches!(name.as_str(), "storage" | "bucket" | "prefix") {
            fields.insert(
                name.clone(),
                "is not a field of a purge: storage, bucket or prefix".into(),
            );
        }
    }
    let mut text = |name: &str| match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            fields.insert(name.into(), "must be a string".into());
            None
        }
    };
    let purge = crate::cache::Purge {
        org: org.to_string(),
        storage: text("storage"),
        bucket: text("bucket"),
        prefix: text("prefix"),
    };
    if let Some(Err(why)) = purge.storage.as_deref().map(crate::storage::rules::check_id) {
        fields.insert("storage".into(), why);
    }
    for (name, value, most) in [("bucket", &purge.bucket, 255), ("prefix", &purge.prefix, 1024)] {
        if value.as_ref().is_some_and(|v| v.len() > most) {
            fields.insert(name.into(), format!("must be at most {most} bytes"));
        }
    }
    if !fields.is_empty() {
        return Err(AdminError::Invalid(fields));
    }
    let purged = match gw.cache.as_ref() {
        Some(cache) => cache.purge(&purge).await,
        None => 0,
    };
    gw.storages.purge_everywhere(&purge).await?;
    tracing::info!(org, purged, "edge cache purged");
    Ok(answer(
        StatusCode::ACCEPTED,
        json!({ "organization": org, "purged": purged }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_dates_and_nothing_else() {
        assert!(parse_day("2026-12-01").is_some());
        assert!(parse_day("2024-02-29").is_some());
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-1-01",
            "20261201",
            "2026-12-01T00",
            "",
            "abcd-ef-gh",
        ] {
            assert!(parse_day(bad).is_none(), "{bad}");
        }
        assert_eq!(day_of(parse_day("2026-12-01").unwrap()), "2026-12-01");
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_are_integers() {
        let body = json!({"limits": {"burst": 2000.0, "requests_per_second": 50, "concurrent_streams": 1.5},
                          "labeler_limits": {"burst": -3.0, "requests_per_second": 5e9}});
        assert_eq!(
            whole_numbers(&body),
            json!({"limits": {"burst": 2000, "requests_per_second": 50, "concurrent_streams": 1.5},
                   "labeler_limits": {"burst": -3.0, "requests_per_second": 5e9}})
        );
        let parsed: OrgLimits = serde_json::from_value(whole_numbers(&json!({"limits": {"burst": 33786.0}}))).unwrap();
        assert_eq!(parsed.limits.unwrap().burst, Some(33786));
    }
}

//! The storage routes of the admin API: list, create, read, update, delete, validate. Reads
//! carry the storage's `ETag`; `If-Match` on PATCH and DELETE makes them conditional (412
//! `precondition_failed` when the storage changed since). Without `If-Match`, an update that
//! raced another change reads the storage again and applies to the new version.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{answer, check_org, json_body, view, AdminError, Answer, Reply};
use crate::registry::{RegistryError, Source, StorageEntry};
use crate::route::query_param;
use crate::storage::{self, Context, Provider, Storage, Style};
use crate::Gateway;

/// How often an unconditional update retries after racing another change.
const RACES: usize = 3;

/// What a storage route gets of its request.
pub struct Call<'a> {
    pub method: &'a Method,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// `If-Match` (RFC 9110 §13.1.1): `*` or a list of entity tags, compared strongly.
#[derive(Debug, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// The request's `If-Match`, if it has one.
    pub fn of(headers: &HeaderMap) -> Option<IfMatch> {
        let values: Vec<&str> = headers
            .get_all(header::IF_MATCH)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        if values.is_empty() {
            return None;
        }
        let tags: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        Some(if tags.iter().any(|t| t == "*") {
            IfMatch::Any
        } else {
            IfMatch::Tags(tags)
        })
    }

    /// Whether the current `etag` satisfies it (a weak tag never does).
    pub fn matches(&self, etag: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

fn with_etag(status: StatusCode, org: &str, entry: &StorageEntry) -> Answer {
    Answer {
        etag: Some(entry.etag()),
        ..answer(status, json!({ "storage": view::storage(org, entry) }))
    }
}

pub fn list(gw: &Gateway, org: &str, query: Option<&str>) -> Reply {
    let number = |name: &str, default: usize| -> Result<usize, AdminError> {
        match query_param(query, name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| AdminError::field(name, "must be a positive whole number")),
        }
    };
    let (page, limit) = (number("page", 1)?, number("limit", 10)?);
    if !(1..=100).contains(&limit) {
        return Err(AdminError::field("limit", "must be within 1..100"));
    }
    let Some(skip) = page.checked_sub(1).and_then(|p| p.checked_mul(limit)) else {
        return Err(AdminError::field(
            "page",
            "must be at least 1, and page × limit a number of storages",
        ));
    };
    let (total, storages) = match gw.storages.org(org) {
        None => (0, Vec::new()),
        Some(o) => {
            let all = o.storages();
            let page: Vec<Value> = all
                .iter()
                .skip(skip)
                .take(limit)
                .map(|e| view::storage(org, e))
                .collect();
            (all.len(), page)
        }
    };
    Ok(answer(
        StatusCode::OK,
        json!({ "storages": storages, "total": total, "page": page, "limit": limit }),
    ))
}

/// The org's external ID when the body gives a role (a role always uses it).
async fn external_id_for(gw: &Gateway, org: &str, body: &Value) -> Result<Option<String>, AdminError> {
    if !storage::providers::s3::mentions_role(body) {
        return Ok(None);
    }
    Ok(Some(gw.storages.external_id(org).await?))
}

/// An endpoint given through the API must not reach the gateway's own network, and must
/// use TLS unless the operator allowed its host.
async fn check_endpoint(gw: &Gateway, endpoint: Option<&crate::upstream::Endpoint>) -> Result<(), AdminError> {
    let Some(endpoint) = endpoint else { return Ok(()) };
    gw.upstream
        .policy()
        .check(endpoint)
        .await
        .map_err(|m| AdminError::field("endpoint", m))
}

/// A service account key's `token_uri` is Google's, or one the operator allows like an
/// endpoint (README "Tokens of the gateway's own identity stay in their cloud"): the gateway posts a signed assertion there.
async fn check_token_uri(gw: &Gateway, storage: &Storage) -> Result<(), AdminError> {
    let Provider::Gcs(gcs) = &storage.provider else {
        return Ok(());
    };
    let Some(uri) = gcs.token_uri() else { return Ok(()) };
    if uri == crate::credentials::google::GOOGLE_TOKEN_URI {
        return Ok(());
    }
    let problem = |m: String| AdminError::field("serviceAccountKey.token_uri", m);
    let endpoint = crate::upstream::Endpoint::parse_with_path(uri)
        .map(|(e, _)| e)
        .map_err(problem)?;
    gw.upstream.policy().check(&endpoint).await.map_err(problem)
}

/// How storages of the admin API are built for `org` (its external ID, if the body names a
/// role).
async fn built(gw: &Gateway, org: &str, body: &Value, current: Option<&Storage>) -> Result<Storage, AdminError> {
    let external_id = external_id_for(gw, org, body).await?;
    let cx = Context {
        style: Style::Api,
        org_external_id: external_id.as_deref(),
        entra_app: gw.has_entra_app(),
        destinations: gw.credentials.destinations(),
    };
    let storage = match current {
        None => storage::build(body, &cx),
        Some(current) => storage::update(current, body, &cx),
    }
    .map_err(AdminError::Invalid)?;
    check_token_uri(gw, &storage).await?;
    Ok(storage)
}

pub async fn create(gw: &Gateway, org: &str, body: &Value) -> Reply {
    check_org(org)?;
    gw.storages.writable()?;
    let storage = built(gw, org, body, None).await?;
    check_endpoint(gw, storage.endpoint.as_ref()).await?;
    let entry = gw.storages.create(org, storage).await?;
    tracing::info!(org, storage = %entry.storage.id, "storage created");
    Ok(with_etag(StatusCode::CREATED, org, &entry))
}

/// The storage served as `id` of `org`.
fn served(gw: &Gateway, org: &str, id: &str) -> Result<std::sync::Arc<StorageEntry>, AdminError> {
    gw.storages
        .org(org)
        .and_then(|o| o.storage(id).cloned())
        .ok_or(AdminError::NotFound("no such storage"))
}

/// The API storage to change: 404, 409 `read_only` for a config one, 412 for a stale
/// `If-Match`.
fn changeable(
    gw: &Gateway,
    org: &str,
    id: &str,
    if_match: Option<&IfMatch>,
) -> Result<std::sync::Arc<StorageEntry>, AdminError> {
    let entry = served(gw, org, id)?;
    if entry.source == Source::Config {
        return Err(RegistryError::ReadOnly(format!("storage `{id}`")).into());
    }
    if if_match.is_some_and(|m| !m.matches(&entry.etag())) {
        return Err(AdminError::Stale);
    }
    Ok(entry)
}

pub fn read(gw: &Gateway, org: &str, id: &str) -> Reply {
    let entry = served(gw, org, id)?;
    Ok(with_etag(StatusCode::OK, org, &entry))
}

pub async fn update(gw: &Gateway, org: &str, id: &str, call: &Call<'_>) -> Reply {
    let body = json_body(call.body)?;
    let if_match = IfMatch::of(call.headers);
    for _ in 0..RACES {
        let before = changeable(gw, org, id, if_match.as_ref())?;
        let storage = built(gw, org, &body, Some(&before.storage)).await?;
        // The endpoint that will be used is the one checked, however the body wrote it.
        if storage.endpoint != before.storage.endpoint {
            check_endpoint(gw, storage.endpoint.as_ref()).await?;
        }
        match gw.storages.replace(org, id, before.version, storage).await {
            Ok(entry) => {
                // Rotated roles or external IDs must never reuse old temporary credentials.
                gw.credentials.invalidate(&before.credentials).await;
                tracing::info!(org, storage = id, "storage updated");
                return Ok(with_etag(StatusCode::OK, org, &entry));
            }
            Err(RegistryError::Changed(_)) if if_match.is_none() => gw.storages.refresh(org, id).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AdminError::KeptChanging("this update was applied"))
}

pub async fn delete(gw: &Gateway, org: &str, id: &str, call: &Call<'_>) -> Reply {
    let if_match = IfMatch::of(call.headers);
    if if_match.is_none() && gw.storages.delete_unreadable(org, id).await? {
        return Ok(answer(StatusCode::OK, json!({ "deleted": id })));
    }
    for _ in 0..RACES {
        let before = changeable(gw, org, id, if_match.as_ref())?;
        match gw.storages.delete(org, id, Some(before.version)).await {
            Ok(()) => {
                gw.credentials.invalidate(&before.credentials).await;
                tracing::info!(org, storage = id, "storage deleted");
                return Ok(answer(StatusCode::OK, json!({ "deleted": id })));
            }
            Err(RegistryError::Changed(_)) if if_match.is_none() => gw.storages.refresh(org, id).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AdminError::KeptChanging("it was deleted"))
}

pub async fn validate(gw: &Gateway, org: &str, id: &str, body: &[u8]) -> Reply {
    let body = json_body(body)?;
    let object = match body.get("object") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(AdminError::field("object", "must be \"bucket/key\""));
        }
    };
    let entry = served(gw, org, id)?;
    let report = crate::admin::validate::run(gw, org, &entry, object.as_deref()).await;
    Ok(answer(
        StatusCode::OK,
        serde_json::to_value(report).expect("reports serialize"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_MATCH, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn if_match_takes_star_or_a_list_of_strong_tags() {
        assert_eq!(IfMatch::of(&HeaderMap::new()), None);
        assert_eq!(IfMatch::of(&headers(&["*"])), Some(IfMatch::Any));
        let m = IfMatch::of(&headers(&["\"a\", \"b\"", "\"c\""])).unwrap();
        assert!(m.matches("\"b\"") && m.matches("\"c\"") && !m.matches("\"d\""));
        assert!(!IfMatch::of(&headers(&["W/\"a\""])).unwrap().matches("\"a\""));
        assert!(IfMatch::Any.matches("\"x\""));
    }
}

//! The admin API (README "Admin API") on the admin listener: storages per org, validation, external IDs
//! and token minting, behind a bearer token compared in constant time. Responses use the
//! envelope `{"status":"success","data":…}` / `{"status":"error","error":{code,message,fields}}`.

mod error;
mod orgs;
mod storages;
pub mod validate;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::body::{self, Body};
use crate::route::decode;
use crate::storage::Fields;
use crate::{token, Gateway};
pub use error::AdminError;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Time a client gets to send a request body: the listener's timeouts stop at the head.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Default lifetime of minted tokens.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// A successful answer: status, `data`, and the `ETag` of the storage it shows.
struct Answer {
    status: StatusCode,
    data: Value,
    etag: Option<String>,
}

fn answer(status: StatusCode, data: Value) -> Answer {
    Answer {
        status,
        data,
        etag: None,
    }
}

type Reply = Result<Answer, AdminError>;

/// Serves one admin request.
pub async fn handle(gw: Arc<Gateway>, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    match path.as_str() {
        "/healthz" => return health(StatusCode::OK, json!({ "status": "ok" })),
        "/readyz" => {
            let (status, body) = gw.readiness();
            return health(status, body);
        }
        "/metrics" => return metrics(&gw),
        _ => {}
    }
    let result = match authorize(&gw, &parts.headers) {
        Err(e) => Err(e),
        Ok(()) => {
            let body = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(_)) => return respond(Err(AdminError::TooLarge), true),
                Err(_) => return respond(Err(AdminError::BodyTimeout), true),
            };
            if path == OPENAPI_PATH {
                return openapi(&parts.method);
            }
            let request = storages::Call {
                method: &parts.method,
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &body,
            };
            route(&gw, &path, &request).await
        }
    };
    respond(result, true)
}

/// `Authorization: Bearer <admin token>`, compared in constant time (on SHA-256 digests, so
/// that not even the length leaks).
fn authorize(gw: &Gateway, headers: &http::HeaderMap) -> Result<(), AdminError> {
    let unauthorized = AdminError::Unauthorized;
    let policy = gw.policy.load();
    let Some(expected) = &policy.admin_token else {
        return Err(unauthorized(
            "the admin API is disabled: the operator has not set [admin].token",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(token::bearer)
        .ok_or_else(|| unauthorized("send Authorization: Bearer <admin token>"))?;
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.trim().as_bytes());
    if bool::from(digest(given).as_ref().ct_eq(digest(expected.expose()).as_ref())) {
        Ok(())
    } else {
        Err(unauthorized("the admin token is wrong"))
    }
}

async fn route(gw: &Gateway, path: &str, call: &storages::Call<'_>) -> Reply {
    let rest = path
        .strip_prefix("/admin/v1/orgs/")
        .ok_or(AdminError::NotFound("no such admin route"))?;
    let segments: Vec<String> = rest
        .split('/')
        .map(decode)
        .collect::<Result<_, _>>()
        .map_err(|_| AdminError::BadRequest("the path is not validly percent-encoded"))?;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Every route names an org first, checked like a created org id before anything is read
    // or stored for it.
    if let Some(org) = seg.first() {
        check_org(org)?;
    }
    let method = call.method;
    match (method, seg.as_slice()) {
        (&Method::GET, [org, "storages"]) => storages::list(gw, org, call.query),
        (&Method::POST, [org, "storages"]) => storages::create(gw, org, &json_body(call.body)?).await,
        (&Method::GET, [org, "storages", id]) => storages::read(gw, org, id),
        (&Method::PATCH, [org, "storages", id]) => storages::update(gw, org, id, call).await,
        (&Method::DELETE, [org, "storages", id]) => storages::delete(gw, org, id, call).await,
        (&Method::POST, [org, "storages", id, "validate"]) => storages::validate(gw, org, id, call.body).await,
        (&Method::GET, [org, "external-id"]) => Ok(answer(
            StatusCode::OK,
            json!({ "externalId": gw.storages.external_id(org).await?, "organization": org }),
        )),
        (&Method::POST, [org, "tokens"]) => mint(gw, org, &json_body(call.body)?),
        (&Method::GET, [org, "usage"]) => orgs::usage(gw, org, call.query).await,
        (&Method::GET, [org, "limits"]) => orgs::read_limits(gw, org),
        (&Method::PUT, [_, "limits"]) if call.body.is_empty() => Err(AdminError::field(
            "body",
            "is required: {\"limits\": {...}, \"labeler_limits\": {...}}, or {} to remove them",
        )),
        (&Method::PUT, [org, "limits"]) => orgs::put_limits(gw, org, &json_body(call.body)?).await,
        (&Method::DELETE, [org, "cache"]) => orgs::purge_cache(gw, org, &json_body(call.body)?).await,
        (_, path) => match allowed(path) {
            Some(allow) => Err(AdminError::MethodNotAllowed {
                method: method.to_string(),
                allow,
            }),
            None => Err(AdminError::NotFound("no such admin route")),
        },
    }
}

/// The methods a route takes (its `Allow`), or `None` for no route.
fn allowed(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        [_, "storages"] => "GET, POST",
        [_, "storages", _] => "GET, PATCH, DELETE",
        [_, "storages", _, "validate"] | [_, "tokens"] => "POST",
        [_, "external-id"] | [_, "usage"] => "GET",
        [_, "limits"] => "GET, PUT",
        [_, "cache"] => "DELETE",
        _ => return None,
    })
}

/// A request body: a JSON object (an empty body is `{}`), free of control characters.
fn json_body(body: &[u8]) -> Result<Value, AdminError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| AdminError::field("body", format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(AdminError::field("body", "must be a JSON object"));
    }
    match control_character(&value, "") {
        Some(field) => Err(AdminError::field(
            &field,
            "must not contain control characters (NUL, line breaks, ...)",
        )),
        None => Ok(value),
    }
}

/// Fields whose text is a key file or a PEM key, where line breaks and tabs belong.
const MULTILINE: [&str; 4] = ["private_key", "serviceAccountKey", "service_account_key", "keyJson"];

/// The first field (dotted path) whose name or string value holds a control character
/// (C0, DEL or C1): no id, name or secret has one, and a database refuses NUL. Only a key
/// file or a PEM key may hold line breaks and tabs.
fn control_character(value: &Value, at: &str) -> Option<String> {
    let name = at.rsplit(['.', '[']).next().unwrap_or("");
    let multiline = MULTILINE.contains(&name);
    let bad = |s: &str| {
        s.chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    };
    let path = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    match value {
        Value::String(s) if bad(s) => Some(if at.is_empty() { "body".into() } else { at.into() }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| control_character(v, &format!("{}[{i}]", if at.is_empty() { "body" } else { at }))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.chars().any(char::is_control) {
                Some(path(&k.escape_debug().to_string()))
            } else {
                control_character(v, &path(k))
            }
        }),
        _ => None,
    }
}

fn check_org(org: &str) -> Result<(), AdminError> {
    crate::storage::rules::check_id(org).map_err(|m| AdminError::field("organization", m))
}

fn mint(gw: &Gateway, org: &str, body: &Value) -> Reply {
    check_org(org)?;
    let mut fields = Fields::new();
    let text = |name: &str, fields: &mut Fields| match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            fields.insert(name.into(), "must be a string".into());
            None
        }
    };
    let storage = text("storage", &mut fields);
    let prefix = text("prefix", &mut fields);
    let sub = text("sub", &mut fields);
    let ttl = match text("ttl", &mut fields) {
        None => DEFAULT_TOKEN_TTL,
        Some(t) => humantime::parse_duration(&t).unwrap_or_else(|_| {
            fields.insert("ttl".into(), "must be a duration like \"15m\" or \"1h\"".into());
            DEFAULT_TOKEN_TTL
        }),
    };
    let policy = gw.policy.load();
    if let Some(problem) = token::sub_problem(sub.as_deref(), policy.auth.require_sub) {
        fields.insert("sub".into(), problem.into());
    }
    if let Some(problem) = token::ttl_problem(ttl, policy.auth.max_ttl) {
        fields.insert("ttl".into(), problem);
    }
    if !fields.is_empty() {
        return Err(AdminError::Invalid(fields));
    }
    let key = policy.auth.keys.first().ok_or(AdminError::NoSigningKey)?;
    let claims = token::claims(org, storage.as_deref(), prefix.as_deref(), sub.as_deref(), ttl);
    let token = token::mint_claims(key, &claims);
    let expires = std::time::SystemTime::now() + ttl;
    Ok(answer(
        StatusCode::OK,
        json!({ "token": token, "expiresAt": humantime::format_rfc3339_seconds(expires).to_string() }),
    ))
}

/// Where the admin API's OpenAPI 3.1 document is served (behind the admin token).
const OPENAPI_PATH: &str = "/admin/v1/openapi.json";

/// The OpenAPI 3.1 document of this API, as kept in the repository (`src/admin/openapi.json`;
/// the gateway's tests check it against the routes here).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET` of the OpenAPI document, as it is (no envelope: tools read it).
fn openapi(method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let method = method.to_string();
        return respond(
            Err(AdminError::MethodNotAllowed {
                method,
                allow: "GET, HEAD",
            }),
            true,
        );
    }
    let mut response = Response::new(body::full(OPENAPI));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"status": ...}`, as on the data plane's health routes (no envelope: probes read it).
fn health(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(body::full(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Prometheus text, unauthenticated like the health routes: the admin listener is meant for
/// the internal network (loopback by default).
fn metrics(gw: &Gateway) -> Response<Body> {
    gw.metrics.registry_bad_rows.set(gw.storages.bad_rows() as i64);
    let mut response = Response::new(body::full(gw.metrics.encode()));
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

fn respond(result: Reply, no_store: bool) -> Response<Body> {
    let allow = match &result {
        Err(AdminError::MethodNotAllowed { allow, .. }) => Some(HeaderValue::from_static(allow)),
        _ => None,
    };
    let (status, value, etag) = match result {
        Ok(a) => (a.status, json!({ "status": "success", "data": a.data }), a.etag),
        Err(e) => {
            e.log();
            let mut error = json!({ "code": e.code(), "message": e.message() });
            if let Some(fields) = e.fields() {
                error["fields"] = json!(fields);
            }
            (e.status(), json!({ "status": "error", "error": error }), None)
        }
    };
    let mut response = Response::new(body::full(serde_json::to_vec(&value).expect("JSON values serialize")));
    *response.status_mut() = status;
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if no_store {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_by_field_anywhere_in_a_body() {
        let body = json!({"name": "ok", "credentials": {"secretAccessKey": "a\u{0}b"}});
        assert_eq!(
            control_character(&body, "").as_deref(),
            Some("credentials.secretAccessKey")
        );
        let body = json!({"buckets": ["fine", "bad\nname"]});
        assert_eq!(control_character(&body, "").as_deref(), Some("buckets[1]"));
        let body = json!({"na\u{7f}me": "x"});
        assert_eq!(control_character(&body, "").as_deref(), Some("na\\u{7f}me"));
        assert_eq!(
            control_character(&json!({"sub": "x\u{85}"}), "").as_deref(),
            Some("sub")
        );
        let fine = json!({"name": "Ünïcode 名前 ✓", "n": 1, "b": true, "x": null, "l": ["a"]});
        assert_eq!(control_character(&fine, ""), None);
        // A key file's PEM has line breaks, and so has a key file given as text; never a NUL.
        let key = json!({"serviceAccountKey": {"private_key": "-----BEGIN\nabc\r\n-----END\n"}});
        assert_eq!(control_character(&key, ""), None);
        let text = json!({"credentials": {"serviceAccountKey": "{\n  \"type\": \"service_account\"\n}"}});
        assert_eq!(control_character(&text, ""), None);
        let nul = json!({"serviceAccountKey": {"private_key": "-----BEGIN\u{0}"}});
        assert_eq!(
            control_character(&nul, "").as_deref(),
            Some("serviceAccountKey.private_key")
        );
        let elsewhere = json!({"serviceAccountKey": {"client_email": "a\nb"}});
        assert_eq!(
            control_character(&elsewhere, "").as_deref(),
            Some("serviceAccountKey.client_email")
        );
    }
}

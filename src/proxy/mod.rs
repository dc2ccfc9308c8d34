//! The request pipeline: route -> CORS -> token -> org and storage -> credentials -> sign ->
//! forward -> stream back. Every response, success or error, carries the request id and,
//! for an allowed origin, the CORS headers.

mod cached;
mod forward;
mod object;
pub mod report;
pub mod stream;

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::cors::{self, OriginCheck};
use crate::error::GatewayError;
use crate::gateway::{Gateway, Policy};
use crate::registry::StorageEntry;
use crate::route::{self, ObjectPath, Route};
use crate::telemetry;
use crate::telemetry::metrics::InFlight;
use report::{AccessLog, Outcome};

/// Where an object response came from (RFC 9211).
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

/// Per-request facts every response needs.
struct Exchange {
    /// The hot-reloadable settings (tokens, CORS, caching), read once for the request.
    policy: Arc<Policy>,
    /// The access log line, filled in as the request goes.
    log: AccessLog,
    /// What the request's `Origin` means for the response headers.
    cors: OriginCheck,
    /// The in-flight guard, until a streamed body takes it over (and with it the access log
    /// line, written when the body ends).
    in_flight: Option<InFlight>,
    /// What the edge cache did, for the `Cache-Status` header (RFC 9211); `None` when the
    /// request never reached it.
    cache_status: Option<&'static str>,
}

/// Serves one request. Never fails: errors become the JSON responses of README "Errors".
pub async fn handle<B>(gateway: Arc<Gateway>, request: Request<B>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    let request_id = telemetry::request_id(&parts.headers);
    let mut ex = Exchange {
        policy: gateway.policy.load_full(),
        log: AccessLog::new(request_id, parts.method.clone()),
        cors: OriginCheck::Absent,
        in_flight: Some(gateway.metrics.in_flight()),
        cache_status: None,
    };
    ex.log.client_ip = parts.extensions.get::<crate::server::Peer>().map(|peer| {
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        crate::audit::client_ip(peer.0.ip(), &forwarded, &gateway.trusted_proxies)
    });
    let route = route::parse(parts.uri.path());
    let label = match &route {
        Ok(Route::Object(_)) => "object",
        Ok(Route::Resolve(..)) => "resolve",
        Ok(Route::Health | Route::Ready) => "health",
        Err(_) => "other",
    };
    let result = match route {
        Ok(Route::Object(path)) => object::object(&gateway, &parts, Wanted::Object(path), &mut ex).await,
        Ok(Route::Resolve(org, storage)) => {
            let url = route::query_param(parts.uri.query(), "url")
                .unwrap_or_default()
                .into_owned();
            let wanted = Wanted::Resolve { org, storage, url };
            object::object(&gateway, &parts, wanted, &mut ex).await
        }
        Ok(Route::Health) => health(&parts.method, (StatusCode::OK, serde_json::json!({ "status": "ok" }))),
        Ok(Route::Ready) => health(&parts.method, gateway.readiness()),
        Err(err) => Err(err),
    };
    let mut response = match result {
        Ok(response) => response,
        Err(err) => error_response(&err, &mut ex),
    };
    gateway.metrics.request(label, response.status().as_u16());
    finish_headers(&gateway, &mut response, &mut ex);
    response
}

/// `/healthz` (always ok) and `/readyz` (see [`Gateway::readiness`]).
fn health(method: &Method, (status, body): (StatusCode, serde_json::Value)) -> Result<Response<Body>, GatewayError> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(GatewayError::MethodNotAllowed);
    }
    Ok(json_response(status, body::full(body.to_string())))
}

/// What a request asks for: an object by bucket and key, or by asset URL.
enum Wanted {
    Object(ObjectPath),
    Resolve { org: String, storage: String, url: String },
}

impl Wanted {
    fn org_and_storage(&self) -> (&str, &str) {
        match self {
            Wanted::Object(p) => (&p.org, &p.storage),
            Wanted::Resolve { org, storage, .. } => (org, storage),
        }
    }

    /// The object's path in `entry`'s storage: as routed, or as the asset URL names it.
    fn path(self, entry: &StorageEntry) -> Result<ObjectPath, GatewayError> {
        match self {
            Wanted::Object(path) => Ok(path),
            Wanted::Resolve { org, storage, url } => {
                if url.is_empty() {
                    return Err(GatewayError::InvalidRequest(
                        "the `url` query parameter is required".into(),
                    ));
                }
                let (bucket, key) = crate::storage::asset_url::locate(&entry.storage, &url)?;
                Ok(ObjectPath {
                    org,
                    storage,
                    bucket,
                    key,
                })
            }
        }
    }
}

/// 204 answer to a CORS preflight. Without `Origin` it is a plain OPTIONS: 204 with `Allow`.
fn preflight(parts: &Parts, check: &OriginCheck, policy: &Policy) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    match check {
        OriginCheck::Allowed(origin) => {
            let requested = parts.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
            *response.headers_mut() = cors::preflight_headers(origin, requested, policy.cors.max_age);
        }
        _ => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(cors::ALLOW_METHODS));
        }
    }
    response
}

fn error_response(err: &GatewayError, ex: &mut Exchange) -> Response<Body> {
    ex.log.error = Some(err.code());
    ex.log.side = Some(err.side().label());
    if let GatewayError::Internal(cause) = err {
        let request_id = ex.log.request_id.to_str().unwrap_or("");
        tracing::error!(request_id, cause = cause.as_str(), "internal error");
    }
    let request_id = ex.log.request_id.to_str().unwrap_or("");
    let mut response = json_response(err.status(), body::full(err.to_json(request_id)));
    if *err == GatewayError::MethodNotAllowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(cors::ALLOW_METHODS));
    }
    if let GatewayError::RateLimited { retry_after, .. } = err {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    response
}

fn json_response(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Request id, `nosniff` and CORS on every response; the access log for responses that are
/// not streamed (a streamed body writes its own line when it ends).
fn finish_headers(gw: &Gateway, response: &mut Response<Body>, ex: &mut Exchange) {
    let headers = response.headers_mut();
    headers.insert(telemetry::REQUEST_ID, ex.log.request_id.clone());
    // No browser may guess a type other than the one we send (a bucket's content must never
    // be sniffed into a page of our origin).
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(status) = ex.cache_status {
        headers.insert(CACHE_STATUS, HeaderValue::from_static(status));
    }
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS) {
        cors::apply_response_headers(headers, &ex.cors);
    }
    if let Some(side) = ex.log.side {
        gw.metrics.error(side);
    }
    if ex.in_flight.is_some() {
        ex.log.status = response.status().as_u16();
        let bytes = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
        gw.metrics.bytes_sent.inc_by(bytes);
        ex.log.finish(bytes, Outcome::Complete);
    }
}

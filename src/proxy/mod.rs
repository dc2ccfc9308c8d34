//! The request pipeline: route -> CORS -> token -> org and storage -> credentials -> sign ->
//! forward -> stream back. Every response, success or error, carries the request id and,
//! for an allowed origin, the CORS headers.

pub mod report;
pub mod stream;

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, Body};
use crate::conditional::{self, Validators, Verdict};
use crate::cors::{self, OriginCheck};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::registry::StorageEntry;
use crate::route::{self, ObjectPath, Route};
use crate::telemetry;
use crate::telemetry::metrics::InFlight;
use crate::token;
use crate::upstream;
use report::{AccessLog, Outcome};

/// Per-request facts every response needs.
struct Exchange {
    /// The access log line, filled in as the request goes.
    log: AccessLog,
    /// What the request's `Origin` means for the response headers.
    cors: OriginCheck,
    /// The in-flight guard, until a streamed body takes it over (and with it the access log
    /// line, written when the body ends).
    in_flight: Option<InFlight>,
}

/// Serves one request. Never fails: errors become SPEC §7 JSON responses.
pub async fn handle<B>(gateway: Arc<Gateway>, request: Request<B>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    let request_id = telemetry::request_id(&parts.headers);
    let mut ex = Exchange {
        log: AccessLog::new(request_id, parts.method.clone()),
        cors: OriginCheck::Absent,
        in_flight: Some(gateway.metrics.in_flight()),
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
        Ok(Route::Object(path)) => object(&gateway, &parts, Wanted::Object(path), &mut ex).await,
        Ok(Route::Resolve(org, storage)) => {
            let url = route::query_param(parts.uri.query(), "url").unwrap_or_default();
            object(&gateway, &parts, Wanted::Resolve { org, storage, url }, &mut ex).await
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
}

async fn object(
    gw: &Gateway,
    parts: &Parts,
    wanted: Wanted,
    ex: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let (org_id, storage_id) = wanted.org_and_storage();
    ex.log.org = Some(org_id.to_string());
    ex.log.storage = Some(storage_id.to_string());
    if parts.method != Method::OPTIONS {
        ex.log.range = parts
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| r.chars().take(100).collect());
        ex.log.report = Some(report::Report {
            audit: gw.audit.clone(),
            usage: gw.usage.clone(),
            counts: false,
        });
    }
    let org = gw.storages.org(org_id);
    let org_origins = org.as_ref().map_or(&[][..], |o| &o.cors_origins[..]);
    let policy = gw.policy.load();
    ex.cors = cors::check_origin(
        parts.headers.get(header::ORIGIN),
        &policy.cors.allowed_origins,
        org_origins,
    );
    if ex.cors == OriginCheck::Denied {
        return Err(GatewayError::OriginNotAllowed);
    }
    match parts.method {
        Method::OPTIONS => return Ok(preflight(gw, parts, &ex.cors)),
        Method::GET | Method::HEAD => {}
        _ => return Err(GatewayError::MethodNotAllowed),
    }
    let claims = authenticate(gw, parts).await?;
    ex.log.sub = claims.as_ref().and_then(|c| c.sub.clone());
    if let Some(claims) = &claims {
        if claims.org != org_id {
            return Err(GatewayError::TokenScope("organization"));
        }
        if claims.sto.as_deref().is_some_and(|s| s != storage_id) {
            return Err(GatewayError::TokenScope("storage"));
        }
    }
    let org = org.ok_or_else(|| GatewayError::UnknownOrg(org_id.to_string()))?;
    let entry = org
        .storage(storage_id)
        .ok_or_else(|| GatewayError::UnknownStorage(storage_id.to_string()))?;
    let path = match wanted {
        Wanted::Object(path) => path,
        Wanted::Resolve { org, storage, url } => {
            if url.is_empty() {
                return Err(GatewayError::InvalidRequest(
                    "the `url` query parameter is required".into(),
                ));
            }
            let (bucket, key) = crate::storage::asset_url::locate(&entry.storage, &url)?;
            ObjectPath {
                org,
                storage,
                bucket,
                key,
            }
        }
    };
    if let Some(report) = &mut ex.log.report {
        report.counts = true;
    }
    ex.log.bucket = Some(path.bucket.clone());
    ex.log.key = Some(path.key.clone());
    // Whatever the token: a server that resolves dot segments would read another bucket.
    if route::leaves_bucket(&path.key) {
        return Err(GatewayError::TokenScope("key: its dot segments leave the bucket"));
    }
    if let Some(claims) = &claims {
        token::check_scope(claims, &path.org, &path.storage, &path.bucket, &path.key)?;
    }
    if !entry.storage.buckets.contains(&path.bucket) {
        return Err(GatewayError::BucketNotAllowed(path.bucket.clone()));
    }
    let permits = match gw.storages.limits(&path.org) {
        Some(limits) => gw.limiter.admit(&path.org, ex.log.sub.as_deref(), &limits)?,
        None => Vec::new(),
    };
    gw.proofs
        .check(gw.proof_means(), &path.org, entry, &path.bucket)
        .await?;
    let mut upstream = match forward(gw, entry, &parts.method, &path, &parts.headers).await? {
        Forwarded::Passed(response) => response,
        Forwarded::Failed {
            status,
            error,
            content_range,
        } => {
            ex.log.upstream_status = Some(status.as_u16());
            let mut response = error_response(&error, ex);
            if let (StatusCode::RANGE_NOT_SATISFIABLE, Some(v)) = (response.status(), content_range) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let mut status = upstream.status();
    ex.log.upstream_status = Some(status.as_u16());
    match judge(&parts.headers, &upstream) {
        Verdict::Proceed => {}
        Verdict::PreconditionFailed => return Ok(error_response(&GatewayError::PreconditionFailed, ex)),
        Verdict::NotModified => status = StatusCode::NOT_MODIFIED,
    }
    let headers = upstream::response::client_headers(status, upstream.headers(), &policy.cache_control);
    ex.log.status = status.as_u16();
    if status == StatusCode::NOT_MODIFIED {
        let mut response = Response::new(body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let meter = stream::Meter {
        bytes: gw.metrics.bytes_sent.clone(),
        in_flight: ex.in_flight.take().unwrap_or_else(|| gw.metrics.in_flight()),
        permits,
        upstream: upstream.extensions_mut().remove::<upstream::UpstreamSlot>(),
    };
    let mut response = Response::new(stream::stream(
        upstream.into_body(),
        gw.idle_timeout,
        ex.log.clone(),
        meter,
    ));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The client's preconditions against what the bucket answered (RFC 9110 §13.2.2), whatever
/// the bucket made of them: a 200 or 206 may still become 304 or 412. The bucket's own 304
/// stands.
fn judge(client: &http::HeaderMap, upstream: &Response<Incoming>) -> Verdict {
    match upstream.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT if conditional::has_preconditions(client) => {
            conditional::evaluate(client, &Validators::of(upstream.headers()))
        }
        _ => Verdict::Proceed,
    }
}

/// What the bucket answered, once `If-Range` and stale credentials were dealt with.
enum Forwarded {
    /// 200, 206 or 304: the body is streamed to the client.
    Passed(Response<Incoming>),
    /// An error, already read and mapped.
    Failed {
        status: StatusCode,
        error: GatewayError,
        content_range: Option<HeaderValue>,
    },
}

/// Signs and sends the request. A storage with temporary credentials (AssumeRole, an OAuth
/// token) that the bucket calls expired or invalid gets fresh ones and one more try.
async fn forward(
    gw: &Gateway,
    entry: &StorageEntry,
    method: &Method,
    path: &ObjectPath,
    client_headers: &http::HeaderMap,
) -> Result<Forwarded, GatewayError> {
    let mut headers = upstream::forwarded_headers(client_headers);
    let if_range = upstream::emulate_if_range(&mut headers);
    let mut refreshed = false;
    loop {
        let auth = gw.credentials.authorize(&entry.credentials).await?;
        let target = crate::storage::request::Target {
            storage: &entry.storage,
            trust: entry.trust(),
            auth: &auth,
            method,
            bucket: &path.bucket,
            key: &path.key,
        };
        let started = std::time::Instant::now();
        let mut response = target.fetch(&gw.upstream, headers.clone()).await?;
        gw.metrics.upstream_latency.observe(started.elapsed().as_secs_f64());
        // `If-Range` did not hold: the whole object, never the bytes of another version. The
        // bucket said so (412 to the `If-Match` it became), or ignored it and sent a 206 of
        // a version the client did not name.
        let changed = match response.status() {
            StatusCode::PRECONDITION_FAILED => if_range,
            StatusCode::PARTIAL_CONTENT if client_headers.contains_key(http::header::IF_RANGE) => {
                !conditional::if_range_holds(client_headers, &Validators::of(response.headers()))
            }
            _ => false,
        };
        if changed {
            drop(response);
            response = target.fetch(&gw.upstream, upstream::without_range(&headers)).await?;
        }
        let status = response.status();
        if let Some(size) = upstream::response::empty_partial(&response) {
            return Ok(Forwarded::Failed {
                status,
                error: GatewayError::RangeNotSatisfiable,
                content_range: size.and_then(|s| HeaderValue::from_str(&format!("bytes */{s}")).ok()),
            });
        }
        if upstream::response::is_passed_status(status) {
            return Ok(Forwarded::Passed(response));
        }
        let content_range = response.headers().get(header::CONTENT_RANGE).cloned();
        let error = crate::storage::request::read_error(&entry.storage, response).await;
        let stale = entry.credentials.is_temporary() && entry.storage.backend().stale_credentials(&error);
        if !refreshed && stale {
            tracing::info!(storage = %entry.storage.id, "the bucket refused temporary credentials; refreshing once");
            gw.credentials.invalidate(&entry.credentials).await;
            refreshed = true;
            continue;
        }
        return Ok(Forwarded::Failed {
            status,
            error,
            content_range,
        });
    }
}

/// The labeler's token claims; `None` only when anonymous access is on and none was sent.
async fn authenticate(gw: &Gateway, parts: &Parts) -> Result<Option<token::Claims>, GatewayError> {
    match token::extract(&parts.headers, parts.uri.query())? {
        Some(t) => {
            let policy = gw.policy.load_full();
            policy.tokens.verify(&t, gw.jwks.as_deref()).await.map(Some)
        }
        None if gw.policy.load().tokens.allow_anonymous => Ok(None),
        None => Err(GatewayError::MissingToken),
    }
}

/// 204 answer to a CORS preflight. Without `Origin` it is a plain OPTIONS: 204 with `Allow`.
fn preflight(gw: &Gateway, parts: &Parts, check: &OriginCheck) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    match check {
        OriginCheck::Allowed(origin) => {
            let requested = parts.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
            *response.headers_mut() = cors::preflight_headers(origin, requested, gw.policy.load().cors.max_age);
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
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS) {
        cors::apply_response_headers(headers, &ex.cors);
    }
    if ex.in_flight.is_some() {
        ex.log.status = response.status().as_u16();
        let bytes = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
        gw.metrics.bytes_sent.inc_by(bytes);
        ex.log.finish(bytes, Outcome::Complete);
    }
}

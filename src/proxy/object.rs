//! An object request, step by step, in the order of the README's "Labeler tokens" section (so
//! that a caller learns nothing about orgs its token does not cover): admit (origin, method),
//! authenticate (token, org and storage claims), locate (org, storage, bucket and key, prefix
//! claim), limit, prove ownership, forward, stream back.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;

use super::forward::{forward, judge, Forwarded};
use super::{cached, error_response, preflight, report, stream, Exchange, Wanted};
use crate::body::{self, Body};
use crate::conditional::Verdict;
use crate::cors::{self, OriginCheck};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::limits::StreamPermit;
use crate::registry::{OrgEntry, StorageEntry};
use crate::route::{self, ObjectPath};
use crate::token::{self, Claims};
use crate::upstream;

/// Serves an object request (or its preflight).
pub(super) async fn object(
    gw: &Arc<Gateway>,
    parts: &Parts,
    wanted: Wanted,
    ex: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let org = admit(gw, parts, &wanted, ex)?;
    if parts.method == Method::OPTIONS {
        return Ok(preflight(parts, &ex.cors, &ex.policy));
    }
    let claims = authenticate(gw, parts, &wanted, ex).await?;
    let (entry, path) = locate(org, wanted, claims.as_deref(), ex)?;
    let mut permits = limit(gw, &path, ex)?;
    gw.proofs
        .check(gw.proof_means(), &path.org, &entry, &path.bucket)
        .await?;
    if let Some(response) = cached::serve(gw, &entry, parts, &path, ex, &mut permits).await {
        return Ok(response);
    }
    match forward(gw, &entry, &parts.method, &path, &parts.headers).await? {
        Forwarded::Passed(upstream) => Ok(stream_back(gw, parts, ex, upstream, permits)),
        Forwarded::Failed {
            status,
            error,
            content_range,
        } => Ok(refused(&error, Some(status), content_range, ex)),
    }
}

/// The answer to a refused request: the error's JSON, and for a 416 the object's size as
/// the bucket gave it (`Content-Range: bytes */size`).
pub(super) fn refused(
    error: &GatewayError,
    upstream_status: Option<StatusCode>,
    content_range: Option<HeaderValue>,
    ex: &mut Exchange,
) -> Response<Body> {
    ex.log.upstream_status = upstream_status.map(|s| s.as_u16());
    let mut response = error_response(error, ex);
    if let (StatusCode::RANGE_NOT_SATISFIABLE, Some(v)) = (response.status(), content_range) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// The request's org and storage go into the access log (and, for a GET or HEAD, the report
/// that ends in usage and the audit trail); the `Origin` must be allowed for the org, and the
/// method one of GET, HEAD and OPTIONS. Returns the org, if it exists.
fn admit(
    gw: &Gateway,
    parts: &Parts,
    wanted: &Wanted,
    ex: &mut Exchange,
) -> Result<Option<Arc<OrgEntry>>, GatewayError> {
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
    let allowed = &ex.policy.cors.allowed_origins;
    ex.cors = cors::check_origin(parts.headers.get(header::ORIGIN), allowed, org_origins);
    if ex.cors == OriginCheck::Denied {
        return Err(GatewayError::OriginNotAllowed);
    }
    match parts.method {
        Method::OPTIONS | Method::GET | Method::HEAD => Ok(org),
        _ => Err(GatewayError::MethodNotAllowed),
    }
}

/// The labeler's token claims, which must cover the org and the storage; `None` only when
/// anonymous access is on and no token was sent.
async fn authenticate(
    gw: &Gateway,
    parts: &Parts,
    wanted: &Wanted,
    ex: &mut Exchange,
) -> Result<Option<Arc<Claims>>, GatewayError> {
    let claims = match token::extract(&parts.headers, parts.uri.query())? {
        Some(t) => ex.policy.tokens.verify(&t, gw.jwks.as_deref()).await?,
        None if ex.policy.tokens.allow_anonymous => return Ok(None),
        None => return Err(GatewayError::MissingToken),
    };
    ex.log.sub = claims.sub.clone();
    let (org, storage) = wanted.org_and_storage();
    token::check_storage_scope(&claims, org, storage)?;
    Ok(Some(claims))
}

/// The storage, and the bucket and key asked for (an asset URL's, for `/resolve`): the org
/// and the storage must exist, the key stay inside its bucket, the token's prefix cover it,
/// and the bucket be one of the storage's.
fn locate(
    org: Option<Arc<OrgEntry>>,
    wanted: Wanted,
    claims: Option<&Claims>,
    ex: &mut Exchange,
) -> Result<(Arc<StorageEntry>, ObjectPath), GatewayError> {
    let (org_id, storage_id) = wanted.org_and_storage();
    let org = org.ok_or_else(|| GatewayError::UnknownOrg(org_id.to_string()))?;
    let entry = org
        .storage(storage_id)
        .cloned()
        .ok_or_else(|| GatewayError::UnknownStorage(storage_id.to_string()))?;
    let path = wanted.path(&entry)?;
    if let Some(report) = &mut ex.log.report {
        report.counts = true;
    }
    ex.log.bucket = Some(path.bucket.clone());
    ex.log.key = Some(path.key.clone());
    // Whatever the token: a server that resolves dot segments would read another bucket.
    if route::leaves_bucket(&path.key) {
        return Err(GatewayError::TokenScope("key: its dot segments leave the bucket"));
    }
    if let Some(claims) = claims {
        token::check_object_scope(claims, &path.bucket, &path.key)?;
    }
    if !entry.storage.buckets.contains(&path.bucket) {
        return Err(GatewayError::BucketNotAllowed(path.bucket.clone()));
    }
    Ok((entry, path))
}

/// The org's and the labeler's limits, before the bucket is asked: 429, or the permits of the
/// concurrent streams the response counts against.
fn limit(gw: &Gateway, path: &ObjectPath, ex: &Exchange) -> Result<Vec<StreamPermit>, GatewayError> {
    match gw.storages.limits(&path.org) {
        Some(limits) => gw.limiter.admit(&path.org, ex.log.sub.as_deref(), &limits),
        None => Ok(Vec::new()),
    }
}

/// The bucket's answer to the client: its status (or 304 and 412 as the client's
/// preconditions say), the headers of the response policy, and the body streamed as it
/// arrives, holding the stream's permits and its place among the upstream requests.
fn stream_back(
    gw: &Gateway,
    parts: &Parts,
    ex: &mut Exchange,
    mut upstream: Response<Incoming>,
    permits: Vec<StreamPermit>,
) -> Response<Body> {
    let mut status = upstream.status();
    ex.log.upstream_status = Some(status.as_u16());
    match judge(&parts.headers, &upstream) {
        Verdict::Proceed => {}
        Verdict::PreconditionFailed => return error_response(&GatewayError::PreconditionFailed, ex),
        Verdict::NotModified => status = StatusCode::NOT_MODIFIED,
    }
    let headers = upstream::response::client_headers(status, upstream.headers(), &ex.policy.cache_control);
    ex.log.status = status.as_u16();
    ex.log.from_bucket = true;
    let body = if status == StatusCode::NOT_MODIFIED {
        body::empty()
    } else {
        let meter = stream::Meter {
            bytes: gw.metrics.bytes_sent.clone(),
            in_flight: ex.in_flight.take().unwrap_or_else(|| gw.metrics.in_flight()),
            permits,
            upstream: upstream.extensions_mut().remove::<upstream::UpstreamSlot>(),
        };
        stream::stream(upstream.into_body(), gw.idle_timeout, ex.log.hand_over(), meter)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

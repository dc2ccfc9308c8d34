//! An object request through the edge cache (README, "Edge cache"), once every check of
//! the request has passed: an entry confirmed with the bucket (or fresh by the configured
//! duration), the client's preconditions and range answered against it, and its bytes sent
//! slice after slice: from the cache, or fetched once for every request that needs them.
//! Whatever the cache cannot answer faithfully goes to the bucket as without a cache.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::forward::{forward, Forwarded};
use super::{error_response, stream, Exchange};
use crate::body::{self, Body};
use crate::cache::plan::{self, status, Part};
use crate::cache::{FetchError, Fetched, Fetcher, Lookup, Meta, ObjectCache, ObjectKey, Refusal};
use crate::conditional::{self, Validators, Verdict};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::limits::StreamPermit;
use crate::range::ByteRange;
use crate::registry::StorageEntry;
use crate::route::ObjectPath;
use crate::upstream;

/// The answer from the cache, or `None`: the request goes to the bucket as without a cache
/// (`ex.cache_status` then says why).
pub(super) async fn serve(
    gw: &Arc<Gateway>,
    entry: &Arc<StorageEntry>,
    parts: &Parts,
    path: &ObjectPath,
    ex: &mut Exchange,
    permits: &mut Vec<StreamPermit>,
) -> Option<Response<Body>> {
    let cache = gw.cache.as_ref()?;
    let range = match admitted(parts, entry) {
        Ok(range) => range,
        Err(why) => {
            mark(cache, ex, why);
            return None;
        }
    };
    let key = Arc::new(ObjectKey {
        org: path.org.clone(),
        storage: entry.storage.id.clone(),
        revision: entry.revision,
        bucket: path.bucket.clone(),
        key: path.key.clone(),
    });
    // Made when the bucket is needed, not for every hit.
    let fetch = || fetcher(gw.clone(), entry.clone(), path.clone());
    let (meta, mut outcome, started) = match entry_for(gw, cache, entry, path, &key, range, fetch).await {
        Found::Entry(meta, outcome, started) => (meta, outcome, started),
        Found::Bucket => {
            mark(cache, ex, status::MISS);
            return None;
        }
        Found::Busy => {
            mark(cache, ex, status::BYPASS);
            return None;
        }
        Found::Refused(refusal) => {
            mark(cache, ex, status::MISS);
            return Some(super::object::refused(
                &refusal.error,
                refusal.status,
                refusal.content_range.clone(),
                ex,
            ));
        }
    };
    if let Some(answer) = judged(&parts.headers, &meta, ex) {
        mark(cache, ex, outcome);
        return Some(answer);
    }
    let range = if if_range_fails(&parts.headers, &meta) {
        None
    } else {
        range
    };
    let part = plan::part(range, meta.size);
    let Some(span) = part.span(meta.size) else {
        mark(cache, ex, outcome);
        let content_range = HeaderValue::from_str(&format!("bytes */{}", meta.size)).ok();
        return Some(super::object::refused(
            &GatewayError::RangeNotSatisfiable,
            None,
            content_range,
            ex,
        ));
    };
    // Bytes of one slice held in memory (every small object's answer) are sent as they
    // are; anything else is walked slice after slice.
    let held = match started {
        None => cache.held(&key, &meta, span.0, span.1),
        Some(_) => None,
    };
    if outcome != status::MISS_STORED && held.is_none() && !cache.holds(&key, &meta, span.0, span.1) {
        outcome = status::PARTIAL;
    }
    mark(cache, ex, outcome);
    let body = match held {
        Some(bytes) => body::full(bytes),
        None => cache.body(key, meta.clone(), span, fetch(), started),
    };
    Some(answer(gw, ex, &meta, part, span, body, std::mem::take(permits)))
}

/// Says what the cache did, once per request: in the `Cache-Status` header, the audit line
/// and `assetgate_cache_requests_total`, all by the same word.
fn mark(cache: &ObjectCache, ex: &mut Exchange, cache_status: &'static str) {
    let label = status::label(cache_status);
    ex.cache_status = Some(cache_status);
    ex.log.cache = Some(label);
    let metrics = cache.metrics();
    let counter = match label {
        "hit" => &metrics.hit,
        "revalidated" => &metrics.revalidated,
        "miss" => &metrics.miss,
        _ => &metrics.bypass,
    };
    counter.inc();
}

/// The client's range when the request may use the cache, or the `Cache-Status` saying why
/// not: HEAD, a storage that may not rest at the edge, a `Range` the cache cannot answer
/// as the bucket would (several ranges, another unit).
fn admitted(parts: &Parts, entry: &StorageEntry) -> Result<Option<ByteRange>, &'static str> {
    if parts.method != Method::GET {
        return Err(status::METHOD);
    }
    if !entry.storage.cache {
        return Err(status::BYPASS);
    }
    match parts.headers.get(header::RANGE) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(ByteRange::parse)
            .map(Some)
            .ok_or(status::BYPASS),
    }
}

/// What the cache found for a request.
enum Found {
    /// An entry, with the `Cache-Status` so far and, for a cold object, the fetch of the
    /// first slice the answer needs (already under way).
    Entry(Arc<Meta>, &'static str, Option<crate::cache::FillReader>),
    /// The bucket answers this one (uncacheable, changed, or a cold suffix range).
    Bucket,
    /// The bucket refused the first fetch of a cold object: that is the answer.
    Refused(Arc<Refusal>),
    /// A cold object while fetches under way hold more than the cache's size: the bucket
    /// answers, streamed with backpressure.
    Busy,
}

async fn entry_for(
    gw: &Gateway,
    cache: &ObjectCache,
    entry: &StorageEntry,
    path: &ObjectPath,
    key: &Arc<ObjectKey>,
    range: Option<ByteRange>,
    fetch: impl FnOnce() -> Fetcher,
) -> Found {
    match cache.lookup(key).await {
        Lookup::Fresh(meta) => return Found::Entry(meta, status::HIT, None),
        Lookup::Uncacheable => return Found::Bucket,
        Lookup::Stale(meta) => match revalidate(gw, entry, path, &meta).await {
            Revalidation::Confirmed => {
                cache.confirmed(&meta);
                return Found::Entry(meta, status::REVALIDATED, None);
            }
            // Any other answer: the entry is gone, and the bucket's answer is the client's.
            Revalidation::Changed => cache.forget(key),
            Revalidation::Refused => {
                cache.forget(key);
                return Found::Bucket;
            }
        },
        Lookup::Cold if cache.busy() => return Found::Busy,
        Lookup::Cold => {}
    }
    let first = match range {
        None => 0,
        Some(ByteRange::Closed { first, .. } | ByteRange::From { first }) => first,
        // The object's size decides where the last bytes are: the bucket answers.
        Some(ByteRange::Suffix { .. }) => return Found::Bucket,
    };
    let index = first / cache.settings().slice;
    let reader = cache.join(key, index, None, None, &fetch());
    match reader.head().await {
        Ok(head) => match cache.remember(key, &head) {
            Some(meta) => Found::Entry(meta, status::MISS_STORED, Some(reader)),
            None => Found::Bucket,
        },
        Err(FetchError::Refused(r)) if r.status != Some(StatusCode::RANGE_NOT_SATISFIABLE) => Found::Refused(r),
        Err(FetchError::Uncacheable) => {
            // Not a 206 of the range asked for: the next requests go straight to the bucket
            // instead of asking twice.
            cache.pass(key);
            Found::Bucket
        }
        Err(_) => Found::Bucket,
    }
}

enum Revalidation {
    Confirmed,
    Changed,
    Refused,
}

/// Asks the bucket whether `meta` is still the object, with the storage's current
/// credentials: a conditional request for one byte. A bucket that ignores `If-None-Match`
/// (s3s, the demo's) answers with that byte and the object's `ETag`: the same strong tag is
/// the same object, so that confirms the entry too.
async fn revalidate(gw: &Gateway, entry: &StorageEntry, path: &ObjectPath, meta: &Meta) -> Revalidation {
    let mut headers = HeaderMap::new();
    headers.insert(header::IF_NONE_MATCH, meta.etag.clone());
    headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-0"));
    match forward(gw, entry, &Method::GET, path, &headers).await {
        Ok(Forwarded::Passed(r)) if r.status() == StatusCode::NOT_MODIFIED => Revalidation::Confirmed,
        Ok(Forwarded::Passed(r)) if r.headers().get(header::ETAG) == Some(&meta.etag) => Revalidation::Confirmed,
        Ok(Forwarded::Passed(_)) => Revalidation::Changed,
        Ok(Forwarded::Failed { .. }) | Err(_) => Revalidation::Refused,
    }
}

/// The client's preconditions against the entry (RFC 9110 §13.2.2): 304 or 412, as the
/// uncached path judges them.
fn judged(client: &HeaderMap, meta: &Meta, ex: &mut Exchange) -> Option<Response<Body>> {
    if !conditional::has_preconditions(client) {
        return None;
    }
    match conditional::evaluate(client, &Validators::of(&meta.headers)) {
        Verdict::Proceed => None,
        Verdict::PreconditionFailed => Some(error_response(&GatewayError::PreconditionFailed, ex)),
        Verdict::NotModified => {
            let headers =
                upstream::response::client_headers(StatusCode::NOT_MODIFIED, &meta.headers, &ex.policy.cache_control);
            ex.log.status = StatusCode::NOT_MODIFIED.as_u16();
            let mut response = Response::new(body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = headers;
            Some(response)
        }
    }
}

/// Whether an `If-Range` names another version than the entry's: the whole object then.
fn if_range_fails(client: &HeaderMap, meta: &Meta) -> bool {
    client.contains_key(header::IF_RANGE) && !conditional::if_range_holds(client, &Validators::of(&meta.headers))
}

/// A 200 or 206 with the headers the bucket's own answer would carry.
fn answer(
    gw: &Gateway,
    ex: &mut Exchange,
    meta: &Meta,
    part: Part,
    (first, last): (u64, u64),
    body: Body,
    permits: Vec<StreamPermit>,
) -> Response<Body> {
    let mut headers = answer_headers(meta, &ex.policy.cache_control);
    let status = match part {
        Part::Whole => StatusCode::OK,
        _ => {
            let value = format!("bytes {first}-{last}/{}", meta.size);
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).expect("digits"));
            StatusCode::PARTIAL_CONTENT
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(last - first + 1));
    ex.log.status = status.as_u16();
    let meter = stream::Meter {
        bytes: gw.metrics.bytes_sent.clone(),
        in_flight: ex.in_flight.take().unwrap_or_else(|| gw.metrics.in_flight()),
        permits,
        upstream: None,
    };
    let body = stream::stream(body, gw.idle_timeout, ex.log.hand_over(), meter);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The headers every 200 or 206 from `meta` carries but `Content-Length` and
/// `Content-Range`, as the uncached path makes them from the bucket's (the status plays no
/// part in them but for a 304); made once per entry and default `Cache-Control`.
fn answer_headers(meta: &Meta, cache_control: &HeaderValue) -> HeaderMap {
    if let Some(made) = &*meta.answer_headers.load() {
        if made.0 == cache_control {
            return made.1.clone();
        }
    }
    let headers = upstream::response::client_headers(StatusCode::OK, &meta.headers, cache_control);
    meta.answer_headers
        .store(Some(Arc::new((cache_control.clone(), headers.clone()))));
    headers
}

/// What a fetch for the cache holds while its body lasts: its place among the requests to
/// buckets, and the count of its bytes, which go to usage as `upstream_bytes` when it ends.
struct FetchMeter {
    usage: Arc<crate::usage::Usage>,
    org: String,
    storage: String,
    bytes: u64,
    _slot: Option<upstream::UpstreamSlot>,
}

impl Drop for FetchMeter {
    fn drop(&mut self) {
        self.usage.fetched(&self.org, &self.storage, self.bytes);
    }
}

/// Ranged, signed requests for the cache's slices, through the same forwarding as every
/// request (fresh credentials and one more try when temporary ones are called stale).
fn fetcher(gw: Arc<Gateway>, entry: Arc<StorageEntry>, path: ObjectPath) -> Fetcher {
    Arc::new(move |first, last, if_match| {
        let (gw, entry, path) = (gw.clone(), entry.clone(), path.clone());
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            let range = HeaderValue::from_str(&format!("bytes={first}-{last}")).expect("digits");
            headers.insert(header::RANGE, range);
            if let Some(etag) = if_match {
                headers.insert(header::IF_MATCH, etag);
            }
            match forward(&gw, &entry, &Method::GET, &path, &headers).await {
                Ok(Forwarded::Passed(response)) => {
                    let (mut parts, body) = response.into_parts();
                    let mut meter = FetchMeter {
                        usage: gw.usage.clone(),
                        org: path.org.clone(),
                        storage: path.storage.clone(),
                        bytes: 0,
                        _slot: parts.extensions.remove::<upstream::UpstreamSlot>(),
                    };
                    let body = body
                        .map_frame(move |frame| {
                            // The meter as a whole (not its field) lives with the body.
                            let meter = &mut meter;
                            meter.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                            frame
                        })
                        .map_err(|e| Box::new(e) as crate::body::BoxError)
                        .boxed_unsync();
                    Ok(Fetched {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    })
                }
                Ok(Forwarded::Failed {
                    status: StatusCode::PRECONDITION_FAILED,
                    ..
                }) => Err(FetchError::Changed),
                Ok(Forwarded::Failed {
                    status,
                    error,
                    content_range,
                }) => Err(FetchError::Refused(Arc::new(Refusal {
                    status: Some(status),
                    error,
                    content_range,
                }))),
                Err(error) => Err(FetchError::Refused(Arc::new(Refusal {
                    status: None,
                    error,
                    content_range: None,
                }))),
            }
        })
    })
}

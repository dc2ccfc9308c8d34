//! Forwarding to the bucket: the client's headers that may go, signed with the storage's
//! credentials (fresh ones and one more try when the bucket calls temporary ones stale),
//! `If-Range` kept whatever the bucket does with it, and the client's preconditions judged
//! against what the bucket answered.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::conditional::{self, Validators, Verdict};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::registry::StorageEntry;
use crate::route::ObjectPath;
use crate::storage::request::{read_error, Target};
use crate::upstream;

/// The client's preconditions against what the bucket answered (RFC 9110 §13.2.2), whatever
/// the bucket made of them: a 200 or 206 may still become 304 or 412. The bucket's own 304
/// stands.
pub(super) fn judge(client: &HeaderMap, upstream: &Response<Incoming>) -> Verdict {
    match upstream.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT if conditional::has_preconditions(client) => {
            conditional::evaluate(client, &Validators::of(upstream.headers()))
        }
        _ => Verdict::Proceed,
    }
}

/// What the bucket answered, once `If-Range` and stale credentials were dealt with.
pub(super) enum Forwarded {
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
pub(super) async fn forward(
    gw: &Gateway,
    entry: &StorageEntry,
    method: &Method,
    path: &ObjectPath,
    client_headers: &HeaderMap,
) -> Result<Forwarded, GatewayError> {
    let mut headers = upstream::forwarded_headers(client_headers);
    let if_range = upstream::emulate_if_range(&mut headers);
    let mut refreshed = false;
    loop {
        let auth = gw.credentials.authorize(&entry.credentials).await?;
        let target = Target {
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
            StatusCode::PARTIAL_CONTENT if client_headers.contains_key(header::IF_RANGE) => {
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
        let error = read_error(&entry.storage, response).await;
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

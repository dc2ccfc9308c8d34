//! The signed request for one object of one storage, whatever its provider: its URL and
//! signature are the provider's (`super::providers`), the client and the endpoint guard
//! `crate::upstream`'s. A suffix range (`bytes=-N`) for a provider that has none (Azure)
//! becomes the closed range of the last N bytes, from the object's size. An error answer
//! becomes a gateway error, reading at most a small body.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::Storage;
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::range::ByteRange;
use crate::upstream::{without_range, Trust, UpstreamClient};

/// Largest error body read to find its code.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// How long we wait for an error body.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// One object of one storage, and how to ask for it.
pub struct Target<'a> {
    pub storage: &'a Storage,
    /// Whether the storage's endpoint must pass the guard (API-created storages).
    pub trust: Trust,
    pub auth: &'a Authorization,
    pub method: &'a Method,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl Target<'_> {
    /// Builds, signs and sends the request for the object with `headers`. A suffix range
    /// (`bytes=-N`) for a provider that has none (Azure) becomes the closed range of the
    /// last N bytes, from the object's size (RFC 9110 §14.1.2).
    pub async fn fetch(&self, client: &UpstreamClient, headers: HeaderMap) -> Result<Response<Incoming>, GatewayError> {
        if self.storage.backend().suffix_ranges() {
            return self.send(client, self.method, headers).await;
        }
        let Some(ByteRange::Suffix { len }) = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(ByteRange::parse)
        else {
            return self.send(client, self.method, headers).await;
        };
        // Twice at most: the object may change between the size and the bytes.
        for _ in 0..2 {
            let mut probe = headers.clone();
            probe.remove(header::RANGE);
            let head = self.send(client, &Method::HEAD, probe).await?;
            if head.status() != StatusCode::OK {
                // 304, 412, 404...: the answer the client gets anyway.
                return Ok(head);
            }
            let head = head.into_parts().0.headers;
            let size: Option<u64> = head
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let etag = head.get(header::ETAG).cloned();
            let Some(size) = size else {
                return self.send(client, self.method, without_range(&headers)).await;
            };
            let mut exact = headers.clone();
            exact.insert(header::RANGE, suffix_as_closed(len, size));
            let ours = match etag {
                Some(tag) if !headers.contains_key(header::IF_MATCH) => {
                    exact.insert(header::IF_MATCH, tag);
                    true
                }
                _ => false,
            };
            let response = self.send(client, self.method, exact).await?;
            if !(ours && response.status() == StatusCode::PRECONDITION_FAILED) {
                return Ok(response);
            }
        }
        Err(GatewayError::UpstreamUnavailable(
            "the object kept changing while its last bytes were asked for".into(),
        ))
    }

    async fn send(
        &self,
        client: &UpstreamClient,
        method: &Method,
        headers: HeaderMap,
    ) -> Result<Response<Incoming>, GatewayError> {
        let url = self.storage.backend().object_url(self.storage, self.bucket, self.key);
        send_signed(client, self.storage, self.trust, self.auth, method, &url, headers).await
    }
}

/// The closed range of the last `len` bytes of an object of `size` bytes; a range past the
/// end (which the provider answers 416) when there are none: `bytes=-0`, or an empty object.
pub fn suffix_as_closed(len: u64, size: u64) -> HeaderValue {
    let value = if len == 0 || size == 0 {
        format!("bytes={size}-")
    } else {
        format!("bytes={}-{}", size.saturating_sub(len), size - 1)
    };
    HeaderValue::from_str(&value).expect("digits are a valid header value")
}

/// Signs a bodiless request to `url` for `storage` and sends it.
pub async fn send_signed(
    client: &UpstreamClient,
    storage: &Storage,
    trust: Trust,
    auth: &Authorization,
    method: &Method,
    url: &str,
    headers: HeaderMap,
) -> Result<Response<Incoming>, GatewayError> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(url)
        .body(Full::new(Bytes::new()))
        .map_err(|_| GatewayError::InvalidRequest("the object key cannot be expressed in a URL".into()))?;
    *request.headers_mut() = headers;
    // A token of the gateway's own identity goes only to its cloud, whatever built the URL.
    if let Authorization::Bearer { pin: Some(pin), .. } = auth {
        if !pin.allows_uri(request.uri()) {
            return Err(GatewayError::TokenNotForEndpoint("the provider"));
        }
    }
    storage.backend().sign(&mut request, auth, SystemTime::now())?;
    client.send(request, trust).await
}

/// Turns an upstream error response into a gateway error, reading at most a small body.
pub async fn read_error(storage: &Storage, response: Response<Incoming>) -> GatewayError {
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ERROR_BODY).collect();
    let bytes = match tokio::time::timeout(ERROR_BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    storage.backend().error(parts.status, &parts.headers, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_ranges_become_the_last_bytes() {
        assert_eq!(suffix_as_closed(10, 100), "bytes=90-99");
        assert_eq!(suffix_as_closed(500, 100), "bytes=0-99");
        assert_eq!(suffix_as_closed(1, 1), "bytes=0-0");
        assert_eq!(suffix_as_closed(0, 100), "bytes=100-", "-0 is unsatisfiable");
        assert_eq!(suffix_as_closed(5, 0), "bytes=0-", "so are the last bytes of nothing");
    }
}

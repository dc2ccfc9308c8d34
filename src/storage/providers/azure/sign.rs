//! Authorizes a request to Blob Storage: `x-ms-version` and `x-ms-date` on every request, then
//! a Shared Key signature (`shared_key`), the SAS appended to the query, or the bearer token
//! of Entra delegation.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::Full;

use super::{shared_key, VERSION};
use crate::credentials::Authorization;
use crate::error::GatewayError;
use crate::secret::Secret;

pub fn sign_request(
    request: &mut Request<Full<Bytes>>,
    auth: &Authorization,
    now: SystemTime,
) -> Result<(), GatewayError> {
    let headers = request.headers_mut();
    headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
    let date = HeaderValue::from_str(&httpdate::fmt_http_date(now))
        .map_err(|_| GatewayError::internal("x-ms-date cannot be a header value"))?;
    headers.insert("x-ms-date", date);
    let value = match auth {
        Authorization::SharedKey { account, key } => {
            let uri = request.uri();
            let text = shared_key::string_to_sign(
                request.method().as_str(),
                account,
                uri.path(),
                uri.query(),
                request.headers(),
            );
            shared_key::authorization(account, key, &text)
        }
        Authorization::Sas(token) => return append_sas(request, token),
        Authorization::Bearer { token, .. } => format!("Bearer {}", token.expose()),
        Authorization::SigV4(_) => return Err(GatewayError::internal("an Azure storage was handed SigV4 keys")),
    };
    let value = HeaderValue::from_str(&value)
        .map_err(|_| GatewayError::internal("the Authorization value cannot be a header value"))?;
    request.headers_mut().insert(header::AUTHORIZATION, value);
    Ok(())
}

/// The request's URL with the SAS's fields after its own query.
fn append_sas(request: &mut Request<Full<Bytes>>, token: &Secret) -> Result<(), GatewayError> {
    let uri = request.uri();
    let joined = match uri.query() {
        Some(q) => format!("{}?{q}&{}", uri.path(), token.expose()),
        None => format!("{}?{}", uri.path(), token.expose()),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        joined
            .parse()
            .map_err(|_| GatewayError::internal("the SAS cannot be added to the URL"))?,
    );
    *request.uri_mut() = http::Uri::from_parts(parts)
        .map_err(|e| GatewayError::internal(format!("the URL with the SAS is not valid: {e}")))?;
    Ok(())
}

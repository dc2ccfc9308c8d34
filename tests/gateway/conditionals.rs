//! Conditional requests are the gateway's promise, not the bucket's (README, "Routes"): every
//! precondition and `If-Range` case gets the same answer through `assetgate demo` (s3s, which
//! ignores `If-None-Match`, `If-Match` and `If-Range`) as in front of SeaweedFS (which honours
//! the first two and ignores `If-Range`), for the same object.

use std::net::SocketAddr;
use std::time::Duration;

use assetgate::demo::{Demo, ASSETS};
use http::Method;

use crate::support::client::{request, Reply};
use crate::support::seaweed::seaweed;
use crate::support::*;

const BUCKET: &str = "conditional-answers";

/// A case: its name, the method and the request headers.
type Case = (&'static str, Method, Vec<(&'static str, String)>);

/// One way to reach the object: its URL (with a token) and its validators.
struct Object {
    url: String,
    etag: String,
    last_modified: String,
}

impl Object {
    async fn at(url: String) -> Object {
        let plain = request(Method::GET, &url, &[]).await;
        assert_eq!(plain.status, 200, "{url}");
        Object {
            etag: plain.header("etag").to_string(),
            last_modified: plain.header("last-modified").to_string(),
            url,
        }
    }

    /// `Last-Modified` moved by `seconds`.
    fn modified(&self, seconds: i64) -> String {
        let at = httpdate::parse_http_date(&self.last_modified).unwrap();
        let moved = if seconds < 0 {
            at - Duration::from_secs(seconds.unsigned_abs())
        } else {
            at + Duration::from_secs(seconds as u64)
        };
        httpdate::fmt_http_date(moved)
    }

    /// Every case: a name, the method and the request headers.
    fn cases(&self) -> Vec<Case> {
        let etag = self.etag.clone();
        let weak = format!("W/{etag}");
        let range = || ("range", "bytes=0-9".to_string());
        vec![
            (
                "if-none-match current",
                Method::GET,
                vec![("if-none-match", etag.clone())],
            ),
            (
                "if-none-match weak current",
                Method::GET,
                vec![("if-none-match", weak.clone())],
            ),
            (
                "if-none-match other",
                Method::GET,
                vec![("if-none-match", "\"other\"".into())],
            ),
            ("if-none-match star", Method::GET, vec![("if-none-match", "*".into())]),
            (
                "if-none-match list",
                Method::GET,
                vec![("if-none-match", format!("\"x\", {etag}"))],
            ),
            ("if-match current", Method::GET, vec![("if-match", etag.clone())]),
            ("if-match wrong", Method::GET, vec![("if-match", "\"wrong\"".into())]),
            ("if-match star", Method::GET, vec![("if-match", "*".into())]),
            (
                "if-modified-since same",
                Method::GET,
                vec![("if-modified-since", self.modified(0))],
            ),
            (
                "if-modified-since later",
                Method::GET,
                vec![("if-modified-since", self.modified(3600))],
            ),
            (
                "if-modified-since earlier",
                Method::GET,
                vec![("if-modified-since", self.modified(-86400))],
            ),
            (
                "if-unmodified-since same",
                Method::GET,
                vec![("if-unmodified-since", self.modified(0))],
            ),
            (
                "if-unmodified-since earlier",
                Method::GET,
                vec![("if-unmodified-since", self.modified(-86400))],
            ),
            (
                "if-none-match other beside if-modified-since later",
                Method::GET,
                vec![
                    ("if-none-match", "\"other\"".into()),
                    ("if-modified-since", self.modified(3600)),
                ],
            ),
            (
                "if-match wrong beside if-none-match current",
                Method::GET,
                vec![("if-match", "\"wrong\"".into()), ("if-none-match", etag.clone())],
            ),
            (
                "range if-range current",
                Method::GET,
                vec![range(), ("if-range", etag.clone())],
            ),
            (
                "range if-range stale",
                Method::GET,
                vec![range(), ("if-range", "\"stale\"".into())],
            ),
            ("range if-range weak", Method::GET, vec![range(), ("if-range", weak)]),
            (
                "range if-range date",
                Method::GET,
                vec![range(), ("if-range", self.modified(0))],
            ),
            (
                "range if-range earlier date",
                Method::GET,
                vec![range(), ("if-range", self.modified(-86400))],
            ),
            (
                "range if-range later date",
                Method::GET,
                vec![range(), ("if-range", self.modified(3600))],
            ),
            (
                "range if-none-match current",
                Method::GET,
                vec![range(), ("if-none-match", etag.clone())],
            ),
            (
                "range if-match wrong",
                Method::GET,
                vec![range(), ("if-match", "\"wrong\"".into())],
            ),
            (
                "head if-none-match current",
                Method::HEAD,
                vec![("if-none-match", etag.clone())],
            ),
            (
                "head if-match wrong",
                Method::HEAD,
                vec![("if-match", "\"wrong\"".into())],
            ),
        ]
    }

    async fn ask(&self, method: Method, headers: &[(&'static str, String)]) -> Reply {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(method, &self.url, &headers).await
    }
}

/// What must be the same from both backends: status, body, the range and length, whether
/// the object's own validators came back, and the error code.
fn answer(object: &Object, r: &Reply) -> String {
    let code = if r.status.is_client_error() && !r.body.is_empty() {
        r.error_code()
    } else {
        String::new()
    };
    format!(
        "{} body={} content-range={} content-length={} etag-is-own={} last-modified={} code={code}",
        r.status.as_u16(),
        r.body.len(),
        r.header("content-range"),
        r.header("content-length"),
        r.header("etag") == object.etag,
        r.header("last-modified") == object.last_modified,
    )
}

/// What each case must answer (RFC 9110 §13), whichever backend.
fn expected(case: &str) -> u16 {
    match case {
        "if-none-match current"
        | "if-none-match weak current"
        | "if-none-match star"
        | "if-none-match list"
        | "if-modified-since same"
        | "if-modified-since later"
        | "range if-none-match current"
        | "head if-none-match current" => 304,
        "if-match wrong"
        | "if-unmodified-since earlier"
        | "if-match wrong beside if-none-match current"
        | "range if-match wrong"
        | "head if-match wrong" => 412,
        "range if-range current" | "range if-range date" => 206,
        _ => 200,
    }
}

#[tokio::test]
async fn every_precondition_is_answered_alike_whatever_the_bucket_makes_of_it() {
    let demo = Demo::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let (key, _, bytes) = ASSETS[1];
    let demo_url = demo.asset_url(key, &demo.token());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));

    let sw = seaweed();
    sw.seed(BUCKET, &[(key, bytes)]).await;
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &[BUCKET], &sw.reader).await;
    let seaweed_url = format!("{}?token={}", gw.url("acme", "main", BUCKET, key), token("acme"));

    let objects = [Object::at(demo_url).await, Object::at(seaweed_url).await];
    for ((name, method, _), i) in objects[0].cases().into_iter().zip(0..) {
        let mut answers = Vec::new();
        for object in &objects {
            let (_, _, headers) = object.cases().swap_remove(i);
            let r = object.ask(method.clone(), &headers).await;
            assert_eq!(r.status, expected(name), "{name}: {}", answer(object, &r));
            if r.status == 206 {
                assert_eq!(r.body, bytes[..10], "{name}");
            }
            if r.status == 200 && method == Method::GET {
                assert_eq!(r.body.len(), bytes.len(), "{name}: the whole object");
            }
            answers.push(answer(object, &r));
        }
        assert_eq!(
            answers[0], answers[1],
            "{name}: the demo's backend and SeaweedFS differ"
        );
    }
    let _ = stop.send(());
    let _ = served.await;
}

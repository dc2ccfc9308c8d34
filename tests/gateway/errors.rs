//! Error mapping (README "Errors"): JSON bodies with the right status and code, no secret, token or
//! upstream XML in them.

use std::time::Duration;

use http::Method;

use crate::support::client::{get, head, request};
use crate::support::seaweed::seaweed;
use crate::support::standin::{any_keys, StandIn};
use crate::support::*;

const BUCKET: &str = "errors-assets";

fn assert_clean(r: &crate::support::client::Reply, secrets: &[&str]) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.header("content-type"), "application/json");
    assert!(!body.contains('<'), "upstream XML leaked: {body}");
    for s in secrets {
        assert!(!body.contains(s), "secret leaked: {body}");
    }
    assert_eq!(r.json()["error"]["requestId"], r.header("x-request-id"));
}

#[tokio::test]
async fn s3_errors_map_to_their_codes() {
    let sw = seaweed();
    sw.seed(BUCKET, &[("present.jpg", b"here")]).await;
    let wrong_secret = "wrong-secret-value-1234567890";
    let mut wrong = sw.reader.clone();
    wrong.secret_access_key = assetgate::secret::Secret::new(wrong_secret);
    let unknown = assetgate::credentials::StaticKeys {
        access_key_id: "NOSUCHKEYID".into(),
        ..sw.reader.clone()
    };
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}{}{}",
        storage("main", &sw.endpoint, &[BUCKET, "never-created-bucket"], &sw.reader),
        storage("wrong", &sw.endpoint, &[BUCKET], &wrong),
        storage("unknown", &sw.endpoint, &[BUCKET], &unknown),
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    let t = token("acme");
    let auth = format!("Bearer {t}");
    let cases = [
        (
            gw.url("acme", "main", BUCKET, "absent.jpg"),
            404,
            "no_such_key",
            Some("NoSuchKey"),
        ),
        (
            gw.url("acme", "main", "never-created-bucket", "k.jpg"),
            404,
            "no_such_bucket",
            Some("NoSuchBucket"),
        ),
        (
            gw.url("acme", "wrong", BUCKET, "present.jpg"),
            502,
            "upstream_credentials_rejected",
            Some("SignatureDoesNotMatch"),
        ),
        (
            gw.url("acme", "unknown", BUCKET, "present.jpg"),
            502,
            "upstream_credentials_rejected",
            Some("InvalidAccessKeyId"),
        ),
        (
            gw.url("acme", "main", "other-bucket", "k.jpg"),
            403,
            "bucket_not_allowed",
            None,
        ),
        (gw.url("acme", "nowhere", BUCKET, "k.jpg"), 404, "unknown_storage", None),
    ];
    for (url, status, code, upstream_code) in cases {
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!((r.status.as_u16(), r.error_code().as_str()), (status, code), "{url}");
        assert_eq!(r.json()["error"]["upstreamCode"].as_str(), upstream_code, "{url}");
        assert_clean(&r, &[wrong_secret, sw.reader.secret_access_key.expose(), &t]);
    }
    let h = head(
        &gw.url("acme", "main", BUCKET, "absent.jpg"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(h.status, 404);
    assert!(h.body.is_empty());
}

#[tokio::test]
async fn unknown_org_method_and_path_errors() {
    let sw = seaweed();
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &[BUCKET], &sw.reader).await;
    let r = get(
        &gw.url("initech", "main", BUCKET, "k"),
        &[("authorization", &format!("Bearer {}", token("initech")))],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (404, "unknown_org"));
    let url = gw.url("acme", "main", BUCKET, "k");
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = request(method.clone(), &url, &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (405, "method_not_allowed"),
            "{method}"
        );
        assert_eq!(r.header("allow"), "GET, HEAD, OPTIONS");
    }
    let r = get(
        &format!("{}/v1/orgs/acme/storages/main/objects/{BUCKET}/bad%zz", gw.base),
        &[],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (400, "invalid_request"));
    let r = get(&format!("{}/nothing/here", gw.base), &[]).await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (404, "not_found"));
    assert_clean(&r, &[]);
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let sw = seaweed();
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &[BUCKET], &sw.reader).await;
    let url = gw.url("acme", "main", BUCKET, "k");
    let r = get(&url, &[("x-request-id", "trace-42")]).await;
    assert_eq!(r.header("x-request-id"), "trace-42");
    assert_eq!(r.json()["error"]["requestId"], "trace-42");
    let r = get(&url, &[("x-request-id", "bad id with spaces")]).await;
    assert_ne!(r.header("x-request-id"), "bad id with spaces");
    assert_eq!(r.header("x-request-id").len(), 24);
}

#[tokio::test]
async fn upstream_access_denied_is_403() {
    let sw = seaweed();
    sw.seed("denied-assets", &[("k.jpg", b"x")]).await;
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &["denied-assets"], &sw.limited).await;
    let r = get(
        &gw.url("acme", "main", "denied-assets", "k.jpg"),
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (403, "upstream_access_denied")
    );
    assert_eq!(r.json()["error"]["upstreamCode"], "AccessDenied");
}

#[tokio::test]
async fn a_backend_that_is_down_is_503() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = assetgate::upstream::Endpoint::parse(&format!("http://127.0.0.1:{closed}")).unwrap();
    let gw = TestGateway::acme(&config("", ""), "main", &endpoint, &["b-bucket"], &any_keys()).await;
    let r = get(
        &gw.url("acme", "main", "b-bucket", "k"),
        &[
            ("authorization", &format!("Bearer {}", token("acme"))),
            ("origin", EDITOR_ORIGIN),
        ],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (503, "upstream_unavailable")
    );
    assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
}

#[tokio::test]
async fn a_backend_that_never_answers_is_504() {
    let upstream = StandIn::start(|s| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let gw = TestGateway::in_front_of(&upstream, "upstream_first_byte_timeout = \"1s\"").await;
    let started = std::time::Instant::now();
    let r = get(
        &gw.url("acme", "main", "b-bucket", "k"),
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (504, "upstream_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

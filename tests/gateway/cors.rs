//! CORS (README "CORS") on every kind of response, preflight, refused origins, and upstream CORS
//! headers replaced by ours.

use http::Method;

use crate::support::client::{get, request};
use crate::support::seaweed::seaweed;
use crate::support::standin::StandIn;
use crate::support::*;

const BUCKET: &str = "cors-assets";

async fn gateway() -> TestGateway {
    let sw = seaweed();
    sw.seed(BUCKET, &[("img.png", b"0123456789")]).await;
    let mut wrong = sw.reader.clone();
    wrong.secret_access_key = assetgate::secret::Secret::new("definitely-not-the-secret");
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\ncors_origins = [\"https://acme.example\"]\n{}{}\n[[orgs]]\nid = \"globex\"\n{}",
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader),
        storage("broken", &sw.endpoint, &[BUCKET], &wrong),
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader),
    );
    TestGateway::start(&config("", &orgs)).await
}

fn assert_cors(r: &crate::support::client::Reply, origin: &str, what: &str) {
    assert_eq!(
        r.headers.get_all("access-control-allow-origin").iter().count(),
        1,
        "{what}"
    );
    assert_eq!(r.header("access-control-allow-origin"), origin, "{what}");
    assert!(
        r.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")),
        "{what}"
    );
    let expose = r.header("access-control-expose-headers");
    for h in [
        "Content-Length",
        "Content-Range",
        "Accept-Ranges",
        "Content-Type",
        "ETag",
        "Last-Modified",
        "X-Request-Id",
    ] {
        assert!(expose.contains(h), "{what}: {h} not exposed");
    }
}

#[tokio::test]
async fn every_status_carries_the_cors_headers() {
    let gw = gateway().await;
    let t = format!("Bearer {}", token("acme"));
    let url = gw.url("acme", "main", BUCKET, "img.png");
    let o = ("origin", EDITOR_ORIGIN);
    let ok = get(&url, &[("authorization", &t), o]).await;
    assert_eq!(ok.status, 200);
    assert_cors(&ok, EDITOR_ORIGIN, "200");
    let partial = get(&url, &[("authorization", &t), o, ("range", "bytes=0-3")]).await;
    assert_eq!(partial.status, 206);
    assert_cors(&partial, EDITOR_ORIGIN, "206");
    let etag = ok.header("etag");
    let not_modified = get(&url, &[("authorization", &t), o, ("if-none-match", etag)]).await;
    assert_eq!(not_modified.status, 304);
    assert_cors(&not_modified, EDITOR_ORIGIN, "304");
    let missing = get(&gw.url("acme", "main", BUCKET, "nope.png"), &[("authorization", &t), o]).await;
    assert_eq!(missing.status, 404);
    assert_cors(&missing, EDITOR_ORIGIN, "404");
    let unauthorized = get(&url, &[o]).await;
    assert_eq!(unauthorized.status, 401);
    assert_cors(&unauthorized, EDITOR_ORIGIN, "401");
    let bad_gateway = get(
        &gw.url("acme", "broken", BUCKET, "img.png"),
        &[("authorization", &t), o],
    )
    .await;
    assert_eq!(bad_gateway.status, 502);
    assert_cors(&bad_gateway, EDITOR_ORIGIN, "502");
}

#[tokio::test]
async fn org_origins_add_to_the_global_list_for_that_org_only() {
    let gw = gateway().await;
    let acme = get(
        &gw.url("acme", "main", BUCKET, "img.png"),
        &[
            ("authorization", &format!("Bearer {}", token("acme"))),
            ("origin", "https://acme.example"),
        ],
    )
    .await;
    assert_eq!(acme.status, 200);
    assert_cors(&acme, "https://acme.example", "org origin");
    let globex = get(
        &gw.url("globex", "main", BUCKET, "img.png"),
        &[
            ("authorization", &format!("Bearer {}", token("globex"))),
            ("origin", "https://acme.example"),
        ],
    )
    .await;
    assert_eq!(
        (globex.status.as_u16(), globex.error_code().as_str()),
        (403, "origin_not_allowed")
    );
}

#[tokio::test]
async fn preflight_answers_204_with_the_allowed_headers() {
    let gw = gateway().await;
    let r = request(
        Method::OPTIONS,
        &gw.url("acme", "main", BUCKET, "img.png"),
        &[
            ("origin", EDITOR_ORIGIN),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization, range, x-custom"),
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
    assert_eq!(r.header("access-control-allow-methods"), "GET, HEAD, OPTIONS");
    assert_eq!(r.header("access-control-allow-headers"), "authorization, range");
    assert_eq!(r.header("access-control-max-age"), "600");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn a_disallowed_origin_gets_403_and_no_bytes_from_the_bucket() {
    let upstream = StandIn::replying(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret").await;
    let gw = TestGateway::in_front_of(&upstream, "").await;
    let url = gw.url("acme", "main", "b-bucket", "k");
    let t = format!("Bearer {}", token("acme"));
    for origin in ["https://evil.example", "null", "https://editor.test.evil.example"] {
        let r = get(&url, &[("authorization", &t), ("origin", origin)]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (403, "origin_not_allowed"),
            "{origin}"
        );
        assert!(r.headers.get("access-control-allow-origin").is_none());
        let pre = request(
            Method::OPTIONS,
            &url,
            &[("origin", origin), ("access-control-request-method", "GET")],
        )
        .await;
        assert_eq!(pre.status, 403);
    }
    assert_eq!(upstream.count(), 0, "the bucket was asked");
    let no_origin = get(&url, &[("authorization", &t)]).await;
    assert_eq!(no_origin.body, "secret");
    assert!(no_origin.headers.get("access-control-allow-origin").is_none());
}

/// A stand-in, because real S3 servers only send CORS headers when asked with an `Origin`,
/// which the gateway never forwards; some S3-compatible services do send them always.
#[tokio::test]
async fn upstream_cors_headers_are_replaced_by_ours() {
    let upstream = StandIn::replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Expose-Headers: x-amz-meta-secret\r\nX-Amz-Meta-Secret: s\r\nServer: MinIO\r\n\r\nok").await;
    let gw = TestGateway::in_front_of(&upstream, "").await;
    let url = gw.url("acme", "main", "b-bucket", "k");
    let r = get(
        &url,
        &[
            ("authorization", &format!("Bearer {}", token("acme"))),
            ("origin", EDITOR_ORIGIN),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_cors(&r, EDITOR_ORIGIN, "replaced");
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    assert!(!r.header("access-control-expose-headers").contains("x-amz"));
    assert!(r.headers.get("x-amz-meta-secret").is_none() && r.headers.get("server").is_none());
}

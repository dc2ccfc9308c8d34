//! What a bucket holds never becomes a page of the gateway's origin nor lands in a shared
//! cache (README "Routes"), against SeaweedFS with objects stored with their own headers.

use crate::support::client::{get, head};
use crate::support::seaweed::seaweed;
use crate::support::*;

const BUCKET: &str = "content-assets";

/// An object as stored: key, the headers it is stored with, bytes.
type Stored = (&'static str, &'static [(&'static str, &'static str)], &'static [u8]);

async fn gateway() -> TestGateway {
    let sw = seaweed();
    let writer = sw.writer();
    writer.create_bucket(BUCKET).await.unwrap();
    let objects: [Stored; 6] = [
        (
            "page.html",
            &[("content-type", "text/html; charset=utf-8")],
            b"<script>alert(document.cookie)</script>",
        ),
        (
            "logo.svg",
            &[
                ("content-type", "image/svg+xml"),
                ("content-disposition", "inline; filename=\"logo.svg\""),
            ],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        ),
        ("feed.xml", &[("content-type", "application/xml")], b"<a/>"),
        (
            "photo.jpg",
            &[
                ("content-type", "image/jpeg"),
                ("cache-control", "public, max-age=86400, s-maxage=604800"),
            ],
            b"\xff\xd8\xff\xe0 jpeg",
        ),
        (
            "scan.pdf",
            &[("content-type", "application/pdf"), ("cache-control", "no-cache")],
            b"%PDF-1.7",
        ),
        (
            "frame.dcm",
            &[("content-type", "application/dicom"), ("cache-control", "no-store")],
            b"DICM",
        ),
    ];
    for (key, headers, data) in objects {
        writer.put_with(BUCKET, key, headers, data.to_vec()).await.unwrap();
    }
    let org = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    TestGateway::start(&config("", &org)).await
}

#[tokio::test]
async fn html_svg_and_xml_are_sandboxed_and_downloaded_images_are_not() {
    let gw = gateway().await;
    let auth = format!("Bearer {}", token("acme"));
    for (key, disposition) in [
        ("page.html", "attachment"),
        ("logo.svg", "attachment; filename=\"logo.svg\""),
        ("feed.xml", "attachment"),
    ] {
        for r in [
            get(&gw.url("acme", "main", BUCKET, key), &[("authorization", &auth)]).await,
            head(&gw.url("acme", "main", BUCKET, key), &[("authorization", &auth)]).await,
        ] {
            assert_eq!(r.status, 200, "{key}");
            assert_eq!(r.header("x-content-type-options"), "nosniff", "{key}");
            assert_eq!(r.header("content-security-policy"), "sandbox", "{key}");
            assert_eq!(r.header("content-disposition"), disposition, "{key}");
        }
    }
    for key in ["photo.jpg", "scan.pdf", "frame.dcm"] {
        let r = get(&gw.url("acme", "main", BUCKET, key), &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{key}");
        assert_eq!(r.header("content-security-policy"), "", "{key}");
        assert_eq!(r.header("content-disposition"), "", "{key}");
    }
    let error = get(
        &gw.url("acme", "main", BUCKET, "absent.html"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (error.status.as_u16(), error.header("x-content-type-options")),
        (404, "nosniff")
    );
}

#[tokio::test]
async fn cache_control_always_keeps_shared_caches_out() {
    let gw = gateway().await;
    let auth = format!("Bearer {}", token("acme"));
    for (key, sent) in [
        ("photo.jpg", "private, max-age=86400"),
        ("scan.pdf", "no-cache"),
        ("frame.dcm", "no-store"),
        ("page.html", "private, max-age=300"),
    ] {
        let r = get(&gw.url("acme", "main", BUCKET, key), &[("authorization", &auth)]).await;
        assert_eq!(r.header("cache-control"), sent, "{key}");
    }
    let first = get(
        &gw.url("acme", "main", BUCKET, "photo.jpg"),
        &[("authorization", &auth)],
    )
    .await;
    let etag = first.header("etag").to_string();
    let revalidated = get(
        &gw.url("acme", "main", BUCKET, "photo.jpg"),
        &[("authorization", &auth), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(revalidated.status, 304);
    // SeaweedFS sends no Cache-Control on a 304; the gateway then adds none, so that the one
    // the browser stored with the object stays.
    let cc = revalidated.header("cache-control");
    assert!(cc.is_empty() || cc == "private, max-age=86400", "{cc}");
}

/// A tenant's own S3-compatible server may answer anything: here two `Content-Type` values,
/// of which browsers would use the last. No real S3 server sends that, hence a stand-in.
#[tokio::test]
async fn a_hostile_server_cannot_slip_html_behind_an_image_type() {
    use crate::support::standin::StandIn;
    for reply in [
        &b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Type: text/html\r\nContent-Length: 8\r\n\r\n<script>"
            [..],
        &b"HTTP/1.1 200 OK\r\nContent-Type: image/png, text/html\r\nContent-Length: 8\r\n\r\n<script>"[..],
    ] {
        let upstream = StandIn::replying(reply).await;
        let gw = TestGateway::in_front_of(&upstream, "").await;
        let r = get(
            &gw.url("acme", "main", "b-bucket", "x.png"),
            &[("authorization", &format!("Bearer {}", token("acme")))],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-security-policy"), "sandbox");
        assert_eq!(r.header("content-disposition"), "attachment");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
    }
}

//! Ranges and conditionals, against SeaweedFS (real ranges, real If-None-Match/If-Match).

use crate::support::client::get;
use crate::support::seaweed::seaweed;
use crate::support::*;

const BUCKET: &str = "ranges-and-conditionals";
const SIZE: usize = 1000;

async fn setup() -> (TestGateway, String, Vec<u8>, String) {
    let sw = seaweed();
    let data = pattern(SIZE, 9);
    sw.seed(BUCKET, &[("video.mp4", &data)]).await;
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &[BUCKET], &sw.reader).await;
    let url = gw.url("acme", "main", BUCKET, "video.mp4");
    (gw, url, data, format!("Bearer {}", token("acme")))
}

#[tokio::test]
async fn open_ended_range_from_zero_is_206_as_safari_needs() {
    let (_gw, url, data, auth) = setup().await;
    let r = get(&url, &[("authorization", &auth), ("range", "bytes=0-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), format!("bytes 0-{}/{SIZE}", SIZE - 1));
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn closed_suffix_and_open_ranges_return_the_right_slices() {
    let (_gw, url, data, auth) = setup().await;
    let cases = [
        ("bytes=100-199", 100..200, "bytes 100-199/1000"),
        ("bytes=-10", 990..1000, "bytes 990-999/1000"),
        ("bytes=900-", 900..1000, "bytes 900-999/1000"),
        ("bytes=999-5000", 999..1000, "bytes 999-999/1000"),
    ];
    for (range, slice, content_range) in cases {
        let r = get(&url, &[("authorization", &auth), ("range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), content_range, "{range}");
        assert_eq!(r.body, data[slice], "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_range_is_416_json() {
    let (_gw, url, _data, auth) = setup().await;
    let r = get(
        &url,
        &[
            ("authorization", &auth),
            ("range", "bytes=5000-6000"),
            ("origin", EDITOR_ORIGIN),
        ],
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.error_code(), "range_not_satisfiable");
    assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
}

#[tokio::test]
async fn malformed_or_multi_ranges_get_the_whole_object() {
    let (_gw, url, data, auth) = setup().await;
    for range in ["bytes=0-1,5-6", "bytes=abc", "pages=1-2"] {
        let r = get(&url, &[("authorization", &auth), ("range", range)]).await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body, data);
    }
}

#[tokio::test]
async fn if_range_serves_the_range_only_while_the_etag_matches() {
    let (_gw, url, data, auth) = setup().await;
    let etag = get(&url, &[("authorization", &auth)]).await.header("etag").to_string();
    let r = get(
        &url,
        &[("authorization", &auth), ("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[..10]);
    let r = get(
        &url,
        &[
            ("authorization", &auth),
            ("range", "bytes=0-9"),
            ("if-range", "\"stale-etag\""),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "a changed object must be sent whole");
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn if_none_match_gives_304_with_cors_and_if_match_mismatch_412() {
    let (_gw, url, _data, auth) = setup().await;
    let etag = get(&url, &[("authorization", &auth)]).await.header("etag").to_string();
    let r = get(
        &url,
        &[
            ("authorization", &auth),
            ("if-none-match", &etag),
            ("origin", EDITOR_ORIGIN),
        ],
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), etag);
    assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
    assert_eq!(r.header("vary"), "Origin");
    let r = get(&url, &[("authorization", &auth), ("if-match", "\"nope\"")]).await;
    assert_eq!(r.status, 412);
    assert_eq!(r.error_code(), "precondition_failed");
}

//! Whole objects of every size, GET and HEAD, against SeaweedFS with signature checks on.

use crate::support::client::{get, head};
use crate::support::seaweed::seaweed;
use crate::support::*;

#[tokio::test]
async fn get_and_head_are_byte_identical_for_every_size() {
    let sw = seaweed();
    let objects = [
        ("sizes/empty", pattern(0, 1)),
        ("sizes/one", pattern(1, 2)),
        ("sizes/4k", pattern(4096, 3)),
        ("sizes/10m", pattern(10 << 20, 4)),
    ];
    let seeded: Vec<(&str, &[u8])> = objects.iter().map(|(k, d)| (*k, d.as_slice())).collect();
    sw.seed("object-sizes", &seeded).await;
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &["object-sizes"], &sw.reader).await;
    let auth = format!("Bearer {}", token("acme"));
    for (key, data) in &objects {
        let url = gw.url("acme", "main", "object-sizes", key);
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{key}");
        assert_eq!(r.body.len(), data.len(), "{key}");
        assert!(r.body[..] == data[..], "{key}: bytes differ");
        assert_eq!(r.header("content-length"), data.len().to_string());
        assert!(!r.header("etag").is_empty());
        assert_eq!(r.header("cache-control"), "private, max-age=300");
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("x-amz-") && k != "server" && !k.as_str().starts_with("seaweed")),
            "{:?}",
            r.headers
        );
        let h = head(&url, &[("authorization", &auth)]).await;
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-length"), data.len().to_string());
        assert!(h.body.is_empty());
    }
}

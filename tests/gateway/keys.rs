//! Awkward object keys: where peer proxies break signatures. SeaweedFS checks every
//! signature; moto (auth on) stores `a//b`, `a/./b`, `a/../b` and trailing `/` verbatim.

use crate::support::client::get;
use crate::support::moto::{moto, VERBATIM_BUCKET, VERBATIM_KEYS};
use crate::support::seaweed::seaweed;
use crate::support::*;

/// Keys every gateway must serve; each object holds its own key as content.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "with space.jpg",
        "plus+sign.jpg",
        "parens (1).jpg",
        "quote'bang!star*.jpg",
        "eq=at@amp&dollar$.jpg",
        "comma,semi;colon:.jpg",
        "100% literal.txt",
        "%41 looks encoded.txt",
        "中文/图片.png",
        "кириллица/файл.jpg",
        "emoji 😀🎞️.mp4",
        "tilde~dash-under_score.dot",
        "deep/nested/path/file.dcm",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    // 1000 bytes, in segments SeaweedFS accepts (it limits a path segment to 255 bytes).
    let segment = "s".repeat(199);
    keys.push(format!("{segment}/{segment}/{segment}/{segment}/{}", "e".repeat(200)));
    assert_eq!(keys.last().unwrap().len(), 1000);
    keys
}

/// Encodes a key the way browsers write a path: only what must be encoded. A gateway has to
/// decode it once to the same key as the fully encoded form.
fn browser_encode(key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'%');
    utf8_percent_encode(key, PATH).to_string()
}

#[tokio::test]
async fn awkward_keys_are_signed_and_served_correctly() {
    let sw = seaweed();
    let keys = awkward_keys();
    let objects: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), k.as_bytes())).collect();
    sw.seed("awkward-keys", &objects).await;
    let gw = TestGateway::acme(&config("", ""), "main", &sw.endpoint, &["awkward-keys"], &sw.reader).await;
    let auth = format!("Bearer {}", token("acme"));
    for key in &keys {
        let fully = gw.url("acme", "main", "awkward-keys", key);
        let minimal = format!(
            "{}/v1/orgs/acme/storages/main/objects/awkward-keys/{}",
            gw.base,
            browser_encode(key)
        );
        for url in [fully, minimal] {
            let r = get(&url, &[("authorization", &auth)]).await;
            assert_eq!(r.status, 200, "{key} via {url}: {:?}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.body, key.as_bytes(), "{key}");
        }
    }
}

#[tokio::test]
async fn dot_segments_double_and_trailing_slashes_reach_the_bucket_verbatim() {
    let m = moto();
    let gw = TestGateway::acme(&config("", ""), "verbatim", &m.endpoint, &[VERBATIM_BUCKET], &m.keys).await;
    let auth = format!("Bearer {}", token("acme"));
    for key in VERBATIM_KEYS {
        // Sent raw (not %2E-encoded): the gateway must not normalise its own route either.
        let url = format!(
            "{}/v1/orgs/acme/storages/verbatim/objects/{VERBATIM_BUCKET}/{key}",
            gw.base
        );
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{key}: {:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, format!("content of {key}").as_bytes(), "{key} was normalised");
    }
}

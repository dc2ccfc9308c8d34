//! `assetgate demo`: the embedded s3s backend and the gateway in front of it serve the
//! sample assets with the printed URLs.

use std::net::SocketAddr;

use assetgate::demo::{Demo, ASSETS};

use crate::support::client::{get, head};

#[tokio::test]
async fn the_demo_serves_its_sample_assets() {
    let demo = Demo::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let token = demo.token();
    let urls: Vec<String> = ASSETS.iter().map(|(key, _, _)| demo.asset_url(key, &token)).collect();
    let banner = demo.banner();
    let editor = demo.editor_url();
    assert!(banner.contains(&editor));
    assert!(urls.iter().all(|u| banner.contains(u.as_str())), "{banner}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));
    for ((_, content_type, bytes), url) in ASSETS.iter().zip(&urls) {
        let r = get(url, &[]).await;
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.header("content-type"), *content_type);
        assert!(r.body[..] == bytes[..], "{url}");
        assert_eq!(head(url, &[]).await.header("content-length"), bytes.len().to_string());
    }
    let video = get(&urls[1], &[("range", "bytes=0-")]).await;
    assert_eq!(video.status, 206);
    assert_eq!(
        video.header("content-range"),
        format!("bytes 0-{}/{}", ASSETS[1].2.len() - 1, ASSETS[1].2.len())
    );
    let seek = get(&urls[1], &[("range", "bytes=1000-1999")]).await;
    assert_eq!(seek.body, ASSETS[1].2[1000..2000]);
    let no_token = get(urls[0].split('?').next().unwrap(), &[]).await;
    assert_eq!(no_token.status, 401);
    // The editor page and its config, on the editor's own origin, which the gateway allows.
    let page = get(&editor, &[]).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("assetgate demo editor"));
    let config: serde_json::Value =
        serde_json::from_slice(&get(&format!("{editor}config.json"), &[]).await.body).unwrap();
    let image = config["assets"][0]["url"].as_str().unwrap();
    let token = config["token"].as_str().unwrap();
    let origin = editor.trim_end_matches('/');
    let r = get(&format!("{image}?token={token}"), &[("origin", origin)]).await;
    assert_eq!(
        (r.status.as_u16(), r.header("access-control-allow-origin")),
        (200, origin)
    );
    let expired: serde_json::Value =
        serde_json::from_slice(&get(&format!("{editor}config.json?token=expired"), &[]).await.body).unwrap();
    let r = get(
        &format!("{image}?token={}", expired["token"].as_str().unwrap()),
        &[("origin", origin)],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (401, "expired_token"));
    stop.send(()).unwrap();
    server.await.unwrap();
}

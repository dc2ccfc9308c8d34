//! `/resolve?url=`: asset URLs as written in import files, against SeaweedFS; virtual-hosted
//! addressing through SeaweedFS's `-s3.domainName`; endpoint safety of API-created storages.

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::support::client::{get, request_body, Reply};
use crate::support::seaweed::seaweed;
use crate::support::*;

const BUCKET: &str = "resolve-assets";

fn keys() -> Vec<&'static str> {
    vec![
        "plain.jpg",
        "dir/with space+plus (1).png",
        "中文/кириллица 😀.mp4",
        "100% real.txt",
        "a=b&c@d$e,f;g:h!i*j'k.dcm",
    ]
}

/// `aws`, pointed at SeaweedFS: AWS-style asset URLs name buckets that live there.
async fn gateway() -> TestGateway {
    let sw = seaweed();
    let objects: Vec<(&str, &[u8])> = keys().into_iter().map(|k| (k, k.as_bytes())).collect();
    sw.seed(BUCKET, &objects).await;
    let aws_like = format!(
        "\n[[orgs.storages]]\nid = \"aws\"\nprovider = \"aws\"\nbuckets = [\"{BUCKET}\"]\nendpoint = \"http://localhost:{port}\"\npath_style = true\n\
         credentials = {{ type = \"access_key\", access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        sw.reader.access_key_id,
        sw.reader.secret_access_key.expose(),
        port = sw.endpoint.port.unwrap(),
    );
    let vhost = format!(
        "\n[[orgs.storages]]\nid = \"vhost\"\nprovider = \"s3_compatible\"\nbuckets = [\"{BUCKET}\"]\nendpoint = \"http://localhost:{port}\"\npath_style = false\n\
         credentials = {{ type = \"access_key\", access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        sw.reader.access_key_id,
        sw.reader.secret_access_key.expose(),
        port = sw.endpoint.port.unwrap(),
    );
    TestGateway::start(&config("", &format!("[[orgs]]\nid = \"acme\"\n{aws_like}{vhost}"))).await
}

async fn resolve(gw: &TestGateway, storage: &str, url: &str) -> Reply {
    let encoded = percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC).to_string();
    let t = token("acme");
    get(
        &format!(
            "{}/v1/orgs/acme/storages/{storage}/resolve?url={encoded}&token={t}",
            gw.base
        ),
        &[],
    )
    .await
}

#[tokio::test]
async fn every_asset_url_form_reaches_the_right_object() {
    let gw = gateway().await;
    let port = seaweed().endpoint.port.unwrap();
    for key in keys() {
        let k = assetgate::route::encode_key(key);
        let forms = [
            ("aws", format!("https://{BUCKET}.s3.eu-central-1.amazonaws.com/{k}")),
            (
                "aws",
                format!("https://{BUCKET}.s3.amazonaws.com/{k}?storageId=abc123&integrationId=xyz"),
            ),
            (
                "aws",
                format!("https://{BUCKET}.s3.dualstack.us-west-2.amazonaws.com/{k}"),
            ),
            ("aws", format!("https://s3.eu-central-1.amazonaws.com/{BUCKET}/{k}")),
            ("aws", format!("s3://{BUCKET}/{k}")),
            ("aws", format!("http://localhost:{port}/{BUCKET}/{k}")),
            ("vhost", format!("http://{BUCKET}.localhost:{port}/{k}")),
            ("vhost", format!("http://localhost:{port}/{BUCKET}/{k}")),
        ];
        for (storage, url) in forms {
            let r = resolve(&gw, storage, &url).await;
            assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.body, key.as_bytes(), "{url}");
        }
    }
}

#[tokio::test]
async fn virtual_hosted_addressing_reaches_seaweedfs_with_its_domain_name() {
    let gw = gateway().await;
    for key in keys() {
        let r = get(
            &gw.url("acme", "vhost", BUCKET, key),
            &[("authorization", &format!("Bearer {}", token("acme")))],
        )
        .await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, key.as_bytes()), "{key}");
    }
}

#[tokio::test]
async fn urls_outside_the_storage_are_refused() {
    let gw = gateway().await;
    for url in [
        "https://evil.example.com/resolve-assets/plain.jpg".to_string(),
        "https://other-bucket.s3.amazonaws.com/plain.jpg".into(),
        format!("https://s3.amazonaws.com/{BUCKET}/../other-bucket/plain.jpg"),
        format!("https://s3.amazonaws.com/{BUCKET}/a/%2e%2e/plain.jpg"),
        format!("https://s3.amazonaws.com/{BUCKET}%2F..%2Fother-bucket/plain.jpg"),
        format!("https://{BUCKET}.s3.amazonaws.com.evil.com/plain.jpg"),
        format!("https://{BUCKET}.s3.amazonaws.com@evil.com/plain.jpg"),
        format!("gs://{BUCKET}/plain.jpg"),
    ] {
        let r = resolve(&gw, "aws", &url).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (400, "url_outside_storage"),
            "{url}"
        );
    }
    let r = resolve(&gw, "aws", "not a url").await;
    assert_eq!(r.error_code(), "invalid_request");
    let missing = get(
        &format!("{}/v1/orgs/acme/storages/aws/resolve?token={}", gw.base, token("acme")),
        &[],
    )
    .await;
    assert_eq!(missing.error_code(), "invalid_request");
    // The token's prefix still applies to resolved objects.
    let scoped = token_with(&assetgate::token::Claims {
        org: "acme".into(),
        sto: None,
        pfx: Some(format!("{BUCKET}/dir/")),
        exp: now() + 60,
        iat: Some(now()),
        nbf: None,
        sub: None,
    });
    let url =
        percent_encoding::utf8_percent_encode(&format!("s3://{BUCKET}/plain.jpg"), percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let r = get(
        &format!("{}/v1/orgs/acme/storages/aws/resolve?url={url}&token={scoped}", gw.base),
        &[],
    )
    .await;
    assert_eq!(r.error_code(), "token_scope");
}

const ADMIN: &str = "admin-token-for-resolve-tests-0123";

async fn admin_gateway(dir: &std::path::Path, allow: &str) -> TestGateway {
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{key}\"\nallow_private_endpoints = [{allow}]\n",
        dir.display()
    );
    TestGateway::start(&format!("{}\n{settings}", config("", ""))).await
}

async fn create(gw: &TestGateway, id: &str, endpoint: &str) -> Reply {
    let sw = seaweed();
    let body = json!({"_id": id, "type": "s3_compatible", "buckets": [BUCKET], "endpoint": endpoint,
                      "accessKeyId": sw.reader.access_key_id, "secretAccessKey": sw.reader.secret_access_key.expose()});
    let url = format!("{}/admin/v1/orgs/acme/storages", gw.admin_base);
    request_body(
        Method::POST,
        &url,
        &[("authorization", &format!("Bearer {ADMIN}"))],
        Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn internal_endpoints_are_refused_at_creation_unless_allowed() {
    let port = seaweed().endpoint.port.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = admin_gateway(dir.path(), "").await;
    for endpoint in [
        "http://169.254.169.254".to_string(),
        format!("http://127.0.0.1:{port}"),
        "http://[::1]:9000".into(),
        format!("http://localhost:{port}"),
        "http://10.0.0.5:9000".into(),
        "http://0.0.0.0:9000".into(),
    ] {
        let r = create(&gw, "probe", &endpoint).await;
        assert_eq!(r.status, 400, "{endpoint}");
        assert!(
            r.json()["error"]["fields"]["endpoint"]
                .as_str()
                .unwrap()
                .contains("allow_private_endpoints"),
            "{endpoint}"
        );
    }
    gw.stop().await;

    let allowed = admin_gateway(dir.path(), "\"127.0.0.0/8\"").await;
    seaweed().seed(BUCKET, &[("plain.jpg", b"plain.jpg")]).await;
    assert_eq!(
        create(&allowed, "local", &format!("http://127.0.0.1:{port}"))
            .await
            .status,
        201
    );
    assert_eq!(
        create(&allowed, "named", &format!("http://localhost:{port}"))
            .await
            .status,
        201
    );
    let auth = format!("Bearer {}", token("acme"));
    for id in ["local", "named"] {
        let r = get(
            &allowed.url("acme", id, BUCKET, "plain.jpg"),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(r.status, 200, "{id}");
    }
    allowed.stop().await;

    // The operator removes the allowance: the stored storages are refused at connect time,
    // on the resolved address (the path DNS rebinding would take) and on the IP literal.
    let tightened = admin_gateway(dir.path(), "").await;
    for id in ["local", "named"] {
        let r = get(
            &tightened.url("acme", id, BUCKET, "plain.jpg"),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (502, "endpoint_not_allowed"),
            "{id}"
        );
    }
}

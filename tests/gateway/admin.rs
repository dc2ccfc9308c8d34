//! The admin API (README "Admin API") against SeaweedFS (and moto for delegation): storages created,
//! changed and deleted at run time, secrets sealed at rest, validation reports.

use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::support::client::{get, request_body, Reply};
use crate::support::moto::{moto, DELEGATED_BUCKET};
use crate::support::seaweed::seaweed;
use crate::support::*;

const ADMIN: &str = "admin-token-for-tests-0123456789";
const BUCKET: &str = "admin-assets";

fn master_key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// A gateway with the admin API, a registry in `dir`, and one config storage `fixed`.
async fn gateway(dir: &Path, key_byte: u8) -> TestGateway {
    let sw = seaweed();
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        dir.display(),
        master_key(key_byte)
    );
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("fixed", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    TestGateway::start(&format!("{}\n{settings}\n{orgs}", config("", ""))).await
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> Reply {
    crate::support::client::admin(&gw.admin_base, ADMIN, method, path, body).await
}

fn keys_body(id: &str, buckets: &[&str], secret: &str) -> Value {
    let sw = seaweed();
    json!({"_id": id, "name": "API storage", "type": "s3_compatible", "buckets": buckets, "endpoint": sw.endpoint.to_string(),
           "credentials": {"accessKeyId": sw.reader.access_key_id, "secretAccessKey": secret}})
}

async fn seed() {
    seaweed()
        .seed(BUCKET, &[("img/one.jpg", b"first image"), ("img/two.jpg", b"second")])
        .await;
}

#[tokio::test]
async fn storages_are_created_listed_changed_and_deleted_and_the_data_plane_follows() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), 1).await;
    let secret = seaweed().reader.secret_access_key.expose().to_string();
    let object = || gw.url("acme", "api-store", BUCKET, "img/one.jpg");
    let auth = format!("Bearer {}", token("acme"));
    assert_eq!(
        get(&object(), &[("authorization", &auth)]).await.error_code(),
        "unknown_storage"
    );

    let created = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(keys_body("api-store", &[BUCKET], &secret)),
    )
    .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let s = &created.json()["data"]["storage"];
    assert_eq!(
        (s["_id"].as_str(), s["source"].as_str(), s["accessType"].as_str()),
        (Some("api-store"), Some("api"), Some("iam_user"))
    );
    assert_eq!(
        (
            s["bucket"].as_str(),
            s["organization"].as_str(),
            s["pathStyle"].as_bool()
        ),
        (Some(BUCKET), Some("acme"), Some(true))
    );
    assert_eq!(get(&object(), &[("authorization", &auth)]).await.body, "first image");

    let again = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(keys_body("api-store", &[BUCKET], &secret)),
    )
    .await;
    assert_eq!(
        (again.status.as_u16(), again.json()["error"]["code"].as_str()),
        (409, Some("conflict"))
    );

    let page1 = admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages?page=1&limit=1", None)
        .await
        .json();
    let page2 = admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages?page=2&limit=1", None)
        .await
        .json();
    assert_eq!(page1["data"]["total"], 2);
    assert_eq!(
        (
            page1["data"]["storages"][0]["_id"].as_str(),
            page2["data"]["storages"][0]["_id"].as_str()
        ),
        (Some("api-store"), Some("fixed"))
    );
    assert_eq!(
        admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages?limit=101", None)
            .await
            .status,
        400
    );
    assert_eq!(
        admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages/api-store", None)
            .await
            .json()["data"]["storage"]["name"],
        "API storage"
    );

    let rotate = |s: &str| json!({"credentials": {"secretAccessKey": s}});
    assert_eq!(
        admin(
            &gw,
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/api-store",
            Some(rotate("wrong-secret-now"))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&object(), &[("authorization", &auth)]).await.error_code(),
        "upstream_credentials_rejected"
    );
    assert_eq!(
        admin(
            &gw,
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/api-store",
            Some(rotate(&secret))
        )
        .await
        .status,
        200
    );
    assert_eq!(get(&object(), &[("authorization", &auth)]).await.status, 200);

    let narrowed = admin(
        &gw,
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/api-store",
        Some(json!({"buckets": ["other-bucket"]})),
    )
    .await;
    assert_eq!(narrowed.json()["data"]["storage"]["buckets"], json!(["other-bucket"]));
    assert_eq!(
        get(&object(), &[("authorization", &auth)]).await.error_code(),
        "bucket_not_allowed"
    );

    assert_eq!(
        admin(&gw, Method::DELETE, "/admin/v1/orgs/acme/storages/api-store", None)
            .await
            .status,
        200
    );
    assert_eq!(
        get(&object(), &[("authorization", &auth)]).await.error_code(),
        "unknown_storage"
    );
    assert_eq!(
        admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages/api-store", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn secrets_stay_sealed_and_storages_survive_a_restart() {
    seed().await;
    let (capture, _guard) = crate::logs::capture("debug");
    let dir = tempfile::tempdir().unwrap();
    let secret = seaweed().reader.secret_access_key.expose().to_string();
    let mut bodies = Vec::new();
    {
        let gw = gateway(dir.path(), 1).await;
        for r in [
            admin(
                &gw,
                Method::POST,
                "/admin/v1/orgs/acme/storages",
                Some(keys_body("kept", &[BUCKET], &secret)),
            )
            .await,
            admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages", None).await,
            admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages/kept", None).await,
            admin(
                &gw,
                Method::PATCH,
                "/admin/v1/orgs/acme/storages/kept",
                Some(json!({"region": "us-east-1", "secretAccessKey": secret})),
            )
            .await,
            admin(
                &gw,
                Method::POST,
                "/admin/v1/orgs/acme/storages",
                Some(json!({"type": "bogus", "secretAccessKey": secret})),
            )
            .await,
        ] {
            bodies.push(String::from_utf8_lossy(&r.body).into_owned());
        }
        gw.stop().await;
    }
    for body in &bodies {
        assert!(!body.contains(&secret), "secret in a response: {body}");
    }
    let logs = capture.text();
    assert!(logs.contains("storage created"), "{logs}");
    assert!(!logs.contains(&secret), "secret in the logs");
    for file in walk(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in the clear in {}",
            file.display()
        );
    }

    let restarted = gateway(dir.path(), 1).await;
    let r = get(
        &restarted.url("acme", "kept", BUCKET, "img/two.jpg"),
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    assert_eq!(r.body, "second");
    restarted.stop().await;

    let wrong = assetgate::Config::from_toml(
        &format!(
            "{}\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\n",
            config("", ""),
            dir.path().display(),
            master_key(2)
        ),
        &|_| None,
    )
    .unwrap();
    let err = assetgate::Gateway::open(&wrong)
        .await
        .err()
        .expect("a wrong master key must fail")
        .to_string();
    assert!(err.contains("master key"), "{err}");
    let missing = assetgate::Config::from_toml(
        &format!(
            "{}\n[registry]\ndata_dir = \"{}\"\n",
            config("", ""),
            dir.path().display()
        ),
        &|_| None,
    )
    .unwrap();
    let err = assetgate::Gateway::open(&missing)
        .await
        .err()
        .expect("a missing master key must fail")
        .to_string();
    assert!(err.contains("master_key is not set"), "{err}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> (&'a str, &'a str) {
    let c = report["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    (c["status"].as_str().unwrap(), c["message"].as_str().unwrap())
}

#[tokio::test]
async fn validation_passes_for_a_good_storage_and_says_what_is_wrong_otherwise() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), 1).await;
    let secret = seaweed().reader.secret_access_key.expose().to_string();
    let validate = |id: &'static str, body: Option<Value>| {
        let gw = &gw;
        async move {
            admin(
                gw,
                Method::POST,
                &format!("/admin/v1/orgs/acme/storages/{id}/validate"),
                body,
            )
            .await
            .json()
        }
    };

    let good = validate("fixed", None).await;
    assert_eq!(good["data"]["valid"], true, "{good}");
    for name in ["credentials", "bucket_location", "list", "object_read"] {
        assert_eq!(check(&good, name).0, "pass", "{name}: {good}");
    }
    assert_eq!(check(&good, "assume_role").0, "skip");

    let create = |body: Value| async { admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body)).await };
    create(keys_body("wrong-secret", &[BUCKET], "not-the-secret")).await;
    let r = validate("wrong-secret", None).await;
    assert_eq!(r["data"]["valid"], false);
    assert_eq!(
        check(&r, "credentials"),
        (
            "fail",
            "the secret key is wrong (the storage computed another signature)"
        )
    );
    assert_eq!(check(&r, "list").0, "skip");

    create(keys_body("no-bucket", &[BUCKET, "never-made-bucket"], &secret)).await;
    let r = validate("no-bucket", None).await;
    let (status, message) = check(&r, "bucket_location");
    assert_eq!(status, "fail");
    assert!(message.contains("bucket never-made-bucket does not exist"), "{message}");
    assert_eq!(check(&r, "list").0, "fail");

    let mut wrong_region = keys_body("wrong-region", &[BUCKET], &secret);
    wrong_region["region"] = json!("eu-west-1");
    create(wrong_region).await;
    let r = validate("wrong-region", None).await;
    let (status, message) = check(&r, "bucket_location");
    assert_eq!(status, "fail");
    assert!(
        message.contains(&format!("bucket {BUCKET} is in us-east-1, the storage says eu-west-1")),
        "{message}"
    );

    let r = validate("fixed", Some(json!({"object": format!("{BUCKET}/img/missing.jpg")}))).await;
    assert_eq!(
        check(&r, "object_read"),
        ("fail", &*format!("object {BUCKET}/img/missing.jpg does not exist"))
    );

    let limited = seaweed().limited.clone();
    let mut denied = keys_body("denied", &[BUCKET], limited.secret_access_key.expose());
    denied["credentials"]["accessKeyId"] = json!(limited.access_key_id);
    create(denied).await;
    let r = validate("denied", None).await;
    assert_eq!(check(&r, "credentials").0, "pass");
    assert!(check(&r, "list").1.contains("no s3:ListBucket permission"), "{r}");
}

#[tokio::test]
async fn delegated_storages_use_their_orgs_external_id_and_no_other() {
    let m = moto();
    let dir = tempfile::tempdir().unwrap();
    let sts = format!(
        "[sts]\nendpoint = \"{}\"\ncredentials = {{ access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        m.endpoint,
        m.keys.access_key_id,
        m.keys.secret_access_key.expose()
    );
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.1\"]\n",
        dir.path().display(),
        master_key(3)
    );
    let gw = TestGateway::start(&format!("{}\n{sts}\n{settings}", config("", ""))).await;
    let external_id = |org: &'static str| {
        let gw = &gw;
        async move {
            let r = admin(gw, Method::GET, &format!("/admin/v1/orgs/{org}/external-id"), None).await;
            r.json()["data"]["externalId"].as_str().unwrap().to_string()
        }
    };
    let acme_ext = external_id("acme").await;
    // Org acme's admin creates a role trusting the gateway with acme's external ID.
    let acme_role = m.add_role("acme-labeling-read", &acme_ext);
    let role = |id: &str, ext: Option<&str>| {
        let mut body = json!({"_id": id, "type": "s3_compatible", "endpoint": m.endpoint.to_string(),
                              "buckets": [DELEGATED_BUCKET], "credentials": {"roleArn": acme_role}});
        if let Some(ext) = ext {
            body["credentials"]["externalId"] = json!(ext);
        }
        body
    };
    let created = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(role("by-role", None)),
    )
    .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(created.json()["data"]["storage"]["accessType"], "iam_delegation");
    assert_eq!(created.json()["data"]["storage"]["roleArn"], json!(acme_role));
    let ok = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/by-role/validate",
        Some(json!({"object": format!("{DELEGATED_BUCKET}/scan.dcm")})),
    )
    .await
    .json();
    assert_eq!(check(&ok, "assume_role").0, "pass", "{ok}");
    assert_eq!(check(&ok, "object_read").0, "pass", "{ok}");
    let own = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(role("own-ext", Some(&acme_ext))),
    )
    .await;
    assert_eq!(own.status, 201, "naming the org's own external ID is fine");

    // Org globex learns acme's role ARN and external ID: it cannot register them.
    let stolen = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/globex/storages",
        Some(role("stolen", Some(&acme_ext))),
    )
    .await;
    assert_eq!(
        (stolen.status.as_u16(), stolen.json()["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );
    assert!(
        stolen.json()["error"]["fields"]["externalId"].is_string(),
        "{}",
        stolen.json()
    );
    assert!(!String::from_utf8_lossy(&stolen.body).contains(&acme_ext));
    // Without an external ID, globex's own is used, and the role's trust policy refuses it.
    let borrowed = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/globex/storages",
        Some(role("borrowed", None)),
    )
    .await;
    assert_eq!(borrowed.status, 201);
    let bad = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/globex/storages/borrowed/validate",
        None,
    )
    .await
    .json();
    assert_eq!(bad["data"]["valid"], false);
    let (status, message) = check(&bad, "assume_role");
    assert_eq!(status, "fail");
    assert!(
        message.contains("trust policy") && message.contains("external ID"),
        "{message}"
    );
    let read = get(
        &gw.url("globex", "borrowed", DELEGATED_BUCKET, "scan.dcm"),
        &[("authorization", &format!("Bearer {}", token("globex")))],
    )
    .await;
    assert_eq!(
        (read.status.as_u16(), read.error_code().as_str()),
        (502, "assume_role_denied")
    );
}

#[tokio::test]
async fn config_storages_are_read_only_and_bad_requests_name_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), 1).await;
    let code = |r: &Reply| {
        (
            r.status.as_u16(),
            r.json()["error"]["code"].as_str().unwrap_or_default().to_string(),
        )
    };
    let patch = admin(
        &gw,
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/fixed",
        Some(json!({"region": "eu-west-1"})),
    )
    .await;
    assert_eq!(code(&patch), (409, "read_only".into()));
    assert_eq!(
        code(&admin(&gw, Method::DELETE, "/admin/v1/orgs/acme/storages/fixed", None).await),
        (409, "read_only".into())
    );

    let cases = [
        (
            json!({"type": "aws", "accessKeyId": "a", "secretAccessKey": "b"}),
            "buckets",
        ),
        (
            json!({"type": "azure_files", "bucket": "b-bucket", "accessKeyId": "a", "secretAccessKey": "b"}),
            "type",
        ),
        (
            json!({"type": "azure", "bucket": "b-bucket", "accessKeyId": "a", "secretAccessKey": "b"}),
            "account",
        ),
        (
            json!({"type": "aws", "bucket": "b-bucket", "roleArn": "arn:aws:iam::12:role"}),
            "roleArn",
        ),
        (
            json!({"type": "s3_compatible", "bucket": "b-bucket", "endpoint": "minio:9000", "accessKeyId": "a", "secretAccessKey": "b"}),
            "endpoint",
        ),
    ];
    for (body, field) in cases {
        let r = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body)).await;
        assert_eq!(code(&r), (400, "validation_error".into()));
        assert!(
            r.json()["error"]["fields"][field].is_string(),
            "{field}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let garbage = request_body(
        Method::POST,
        &format!("{}/admin/v1/orgs/acme/storages", gw.admin_base),
        &[("authorization", &format!("Bearer {ADMIN}"))],
        Bytes::from("{not json"),
    )
    .await;
    assert_eq!(code(&garbage), (400, "validation_error".into()));

    let url = format!("{}/admin/v1/orgs/acme/storages", gw.admin_base);
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-token")],
        vec![("authorization", "Basic YWRtaW4=")],
    ] {
        let r = request_body(Method::GET, &url, &headers, Bytes::new()).await;
        assert_eq!(code(&r), (401, "unauthorized".into()));
    }
    assert_eq!(get(&format!("{}/healthz", gw.admin_base), &[]).await.status, 200);
}

#[tokio::test]
async fn every_input_rule_is_a_400_naming_its_field() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), 1).await;
    let secret = seaweed().reader.secret_access_key.expose().to_string();
    let refused = |r: &Reply, field: &str| {
        assert_eq!(
            (r.status.as_u16(), r.json()["error"]["code"].as_str()),
            (400, Some("validation_error")),
            "{field}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json()["error"]["fields"][field].is_string(), "{field}: {}", r.json());
    };
    let create = |body: Value| {
        let gw = &gw;
        async move { admin(gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body)).await }
    };
    let aws = |extra: Value| {
        let mut body = json!({"type": "aws", "bucket": BUCKET, "accessKeyId": "AK", "secretAccessKey": "SK"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for region in [
        "x@169.254.169.254",
        "us-east-1\r\nX-Injected: 1",
        "EU-WEST-1",
        "us-east-1.evil.test/",
    ] {
        refused(&create(aws(json!({"region": region}))).await, "region");
    }
    for endpoint in [
        " https://169.254.169.254",
        "https://s3.example.com ",
        "http://8.8.8.8:9000",
        "https://[::a9fe:a9fe]",
        "https://[::ffff:0:a9fe:a9fe]",
        "https://[64:ff9b::a9fe:a9fe]",
        "https://[64:ff9b:1::a9fe:a9fe]",
        "https://[2002:a9fe:a9fe::]",
        "https://[2001:0:a9fe:a9fe::]",
        "https://[fec0::1]",
        "https://[fd00:ec2::254]",
        "https://100.100.100.200",
    ] {
        refused(&create(aws(json!({"endpoint": endpoint}))).await, "endpoint");
    }
    for query in [
        "page=18446744073709551615",
        "page=0",
        "page=-1",
        "limit=0",
        "limit=101",
        "page=abc",
    ] {
        let r = admin(&gw, Method::GET, &format!("/admin/v1/orgs/acme/storages?{query}"), None).await;
        assert_eq!(r.status, 400, "{query}");
    }
    let far = admin(
        &gw,
        Method::GET,
        "/admin/v1/orgs/acme/storages?page=1000000&limit=100",
        None,
    )
    .await;
    assert_eq!(
        (
            far.status.as_u16(),
            far.json()["data"]["storages"].as_array().map(Vec::len)
        ),
        (200, Some(0))
    );

    // PATCH checks the endpoint it will use, however it is written.
    let created = create(keys_body("patched", &[BUCKET], &secret)).await;
    assert_eq!(created.status, 201);
    for endpoint in [
        " http://169.254.169.254",
        "http://169.254.169.254",
        "https://[::a9fe:a9fe]:443",
    ] {
        let r = admin(
            &gw,
            Method::PATCH,
            "/admin/v1/orgs/acme/storages/patched",
            Some(json!({"endpoint": endpoint})),
        )
        .await;
        refused(&r, "endpoint");
    }
    let read = admin(&gw, Method::GET, "/admin/v1/orgs/acme/storages/patched", None).await;
    assert_eq!(
        read.json()["data"]["storage"]["endpoint"],
        json!(seaweed().endpoint.to_string())
    );
    let auth = format!("Bearer {}", token("acme"));
    let object = get(
        &gw.url("acme", "patched", BUCKET, "img/one.jpg"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(object.body, "first image");

    // A body is a JSON object, or nothing where nothing means `{}`; PUT of limits needs one.
    for (method, path) in [
        (Method::POST, "/admin/v1/orgs/acme/tokens"),
        (Method::POST, "/admin/v1/orgs/acme/storages/patched/validate"),
        (Method::PUT, "/admin/v1/orgs/acme/limits"),
        (Method::DELETE, "/admin/v1/orgs/acme/cache"),
        (Method::PATCH, "/admin/v1/orgs/acme/storages/patched"),
    ] {
        for body in [json!([null, null]), json!("text"), json!(7)] {
            refused(&admin(&gw, method.clone(), path, Some(body)).await, "body");
        }
    }
    refused(
        &admin(&gw, Method::PUT, "/admin/v1/orgs/acme/limits", None).await,
        "body",
    );
    let wrong = admin(&gw, Method::PUT, "/admin/v1/orgs/acme/storages", None).await;
    assert_eq!((wrong.status.as_u16(), wrong.header("allow")), (405, "GET, POST"));
    let listed = json!({"labeler_limits": [5, 10, 2]});
    refused(
        &admin(&gw, Method::PUT, "/admin/v1/orgs/acme/limits", Some(listed)).await,
        "labeler_limits",
    );
}

#[tokio::test]
async fn external_ids_are_stable_and_minted_tokens_work() {
    seed().await;
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let gw = gateway(dir.path(), 1).await;
        let a = admin(&gw, Method::GET, "/admin/v1/orgs/acme/external-id", None)
            .await
            .json()["data"]["externalId"]
            .as_str()
            .unwrap()
            .to_string();
        let b = admin(&gw, Method::GET, "/admin/v1/orgs/acme/external-id", None)
            .await
            .json()["data"]["externalId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(a, b);
        assert!(
            a.len() >= 32 && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        let other = admin(&gw, Method::GET, "/admin/v1/orgs/globex/external-id", None)
            .await
            .json()["data"]["externalId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(a, other);

        let minted = admin(
            &gw,
            Method::POST,
            "/admin/v1/orgs/acme/tokens",
            Some(json!({"storage": "fixed", "ttl": "5m", "sub": "labeler-42"})),
        )
        .await
        .json();
        let t = minted["data"]["token"].as_str().unwrap();
        assert!(minted["data"]["expiresAt"].as_str().unwrap().ends_with('Z'));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap();
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            (claims["org"].as_str(), claims["sto"].as_str(), claims["sub"].as_str()),
            (Some("acme"), Some("fixed"), Some("labeler-42"))
        );
        assert_eq!(
            get(
                &format!("{}?token={t}", gw.url("acme", "fixed", BUCKET, "img/one.jpg")),
                &[]
            )
            .await
            .status,
            200
        );
        let too_long = admin(
            &gw,
            Method::POST,
            "/admin/v1/orgs/acme/tokens",
            Some(json!({"ttl": "48h"})),
        )
        .await;
        assert_eq!(too_long.status, 400);
        gw.stop().await;
        a
    };
    let gw = gateway(dir.path(), 1).await;
    let after = admin(&gw, Method::GET, "/admin/v1/orgs/acme/external-id", None)
        .await
        .json()["data"]["externalId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first, after, "the external ID changed across a restart");
}

#[tokio::test]
async fn without_a_master_key_api_storages_are_refused_but_config_ones_serve() {
    seed().await;
    let sw = seaweed();
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("fixed", &sw.endpoint, &[BUCKET], &sw.reader)
    );
    let gw = TestGateway::start(&format!("{}\n[admin]\ntoken = \"{ADMIN}\"\n{orgs}", config("", ""))).await;
    let r = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(keys_body("x", &[BUCKET], "s")),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"]["code"].as_str()),
        (503, Some("registry_locked"))
    );
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("master_key"));
    let served = get(
        &gw.url("acme", "fixed", BUCKET, "img/one.jpg"),
        &[("authorization", &format!("Bearer {}", token("acme")))],
    )
    .await;
    assert_eq!(served.status, 200);
}

/// Every admin route checks its org like a created org id, and a NUL or other control
/// character in any string of a body is a 400 naming the field: nothing reaches the
/// registry's database (PostgreSQL refuses NUL in text, which used to answer 503).
#[tokio::test]
async fn malformed_orgs_and_control_characters_are_400_and_store_nothing() {
    let (_, url) = crate::support::postgres::database();
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        master_key(3)
    );
    let gw = TestGateway::start(&format!("{}\n{settings}", config("", ""))).await;
    let ready = format!("{}/readyz", gw.admin_base);
    within(std::time::Duration::from_secs(20), "the registry to load", || {
        let ready = ready.clone();
        async move { get(&ready, &[]).await.status == 200 }
    })
    .await;
    for org in ["ac%0D%0Ame", "a%00b", "a%20b", "%zz", "..", &"o".repeat(129)] {
        for path in ["external-id", "storages", "usage", "limits"] {
            let r = admin(&gw, Method::GET, &format!("/admin/v1/orgs/{org}/{path}"), None).await;
            assert_eq!(r.status, 400, "{org}/{path}: {}", String::from_utf8_lossy(&r.body));
        }
    }
    let db = {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };
    let stored: i64 = db
        .query_one("SELECT count(*) FROM assetgate_external_ids", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "no external ID was stored for a malformed org");

    let mut body = keys_body("nul", &[BUCKET], "hidden\u{0}value");
    let r = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body.clone())).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let fields = &r.json()["error"]["fields"];
    assert!(fields["credentials.secretAccessKey"].is_string(), "{fields}");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("hidden"),
        "the value is not echoed"
    );
    body["credentials"]["secretAccessKey"] = json!("fine");
    body["name"] = json!("line\nbreak");
    let r = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body)).await;
    assert!(r.json()["error"]["fields"]["name"].is_string(), "{}", r.json());
    let r = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/tokens",
        Some(json!({"sub": "labeler\u{0}7"})),
    )
    .await;
    assert!(r.json()["error"]["fields"]["sub"].is_string(), "{}", r.json());
    let r = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/tokens",
        Some(json!({"sub": "u".repeat(257)})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["fields"]["sub"].is_string(), "{}", r.json());
    let stored: i64 = db
        .query_one("SELECT count(*) FROM assetgate_storages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}

/// The OpenAPI document is served as kept in the repository, behind the admin token, and
/// names every route and method the API takes: each documented operation is routed (never
/// 404 "no such admin route" or 405), and every other method on a documented path is 405.
#[tokio::test]
async fn the_openapi_document_is_served_and_lists_every_route_and_method() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), 1).await;
    let served = admin(&gw, Method::GET, "/admin/v1/openapi.json", None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, Bytes::from_static(assetgate::admin::OPENAPI.as_bytes()));
    let anonymous = get(&format!("{}/admin/v1/openapi.json", gw.admin_base), &[]).await;
    assert_eq!(anonymous.status, 401);

    let doc: Value = serde_json::from_str(assetgate::admin::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    for (path, operations) in paths {
        let concrete = path.replace("{org}", "acme").replace("{id}", "fixed");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let documented = operations.get(method.to_ascii_lowercase()).is_some();
            let reply = admin(&gw, Method::from_bytes(method.as_bytes()).unwrap(), &concrete, None).await;
            let code = reply.json()["error"]["code"].as_str().map(str::to_string);
            if documented {
                assert_ne!(reply.status, 405, "{method} {path} is documented but not routed");
                let message = reply.json()["error"]["message"].as_str().map(str::to_string);
                assert_ne!(
                    message.as_deref(),
                    Some("no such admin route"),
                    "{method} {path} is documented but not routed"
                );
            } else {
                assert_eq!(
                    reply.status, 405,
                    "{method} {path} is routed but not documented: {code:?}"
                );
                let allow = reply.header("allow");
                let mut allowed: Vec<&str> = allow.split(", ").filter(|m| *m != "HEAD").collect();
                let mut listed: Vec<String> = operations
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                allowed.sort_unstable();
                listed.sort_unstable();
                assert_eq!(allowed, listed, "the Allow of {path}");
            }
        }
    }
}

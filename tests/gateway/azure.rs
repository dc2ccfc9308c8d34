//! Azure Blob Storage (README "Azure and Google Cloud Storage") against Azurite, which checks Shared Key and SAS signatures
//! for real: objects byte for byte under awkward names, every range form (the suffix range
//! emulated, since Azure has none), conditionals, error mapping with CORS, SAS, the admin API
//! and its validation, and Entra delegation through the token stand-in (Azurite over HTTPS
//! with `--oauth basic`).

use std::time::{Duration, SystemTime};

use http::Method;
use serde_json::{json, Value};

use crate::support::azurite::{azurite, azurite_oauth, ACCOUNT, OTHER_ACCOUNT};
use crate::support::client::{get, head, Reply};
use crate::support::oauth::{self, OAuth};
use crate::support::*;
use assetgate::route::encode_key;

const ADMIN: &str = "admin-token-for-azure-tests-0123";

fn shared_key(key: &str) -> String {
    format!("{{ type = \"shared_key\", account_key = \"{key}\" }}")
}

/// A gateway whose org `acme` has the given Azure storage blocks.
async fn gateway(extra: &str, storages: &str) -> TestGateway {
    TestGateway::start(&config(extra, &format!("[[orgs]]\nid = \"acme\"\n{storages}"))).await
}

fn auth() -> String {
    format!("Bearer {}", token("acme"))
}

async fn fetch(gw: &TestGateway, storage: &str, container: &str, key: &str, headers: &[(&str, &str)]) -> Reply {
    let auth = auth();
    let mut all = vec![("authorization", auth.as_str()), ("origin", EDITOR_ORIGIN)];
    all.extend_from_slice(headers);
    get(&gw.url("acme", storage, container, key), &all).await
}

const AWKWARD: [&str; 5] = [
    "a b/ü€ #1.png",
    "plus+and&amp=eq.jpg",
    "percent%25 and %.dcm",
    "deep/dir/with spaces/x.pdf",
    "semi;colon,comma'quote\".txt",
];

#[tokio::test]
async fn azure_objects_stream_byte_identical_under_awkward_names() {
    let az = azurite();
    let big = pattern(3 * 1024 * 1024 + 17, 3);
    let small = pattern(65 * 1024 + 3, 9);
    let mut blobs: Vec<(&str, &[u8])> = AWKWARD.iter().map(|n| (*n, small.as_slice())).collect();
    blobs.push(("big.bin", &big));
    blobs.push(("empty.txt", b""));
    az.seed("az-objects", &blobs).await;
    let gw = gateway("", &az.storage("blobs", &["az-objects"], &shared_key(&az.key))).await;
    for name in AWKWARD {
        let r = fetch(&gw, "blobs", "az-objects", name, &[]).await;
        assert_eq!(r.status, 200, "{name}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.body == small, "{name}: other bytes");
        assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
        assert!(
            r.headers.keys().all(|k| !k.as_str().starts_with("x-ms-")),
            "{name}: {:?}",
            r.headers
        );
    }
    let r = fetch(&gw, "blobs", "az-objects", "big.bin", &[]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, big.len()));
    assert!(r.body == big);
    let h = head(
        &gw.url("acme", "blobs", "az-objects", "big.bin"),
        &[("authorization", &auth())],
    )
    .await;
    assert_eq!(
        (h.status.as_u16(), h.header("content-length")),
        (200, big.len().to_string().as_str())
    );
    let empty = fetch(&gw, "blobs", "az-objects", "empty.txt", &[]).await;
    assert_eq!((empty.status.as_u16(), empty.body.len()), (200, 0));
    // `/resolve` takes the blob URL an import file has, Azure's public host or the
    // storage's own endpoint, and reads it from the storage's endpoint.
    for url in [
        format!(
            "https://{ACCOUNT}.blob.core.windows.net/az-objects/{}",
            encode_key(AWKWARD[0])
        ),
        format!("{}/{ACCOUNT}/az-objects/{}", az.endpoint, encode_key(AWKWARD[0])),
    ] {
        let encoded = percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC);
        let r = get(
            &format!(
                "{}/v1/orgs/acme/storages/blobs/resolve?url={encoded}&token={}",
                gw.base,
                token("acme")
            ),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.body == small, "{url}");
    }
}

#[tokio::test]
async fn azure_answers_every_range_form_the_suffix_one_included() {
    let az = azurite();
    let data = pattern(10_000, 5);
    az.seed("az-ranges", &[("clip.mp4", &data), ("empty.bin", b"")]).await;
    let gw = gateway("", &az.storage("blobs", &["az-ranges"], &shared_key(&az.key))).await;
    let cases: [(&str, u16, &str, std::ops::Range<usize>); 5] = [
        ("bytes=0-", 206, "bytes 0-9999/10000", 0..10_000),
        ("bytes=10-19", 206, "bytes 10-19/10000", 10..20),
        ("bytes=-7", 206, "bytes 9993-9999/10000", 9993..10_000),
        ("bytes=-20000", 206, "bytes 0-9999/10000", 0..10_000),
        ("bytes=9990-", 206, "bytes 9990-9999/10000", 9990..10_000),
    ];
    for (asked, status, content_range, slice) in cases {
        let r = fetch(&gw, "blobs", "az-ranges", "clip.mp4", &[("range", asked)]).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{asked}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("content-range"), content_range, "{asked}");
        assert!(r.body == data[slice], "{asked}: other bytes");
    }
    for asked in ["bytes=10000-", "bytes=-0"] {
        let r = fetch(&gw, "blobs", "az-ranges", "clip.mp4", &[("range", asked)]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (416, "range_not_satisfiable"),
            "{asked}"
        );
        assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN, "{asked}");
    }
    let r = fetch(&gw, "blobs", "az-ranges", "empty.bin", &[("range", "bytes=-5")]).await;
    assert_eq!(r.status.as_u16(), 416, "a suffix of nothing is unsatisfiable");
}

#[tokio::test]
async fn azure_conditionals_give_304_and_412() {
    let az = azurite();
    az.seed("az-cond", &[("a.jpg", b"conditional bytes")]).await;
    let gw = gateway("", &az.storage("blobs", &["az-cond"], &shared_key(&az.key))).await;
    let first = fetch(&gw, "blobs", "az-cond", "a.jpg", &[]).await;
    let etag = first.header("etag").to_string();
    assert!(!etag.is_empty());
    let not_modified = fetch(&gw, "blobs", "az-cond", "a.jpg", &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("access-control-allow-origin"), EDITOR_ORIGIN);
    let failed = fetch(&gw, "blobs", "az-cond", "a.jpg", &[("if-match", "\"0xNOTTHIS\"")]).await;
    assert_eq!(
        (failed.status.as_u16(), failed.error_code().as_str()),
        (412, "precondition_failed")
    );
    let ranged = fetch(
        &gw,
        "blobs",
        "az-cond",
        "a.jpg",
        &[("range", "bytes=-5"), ("if-match", &etag)],
    )
    .await;
    assert_eq!((ranged.status.as_u16(), &ranged.body[..]), (206, &b"bytes"[..]));
}

#[tokio::test]
async fn azure_errors_map_to_the_spec_codes_with_cors() {
    let az = azurite();
    az.seed("az-errors", &[("present.jpg", b"x")]).await;
    let storages = [
        az.storage("blobs", &["az-errors", "az-never-created"], &shared_key(&az.key)),
        az.storage("wrong-key", &["az-errors"], &shared_key(&az.other_key)),
        // ACCOUNT's key used for another account: Azurite refuses the signature.
        az.storage("other-account", &["az-errors"], &shared_key(&az.key))
            .replace(
                &format!("account = \"{ACCOUNT}\""),
                &format!("account = \"{OTHER_ACCOUNT}\""),
            )
            .replace(&format!("/{ACCOUNT}\""), &format!("/{OTHER_ACCOUNT}\"")),
    ]
    .concat();
    let gw = gateway("", &storages).await;
    let code = |r: &Reply| (r.status.as_u16(), r.error_code());
    let missing = fetch(&gw, "blobs", "az-errors", "absent.jpg", &[]).await;
    assert_eq!(code(&missing), (404, "no_such_key".into()));
    assert_eq!(missing.header("access-control-allow-origin"), EDITOR_ORIGIN);
    let no_container = fetch(&gw, "blobs", "az-never-created", "a.jpg", &[]).await;
    assert_eq!(code(&no_container), (404, "no_such_bucket".into()));
    let outside = fetch(&gw, "blobs", "not-listed", "a.jpg", &[]).await;
    assert_eq!(code(&outside), (403, "bucket_not_allowed".into()));
    // Azurite answers a wrong key 403 AuthorizationFailure (Azure: AuthenticationFailed,
    // mapped to upstream_credentials_rejected; see the unit tests of the mapping).
    for storage in ["wrong-key", "other-account"] {
        let r = fetch(&gw, storage, "az-errors", "present.jpg", &[]).await;
        assert_eq!(code(&r), (403, "upstream_access_denied".into()), "{storage}");
        assert_eq!(r.json()["error"]["upstreamCode"], "AuthorizationFailure", "{storage}");
        assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN);
        let h = head(
            &gw.url("acme", storage, "az-errors", "present.jpg"),
            &[("authorization", &auth())],
        )
        .await;
        assert_eq!(h.status, 403, "HEAD {storage}: its code comes from x-ms-error-code");
    }
}

#[tokio::test]
async fn azure_sas_works_and_a_forged_or_expired_one_is_refused() {
    let az = azurite();
    az.seed("az-sas", &[("a.jpg", b"sas bytes")]).await;
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let sas = |token: String| format!("{{ type = \"sas\", token = \"{token}\" }}");
    let storages = [
        az.storage("good", &["az-sas"], &sas(az.account_sas("rl", in_an_hour, &az.key))),
        az.storage(
            "forged",
            &["az-sas"],
            &sas(az.account_sas("rl", in_an_hour, &az.other_key)),
        ),
        az.storage(
            "expired",
            &["az-sas"],
            &sas(az.account_sas("rl", SystemTime::now() - Duration::from_secs(60), &az.key)),
        ),
    ]
    .concat();
    let gw = gateway("", &storages).await;
    let good = fetch(&gw, "good", "az-sas", "a.jpg", &[("range", "bytes=0-2")]).await;
    assert_eq!((good.status.as_u16(), &good.body[..]), (206, &b"sas"[..]));
    for storage in ["forged", "expired"] {
        let r = fetch(&gw, storage, "az-sas", "a.jpg", &[]).await;
        assert_eq!(r.status, 403, "{storage}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.error_code(), "upstream_access_denied", "{storage}");
    }
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> Reply {
    crate::support::client::admin(&gw.admin_base, ADMIN, method, path, body).await
}

#[tokio::test]
async fn azure_storages_are_created_validated_and_served_through_the_admin_api() {
    let az = azurite();
    az.seed("az-admin", &[("scans/one.dcm", b"dicom bytes")]).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.1\"]\n",
        dir.path().display(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [4u8; 32])
    );
    let gw = TestGateway::start(&config("", &settings)).await;
    let body = |key: &str| {
        json!({"_id": "api-blobs", "provider": "AZURE", "account": ACCOUNT, "buckets": ["az-admin"],
               "endpoint": format!("{}/{ACCOUNT}", az.endpoint), "accountKey": key})
    };
    let created = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body(&az.key))).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let storage = &created.json()["data"]["storage"];
    assert_eq!(
        (storage["type"].as_str(), storage["accessType"].as_str()),
        (Some("azure"), Some("shared_key"))
    );
    assert!(
        !String::from_utf8_lossy(&created.body).contains(&az.key),
        "the key is write-only"
    );
    let r = fetch(&gw, "api-blobs", "az-admin", "scans/one.dcm", &[]).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"dicom bytes"[..]));

    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/api-blobs/validate",
        Some(json!({})),
    )
    .await;
    let checks = &report.json()["data"]["checks"];
    let statuses: Vec<(String, String)> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().into(), c["status"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("credentials", "pass"),
            ("container", "pass"),
            ("list", "pass"),
            ("object_read", "pass")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{}",
        String::from_utf8_lossy(&report.body)
    );
    assert_eq!(report.json()["data"]["valid"], true);

    let rotated = admin(
        &gw,
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/api-blobs",
        Some(json!({"accountKey": az.other_key, "buckets": ["az-admin", "az-absent"]})),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", String::from_utf8_lossy(&rotated.body));
    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/api-blobs/validate",
        Some(json!({})),
    )
    .await;
    assert_eq!(report.json()["data"]["valid"], false);
    let first = &report.json()["data"]["checks"][0];
    assert_eq!(
        (first["name"].as_str(), first["status"].as_str()),
        (Some("credentials"), Some("fail")),
        "{first}"
    );

    let restored = admin(
        &gw,
        Method::PATCH,
        "/admin/v1/orgs/acme/storages/api-blobs",
        Some(json!({"accountKey": az.key})),
    )
    .await;
    assert_eq!(restored.status, 200);
    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/api-blobs/validate",
        Some(json!({})),
    )
    .await;
    let container = &report.json()["data"]["checks"][1];
    assert_eq!(container["status"], "fail");
    assert!(
        container["message"].as_str().unwrap().contains("az-absent"),
        "{container}"
    );

    // A tenant's endpoint still may not reach the gateway's own networks unless allowed.
    let mut sneaky = body(&az.key);
    sneaky["_id"] = json!("sneaky");
    sneaky["endpoint"] = json!(format!("http://169.254.169.254/{ACCOUNT}"));
    let refused = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(sneaky)).await;
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"]["fields"]["endpoint"].is_string());
}

#[tokio::test]
async fn entra_delegation_shares_one_token_request_per_tenant_and_survives_a_token_outage() {
    let az = azurite_oauth();
    az.seed("az-entra", &[("scan.dcm", b"entra bytes")]).await;
    let oauth = OAuth::start().await;
    // Slow answers, so that the cold requests below all wait on the same token request.
    oauth.set_delay(Duration::from_millis(300));
    let extra = format!(
        "upstream_ca_file = \"{}\"\n[azure]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthority = \"{}\"\nendpoints = [\"{}\"]\n",
        az.ca_file.as_ref().unwrap().display(),
        oauth::CLIENT_ID,
        oauth::CLIENT_SECRET,
        oauth.url(),
        az.endpoint
    ) + "[sts]\nfailure_cache = \"1s\"\n";
    let entra = |tenant: &str| format!("{{ type = \"entra_delegation\", tenant_id = \"{tenant}\" }}");
    let storages = [
        az.storage("entra", &["az-entra"], &entra(oauth::TENANT)),
        az.storage(
            "unconsented",
            &["az-entra"],
            &entra("ffffffff-0000-0000-0000-000000000000"),
        ),
        az.storage("later", &["az-entra"], &entra("contoso.onmicrosoft.com")),
    ]
    .concat();
    let gw = gateway(&extra, &storages).await;

    let url = gw.url("acme", "entra", "az-entra", "scan.dcm");
    let auth = auth();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (url, auth) = (url.clone(), auth.clone());
            tokio::spawn(async move { get(&url, &[("authorization", &auth)]).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(
            (r.status.as_u16(), &r.body[..]),
            (200, &b"entra bytes"[..]),
            "{:?}",
            r.headers
        );
    }
    assert_eq!(oauth.calls("entra"), 1, "concurrent misses share one token request");

    let unconsented = fetch(&gw, "unconsented", "az-entra", "scan.dcm", &[]).await;
    assert_eq!(
        (unconsented.status.as_u16(), unconsented.error_code().as_str()),
        (502, "token_exchange_denied")
    );
    assert_eq!(unconsented.header("access-control-allow-origin"), EDITOR_ORIGIN);
    assert!(!String::from_utf8_lossy(&unconsented.body).contains(oauth::CLIENT_SECRET));

    // The token endpoint goes away: a tenant with a token keeps being served; one without
    // gets 503 token_service_unavailable, and is served once the endpoint is back.
    oauth.set_mode(oauth::Mode::Down);
    let cached = fetch(&gw, "entra", "az-entra", "scan.dcm", &[]).await;
    assert_eq!(cached.status, 200);
    let down = fetch(&gw, "later", "az-entra", "scan.dcm", &[]).await;
    assert_eq!(
        (down.status.as_u16(), down.error_code().as_str()),
        (503, "token_service_unavailable")
    );
    oauth.set_mode(oauth::Mode::Issue);
    oauth.set_delay(Duration::ZERO);
    let mut back = None;
    for _ in 0..40 {
        let r = fetch(&gw, "later", "az-entra", "scan.dcm", &[]).await;
        // contoso.onmicrosoft.com is no tenant of the stand-in: refused, no longer down.
        if r.error_code() != "token_service_unavailable" {
            back = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let back = back.expect("the token endpoint is asked again after failure_cache");
    assert_eq!(back.error_code(), "token_exchange_denied");
}

/// Entra delegation needs nothing secret (a tenant ID, an account name), so an org could
/// register another org's storage; a container serves an API storage only once it holds
/// the org's external ID in `.assetgate-org`.
#[tokio::test]
async fn an_api_entra_storage_serves_only_containers_that_name_its_org() {
    let az = azurite_oauth();
    az.seed("az-proof", &[("a.jpg", b"proven bytes")]).await;
    let oauth = OAuth::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = format!("upstream_ca_file = \"{}\"", az.ca_file.as_ref().unwrap().display());
    let settings = format!(
        "[sts]\nfailure_cache = \"1s\"\n[azure]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthority = \"{}\"\nendpoints = [\"{}\"]\n\
         [admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.1\"]\n",
        oauth::CLIENT_ID,
        oauth::CLIENT_SECRET,
        oauth.url(),
        az.endpoint,
        dir.path().display(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [8u8; 32])
    );
    let gw = TestGateway::start(&config(&server, &settings)).await;
    let body = json!({"_id": "entra", "type": "azure", "account": ACCOUNT, "buckets": ["az-proof"],
        "endpoint": format!("{}/{ACCOUNT}", az.endpoint), "tenantId": oauth::TENANT});
    for org in ["acme", "globex"] {
        let r = admin(
            &gw,
            Method::POST,
            &format!("/admin/v1/orgs/{org}/storages"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let acme_id = admin(&gw, Method::GET, "/admin/v1/orgs/acme/external-id", None)
        .await
        .json()["data"]["externalId"]
        .as_str()
        .unwrap()
        .to_string();
    let object = |org: &str| {
        let url = gw.url(org, "entra", "az-proof", "a.jpg");
        let auth = format!("Bearer {}", token(org));
        async move { get(&url, &[("authorization", &auth), ("origin", EDITOR_ORIGIN)]).await }
    };
    let unproven = object("acme").await;
    assert_eq!(
        (unproven.status.as_u16(), unproven.error_code().as_str()),
        (403, "ownership_not_proven")
    );
    assert_eq!(unproven.header("access-control-allow-origin"), EDITOR_ORIGIN);
    assert!(unproven.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains(".assetgate-org"));

    az.put(
        "az-proof",
        ".assetgate-org",
        "text/plain",
        format!("{acme_id}\n").as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let proven = object("acme").await;
    assert_eq!((proven.status.as_u16(), &proven.body[..]), (200, &b"proven bytes"[..]));
    // The same container registered by another org: its marker names acme, not globex.
    let stolen = object("globex").await;
    assert_eq!(
        (stolen.status.as_u16(), stolen.error_code().as_str()),
        (403, "ownership_not_proven")
    );

    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/entra/validate",
        Some(json!({})),
    )
    .await;
    let last = report.json()["data"]["checks"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (last["name"].as_str(), last["status"].as_str()),
        (Some("ownership"), Some("pass")),
        "{last}"
    );
    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/globex/storages/entra/validate",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        report.json()["data"]["valid"],
        false,
        "{}",
        String::from_utf8_lossy(&report.body)
    );
}

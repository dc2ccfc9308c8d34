//! Google Cloud Storage (README "Azure and Google Cloud Storage") with service account keys and impersonation, against
//! fake-gcs-server behind a relay that passes only tokens the OAuth stand-in issued (the
//! server itself checks none): the JWT-bearer exchange (the stand-in verifies the RS256
//! assertion with the key's public half), one token request for many cold requests, a
//! refreshed token when the bucket calls it invalid, refusals and outages, ranges, and the
//! admin API's rule for a key's `token_uri`.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use crate::support::client::{get, Reply};
use crate::support::fake_gcs::fake_gcs;
use crate::support::oauth::{self, Mode, OAuth};
use crate::support::*;

const ADMIN: &str = "admin-token-for-gcs-tests-012345";
pub(crate) const TEST_KEY: &str = include_str!("../../src/credentials/google_test_key.pem");
const UNRELATED_KEY: &str = include_str!("support/unrelated_key.pem");

/// A service account key file for `email`, with `pem` and `token_uri`.
pub(crate) fn key_file(email: &str, pem: &str, token_uri: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "acme-proj",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    })
}

/// A TOML basic string holding `value`'s JSON.
fn toml_string(value: &Value) -> String {
    toml::Value::String(value.to_string()).to_string()
}

pub(crate) fn gcs_storage(id: &str, endpoint: &str, buckets: &[&str], credentials: &str) -> String {
    let buckets: Vec<String> = buckets.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[orgs.storages]]\nid = \"{id}\"\nprovider = \"gcs\"\nbuckets = [{}]\nendpoint = \"{endpoint}\"\ncredentials = {credentials}\n",
        buckets.join(", ")
    )
}

pub(crate) fn key_credentials(key: &Value) -> String {
    format!("{{ type = \"service_account\", key_json = {} }}", toml_string(key))
}

fn auth() -> String {
    format!("Bearer {}", token("acme"))
}

async fn fetch(gw: &TestGateway, storage: &str, bucket: &str, key: &str, headers: &[(&str, &str)]) -> Reply {
    let auth = auth();
    let mut all = vec![("authorization", auth.as_str()), ("origin", EDITOR_ORIGIN)];
    all.extend_from_slice(headers);
    get(&gw.url("acme", storage, bucket, key), &all).await
}

#[tokio::test]
async fn a_service_account_key_is_exchanged_once_for_many_cold_requests() {
    let gcs = fake_gcs();
    let data = pattern(2 * 1024 * 1024 + 5, 4);
    gcs.seed("gcs-keyed", &[("scans/a b+ü.dcm", &data), ("small.txt", b"0123456789")])
        .await;
    let oauth = OAuth::start().await;
    oauth.set_delay(Duration::from_millis(300));
    let relay = gcs.relay(&oauth).await;
    let key = key_file(oauth::KEY_EMAIL, TEST_KEY, &oauth.google_token_uri());
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        gcs_storage("gcs", &relay.to_string(), &["gcs-keyed"], &key_credentials(&key))
    );
    let gw = TestGateway::start(&config("", &orgs)).await;

    let url = gw.url("acme", "gcs", "gcs-keyed", "scans/a b+ü.dcm");
    let auth = auth();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (url, auth) = (url.clone(), auth.clone());
            tokio::spawn(async move { get(&url, &[("authorization", &auth)]).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.body == data, "other bytes");
    }
    assert_eq!(oauth.calls("google"), 1, "concurrent misses share one token request");

    // Ranges, and fake-gcs-server's own `Access-Control-Allow-Origin: *` replaced by ours.
    let cases: [(&str, u16, &str, &[u8]); 3] = [
        ("bytes=0-", 206, "bytes 0-9/10", b"0123456789"),
        ("bytes=2-4", 206, "bytes 2-4/10", b"234"),
        ("bytes=-3", 206, "bytes 7-9/10", b"789"),
    ];
    for (asked, status, content_range, body) in cases {
        let r = fetch(&gw, "gcs", "gcs-keyed", "small.txt", &[("range", asked)]).await;
        assert_eq!(
            (r.status.as_u16(), r.header("content-range")),
            (status, content_range),
            "{asked}"
        );
        assert_eq!(&r.body[..], body, "{asked}");
        assert_eq!(r.header("access-control-allow-origin"), EDITOR_ORIGIN, "{asked}");
    }
    let r = fetch(&gw, "gcs", "gcs-keyed", "small.txt", &[("range", "bytes=10-")]).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (416, "range_not_satisfiable")
    );
    let r = fetch(&gw, "gcs", "gcs-keyed", "absent.txt", &[]).await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (404, "no_such_key"));

    // The bucket calls the token invalid: one fresh exchange, one retry, served.
    oauth.revoke_all();
    oauth.set_delay(Duration::ZERO);
    let r = fetch(&gw, "gcs", "gcs-keyed", "small.txt", &[]).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"0123456789"[..]));
    assert_eq!(oauth.calls("google"), 2);
}

#[tokio::test]
async fn refused_keys_and_a_token_outage_get_their_own_errors() {
    let gcs = fake_gcs();
    gcs.seed("gcs-refused", &[("a.txt", b"abc")]).await;
    let oauth = OAuth::start().await;
    let relay = gcs.relay(&oauth).await.to_string();
    let uri = oauth.google_token_uri();
    let storages = [
        gcs_storage(
            "good",
            &relay,
            &["gcs-refused"],
            &key_credentials(&key_file(oauth::KEY_EMAIL, TEST_KEY, &uri)),
        ),
        // Same account, another private key: the stand-in's signature check refuses it.
        gcs_storage(
            "forged",
            &relay,
            &["gcs-refused"],
            &key_credentials(&key_file(oauth::KEY_EMAIL, UNRELATED_KEY, &uri)),
        ),
        gcs_storage(
            "cold",
            &relay,
            &["gcs-refused"],
            &key_credentials(&key_file("other@acme-proj.iam.gserviceaccount.com", TEST_KEY, &uri)),
        ),
    ]
    .concat();
    let extra = "[sts]\nfailure_cache = \"1s\"\n";
    let gw = TestGateway::start(&config("", &format!("{extra}[[orgs]]\nid = \"acme\"\n{storages}"))).await;
    let good = fetch(&gw, "good", "gcs-refused", "a.txt", &[]).await;
    assert_eq!((good.status.as_u16(), &good.body[..]), (200, &b"abc"[..]));
    let forged = fetch(&gw, "forged", "gcs-refused", "a.txt", &[]).await;
    assert_eq!(
        (forged.status.as_u16(), forged.error_code().as_str()),
        (502, "token_exchange_denied")
    );
    assert_eq!(forged.header("access-control-allow-origin"), EDITOR_ORIGIN);
    assert!(forged.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains(oauth::KEY_EMAIL));
    let before = oauth.calls("google");
    let again = fetch(&gw, "forged", "gcs-refused", "a.txt", &[]).await;
    assert_eq!(again.error_code(), "token_exchange_denied");
    assert_eq!(
        oauth.calls("google"),
        before,
        "a refusal is remembered for failure_cache"
    );

    oauth.set_mode(Mode::Down);
    let down = fetch(&gw, "cold", "gcs-refused", "a.txt", &[]).await;
    assert_eq!(
        (down.status.as_u16(), down.error_code().as_str()),
        (503, "token_service_unavailable")
    );
    let cached = fetch(&gw, "good", "gcs-refused", "a.txt", &[]).await;
    assert_eq!(
        cached.status, 200,
        "a storage with a token is served through the outage"
    );
}

#[tokio::test]
async fn the_gateway_impersonates_only_accounts_that_granted_it() {
    let gcs = fake_gcs();
    gcs.seed("gcs-impersonated", &[("a.txt", b"impersonated bytes")]).await;
    let oauth = OAuth::start().await;
    let relay = gcs.relay(&oauth).await.to_string();
    let own = key_file(oauth::GATEWAY_EMAIL, TEST_KEY, &oauth.google_token_uri());
    let gcp = format!(
        "[gcp]\nkey_json = {}\niam_endpoint = \"{}\"\nendpoints = [\"{relay}\"]\n",
        toml_string(&own),
        oauth.url()
    );
    let impersonate = |sa: &str| format!("{{ type = \"impersonate\", service_account = \"{sa}\" }}");
    let storages = [
        gcs_storage(
            "granted",
            &relay,
            &["gcs-impersonated"],
            &impersonate(oauth::IMPERSONATED),
        ),
        gcs_storage(
            "not-granted",
            &relay,
            &["gcs-impersonated"],
            &impersonate("stranger@other-proj.iam.gserviceaccount.com"),
        ),
    ]
    .concat();
    let gw = TestGateway::start(&config("", &format!("{gcp}[[orgs]]\nid = \"acme\"\n{storages}"))).await;
    let ok = fetch(&gw, "granted", "gcs-impersonated", "a.txt", &[]).await;
    assert_eq!((ok.status.as_u16(), &ok.body[..]), (200, &b"impersonated bytes"[..]));
    let again = fetch(&gw, "granted", "gcs-impersonated", "a.txt", &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        (oauth.calls("google"), oauth.calls("iam")),
        (1, 1),
        "both tokens are cached"
    );
    let refused = fetch(&gw, "not-granted", "gcs-impersonated", "a.txt", &[]).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code().as_str()),
        (502, "token_exchange_denied")
    );
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Token Creator"));
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> Reply {
    crate::support::client::admin(&gw.admin_base, ADMIN, method, path, body).await
}

#[tokio::test]
async fn an_api_key_file_may_name_only_googles_token_endpoint_unless_allowed() {
    let gcs = fake_gcs();
    gcs.seed("gcs-admin", &[("first.txt", b"listed first")]).await;
    let oauth = OAuth::start().await;
    let relay = gcs.relay(&oauth).await.to_string();
    let registry = |dir: &std::path::Path, allowed: &str| {
        format!(
            "[admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [{allowed}]\n",
            dir.display(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [6u8; 32])
        )
    };
    let body = json!({"_id": "api-gcs", "provider": "GCP", "buckets": ["gcs-admin"], "endpoint": relay,
        "serviceAccountKey": key_file(oauth::KEY_EMAIL, TEST_KEY, &oauth.google_token_uri())});

    // Nothing private allowed: the key's token_uri is refused like an endpoint would be.
    let strict_dir = tempfile::tempdir().unwrap();
    let strict = TestGateway::start(&config("", &registry(strict_dir.path(), ""))).await;
    let refused = admin(
        &strict,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.body));
    assert!(refused.json()["error"]["fields"]["serviceAccountKey.token_uri"].is_string());

    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(&config("", &registry(dir.path(), "\"127.0.0.1\""))).await;
    let created = admin(&gw, Method::POST, "/admin/v1/orgs/acme/storages", Some(body)).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let text = String::from_utf8_lossy(&created.body);
    assert!(!text.contains("PRIVATE KEY"), "the key is write-only: {text}");
    assert_eq!(created.json()["data"]["storage"]["serviceAccount"], oauth::KEY_EMAIL);
    let r = fetch(&gw, "api-gcs", "gcs-admin", "first.txt", &[]).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"listed first"[..]));
    let report = admin(
        &gw,
        Method::POST,
        "/admin/v1/orgs/acme/storages/api-gcs/validate",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        report.json()["data"]["valid"],
        true,
        "{}",
        String::from_utf8_lossy(&report.body)
    );
    let names: Vec<String> = report.json()["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["credentials", "list", "object_read"]);
}

/// Impersonation needs nothing secret (a service account's email), so an org could register
/// another org's account; a bucket serves an API storage only once it holds the org's
/// external ID in `.assetgate-org`.
#[tokio::test]
async fn an_api_impersonation_storage_serves_only_buckets_that_name_its_org() {
    let gcs = fake_gcs();
    gcs.seed("gcs-proof", &[("a.txt", b"proven bytes")]).await;
    let oauth = OAuth::start().await;
    let relay = gcs.relay(&oauth).await.to_string();
    let own = key_file(oauth::GATEWAY_EMAIL, TEST_KEY, &oauth.google_token_uri());
    let dir = tempfile::tempdir().unwrap();
    let settings = format!(
        "[sts]\nfailure_cache = \"1s\"\n[gcp]\nkey_json = {}\niam_endpoint = \"{}\"\nendpoints = [\"{relay}\"]\n\
         [admin]\ntoken = \"{ADMIN}\"\n[registry]\ndata_dir = \"{}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.1\"]\n",
        toml_string(&own),
        oauth.url(),
        dir.path().display(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    );
    let gw = TestGateway::start(&config("", &settings)).await;
    let body = json!({"_id": "imp", "type": "gcs", "buckets": ["gcs-proof"], "endpoint": relay,
        "serviceAccount": oauth::IMPERSONATED});
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
        let url = gw.url(org, "imp", "gcs-proof", "a.txt");
        let auth = format!("Bearer {}", token(org));
        async move { get(&url, &[("authorization", &auth)]).await }
    };
    let unproven = object("acme").await;
    assert_eq!(
        (unproven.status.as_u16(), unproven.error_code().as_str()),
        (403, "ownership_not_proven")
    );
    gcs.seed("gcs-proof", &[(".assetgate-org", acme_id.as_bytes())]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let proven = object("acme").await;
    assert_eq!((proven.status.as_u16(), &proven.body[..]), (200, &b"proven bytes"[..]));
    let stolen = object("globex").await;
    assert_eq!(
        (stolen.status.as_u16(), stolen.error_code().as_str()),
        (403, "ownership_not_proven")
    );
}

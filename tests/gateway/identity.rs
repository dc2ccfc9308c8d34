//! A token of the gateway's own identity goes only to the cloud it is for (README, "Azure Blob
//! Storage" and "Google Cloud Storage"). A hostile org names the victim's Entra tenant (or
//! the victim's service account to impersonate) and an endpoint of its own: a listener of the
//! test's, which records every request and must never see a bearer token, at create, PATCH,
//! validation, on the data plane, or for a record written straight into the shared registry
//! by someone with a login to the database. The token endpoints are the OAuth stand-ins (no
//! real Entra ID or Google runs on loopback); they must not even be asked.

use std::time::Duration;

use assetgate::credentials::TokenDestinations;
use assetgate::registry::record;
use assetgate::sealed::MasterKey;
use assetgate::secret::Secret;
use assetgate::storage::{self, Context, Style};
use assetgate::upstream::Endpoint;
use http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::support::client::{self, get, Reply};
use crate::support::oauth::{self, OAuth};
use crate::support::postgres::database;
use crate::support::standin::StandIn;
use crate::support::*;

const ADMIN: &str = "admin-token-for-identity-tests-0123";
const TEST_KEY: &str = include_str!("../../src/credentials/google_test_key.pem");

fn master_key() -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [5u8; 32])
}

/// A listener that answers every request with an empty 200 and keeps its request heads.
async fn listener() -> StandIn {
    StandIn::with_head(|mut stream, _head| async move {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await
}

/// No request reached the listener with an `Authorization` header (it may see none at all).
fn no_token_reached(listener: &StandIn, when: &str) {
    let heads = listener.heads.lock().unwrap();
    assert!(
        !heads.iter().any(|h| h.to_ascii_lowercase().contains("authorization:")),
        "{when}: the listener received credentials: {heads:?}"
    );
}

/// A gateway with the shared registry in a database of its own, `identity` (the `[azure]` or
/// `[gcp]` section), and an admin API; and the database's URL.
async fn gateway(identity: &str) -> (TestGateway, String) {
    let (_, url) = database();
    let settings = format!(
        "{identity}\n[admin]\ntoken = \"{ADMIN}\"\n[registry]\nurl = \"{url}\"\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.1\"]\n",
        master_key()
    );
    let gw = TestGateway::start(&config("", &settings)).await;
    let ready = format!("{}/readyz", gw.admin_base);
    within(Duration::from_secs(20), "the registry to load", || {
        let ready = ready.clone();
        async move { get(&ready, &[]).await.status == 200 }
    })
    .await;
    (gw, url)
}

async fn admin(gw: &TestGateway, method: Method, path: &str, body: Option<Value>) -> Reply {
    client::admin(&gw.admin_base, ADMIN, method, path, body).await
}

/// Writes `body` as storage `id` of org `mallory` straight into the registry's table, sealed
/// under the master key as a version without the endpoint rule would have stored it, and
/// announces it; returns once the gateway serves it.
async fn plant(gw: &TestGateway, url: &str, body: &Value, listener: &Endpoint) {
    let permissive = TokenDestinations::new(None, vec![listener.clone()], vec![listener.clone()]);
    let cx = Context {
        style: Style::Api,
        org_external_id: None,
        entra_app: true,
        destinations: &permissive,
    };
    let storage = storage::build(body, &cx).expect("the planted storage builds");
    let key = MasterKey::from_base64(&Secret::new(master_key())).unwrap();
    let now = "2026-01-01T00:00:00Z";
    let sealed = record::seal("mallory", &storage, &key, now, now, 7);
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    db.execute(
        "INSERT INTO assetgate_storages (org, id, record, version) VALUES ($1, $2, $3::text::jsonb, 7)",
        &[&"mallory", &storage.id, &serde_json::to_string(&sealed).unwrap()],
    )
    .await
    .unwrap();
    db.execute(
        "SELECT pg_notify('assetgate_registry', $1)",
        &[&format!("s mallory {}", storage.id)],
    )
    .await
    .unwrap();
    let path = format!("/admin/v1/orgs/mallory/storages/{}", storage.id);
    within(Duration::from_secs(5), "the planted storage to be served", || async {
        admin(gw, Method::GET, &path, None).await.status == 200
    })
    .await;
}

/// Every way a hostile org could get a storage with the gateway's identity to talk to
/// `listener`: create, PATCH, and a record planted in the database, then validation and the
/// data plane on it. `body` has no endpoint; `endpoint` is where the org wants it to point.
async fn attack((gw, url): &(TestGateway, String), listener: &StandIn, body: Value, endpoint: &str) {
    let mut pointed = body.clone();
    pointed["endpoint"] = json!(endpoint);
    let created = admin(
        gw,
        Method::POST,
        "/admin/v1/orgs/mallory/storages",
        Some(pointed.clone()),
    )
    .await;
    assert_eq!(created.status, 400, "{}", String::from_utf8_lossy(&created.body));
    assert!(
        created.json()["error"]["fields"]["endpoint"].is_string(),
        "{}",
        created.json()
    );
    no_token_reached(listener, "create");

    let mut own = body.clone();
    own["_id"] = json!("innocent");
    let created = admin(gw, Method::POST, "/admin/v1/orgs/mallory/storages", Some(own)).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let patched = admin(
        gw,
        Method::PATCH,
        "/admin/v1/orgs/mallory/storages/innocent",
        Some(json!({"endpoint": endpoint})),
    )
    .await;
    assert_eq!(patched.status, 400, "{}", String::from_utf8_lossy(&patched.body));
    assert!(patched.json()["error"]["fields"]["endpoint"].is_string());

    let mut planted = pointed;
    planted["_id"] = json!("planted");
    plant(
        gw,
        url,
        &planted,
        &Endpoint::parse(endpoint.trim_end_matches("/victimacct")).unwrap(),
    )
    .await;
    let report = admin(
        gw,
        Method::POST,
        "/admin/v1/orgs/mallory/storages/planted/validate",
        Some(json!({})),
    )
    .await;
    assert_eq!(report.json()["data"]["valid"], false, "{}", report.json());
    no_token_reached(listener, "validate");

    let object = gw.url("mallory", "planted", "images", "a.jpg");
    let auth = format!("Bearer {}", token("mallory"));
    let served = get(&object, &[("authorization", &auth), ("origin", EDITOR_ORIGIN)]).await;
    assert_eq!(
        (served.status.as_u16(), served.error_code().as_str()),
        (502, "upstream_error"),
        "{}",
        String::from_utf8_lossy(&served.body)
    );
    assert_eq!(served.header("access-control-allow-origin"), EDITOR_ORIGIN);
    no_token_reached(listener, "data plane");
}

#[tokio::test]
async fn an_org_cannot_send_the_gateways_entra_token_for_another_tenant_to_its_own_host() {
    let oauth = OAuth::start().await;
    let listener = listener().await;
    let identity = format!(
        "[azure]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthority = \"{}\"\n",
        oauth::CLIENT_ID,
        oauth::CLIENT_SECRET,
        oauth.url()
    );
    let gw = gateway(&identity).await;
    let victim = json!({"_id": "stolen", "type": "azure", "account": "victimacct", "buckets": ["images"],
        "tenantId": oauth::TENANT});
    let endpoint = format!("{}/victimacct", listener.endpoint());
    attack(&gw, &listener, victim, &endpoint).await;
    assert_eq!(oauth.calls("entra"), 0, "no token was even asked for");
}

#[tokio::test]
async fn an_org_cannot_send_an_impersonation_token_of_another_account_to_its_own_host() {
    let oauth = OAuth::start().await;
    let listener = listener().await;
    let own = json!({
        "type": "service_account",
        "project_id": "gateway-proj",
        "private_key_id": "test-key-1",
        "private_key": TEST_KEY,
        "client_email": oauth::GATEWAY_EMAIL,
        "client_id": "1234567890",
        "token_uri": oauth.google_token_uri(),
    });
    let identity = format!(
        "[gcp]\nkey_json = {}\niam_endpoint = \"{}\"\n",
        toml::Value::String(own.to_string()),
        oauth.url()
    );
    let gw = gateway(&identity).await;
    let victim = json!({"_id": "stolen", "type": "gcs", "buckets": ["images"],
        "serviceAccount": oauth::IMPERSONATED});
    attack(&gw, &listener, victim, &listener.endpoint().to_string()).await;
    assert_eq!(
        (oauth.calls("google"), oauth.calls("iam")),
        (0, 0),
        "no token was even asked for"
    );
}

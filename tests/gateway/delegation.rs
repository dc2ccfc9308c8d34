//! IAM-role delegation: AssumeRole with an external ID against moto and SeaweedFS's STS, and
//! the credential cache's behaviour against the project's STS stand-in (`support::fake_sts`).

use std::time::Duration;

use assetgate::credentials::StaticKeys;
use assetgate::upstream::Endpoint;

use crate::support::client::get;
use crate::support::fake_sts::{FakeSts, Mode};
use crate::support::moto::{moto, DELEGATED_BUCKET, EXTERNAL_ID};
use crate::support::seaweed::{seaweed, ROLE_ARN};
use crate::support::*;

/// `[sts]` pointing at `endpoint` with the gateway's own keys.
fn sts_section(endpoint: &str, keys: &StaticKeys, extra: &str) -> String {
    format!(
        "[sts]\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\nsession_duration = \"15m\"\n{extra}\ncredentials = {{ access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        keys.access_key_id,
        keys.secret_access_key.expose()
    )
}

/// One delegated `[[orgs.storages]]` block.
/// A delegated storage, left alone by the edge cache: these tests count what reaches the
/// bucket and how often credentials are looked up.
fn delegated(id: &str, endpoint: &Endpoint, bucket: &str, role_arn: &str, external_id: &str) -> String {
    uncached(format!(
        "\n[[orgs.storages]]\nid = \"{id}\"\nprovider = \"s3_compatible\"\nbuckets = [\"{bucket}\"]\nendpoint = \"{endpoint}\"\n\
         credentials = {{ type = \"assume_role\", role_arn = \"{role_arn}\", external_id = \"{external_id}\" }}\n"
    ))
}

fn bearer(org: &str) -> String {
    format!("Bearer {}", token(org))
}

#[tokio::test]
async fn moto_delegated_storage_serves_and_a_wrong_external_id_is_denied() {
    let m = moto();
    let orgs = format!(
        "{}\n[[orgs]]\nid = \"acme\"\n{}{}",
        sts_section(&m.endpoint.to_string(), &m.keys, ""),
        delegated("delegated", &m.endpoint, DELEGATED_BUCKET, &m.role_arn, EXTERNAL_ID),
        delegated(
            "wrong-ext",
            &m.endpoint,
            DELEGATED_BUCKET,
            &m.role_arn,
            "not-the-external-id"
        ),
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    let auth = bearer("acme");
    let ok = get(
        &gw.url("acme", "delegated", DELEGATED_BUCKET, "scan.dcm"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.body, "delegated bytes");
    let denied = get(
        &gw.url("acme", "wrong-ext", DELEGATED_BUCKET, "scan.dcm"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (denied.status.as_u16(), denied.error_code().as_str()),
        (502, "assume_role_denied")
    );
    let message = denied.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("trust policy") && message.contains("external ID"),
        "{message}"
    );
    assert!(!message.contains(m.keys.secret_access_key.expose()));
}

#[tokio::test]
async fn seaweed_sts_temporary_credentials_stream_an_object() {
    let sw = seaweed();
    let data = pattern(3 << 20, 7);
    sw.seed("delegated-weed", &[("video.mp4", &data)]).await;
    let orgs = format!(
        "{}\n[[orgs]]\nid = \"acme\"\n{}",
        sts_section(&sw.endpoint.to_string(), &sw.delegator, ""),
        delegated("weed", &sw.endpoint, "delegated-weed", ROLE_ARN, "unused-by-seaweedfs"),
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    let url = gw.url("acme", "weed", "delegated-weed", "video.mp4");
    let r = get(&url, &[("authorization", &bearer("acme"))]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r.body[..] == data[..]);
    let r = get(&url, &[("authorization", &bearer("acme")), ("range", "bytes=-100")]).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (206, &data[data.len() - 100..]));
    let m = gw.gateway.credentials.sts_metrics();
    assert_eq!(m.ok.get(), 1);
    assert_eq!((m.misses.get(), m.hits.get()), (1, 1));
}

/// A gateway with one delegated storage whose STS and bucket are the stand-ins.
async fn with_fake_sts(
    lifetime: Duration,
    sts_extra: &str,
) -> (
    TestGateway,
    FakeSts,
    crate::support::standin::StandIn,
    std::sync::Arc<std::sync::Mutex<usize>>,
) {
    let sts = FakeSts::start(lifetime).await;
    let (bucket, rejected) = sts.bucket().await;
    let keys = crate::support::standin::any_keys();
    let orgs = format!(
        "{}\n[[orgs]]\nid = \"acme\"\n{}",
        sts_section(&sts.endpoint(), &keys, sts_extra),
        delegated(
            "main",
            &bucket.endpoint(),
            "b-bucket",
            "arn:aws:iam::111122223333:role/labeling-read",
            "ext-acme-1"
        ),
    );
    let gw = TestGateway::start(&config("", &orgs)).await;
    (gw, sts, bucket, rejected)
}

#[tokio::test]
async fn two_hundred_concurrent_cold_requests_make_one_assume_role() {
    let (gw, sts, _bucket, rejected) = with_fake_sts(Duration::from_secs(3600), "").await;
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    let auth = bearer("acme");
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (url, auth) = (url.clone(), auth.clone());
        requests.spawn(async move { get(&url, &[("authorization", &auth)]).await.status });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(sts.calls(), 1);
    assert_eq!(sts.external_ids(), ["ext-acme-1"]);
    assert_eq!(*rejected.lock().unwrap(), 0);
    let m = gw.gateway.credentials.sts_metrics();
    assert_eq!(m.misses.get() + m.hits.get(), 200);
}

#[tokio::test]
async fn credentials_are_refreshed_before_they_expire_while_requests_flow() {
    // Credentials live refresh_margin (5m) + 1 s: the cache must renew them after ~1 s.
    let (gw, sts, _bucket, rejected) = with_fake_sts(Duration::from_secs(301), "refresh_margin = \"5m\"").await;
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    let auth = bearer("acme");
    let until = std::time::Instant::now() + Duration::from_millis(3500);
    let mut served = 0;
    while std::time::Instant::now() < until {
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 20);
    assert!(sts.calls() >= 2, "no refresh happened ({} calls)", sts.calls());
    assert!(sts.calls() <= 6, "refreshed far too often ({} calls)", sts.calls());
    assert_eq!(
        *rejected.lock().unwrap(),
        0,
        "a request went out with credentials the bucket refused"
    );
}

#[tokio::test]
async fn a_failing_sts_is_asked_again_only_after_failure_cache() {
    let (gw, sts, _bucket, _) = with_fake_sts(Duration::from_secs(3600), "failure_cache = \"2s\"").await;
    sts.set_mode(Mode::Deny);
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    let auth = bearer("acme");
    for _ in 0..5 {
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (502, "assume_role_denied")
        );
    }
    assert_eq!(sts.calls(), 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    sts.set_mode(Mode::Issue);
    let r = get(&url, &[("authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(sts.calls(), 2);
    assert_eq!(gw.gateway.credentials.sts_metrics().denied.get(), 1);
}

#[tokio::test]
async fn sts_down_is_503_and_cached_credentials_keep_serving() {
    let (gw, sts, _bucket, _) = with_fake_sts(
        Duration::from_secs(302),
        "refresh_margin = \"5m\"\nfailure_cache = \"1s\"",
    )
    .await;
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    let auth = bearer("acme");
    assert_eq!(get(&url, &[("authorization", &auth)]).await.status, 200);
    sts.set_mode(Mode::Down);
    // Inside the entry's life (about 1 s), and then past it, while the credentials have not
    // really expired: every request is served.
    let until = std::time::Instant::now() + Duration::from_millis(3500);
    while std::time::Instant::now() < until {
        let r = get(&url, &[("authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sts.calls() >= 2, "STS was never asked again");
    // A storage that never had credentials gets 503 while STS is down.
    let org = gw.gateway.storages.org("acme").unwrap();
    let main = org.storage("main").unwrap();
    gw.gateway.credentials.invalidate(&main.credentials).await;
    let r = get(&url, &[("authorization", &auth)]).await;
    assert_eq!((r.status.as_u16(), r.error_code().as_str()), (503, "sts_unavailable"));
}

#[tokio::test]
async fn an_expired_token_answer_triggers_one_refresh_and_a_retry() {
    let (gw, sts, bucket, rejected) = with_fake_sts(Duration::from_secs(3600), "").await;
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    let auth = bearer("acme");
    assert_eq!(get(&url, &[("authorization", &auth)]).await.status, 200);
    sts.revoke_all();
    let r = get(&url, &[("authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!((sts.calls(), *rejected.lock().unwrap(), bucket.count()), (2, 1, 3));
}

#[tokio::test]
async fn a_bucket_that_keeps_refusing_is_502_after_one_refresh() {
    let (gw, sts, bucket, _) = with_fake_sts(Duration::from_secs(3600), "").await;
    let url = gw.url("acme", "main", "b-bucket", "k.jpg");
    // Every token is refused by the bucket, the fresh one too.
    sts.set_mode(Mode::IssueRevoked);
    let r = get(&url, &[("authorization", &bearer("acme"))]).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (502, "upstream_credentials_rejected")
    );
    assert_eq!(r.json()["error"]["upstreamCode"], "ExpiredToken");
    assert_eq!((sts.calls(), bucket.count()), (2, 2));
}

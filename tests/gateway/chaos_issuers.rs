//! Chaos under load, for what the gateway asks besides the bucket: STS (SeaweedFS's), the
//! Entra and Google token endpoints (the OAuth stand-in of `support/oauth.rs`; no real one
//! runs on loopback) and the platform's JSON Web Key Set (the tests' own server) go away
//! behind the fault relay (a partition, then the server gone: its connections closed and new
//! ones refused) while clients read through the gateway (`support/traffic.rs`). Credentials are made to need refreshing
//! every few seconds, so refreshes fall inside the outage. Pass means: every request that
//! the credentials or keys held can serve is served, byte for byte; an outage holds up at
//! most the few requests that began a refresh, never past the issuer's timeout; and the
//! gateway recovers by itself, its recovery time printed.

use std::time::{Duration, Instant};

use crate::gcs::{gcs_storage, key_credentials, key_file, TEST_KEY};
use crate::jwks::{ed25519, KeySet};
use crate::support::azurite::azurite_oauth;
use crate::support::fake_gcs::fake_gcs;
use crate::support::faults::{Fault, FaultRelay};
use crate::support::oauth::{self, OAuth};
use crate::support::seaweed::{seaweed, ROLE_ARN};
use crate::support::traffic::{self, count, finish, nothing_wrong, Outcome, Record};
use crate::support::*;

const CLIENTS: usize = 8;
/// The longest a request for credentials or keys may take (STS's operation timeout, the
/// key set's fetch timeout), and a margin.
const ISSUER_TIMEOUT: Duration = Duration::from_secs(12);

fn objects() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("scan.dcm", pattern(64 * 1024 + 3, 11)),
        ("video.mp4", pattern(1024 * 1024 + 9, 12)),
    ]
}

fn pairs<'a>(objects: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    objects.iter().map(|(k, v)| (*k, &v[..])).collect()
}

/// Puts the relay through a partition of `partition`, then takes the issuer away (its
/// connections closed, new ones refused) for `gone`, then heals it.
async fn outage(relay: &FaultRelay, partition: Duration, gone: Duration) {
    relay.set(Fault::Partition);
    tokio::time::sleep(partition).await;
    relay.set(Fault::Down);
    tokio::time::sleep(gone).await;
    relay.set(Fault::Pass);
}

/// Waits (up to 20 s) for `done` after the issuer came back, and prints how long it took.
async fn recovery(what: &str, done: impl Fn() -> bool) {
    let took = within(Duration::from_secs(20), what, || std::future::ready(done())).await;
    eprintln!("{what}: recovered {took:?} after the issuer came back");
}

/// Every request served, none past the issuer's timeout, and at most `waiters` of them held
/// up more than a second (those that began a refresh while the issuer was away).
fn all_served(what: &str, records: &[Record], waiters: usize) {
    nothing_wrong(records);
    let served = count(records, |o| *o == Outcome::Complete);
    let held: Vec<Duration> = records
        .iter()
        .map(Record::took)
        .filter(|t| *t > Duration::from_secs(1))
        .collect();
    eprintln!(
        "{what}: {served} of {} requests served; the longest took {:?}; held up over 1 s: {held:?}",
        records.len(),
        traffic::longest(records)
    );
    assert_eq!(
        served,
        records.len(),
        "{what}: the credentials held serve every request"
    );
    assert!(traffic::longest(records) < ISSUER_TIMEOUT, "{what}");
    assert!(held.len() <= waiters, "{what}: {} requests held up", held.len());
}

/// SeaweedFS's STS is cut off while clients read through a delegated storage whose
/// credentials are refreshed every 4 s: the credentials held keep serving, and a refresh
/// succeeds again once STS is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_cut_off_under_load_holds_up_no_request_the_credentials_held_can_serve() {
    let sw = seaweed();
    let objects = objects();
    sw.seed("chaos-sts", &pairs(&objects)).await;
    let relay = FaultRelay::start(
        format!("{}:{}", sw.endpoint.host, sw.endpoint.port.unwrap())
            .parse()
            .unwrap(),
    )
    .await;
    // 15-minute sessions refreshed 14m56s early: fresh for 4 s.
    let sts = format!(
        "[sts]\nregion = \"us-east-1\"\nendpoint = \"{}\"\nsession_duration = \"15m\"\nrefresh_margin = \"14m56s\"\nfailure_cache = \"1s\"\n\
         credentials = {{ access_key_id = \"{}\", secret_access_key = \"{}\" }}\n",
        relay.endpoint(),
        sw.delegator.access_key_id,
        sw.delegator.secret_access_key.expose()
    );
    let storage = uncached(format!(
        "\n[[orgs.storages]]\nid = \"delegated\"\nprovider = \"s3_compatible\"\nbuckets = [\"chaos-sts\"]\nendpoint = \"{}\"\n\
         credentials = {{ type = \"assume_role\", role_arn = \"{ROLE_ARN}\", external_id = \"unused-by-seaweedfs\" }}\n",
        sw.endpoint
    ));
    let gw = TestGateway::start(&config("", &format!("{sts}\n[[orgs]]\nid = \"acme\"\n{storage}"))).await;
    let targets = traffic::targets(&gw.base, "acme", "delegated", "chaos-sts", &objects);
    let auth = format!("Bearer {}", token("acme"));
    assert_eq!(
        traffic::one(&traffic::client(), &targets[0], &auth, None).await,
        Outcome::Complete
    );

    let clients = traffic::load(targets, auth, CLIENTS, Instant::now() + Duration::from_secs(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    outage(&relay, Duration::from_secs(8), Duration::from_secs(6)).await;
    let metrics = gw.gateway.credentials.sts_metrics();
    let ok = metrics.ok.get();
    recovery("STS", || metrics.ok.get() > ok).await;
    let records = finish(clients).await;
    eprintln!(
        "STS: {} AssumeRole calls failed during the outage",
        metrics.unavailable.get() + metrics.denied.get()
    );
    assert!(metrics.unavailable.get() > 0, "a refresh fell inside the outage");
    all_served("STS", &records, 4);
}

/// The token endpoint of Entra and of Google (one stand-in for both) is cut off while
/// clients read an Azure container (Azurite, with Entra delegation) and a GCS bucket
/// (fake-gcs-server, with a service account key), tokens refreshed every 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoints_cut_off_under_load_hold_up_no_request_the_tokens_held_can_serve() {
    let objects = objects();
    let (az, gcs) = (azurite_oauth(), fake_gcs());
    az.seed("chaos-entra", &pairs(&objects)).await;
    gcs.seed("chaos-google", &pairs(&objects)).await;
    let oauth = OAuth::start().await;
    let relay = FaultRelay::start(oauth.addr).await;
    let through = format!("http://{}", relay.addr);
    // Tokens live an hour and are refreshed 59m56s early: fresh for 4 s.
    let extra = format!(
        "upstream_ca_file = \"{}\"\n[azure]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthority = \"{through}\"\nendpoints = [\"{}\"]\n\
         [sts]\nsession_duration = \"1h\"\nrefresh_margin = \"59m56s\"\nfailure_cache = \"1s\"\n",
        az.ca_file.as_ref().unwrap().display(),
        oauth::CLIENT_ID,
        oauth::CLIENT_SECRET,
        az.endpoint
    );
    let key = key_file(oauth::KEY_EMAIL, TEST_KEY, &format!("{through}/token"));
    let storages = [
        uncached(az.storage(
            "entra",
            &["chaos-entra"],
            &format!("{{ type = \"entra_delegation\", tenant_id = \"{}\" }}", oauth::TENANT),
        )),
        uncached(gcs_storage(
            "google",
            &gcs.relay(&oauth).await.to_string(),
            &["chaos-google"],
            &key_credentials(&key),
        )),
    ]
    .concat();
    let gw = TestGateway::start(&config(&extra, &format!("[[orgs]]\nid = \"acme\"\n{storages}"))).await;
    let auth = format!("Bearer {}", token("acme"));
    let mut targets = traffic::targets(&gw.base, "acme", "entra", "chaos-entra", &objects);
    targets.extend(traffic::targets(&gw.base, "acme", "google", "chaos-google", &objects));
    for target in &targets {
        assert_eq!(
            traffic::one(&traffic::client(), target, &auth, None).await,
            Outcome::Complete,
            "{}",
            target.url
        );
    }

    let clients = traffic::load(targets, auth, CLIENTS, Instant::now() + Duration::from_secs(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (entra, google) = (oauth.calls("entra"), oauth.calls("google"));
    outage(&relay, Duration::from_secs(8), Duration::from_secs(6)).await;
    let metrics = gw.gateway.credentials.token_metrics();
    let ok = metrics.ok.get();
    recovery("Entra and Google", || metrics.ok.get() >= ok + 2).await;
    let records = finish(clients).await;
    assert!(oauth.calls("entra") > entra && oauth.calls("google") > google);
    assert!(metrics.unavailable.get() > 0, "a refresh fell inside the outage");
    // Two issuers (one token each), each holding up the request that began its refresh.
    all_served("Entra and Google", &records, 4);
}

/// The platform's key set is cut off while clients read with tokens of its key; it rotates
/// (a second key) during the outage. Tokens of the key held verify throughout; tokens of
/// the new key are refused (401, never a hang past the fetch timeout) until the set can be
/// fetched again, and verify from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_cut_off_under_load_fails_no_token_of_a_key_held() {
    let sw = seaweed();
    let objects = objects();
    sw.seed("chaos-jwks", &pairs(&objects)).await;
    let (held, rotated) = (ed25519("held"), ed25519("rotated"));
    let set = KeySet::start(vec![held.jwk.clone()]).await;
    let url: http::Uri = set.url.parse().unwrap();
    let relay = FaultRelay::start(format!("127.0.0.1:{}", url.port_u16().unwrap()).parse().unwrap()).await;
    let through = set.url.replace(
        &format!(":{}/", url.port_u16().unwrap()),
        &format!(":{}/", relay.addr.port()),
    );
    let orgs = format!(
        "[[orgs]]\nid = \"acme\"\n{}",
        storage("main", &sw.endpoint, &["chaos-jwks"], &sw.reader)
    );
    let text = config("", &orgs).replace(
        "max_ttl = \"1h\"",
        &format!("max_ttl = \"1h\"\njwks_url = \"{through}\"\njwks_refresh = \"2s\""),
    );
    let gw = TestGateway::start(&text).await;
    let targets = traffic::targets(&gw.base, "acme", "main", "chaos-jwks", &objects);
    let auth = |pair: &crate::jwks::Pair| format!("Bearer {}", pair.token("acme", "labeler-7"));
    assert_eq!(
        traffic::one(&traffic::client(), &targets[0], &auth(&held), None).await,
        Outcome::Complete
    );

    let stop = Instant::now() + Duration::from_secs(22);
    let clients = traffic::load(targets.clone(), auth(&held), CLIENTS, stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The set rotates just as its server goes away; clients with the new key's tokens begin.
    relay.set(Fault::Partition);
    *set.keys.lock().unwrap() = vec![held.jwk.clone(), rotated.jwk.clone()];
    let newcomers = traffic::load(targets, auth(&rotated), 2, stop);
    tokio::time::sleep(Duration::from_secs(6)).await;
    relay.set(Fault::Down);
    tokio::time::sleep(Duration::from_secs(4)).await;
    relay.set(Fault::Pass);
    let healed = Instant::now();
    let records = finish(clients).await;
    all_served("key set, tokens of the key held", &records, 0);

    let newcomers = finish(newcomers).await;
    nothing_wrong(&newcomers);
    assert!(traffic::longest(&newcomers) < ISSUER_TIMEOUT);
    let refused = count(&newcomers, |o| *o == Outcome::Refused(401));
    // Recovery: the end of the first request with the new key's token that is served; every
    // request begun after it is served too.
    let first = newcomers
        .iter()
        .filter(|r| r.outcome == Outcome::Complete)
        .map(|r| r.ended)
        .min()
        .expect("tokens of the new key verify once the set is back");
    eprintln!(
        "key set: {} requests with the new key's tokens, {refused} refused during the outage; served from {:?} after the set came back",
        newcomers.len(),
        first.saturating_duration_since(healed)
    );
    assert!(refused > 0, "tokens of a key not fetched yet are refused");
    assert!(
        first > healed - Duration::from_millis(500),
        "served before the set came back"
    );
    let after: Vec<&Record> = newcomers.iter().filter(|r| r.started >= first).collect();
    let refused_after: Vec<&&Record> = after.iter().filter(|r| r.outcome != Outcome::Complete).collect();
    assert!(
        refused_after.is_empty(),
        "{} of {} refused after recovery, first: {:?}",
        refused_after.len(),
        after.len(),
        refused_after.first()
    );
    assert!(first.saturating_duration_since(healed) < Duration::from_secs(8));
}

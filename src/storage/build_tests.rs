use super::*;
use crate::storage::providers::azure::AzureCredentials;
use crate::storage::providers::gcs::GcsCredentials;
use crate::storage::providers::s3::{self, Flavor, S3Credentials};
use crate::storage::Provider;
use serde_json::json;

const EXT: Option<&str> = Some("org-external-id-0123456789abcdef0123");

const API: Context<'static> = Context {
    style: Style::Api,
    org_external_id: EXT,
    entra_app: true,
    destinations: &crate::credentials::TokenDestinations::PUBLIC,
};

const CONFIG: Context<'static> = Context {
    style: Style::Config,
    org_external_id: None,
    entra_app: true,
    destinations: &crate::credentials::TokenDestinations::PUBLIC,
};

fn create_ok(body: Value) -> Storage {
    build(&body, &API).unwrap_or_else(|f| panic!("{f:?}"))
}

fn create_err(body: Value) -> Fields {
    build(&body, &API).unwrap_err()
}

fn s3_of(s: &Storage) -> &s3::S3 {
    match &s.provider {
        Provider::S3(p) => p,
        other => panic!("{other:?}"),
    }
}

/// A service account key file around the test RSA key.
fn key_file(token_uri: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "acme-proj",
        "private_key_id": "k1",
        "private_key": include_str!("../credentials/google_test_key.pem"),
        "client_email": "reader@acme-proj.iam.gserviceaccount.com",
        "token_uri": token_uri,
    })
}

#[test]
fn our_shape_with_keys() {
    let s = create_ok(
        json!({"_id": "main", "name": "Main", "type": "s3_compatible", "buckets": ["b-one", "b-two"],
        "endpoint": "http://minio.internal:9000", "credentials": {"accessKeyId": "AK", "secretAccessKey": "SK"}}),
    );
    let p = s3_of(&s);
    assert_eq!(
        (s.id.as_str(), p.flavor, s.buckets.len(), p.path_style),
        ("main", Flavor::Compatible, 2, true)
    );
    assert!(matches!(p.credentials, S3Credentials::AccessKey(ref k) if k.secret_access_key.expose() == "SK"));
}

#[test]
fn ango_shape_with_provider_and_public_private_keys() {
    let s = create_ok(
        json!({"name": "Ango bucket", "provider": "AWS", "bucket": "ango-assets", "region": "eu-central-1",
        "publicKey": "AKIA", "privateKey": "secret"}),
    );
    let p = s3_of(&s);
    assert_eq!(
        (p.flavor, s.buckets[0].as_str(), p.region.as_str(), p.path_style),
        (Flavor::Aws, "ango-assets", "eu-central-1", false)
    );
    assert_eq!(s.id.len(), 24, "an id is generated");
    let g = create_ok(json!({"provider": "GCP", "bucket": "gcs-assets", "publicKey": "GOOG1", "privateKey": "s"}));
    assert!(
        matches!(g.provider, Provider::Gcs(ref p) if p.region == "auto" && matches!(p.credentials, GcsCredentials::Hmac(_)))
    );
    let a = create_ok(json!({"provider": "AZURE", "account": "acmeassets", "bucket": "images", "accountKey": "a2V5"}));
    assert_eq!(a.provider.kind(), providers::Kind::Azure);
}

#[test]
fn delegation_uses_the_org_external_id_and_no_other() {
    let role =
        json!({"type": "aws", "buckets": ["b-bucket"], "credentials": {"roleArn": "arn:aws:iam::111122223333:role/r"}});
    assert!(s3::mentions_role(&role));
    let s = create_ok(role);
    assert!(
        matches!(s3_of(&s).credentials, S3Credentials::AssumeRole { ref external_id, .. } if external_id.starts_with("org-external-id"))
    );
    let own = json!({"type": "aws", "buckets": ["b-bucket"], "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": EXT});
    assert!(s3::mentions_role(&own));
    assert!(build(&own, &API).is_ok());
    let foreign = json!({"type": "aws", "buckets": ["b-bucket"], "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": "another-orgs-id"});
    assert!(create_err(foreign).contains_key("externalId"));
    let keys = json!({"type": "aws", "bucket": "b-bucket", "publicKey": "a", "privateKey": "b"});
    assert!(!s3::mentions_role(&keys));
}

#[test]
fn regions_and_endpoints_are_taken_exactly_as_given() {
    let body = |extra: Value| {
        let mut b = json!({"type": "s3_compatible", "bucket": "b-bucket", "endpoint": "https://minio.example.com",
                           "publicKey": "a", "privateKey": "b"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    for region in ["x@169.254.169.254", "us-east-1\r\nX-Injected: 1", "EU-WEST-1", "a/b"] {
        assert!(
            create_err(body(json!({"region": region}))).contains_key("region"),
            "{region:?}"
        );
    }
    for endpoint in [
        " https://minio.example.com",
        "https://minio.example.com ",
        "https://minio.example.com\t",
        "https://minio.example.com/prefix",
    ] {
        assert!(
            create_err(body(json!({"endpoint": endpoint}))).contains_key("endpoint"),
            "{endpoint:?}"
        );
    }
    assert_eq!(
        s3_of(&create_ok(body(json!({"region": "eu-west-1"})))).region,
        "eu-west-1"
    );
}

#[test]
fn every_bad_field_is_named() {
    let f = create_err(
        json!({"type": "azure", "buckets": ["ok-bucket", "Bad/Bucket"], "endpoint": "not a url", "pathStyle": "yes"}),
    );
    for key in ["account", "buckets", "endpoint", "credentials"] {
        assert!(f.contains_key(key), "{key} missing from {f:?}");
    }
    let f = create_err(json!({"type": "nope", "buckets": ["b-bucket"]}));
    assert!(f.contains_key("type"), "{f:?}");
    let f = create_err(json!({"type": "aws", "credentials": {"roleArn": "arn:aws:iam::1:user/x"}}));
    assert!(f.contains_key("buckets") && f.contains_key("roleArn"), "{f:?}");
    let f = create_err(
        json!({"type": "s3_compatible", "buckets": ["b-bucket"], "accessKeyId": "AK", "secretAccessKey": "SK"}),
    );
    assert!(f.contains_key("endpoint"), "{f:?}");
    let f = create_err(json!({"type": "aws", "buckets": ["b-bucket"], "accessKeyId": "AK"}));
    assert!(f.contains_key("secretAccessKey"), "{f:?}");
    let f = create_err(
        json!({"type": "aws", "buckets": ["b-bucket"], "accessKeyId": "AK", "secretAccessKey": "S", "roleArn": "arn:aws:iam::111122223333:role/r"}),
    );
    assert!(f.contains_key("credentials"), "{f:?}");
    assert!(create_err(json!(["not", "an", "object"])).contains_key("body"));
    assert!(create_err(
        json!({"_id": "has space", "type": "aws", "bucket": "b-bucket", "publicKey": "a", "privateKey": "b"})
    )
    .contains_key("_id"));
}

#[test]
fn field_messages_never_echo_secrets() {
    let f = create_err(
        json!({"type": "nope", "buckets": ["b-bucket"], "accessKeyId": "AK", "secretAccessKey": "TOPSECRET"}),
    );
    assert!(!format!("{f:?}").contains("TOPSECRET"));
    let f = create_err(
        json!({"type": "azure", "account": "acct", "bucket": "images", "accountKey": "not base64 TOPSECRET!"}),
    );
    assert!(
        f.contains_key("accountKey") && !format!("{f:?}").contains("TOPSECRET"),
        "{f:?}"
    );
    let mut key = key_file("https://oauth2.googleapis.com/token");
    key["private_key"] = json!("-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n");
    let f = create_err(json!({"type": "gcs", "bucket": "b-bucket", "serviceAccountKey": key}));
    assert!(
        f.contains_key("serviceAccountKey") && !format!("{f:?}").contains("TOPSECRET"),
        "{f:?}"
    );
}

#[test]
fn patch_rotates_secret_and_changes_buckets_but_not_type() {
    let current = create_ok(
        json!({"_id": "main", "type": "aws", "buckets": ["b-one"], "accessKeyId": "AK", "secretAccessKey": "old"}),
    );
    let s = update(
        &current,
        &json!({"secretAccessKey": "new", "buckets": ["b-one", "b-two"], "region": "eu-west-1"}),
        &API,
    )
    .unwrap();
    let p = s3_of(&s);
    assert!(
        matches!(p.credentials, S3Credentials::AccessKey(ref k) if k.access_key_id == "AK" && k.secret_access_key.expose() == "new")
    );
    assert_eq!((s.buckets.len(), p.region.as_str()), (2, "eu-west-1"));
    let f = update(&current, &json!({"type": "gcs"}), &API).unwrap_err();
    assert!(f.contains_key("type"));
    let f = update(&current, &json!({"endpoint": "ftp://x"}), &API).unwrap_err();
    assert!(f.contains_key("endpoint"));
    let f = update(&current, &json!({"endpoint": " https://169.254.169.254"}), &API).unwrap_err();
    assert!(f.contains_key("endpoint"));
    let cleared = update(&current, &json!({"endpoint": null}), &API).unwrap();
    assert_eq!(cleared.endpoint, None);
}

#[test]
fn azure_storages_take_a_key_a_sas_or_a_tenant() {
    let base = json!({"type": "azure", "account": "acmeassets", "buckets": ["images", "videos-2"]});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let azure = |s: &Storage| match &s.provider {
        Provider::Azure(a) => a.clone(),
        other => panic!("{other:?}"),
    };
    let s = create_ok(with(json!({"accountKey": "c2VjcmV0"})));
    assert_eq!(s.endpoint().to_string(), "https://acmeassets.blob.core.windows.net");
    assert!(matches!(azure(&s).credentials, AzureCredentials::SharedKey(_)));
    let s = create_ok(with(json!({"sasToken": "?sv=2023-11-03&sr=c&sp=rl&sig=abc%2Bdef%3D"})));
    assert!(matches!(azure(&s).credentials, AzureCredentials::Sas(ref t) if t.expose().starts_with("sv=")));
    let s = create_ok(with(json!({"tenantId": "00000000-1111-2222-3333-444444444444"})));
    assert!(matches!(azure(&s).credentials, AzureCredentials::Entra { .. }));
    // An emulator's endpoint names the account in its path.
    let s = create_ok(with(
        json!({"endpoint": "http://127.0.0.1:10000/acmeassets", "accountKey": "c2VjcmV0"}),
    ));
    assert_eq!(s.endpoint.unwrap().to_string(), "http://127.0.0.1:10000");
    let f = create_err(with(
        json!({"endpoint": "http://127.0.0.1:10000/other", "accountKey": "c2VjcmV0"}),
    ));
    assert!(f.contains_key("endpoint"), "{f:?}");
    for bad in [
        json!({"sasToken": "sv=1&no-signature=1"}),
        json!({"sasToken": "sv=2023-11-03&sp=rl&sig=abc&comp=list&restype=container"}),
        json!({"tenantId": "../../evil"}),
        json!({"accountKey": "c2VjcmV0", "sasToken": "sig=x"}),
    ] {
        assert!(build(&with(bad.clone()), &API).is_err(), "{bad}");
    }
    let f =
        create_err(json!({"type": "azure", "account": "Not_An_Account", "bucket": "UPPER", "accountKey": "c2VjcmV0"}));
    assert!(f.contains_key("account") && f.contains_key("buckets"), "{f:?}");
}

#[test]
fn gcs_storages_take_a_key_file_or_a_service_account_to_impersonate() {
    let s = create_ok(
        json!({"type": "gcs", "bucket": "gcs-assets", "serviceAccountKey": key_file("https://oauth2.googleapis.com/token")}),
    );
    let Provider::Gcs(g) = &s.provider else { panic!() };
    assert_eq!(g.token_uri(), Some("https://oauth2.googleapis.com/token"));
    assert!(matches!(g.credentials, GcsCredentials::ServiceAccount(ref k) if k.client_email.starts_with("reader@")));
    // The key file may be given as its JSON text too.
    let text = key_file("https://oauth2.googleapis.com/token").to_string();
    assert!(build(
        &json!({"type": "gcs", "bucket": "gcs-assets", "serviceAccountKey": text}),
        &API
    )
    .is_ok());
    let s = create_ok(
        json!({"type": "gcs", "bucket": "gcs-assets", "serviceAccount": "reader@acme-proj.iam.gserviceaccount.com"}),
    );
    assert!(matches!(s.provider, Provider::Gcs(ref g) if matches!(g.credentials, GcsCredentials::Impersonate { .. })));
    let f = create_err(json!({"type": "gcs", "bucket": "gcs-assets", "serviceAccount": "x@evil.com/../"}));
    assert!(f.contains_key("serviceAccount"), "{f:?}");
    let f = create_err(json!({"type": "gcs", "bucket": "gcs-assets", "serviceAccountKey": {"type": "user"}}));
    assert!(f.contains_key("serviceAccountKey"), "{f:?}");
}

/// A storage whose credential is a token of the gateway's own identity may send it only to
/// its cloud: another endpoint is refused at create and PATCH, naming `endpoint`.
#[test]
fn entra_and_impersonation_storages_keep_to_their_clouds_endpoints() {
    let entra = json!({"type": "azure", "account": "victimacct", "buckets": ["images"],
        "tenantId": "00000000-1111-2222-3333-444444444444"});
    let impersonate = json!({"type": "gcs", "bucket": "gcs-assets",
        "serviceAccount": "reader@victim-proj.iam.gserviceaccount.com"});
    for body in [&entra, &impersonate] {
        assert!(build(body, &API).is_ok(), "no endpoint: the provider's own");
        for evil in [
            "https://evil.example",
            "https://127.0.0.1:8443",
            "http://storage.googleapis.com",
        ] {
            let mut b = body.clone();
            b["endpoint"] = json!(evil);
            let f = create_err(b);
            assert!(f.contains_key("endpoint"), "{evil}: {f:?}");
        }
    }
    let mut own = entra.clone();
    own["endpoint"] = json!("https://victimacct.blob.core.windows.net");
    assert!(build(&own, &API).is_ok());
    let mut own = impersonate.clone();
    own["endpoint"] = json!("https://storage.googleapis.com");
    assert!(build(&own, &API).is_ok());

    // PATCH: moving the endpoint away, or switching a keyed storage with its own endpoint to
    // the gateway's identity, is refused; with keys, any endpoint the guard allows will do.
    let current = create_ok(entra.clone());
    let f = update(&current, &json!({"endpoint": "https://evil.example"}), &API).unwrap_err();
    assert!(f.contains_key("endpoint"), "{f:?}");
    let keyed = create_ok(json!({"type": "azure", "account": "victimacct", "buckets": ["images"],
        "accountKey": "c2VjcmV0", "endpoint": "https://evil.example"}));
    let f = update(
        &keyed,
        &json!({"tenantId": "00000000-1111-2222-3333-444444444444"}),
        &API,
    )
    .unwrap_err();
    assert!(f.contains_key("endpoint"), "{f:?}");

    // An operator's list lets a private endpoint through, for that cloud only.
    let listed = crate::credentials::TokenDestinations::new(
        None,
        vec![crate::upstream::Endpoint::parse("https://azurite.internal:10000").unwrap()],
        vec![],
    );
    let cx = Context {
        destinations: &listed,
        ..API
    };
    let mut private = entra.clone();
    private["endpoint"] = json!("https://azurite.internal:10000/victimacct");
    assert!(build(&private, &cx).is_ok());
    let mut private = impersonate.clone();
    private["endpoint"] = json!("https://azurite.internal:10000");
    assert!(build(&private, &cx).is_err());
    // The configuration file is held to the same rule.
    let file = json!({"id": "blobs", "provider": "azure", "account": "victimacct", "buckets": ["images"],
        "endpoint": "https://evil.example",
        "credentials": {"type": "entra_delegation", "tenant_id": "contoso.onmicrosoft.com"}});
    assert!(build(&file, &CONFIG).unwrap_err().contains_key("endpoint"));
}

#[test]
fn the_config_style_spells_keys_in_snake_case_and_refuses_unknown_ones() {
    let ok = json!({"id": "main", "provider": "aws", "buckets": ["b-bucket"], "region": "eu-west-1",
        "credentials": {"type": "access_key", "access_key_id": "AK", "secret_access_key": " kept as written "}});
    let s = build(&ok, &CONFIG).unwrap();
    assert!(
        matches!(s3_of(&s).credentials, S3Credentials::AccessKey(ref k) if k.secret_access_key.expose() == " kept as written ")
    );
    let mut unknown = ok.clone();
    unknown["regoin"] = json!("x");
    unknown["credentials"]["sekret"] = json!("x");
    let f = build(&unknown, &CONFIG).unwrap_err();
    assert!(
        f.contains_key("regoin") && f.contains_key("credentials.sekret"),
        "{f:?}"
    );
    let f = build(
        &json!({"provider": "aws", "buckets": ["b-bucket"], "credentials": {"type": "access_key"}}),
        &CONFIG,
    )
    .unwrap_err();
    assert!(
        f.contains_key("id") && f.contains_key("credentials.access_key_id"),
        "{f:?}"
    );
    // camelCase is the admin API's, not the file's.
    let f = build(
        &json!({"id": "x", "provider": "aws", "buckets": ["b-bucket"], "pathStyle": true,
        "credentials": {"type": "access_key", "access_key_id": "AK", "secret_access_key": "S"}}),
        &CONFIG,
    )
    .unwrap_err();
    assert!(f.contains_key("pathStyle"), "{f:?}");
    let azure = json!({"id": "blobs", "provider": "azure", "account": "acmeassets", "buckets": ["images"],
        "credentials": {"type": "entra_delegation", "tenant_id": "contoso.onmicrosoft.com"}});
    assert!(build(&azure, &CONFIG).is_ok());
    let gcs = json!({"id": "g", "provider": "gcs", "buckets": ["b-bucket"],
        "credentials": {"type": "impersonate", "service_account": "reader@acme-proj.iam.gserviceaccount.com"}});
    assert!(build(&gcs, &CONFIG).is_ok());
}

#[test]
fn every_provider_names_the_credentials_field_that_is_missing_or_mistyped() {
    let file = |provider: &str, credentials: Value| {
        let mut storage = json!({"id": "s", "provider": provider, "buckets": ["b-bucket"], "account": "acmeassets"});
        if !credentials.is_null() {
            storage["credentials"] = credentials;
        }
        build(&storage, &CONFIG).unwrap_err()
    };
    let cases = [
        (
            "aws",
            json!({"type": "assume_role", "external_id": "e"}),
            "credentials.role_arn",
        ),
        ("gcs", json!({"type": "service_account"}), "credentials.key_json"),
        ("gcs", json!({"type": "impersonate"}), "credentials.service_account"),
        ("azure", json!({"type": "sas"}), "credentials.token"),
        ("azure", json!({"account_key": "a2V5"}), "credentials.type"),
        ("aws", json!({"type": "static"}), "credentials.type"),
        ("gcs", Value::Null, "credentials"),
    ];
    for (provider, credentials, field) in cases {
        let f = file(provider, credentials.clone());
        assert!(f.contains_key(field), "{provider} {credentials}: {f:?}");
    }
    let f = file("aws", json!({"type": "static"}));
    assert_eq!(f["credentials.type"], "is not one of access_key, assume_role");
    // An admin API body giving two kinds at once is refused as such.
    let f = create_err(
        json!({"type": "gcs", "buckets": ["b-bucket"], "serviceAccount": "r@p.iam.gserviceaccount.com",
        "accessKeyId": "AK", "secretAccessKey": "SK"}),
    );
    assert_eq!(f["credentials"], "give one kind of credentials, not several");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a body holds, building it answers (never panics), and a problem is
        /// always named by a field.
        #[test]
        fn any_body_is_built_or_refused_by_field(
            kind in prop::sample::select(vec!["aws", "s3_compatible", "gcs", "azure", "AZURE", "minio", "x"]),
            bucket in "[a-zA-Z0-9./_-]{0,70}",
            account in "[a-z0-9A-Z_]{0,30}",
            endpoint in prop::option::of("[a-z:/.0-9 ]{0,40}"),
            key in "[A-Za-z0-9+/=]{0,12}",
        ) {
            let mut body = json!({"type": kind, "bucket": bucket, "account": account, "accountKey": key,
                "publicKey": "AK", "privateKey": key});
            if let Some(e) = endpoint {
                body["endpoint"] = json!(e);
            }
            match build(&body, &API) {
                Ok(s) => {
                    prop_assert!(!s.buckets.is_empty());
                    prop_assert!(s.buckets.iter().all(|b| s.provider.kind().bucket_rule()(b).is_ok()));
                }
                Err(fields) => prop_assert!(!fields.is_empty()),
            }
        }
    }
}

use super::*;
use serde_json::json;

const EXT: Option<&str> = Some("org-external-id-0123456789abcdef0123");

fn create_ok(body: Value) -> Storage {
    create(&body, EXT).unwrap_or_else(|f| panic!("{f:?}"))
}

fn create_err(body: Value) -> Fields {
    create(&body, EXT).unwrap_err()
}

#[test]
fn our_shape_with_keys() {
    let s = create_ok(
        json!({"_id": "main", "name": "Main", "type": "s3_compatible", "buckets": ["b-one", "b-two"],
        "endpoint": "http://minio.internal:9000", "credentials": {"accessKeyId": "AK", "secretAccessKey": "SK"}}),
    );
    assert_eq!(
        (s.id.as_str(), s.provider, s.buckets.len(), s.path_style),
        ("main", Provider::S3Compatible, 2, true)
    );
    assert!(matches!(s.credentials, StorageCredentials::AccessKey(ref k) if k.secret_access_key.expose() == "SK"));
}

#[test]
fn ango_shape_with_provider_and_public_private_keys() {
    let s = create_ok(
        json!({"name": "Ango bucket", "provider": "AWS", "bucket": "ango-assets", "region": "eu-central-1",
        "publicKey": "AKIA", "privateKey": "secret"}),
    );
    assert_eq!(
        (s.provider, s.buckets[0].as_str(), s.region.as_str(), s.path_style),
        (Provider::Aws, "ango-assets", "eu-central-1", false)
    );
    assert_eq!(s.id.len(), 24, "an id is generated");
    let g = create_ok(json!({"provider": "GCP", "bucket": "gcs-assets", "publicKey": "GOOG1", "privateKey": "s"}));
    assert_eq!((g.provider, g.region.as_str()), (Provider::Gcs, "auto"));
}

#[test]
fn delegation_uses_the_org_external_id_and_no_other() {
    let role =
        json!({"type": "aws", "buckets": ["b-bucket"], "credentials": {"roleArn": "arn:aws:iam::111122223333:role/r"}});
    assert!(mentions_role(&role));
    let s = create_ok(role);
    assert!(
        matches!(s.credentials, StorageCredentials::AssumeRole { ref external_id, .. } if external_id.starts_with("org-external-id"))
    );
    let own = json!({"type": "aws", "buckets": ["b-bucket"], "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": EXT});
    assert!(mentions_role(&own));
    assert!(create(&own, EXT).is_ok());
    let foreign = json!({"type": "aws", "buckets": ["b-bucket"], "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": "another-orgs-id"});
    assert!(create_err(foreign).contains_key("externalId"));
    let keys = json!({"type": "aws", "bucket": "b-bucket", "publicKey": "a", "privateKey": "b"});
    assert!(!mentions_role(&keys));
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
    ] {
        assert!(
            create_err(body(json!({"endpoint": endpoint}))).contains_key("endpoint"),
            "{endpoint:?}"
        );
    }
    assert_eq!(create_ok(body(json!({"region": "eu-west-1"}))).region, "eu-west-1");
}

#[test]
fn every_bad_field_is_named() {
    let f = create_err(
        json!({"type": "azure", "buckets": ["ok-bucket", "Bad/Bucket"], "endpoint": "not a url", "pathStyle": "yes"}),
    );
    for key in ["type", "buckets", "endpoint", "pathStyle", "credentials"] {
        assert!(f.contains_key(key), "{key} missing from {f:?}");
    }
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
}

#[test]
fn patch_rotates_secret_and_changes_buckets_but_not_type() {
    let current = create_ok(
        json!({"_id": "main", "type": "aws", "buckets": ["b-one"], "accessKeyId": "AK", "secretAccessKey": "old"}),
    );
    let s = update(
        &current,
        &json!({"secretAccessKey": "new", "buckets": ["b-one", "b-two"], "region": "eu-west-1"}),
        EXT,
    )
    .unwrap();
    assert!(
        matches!(s.credentials, StorageCredentials::AccessKey(ref k) if k.access_key_id == "AK" && k.secret_access_key.expose() == "new")
    );
    assert_eq!((s.buckets.len(), s.region.as_str()), (2, "eu-west-1"));
    let f = update(&current, &json!({"type": "gcs"}), EXT).unwrap_err();
    assert!(f.contains_key("type"));
    let f = update(&current, &json!({"endpoint": "ftp://x"}), EXT).unwrap_err();
    assert!(f.contains_key("endpoint"));
    let f = update(&current, &json!({"endpoint": " https://169.254.169.254"}), EXT).unwrap_err();
    assert!(f.contains_key("endpoint"));
    let cleared = update(&current, &json!({"endpoint": null}), EXT).unwrap();
    assert_eq!(cleared.endpoint, None);
}

use super::*;
use crate::storage::providers::s3::{S3Credentials, S3};
use crate::storage::Provider;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN_KEY" => Some(KEY.into()),
        "ACME_SECRET" => Some("acme-secret".into()),
        _ => None,
    }
}

fn minimal(extra: &str) -> String {
    format!(
        r#"
[auth]
keys = [{{ kid = "k1", alg = "HS256", secret = "${{TOKEN_KEY}}" }}]

[[orgs]]
id = "acme"

[[orgs.storages]]
id = "main"
provider = "s3_compatible"
buckets = ["acme-images"]
endpoint = "http://127.0.0.1:9000"
credentials = {{ type = "access_key", access_key_id = "AK", secret_access_key = "${{ACME_SECRET}}" }}
{extra}
"#
    )
}

fn err(text: &str) -> ConfigError {
    from_toml(text, &env).unwrap_err()
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = from_toml(&minimal(""), &env).unwrap();
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.server.upstream_first_byte_timeout, Duration::from_secs(30));
    assert_eq!(c.auth.max_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(c.cache_control, "private, max-age=300");
    let s = &c.orgs[0].storages[0];
    assert_eq!(s.name, "main");
    match &s.provider {
        Provider::S3(S3 {
            path_style,
            region,
            credentials: S3Credentials::AccessKey(k),
            ..
        }) => {
            assert!(path_style, "s3_compatible defaults to path style");
            assert_eq!(region, "us-east-1");
            assert_eq!(k.secret_access_key.expose(), "acme-secret");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../config/assetgate.toml");
    let lookup = |name: &str| {
        Some(match name {
            "ASSETGATE_MASTER_KEY" => "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string(),
            "ASSETGATE_TOKEN_KEY" => KEY.to_string(),
            other => format!("value-of-{other}"),
        })
    };
    let c = from_toml(text, &lookup).unwrap();
    assert!(!c.orgs.is_empty());
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let e = err(&minimal("\n[server]\nlisten_addr = \"0.0.0.0:1\""));
    assert!(e.message.contains("listen_addr"), "{e}");
}

#[test]
fn missing_environment_variable_names_key_and_variable() {
    let text = minimal("").replace("${ACME_SECRET}", "${NOT_SET}");
    let e = err(&text);
    assert_eq!(e.key, "orgs[0].storages[0].credentials.secret_access_key");
    assert!(e.message.contains("NOT_SET"));
}

#[test]
fn s3_compatible_needs_an_endpoint() {
    let e = err(&minimal("").replace("endpoint = \"http://127.0.0.1:9000\"", ""));
    assert_eq!(e.key, "orgs[0].storages[0].endpoint");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            minimal("").replace("s3_compatible", "azure_files"),
            "orgs[0].storages[0].provider",
        ),
        (
            minimal("").replace("acme-images", "bad/bucket"),
            "orgs[0].storages[0].buckets[0]",
        ),
        (
            minimal("").replace("http://127.0.0.1:9000", "127.0.0.1:9000"),
            "orgs[0].storages[0].endpoint",
        ),
        (
            minimal("\n[server]\nheader_read_timeout = \"soon\""),
            "server.header_read_timeout",
        ),
        (
            minimal("\n[cors]\nallowed_origins = [\"example.com\"]"),
            "cors.allowed_origins[0]",
        ),
        (minimal("\n[sts]\nsession_duration = \"5m\""), "sts.session_duration"),
        (
            minimal("\n[sts]\nsession_duration = \"15m\"\nrefresh_margin = \"20m\""),
            "sts.refresh_margin",
        ),
        (
            minimal("\n[registry]\nmaster_key = \"c2hvcnQ=\""),
            "registry.master_key",
        ),
        (minimal("").replace("${TOKEN_KEY}", "short"), "auth.keys[0].secret"),
        (
            minimal("").replace("id = \"main\"", "id = \"has space\""),
            "orgs[0].storages[0].id",
        ),
        (
            minimal("").replace("buckets = [", "region = \"x@169.254.169.254\"\nbuckets = ["),
            "orgs[0].storages[0].region",
        ),
        (minimal("\n[sts]\nregion = \"US-EAST-1\""), "sts.region"),
        (minimal("\n[server]\nidle_timeout = \"0s\""), "server.idle_timeout"),
        (
            minimal("\n[server]\nhttp2_max_concurrent_streams = 0"),
            "server.http2_max_concurrent_streams",
        ),
        (
            minimal("\n[cache]\ncache_control = \"public, max-age=60\""),
            "cache.cache_control",
        ),
        (
            minimal("\n[cache]\ncache_control = \"max-age=60, s-maxage=600\""),
            "cache.cache_control",
        ),
    ];
    for (text, key) in cases {
        assert_eq!(err(&text).key, key);
    }
}

#[test]
fn duplicate_storage_ids_are_refused() {
    let text = minimal("").replace("[[orgs.storages]]\nid = \"main\"", "[[orgs.storages]]\nid = \"main\"\nprovider = \"aws\"\nbuckets = [\"x-bucket\"]\ncredentials = { type = \"access_key\", access_key_id = \"A\", secret_access_key = \"B\" }\n\n[[orgs.storages]]\nid = \"main\"");
    assert_eq!(err(&text).key, "orgs[0].storages[1].id");
}

#[test]
fn tokens_keys_are_required_unless_anonymous() {
    let text = minimal("").replace(
        "keys = [{ kid = \"k1\", alg = \"HS256\", secret = \"${TOKEN_KEY}\" }]",
        "",
    );
    assert_eq!(err(&text).key, "auth.keys");
    let text = text.replace("[auth]", "[auth]\nallow_anonymous = true");
    assert!(from_toml(&text, &env).unwrap().auth.allow_anonymous);
}

#[test]
fn the_data_plane_gets_a_thread_per_cpu_unless_told_and_within_bounds() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(from_toml(&minimal(""), &env).unwrap().server.threads, cpus);
    let c = from_toml(&minimal("\n[server]\nthreads = 3"), &env).unwrap();
    assert_eq!(c.server.threads, 3);
    for (threads, message) in [("0", "must be at least 1"), ("1025", "must be at most 1024")] {
        let e = from_toml(&minimal(&format!("\n[server]\nthreads = {threads}")), &env).unwrap_err();
        assert_eq!((e.key.as_str(), e.message.as_str()), ("server.threads", message));
    }
}

#[test]
fn the_default_cache_control_is_made_private() {
    let c = from_toml(&minimal("\n[cache]\ncache_control = \"max-age=60\""), &env).unwrap();
    assert_eq!(c.cache_control, "private, max-age=60");
}

#[test]
fn a_mistyped_value_is_named_by_key_and_type_never_echoed() {
    let lookup = |name: &str| match name {
        "LEAKY" => Some("hunter2-secret-value".to_string()),
        other => env(other),
    };
    let text = minimal("\n[server]\nmax_connections = \"${LEAKY}\"");
    let e = from_toml(&text, &lookup).unwrap_err();
    assert_eq!(e.key, "server.max_connections");
    assert_eq!(e.message, "expected usize, found string");
    let text = minimal("").replace("type = \"access_key\"", "type = \"${LEAKY}\"");
    let e = from_toml(&text, &lookup).unwrap_err();
    assert_eq!(e.key, "orgs[0].storages[0].credentials.type");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    for (text, key) in [
        (
            minimal("").replace("acme-images", "hunter2/secret"),
            "orgs[0].storages[0].buckets[0]",
        ),
        (
            minimal("").replace("http://127.0.0.1:9000", "hunter2"),
            "orgs[0].storages[0].endpoint",
        ),
        (minimal("\n[server]\nlisten = \"hunter2\""), "server.listen"),
        (minimal("\n[server]\nidle_timeout = \"hunter2\""), "server.idle_timeout"),
        (
            minimal("\n[cors]\nallowed_origins = [\"hunter2\"]"),
            "cors.allowed_origins[0]",
        ),
        (
            minimal("")
                .replace("aws\"", "hunter2\"")
                .replace("s3_compatible", "hunter2"),
            "orgs[0].storages[0].provider",
        ),
    ] {
        let e = err(&text);
        assert_eq!(e.key, key);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}

#[test]
fn a_syntax_error_names_its_line_and_key() {
    let text = minimal("\n[server]\nlisten = 0.0.0.0:8080");
    let e = err(&text);
    assert_eq!(e.key, "server.listen");
    let line = text.lines().position(|l| l.starts_with("listen = 0")).unwrap() + 1;
    assert!(e.message.starts_with(&format!("line {line}: not valid TOML")), "{e}");
}

#[test]
fn config_errors_never_echo_secret_values() {
    let text = minimal("").replace("access_key_id = \"AK\"", "access_key_id = \"\"");
    let e = err(&text);
    assert!(!e.to_string().contains("acme-secret"));
    assert_eq!(e.key, "orgs[0].storages[0].credentials.access_key_id");
}

#[test]
fn assume_role_storages_are_validated() {
    let delegated = minimal("").replace(
        r#"credentials = { type = "access_key", access_key_id = "AK", secret_access_key = "${ACME_SECRET}" }"#,
        r#"credentials = { type = "assume_role", role_arn = "arn:aws:iam::111122223333:role/labeling-read", external_id = "ext-1234" }"#,
    );
    let c = from_toml(&delegated, &env).unwrap();
    let provider = &c.orgs[0].storages[0].provider;
    assert!(
        matches!(provider, Provider::S3(S3 { credentials: S3Credentials::AssumeRole { role_arn, .. }, .. }) if role_arn.ends_with("labeling-read"))
    );
    let bad_arn = delegated.replace(
        "arn:aws:iam::111122223333:role/labeling-read",
        "arn:aws:iam::1234:user/x",
    );
    assert_eq!(err(&bad_arn).key, "orgs[0].storages[0].credentials.role_arn");
    let bad_ext = delegated.replace("ext-1234", "has space");
    assert_eq!(err(&bad_ext).key, "orgs[0].storages[0].credentials.external_id");
}

#[test]
fn azure_and_gcs_storages_are_read_with_their_sections() {
    let blobs = r#"
[[orgs.storages]]
id = "blobs"
provider = "azure"
account = "acmeassets"
buckets = ["images"]
credentials = { type = "entra_delegation", tenant_id = "contoso.onmicrosoft.com" }
"#;
    let e = err(&minimal(blobs));
    assert_eq!(e.key, "orgs[0].storages[1].credentials.tenant_id");
    assert!(e.message.contains("[azure]"), "{e}");
    let with_app = format!(
        "{}\n[azure]\nclient_id = \"app\"\nclient_secret = \"s\"\n[gcp]\niam_endpoint = \"http://127.0.0.1:1\"\n",
        minimal(blobs)
    );
    let c = from_toml(&with_app, &env).unwrap();
    assert_eq!(c.orgs[0].storages[1].provider.kind(), crate::storage::Kind::Azure);
    assert_eq!(
        c.azure.unwrap().authority.to_string(),
        "https://login.microsoftonline.com"
    );
    assert_eq!(c.gcp.iam_endpoint.to_string(), "http://127.0.0.1:1");
    let e = err(&format!("{}\n[gcp]\nkey_json = \"{{}}\"\n", minimal("")));
    assert_eq!(e.key, "gcp.key_json");
}

#[test]
fn public_keys_and_a_key_set_are_read_and_checked() {
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let with_keys = |keys: &str| {
        minimal("").replace(
            r#"keys = [{ kid = "k1", alg = "HS256", secret = "${TOKEN_KEY}" }]"#,
            keys,
        )
    };
    let good = with_keys(&format!(
        "keys = [{{ kid = \"e1\", alg = \"EdDSA\", public_key = \"\"\"{}\"\"\" }}]\njwks_url = \"https://platform.example/.well-known/jwks.json\"\njwks_refresh = \"10m\"",
        ed.public_key_pem()
    ));
    let c = from_toml(&good, &env).unwrap();
    assert_eq!((c.auth.keys.len(), c.auth.public_keys.len()), (0, 1));
    assert_eq!(c.auth.jwks_refresh, Duration::from_secs(600));
    let only_a_set = with_keys("jwks_url = \"https://platform.example/jwks\"");
    assert!(from_toml(&only_a_set, &env).is_ok(), "a key set alone is enough");
    let cases = [
        (
            "keys = [{ kid = \"e1\", alg = \"none\", public_key = \"x\" }]",
            "auth.keys[0].alg",
        ),
        ("keys = [{ kid = \"e1\", alg = \"EdDSA\" }]", "auth.keys[0].public_key"),
        (
            "keys = [{ kid = \"e1\", alg = \"EdDSA\", public_key = \"garbage\" }]",
            "auth.keys[0].public_key",
        ),
        (
            "keys = [{ kid = \"h1\", alg = \"HS256\", public_key = \"x\" }]",
            "auth.keys[0].secret",
        ),
        ("jwks_url = \"platform.example/jwks\"", "auth.jwks_url"),
        (
            "jwks_url = \"https://p.example/j\"\njwks_refresh = \"0s\"",
            "auth.jwks_refresh",
        ),
    ];
    for (keys, key) in cases {
        assert_eq!(err(&with_keys(keys)).key, key, "{keys}");
    }
    let private = with_keys(&format!(
        "keys = [{{ kid = \"e1\", alg = \"EdDSA\", public_key = \"\"\"{}\"\"\" }}]",
        ed.serialize_pem()
    ));
    let e = err(&private);
    assert!(
        e.message.contains("private key") && !e.to_string().contains("BEGIN"),
        "{e}"
    );
}

#[test]
fn the_edge_cache_is_on_with_64_mib_in_memory_and_revalidates_by_default() {
    use crate::cache::Freshness;
    let c = from_toml(&minimal(""), &env).unwrap();
    assert_eq!(c.cache.memory, 64 << 20);
    assert_eq!(c.cache.slice, 1 << 20);
    assert_eq!(c.cache.max_object_size, 5 << 30);
    assert_eq!(c.cache.freshness, Freshness::Revalidate);
    assert!(c.orgs[0].storages[0].cache);
    let text = format!(
        "{}\n[cache]\nmemory = \"0\"\nslice = \"256KiB\"\nmax_object_size = \"1GiB\"\nfreshness = \"60s\"\n",
        minimal("cache = false")
    );
    let c = from_toml(&text, &env).unwrap();
    assert!(!c.cache.enabled());
    assert_eq!((c.cache.slice, c.cache.max_object_size), (256 << 10, 1 << 30));
    assert_eq!(c.cache.freshness, Freshness::For(Duration::from_secs(60)));
    assert!(!c.orgs[0].storages[0].cache);
}

#[test]
fn bad_edge_cache_settings_name_their_key() {
    for (line, key) in [
        ("memory = \"lots\"", "cache.memory"),
        ("memory = \"64 mb\"", "cache.memory"),
        ("slice = \"1KiB\"", "cache.slice"),
        ("slice = \"1GiB\"", "cache.slice"),
        ("max_object_size = \"-1\"", "cache.max_object_size"),
        ("freshness = \"sometimes\"", "cache.freshness"),
    ] {
        let e = err(&format!("{}\n[cache]\n{line}\n", minimal("")));
        assert_eq!(e.key, key, "{line}: {}", e.message);
    }
    let e = err(&minimal("cache = \"no\""));
    assert!(e.key.ends_with("cache"), "{e:?}");
}

#[test]
fn the_disk_tier_needs_the_master_key_the_memory_tier_and_room_for_four_slices() {
    let key = "\n[registry]\nmaster_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n";
    let disk = "disk = { path = \"/var/cache/assetgate\", size = \"50GiB\" }";
    let c = from_toml(&format!("{}\n[cache]\n{disk}\n{key}", minimal("")), &env).unwrap();
    let d = c.cache.disk.unwrap();
    assert_eq!((d.path.to_str(), d.size), (Some("/var/cache/assetgate"), 50 << 30));
    let e = err(&format!("{}\n[cache]\n{disk}\n", minimal("")));
    assert!(e.key == "cache.disk" && e.message.contains("master_key"), "{e:?}");
    let e = err(&format!("{}\n[cache]\nmemory = \"0\"\n{disk}\n{key}", minimal("")));
    assert!(e.key == "cache.disk" && e.message.contains("memory"), "{e:?}");
    for (line, at) in [
        ("disk = { path = \"/c\", size = \"3MiB\" }", "cache.disk.size"),
        ("disk = { path = \"/c\", size = \"big\" }", "cache.disk.size"),
        ("disk = { path = \"\", size = \"1GiB\" }", "cache.disk.path"),
    ] {
        let e = err(&format!("{}\n[cache]\n{line}\n{key}", minimal("")));
        assert_eq!(e.key, at, "{line}: {}", e.message);
    }
    let e = err(&format!("{}\n[cache]\ndisk = {{ path = \"/c\" }}\n{key}", minimal("")));
    assert!(e.to_string().contains("size"), "{e}");
}

//! The command line: exit codes and messages of `check` and `token`.

use std::process::{Command, Output};

const KEY: &str = "cli-test-key-0123456789abcdef0123456789";

fn assetgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assetgate"));
    cmd.args(args).env_remove("ASSETGATE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn example_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ASSETGATE_ADMIN_TOKEN", "admin-token"),
        ("ASSETGATE_TOKEN_KEY", KEY),
        ("ASSETGATE_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("ACME_SECRET", "s"),
        ("ACME_MINIO_SECRET", "s"),
        ("ACME_EXTERNAL_ID", "ext-0123456789abcdef"),
    ]
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/assetgate.toml");

#[test]
fn check_accepts_the_example_config_and_prints_a_summary() {
    let out = assetgate(&["check", "--config", EXAMPLE], &example_env());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 orgs, 3 storages"), "{stdout}");
    assert!(stdout.contains("org acme: main, delegated, minio"), "{stdout}");
}

#[test]
fn check_names_the_missing_variable_and_exits_1() {
    let env: Vec<_> = example_env().into_iter().filter(|(k, _)| *k != "ACME_SECRET").collect();
    let out = assetgate(&["check", "--config", EXAMPLE], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("orgs[0].storages[0].credentials.secret_access_key") && stderr.contains("ACME_SECRET"),
        "{stderr}"
    );
}

#[test]
fn config_comes_from_the_environment_variable_too() {
    let mut env = example_env();
    env.push(("ASSETGATE_CONFIG", EXAMPLE));
    assert!(assetgate(&["check"], &env).status.success());
}

#[test]
fn token_prints_a_jwt_and_refuses_a_ttl_over_the_maximum() {
    let out = assetgate(
        &[
            "token",
            "--org",
            "acme",
            "--storage",
            "main",
            "--ttl",
            "5m",
            "--config",
            EXAMPLE,
        ],
        &example_env(),
    );
    assert!(out.status.success());
    let jwt = String::from_utf8(out.stdout).unwrap();
    assert_eq!(jwt.trim().split('.').count(), 3);
    let out = assetgate(
        &["token", "--org", "acme", "--ttl", "48h", "--config", EXAMPLE],
        &example_env(),
    );
    assert_eq!(out.status.code(), Some(1));
}

/// `check` on a file written to a fresh directory.
fn check_text(text: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    assetgate(&["check", "--config", path.to_str().unwrap()], env)
}

const AUTH: &str =
    "[auth]\nkeys = [{ kid = \"k1\", alg = \"HS256\", secret = \"cli-test-key-0123456789abcdef0123456789\" }]\n";

#[test]
fn check_names_the_line_and_key_of_a_syntax_error() {
    let out = check_text(&format!("{AUTH}[server]\nlisten = 0.0.0.0:8080\n"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.listen: line 4: not valid TOML"), "{stderr}");
}

#[test]
fn check_never_echoes_a_mistyped_value() {
    let secret = "leaked-if-you-can-read-this-0123";
    let out = check_text(
        &format!("{AUTH}[server]\nmax_connections = \"${{ASSETGATE_TEST_SECRET}}\"\n"),
        &[("ASSETGATE_TEST_SECRET", secret)],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.max_connections: expected usize, found string"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(assetgate(&["token"], &[]).status.code(), Some(2));
    assert_eq!(assetgate(&["nonsense"], &[]).status.code(), Some(2));
    assert!(assetgate(&["serve", "--help"], &[]).status.success());
}

/// Without `[sts].credentials`, the gateway finds its own identity through the standard AWS
/// chain; here the environment variables. A minimal STS stand-in checks that the AssumeRole
/// call is signed with the key from the environment and answers with credentials; a bucket
/// stand-in accepts requests carrying the issued session token.
#[test]
fn the_gateways_own_identity_comes_from_the_aws_chain() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn serve(listener: TcpListener, reply: impl Fn(&str) -> String + Send + 'static) {
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = (&stream).write_all(reply(&head).as_bytes());
            }
        });
    }

    let sts = TcpListener::bind("127.0.0.1:0").unwrap();
    let sts_addr = sts.local_addr().unwrap();
    serve(sts, |head| {
        let body = if head.contains("Credential=AKIDFROMENVIRONMENT/") {
            let exp =
                humantime::format_rfc3339_seconds(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
            format!("<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIATEMP</AccessKeyId><SecretAccessKey>temp</SecretAccessKey><SessionToken>token-from-sts</SessionToken><Expiration>{exp}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>")
        } else {
            "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>unknown key</Message></Error></ErrorResponse>".to_string()
        };
        let status = if body.contains("InvalidClientTokenId") {
            "403 Forbidden"
        } else {
            "200 OK"
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let bucket = TcpListener::bind("127.0.0.1:0").unwrap();
    let bucket_addr = bucket.local_addr().unwrap();
    serve(bucket, |head| {
        let ok = head
            .to_ascii_lowercase()
            .contains("x-amz-security-token: token-from-sts");
        let (status, body) = if ok {
            ("200 OK", "delegated")
        } else {
            ("403 Forbidden", "<Error><Code>AccessDenied</Code></Error>")
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[auth]
keys = [{{ kid = "k1", alg = "HS256", secret = "{KEY}" }}]
[sts]
endpoint = "http://{sts_addr}"
[[orgs]]
id = "acme"
[[orgs.storages]]
id = "main"
provider = "s3_compatible"
buckets = ["b-bucket"]
endpoint = "http://{bucket_addr}"
credentials = {{ type = "assume_role", role_arn = "arn:aws:iam::111122223333:role/r", external_id = "ext-1" }}
"#
        ),
    )
    .unwrap();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT")
        .env("AWS_SECRET_ACCESS_KEY", "secret-from-environment")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token =
        String::from_utf8(assetgate(&["token", "--org", "acme", "--config", config.to_str().unwrap()], &[]).stdout)
            .unwrap();
    let url = format!(
        "/v1/orgs/acme/storages/main/objects/b-bucket/k.jpg?token={}",
        token.trim()
    );
    let mut reply = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            write!(s, "GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            s.read_to_string(&mut reply).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    gateway.kill().unwrap();
    let _ = gateway.wait();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("delegated"), "{reply}");
}

/// `assetgate validate` against the embedded s3s backend: exit 0 and every check passing
/// for good keys, exit 1 naming the secret for a wrong one.
#[test]
fn validate_reports_on_a_storage_and_exits_1_when_it_fails() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let backend = runtime.block_on(async {
        let backend = assetgate::demo::Backend::start(root.path()).await.unwrap();
        let writer = assetgate::demo::seed::S3Writer::new(backend.endpoint.clone(), backend.keys.clone(), "us-east-1");
        writer.create_bucket("cli-assets").await.unwrap();
        writer
            .put("cli-assets", "a.txt", "text/plain", &b"hello"[..])
            .await
            .unwrap();
        backend
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let storage = |id: &str, secret: &str| {
        format!(
            "[[orgs.storages]]\nid = \"{id}\"\nprovider = \"s3_compatible\"\nbuckets = [\"cli-assets\"]\nendpoint = \"{}\"\n\
             credentials = {{ type = \"access_key\", access_key_id = \"{}\", secret_access_key = \"{secret}\" }}\n",
            backend.endpoint, backend.keys.access_key_id
        )
    };
    std::fs::write(
        &config,
        format!(
            "[auth]\nkeys = [{{ kid = \"k1\", alg = \"HS256\", secret = \"{KEY}\" }}]\n[[orgs]]\nid = \"acme\"\n{}{}",
            storage("good", backend.keys.secret_access_key.expose()),
            storage("bad", "wrong-secret")
        ),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let good = assetgate(
        &["validate", "--org", "acme", "--storage", "good", "--config", path],
        &[],
    );
    let out = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{out}{}", String::from_utf8_lossy(&good.stderr));
    for check in ["credentials", "bucket_location", "list", "object_read"] {
        assert!(
            out.lines().any(|l| l.starts_with("pass") && l.contains(check)),
            "{check}: {out}"
        );
    }
    let bad = assetgate(
        &["validate", "--org", "acme", "--storage", "bad", "--config", path],
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("the secret key is wrong"));
    drop(runtime);
}

#[test]
fn probe_fails_on_a_closed_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = assetgate(&["probe", &format!("http://127.0.0.1:{port}/healthz")], &[]);
    assert_eq!(out.status.code(), Some(1));
}

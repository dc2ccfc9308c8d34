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
        (
            "ASSETGATE_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("ACME_SECRET", "s"),
        ("ACME_MINIO_SECRET", "s"),
    ]
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/assetgate.toml");

#[test]
fn check_accepts_the_example_config_and_prints_a_summary() {
    let out = assetgate(&["check", "--config", EXAMPLE], &example_env());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 orgs, 2 storages"), "{stdout}");
    assert!(stdout.contains("org acme: main, minio"), "{stdout}");
}

#[test]
fn check_names_the_missing_variable_and_exits_1() {
    let env: Vec<_> = example_env()
        .into_iter()
        .filter(|(k, _)| *k != "ACME_SECRET")
        .collect();
    let out = assetgate(&["check", "--config", EXAMPLE], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("orgs[0].storages[0].credentials.secret_access_key")
            && stderr.contains("ACME_SECRET"),
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
        &[
            "token", "--org", "acme", "--ttl", "48h", "--config", EXAMPLE,
        ],
        &example_env(),
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(assetgate(&["token"], &[]).status.code(), Some(2));
    assert_eq!(assetgate(&["nonsense"], &[]).status.code(), Some(2));
    assert!(assetgate(&["serve", "--help"], &[]).status.success());
}

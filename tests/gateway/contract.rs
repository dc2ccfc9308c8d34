//! The admin API against its OpenAPI document (`src/admin/openapi.json`, served at
//! `/admin/v1/openapi.json`), by schemathesis (PyPI, pinned in tests/servers/requirements.txt):
//! every operation with examples, boundary values, generated data and stateful sequences
//! (create, then read, change, validate and delete what was created), with the embedded
//! registry and with PostgreSQL. Pass means no 5xx, every answer and status as documented,
//! 405s with their `Allow`, every request the schemas refuse refused, and no secret in any
//! answer (tests/contract/hooks.py). Bounded for CI by a fixed seed and example count;
//! `ASSETGATE_CONTRACT_EXAMPLES` asks for a longer run.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use http::Method;

use crate::support::postgres::database;
use crate::support::process::program;
use crate::support::seaweed::seaweed;
use crate::support::*;

const ADMIN: &str = "contract-admin-token-0123456789abcdef";
const BUCKET: &str = "contract-assets";

fn master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

/// A gateway whose registry is `registry` (its `[registry]` keys), with one storage created
/// through the API whose secret the run must never see again.
async fn gateway(registry: &str) -> TestGateway {
    seaweed().seed(BUCKET, &[("sample.jpg", b"contract bytes")]).await;
    let settings = format!(
        "[admin]\ntoken = \"{ADMIN}\"\n[registry]\n{registry}\nmaster_key = \"{}\"\nallow_private_endpoints = [\"127.0.0.0/8\"]\n",
        master_key()
    );
    let gw = TestGateway::start(&format!("{}\n{settings}", config("", ""))).await;
    let body = seaweed().api_storage("main", &[BUCKET]);
    let created = client::admin(
        &gw.admin_base,
        ADMIN,
        Method::POST,
        "/admin/v1/orgs/acme/storages",
        Some(body),
    )
    .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    gw
}

/// Runs schemathesis against `gw` and fails with its report unless every check passed.
async fn schemathesis(gw: &TestGateway) {
    // Every check of schemathesis runs (its default), as tests/contract/schemathesis.toml sets them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    #[allow(
        clippy::disallowed_methods,
        reason = "a longer run is asked for through the environment"
    )]
    let examples = std::env::var("ASSETGATE_CONTRACT_EXAMPLES").unwrap_or_else(|_| "30".into());
    let secrets = [
        ADMIN.to_string(),
        master_key(),
        TOKEN_SECRET.to_string(),
        seaweed().reader.secret_access_key.expose().to_string(),
    ]
    .join("\n");
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new(program("SCHEMATHESIS", "schemathesis"));
    command
        // Its cache of failures (`.schemathesis/`) goes to a scratch directory, not the tree.
        .current_dir(&scratch)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &dir)
        .env("ASSETGATE_CONTRACT_SECRETS", secrets)
        .args(["--no-color", "--config-file"])
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/admin/v1/openapi.json", gw.admin_base))
        .args(["--url", &gw.admin_base])
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--seed", "23", "--max-examples", &examples])
        .args(["--workers", "1", "--request-timeout", "20"]);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run schemathesis (pip install -r tests/servers/requirements.txt): {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = report.lines().find(|l| l.contains(" generated, ")).unwrap_or("");
    eprintln!("schemathesis: {}", summary.trim());
}

#[tokio::test]
async fn the_admin_api_keeps_its_openapi_contract_with_the_embedded_registry() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&format!("data_dir = \"{}\"", dir.path().display())).await;
    schemathesis(&gw).await;
}

#[tokio::test]
async fn the_admin_api_keeps_its_openapi_contract_with_postgresql() {
    let (_, url) = database();
    let gw = gateway(&format!("url = \"{url}\"")).await;
    schemathesis(&gw).await;
}

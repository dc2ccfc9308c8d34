//! moto server (PyPI `moto[server]`) with auth switched on after setup. It stores any key
//! verbatim (`a//b`, `a/../b`, trailing `/`), which SeaweedFS cannot.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use assetgate::config::{Endpoint, Scheme, StaticKeys};
use assetgate::secret::Secret;

use super::process::{free_ports, program, scratch_dir, wait_until, Background};

pub struct Moto {
    pub endpoint: Endpoint,
    /// The IAM user the gateway signs as (allowed `s3:*` and `sts:AssumeRole`).
    pub keys: StaticKeys,
    /// ARN of the role `labeling-read`, which trusts that user with external ID
    /// [`EXTERNAL_ID`] and may read every bucket.
    pub role_arn: String,
    _process: Mutex<Background>,
}

/// Objects moto is seeded with: bucket `verbatim-keys`, each key holding its own name, and
/// `b` holding other bytes than `a/../b`, so that a gateway normalising paths is caught.
pub const VERBATIM_BUCKET: &str = "verbatim-keys";
pub const VERBATIM_KEYS: [&str; 5] = ["a//b", "a/./b", "a/../b", "dir/trailing/", "b"];

/// The external ID the moto role's trust policy requires.
pub const EXTERNAL_ID: &str = "ext-7f3a9c2e-acme";

/// A bucket read through the delegated role.
pub const DELEGATED_BUCKET: &str = "delegated-assets";

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let dir = scratch_dir("moto");
    let port = free_ports(1)[0];
    let args = vec!["-H".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    let cleanup = format!("rm -rf '{}'", dir.display());
    let mut process = Background::spawn(
        &program("MOTO_SERVER", "moto_server"),
        &args,
        &dir.join("moto.log"),
        &cleanup,
    );
    wait_until(&mut process, "moto", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let objects: serde_json::Map<String, serde_json::Value> = VERBATIM_KEYS
        .iter()
        .map(|k| (k.to_string(), serde_json::Value::String(format!("content of {k}"))))
        .collect();
    let spec = serde_json::json!({
        "buckets": { VERBATIM_BUCKET: objects, DELEGATED_BUCKET: { "scan.dcm": "delegated bytes" } },
        "roles": { "labeling-read": EXTERNAL_ID },
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/moto_setup.py");
    let mut setup = Command::new(program("PYTHON", "python3"))
        .arg(script)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with boto3 (see .ci/run)");
    setup
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = setup.wait_with_output().unwrap();
    assert!(out.status.success(), "moto setup failed");
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let role_arn = keys["roles"]["labeling-read"].as_str().unwrap().to_string();
    let keys = StaticKeys {
        access_key_id: keys["access_key_id"].as_str().unwrap().into(),
        secret_access_key: Secret::new(keys["secret_access_key"].as_str().unwrap()),
        session_token: None,
    };
    let endpoint = Endpoint {
        scheme: Scheme::Http,
        host: "127.0.0.1".into(),
        port: Some(port),
    };
    Moto {
        endpoint,
        keys,
        role_arn,
        _process: Mutex::new(process),
    }
}

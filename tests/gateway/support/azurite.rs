//! Azurite (npm `azurite`, installed into tests/servers by .ci/run): Azure Blob Storage with
//! Shared Key and SAS checked for real. One plain-HTTP server per test process with two
//! accounts of our own keys, and, for Entra delegation, one over HTTPS with `--oauth basic`
//! (it then checks a bearer token's issuer, audience and lifetime, not its signature).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use assetgate::storage::providers::azure::{shared_key, VERSION};
use assetgate::upstream::{Endpoint, Scheme};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::process::{free_ports, program, scratch_dir, wait_until, Background};

/// The account the tests' storages read.
pub const ACCOUNT: &str = "acmeassets";
/// Another account on the same server: a storage naming it with ACCOUNT's key is refused.
pub const OTHER_ACCOUNT: &str = "otherassets";

pub struct Azurite {
    /// `http://127.0.0.1:PORT` (no account: Azurite takes it from the path).
    pub endpoint: Endpoint,
    /// ACCOUNT's key, base64.
    pub key: String,
    pub other_key: String,
    /// The HTTPS server's certificate (PEM), for `[server].upstream_ca_file`, and its DER.
    pub ca_file: Option<PathBuf>,
    ca_der: Option<Vec<u8>>,
    _process: Mutex<Background>,
}

/// The plain server, started on first use.
pub fn azurite() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(|| start(false))
}

/// The HTTPS server with `--oauth basic`, started on first use.
pub fn azurite_oauth() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(|| start(true))
}

fn key_of(seed: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode(
        (0..64u8)
            .map(|i| i.wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

fn azurite_blob() -> String {
    let installed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/node_modules/.bin/azurite-blob"
    );
    program("AZURITE_BLOB", installed)
}

fn start(oauth: bool) -> Azurite {
    let (key, other_key) = (key_of(7), key_of(99));
    let dir = scratch_dir(if oauth { "azurite-oauth" } else { "azurite" });
    let port = free_ports(1)[0];
    let mut args: Vec<String> = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableTelemetry",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (mut ca_file, mut ca_der) = (None, None);
    if oauth {
        let (cert, key_file, der) = super::tls::write_cert(&dir, "127.0.0.1");
        ca_der = Some(der);
        args.extend(
            [
                "--oauth",
                "basic",
                "--cert",
                &cert.display().to_string(),
                "--key",
                &key_file.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        ca_file = Some(cert);
    }
    // AZURITE_ACCOUNTS reaches the server through the shell that starts it.
    let accounts = format!("{ACCOUNT}:{key};{OTHER_ACCOUNT}:{other_key}");
    let program = azurite_blob();
    let mut wrapped = vec![format!("AZURITE_ACCOUNTS={accounts}"), program];
    wrapped.extend(args);
    let d = dir.display();
    let mut process = Background::spawn("env", &wrapped, &dir.join("azurite.log"), &format!("rm -rf '{d}'"));
    let addr = format!("127.0.0.1:{port}");
    wait_until(&mut process, "Azurite", Duration::from_secs(60), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    Azurite {
        endpoint: Endpoint {
            scheme: if oauth { Scheme::Https } else { Scheme::Http },
            host: "127.0.0.1".into(),
            port: Some(port),
        },
        key,
        other_key,
        ca_file,
        ca_der,
        _process: Mutex::new(process),
    }
}

impl Azurite {
    /// Creates `container` in ACCOUNT and puts `blobs` into it.
    pub async fn seed(&self, container: &str, blobs: &[(&str, &[u8])]) {
        let created = self
            .send(
                Method::PUT,
                &format!("/{container}"),
                Some("restype=container"),
                HeaderMap::new(),
                Bytes::new(),
            )
            .await;
        assert!(
            created.0 == StatusCode::CREATED || created.0 == StatusCode::CONFLICT,
            "create container {container}: {created:?}"
        );
        for (name, data) in blobs {
            self.put(container, name, "application/octet-stream", data).await;
        }
    }

    /// Puts one block blob.
    pub async fn put(&self, container: &str, name: &str, content_type: &str, data: &[u8]) {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        let path = format!("/{container}/{}", assetgate::route::encode_key(name));
        let put = self
            .send(Method::PUT, &path, None, headers, Bytes::copy_from_slice(data))
            .await;
        assert_eq!(put.0, StatusCode::CREATED, "put {container}/{name}: {put:?}");
    }

    /// A request to ACCOUNT signed with its key.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let path = format!("/{ACCOUNT}{path}");
        headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
        headers.insert(
            "x-ms-date",
            HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())).unwrap(),
        );
        let text = shared_key::string_to_sign(method.as_str(), ACCOUNT, &path, query, &headers);
        let key = base64::engine::general_purpose::STANDARD.decode(&self.key).unwrap();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&shared_key::authorization(ACCOUNT, &key, &text)).unwrap(),
        );
        let url = match query {
            Some(q) => format!("{}{path}?{q}", self.endpoint),
            None => format!("{}{path}", self.endpoint),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(body))
            .unwrap();
        *request.headers_mut() = headers;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(der) = &self.ca_der {
            roots.add(rustls::pki_types::CertificateDer::from(der.clone())).unwrap();
        }
        let tls =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let response = client.request(request).await.expect("Azurite reachable");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// An account SAS of ACCOUNT (blob service; containers and objects) with `permissions`
    /// (`rl`: read and list), valid until `expiry`, signed with `key`
    /// (<https://learn.microsoft.com/rest/api/storageservices/create-account-sas>).
    pub fn account_sas(&self, permissions: &str, expiry: SystemTime, key: &str) -> String {
        let start = httpdate_iso(SystemTime::now() - Duration::from_secs(300));
        let expiry = httpdate_iso(expiry);
        let to_sign = format!("{ACCOUNT}\n{permissions}\nb\nco\n{start}\n{expiry}\n\nhttps,http\n{VERSION}\n\n");
        let key = base64::engine::general_purpose::STANDARD.decode(key).unwrap();
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!(
            "sv={VERSION}&ss=b&srt=co&sp={permissions}&st={}&se={}&spr=https,http&sig={}",
            enc(&start),
            enc(&expiry),
            enc(&sig)
        )
    }

    /// A `[[orgs.storages]]` block for ACCOUNT with `credentials` (a TOML inline table).
    pub fn storage(&self, id: &str, containers: &[&str], credentials: &str) -> String {
        let containers: Vec<String> = containers.iter().map(|c| format!("\"{c}\"")).collect();
        format!(
            "[[orgs.storages]]\nid = \"{id}\"\nprovider = \"azure\"\naccount = \"{ACCOUNT}\"\nbuckets = [{}]\nendpoint = \"{}/{ACCOUNT}\"\ncredentials = {credentials}\n",
            containers.join(", "),
            self.endpoint
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the time format of SAS fields.
fn httpdate_iso(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

//! TLS for tests: a self-signed certificate for the gateway, and rustls clients that trust
//! it, with the ALPN protocols a test asks for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate for `name` and its key, written to `dir`: (cert, key, certificate DER).
pub fn write_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k, cert.cert.der().to_vec())
}

/// The `[server]` line serving that certificate.
pub fn server_line(cert: &Path, key: &Path) -> String {
    format!("tls = {{ cert = \"{}\", key = \"{}\" }}", cert.display(), key.display())
}

/// A client configuration trusting `trusted` (DER certificates), offering `alpn`.
pub fn client_config(trusted: &[&[u8]], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots
            .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` for server name `name`.
pub async fn connect(addr: &str, name: &str, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .unwrap()
}

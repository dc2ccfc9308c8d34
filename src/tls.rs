//! TLS on the data plane (rustls with ring): the certificate and key files of `[server].tls`,
//! reloaded without a restart when the files change (polled) or on SIGHUP; ALPN offers
//! HTTP/2 next to HTTP/1.1. Also the extra CA bundle trusted for HTTPS endpoints.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate and key files of `[server].tls` (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How often certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// A certificate or key that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The served certificate, swapped atomically when its files change.
pub struct CertStore {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
    /// Modification times of (cert, key) when last loaded.
    loaded: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert", &self.files.cert)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    pub fn load(files: &TlsFiles) -> Result<Arc<CertStore>, TlsError> {
        let key = read(files)?;
        let store = CertStore {
            files: files.clone(),
            current: ArcSwap::from_pointee(key),
            loaded: Mutex::new(stamps(files)),
        };
        Ok(Arc::new(store))
    }

    /// Loads the files again if they changed (or always, with `force`). A broken pair is
    /// refused and the current certificate kept.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        let mut loaded = self.loaded.lock().expect("cert lock");
        if !force && now == *loaded {
            return Ok(false);
        }
        let key = read(&self.files)?;
        self.current.store(Arc::new(key));
        *loaded = now;
        Ok(true)
    }

    /// The acceptor serving this store's certificate, with ALPN `h2` and `http/1.1`, and
    /// session tickets for returning clients.
    pub fn acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Stateless tickets (sealed with a random key of this process, replaced every 6
        // hours), so that any number of returning clients resume without the certificate's
        // signature. Without them rustls remembers 256 sessions, and two are spent on each
        // new connection.
        match rustls::crypto::ring::Ticketer::new() {
            Ok(ticketer) => config.ticketer = ticketer,
            Err(e) => {
                tracing::warn!(error = %e, "no TLS session tickets; returning clients resume only from the server's 256 remembered sessions")
            }
        }
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Polls the files every [`RELOAD_INTERVAL`] for as long as the process runs.
    pub fn watch(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            loop {
                tick.tick().await;
                match self.reload(false) {
                    Ok(true) => tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; keeping the current one"),
                }
            }
        });
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn stamps(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

fn read(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError(format!("{}: no usable private key: {e}", files.key.display())))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| TlsError(format!("{}: unsupported private key: {e}", files.key.display())))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|e| {
        TlsError(format!(
            "{} and {} do not belong together: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    Ok(certified)
}

/// Every certificate of a PEM file (a chain, or a CA bundle).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect())
        .map_err(|e| TlsError(format!("{}: cannot read certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no certificate found", path.display())));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn loads_swaps_and_keeps_the_old_pair_when_the_new_one_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "one.test");
        let store = CertStore::load(&files).unwrap();
        let first = store.current.load_full().cert[0].clone();
        write_pair(dir.path(), "two.test");
        assert!(store.reload(true).unwrap());
        let second = store.current.load_full().cert[0].clone();
        assert_ne!(first, second);
        std::fs::write(&files.key, "not a key").unwrap();
        assert!(store.reload(true).is_err());
        assert_eq!(store.current.load_full().cert[0], second);
    }

    #[test]
    fn mismatched_or_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "one.test");
        let other = rcgen::generate_simple_self_signed(vec!["x.test".into()]).unwrap();
        std::fs::write(&files.key, other.signing_key.serialize_pem()).unwrap();
        assert!(CertStore::load(&files)
            .unwrap_err()
            .to_string()
            .contains("do not belong together"));
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: files.key.clone(),
        };
        assert!(CertStore::load(&missing).unwrap_err().to_string().contains("nope.pem"));
    }
}

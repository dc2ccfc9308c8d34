//! Configuration: the TOML file model (`file`), `${NAME}` interpolation (`env`), endpoint
//! parsing (`endpoint`), and the typed, validated [`Config`] the engine uses (`build`). The
//! engine never sees TOML.

mod build;
mod database;
mod env;
mod file;
mod problem;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use database::{DatabaseTls, DatabaseUrl};
pub use env::Lookup;

use crate::cors::OriginPattern;
use crate::credentials::{AzureConfig, GcpConfig, StsConfig};
use crate::secret::Secret;
use crate::token::AuthConfig;

/// A configuration problem, naming the offending key (`orgs[0].storages[1].endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Dotted path of the key in the file; `file` for errors about the file as a whole.
    pub key: String,
    /// What is wrong, in words an operator can act on. Never contains a secret.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The gateway's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub cors: CorsConfig,
    /// `Cache-Control` sent when the upstream sends none (always private).
    pub cache_control: http::HeaderValue,
    /// The edge cache (`[cache]` besides `cache_control`).
    pub cache: crate::cache::CacheSettings,
    pub sts: StsConfig,
    pub registry: RegistryConfig,
    pub azure: Option<AzureConfig>,
    pub gcp: GcpConfig,
    /// Where audit lines go (`[audit].path`: a file, or `-` for standard output).
    pub audit_path: Option<String>,
    pub orgs: Vec<Org>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data-plane listen address.
    pub listen: SocketAddr,
    /// Certificate and key files; when set the data plane speaks TLS.
    pub tls: Option<crate::tls::TlsFiles>,
    /// From accept to a complete first request head: TLS handshake, protocol detection,
    /// HTTP/2 preface and headers included (slowloris guard).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight (keep-alive, HTTP/2) is closed after this long.
    pub idle_timeout: Duration,
    /// A client that takes no bytes of a response for this long is cut off, and its upstream
    /// request with it.
    pub client_write_timeout: Duration,
    /// Requests one HTTP/2 connection may run at once.
    pub http2_max_concurrent_streams: u32,
    /// TCP (and TLS) connect timeout towards a bucket.
    pub upstream_connect_timeout: Duration,
    /// How long the bucket may take to answer with response headers.
    pub upstream_first_byte_timeout: Duration,
    /// How long a response body may stall (no bytes from the bucket) before it is aborted.
    pub upstream_idle_timeout: Duration,
    /// Extra CA certificates (PEM) trusted for HTTPS endpoints, beside the webpki roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// Connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Threads serving the data plane, each with its own connections and event loop
    /// (README, "Threads"); by default one per CPU the process may use.
    pub threads: usize,
    /// Requests to buckets (and token endpoints) in flight at once, all orgs together; past
    /// it a request waits up to `upstream_connect_timeout`, then is refused with 503.
    pub max_upstream_requests: usize,
    /// How long responses in flight may run on after SIGTERM before the process exits.
    pub shutdown_grace: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (the audit's `clientIp`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Admin listener address (health, metrics, admin API).
    pub listen: SocketAddr,
    /// Bearer token for `/admin/v1/*`; without it the admin API answers 401 to everyone.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Origins allowed for every org.
    pub allowed_origins: Vec<OriginPattern>,
    /// `Access-Control-Max-Age` of preflight answers.
    pub max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The embedded store's directory (unused with `url`).
    pub data_dir: PathBuf,
    /// The shared registry of every replica; `None`: the embedded store.
    pub url: Option<DatabaseUrl>,
    /// How often the shared registry is compared whole with what this replica holds, in
    /// case a change notice was lost.
    pub resync_interval: Duration,
    /// The master key sealing stored records (`master_key`), and the keys that still open
    /// what was sealed before a rotation (`previous_master_keys`, never used to seal);
    /// without them, API-created storages are refused.
    pub master_keys: Option<std::sync::Arc<crate::sealed::Keys>>,
    /// Which internal endpoints API-created storages may still reach.
    pub allow_private_endpoints: crate::upstream::guard::EndpointPolicy,
}

/// An organization and the storages it registered.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    /// Origins allowed for this org on top of `[cors].allowed_origins`.
    pub cors_origins: Vec<OriginPattern>,
    pub storages: Vec<crate::storage::Storage>,
    /// `limits` and `labeler_limits`; `None` when the file sets neither (the admin API may).
    pub limits: Option<crate::limits::OrgLimits>,
}

impl Config {
    /// Parses and validates a TOML document, resolving `${NAME}` through `lookup`.
    pub fn from_toml(text: &str, lookup: Lookup<'_>) -> Result<Config, ConfigError> {
        build::from_toml(text, lookup)
    }

    /// Reads `path` and resolves `${NAME}` from the process environment.
    #[allow(
        clippy::disallowed_methods,
        reason = "the config's lookup is one of the two places that read the environment"
    )]
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::at("file", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text, &|name| std::env::var(name).ok())
    }

    /// The gateway's own identities: AWS (`[sts]`), Entra (`[azure]`) and Google (`[gcp]`).
    pub fn identities(&self) -> crate::credentials::Identities<'_> {
        crate::credentials::Identities {
            sts: &self.sts,
            azure: self.azure.as_ref(),
            gcp: &self.gcp,
            connect_timeout: self.server.upstream_connect_timeout,
        }
    }

    /// The org with this id.
    pub fn org(&self, id: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| o.id == id)
    }
}

impl Org {
    /// The storage with this id.
    pub fn storage(&self, id: &str) -> Option<&crate::storage::Storage> {
        self.storages.iter().find(|s| s.id == id)
    }
}

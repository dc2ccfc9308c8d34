//! The configuration file as written by operators: loose serde structs mirroring the TOML.
//! Nothing here is validated; `super::build` turns it into the typed [`super::Config`].

use serde::Deserialize;

use crate::secret::Secret;

/// The whole file. Every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerFile,
    pub admin: AdminFile,
    pub auth: AuthFile,
    pub cors: CorsFile,
    pub cache: CacheFile,
    pub sts: StsFile,
    pub registry: RegistryFile,
    pub azure: Option<AzureFile>,
    pub gcp: GcpFile,
    pub audit: AuditFile,
    pub orgs: Vec<OrgFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditFile {
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureFile {
    pub client_id: String,
    pub client_secret: Secret,
    pub authority: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpFile {
    pub key_json: Option<Secret>,
    pub iam_endpoint: Option<String>,
    pub metadata_endpoint: Option<String>,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub tls: Option<TlsFile>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub client_write_timeout: Option<String>,
    pub http2_max_concurrent_streams: Option<u32>,
    pub upstream_connect_timeout: Option<String>,
    pub upstream_first_byte_timeout: Option<String>,
    pub upstream_idle_timeout: Option<String>,
    pub upstream_ca_file: Option<String>,
    pub max_connections: Option<usize>,
    pub threads: Option<usize>,
    pub max_upstream_requests: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    pub listen: Option<String>,
    pub token: Option<Secret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthFile {
    pub keys: Vec<KeyFile>,
    pub jwks_url: Option<String>,
    pub jwks_refresh: Option<String>,
    pub max_ttl: Option<String>,
    pub leeway: Option<String>,
    pub require_sub: bool,
    pub allow_anonymous: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub kid: String,
    pub alg: String,
    pub secret: Option<Secret>,
    pub public_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsFile {
    pub allowed_origins: Vec<String>,
    pub max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheFile {
    pub cache_control: Option<String>,
    pub memory: Option<String>,
    pub slice: Option<String>,
    pub max_object_size: Option<String>,
    pub freshness: Option<String>,
    pub disk: Option<DiskFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFile {
    pub path: std::path::PathBuf,
    pub size: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StsFile {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub session_duration: Option<String>,
    pub refresh_margin: Option<String>,
    pub failure_cache: Option<String>,
    pub credentials: Option<StsCredentialsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsCredentialsFile {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryFile {
    pub data_dir: Option<String>,
    /// Carries the database password.
    pub url: Option<Secret>,
    pub resync_interval: Option<String>,
    pub master_key: Option<Secret>,
    pub previous_master_keys: Vec<Secret>,
    pub allow_private_endpoints: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    pub id: String,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Each storage as written; `crate::storage::build` reads and checks it.
    #[serde(default)]
    pub storages: Vec<serde_json::Value>,
    pub limits: Option<crate::limits::Limit>,
    pub labeler_limits: Option<crate::limits::Limit>,
}

/// Storages hold credentials as written, so only their number is printed.
impl std::fmt::Debug for OrgFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgFile")
            .field("id", &self.id)
            .field("cors_origins", &self.cors_origins)
            .field("storages", &self.storages.len())
            .field("limits", &self.limits)
            .field("labeler_limits", &self.labeler_limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_a_file_shows_no_secret() {
        let file: FileConfig = toml::from_str(
            r#"
            [admin]
            token = "admin-hunter2"
            [registry]
            url = "postgres://u:db-hunter2@127.0.0.1/r"
            master_key = "mk-hunter2"
            [[orgs]]
            id = "acme"
            storages = [{ id = "s", provider = "s3", secret_access_key = "s3-hunter2" }]
            "#,
        )
        .unwrap();
        let printed = format!("{file:?}");
        assert!(printed.contains("acme"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}

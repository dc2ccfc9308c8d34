//! File model -> typed [`Config`], with every default and validation rule in one place.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::env::{interpolate_value, Lookup};
use super::file::*;
use super::problem;
use super::*;
use crate::credentials::{AzureConfig, GcpConfig, StaticKeys, StsConfig};
use crate::token::{AuthConfig, PublicKey, TokenKey};
use crate::upstream::Endpoint;

const MIN_TOKEN_KEY_BYTES: usize = 32;

pub(super) fn from_toml(text: &str, lookup: Lookup<'_>) -> Result<Config, ConfigError> {
    let mut value: toml::Value = toml::from_str(text).map_err(|e| problem::syntax(text, &e))?;
    interpolate_value(&mut value, "", lookup)?;
    let file: FileConfig = serde_path_to_error::deserialize(value).map_err(|e| problem::shape(&e))?;
    build(file)
}

fn build(f: FileConfig) -> Result<Config, ConfigError> {
    let sts = sts(f.sts)?;
    let azure = f.azure.map(azure).transpose()?;
    let gcp = gcp(f.gcp)?;
    let destinations = crate::credentials::TokenDestinations::of(azure.as_ref(), &gcp);
    let orgs = orgs(f.orgs, azure.is_some(), &destinations)?;
    let registry = registry(f.registry)?;
    Ok(Config {
        server: server(f.server)?,
        admin: AdminConfig {
            listen: addr("admin.listen", f.admin.listen, "127.0.0.1:9090")?,
            token: f.admin.token.filter(|t| !t.is_empty()),
        },
        auth: auth(f.auth)?,
        cors: CorsConfig {
            allowed_origins: origins("cors.allowed_origins", &f.cors.allowed_origins)?,
            max_age: duration("cors.max_age", f.cors.max_age, "1h")?,
        },
        cache: edge_cache(&f.cache, registry.master_keys.is_some())?,
        cache_control: cache_control(f.cache.cache_control)?,
        sts,
        registry,
        azure,
        gcp,
        audit_path: match f.audit.path {
            Some(p) if p.is_empty() => return Err(ConfigError::at("audit.path", "must be a file path or \"-\"")),
            other => other,
        },
        orgs,
    })
}

fn endpoint(at: &str, value: Option<String>, default: &str) -> Result<Endpoint, ConfigError> {
    let value = value.unwrap_or_else(|| default.into());
    Endpoint::parse(&value).map_err(|m| ConfigError::at(at, m))
}

/// A list of endpoint URLs (`https://host[:port]`).
fn endpoints(at: &str, list: &[String]) -> Result<Vec<Endpoint>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, e)| Endpoint::parse(e).map_err(|m| ConfigError::at(format!("{at}[{i}]"), m)))
        .collect()
}

fn azure(a: AzureFile) -> Result<AzureConfig, ConfigError> {
    if a.client_id.is_empty() {
        return Err(ConfigError::at("azure.client_id", "must not be empty"));
    }
    if a.client_secret.is_empty() {
        return Err(ConfigError::at("azure.client_secret", "must not be empty"));
    }
    Ok(AzureConfig {
        client_id: a.client_id,
        client_secret: a.client_secret,
        authority: endpoint("azure.authority", a.authority, "https://login.microsoftonline.com")?,
        endpoints: endpoints("azure.endpoints", &a.endpoints)?,
    })
}

fn gcp(g: GcpFile) -> Result<GcpConfig, ConfigError> {
    let key = g
        .key_json
        .filter(|k| !k.is_empty())
        .map(|k| {
            crate::credentials::ServiceAccountKey::parse(k.expose()).map_err(|m| ConfigError::at("gcp.key_json", m))
        })
        .transpose()?;
    Ok(GcpConfig {
        key: key.map(std::sync::Arc::new),
        iam_endpoint: endpoint(
            "gcp.iam_endpoint",
            g.iam_endpoint,
            "https://iamcredentials.googleapis.com",
        )?,
        metadata: endpoint(
            "gcp.metadata_endpoint",
            g.metadata_endpoint,
            "http://metadata.google.internal",
        )?,
        endpoints: endpoints("gcp.endpoints", &g.endpoints)?,
    })
}

/// Serving threads at most: more than any machine's CPUs, fewer than would exhaust a
/// process's threads.
const MAX_THREADS: usize = 1024;

fn server(s: ServerFile) -> Result<ServerConfig, ConfigError> {
    let max_connections = s.max_connections.unwrap_or(10_000);
    if max_connections == 0 {
        return Err(ConfigError::at("server.max_connections", "must be at least 1"));
    }
    let threads = match s.threads {
        Some(0) => return Err(ConfigError::at("server.threads", "must be at least 1")),
        Some(n) if n > MAX_THREADS => {
            return Err(ConfigError::at(
                "server.threads",
                format!("must be at most {MAX_THREADS}"),
            ))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let max_upstream_requests = s.max_upstream_requests.unwrap_or(2048);
    if max_upstream_requests == 0 {
        return Err(ConfigError::at("server.max_upstream_requests", "must be at least 1"));
    }
    let streams = s.http2_max_concurrent_streams.unwrap_or(100);
    if streams == 0 {
        return Err(ConfigError::at(
            "server.http2_max_concurrent_streams",
            "must be at least 1",
        ));
    }
    Ok(ServerConfig {
        listen: addr("server.listen", s.listen, "0.0.0.0:8080")?,
        tls: s.tls.map(|t| crate::tls::TlsFiles {
            cert: t.cert.into(),
            key: t.key.into(),
        }),
        header_read_timeout: positive("server.header_read_timeout", s.header_read_timeout, "10s")?,
        idle_timeout: positive("server.idle_timeout", s.idle_timeout, "60s")?,
        client_write_timeout: positive("server.client_write_timeout", s.client_write_timeout, "60s")?,
        http2_max_concurrent_streams: streams,
        upstream_connect_timeout: duration("server.upstream_connect_timeout", s.upstream_connect_timeout, "5s")?,
        upstream_first_byte_timeout: duration(
            "server.upstream_first_byte_timeout",
            s.upstream_first_byte_timeout,
            "30s",
        )?,
        upstream_idle_timeout: duration("server.upstream_idle_timeout", s.upstream_idle_timeout, "60s")?,
        upstream_ca_file: s.upstream_ca_file.map(Into::into),
        max_connections,
        threads,
        max_upstream_requests,
        shutdown_grace: duration("server.shutdown_grace", s.shutdown_grace, "30s")?,
        trusted_proxies: s
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::at(
                            format!("server.trusted_proxies[{i}]"),
                            "must be an address or a network like 10.0.0.0/8",
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    })
}

fn auth(a: AuthFile) -> Result<AuthConfig, ConfigError> {
    let mut seen = HashSet::new();
    let (mut keys, mut public_keys) = (Vec::new(), Vec::new());
    for (i, k) in a.keys.into_iter().enumerate() {
        let at = |field: &str| format!("auth.keys[{i}].{field}");
        if k.kid.is_empty() || !seen.insert(k.kid.clone()) {
            return Err(ConfigError::at(at("kid"), "must be non-empty and unique"));
        }
        match (k.alg.as_str(), k.secret, k.public_key) {
            ("HS256", Some(secret), None) => {
                if secret.expose().len() < MIN_TOKEN_KEY_BYTES {
                    return Err(ConfigError::at(
                        at("secret"),
                        format!("must be at least {MIN_TOKEN_KEY_BYTES} bytes long"),
                    ));
                }
                keys.push(TokenKey { kid: k.kid, secret });
            }
            ("HS256", _, _) => {
                return Err(ConfigError::at(
                    at("secret"),
                    "is required for HS256, and public_key is not",
                ))
            }
            (alg, secret, public_key) => {
                let alg = crate::token::keys::public_algorithm(alg)
                    .ok_or_else(|| ConfigError::at(at("alg"), "is not supported; use HS256, EdDSA, ES256 or RS256"))?;
                if secret.is_some() {
                    return Err(ConfigError::at(
                        at("secret"),
                        "is for HS256 keys; public keys take public_key",
                    ));
                }
                let pem = public_key.ok_or_else(|| ConfigError::at(at("public_key"), "is required (PEM)"))?;
                let key = crate::token::keys::from_pem(alg, &pem).map_err(|m| ConfigError::at(at("public_key"), m))?;
                public_keys.push(PublicKey { kid: k.kid, key });
            }
        }
    }
    let jwks_url = match a.jwks_url.filter(|u| !u.is_empty()) {
        None => None,
        Some(url) => {
            Endpoint::parse_with_path(&url).map_err(|m| ConfigError::at("auth.jwks_url", m))?;
            Some(
                url.parse::<http::Uri>()
                    .map_err(|_| ConfigError::at("auth.jwks_url", "is not a URL"))?,
            )
        }
    };
    let jwks_refresh = duration("auth.jwks_refresh", a.jwks_refresh, "5m")?;
    if jwks_refresh < Duration::from_secs(1) {
        return Err(ConfigError::at("auth.jwks_refresh", "must be at least 1s"));
    }
    if keys.is_empty() && public_keys.is_empty() && jwks_url.is_none() && !a.allow_anonymous {
        return Err(ConfigError::at(
            "auth.keys",
            "at least one key or a jwks_url is required (or auth.allow_anonymous = true for local experiments)",
        ));
    }
    let max_ttl = duration("auth.max_ttl", a.max_ttl, "24h")?;
    if max_ttl.is_zero() {
        return Err(ConfigError::at("auth.max_ttl", "must be longer than zero"));
    }
    let leeway = duration("auth.leeway", a.leeway, "30s")?;
    if leeway > Duration::from_secs(300) {
        return Err(ConfigError::at(
            "auth.leeway",
            "must be at most 5m: it is how long a token stays good after it expired",
        ));
    }
    Ok(AuthConfig {
        keys,
        public_keys,
        jwks_url,
        jwks_refresh,
        max_ttl,
        leeway,
        require_sub: a.require_sub,
        allow_anonymous: a.allow_anonymous,
    })
}

/// The default `Cache-Control`. Assets are private to their org: `public` and `s-maxage`
/// (which let shared caches and CDNs keep them) are refused, and `private` is added when
/// missing, as for every `Cache-Control` a bucket sends.
fn cache_control(value: Option<String>) -> Result<http::HeaderValue, ConfigError> {
    let value = value.unwrap_or_else(|| "private, max-age=300".into());
    let at = "cache.cache_control";
    http::HeaderValue::from_str(&value).map_err(|_| ConfigError::at(at, "is not a valid header value"))?;
    let lower = value.to_ascii_lowercase();
    if lower.contains("public") || lower.contains("s-maxage") {
        return Err(ConfigError::at(
            at,
            "must not allow shared caches (`public`, `s-maxage`): assets are private; use e.g. \"private, max-age=300\"",
        ));
    }
    http::HeaderValue::from_str(&crate::upstream::response::private_cache_control(&value))
        .map_err(|_| ConfigError::at(at, "is not a valid header value"))
}

fn sts(s: StsFile) -> Result<StsConfig, ConfigError> {
    let session_duration = duration("sts.session_duration", s.session_duration, "1h")?;
    let refresh_margin = duration("sts.refresh_margin", s.refresh_margin, "5m")?;
    if !(Duration::from_secs(900)..=Duration::from_secs(12 * 3600)).contains(&session_duration) {
        return Err(ConfigError::at(
            "sts.session_duration",
            "must be between 15m and 12h (the limits of AssumeRole)",
        ));
    }
    if session_duration <= refresh_margin {
        return Err(ConfigError::at(
            "sts.refresh_margin",
            "must be shorter than sts.session_duration",
        ));
    }
    let region = s.region.unwrap_or_else(|| "us-east-1".into());
    crate::storage::rules::check_region(&region).map_err(|m| ConfigError::at("sts.region", m))?;
    Ok(StsConfig {
        region,
        endpoint: s
            .endpoint
            .map(|e| Endpoint::parse(&e).map_err(|m| ConfigError::at("sts.endpoint", m)))
            .transpose()?,
        session_duration,
        refresh_margin,
        failure_cache: duration("sts.failure_cache", s.failure_cache, "10s")?,
        credentials: s
            .credentials
            .map(|c| static_keys("sts.credentials", c.access_key_id, c.secret_access_key, c.session_token))
            .transpose()?,
    })
}

fn registry(r: RegistryFile) -> Result<RegistryConfig, ConfigError> {
    let key = |at: String, k: &Secret| crate::sealed::MasterKey::parse(k).map_err(|m| ConfigError::at(at, m));
    let previous = r
        .previous_master_keys
        .iter()
        .enumerate()
        .map(|(i, k)| key(format!("registry.previous_master_keys[{i}]"), k))
        .collect::<Result<Vec<_>, _>>()?;
    let master_keys = match r.master_key.filter(|k| !k.is_empty()) {
        Some(current) => Some(std::sync::Arc::new(crate::sealed::Keys {
            current: key("registry.master_key".into(), &current)?,
            previous,
        })),
        None if !previous.is_empty() => {
            return Err(ConfigError::at(
                "registry.previous_master_keys",
                "needs registry.master_key: previous keys only open, the current one seals",
            ))
        }
        None => None,
    };
    let url = r
        .url
        .filter(|u| !u.is_empty())
        .map(|u| DatabaseUrl::parse(u.expose()).map_err(|m| ConfigError::at("registry.url", m)))
        .transpose()?;
    let allow_private_endpoints = crate::upstream::guard::EndpointPolicy::parse(&r.allow_private_endpoints)
        .map_err(|(i, m)| ConfigError::at(format!("registry.allow_private_endpoints[{i}]"), m))?;
    Ok(RegistryConfig {
        data_dir: r.data_dir.unwrap_or_else(|| "data".into()).into(),
        url,
        resync_interval: positive("registry.resync_interval", r.resync_interval, "30s")?,
        master_keys,
        allow_private_endpoints,
    })
}

fn orgs(
    files: Vec<OrgFile>,
    entra_app: bool,
    destinations: &crate::credentials::TokenDestinations,
) -> Result<Vec<Org>, ConfigError> {
    let mut seen = HashSet::new();
    let mut orgs = Vec::with_capacity(files.len());
    for (i, o) in files.into_iter().enumerate() {
        let at = format!("orgs[{i}]");
        crate::storage::rules::check_id(&o.id).map_err(|m| ConfigError::at(format!("{at}.id"), m))?;
        if !seen.insert(o.id.clone()) {
            return Err(ConfigError::at(format!("{at}.id"), "this org is defined twice"));
        }
        let mut storage_ids = HashSet::new();
        let mut storages = Vec::with_capacity(o.storages.len());
        for (j, s) in o.storages.iter().enumerate() {
            let storage = storage(&format!("{at}.storages[{j}]"), s, entra_app, destinations)?;
            if !storage_ids.insert(storage.id.clone()) {
                return Err(ConfigError::at(
                    format!("{at}.storages[{j}].id"),
                    "this storage id is defined twice in the org",
                ));
            }
            storages.push(storage);
        }
        let cors_origins = origins(&format!("{at}.cors_origins"), &o.cors_origins)?;
        for (name, limit) in [("limits", &o.limits), ("labeler_limits", &o.labeler_limits)] {
            if let Some((key, problem)) = limit.as_ref().and_then(|l| l.problems().into_iter().next()) {
                return Err(ConfigError::at(format!("{at}.{name}.{key}"), problem));
            }
        }
        let limits = (o.limits.is_some() || o.labeler_limits.is_some()).then_some(crate::limits::OrgLimits {
            limits: o.limits,
            labeler_limits: o.labeler_limits,
        });
        orgs.push(Org {
            id: o.id,
            cors_origins,
            storages,
            limits,
        });
    }
    Ok(orgs)
}

/// A storage table through the one storage builder; its problems become config errors
/// named by key (the first, ordered by key).
fn storage(
    at: &str,
    table: &serde_json::Value,
    entra_app: bool,
    destinations: &crate::credentials::TokenDestinations,
) -> Result<crate::storage::Storage, ConfigError> {
    let cx = crate::storage::Context {
        style: crate::storage::Style::Config,
        org_external_id: None,
        entra_app,
        destinations,
    };
    crate::storage::build(table, &cx).map_err(|fields| {
        let (field, message) = fields.into_iter().next().expect("a refusal names a field");
        ConfigError::at(format!("{at}.{field}"), message)
    })
}

fn static_keys(at: &str, id: String, secret: Secret, token: Option<Secret>) -> Result<StaticKeys, ConfigError> {
    if id.is_empty() {
        return Err(ConfigError::at(format!("{at}.access_key_id"), "must not be empty"));
    }
    if secret.is_empty() {
        return Err(ConfigError::at(format!("{at}.secret_access_key"), "must not be empty"));
    }
    Ok(StaticKeys {
        access_key_id: id,
        secret_access_key: secret,
        session_token: token.filter(|t| !t.is_empty()),
    })
}

fn origins(at: &str, list: &[String]) -> Result<Vec<OriginPattern>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, o)| OriginPattern::parse(o).map_err(|m| ConfigError::at(format!("{at}[{i}]"), m)))
        .collect()
}

fn addr(at: &str, value: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.into());
    value
        .parse()
        .map_err(|_| ConfigError::at(at, "is not an address like 0.0.0.0:8080"))
}

/// A duration that must be longer than zero (a zero timeout would close every connection).
fn positive(at: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let d = duration(at, value, default)?;
    if d.is_zero() {
        return Err(ConfigError::at(at, "must be longer than zero"));
    }
    Ok(d)
}

/// A byte size such as `"64MiB"` (README, "Edge cache").
fn size(at: &str, value: Option<&str>, default: &str) -> Result<u64, ConfigError> {
    let text = value.unwrap_or(default);
    crate::cache::settings::parse_size(text).ok_or_else(|| {
        ConfigError::at(
            at,
            format!("`{text}` is not a size such as \"64MiB\", \"1GiB\" or \"0\""),
        )
    })
}

/// `[cache]`: on with a memory tier of 64 MiB unless `memory = "0"`, and a disk tier when
/// `disk` is set, which needs the master key (README, "Edge cache").
fn edge_cache(c: &CacheFile, has_master_key: bool) -> Result<crate::cache::CacheSettings, ConfigError> {
    use crate::cache::Freshness;
    let memory = size("cache.memory", c.memory.as_deref(), "64MiB")?;
    let slice = size("cache.slice", c.slice.as_deref(), "1MiB")?;
    if !(64 << 10..=64 << 20).contains(&slice) {
        return Err(ConfigError::at("cache.slice", "must be between 64KiB and 64MiB"));
    }
    let max_object_size = size("cache.max_object_size", c.max_object_size.as_deref(), "5GiB")?;
    let freshness = match c.freshness.as_deref() {
        None | Some("revalidate") => Freshness::Revalidate,
        Some(other) => {
            let d = duration("cache.freshness", Some(other.to_string()), "0s").map_err(|_| {
                ConfigError::at(
                    "cache.freshness",
                    "must be \"revalidate\" or a duration such as \"60s\"",
                )
            })?;
            if d.is_zero() {
                Freshness::Revalidate
            } else {
                Freshness::For(d)
            }
        }
    };
    let disk = match &c.disk {
        None => None,
        Some(d) => {
            if memory == 0 {
                return Err(ConfigError::at(
                    "cache.disk",
                    "needs the memory tier: memory = \"0\" turns the whole cache off",
                ));
            }
            if !has_master_key {
                return Err(ConfigError::at(
                    "cache.disk",
                    "needs [registry].master_key: entries on disk are encrypted under a key derived from it",
                ));
            }
            if d.path.as_os_str().is_empty() {
                return Err(ConfigError::at("cache.disk.path", "must be a directory"));
            }
            let size = size("cache.disk.size", Some(&d.size), "0")?;
            if size < 4 * slice {
                return Err(ConfigError::at("cache.disk.size", "must hold at least four slices"));
            }
            Some(crate::cache::DiskSettings {
                path: d.path.clone(),
                size,
            })
        }
    };
    Ok(crate::cache::CacheSettings {
        memory,
        slice,
        max_object_size,
        freshness,
        disk,
    })
}

fn duration(at: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or_else(|| default.into());
    humantime::parse_duration(&value)
        .map_err(|_| ConfigError::at(at, "is not a duration like \"900ms\", \"30s\", \"15m\" or \"1h\""))
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

//! The `assetgate` command line: its commands and flags (clap), and what each runs. The
//! binary (`src/main.rs`) only sets up the allocator, logging and the runtime around
//! [`run`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use crate::{token, Config, Gateway};

/// The command line.
#[derive(Parser)]
#[command(
    name = "assetgate",
    version,
    about = "Object-access gateway for data-labeling platforms"
)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ConfigArg),
    /// Run a self-contained demo: embedded S3 server, sample assets, gateway in front.
    #[cfg(feature = "demo")]
    Demo {
        /// Gateway listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Listen address of the demo editor page (another origin than the gateway).
        #[arg(long, default_value = "127.0.0.1:8081")]
        editor_listen: std::net::SocketAddr,
    },
    /// Validate the configuration and print a summary.
    Check(ConfigArg),
    /// Print a labeler token signed with the first configured key.
    Token {
        #[arg(long)]
        org: String,
        #[arg(long)]
        storage: Option<String>,
        /// Limit the token to objects whose `{bucket}/{key}` starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Who the labeler is (the `sub` claim): named in the audit trail, counted by
        /// `labeler_limits`.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime, e.g. 15m, 1h.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Exit 0 if URL answers 2xx (health checks in images without curl).
    Probe {
        /// e.g. http://127.0.0.1:9090/readyz
        url: String,
    },
    /// The storage registry: move an embedded store into the shared one, rotate the master key.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Check that a storage works: credentials, role, bucket regions, listing, reading.
    Validate {
        #[arg(long)]
        org: String,
        #[arg(long)]
        storage: String,
        /// An object to read, as bucket/key [default: the first one listed].
        #[arg(long)]
        object: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Copy the storages and external IDs of an embedded store into [registry].url (idempotent).
    Migrate {
        /// The embedded store's directory (a former [registry].data_dir).
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Re-encrypt every stored secret and record under [registry].master_key (after moving
    /// the old key to previous_master_keys); exit 1 if a record could not be resealed.
    Reseal {
        /// Also authenticate records written before records were authenticated, as they are
        /// (only when the database holds what the gateway wrote).
        #[arg(long)]
        authenticate_legacy: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(clap::Args)]
pub struct ConfigArg {
    /// Configuration file [default: $ASSETGATE_CONFIG, else config/assetgate.toml]
    #[arg(long, env = "ASSETGATE_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("config/assetgate.toml"))
    }

    fn load(&self) -> anyhow::Result<Config> {
        let path = self.path();
        Config::load(&path).with_context(|| format!("invalid configuration {}", path.display()))
    }
}

/// Runs `command` to its end.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(arg) => crate::service::serve(&arg.path()).await?,
        #[cfg(feature = "demo")]
        Command::Demo { listen, editor_listen } => {
            let demo = crate::demo::Demo::start(listen, editor_listen)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", demo.banner());
            demo.serve(crate::service::terminate()).await;
        }
        Command::Check(arg) => check(&arg.load()?),
        Command::Token {
            org,
            storage,
            prefix,
            sub,
            ttl,
            config,
        } => mint(
            &config.load()?,
            &org,
            storage.as_deref(),
            prefix.as_deref(),
            sub.as_deref(),
            ttl,
        )?,
        Command::Probe { url } => {
            let status = crate::service::probe(&url).await.map_err(|e| anyhow::anyhow!(e))?;
            if !status.is_success() {
                bail!("{url} answered {status}");
            }
        }
        Command::Validate {
            org,
            storage,
            object,
            config,
        } => validate(&config.load()?, &org, &storage, object.as_deref()).await?,
        Command::Registry { command } => registry(command).await?,
    }
    Ok(())
}

/// `assetgate check`: what the valid config describes.
fn check(config: &Config) {
    let storages: usize = config.orgs.iter().map(|o| o.storages.len()).sum();
    println!("configuration ok: {} orgs, {storages} storages", config.orgs.len());
    println!("data plane listens on {}", config.server.listen);
    match &config.registry.url {
        Some(url) => println!("registry: shared, {}", url.describe()),
        None => println!("registry: embedded in {}", config.registry.data_dir.display()),
    }
    for org in &config.orgs {
        let ids: Vec<&str> = org.storages.iter().map(|s| s.id.as_str()).collect();
        println!("  org {}: {}", org.id, ids.join(", "));
    }
}

/// `assetgate token`: a labeler token under the same bounds as the admin API's.
fn mint(
    config: &Config,
    org: &str,
    storage: Option<&str>,
    prefix: Option<&str>,
    sub: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<()> {
    let Some(key) = config.auth.keys.first() else {
        bail!("auth.keys is empty: there is no key to sign with")
    };
    if let Some(problem) = token::ttl_problem(ttl, config.auth.max_ttl) {
        bail!("--ttl {problem}");
    }
    if let Some(problem) = token::sub_problem(sub, config.auth.require_sub) {
        bail!("--sub {problem}");
    }
    let claims = token::claims(org, storage, prefix, sub, ttl);
    println!("{}", token::mint_claims(key, &claims));
    Ok(())
}

/// `assetgate validate`: the admin API's validation, printed one check per line.
async fn validate(config: &Config, org: &str, storage: &str, object: Option<&str>) -> anyhow::Result<()> {
    let gateway = Gateway::open(config).await?;
    if tokio::time::timeout(Duration::from_secs(15), gateway.storages.loaded())
        .await
        .is_err()
    {
        bail!("the shared registry could not be loaded");
    }
    let Some(entry) = gateway.storages.org(org).and_then(|o| o.storage(storage).cloned()) else {
        bail!("no storage `{storage}` in org `{org}`");
    };
    let report = crate::admin::validate::run(&gateway, org, &entry, object).await;
    for check in &report.checks {
        println!(
            "{:<5} {:<16} {}",
            format!("{:?}", check.status).to_lowercase(),
            check.name,
            check.message
        );
    }
    if !report.valid {
        bail!("storage {org}/{storage} failed validation");
    }
    println!("storage {org}/{storage} is valid");
    Ok(())
}

/// `assetgate registry migrate|reseal`: the report, and failure when a row was left as it was.
async fn registry(command: RegistryCommand) -> anyhow::Result<()> {
    let report = match command {
        RegistryCommand::Migrate { from, config } => crate::registry::tools::migrate(&config.load()?, &from).await?,
        RegistryCommand::Reseal {
            authenticate_legacy,
            config,
        } => crate::registry::tools::reseal(&config.load()?, authenticate_legacy).await?,
    };
    println!("{}", report.text());
    if !report.failed.is_empty() {
        bail!(
            "{} stored storages were left as they were (listed above)",
            report.failed.len()
        );
    }
    Ok(())
}

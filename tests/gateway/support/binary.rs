//! The real `assetgate serve` binary with a config file of the test's own, for black-box
//! tests: real sockets, real signals, its log in a file.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{config, token};

/// The admin token of every served binary.
pub const ADMIN_TOKEN: &str = "admin-token-of-the-served-binary-0123";

pub struct Served {
    pub child: Child,
    /// The data plane.
    pub data: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
    /// Standard error (the logs).
    pub log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Served {
    /// `assetgate serve` with the test config ([`config`]) with `server` lines, plus `rest`
    /// (more sections, orgs), started in `dir`.
    pub fn start(dir: &Path, server: &str, rest: &str) -> Served {
        Served::start_with_env(dir, server, rest, &[])
    }

    /// Like [`Served::start`] with extra environment variables (`RUST_LOG`, ...).
    pub fn start_with_env(dir: &Path, server: &str, rest: &str, env: &[(&str, &str)]) -> Served {
        Served::start_with_args(dir, server, rest, env, &[])
    }

    /// Like [`Served::start_with_env`] with command-line options before `serve`.
    pub fn start_with_args(dir: &Path, server: &str, rest: &str, env: &[(&str, &str)], args: &[&str]) -> Served {
        // A free port is only free until someone takes it: another test's process may bind
        // it between our probe and the gateway's start. Then the gateway says so and exits,
        // and it starts again on other ports.
        for _ in 0..3 {
            match Served::try_start(dir, server, rest, env, args) {
                Ok(served) => return served,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("the gateway did not start:\n{log}"),
            }
        }
        panic!("the gateway found no free ports in three tries");
    }

    fn try_start(dir: &Path, server: &str, rest: &str, env: &[(&str, &str)], args: &[&str]) -> Result<Served, String> {
        let (data, admin) = (free_port(), free_port());
        let config = dir.join("gateway.toml");
        std::fs::write(&config, Served::config_text(data, admin, server, rest)).unwrap();
        let log = dir.join("gateway.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_assetgate"));
        command
            .args(args)
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let mut served = Served {
            child,
            data: SocketAddr::from(([127, 0, 0, 1], data)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            config,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(served.admin).is_err() || TcpStream::connect(served.data).is_err() {
            if Instant::now() >= deadline || served.child.try_wait().ok().flatten().is_some() {
                return Err(served.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(served)
    }

    /// The config file's text: listen addresses, `server` lines, the admin token, then `rest`.
    pub fn config_text(data: u16, admin: u16, server: &str, rest: &str) -> String {
        let base = config(server, "").replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{data}\""));
        format!("{base}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{ADMIN_TOKEN}\"\n\n{rest}")
    }

    pub fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn signal(&self, name: &str) {
        assert!(Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }

    /// The object URL of `key` in bucket `bucket` of storage `acme/main`, with a token.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        format!(
            "http://{}/v1/orgs/acme/storages/main/objects/{bucket}/{key}?token={}",
            self.data,
            token("acme")
        )
    }

    /// What the process wrote to standard error so far.
    pub fn logs(&self) -> String {
        // The gateway writes its log in batches, every 50 ms.
        std::thread::sleep(Duration::from_millis(150));
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The Prometheus text of the admin listener.
    pub async fn metrics(&self) -> String {
        let reply = super::client::get(&format!("http://{}/metrics", self.admin), &[]).await;
        String::from_utf8(reply.body.to_vec()).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the metric line that starts with `series` (name and labels), 0 if absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

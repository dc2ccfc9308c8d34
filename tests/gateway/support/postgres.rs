//! PostgreSQL (Debian's server binaries) on 127.0.0.1 for the shared-registry tests: one
//! server per test process with a database per test, or a server of a test's own when the
//! test stops and restarts it. As root (CI), the server runs as `nobody`, since PostgreSQL
//! refuses to run as root. Password authentication over TCP, so the URL carries a secret.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::process::{free_ports, scratch_dir, Background};

/// The superuser's password: a secret that must never appear in a log.
pub const PASSWORD: &str = "pg-password-never-logged-4711";

/// The directory of Debian's server binaries (`$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`).
#[allow(
    clippy::disallowed_methods,
    reason = "the test harness finds its servers through the environment"
)]
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return dir.into();
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries in /usr/lib/postgresql (apt-get install postgresql; see .ci/run)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no /usr/lib/postgresql/*/bin/postgres")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server binary, as `nobody` when we are root.
fn command(program: &str) -> Command {
    let path = bin_dir().join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

/// Makes `dir` the server user's.
fn own(dir: &Path) {
    if is_root() {
        assert!(Command::new("chown")
            .args(["-R", "nobody"])
            .arg(dir)
            .status()
            .unwrap()
            .success());
    }
}

/// One PostgreSQL server.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    /// `-c name=value` settings of every start.
    settings: Vec<String>,
    process: Mutex<Option<Background>>,
}

impl Postgres {
    /// A fresh server of the caller's own (`name` tells its files apart).
    pub fn start(name: &str) -> Postgres {
        Postgres::start_with(name, |_| Vec::new())
    }

    /// A server that also serves TLS with a certificate for 127.0.0.1; returns it with the
    /// certificate (PEM), which clients must trust.
    pub fn start_tls(name: &str) -> (Postgres, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let pem = cert.cert.pem();
        let pg = Postgres::start_with(name, |dir| {
            std::fs::write(dir.join("server.crt"), &pem).unwrap();
            std::fs::write(dir.join("server.key"), cert.signing_key.serialize_pem()).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            vec![
                "ssl=on".into(),
                format!("ssl_cert_file={}", dir.join("server.crt").display()),
                format!("ssl_key_file={}", dir.join("server.key").display()),
            ]
        });
        (pg, cert.cert.pem())
    }

    /// A fresh server; `settings` writes files into its directory and names `-c` settings.
    fn start_with(name: &str, settings: impl FnOnce(&Path) -> Vec<String>) -> Postgres {
        let dir = scratch_dir(&format!("pg-{name}"));
        let data = dir.join("data");
        let sockets = dir.join("sockets");
        std::fs::create_dir_all(&sockets).unwrap();
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        let settings = settings(&dir);
        own(&dir);
        let out = command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
            ])
            .arg(dir.join("pw"))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = Postgres {
            port: free_ports(1)[0],
            dir,
            settings,
            process: Mutex::new(None),
        };
        pg.resume();
        pg
    }

    /// Starts the server (again) and waits until it answers.
    pub fn resume(&self) {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let mut process = self.process.lock().unwrap();
        let log = self
            .dir
            .join(format!("postgres-{}.log", STARTS.fetch_add(1, Ordering::SeqCst)));
        let bin = bin_dir().join("postgres");
        let mut args = vec![bin.display().to_string()];
        args.extend(
            [
                "-D",
                &self.dir.join("data").display().to_string(),
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-k",
                &self.dir.join("sockets").display().to_string(),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]
            .map(String::from),
        );
        for setting in &self.settings {
            args.extend(["-c".to_string(), setting.clone()]);
        }
        let (program, args) = if is_root() {
            let mut full = vec!["-u".to_string(), "nobody".into(), "--".into()];
            full.extend(args);
            ("runuser".to_string(), full)
        } else {
            (args.remove(0), args)
        };
        // When the test process ends, the wrapper's kill reaches runuser, not necessarily the
        // server: stop the server itself too (its pid is in its data directory).
        let d = self.dir.display();
        let cleanup = format!("kill -INT $(head -n 1 '{d}/data/postmaster.pid' 2>/dev/null) 2>/dev/null; true");
        let mut bg = Background::spawn(&program, &args, &log, &cleanup);
        super::process::wait_until(&mut bg, "PostgreSQL", Duration::from_secs(30), || self.answers());
        *process = Some(bg);
    }

    /// Fast shutdown (SIGINT): clients are disconnected at once.
    pub fn stop(&self) {
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.dir.join("data/postmaster.pid").exists() {
            assert!(Instant::now() < deadline, "PostgreSQL did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process.lock().unwrap().take();
    }

    fn answers(&self) -> bool {
        command("pg_isready")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Creates a database of its own for a test; returns its URL (with the password).
    pub fn database(&self, name: &str) -> String {
        let out = command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_dump` of a database, as text.
    pub fn dump(&self, database: &str) -> String {
        let out = command("pg_dump")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                database,
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server shared by this test process's tests.
pub fn postgres() -> &'static Postgres {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    SHARED.get_or_init(|| Postgres::start("shared"))
}

/// A database of its own on the shared server: (name, URL).
pub fn database() -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("registry_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let url = postgres().database(&name);
    (name, url)
}

/// A connection of the test's own to the database at `url`.
pub async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

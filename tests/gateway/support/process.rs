//! Background server processes for tests: started through `sh` so that they die with the
//! test process (the shell waits on its stdin, which closes when we exit), and with every
//! port chosen free on 127.0.0.1 so parallel runs do not collide.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process that is stopped when the test process exits.
pub struct Background {
    child: Child,
    pub log: std::path::PathBuf,
}

impl Background {
    /// Runs `program args...` in the background, logging to `log`.
    pub fn spawn(program: &str, args: &[String], log: &Path, cleanup: &str) -> Background {
        let script = format!("\"$@\" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid; {cleanup}");
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Background {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Fails the test with the log's tail when the process has already exited.
    pub fn check_alive(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{what} exited ({status}) during start; its log:\n{}", self.log_tail());
        }
    }

    /// The last 30 lines of the process's log.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// `n` distinct free TCP ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Waits until `ready()` is true, checking the process is still alive; panics after `limit`.
pub fn wait_until(bg: &mut Background, what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        bg.check_alive(what);
        if start.elapsed() > limit {
            panic!("{what} was not ready after {limit:?}; its log:\n{}", bg.log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A program from `$VAR`, else its name on PATH.
#[allow(
    clippy::disallowed_methods,
    reason = "the test harness finds its servers through the environment"
)]
pub fn program(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// A fresh directory for one server of this test process.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("assetgate-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

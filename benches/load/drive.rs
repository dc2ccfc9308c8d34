//! Load generation (wrk when installed, else a bounded built-in hyper loop) and process
//! accounting from /proc (CPU seconds, peak RSS).

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Serialize;

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Run {
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Connections whose TLS handshake resumed a session, where the driver can tell.
    pub resumed: Option<u64>,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
}

/// Runs `connections` keep-alive connections against `url` for `duration`, each request
/// with `headers`.
pub async fn load(url: &str, headers: &[(String, String)], connections: usize, duration: Duration, size: u64) -> Run {
    match wrk(url, headers, connections, duration, size) {
        Some(run) => run,
        None => builtin(url, headers, connections, duration).await,
    }
}

fn wrk(url: &str, headers: &[(String, String)], connections: usize, duration: Duration, size: u64) -> Option<Run> {
    let threads = connections.min(2).to_string();
    let mut command = Command::new("wrk");
    command.args([
        "-t",
        &threads,
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{}s", duration.as_secs()),
        "--latency",
        // wrk's default of 2 s would count a 64 MiB download over 64 connections as timed
        // out and leave its latencies empty.
        "--timeout",
        "60s",
    ]);
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = command.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let seconds: f64 = text
        .lines()
        .find(|l| l.contains("requests in"))?
        .split("requests in")
        .nth(1)?
        .split(',')
        .next()?
        .trim()
        .trim_end_matches('s')
        .parse()
        .ok()?;
    let errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Run {
        requests,
        errors,
        bytes: requests.saturating_sub(errors) * size,
        seconds,
        p50_ms: field("50%").map(|v| millis(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(|v| millis(&v)).unwrap_or(f64::NAN),
        resumed: None,
    })
}

/// One h2load run (Debian's nghttp2-client) with `args` (`--h1 -c 16 -D 5`, `-c 4 -m 16
/// -D 5`, ...) against an https `url`; `None` when h2load is not installed or printed no
/// summary.
pub fn h2load(url: &str, headers: &[(String, String)], args: &[String], size: u64) -> Option<Run> {
    let mut command = Command::new("h2load");
    command.args(args);
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = command.arg(url).output().ok()?;
    parse_h2load(&String::from_utf8_lossy(&out.stdout), size)
}

/// h2load's summary: `finished in 5.00s, 1234.50 req/s, 5.10MB/s`, `requests: 100 total,
/// 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout` and `status codes:
/// 100 2xx, 0 3xx, 0 4xx, 0 5xx`. Requests are those done; errors those done without a 2xx.
fn parse_h2load(text: &str, size: u64) -> Option<Run> {
    let line = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix));
    let count = |l: &str, name: &str| {
        l.split(", ")
            .find_map(|part| part.strip_suffix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let seconds = millis(line("finished in ")?.split(',').next()?.trim()) / 1000.0;
    if !seconds.is_finite() {
        return None;
    }
    let done = count(line("requests: ")?, " done")?;
    let ok = count(line("status codes: ")?, " 2xx")?;
    Some(Run {
        requests: done,
        errors: done.saturating_sub(ok),
        bytes: ok * size,
        seconds,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        resumed: None,
    })
}

/// wrk's `1.23ms`, `456.00us`, `1.10s`.
fn millis(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

async fn builtin(url: &str, headers: &[(String, String)], connections: usize, duration: Duration) -> Run {
    let uri: http::Uri = url.parse().unwrap();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (uri, headers) = (uri.clone(), headers.to_vec());
        tasks.spawn(async move {
            let (mut run, mut latencies) = (Run::default(), Vec::new());
            let authority = uri.authority().unwrap().to_string();
            let Ok(stream) = tokio::net::TcpStream::connect(&authority).await else {
                return (run, latencies);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
                return (run, latencies);
            };
            tokio::spawn(conn);
            let path = uri.path_and_query().unwrap().to_string();
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut request = http::Request::get(path.as_str()).header("host", authority.as_str());
                for (name, value) in &headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let request = request.body(Empty::<Bytes>::new()).unwrap();
                let Ok(response) = sender.send_request(request).await else {
                    break;
                };
                let ok = response.status().is_success();
                let mut body = response.into_body();
                while let Some(Ok(frame)) = body.frame().await {
                    run.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                run.requests += 1;
                run.errors += u64::from(!ok);
                latencies.push(t.elapsed().as_micros() as u32);
            }
            (run, latencies)
        });
    }
    let mut total = Run::default();
    let mut latencies = Vec::new();
    while let Some(Ok((run, l))) = tasks.join_next().await {
        total.requests += run.requests;
        total.errors += run.errors;
        total.bytes += run.bytes;
        latencies.extend(l);
    }
    total.seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |v| *v as f64 / 1000.0)
    };
    total.p50_ms = pct(0.50);
    total.p99_ms = pct(0.99);
    total
}

/// What processes have used so far, together.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    /// CPU seconds, user + system, of every thread of the processes (`/proc/PID/stat`).
    pub cpu_seconds: f64,
    /// Context switches of all their threads, voluntary (a thread waited: for a socket, a
    /// lock, a wakeup) and not (the scheduler preempted it).
    pub context_switches: u64,
    /// The whole machine's CPU time so far, and the part of it the hypervisor gave to
    /// others (steal), in clock ticks (`/proc/stat`): how much of a run this host lost.
    pub machine_ticks: u64,
    pub steal_ticks: u64,
}

impl Used {
    /// The share of the machine's CPU time the hypervisor took over this interval.
    pub fn steal(&self) -> f64 {
        self.steal_ticks as f64 / self.machine_ticks.max(1) as f64
    }
}

impl std::ops::Sub for Used {
    type Output = Used;
    fn sub(self, earlier: Used) -> Used {
        Used {
            cpu_seconds: self.cpu_seconds - earlier.cpu_seconds,
            context_switches: self.context_switches.saturating_sub(earlier.context_switches),
            machine_ticks: self.machine_ticks.saturating_sub(earlier.machine_ticks),
            steal_ticks: self.steal_ticks.saturating_sub(earlier.steal_ticks),
        }
    }
}

/// What `pids` have used so far.
pub fn used(pids: &[u32]) -> Used {
    let (machine_ticks, steal_ticks) = machine_ticks();
    Used {
        cpu_seconds: pids.iter().map(|&pid| cpu_seconds(pid)).sum(),
        context_switches: pids.iter().map(|&pid| context_switches(pid)).sum(),
        machine_ticks,
        steal_ticks,
    }
}

/// The machine's CPU time so far and its steal part, in clock ticks (the `cpu` line of
/// `/proc/stat`: user nice system idle iowait irq softirq steal ...; guest time is already
/// in user).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    (fields.iter().sum(), fields.get(7).copied().unwrap_or(0))
}

/// Context switches of every thread of a process so far.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Peak resident memory in MiB since the last [`reset_peak`].
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// Resident memory in MiB now.
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak RSS counter (Linux: `5` into clear_refs).
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

#[cfg(test)]
mod tests {
    #[test]
    fn h2load_summary() {
        let text = "starting benchmark...\n\nfinished in 5.00s, 8123.40 req/s, 32.56MB/s\nrequests: 40617 total, 40633 started, 40617 done, 40600 succeeded, 17 failed, 0 errored, 0 timeout\nstatus codes: 40600 2xx, 0 3xx, 17 4xx, 0 5xx\n";
        let run = super::parse_h2load(text, 4096).unwrap();
        assert_eq!((run.requests, run.errors, run.bytes), (40617, 17, 40600 * 4096));
        assert_eq!(run.seconds, 5.0);
        assert!(super::parse_h2load("h2load: command not found", 1).is_none());
        let short = text.replace("5.00s", "52.50ms");
        assert_eq!(super::parse_h2load(&short, 4096).unwrap().seconds, 0.0525);
    }

    #[test]
    fn wrk_units() {
        assert_eq!(super::millis("1.50ms"), 1.5);
        assert_eq!(super::millis("250.00us"), 0.25);
        assert_eq!(super::millis("1.00s"), 1000.0);
    }
}

//! The report: a markdown table with gateway/direct ratios on stdout, JSON and an SVG chart
//! in `target/bench-report/`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::drive::Run;
use crate::tls::Per;

/// One load run against one target, with the CPU its proxy used meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: Run,
    pub cpu_seconds: f64,
    pub context_switches: u64,
    /// The share of the machine's CPU time the hypervisor took during the run.
    pub steal: f64,
}

impl Sample {
    pub fn new(run: Run, used: crate::drive::Used) -> Sample {
        Sample {
            run,
            cpu_seconds: used.cpu_seconds,
            context_switches: used.context_switches,
            steal: used.steal(),
        }
    }
    pub fn switches_per_request(&self) -> f64 {
        self.context_switches as f64 / self.run.requests.max(1) as f64
    }
    pub fn cpu_per_10k_requests(&self) -> f64 {
        self.cpu_seconds / self.run.requests.max(1) as f64 * 10_000.0
    }
    pub fn cpu_per_gib(&self) -> f64 {
        self.cpu_seconds / (self.run.bytes.max(1) as f64 / (1u64 << 30) as f64)
    }
}

/// One round of a cell: direct, then plain nginx, then the gateway, back to back.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub direct: Run,
    pub nginx: Option<Sample>,
    pub gateway: Sample,
    pub gateway_peak_rss_mib: f64,
}

/// One cell of the matrix: an object size at a connection count, in every round.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub size: &'static str,
    pub connections: usize,
    pub rounds: Vec<Round>,
}

/// The median of a cell's rounds, with their minimum and maximum.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of the finite `values`; `None` without any.
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[values.len() - 1],
        })
    }

    /// `median (min–max)` over several rounds, the median alone over one.
    pub fn text(spread: Option<Spread>, rounds: usize, digits: usize) -> String {
        match spread {
            Some(s) if rounds > 1 => format!("{:.*} ({:.*}–{:.*})", digits, s.median, digits, s.min, digits, s.max),
            Some(s) => format!("{:.*}", digits, s.median),
            None => "–".into(),
        }
    }
}

impl Cell {
    pub fn spread(&self, of: impl Fn(&Round) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(of))
    }

    /// `median (min–max)` of a ratio, or `–`.
    fn ratio(&self, of: impl Fn(&Round) -> Option<f64>) -> String {
        Spread::text(self.spread(of), self.rounds.len(), 2)
    }

    fn median(&self, of: impl Fn(&Round) -> Option<f64>, digits: usize) -> String {
        self.spread(of)
            .map_or("–".into(), |s| format!("{:.*}", digits, s.median))
    }
}

/// One round of a TLS case: nginx, then the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct TlsRound {
    pub nginx: Option<Sample>,
    pub gateway: Sample,
}

/// A TLS case in every round.
#[derive(Debug, Clone, Serialize)]
pub struct TlsCell {
    pub case: &'static str,
    pub per: Per,
    pub rounds: Vec<TlsRound>,
}

impl TlsCell {
    fn text(&self, of: impl Fn(&TlsRound) -> Option<f64>, digits: usize) -> String {
        Spread::text(Spread::of(self.rounds.iter().filter_map(of)), self.rounds.len(), digits)
    }

    fn median(&self, of: impl Fn(&TlsRound) -> Option<f64>, digits: usize) -> String {
        Spread::text(Spread::of(self.rounds.iter().filter_map(of)), 1, digits)
    }

    /// The share of handshakes that resumed a session, over every round, where the driver
    /// counted them: ` (resumed: nginx 100 %, gateway 100 %)`, else nothing.
    fn resumed(&self) -> String {
        let share = |runs: Vec<&Run>| {
            let (resumed, all) = runs
                .iter()
                .fold((0, 0), |(r, a), run| (r + run.resumed.unwrap_or(0), a + run.requests));
            runs.iter()
                .any(|r| r.resumed.is_some())
                .then(|| 100.0 * resumed as f64 / all.max(1) as f64)
        };
        let nginx = share(
            self.rounds
                .iter()
                .filter_map(|r| r.nginx.as_ref().map(|n| &n.run))
                .collect(),
        );
        let gateway = share(self.rounds.iter().map(|r| &r.gateway.run).collect());
        match (nginx, gateway) {
            (None, None) => String::new(),
            (nginx, gateway) => {
                let text = |s: Option<f64>| s.map_or("-".into(), |s| format!("{s:.0} %"));
                format!(" (resumed: nginx {}, gateway {})", text(nginx), text(gateway))
            }
        }
    }
}

/// CPU seconds per what the case counts: 10k requests, a GiB, or (in ms) a handshake.
fn cpu_per(per: Per, s: &Sample) -> f64 {
    match per {
        Per::TenThousandRequests => s.cpu_per_10k_requests(),
        Per::GiB => s.cpu_per_gib(),
        Per::Handshake => s.cpu_seconds / s.run.requests.max(1) as f64 * 1000.0,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// RSS of a fresh gateway before the memory runs.
    pub idle_rss_mib: f64,
    pub one_client_peak_rss_mib: f64,
    pub one_client_mb_per_s: f64,
    pub slow_clients: usize,
    pub slow_clients_peak_rss_mib: f64,
    pub slow_clients_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sts {
    pub concurrent_requests: usize,
    pub succeeded: usize,
    pub assume_role_calls: usize,
    pub first_response_ms: f64,
    pub all_responses_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: String,
    /// nginx's worker processes (`--nginx-workers`), when nginx ran.
    pub nginx_workers: Option<usize>,
    pub load_generator: &'static str,
    pub seconds_per_run: u64,
    pub rounds: usize,
    pub gateway_setup: String,
    pub cells: Vec<Cell>,
    pub tls: Vec<TlsCell>,
    pub memory: Option<Memory>,
    pub sts: Option<Sts>,
    /// The edge cache's cases, one line each.
    pub cache: Vec<CacheRow>,
}

/// One edge cache case and what it measured.
#[derive(Debug, Clone, Serialize)]
pub struct CacheRow {
    pub case: String,
    pub result: String,
}

impl CacheRow {
    pub fn new(case: &str, result: String) -> CacheRow {
        CacheRow {
            case: case.to_string(),
            result,
        }
    }
}

/// The most and the mean share of the machine the hypervisor took over the measured runs.
fn steal(r: &Report) -> String {
    let plain = r.cells.iter().flat_map(|c| &c.rounds).map(|x| (&x.gateway, &x.nginx));
    let tls = r.tls.iter().flat_map(|c| &c.rounds).map(|x| (&x.gateway, &x.nginx));
    let all: Vec<f64> = plain
        .chain(tls)
        .flat_map(|(gateway, nginx)| std::iter::once(gateway.steal).chain(nginx.as_ref().map(|n| n.steal)))
        .collect();
    if all.is_empty() {
        return "not measured".into();
    }
    let max = all.iter().copied().fold(0.0, f64::max);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let warning = if max > 0.05 {
        " — over 5 %: neighbours took this host's CPU; CPU figures of this run are not comparable"
    } else {
        ""
    };
    format!("mean {:.1} %, at most {:.1} %{warning}", mean * 100.0, max * 100.0)
}

/// A nginx figure of a round, when nginx ran.
fn nginx(f: fn(&Sample) -> f64) -> impl Fn(&Round) -> Option<f64> {
    move |x: &Round| x.nginx.as_ref().map(f)
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "machine: {}\nload generator: {}, {} s per run, {} interleaved round(s) (direct, nginx, gateway) after an unmeasured warm-up of each; backend, proxies and load generator share the machine\ngateway: {}\nnginx: {}\nCPU: user + system time of every thread of the gateway's process, and of every nginx process (master, workers, cache manager) (/proc/PID/stat)\nhypervisor steal during the measured runs: {}\nmedians over the rounds; ratios with their min–max\n\n",
        r.machine,
        r.load_generator,
        r.seconds_per_run,
        r.rounds,
        r.gateway_setup,
        r.nginx_workers.map_or("not installed".to_string(), |n| format!(
            "{n} worker process(es) (`--nginx-workers`), proxy_pass with upstream keepalive; its CPU summed over all its processes"
        )),
        steal(r)
    );
    if !r.cells.is_empty() {
        plain_tables(r, &mut out);
    }
    if !r.tls.is_empty() {
        out.push_str("\nTLS (one self-signed ECDSA P-256 certificate; gateway: rustls with ring; nginx: OpenSSL), h2load; CPU per 10k requests, per GiB, or in ms per handshake:\n\n");
        out.push_str("| TLS case | nginx req/s | gateway req/s | gateway/nginx req/s | CPU nginx/gateway | CPU gateway/nginx | errors |\n|---|---|---|---|---|---|---|\n");
        for c in &r.tls {
            let errors: u64 = c
                .rounds
                .iter()
                .map(|x| x.gateway.run.errors + x.nginx.as_ref().map_or(0, |n| n.run.errors))
                .sum();
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {}/{} | {} | {errors} |",
                c.case,
                c.resumed(),
                c.median(|x| x.nginx.as_ref().map(|n| n.run.rps()), 0),
                c.median(|x| Some(x.gateway.run.rps()), 0),
                c.text(|x| x.nginx.as_ref().map(|n| x.gateway.run.rps() / n.run.rps()), 2),
                c.median(|x| x.nginx.as_ref().map(|n| cpu_per(c.per, n)), 2),
                c.median(|x| Some(cpu_per(c.per, &x.gateway)), 2),
                c.text(
                    |x| x.nginx.as_ref().map(|n| cpu_per(c.per, &x.gateway) / cpu_per(c.per, n)),
                    2
                ),
            );
        }
    }
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "\nmemory (a fresh gateway, {:.1} MiB idle): 1 GiB generated object to 1 client at {:.0} MB/s: gateway peak RSS {:.1} MiB; to {} slow clients at once ({} MB moved): peak RSS {:.1} MiB",
            m.idle_rss_mib,
            m.one_client_mb_per_s,
            m.one_client_peak_rss_mib,
            m.slow_clients,
            m.slow_clients_bytes / 1_000_000,
            m.slow_clients_peak_rss_mib
        );
    }
    if let Some(s) = &r.sts {
        let _ = writeln!(
            out,
            "\nSTS: {} concurrent cold requests to a delegated storage: {} succeeded, {} AssumeRole call(s), first response after {:.1} ms, all after {:.1} ms",
            s.concurrent_requests, s.succeeded, s.assume_role_calls, s.first_response_ms, s.all_responses_ms
        );
    }
    if !r.cache.is_empty() {
        out.push_str("\nedge cache (gateways of their own, 256 MiB memory tier; nginx proxy_cache with slice 1m and proxy_cache_lock on, on the same backend):\n\n| case | result |\n|---|---|\n");
        for row in &r.cache {
            let _ = writeln!(out, "| {} | {} |", row.case, row.result);
        }
    }
    out
}

/// Grouped bars: gateway/direct and nginx/direct req/s per cell (medians), with the 0.6 and
/// 0.7 bars.
pub fn svg(r: &Report) -> String {
    let (w, h, left, bottom, top) = (960.0, 420.0, 60.0, 70.0, 30.0);
    let plot_h = h - bottom - top;
    let slot = (w - left - 20.0) / r.cells.len().max(1) as f64;
    let y = |ratio: f64| top + plot_h * (1.0 - (ratio / 1.2).clamp(0.0, 1.0));
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n");
    let _ = writeln!(s, "<text x=\"{left}\" y=\"18\" font-size=\"14\">requests/s through assetgate and through plain nginx, relative to direct</text>");
    for tick in [0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 1.0, 1.2] {
        let color = if tick == 0.6 || tick == 0.7 { "#c33" } else { "#ddd" };
        let (right, at, label_at) = (w - 20.0, y(tick), y(tick) + 4.0);
        let _ = writeln!(s, "<line x1=\"{left}\" x2=\"{right}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"{color}\"/><text x=\"20\" y=\"{label_at:.1}\">{tick:.1}</text>");
    }
    for (i, p) in r.cells.iter().enumerate() {
        let x = left + i as f64 * slot;
        let bar = slot * 0.35;
        let gateway = p
            .spread(|x| Some(x.gateway.run.rps() / x.direct.rps()))
            .map_or(0.0, |s| s.median);
        let nginx = p
            .spread(|x| x.nginx.as_ref().map(|n| n.run.rps() / x.direct.rps()))
            .map_or(0.0, |s| s.median);
        for (j, (ratio, color)) in [(gateway, "#4a7"), (nginx, "#47a")].iter().enumerate() {
            let bx = x + slot * 0.1 + j as f64 * bar;
            let _ = writeln!(
                s,
                "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                y(*ratio),
                y(0.0) - y(*ratio)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" transform=\"rotate(40 {0:.1} {1:.1})\">{} ×{}</text>",
            x + slot * 0.2,
            h - bottom + 14.0,
            p.size,
            p.connections
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"36\" width=\"10\" height=\"10\" fill=\"#4a7\"/><text x=\"{}\" y=\"45\">gateway/direct</text>",
        w - 220.0,
        w - 205.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"52\" width=\"10\" height=\"10\" fill=\"#47a\"/><text x=\"{}\" y=\"61\">nginx/direct</text>",
        w - 220.0,
        w - 205.0
    );
    s.push_str("</svg>\n");
    s
}

pub fn write(dir: &Path, report: &Report) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("load.json"), serde_json::to_string_pretty(report).unwrap()).unwrap();
    std::fs::write(dir.join("load.svg"), svg(report)).unwrap();
    std::fs::write(dir.join("load.md"), markdown(report)).unwrap();
}

/// The tables of the plain HTTP cells: throughput, latency and CPU against direct and nginx.
fn plain_tables(r: &Report, out: &mut String) {
    out.push_str("| object | conns | direct req/s | nginx req/s | gateway req/s | gateway/direct | nginx/direct | gateway/nginx | gateway MB/s | p50 ms direct/nginx/gateway | CPU s/10k req nginx/gateway | CPU s/GiB nginx/gateway | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in &r.cells {
        let errors: u64 = c
            .rounds
            .iter()
            .map(|x| x.direct.errors + x.gateway.run.errors + x.nginx.as_ref().map_or(0, |n| n.run.errors))
            .sum();
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{}/{} | {}/{} | {}/{} | {} |",
            c.size,
            c.connections,
            c.median(|x| Some(x.direct.rps()), 0),
            c.median(nginx(|n| n.run.rps()), 0),
            c.median(|x| Some(x.gateway.run.rps()), 0),
            c.ratio(|x| Some(x.gateway.run.rps() / x.direct.rps())),
            c.ratio(|x| x.nginx.as_ref().map(|n| n.run.rps() / x.direct.rps())),
            c.ratio(|x| x.nginx.as_ref().map(|n| x.gateway.run.rps() / n.run.rps())),
            c.median(|x| Some(x.gateway.run.mbps()), 1),
            c.median(|x| Some(x.direct.p50_ms), 2),
            c.median(nginx(|n| n.run.p50_ms), 2),
            c.median(|x| Some(x.gateway.run.p50_ms), 2),
            c.median(nginx(Sample::cpu_per_10k_requests), 2),
            c.median(|x| Some(x.gateway.cpu_per_10k_requests()), 2),
            c.median(nginx(Sample::cpu_per_gib), 2),
            c.median(|x| Some(x.gateway.cpu_per_gib()), 2),
            errors,
        );
    }
    let _ = writeln!(
        *out,
        "\ngateway CPU relative to nginx's for the same work (per request, and so per GiB; medians, below 1 is better):\n"
    );
    out.push_str(
        "| object | conns | CPU gateway/nginx | context switches per request nginx/gateway |\n|---|---|---|---|\n",
    );
    for c in &r.cells {
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {}/{} |",
            c.size,
            c.connections,
            c.ratio(|x| x
                .nginx
                .as_ref()
                .map(|n| x.gateway.cpu_per_10k_requests() / n.cpu_per_10k_requests())),
            c.median(nginx(Sample::switches_per_request), 2),
            c.median(|x| Some(x.gateway.switches_per_request()), 2),
        );
    }
}

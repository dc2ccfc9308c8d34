//! The report: a markdown table with gateway/direct ratios on stdout, JSON and an SVG chart
//! in `target/bench-report/`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::drive::Run;

/// One cell of the matrix: an object size at a connection count, direct and through the
/// gateway, with the gateway's CPU cost.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub size: &'static str,
    pub connections: usize,
    pub direct: Run,
    pub gateway: Run,
    pub gateway_cpu_seconds: f64,
    pub gateway_peak_rss_mib: f64,
}

impl Pair {
    pub fn cpu_per_10k_requests(&self) -> f64 {
        self.gateway_cpu_seconds / self.gateway.requests.max(1) as f64 * 10_000.0
    }
    pub fn cpu_per_gb(&self) -> f64 {
        self.gateway_cpu_seconds / (self.gateway.bytes.max(1) as f64 / 1e9)
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
    pub load_generator: &'static str,
    pub seconds_per_run: u64,
    pub pairs: Vec<Pair>,
    pub memory: Option<Memory>,
    pub sts: Option<Sts>,
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "machine: {}\nload generator: {}, {} s per run; backend, gateway and load generator share the machine\n\n",
        r.machine, r.load_generator, r.seconds_per_run
    );
    out.push_str("| object | conns | direct req/s | gateway req/s | ratio | direct MB/s | gateway MB/s | ratio | direct p50/p99 ms | gateway p50/p99 ms | gw CPU s/10k req | gw CPU s/GB | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for p in &r.pairs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} | {:.2}/{:.2} | {:.2}/{:.2} | {:.2} | {:.2} | {} |",
            p.size,
            p.connections,
            p.direct.rps(),
            p.gateway.rps(),
            p.gateway.rps() / p.direct.rps(),
            p.direct.mbps(),
            p.gateway.mbps(),
            p.gateway.mbps() / p.direct.mbps(),
            p.direct.p50_ms,
            p.direct.p99_ms,
            p.gateway.p50_ms,
            p.gateway.p99_ms,
            p.cpu_per_10k_requests(),
            p.cpu_per_gb(),
            p.direct.errors + p.gateway.errors,
        );
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
    out
}

/// Grouped bars: gateway/direct ratio of req/s and MB/s per cell, with the 0.6 and 0.7 bars.
pub fn svg(r: &Report) -> String {
    let (w, h, left, bottom, top) = (960.0, 420.0, 60.0, 70.0, 30.0);
    let plot_h = h - bottom - top;
    let slot = (w - left - 20.0) / r.pairs.len().max(1) as f64;
    let y = |ratio: f64| top + plot_h * (1.0 - (ratio / 1.2).clamp(0.0, 1.0));
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n");
    let _ = writeln!(s, "<text x=\"{left}\" y=\"18\" font-size=\"14\">assetgate: throughput through the gateway / direct to the backend</text>");
    for tick in [0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 1.0, 1.2] {
        let color = if tick == 0.6 || tick == 0.7 { "#c33" } else { "#ddd" };
        let (right, at, label_at) = (w - 20.0, y(tick), y(tick) + 4.0);
        let _ = writeln!(s, "<line x1=\"{left}\" x2=\"{right}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"{color}\"/><text x=\"20\" y=\"{label_at:.1}\">{tick:.1}</text>");
    }
    for (i, p) in r.pairs.iter().enumerate() {
        let x = left + i as f64 * slot;
        let bar = slot * 0.35;
        for (j, (ratio, color)) in [
            (p.gateway.rps() / p.direct.rps(), "#4a7"),
            (p.gateway.mbps() / p.direct.mbps(), "#47a"),
        ]
        .iter()
        .enumerate()
        {
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
        "<rect x=\"{}\" y=\"36\" width=\"10\" height=\"10\" fill=\"#4a7\"/><text x=\"{}\" y=\"45\">req/s ratio</text>",
        w - 220.0,
        w - 205.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"52\" width=\"10\" height=\"10\" fill=\"#47a\"/><text x=\"{}\" y=\"61\">MB/s ratio</text>",
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

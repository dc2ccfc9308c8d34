//! The audit trail (README "Audit"): one JSON line per object request when its response ends,
//! written to `[audit].path` (or standard output for `-`) by a thread of its own. Requests
//! only hand a line over a bounded queue: a slow disk never slows them, and a line that finds
//! the queue full is counted as dropped rather than waited for. SIGHUP reopens the file, for
//! logrotate. Never a token or a secret: the line names the token's `sub`, not the token.
//!
//! A line is one line for every reader: besides JSON's own escapes, U+2028, U+2029 and
//! U+0085 (which JavaScript and some log tools take for line breaks) are escaped, and a `key`
//! or `sub` longer than 1 KiB is cut, with `"truncated": true`.

use std::io;
use std::net::IpAddr;

use serde::Serialize;

use crate::telemetry::lines::{LineQueue, Sink};

/// Lines written and dropped.
pub type AuditMetrics = crate::telemetry::lines::Counters;

/// One line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine<'a> {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    pub request_id: &'a str,
    pub org: Option<&'a str>,
    pub storage: Option<&'a str>,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub sub: Option<&'a str>,
    pub method: &'a str,
    pub range: Option<&'a str>,
    pub status: u16,
    pub bytes: u64,
    /// `complete`, `aborted` or `client_gone`.
    pub outcome: &'static str,
    pub duration_ms: u64,
    pub client_ip: Option<IpAddr>,
    /// What the edge cache did: `hit`, `revalidated`, `miss` or `bypass` (null when the
    /// request never reached it, or the cache is off).
    pub cache: Option<&'static str>,
    /// Set when `key` or `sub` was cut to [`MAX_FIELD`] bytes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Longest `key` or `sub` written, in bytes.
pub const MAX_FIELD: usize = 1024;

impl AuditLine<'_> {
    /// The line with `key` and `sub` cut to [`MAX_FIELD`] bytes (on a character boundary).
    fn bounded(mut self) -> Self {
        for field in [&mut self.key, &mut self.sub] {
            if let Some(text) = field.filter(|t| t.len() > MAX_FIELD) {
                let mut end = MAX_FIELD;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                *field = Some(&text[..end]);
                self.truncated = true;
            }
        }
        self
    }
}

/// JSON text with U+2028, U+2029 and U+0085 escaped: valid JSON still, and one line for
/// readers that break lines on them.
fn one_line(json: Vec<u8>) -> Vec<u8> {
    const BREAKS: [(&[u8], &[u8]); 3] = [
        ("\u{2028}".as_bytes(), b"\\u2028"),
        ("\u{2029}".as_bytes(), b"\\u2029"),
        ("\u{85}".as_bytes(), b"\\u0085"),
    ];
    if !json.iter().any(|&b| b == 0xE2 || b == 0xC2) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    'bytes: while i < json.len() {
        for (raw, escaped) in BREAKS {
            if json[i..].starts_with(raw) {
                out.extend_from_slice(escaped);
                i += raw.len();
                continue 'bytes;
            }
        }
        out.push(json[i]);
        i += 1;
    }
    out
}

pub struct Audit {
    lines: LineQueue,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl Audit {
    /// Opens `path` (created if missing, appended to; `-` for standard output) and starts
    /// the writer.
    pub fn open(path: &str, metrics: AuditMetrics) -> io::Result<Audit> {
        let dropped = metrics.dropped.clone();
        let lines = LineQueue::start("assetgate-audit", Sink::open(path)?, metrics)?;
        Ok(Audit { lines, dropped })
    }

    /// Hands `line` to the writer (bounded and on one line), or counts it as dropped when the
    /// queue is full.
    pub fn write(&self, line: AuditLine<'_>) {
        let json = serde_json::to_vec(&line.bounded()).expect("audit lines serialize");
        let mut text = one_line(json);
        text.push(b'\n');
        if self.lines.push(text).is_err() {
            self.dropped.inc();
        }
    }

    /// Writes what is queued and stops the writer (the process is about to end). Lines
    /// handed over later are counted as dropped.
    pub fn finish(&self) {
        self.lines.finish();
    }

    /// Reopens the file before the next line (SIGHUP).
    pub fn reopen(&self) {
        self.lines.reopen();
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the address that
/// proxy saw (the last `X-Forwarded-For` entry, and so on leftwards through trusted
/// proxies). A malformed entry ends the walk: what lies left of it cannot be believed.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&peer) {
        return client;
    }
    let entries = forwarded_for.iter().flat_map(|v| v.split(',')).collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        let Some(ip) = parse_entry(entry.trim()) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_counts_only_through_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // A trusted peer: the entry it added.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        // A forged leftmost entry stays left of the client the proxies saw.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["1.1.1.1, 198.51.100.1, 10.0.0.7"], &trusted),
            ip("198.51.100.1")
        );
        // Several header lines, ports and brackets.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["192.0.2.1", "[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        // Garbage ends the walk at the last address believed.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["198.51.100.1, junk"], &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), &[], &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn long_keys_and_subs_are_cut_on_a_character_boundary() {
        let key = format!("{}é{}", "k".repeat(MAX_FIELD - 1), "rest");
        let line = AuditLine {
            time: String::new(),
            request_id: "r",
            org: None,
            storage: None,
            bucket: None,
            key: Some(&key),
            sub: Some("short"),
            method: "GET",
            range: None,
            status: 200,
            bytes: 0,
            outcome: "complete",
            duration_ms: 0,
            client_ip: None,
            cache: None,
            truncated: false,
        }
        .bounded();
        assert_eq!(
            line.key.unwrap(),
            "k".repeat(MAX_FIELD - 1),
            "é would straddle the bound"
        );
        assert!(line.truncated);
        let json = serde_json::to_string(&line).unwrap();
        assert!(json.contains("\"truncated\":true"), "{json}");
    }

    #[test]
    fn line_separators_are_escaped_and_the_json_stays_the_same() {
        let text = "a\u{2028}b\u{2029}c\u{85}d é ✓";
        let json = one_line(serde_json::to_vec(&serde_json::json!({ "key": text })).unwrap());
        let written = String::from_utf8(json.clone()).unwrap();
        assert_eq!(written, r#"{"key":"a\u2028b\u2029c\u0085d é ✓"}"#);
        let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(back["key"], text);
    }

    proptest! {
        #[test]
        fn any_key_is_written_as_one_line_of_json_that_reads_back(key in "\\PC{0,40}|[\u{2028}\u{2029}\u{85}a]{0,10}") {
            let json = one_line(serde_json::to_vec(&serde_json::json!({ "key": key })).unwrap());
            let text = String::from_utf8(json.clone()).unwrap();
            let breaks = ['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}'];
            prop_assert!(!text.contains(breaks), "{}", text);
            let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(back["key"].as_str().unwrap(), key.as_str());
        }

        #[test]
        fn the_client_is_the_peer_or_an_address_of_the_header(header in "[0-9a-f.:, \\[\\]]{0,60}") {
            let peer: IpAddr = "10.1.2.3".parse().unwrap();
            let got = client_ip(peer, &[header.as_str()], &nets(&["10.0.0.0/8"]));
            let named: Vec<IpAddr> = header.split(',').filter_map(|e| parse_entry(e.trim())).collect();
            prop_assert!(got == peer || named.contains(&got), "{got} from {header:?}");
        }
    }

    #[test]
    fn lines_are_written_and_the_file_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(path.to_str().unwrap(), AuditMetrics::default()).unwrap();
        let line = |id: &'static str| AuditLine {
            time: "2026-12-01T00:00:00.000Z".into(),
            request_id: id,
            org: Some("acme"),
            storage: Some("main"),
            bucket: Some("b"),
            key: Some("k.jpg"),
            sub: Some("u1"),
            method: "GET",
            range: None,
            status: 200,
            bytes: 3,
            outcome: "complete",
            duration_ms: 1,
            client_ip: Some("127.0.0.1".parse().unwrap()),
            cache: None,
            truncated: false,
        };
        audit.write(line("one"));
        let wait = |p: &std::path::Path, n: usize| {
            for _ in 0..100 {
                if std::fs::read_to_string(p).unwrap_or_default().lines().count() >= n {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("{n} lines never arrived");
        };
        wait(&path, 1);
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        audit.reopen();
        audit.write(line("two"));
        wait(&path, 1);
        let fresh = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(fresh.lines().next().unwrap()).unwrap();
        assert_eq!(
            (v["requestId"].as_str(), v["clientIp"].as_str()),
            (Some("two"), Some("127.0.0.1"))
        );
        assert!(v.get("range").is_some(), "absent fields are null, not missing");

        // At shutdown, everything handed over is on disk when finish returns; later lines
        // are counted as dropped, not lost silently.
        for _ in 0..1000 {
            audit.write(line("three"));
        }
        audit.finish();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written.lines().filter(|l| l.contains("\"three\"")).count(), 1000);
        audit.write(line("late"));
        assert_eq!(audit.dropped.get(), 1);
    }
}

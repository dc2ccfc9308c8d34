//! The access log line (README "Logs"): one per request, as the rest of the log writes its
//! events (`tracing_subscriber`'s text, with colours on a terminal, or its JSON), byte for
//! byte. The request hands the writer thread a small record ([`AccessLine`]); the writer
//! formats it. Formatting through `tracing` on the request's task cost more than a tenth of
//! a cached 4 KiB answer (benches/README.md). Without the process's logger (the tests' own
//! subscribers), the line goes through `tracing` as any other event.

use std::io::{self, Write};
use std::time::SystemTime;

use http::{HeaderValue, Method};

use super::lines::Line;

/// The line's target: what `RUST_LOG` names to turn it off (`assetgate::access=off`).
pub const TARGET: &str = "assetgate::access";

/// What the access log line says about a request, owned, to be formatted later.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLine {
    /// When the request ended (the line's timestamp).
    pub time: SystemTime,
    pub request_id: HeaderValue,
    pub method: Method,
    pub org: Option<String>,
    pub storage: Option<String>,
    pub bucket: Option<String>,
    pub status: u16,
    /// 0 when the request reached no bucket.
    pub upstream_status: u16,
    pub error: Option<&'static str>,
    pub side: Option<&'static str>,
    pub bytes: u64,
    /// `Complete`, `Aborted` or `ClientGone`.
    pub outcome: &'static str,
    pub duration_ms: f64,
}

/// How the log writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Text,
    /// Text with the colours a terminal shows.
    Ansi,
    Json,
}

/// What the log's queue carries: a line `tracing` formatted, or an access record.
pub enum LogLine {
    Formatted(Vec<u8>),
    Access(Box<AccessLine>, Style),
}

impl From<Vec<u8>> for LogLine {
    fn from(line: Vec<u8>) -> LogLine {
        LogLine::Formatted(line)
    }
}

impl Line for LogLine {
    fn write(&self, out: &mut dyn Write, scratch: &mut Vec<u8>) -> io::Result<()> {
        match self {
            LogLine::Formatted(line) => out.write_all(line),
            LogLine::Access(line, style) => {
                line.format(*style, scratch);
                out.write_all(scratch)
            }
        }
    }
}

impl AccessLine {
    /// The line as `tracing_subscriber` would write the event [`AccessLine::trace`] sends.
    pub fn format(&self, style: Style, out: &mut Vec<u8>) {
        if style == Style::Json {
            return self.format_json(out);
        }
        let ansi = style == Style::Ansi;
        let mut w = Text { out, ansi };
        if ansi {
            w.out.extend_from_slice(b"\x1b[2m");
            push_time(w.out, self.time);
            w.out.extend_from_slice(b"\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2m");
            w.out.extend_from_slice(TARGET.as_bytes());
            w.out.extend_from_slice(b"\x1b[0m\x1b[2m:\x1b[0m request");
        } else {
            push_time(w.out, self.time);
            w.out.extend_from_slice(b"  INFO ");
            w.out.extend_from_slice(TARGET.as_bytes());
            w.out.extend_from_slice(b": request");
        }
        w.string("request_id", self.request_id.to_str().unwrap_or(""));
        w.name("method");
        w.out.extend_from_slice(self.method.as_str().as_bytes());
        w.string("org", self.org.as_deref().unwrap_or("-"));
        w.string("storage", self.storage.as_deref().unwrap_or("-"));
        w.string("bucket", self.bucket.as_deref().unwrap_or("-"));
        w.number("status", self.status.into());
        w.number("upstream_status", self.upstream_status.into());
        w.string("error", self.error.unwrap_or("-"));
        w.string("side", self.side.unwrap_or("-"));
        w.number("bytes", self.bytes);
        w.name("outcome");
        w.out.extend_from_slice(self.outcome.as_bytes());
        w.name("duration_ms");
        let _ = write!(w.out, "{:?}", self.duration_ms);
        w.out.push(b'\n');
    }

    fn format_json(&self, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, name: &str, value: &str| {
            let _ = write!(out, ",\"{name}\":");
            let _ = serde_json::to_writer(&mut *out, value);
        };
        // The timestamp has nothing JSON escapes.
        out.extend_from_slice(b"{\"timestamp\":\"");
        push_time(out, self.time);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\"");
        string(out, "request_id", self.request_id.to_str().unwrap_or(""));
        string(out, "method", self.method.as_str());
        string(out, "org", self.org.as_deref().unwrap_or("-"));
        string(out, "storage", self.storage.as_deref().unwrap_or("-"));
        string(out, "bucket", self.bucket.as_deref().unwrap_or("-"));
        let _ = write!(
            out,
            ",\"status\":{},\"upstream_status\":{}",
            self.status, self.upstream_status
        );
        string(out, "error", self.error.unwrap_or("-"));
        string(out, "side", self.side.unwrap_or("-"));
        let _ = write!(out, ",\"bytes\":{}", self.bytes);
        string(out, "outcome", self.outcome);
        out.extend_from_slice(b",\"duration_ms\":");
        let _ = serde_json::to_writer(&mut *out, &self.duration_ms);
        let _ = writeln!(out, ",\"target\":\"{TARGET}\"}}");
    }

    /// The line as an event of `tracing`, for a process whose logger is not the gateway's.
    pub fn trace(&self) {
        tracing::info!(
            target: TARGET,
            request_id = self.request_id.to_str().unwrap_or(""),
            method = %self.method,
            org = self.org.as_deref().unwrap_or("-"),
            storage = self.storage.as_deref().unwrap_or("-"),
            bucket = self.bucket.as_deref().unwrap_or("-"),
            status = self.status,
            upstream_status = self.upstream_status,
            error = self.error.unwrap_or("-"),
            side = self.side.unwrap_or("-"),
            bytes = self.bytes,
            outcome = tracing::field::display(self.outcome),
            duration_ms = self.duration_ms,
            "request"
        );
    }
}

/// Fields in `tracing_subscriber`'s text: ` name=value`, the name in italics and `=` dimmed
/// on a terminal, strings as Rust's `Debug` writes them.
struct Text<'a> {
    out: &'a mut Vec<u8>,
    ansi: bool,
}

impl Text<'_> {
    fn name(&mut self, name: &str) {
        if self.ansi {
            self.out.extend_from_slice(b" \x1b[3m");
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"\x1b[0m\x1b[2m=\x1b[0m");
        } else {
            self.out.push(b' ');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'=');
        }
    }

    fn string(&mut self, name: &str, value: &str) {
        self.name(name);
        // Printable ASCII but `"` and `\` is written as it is; anything else as `Debug` escapes it.
        if value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        } else {
            let _ = write!(self.out, "{value:?}");
        }
    }

    fn number(&mut self, name: &str, value: u64) {
        self.name(name);
        push_digits(self.out, value, 1);
    }
}

/// `value` in decimal, with leading zeros up to `width` digits.
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut first = digits.len();
    while value > 0 || first > digits.len() - width {
        first -= 1;
        digits[first] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[first..]);
}

/// `time` as tracing's clock writes it (RFC 3339 in UTC, with microseconds:
/// `2026-12-06T09:49:00.123456Z`). The date and time of day are made once a second: the
/// writer thread formats every line of a second with the same.
fn push_time(out: &mut Vec<u8>, time: SystemTime) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, Vec<u8>)> = const { std::cell::RefCell::new((0, Vec::new())) };
    }
    let Ok(since) = time.duration_since(SystemTime::UNIX_EPOCH) else {
        let _ = write!(out, "{}", humantime::format_rfc3339_micros(time));
        return;
    };
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() || text.is_empty() {
            let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs());
            text.clear();
            // `…T09:49:00Z`, without its `Z`.
            let _ = write!(text, "{}", humantime::format_rfc3339_seconds(whole));
            text.pop();
            *second = since.as_secs();
        }
        out.extend_from_slice(text);
    });
    out.push(b'.');
    push_digits(out, since.subsec_micros().into(), 6);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    /// What `tracing_subscriber` writes for the line's event, with the gateway's settings
    /// and `line.time` as the clock.
    fn through_tracing(line: &AccessLine, style: Style) -> String {
        #[derive(Clone)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        struct At(SystemTime);
        impl tracing_subscriber::fmt::time::FormatTime for At {
            fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
                write!(w, "{}", humantime::format_rfc3339_micros(self.0))
            }
        }
        let buffer = Buffer(Arc::default());
        let writer = buffer.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_timer(At(line.time))
            .with_ansi(style == Style::Ansi);
        let dispatch = match style {
            Style::Json => tracing::Dispatch::new(builder.json().flatten_event(true).finish()),
            _ => tracing::Dispatch::new(builder.finish()),
        };
        tracing::dispatcher::with_default(&dispatch, || line.trace());
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    fn ours(line: &AccessLine, style: Style) -> String {
        let mut out = Vec::new();
        line.format(style, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn sample() -> AccessLine {
        AccessLine {
            time: SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_796_523_248_123_456),
            request_id: HeaderValue::from_static("0123456789abcdef01234567"),
            method: Method::GET,
            org: Some("acme".into()),
            storage: Some("main".into()),
            bucket: None,
            status: 206,
            upstream_status: 0,
            error: None,
            side: None,
            bytes: 4096,
            outcome: "Complete",
            duration_ms: 0.123456,
        }
    }

    #[test]
    fn writes_what_tracing_writes_in_every_style() {
        for style in [Style::Text, Style::Ansi, Style::Json] {
            let line = sample();
            assert_eq!(ours(&line, style), through_tracing(&line, style), "{style:?}");
        }
        let text = ours(&sample(), Style::Text);
        assert!(
            text.starts_with("2026-12-06T"),
            "a timestamp first, as the rest of the log: {text}"
        );
        assert!(text.contains(" bucket=\"-\" status=206 "), "{text}");
    }

    #[test]
    fn the_timestamp_has_the_shape_of_tracing_s_clock() {
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::FormatTime::format_time(
            &tracing_subscriber::fmt::time::SystemTime,
            &mut tracing_subscriber::fmt::format::Writer::new(&mut theirs),
        )
        .unwrap();
        let ours = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        let shape = |t: &str| {
            t.chars()
                .map(|c| if c.is_ascii_digit() { '0' } else { c })
                .collect::<String>()
        };
        assert_eq!(shape(&ours), shape(&theirs));
    }

    proptest! {
        #[test]
        fn any_field_is_written_as_tracing_writes_it(
            org in "\\PC{0,12}|[\\x00-\\x7f\\u{80}-\\u{a0}\\u{300}\\u{200b}\\u{1b}]{0,12}",
            bucket in proptest::option::of("[a-z0-9.\"\\\\ -]{0,20}"),
            status in any::<u16>(),
            upstream in any::<u16>(),
            bytes in any::<u64>(),
            micros in any::<u32>(),
            seconds in 0u64..253_402_295_000,
            duration in prop_oneof![any::<f64>(), 0.0f64..100_000.0],
            method in prop_oneof![Just(Method::GET), Just(Method::HEAD), Just(Method::from_bytes(b"PURGE").unwrap())],
            error in proptest::option::of(Just("access_denied")),
        ) {
            let line = AccessLine {
                time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds) + std::time::Duration::from_micros(micros.into()),
                method,
                org: Some(org),
                bucket,
                status,
                upstream_status: upstream,
                error,
                side: error.map(|_| "client"),
                bytes,
                duration_ms: duration,
                outcome: "ClientGone",
                ..sample()
            };
            for style in [Style::Text, Style::Ansi, Style::Json] {
                prop_assert_eq!(ours(&line, style), through_tracing(&line, style), "{:?}", style);
            }
        }
    }
}

//! Lines written off the request path: the access log and the audit trail. A request only
//! pushes its line onto a bounded queue; a thread of the queue's own wakes every
//! [`DRAIN_EVERY`] (sooner when a burst fills a quarter of the queue), writes everything
//! queued and flushes once: one `write(2)` per batch instead of one per line, and no wakeup
//! of another thread per request. A full queue gives the line back to the caller, who
//! decides: the audit trail counts it as dropped, the log writes it itself.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// Lines waiting for the writer at most.
pub const QUEUE: usize = 16_384;

/// How often the writer takes what is queued and writes it, with one flush.
pub const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Buffer of the writer (a batch larger than this is written in pieces of this size).
const BUFFER: usize = 256 * 1024;

/// Lines written, and lines the disk refused.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub written: Counter,
    pub dropped: Counter,
}

/// Where lines go.
pub enum Sink {
    Stdout(BufWriter<io::Stdout>),
    Stderr(BufWriter<io::Stderr>),
    File(PathBuf, BufWriter<File>),
}

impl Sink {
    /// `-` for standard output, else the file at `path` (created if missing, appended to).
    pub fn open(path: &str) -> io::Result<Sink> {
        if path == "-" {
            return Ok(Sink::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())));
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Sink::File(path.into(), BufWriter::with_capacity(BUFFER, file)))
    }

    pub fn stderr() -> Sink {
        Sink::Stderr(BufWriter::with_capacity(BUFFER, io::stderr()))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(out) => out,
            Sink::Stderr(out) => out,
            Sink::File(_, file) => file,
        }
    }

    /// The file again under its name (logrotate moved the old one away).
    fn reopen(&mut self) {
        if let Sink::File(path, file) = self {
            let _ = file.flush();
            match OpenOptions::new().create(true).append(true).open(&*path) {
                Ok(fresh) => *file = BufWriter::with_capacity(BUFFER, fresh),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "the file cannot be reopened; writing on to the old one")
                }
            }
        }
    }
}

/// What a queue carries: a line, or what the writer makes one of.
pub trait Line: Send + 'static {
    /// Writes the line (with its newline) to `out`; `scratch` is the writer's buffer to
    /// format into, empty on entry.
    fn write(&self, out: &mut dyn Write, scratch: &mut Vec<u8>) -> io::Result<()>;
}

/// A line formatted by whoever queued it.
impl Line for Vec<u8> {
    fn write(&self, out: &mut dyn Write, _: &mut Vec<u8>) -> io::Result<()> {
        out.write_all(self)
    }
}

pub struct LineQueue<T: Line = Vec<u8>> {
    queue: SyncSender<T>,
    /// Lines in the queue, to wake the writer early when a burst fills it.
    queued: Arc<AtomicUsize>,
    reopen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// The writer's thread, to wake.
    thread: Thread,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Line> LineQueue<T> {
    /// Starts the writer thread `name`, writing to `sink`.
    pub fn start(name: &str, mut sink: Sink, counters: Counters) -> io::Result<LineQueue<T>> {
        let (queue, lines) = sync_channel::<T>(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let reopen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (waiting, flag, stopping) = (queued.clone(), reopen.clone(), stop.clone());
        let writer = std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut scratch = Vec::with_capacity(512);
            loop {
                std::thread::park_timeout(DRAIN_EVERY);
                let last = stopping.load(Ordering::SeqCst);
                if flag.swap(false, Ordering::SeqCst) {
                    sink.reopen();
                }
                let open = drain(&lines, &waiting, sink.writer(), &mut scratch, &counters);
                // Nothing useful can be done about a failed flush but try again next time: the
                // log itself may be what fails.
                let _ = sink.writer().flush();
                if !open || last {
                    return;
                }
            }
        })?;
        Ok(LineQueue {
            queue,
            queued,
            reopen,
            stop,
            thread: writer.thread().clone(),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues `line`, or gives it back when the queue is full or the writer has finished.
    pub fn push(&self, line: T) -> Result<(), T> {
        // Counted before the push, so the writer never counts a line down before it is up.
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        match self.queue.try_send(line) {
            Ok(()) => {
                if before + 1 == QUEUE / 4 {
                    self.thread.unpark();
                }
                Ok(())
            }
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    std::sync::mpsc::TrySendError::Full(l) | std::sync::mpsc::TrySendError::Disconnected(l) => l,
                })
            }
        }
    }

    /// Reopens the file before the next batch (SIGHUP).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::SeqCst);
    }

    /// Writes what is queued and stops the writer (the process is about to end).
    pub fn finish(&self) {
        let Some(writer) = self.writer.lock().expect("line queue lock").take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
        let _ = writer.join();
    }
}

/// Writes every line queued now; false once no sender is left.
fn drain<T: Line>(
    lines: &Receiver<T>,
    queued: &AtomicUsize,
    out: &mut dyn Write,
    scratch: &mut Vec<u8>,
    counters: &Counters,
) -> bool {
    loop {
        match lines.try_recv() {
            Ok(line) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                scratch.clear();
                let counter = match line.write(out, scratch) {
                    Ok(()) => &counters.written,
                    Err(_) => &counters.dropped,
                };
                counter.inc();
            }
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

/// The log's writer for `tracing_subscriber::fmt`: each event is formatted into a buffer of
/// its own and queued when the formatter is done with it.
pub struct QueuedLine<T: Line + From<Vec<u8>>> {
    buf: Vec<u8>,
    queue: &'static LineQueue<T>,
}

impl<T: Line + From<Vec<u8>>> QueuedLine<T> {
    pub fn new(queue: &'static LineQueue<T>) -> QueuedLine<T> {
        QueuedLine {
            buf: Vec::with_capacity(256),
            queue,
        }
    }
}

impl<T: Line + From<Vec<u8>>> Write for QueuedLine<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Line + From<Vec<u8>>> Drop for QueuedLine<T> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        push_or_write(self.queue, T::from(std::mem::take(&mut self.buf)));
    }
}

/// Queues `line`; when the queue is full (a burst the writer has not caught up with), the
/// line is written to standard error here rather than lost: a log line is never dropped.
pub fn push_or_write<T: Line>(queue: &LineQueue<T>, line: T) {
    if let Err(line) = queue.push(line) {
        let _ = line.write(&mut io::stderr(), &mut Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_in_order_and_all_are_written_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.txt");
        let counters = Counters::default();
        let queue = LineQueue::start(
            "test-lines",
            Sink::open(path.to_str().unwrap()).unwrap(),
            counters.clone(),
        )
        .unwrap();
        for i in 0..5000 {
            queue.push(format!("{i}\n").into_bytes()).unwrap();
        }
        queue.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        let got: Vec<usize> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(got, (0..5000).collect::<Vec<_>>());
        assert_eq!(counters.written.get(), 5000);
        assert_eq!(
            queue.push(b"late\n".to_vec()),
            Err(b"late\n".to_vec()),
            "given back after finish"
        );
    }

    #[test]
    fn a_full_queue_gives_the_line_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.txt");
        let queue = LineQueue::start(
            "test-full",
            Sink::open(path.to_str().unwrap()).unwrap(),
            Counters::default(),
        )
        .unwrap();
        // Faster than the writer can drain: at some point a push fails, and never panics.
        let refused = (0..QUEUE * 8).filter(|_| queue.push(b"x\n".to_vec()).is_err()).count();
        queue.finish();
        let written = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(written + refused, QUEUE * 8, "every line written or given back");
    }
}

//! One fetch of one slice, shared by every request that needs it while it runs: the bytes
//! are kept as they arrive, and each reader streams them from where it is (not after the
//! fetch completes). When the last reader goes away the fetch stops at once; a reader that
//! goes away while others read changes nothing for them. A reader that took all it needed
//! of the slice (a range that ends inside it) lets the fetch complete the slice for the
//! cache: at most one slice more than the client took.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::Notify;

use super::FetchError;

/// The answer's head, once the bucket sent it.
#[derive(Debug)]
pub struct Head {
    /// The bucket's response headers (a 206's).
    pub headers: HeaderMap,
    /// `Content-Range`'s first byte, last byte and object size.
    pub first: u64,
    pub last: u64,
    pub size: u64,
}

#[derive(Default)]
struct State {
    head: Option<Arc<Head>>,
    chunks: Vec<Bytes>,
    /// The whole slice, once kept: the chunks are let go, and readers go on from the same
    /// bytes the cache holds (one copy in memory, however many read it).
    whole: Option<Bytes>,
    /// Set once: complete, or why not.
    end: Option<Result<(), FetchError>>,
}

/// A slice being fetched.
#[derive(Default)]
pub struct Fill {
    state: Mutex<State>,
    changed: Notify,
    readers: AtomicUsize,
    /// A reader finished with what it needed: the slice is completed whoever reads on.
    completed_for: AtomicBool,
}

impl Fill {
    /// A reader from the first byte; counted until dropped.
    pub fn reader(self: &Arc<Fill>) -> FillReader {
        self.readers.fetch_add(1, Ordering::AcqRel);
        FillReader {
            fill: self.clone(),
            next: 0,
            offset: 0,
        }
    }

    /// Whether anyone still reads, or a reader asked for the slice to be completed.
    pub fn wanted(&self) -> bool {
        self.readers.load(Ordering::Acquire) > 0 || self.completed_for.load(Ordering::Acquire)
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_waiters();
    }

    pub fn set_head(&self, head: Arc<Head>) {
        self.update(|s| s.head = Some(head));
    }

    pub fn push(&self, chunk: Bytes) {
        self.update(|s| s.chunks.push(chunk));
    }

    /// The chunks so far and `last`, not yet pushed, as one buffer of `len` bytes.
    pub fn joined(&self, last: &Bytes, len: usize) -> Bytes {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut whole = bytes::BytesMut::with_capacity(len);
        for chunk in state.chunks.iter().chain([last]) {
            whole.extend_from_slice(chunk);
        }
        whole.freeze()
    }

    /// The fetch completed and the cache keeps `whole`, the chunks joined.
    pub fn kept(&self, whole: Bytes) {
        self.update(|s| {
            s.chunks = Vec::new();
            s.whole = Some(whole);
        });
    }

    pub fn end(&self, result: Result<(), FetchError>) {
        self.update(|s| {
            s.end.get_or_insert(result);
        });
    }

    /// Waits until `ready` finds something in the state.
    async fn wait<T>(&self, mut ready: impl FnMut(&State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = ready(&self.state.lock().unwrap_or_else(|e| e.into_inner())) {
                return value;
            }
            notified.await;
        }
    }
}

/// One request's place in a fill.
pub struct FillReader {
    fill: Arc<Fill>,
    /// The next chunk to read.
    next: usize,
    /// Bytes read so far.
    offset: usize,
}

impl FillReader {
    /// Leaves the fill having taken all this request needed of it: the fetch completes the
    /// slice for the cache even if no one else reads.
    pub fn done(self) {
        self.fill.completed_for.store(true, Ordering::Release);
    }

    /// The answer's head, or why there is none.
    pub async fn head(&self) -> Result<Arc<Head>, FetchError> {
        self.fill
            .wait(|s| match (&s.head, &s.end) {
                (Some(head), _) => Some(Ok(head.clone())),
                (None, Some(Err(e))) => Some(Err(e.clone())),
                (None, Some(Ok(()))) => Some(Err(FetchError::Failed("the fetch ended without an answer".into()))),
                (None, None) => None,
            })
            .await
    }

    /// Bytes of the slice read so far: where the chunk [`FillReader::next`] gave last ends.
    pub fn read(&self) -> u64 {
        self.offset as u64
    }

    /// The next bytes of the slice; `None` once it is complete.
    pub async fn next(&mut self) -> Option<Result<Bytes, FetchError>> {
        let (next, offset) = (self.next, self.offset);
        let item = self
            .fill
            .wait(|s| {
                if let Some(whole) = &s.whole {
                    return Some((offset < whole.len()).then(|| Ok(whole.slice(offset..))));
                }
                match s.chunks.get(next) {
                    Some(chunk) => Some(Some(Ok(chunk.clone()))),
                    None => match &s.end {
                        Some(Ok(())) => Some(None),
                        Some(Err(e)) => Some(Some(Err(e.clone()))),
                        None => None,
                    },
                }
            })
            .await;
        if let Some(Ok(chunk)) = &item {
            self.next += 1;
            self.offset += chunk.len();
        }
        item
    }
}

impl Drop for FillReader {
    fn drop(&mut self) {
        if self.fill.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The fetch may be waiting for its next frame: it looks again when one arrives.
            self.fill.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_see_every_chunk_in_order_whenever_they_join() {
        let fill = Arc::new(Fill::default());
        let mut early = fill.reader();
        fill.set_head(Arc::new(Head {
            headers: HeaderMap::new(),
            first: 0,
            last: 5,
            size: 6,
        }));
        fill.push(Bytes::from_static(b"abc"));
        assert_eq!(early.next().await.unwrap().unwrap(), "abc");
        let mut late = fill.reader();
        let waiting = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(chunk) = late.next().await {
                got.extend_from_slice(&chunk.unwrap());
            }
            got
        });
        fill.push(Bytes::from_static(b"def"));
        fill.end(Ok(()));
        assert_eq!(early.next().await.unwrap().unwrap(), "def");
        assert!(early.next().await.is_none());
        assert_eq!(waiting.await.unwrap(), b"abcdef");
        assert_eq!(early.head().await.unwrap().size, 6);
    }

    #[tokio::test]
    async fn once_the_slice_is_kept_readers_go_on_from_the_cached_bytes() {
        let fill = Arc::new(Fill::default());
        let (mut a, mut b) = (fill.reader(), fill.reader());
        fill.push(Bytes::from_static(b"abc"));
        assert_eq!(a.next().await.unwrap().unwrap(), "abc");
        let whole = fill.joined(&Bytes::from_static(b"de"), 5);
        assert_eq!(whole, "abcde");
        fill.kept(whole);
        fill.end(Ok(()));
        assert_eq!(a.next().await.unwrap().unwrap(), "de");
        assert!(a.next().await.is_none());
        assert_eq!(b.next().await.unwrap().unwrap(), "abcde");
        assert!(b.next().await.is_none());
    }

    #[tokio::test]
    async fn a_failed_fetch_fails_every_reader_and_the_last_reader_leaving_is_seen() {
        let fill = Arc::new(Fill::default());
        let (mut a, b) = (fill.reader(), fill.reader());
        fill.end(Err(FetchError::Failed("reset".into())));
        assert!(a.next().await.unwrap().is_err());
        assert!(b.head().await.is_err());
        assert!(fill.wanted());
        drop((a, b));
        assert!(!fill.wanted());
    }
}

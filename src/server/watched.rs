//! What reports a connection's progress to its [`Activity`]: the client's socket
//! ([`WatchedIo`]: whether writes are stuck) and every response body ([`Tracked`]: the request
//! is in flight until the body is gone, and, on HTTP/2, whether the stream waits for the
//! client).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::{Activity, RequestGuard};

/// The client's socket, with every write's progress reported to the connection's activity.
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> WatchedIo<T> {
        WatchedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.note_write(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.activity.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.activity.note_write(&result);
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// HTTP/2 frames carry at most 16 KiB by default (RFC 9113 §4.2): a stream's progress is
/// judged in pieces of that size, so that a slow reader is not mistaken for one that stopped.
const STREAM_PIECE: usize = 16 * 1024;

/// A response body that keeps its request in flight until it is dropped and, on HTTP/2,
/// reports when it waits for the client.
pub struct Tracked<B> {
    inner: B,
    request: RequestGuard,
    /// The rest of a large frame, handed over piece by piece (HTTP/2).
    rest: Option<Bytes>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, request: RequestGuard) -> Tracked<B> {
        Tracked {
            inner,
            request,
            rest: None,
        }
    }

    fn piece(&mut self, mut data: Bytes) -> Bytes {
        if !self.request.is_stream() || data.len() <= STREAM_PIECE {
            return data;
        }
        let piece = data.split_to(STREAM_PIECE);
        self.rest = Some(data);
        piece
    }
}

impl<B> HttpBody for Tracked<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        this.request.asked();
        if let Some(rest) = this.rest.take() {
            let piece = this.piece(rest);
            this.request.handed_over();
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled;
        };
        let frame = match frame.into_data() {
            Ok(data) => Frame::data(this.piece(data)),
            Err(frame) => frame,
        };
        this.request.handed_over();
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        if let Some(rest) = &self.rest {
            let more = rest.len() as u64;
            hint.set_lower(hint.lower() + more);
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + more);
            }
        }
        hint
    }
}

//! The streamed object body: frames passed on as they arrive (hyper applies backpressure),
//! aborted on an upstream failure or stall (a short body must never look complete), and the
//! access log line written when it ends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use super::report::{AccessLog, Outcome};
use crate::body::{Body, BoxError};
use crate::telemetry::metrics::InFlight;

/// Streams `inner` to the client. If no frame arrives for `idle_timeout`, or `inner` fails,
/// the body yields an error so that hyper aborts the client's connection: a short body must
/// never look complete.
pub fn stream<B>(inner: B, idle_timeout: Duration, log: AccessLog, meter: Meter) -> Body
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    Streamed {
        inner,
        idle_timeout,
        idle: None,
        moved: false,
        bytes: 0,
        outcome: None,
        log,
        meter,
    }
    .boxed_unsync()
}

/// The streamed upstream body.
struct Streamed<B: HttpBody> {
    /// The bucket's response body.
    inner: B,
    /// Longest pause between two frames.
    idle_timeout: Duration,
    /// Fires when the pause is over; set when the body first has to wait (a body whose
    /// bytes are all at hand, a cached answer's, never needs one), and set again whenever
    /// it waits after a frame.
    idle: Option<Pin<Box<Sleep>>>,
    /// A frame passed since the timer was set.
    moved: bool,
    /// Bytes passed on so far, for the access log.
    bytes: u64,
    /// Set when the body ended, one way or another.
    outcome: Option<Outcome>,
    /// Written when the body is dropped.
    log: AccessLog,
    /// Byte counter and in-flight guard of the metrics.
    meter: Meter,
}

/// What a streamed body reports to the metrics: bytes as they pass, and that the request is
/// in flight until the body is gone.
pub struct Meter {
    pub bytes: prometheus_client::metrics::counter::Counter,
    pub in_flight: InFlight,
    /// Concurrent-stream limits this body counts against until it ends.
    pub permits: Vec<crate::limits::StreamPermit>,
    /// The upstream request's place among those in flight (`[server].max_upstream_requests`).
    pub upstream: Option<crate::upstream::UpstreamSlot>,
}

impl<B> HttpBody for Streamed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    this.meter.bytes.inc_by(data.len() as u64);
                }
                this.moved = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.outcome = Some(Outcome::Aborted);
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(None) => {
                this.outcome = Some(Outcome::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => match this.waiting().poll(cx) {
                Poll::Ready(()) => {
                    this.outcome = Some(Outcome::Aborted);
                    Poll::Ready(Some(Err("the storage stopped sending data (idle timeout)".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: HttpBody> Streamed<B> {
    /// The idle timer of a body that has to wait now: the pause starts now, unless it
    /// started earlier and no frame passed since.
    fn waiting(&mut self) -> Pin<&mut Sleep> {
        let timeout = self.idle_timeout;
        let deadline = || Instant::now() + timeout;
        match &mut self.idle {
            Some(timer) if std::mem::take(&mut self.moved) => timer.as_mut().reset(deadline()),
            Some(_) => {}
            None => {
                self.moved = false;
                self.idle = Some(Box::pin(tokio::time::sleep_until(deadline())));
            }
        }
        self.idle.as_mut().expect("set above").as_mut()
    }
}

impl<B: HttpBody> Drop for Streamed<B> {
    fn drop(&mut self) {
        let ended = if self.inner.is_end_stream() {
            Outcome::Complete
        } else {
            Outcome::ClientGone
        };
        self.log.finish(self.bytes, self.outcome.unwrap_or(ended));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    /// A body of one-byte frames, each after its delay (ms), then silent forever.
    fn paced(
        delays: &[u64],
    ) -> http_body_util::StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, BoxError>>> {
        let frames = futures_util::stream::iter(delays.to_vec())
            .then(|d| async move {
                tokio::time::sleep(Duration::from_millis(d)).await;
                Ok(Frame::data(Bytes::from_static(b"x")))
            })
            .chain(futures_util::stream::pending());
        http_body_util::StreamBody::new(frames.boxed())
    }

    fn streamed(delays: &[u64]) -> Body {
        let metrics = crate::telemetry::metrics::Metrics::new();
        let meter = Meter {
            bytes: Default::default(),
            in_flight: metrics.in_flight(),
            permits: Vec::new(),
            upstream: None,
        };
        let log = AccessLog::new(http::HeaderValue::from_static("test"), http::Method::GET);
        stream(paced(delays), Duration::from_millis(100), log, meter)
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_counts_from_the_last_frame_not_from_the_start() {
        // Five frames 80 ms apart: 400 ms in all, never 100 ms without one.
        let mut body = streamed(&[80, 80, 80, 80, 80]);
        for _ in 0..5 {
            let frame = body.frame().await.expect("a frame").expect("no timeout between frames");
            assert_eq!(frame.into_data().unwrap(), "x");
        }
        let started = Instant::now();
        let end = body.frame().await.expect("the stall ends the body");
        assert!(end.is_err(), "a stall is an error, never the end of the body");
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_sends_is_cut_off_too() {
        let started = Instant::now();
        assert!(streamed(&[]).frame().await.expect("cut off").is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }
}

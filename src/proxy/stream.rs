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
        idle: Box::pin(tokio::time::sleep(idle_timeout)),
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
    /// Fires when the pause is over; reset on every frame.
    idle: Pin<Box<Sleep>>,
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
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
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
            Poll::Pending => match this.idle.as_mut().poll(cx) {
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

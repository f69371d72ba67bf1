//! `slow_body`: dribble the response body at a fixed byte rate.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::kind::{ActsOn, Call, Kind};
use tokio::time::Sleep;

/// Sends whatever response the call gets (the stub's or an error's) at
/// `bytes_per_second`, in about twenty chunks a second. The `Content-Length`
/// is the full length, so a client that gives up early sees a short body.
///
/// ```
/// # #[derive(serde::Deserialize)] struct File { faults: Vec<fault_server::Fault> }
/// let file: File = toml::from_str(r#"
/// [[faults]]
/// slow_body = { bytes_per_second = 100 }
/// "#).unwrap();
/// # assert!(!file.faults.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowBodyFault {
    /// The byte rate; at least 1.
    pub bytes_per_second: u64,
}

impl Kind for SlowBodyFault {
    const ACTS_ON: ActsOn = ActsOn::Http;

    fn validate(&self) -> Result<(), String> {
        if self.bytes_per_second == 0 {
            return Err("bytes_per_second must be at least 1".into());
        }
        Ok(())
    }

    /// The first `slow_body` drawn wins.
    fn decide<R: Rng + ?Sized>(&self, call: &mut Call<'_, R>) -> bool {
        call.decision.slow_body.get_or_insert(self.bytes_per_second);
        true
    }
}

/// A body that releases `chunk` bytes every `chunk / rate` seconds.
#[derive(Debug)]
pub(crate) struct SlowBody {
    rest: Bytes,
    chunk: usize,
    interval: Duration,
    next: Pin<Box<Sleep>>,
}

impl SlowBody {
    pub(crate) fn new(body: Bytes, bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1);
        let chunk = (rate / 20).max(1);
        let interval = Duration::from_secs_f64(chunk as f64 / rate as f64);
        SlowBody {
            rest: body,
            chunk: usize::try_from(chunk).unwrap_or(usize::MAX),
            interval,
            next: Box::pin(tokio::time::sleep(interval)),
        }
    }

    /// Takes more bytes to dribble once the last are out, keeping the pace
    /// (a proxied body arrives frame by frame).
    pub(crate) fn refill(&mut self, more: Bytes) {
        debug_assert!(self.rest.is_empty());
        self.rest = more;
    }

    pub(crate) fn len(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        if self.next.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let take = self.chunk.min(self.rest.len());
        let frame = self.rest.split_to(take);
        let deadline = self
            .next
            .deadline()
            .checked_add(self.interval)
            .unwrap_or_else(|| tokio::time::Instant::now() + crate::fault::MAX_DURATION * 365);
        self.next.as_mut().reset(deadline);
        Poll::Ready(Some(Frame::data(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::time::Instant;

    struct Wrapper(SlowBody);
    impl http_body::Body for Wrapper {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_frame(cx).map(|f| f.map(Ok))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_takes_its_length_over_its_rate() {
        let start = Instant::now();
        let body = Wrapper(SlowBody::new(Bytes::from(vec![b'x'; 100]), 50));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 100);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_millis(2010),
            "{took:?}"
        );
    }
}

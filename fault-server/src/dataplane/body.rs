//! A response body that journals the call's departure when it has been sent,
//! or that the client went away if it is dropped half sent.
//!
//! Some answers have no body on the wire whatever the stub holds: the answer
//! to a `HEAD`, and a 204 or 304 (RFC 9110 §6.4.1). hyper writes their head
//! (with the `Content-Length` the body would have had, for `HEAD`) and drops
//! the body unpolled; such a body is built [`JournalBody::head_only`], so its
//! drop journals `responded`, not `client_gone`.
//!
//! A proxy's answer streams its upstream's body through frame by frame
//! ([`JournalBody::upstream`]); an upstream that fails mid-body cuts the
//! client's answer off and is journaled `upstream_error`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::dependency::CallGuard;
use crate::fault::SlowBody;
use crate::journal::CallOutcome;

pub(crate) struct JournalBody {
    content: Content,
    guard: Option<CallGuard>,
    /// The protocol sends no body: the head going out is the whole answer.
    head_only: bool,
    /// How the call is journaled once the body is out.
    ends_as: CallOutcome,
}

enum Content {
    Whole(Option<Bytes>),
    Slow(SlowBody),
    /// An upstream's body, passed on as it comes (through `slow` when a
    /// `slow_body` fault applies); `done` once it has ended.
    Upstream {
        body: Incoming,
        slow: Option<SlowBody>,
        rate: Option<u64>,
        done: bool,
    },
}

/// Why a body stopped: an upstream's error, passed on to hyper, which cuts
/// the client's answer off.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl JournalBody {
    pub(crate) fn new(body: Bytes, bytes_per_second: Option<u64>, guard: CallGuard) -> Self {
        let content = match bytes_per_second {
            Some(rate) if !body.is_empty() => Content::Slow(SlowBody::new(body, rate)),
            _ => Content::Whole(Some(body).filter(|b| !b.is_empty())),
        };
        JournalBody {
            content,
            guard: Some(guard),
            head_only: false,
            ends_as: CallOutcome::Responded,
        }
    }

    /// An upstream's body, passed on as it arrives (dribbled at
    /// `bytes_per_second` when given).
    pub(crate) fn upstream(
        body: Incoming,
        bytes_per_second: Option<u64>,
        guard: CallGuard,
    ) -> Self {
        JournalBody {
            content: Content::Upstream {
                body,
                slow: None,
                rate: bytes_per_second,
                done: false,
            },
            guard: Some(guard),
            head_only: false,
            ends_as: CallOutcome::Responded,
        }
    }

    /// Journals the call with `outcome` once the body is out (a 502 the
    /// proxy answered for an upstream that failed).
    pub(crate) fn ending_as(mut self, outcome: CallOutcome) -> Self {
        self.ends_as = outcome;
        self
    }

    /// Marks an answer that carries no body on the wire (see the module docs).
    pub(crate) fn head_only(mut self) -> Self {
        self.head_only = true;
        self
    }

    fn remaining(&self) -> usize {
        match &self.content {
            Content::Whole(body) => body.as_ref().map_or(0, Bytes::len),
            Content::Slow(slow) => slow.len(),
            Content::Upstream { .. } => 0,
        }
    }

    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Content::Upstream {
            body,
            slow,
            rate,
            done,
        } = &mut self.content
        else {
            return Poll::Ready(None);
        };
        loop {
            if let Some(pending) = slow.as_mut().filter(|s| !s.is_end_stream()) {
                return pending.poll_frame(cx).map(|f| f.map(Ok));
            }
            if *done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    *done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(error))) => {
                    *done = true;
                    if let Some(guard) = self.guard.take() {
                        guard.finish(CallOutcome::UpstreamError);
                    }
                    return Poll::Ready(Some(Err(Box::new(error))));
                }
                Poll::Ready(Some(Ok(frame))) => match (*rate, frame.into_data()) {
                    (Some(rate), Ok(data)) => match slow {
                        Some(pending) => pending.refill(data),
                        None => *slow = Some(SlowBody::new(data, rate)),
                    },
                    (None, Ok(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    (_, Err(frame)) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
    }
}

impl Body for JournalBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let frame = match &mut this.content {
            Content::Whole(body) => body.take().map(Frame::data).map(Ok),
            Content::Slow(slow) => match slow.poll_frame(cx) {
                Poll::Ready(frame) => frame.map(Ok),
                Poll::Pending => return Poll::Pending,
            },
            Content::Upstream { .. } => match this.poll_upstream(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => return Poll::Pending,
            },
        };
        if frame.is_none() {
            if let Some(guard) = this.guard.take() {
                guard.finish(this.ends_as);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.content {
            Content::Whole(body) => body.is_none(),
            Content::Slow(slow) => slow.is_end_stream(),
            Content::Upstream {
                body, slow, done, ..
            } => {
                (*done || body.is_end_stream()) && slow.as_ref().is_none_or(SlowBody::is_end_stream)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            // What the upstream says is left (its Content-Length, when it
            // sent one), plus what is still being dribbled.
            Content::Upstream { body, slow, .. } => {
                let pending = slow.as_ref().map_or(0, |s| s.len() as u64);
                let upstream = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(upstream.lower() + pending);
                if let Some(upper) = upstream.upper() {
                    hint.set_upper(upper + pending);
                }
                hint
            }
            _ => SizeHint::with_exact(self.remaining() as u64),
        }
    }
}

impl Drop for JournalBody {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            // hyper drops a body it has written in full without polling it to
            // the end, and a head-only answer's body unpolled once its head is
            // written; any other dropped with bytes left was cut off by the client.
            let outcome = if self.head_only || self.is_end_stream() {
                self.ends_as
            } else {
                CallOutcome::ClientGone
            };
            guard.finish(outcome);
        }
    }
}

//! A response body that journals the call's departure when it has been sent,
//! or that the client went away if it is dropped half sent.
//!
//! Some answers have no body on the wire whatever the stub holds: the answer
//! to a `HEAD`, and a 204 or 304 (RFC 9110 §6.4.1). hyper writes their head
//! (with the `Content-Length` the body would have had, for `HEAD`) and drops
//! the body unpolled; such a body is built [`JournalBody::head_only`], so its
//! drop journals `responded`, not `client_gone`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::dependency::CallGuard;
use crate::fault::SlowBody;
use crate::journal::Outcome;

pub(crate) struct JournalBody {
    content: Content,
    guard: Option<CallGuard>,
    /// The protocol sends no body: the head going out is the whole answer.
    head_only: bool,
}

enum Content {
    Whole(Option<Bytes>),
    Slow(SlowBody),
}

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
        }
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
        }
    }
}

impl Body for JournalBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let frame = match &mut this.content {
            Content::Whole(body) => body.take().map(Frame::data),
            Content::Slow(slow) => match slow.poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => return Poll::Pending,
            },
        };
        if frame.is_none() {
            if let Some(guard) = this.guard.take() {
                guard.finish(Outcome::Responded);
            }
        }
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        match &self.content {
            Content::Whole(body) => body.is_none(),
            Content::Slow(slow) => slow.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining() as u64)
    }
}

impl Drop for JournalBody {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            // hyper drops a body it has written in full without polling it to
            // the end, and a head-only answer's body unpolled once its head is
            // written; any other dropped with bytes left was cut off by the client.
            let outcome = if self.head_only || self.is_end_stream() {
                Outcome::Responded
            } else {
                Outcome::ClientGone
            };
            guard.finish(outcome);
        }
    }
}

//! Where lines for a client go: [`FrontSink`], one ordered outbox per client (stdout for the
//! stdio client; a bounded in-memory stream for an HTTP response or SSE stream; nowhere for
//! the one-shot commands). A leaf, so that every layer — child readers answering calls, the
//! session registry, the front — can hold a client's sink.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::net::unix::pipe;

use crate::outbox::{Outbox, Overflow};

mod stream;
use stream::StreamQueue;
pub use stream::{StreamReader, STREAM_LIMIT};

/// Bytes queued toward the client before producers wait (backpressure on children's readers).
const FRONT_LIMIT: usize = 16 * 1024 * 1024;

/// Where lines for the client go. Every writer — responses, progress, list_changed — shares
/// this one ordered outbox, so frames never interleave. A sink without a client (the `tools`
/// and `health` commands) drops what it is given.
#[derive(Clone)]
pub struct FrontSink(Option<Arc<Outbox>>, Option<Arc<StreamQueue>>);

impl std::fmt::Debug for FrontSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (&self.0, &self.1) {
            (Some(_), _) => "FrontSink(client)",
            (None, Some(_)) => "FrontSink(stream)",
            (None, None) => "FrontSink(discard)",
        })
    }
}

impl FrontSink {
    /// The gateway's stdout. A pipe (what MCP clients give us) is written directly; anything
    /// else (a terminal, a file) goes through a pipe to a thread that copies it out.
    pub fn stdout() -> std::io::Result<Self> {
        let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
        let pipe = match pipe::Sender::from_owned_fd(fd) {
            Ok(pipe) => pipe,
            Err(_) => {
                let (mut reader, writer) = std::io::pipe()?;
                std::thread::Builder::new()
                    .name("stdout-copy".into())
                    .spawn(move || {
                        let _ = std::io::copy(&mut reader, &mut std::io::stdout().lock());
                    })?;
                pipe::Sender::from_owned_fd(OwnedFd::from(writer))?
            }
        };
        Ok(Self::pipe(pipe))
    }

    /// A client reached through the write end of any pipe, with the same outbox, limit and
    /// backpressure as stdout: how a session other than the process's own stdio gets its own
    /// output (the in-process multi-session tests open several on one gateway this way).
    pub fn pipe(pipe: pipe::Sender) -> Self {
        Self(Some(Outbox::new(pipe, FRONT_LIMIT, Overflow::Accept)), None)
    }

    /// A bounded in-memory stream (an HTTP response or SSE stream) and its reading end. It
    /// never makes a producer wait: a stream whose reader falls `limit` bytes behind, or is
    /// gone, is closed and what is pushed to it afterwards dropped — a slow or vanished HTTP
    /// client must not hold up a child's reader, which serves every other session too.
    pub fn stream(limit: usize) -> (Self, StreamReader) {
        let queue = StreamQueue::new(limit, false);
        (Self(None, Some(queue.clone())), StreamReader::new(queue))
    }

    /// Like [`FrontSink::stream`], for a response that delivers every message to the client
    /// (an SSE stream), so that requests to the client may travel on it
    /// ([`FrontSink::carries_requests`]).
    pub fn event_stream(limit: usize) -> (Self, StreamReader) {
        let queue = StreamQueue::new(limit, false);
        queue.set_carries_requests();
        (Self(None, Some(queue.clone())), StreamReader::new(queue))
    }

    /// Whether a request to the client sent here reaches it: a pipe, or an open event
    /// stream (not a JSON response, which carries only its answer; not the discarding sink).
    pub fn carries_requests(&self) -> bool {
        match (&self.0, &self.1) {
            (Some(_), _) => true,
            (None, Some(q)) => q.carries_requests() && !q.is_closed(),
            (None, None) => false,
        }
    }

    /// Like [`FrontSink::stream`], but over the limit a new line is dropped and the stream
    /// stays open: a session's own stream (notifications), which its client may open later.
    pub fn stream_lossy(limit: usize) -> (Self, StreamReader) {
        let queue = StreamQueue::new(limit, true);
        (Self(None, Some(queue.clone())), StreamReader::new(queue))
    }

    /// Ends a stream at once (its reader gets what is queued, then the end). Pipes are
    /// closed by [`FrontSink::close_after_drain`].
    pub fn close_now(&self) {
        if let Some(q) = &self.1 {
            q.close();
        }
    }

    /// A sink for runs without a client.
    pub fn discard() -> Self {
        Self(None, None)
    }

    /// Whether what is sent here still reaches someone (a stream not closed; pipes and the
    /// discarding sink always count as open).
    pub fn is_open(&self) -> bool {
        self.1.as_ref().is_none_or(|q| !q.is_closed())
    }

    /// Queues one complete line (with its `\n`) and writes it; waits while the client is far
    /// behind. A closed front drops it: the client is gone.
    pub async fn send(&self, line: Vec<u8>) {
        if let Some(out) = &self.0 {
            let _ = out.send(&line).await;
        } else if let Some(q) = &self.1 {
            q.push(line);
            q.wake();
        }
    }

    /// Queues one complete line without writing it yet (see [`FrontSink::flush`]). Never
    /// drops it: producers keep the queue bounded by waiting in [`FrontSink::ready`].
    pub fn push(&self, line: &[u8]) {
        if let Some(out) = &self.0 {
            let _ = out.push(line);
        } else if let Some(q) = &self.1 {
            q.push(line.to_vec());
        }
    }

    /// Queues one line written in place by `write` (no intermediate buffer).
    pub fn push_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        if let Some(out) = &self.0 {
            let _ = out.push_with(None, 0, write);
        } else if let Some(q) = &self.1 {
            let mut line = Vec::new();
            write(&mut line);
            q.push(line);
        }
    }

    /// Writes what is queued.
    pub fn flush(&self) {
        if let Some(out) = &self.0 {
            out.flush();
        } else if let Some(q) = &self.1 {
            q.wake();
        }
    }

    /// Waits until the client has room (backpressure).
    pub async fn ready(&self) {
        if let Some(out) = &self.0 {
            out.ready().await;
        }
    }

    /// Total time the client has been far behind (its outbox over the limit, producers held in
    /// [`FrontSink::ready`]): time that call timeouts do not count.
    pub fn stalled(&self) -> std::time::Duration {
        self.0
            .as_ref()
            .map_or(std::time::Duration::ZERO, |out| out.stalled())
    }

    /// Whether two sinks are the same client.
    pub fn same(&self, other: &FrontSink) -> bool {
        match (&self.0, &other.0, &self.1, &other.1) {
            (Some(a), Some(b), _, _) => Arc::ptr_eq(a, b),
            (None, None, Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None, None, None) => true,
            _ => false,
        }
    }

    /// Writes what is left (bounded by the caller), then closes the client's stdout.
    pub async fn close_after_drain(&self) {
        if let Some(out) = &self.0 {
            out.close_after_drain().await;
        } else if let Some(q) = &self.1 {
            q.close();
        }
    }
}

//! Serving MCP over the gateway's own stdin/stdout.

use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncRead, BufReader};
use tokio::net::unix::pipe;

use super::session::Session;
use crate::error::GatewayError;
use crate::hub::Gateway;
use crate::jsonrpc;
use crate::jsonrpc::framing::{Frame, LineReader};

/// Longest message accepted from the client.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Why serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed stdin.
    Eof,
    /// The gateway was told to stop (signal).
    Shutdown,
}

/// Serves the client on stdin until EOF or shutdown. Output goes through the gateway's
/// front sink (see [`crate::front::FrontSink::stdout`]), which outlives this loop so that
/// answers to calls cut short by shutdown still reach the client; call
/// [`finish`] after the gateway has shut down.
pub async fn serve(gw: &Gateway) -> Ended {
    let front = gw.front();
    let session = Session::new(gw.clone(), front.clone(), "stdio");
    let input: Box<dyn AsyncRead + Unpin + Send> = match pipe_stdin() {
        Some(pipe) => Box::new(pipe),
        None => Box::new(tokio::io::stdin()),
    };
    let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, input), MAX_LINE);
    let mut buf = Vec::with_capacity(4096);
    let shutdown = gw.shutdown_token();
    // Created once: a fresh `cancelled()` future per message would register (and drop) a
    // waiter on the token each time, on the hot path.
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        let frame = tokio::select! {
            biased;
            frame = reader.next(&mut buf) => frame,
            _ = &mut stop => return Ended::Shutdown,
        };
        match frame {
            Ok(Frame::Line) => session.handle(&buf).await,
            Ok(Frame::Oversized(n) | Frame::Flood(n)) => {
                tracing::warn!(bytes = n, "dropped an oversized message from the client");
                let err = GatewayError::InvalidRequest(format!(
                    "message of {n} bytes exceeds the {MAX_LINE}-byte limit"
                ));
                front
                    .send(jsonrpc::error_line("null", &err.to_wire()))
                    .await;
            }
            Ok(Frame::Eof) => return Ended::Eof,
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed");
                return Ended::Eof;
            }
        }
        // Nothing more buffered: the burst is over, write what it produced (one write per
        // child touched, instead of one per call).
        if !reader.has_buffered() {
            session.flush();
            // A client far behind on reading its answers gets no more of its requests taken in
            // until it catches up: the backlog waits in its own stdin pipe. Taking it in would
            // only pile up calls at the children, whose answers cannot be delivered anyway —
            // and end as errors blamed on them (overloaded, timed out).
            tokio::select! {
                biased;
                _ = front.ready() => {}
                _ = &mut stop => return Ended::Shutdown,
            }
        }
    }
}

/// Writes what is still queued for the client (bounded: a client that stopped reading cannot
/// hold the gateway open), then closes stdout.
pub async fn finish(gw: &Gateway) {
    let _ = tokio::time::timeout(Duration::from_secs(2), gw.front().close_after_drain()).await;
}

/// stdin as an epoll-driven pipe when it is one (what MCP clients give us). tokio's own
/// `stdin()` reads on a blocking thread: a thread hand-off per read on the hot path.
fn pipe_stdin() -> Option<pipe::Receiver> {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    pipe::Receiver::from_file(std::fs::File::from(fd)).ok()
}

//! Serving MCP over the gateway's own stdin/stdout.

use std::time::Duration;

use std::os::fd::AsFd;

use tokio::io::{AsyncRead, BufReader};
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use super::session::Session;
use super::{write_loop, FrontQueue};
use crate::app::Gateway;
use crate::error::GatewayError;
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

/// The front's writer, kept running through shutdown so that answers to calls cut short still
/// reach the client.
pub struct Writer {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Writer {
    /// Writes whatever is still queued, then stops (bounded: a client that stopped reading
    /// cannot hold the gateway open).
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Serves the client on stdin/stdout until EOF or shutdown.
pub async fn serve(gw: &Gateway, queue: FrontQueue) -> (Ended, Writer) {
    let stop = CancellationToken::new();
    let task = match pipe_stdout() {
        Some(out) => tokio::spawn(write_loop(queue, out, stop.clone())),
        None => tokio::spawn(write_loop(queue, tokio::io::stdout(), stop.clone())),
    };
    let session = Session::new(gw.clone(), gw.front());
    let input: Box<dyn AsyncRead + Unpin + Send> = match pipe_stdin() {
        Some(pipe) => Box::new(pipe),
        None => Box::new(tokio::io::stdin()),
    };
    let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, input), MAX_LINE);
    let mut buf = Vec::with_capacity(4096);
    let shutdown = gw.shutdown_token();
    let ended = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ended::Shutdown,
            frame = reader.next(&mut buf) => match frame {
                Ok(Frame::Line) => session.handle(&buf).await,
                Ok(Frame::Oversized(n) | Frame::Flood(n)) => {
                    tracing::warn!(bytes = n, "dropped an oversized message from the client");
                    let err = GatewayError::InvalidRequest(format!("message of {n} bytes exceeds the {MAX_LINE}-byte limit"));
                    gw.front().send(jsonrpc::error_line("null", &err.to_wire())).await;
                }
                Ok(Frame::Eof) => break Ended::Eof,
                Err(e) => {
                    tracing::warn!(error = %e, "reading stdin failed");
                    break Ended::Eof;
                }
            },
        }
    };
    (ended, Writer { task, stop })
}

/// stdin as an epoll-driven pipe when it is one (what MCP clients give us). tokio's own
/// `stdin()` reads on a blocking thread: a thread hand-off per read on the hot path.
fn pipe_stdin() -> Option<pipe::Receiver> {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    pipe::Receiver::from_file(std::fs::File::from(fd)).ok()
}

/// stdout as an epoll-driven pipe when it is one; see [`pipe_stdin`].
fn pipe_stdout() -> Option<pipe::Sender> {
    let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    pipe::Sender::from_file(std::fs::File::from(fd)).ok()
}

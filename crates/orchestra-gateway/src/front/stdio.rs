//! Serving MCP over the gateway's own stdin/stdout.

use std::time::Duration;

use tokio::io::BufReader;
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
    let task = tokio::spawn(write_loop(queue, tokio::io::stdout(), stop.clone()));
    let session = Session::new(gw.clone(), gw.front());
    let mut reader = LineReader::new(
        BufReader::with_capacity(64 * 1024, tokio::io::stdin()),
        MAX_LINE,
    );
    let mut buf = Vec::with_capacity(4096);
    let shutdown = gw.shutdown_token();
    let ended = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ended::Shutdown,
            frame = reader.next(&mut buf) => match frame {
                Ok(Frame::Line) => session.handle(&buf).await,
                Ok(Frame::Oversized(n)) => {
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

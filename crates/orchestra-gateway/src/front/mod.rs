//! The MCP server the client sees: its output queue ([`FrontSink`]), the stdio session
//! ([`stdio`]) and the method dispatch ([`session`]).

pub mod session;
pub mod stdio;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Lines queued toward the client before producers wait (backpressure on children's readers).
const FRONT_QUEUE: usize = 4096;

/// Where lines for the client go. Every writer — responses, progress, list_changed — shares
/// this one ordered queue, so frames never interleave.
#[derive(Clone, Debug)]
pub struct FrontSink(mpsc::Sender<Vec<u8>>);

/// The receiving end, drained by the front's writer.
pub type FrontQueue = mpsc::Receiver<Vec<u8>>;

impl FrontSink {
    pub fn channel() -> (Self, FrontQueue) {
        let (tx, rx) = mpsc::channel(FRONT_QUEUE);
        (Self(tx), rx)
    }

    /// Queues one complete line (with its `\n`). A closed front drops it: the client is gone.
    pub async fn send(&self, line: Vec<u8>) {
        let _ = self.0.send(line).await;
    }
}

/// Writes queued lines to `out`, flushing when the queue runs dry. After `stop`, writes what
/// is already queued and ends.
pub async fn write_loop(mut rx: FrontQueue, out: impl AsyncWrite + Unpin, stop: CancellationToken) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    loop {
        let line = tokio::select! {
            line = rx.recv() => match line { Some(l) => l, None => break },
            _ = stop.cancelled() => {
                rx.close();
                while let Some(l) = rx.recv().await {
                    if out.write_all(&l).await.is_err() {
                        return;
                    }
                }
                break;
            }
        };
        if out.write_all(&line).await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if out.write_all(&more).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
}

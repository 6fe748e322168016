//! Draining a child's stderr: an undrained pipe blocks the child once its buffer fills, so every
//! child's stderr is read to the end, logged at debug and kept as a bounded tail for health.
//! The tail is shown to the client and the model, so secrets are redacted as lines enter it;
//! the debug log keeps the raw line (it goes to the operator's own terminal).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncRead;

use crate::jsonrpc::framing::{Frame, LineReader};
use crate::redact::Redactor;

/// Lines kept for the health report.
const TAIL_LINES: usize = 20;
/// A single stderr line is cut to this many bytes in the tail.
const LINE_CAP: usize = 400;

/// The last lines a child wrote to stderr, secrets redacted.
#[derive(Debug, Default)]
pub struct StderrTail {
    lines: Mutex<VecDeque<String>>,
    redactor: Arc<Redactor>,
}

impl StderrTail {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self {
            lines: Mutex::default(),
            redactor,
        }
    }

    /// Keeps `line`, redacted and cut to `LINE_CAP` bytes ([`Redactor::redact_capped`]:
    /// redacting first, as a cut could leave the start of a secret that no longer matches,
    /// but only of what can be shown, as lines may be 64 KiB).
    pub fn push(&self, line: &str) {
        let cut = self.redactor.redact_capped(line, LINE_CAP);
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(cut);
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn last(&self) -> Option<String> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .back()
            .cloned()
    }

    pub fn clear(&self) {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Reads `stderr` to EOF; never blocks the child, whatever it writes.
pub async fn drain(server: &str, stderr: impl AsyncRead + Unpin, tail: &StderrTail) {
    let mut reader = LineReader::new(
        tokio::io::BufReader::with_capacity(16 * 1024, stderr),
        64 * 1024,
    );
    let mut buf = Vec::new();
    loop {
        match reader.next(&mut buf).await {
            Ok(Frame::Line) => {
                let line = String::from_utf8_lossy(&buf);
                tracing::debug!(server, stderr = %line, "child stderr");
                tail.push(&line);
            }
            Ok(Frame::Oversized(n) | Frame::Flood(n)) => {
                tail.push(&format!("<{n} bytes without a newline>"))
            }
            Ok(Frame::Eof) | Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted_before_they_are_kept() {
        let tail = StderrTail::new(Arc::new(Redactor::builder().secret("c0nf1gured").build()));
        tail.push("API_KEY=abc123def456 and c0nf1gured");
        tail.push(&format!("{} token=abcdef123456", "x".repeat(LINE_CAP - 10)));
        let lines = tail.snapshot();
        assert_eq!(lines[0], "API_KEY=[REDACTED] and [REDACTED]");
        assert!(!lines[1].contains("abcdef"), "{}", lines[1]);
        assert_eq!(tail.last().as_deref(), Some(lines[1].as_str()));
    }
}

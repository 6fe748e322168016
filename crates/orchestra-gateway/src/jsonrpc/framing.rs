//! Newline-delimited framing with a length cap: a line longer than the cap is discarded up to
//! its newline instead of growing memory without bound. Its first [`PREFIX`] bytes are kept,
//! so that the caller can still tell what it was (a response's `id` usually comes first).

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Skipping more than this many times the cap without a newline is a flood, not a long line.
const FLOOD_FACTOR: usize = 4;

/// How much of a skipped line is kept: enough for a JSON-RPC envelope's leading members
/// (`jsonrpc`, `id`, `method`), never the payload.
pub const PREFIX: usize = 4096;

/// One framing event.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line (without the newline; a trailing `\r` is removed too).
    Line,
    /// A line over the cap was skipped; carries its length (so far, at end of stream). The
    /// buffer holds its first [`PREFIX`] bytes.
    Oversized(usize),
    /// End of stream.
    Eof,
    /// Far more than the cap without any newline: the stream is not line-framed any more.
    Flood(usize),
}

/// Reads newline-delimited frames into a reusable buffer.
pub struct LineReader<R> {
    inner: R,
    max_len: usize,
    /// What [`LineReader::has_buffered`] found in the buffer, so `next` does not scan it twice.
    scan: Scan,
}

/// The newline search over the current buffer, done ahead of `next`.
#[derive(Debug, Clone, Copy)]
enum Scan {
    Unknown,
    /// The next line ends at this offset of the buffer.
    LineEndsAt(usize),
    /// The first this many bytes of the buffer hold no newline.
    NoNewlineIn(usize),
}

impl<R: tokio::io::AsyncRead> LineReader<tokio::io::BufReader<R>> {
    /// Whether a complete line is already buffered. When it is not, the next `next()` reads
    /// from the source and may wait, so this is the moment to flush what the lines so far
    /// produced (one write per burst instead of one per message). A partial line does not
    /// count: a peer streaming long lines without pause would otherwise never end a burst.
    pub fn has_buffered(&mut self) -> bool {
        let buffered = self.inner.buffer();
        match memchr(buffered) {
            Some(i) => {
                self.scan = Scan::LineEndsAt(i);
                true
            }
            None => {
                self.scan = Scan::NoNewlineIn(buffered.len());
                false
            }
        }
    }
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        Self {
            inner,
            max_len,
            scan: Scan::Unknown,
        }
    }

    /// Reads the next frame into `buf` (cleared first).
    pub async fn next(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Frame> {
        buf.clear();
        let mut skipped = 0usize;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(if skipped > 0 {
                    Frame::Oversized(skipped)
                } else if buf.is_empty() {
                    Frame::Eof
                } else {
                    // A last line without newline still counts.
                    trim_cr(buf);
                    Frame::Line
                });
            }
            // The buffer is unchanged since `has_buffered` scanned it (a non-empty buffer is
            // not refilled), so its result stands.
            let found = match std::mem::replace(&mut self.scan, Scan::Unknown) {
                Scan::LineEndsAt(i) if i < available.len() => Some(i),
                Scan::NoNewlineIn(n) if n <= available.len() => {
                    memchr(&available[n..]).map(|i| i + n)
                }
                _ => memchr(available),
            };
            let (chunk, found) = match found {
                Some(i) => (&available[..i], Some(i)),
                None => (available, None),
            };
            if skipped > 0 || buf.len() + chunk.len() > self.max_len {
                if skipped == 0 {
                    // First bytes over the cap: keep the line's prefix, give the rest back.
                    skipped = buf.len();
                    buf.truncate(PREFIX);
                    buf.shrink_to(PREFIX);
                }
                let wanted = PREFIX.saturating_sub(buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk[..wanted]);
                skipped += chunk.len();
                if found.is_none() && skipped > self.max_len.saturating_mul(FLOOD_FACTOR) {
                    let consumed = available.len();
                    self.inner.consume(consumed);
                    return Ok(Frame::Flood(skipped));
                }
            } else {
                buf.extend_from_slice(chunk);
            }
            let consumed = found.map_or(available.len(), |i| i + 1);
            self.inner.consume(consumed);
            if found.is_some() {
                if skipped > 0 {
                    return Ok(Frame::Oversized(skipped));
                }
                trim_cr(buf);
                return Ok(Frame::Line);
            }
        }
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n')
}

fn trim_cr(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_and_skips_oversized_ones() {
        let input: &[u8] = b"short\r\nthis line is far too long\nok\nlast";
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(4, input), 10);
        let mut buf = Vec::new();
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"short");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Oversized(25));
        assert_eq!(buf, b"this line is far too long", "the prefix is kept");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"ok");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"last");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Eof);
    }

    #[tokio::test]
    async fn only_a_prefix_of_an_oversized_line_is_kept() {
        let mut input = b"{\"id\":7,\"result\":\"".to_vec();
        input.resize(3 * PREFIX, b'x');
        input.extend_from_slice(b"\"}\nnext\n");
        let mut r = LineReader::new(
            tokio::io::BufReader::with_capacity(1000, input.as_slice()),
            PREFIX + 10,
        );
        let mut buf = Vec::new();
        assert_eq!(
            r.next(&mut buf).await.unwrap(),
            Frame::Oversized(3 * PREFIX + 2)
        );
        assert_eq!(buf.len(), PREFIX);
        assert!(buf.starts_with(b"{\"id\":7,"));
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"next");
    }

    #[tokio::test]
    async fn only_a_complete_line_counts_as_buffered() {
        let input: &[u8] = b"one\ntwo\nthr";
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(64, input), 100);
        let mut buf = Vec::new();
        assert!(!r.has_buffered(), "nothing read yet");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert!(r.has_buffered(), "\"two\" is complete");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"two");
        assert!(
            !r.has_buffered(),
            "\"thr\" is only part of a line: the burst ends"
        );
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Line);
        assert_eq!(buf, b"thr");
        assert_eq!(r.next(&mut buf).await.unwrap(), Frame::Eof);
    }

    #[tokio::test]
    async fn endless_bytes_without_newline_are_a_flood() {
        let input = vec![b'x'; 1000];
        let mut r = LineReader::new(
            tokio::io::BufReader::with_capacity(16, input.as_slice()),
            10,
        );
        let mut buf = Vec::new();
        assert!(matches!(r.next(&mut buf).await.unwrap(), Frame::Flood(n) if n > 40));
    }
}

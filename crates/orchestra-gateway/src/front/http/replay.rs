//! SSE framing and resumption: every event a stream sends gets an `id:` (`<stream>-<seq>`,
//! the stream part random per session), and the last events of each stream are kept
//! ([`KEEP_EVENTS`] / [`KEEP_BYTES`]) so that a client whose connection broke can GET again
//! with `Last-Event-ID` and be sent what followed — on the session's own stream, and on a
//! POST's stream cut before its answer (the stream keeps collecting while no one reads it).
//!
//! An id older than what is kept: the replay starts at the oldest event kept (the gap is
//! logged). Refusing instead would leave a client that lost its connection with no way to get
//! the answer it is waiting for, which is always the newest event and so always kept.

use std::collections::VecDeque;

use axum::body::Bytes;

use crate::jsonrpc::{Envelope, Kind};
use crate::sink::StreamReader;

/// Events kept per stream for replay.
pub const KEEP_EVENTS: usize = 256;
/// Bytes kept per stream for replay (the newest event is kept whatever its size).
pub const KEEP_BYTES: usize = 1024 * 1024;

/// Whether `line` is the answer to the request with id `id` (raw JSON text: the gateway
/// answers with the client's id exactly as written).
pub fn is_answer(line: &[u8], id: &str) -> bool {
    Envelope::parse(line).is_ok_and(|e| e.kind() == Kind::Response && e.reply_id() == id)
}

pub fn trim_newline(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    line
}

/// `"<stream>-<seq>"` → its parts.
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (stream, seq) = id.trim().rsplit_once('-')?;
    Some((stream, seq.parse().ok()?))
}

/// One SSE stream: numbered events from its queue, the last ones kept.
pub struct Resumable {
    stream: String,
    reader: StreamReader,
    next_seq: u64,
    kept: VecDeque<(u64, Bytes)>,
    kept_bytes: usize,
    /// The request whose answer ends the stream (a POST's); `None`: the session's stream.
    answer_to: Option<String>,
    finished: bool,
}

impl Resumable {
    pub fn new(stream: String, reader: StreamReader, answer_to: Option<String>) -> Self {
        Self {
            stream,
            reader,
            next_seq: 1,
            kept: VecDeque::new(),
            kept_bytes: 0,
            answer_to,
            finished: false,
        }
    }

    /// The next event, kept for replay; `None` once the stream is over. Cancel-safe (a
    /// line is taken from the queue and kept in one step).
    pub async fn next(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let Some(line) = self.reader.next().await else {
            self.finished = true;
            return None;
        };
        if self
            .answer_to
            .as_deref()
            .is_some_and(|id| is_answer(&line, id))
        {
            self.finished = true;
        }
        Some(self.keep(line))
    }

    fn keep(&mut self, line: Vec<u8>) -> Bytes {
        let seq = self.next_seq;
        self.next_seq += 1;
        let data = trim_newline(line);
        let mut event = Vec::with_capacity(data.len() + self.stream.len() + 48);
        event.extend_from_slice(b"id: ");
        event.extend_from_slice(self.stream.as_bytes());
        event.extend_from_slice(format!("-{seq}\nevent: message\ndata: ").as_bytes());
        event.extend_from_slice(&data);
        event.extend_from_slice(b"\n\n");
        let event = Bytes::from(event);
        self.kept_bytes += event.len();
        self.kept.push_back((seq, event.clone()));
        while self.kept.len() > KEEP_EVENTS || (self.kept_bytes > KEEP_BYTES && self.kept.len() > 1)
        {
            if let Some((_, old)) = self.kept.pop_front() {
                self.kept_bytes -= old.len();
            }
        }
        event
    }

    /// The kept events after `seq`, oldest first.
    pub fn after(&self, seq: u64) -> Vec<Bytes> {
        if let Some((oldest, _)) = self.kept.front() {
            if *oldest > seq + 1 {
                tracing::info!(
                    stream = %self.stream,
                    asked_after = seq,
                    oldest_kept = oldest,
                    "SSE resumption from an event no longer kept: replaying from the oldest kept"
                );
            }
        }
        self.kept
            .iter()
            .filter(|(s, _)| *s > seq)
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FrontSink;

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[tokio::test]
    async fn events_are_numbered_kept_and_end_at_the_answer() {
        let (sink, reader) = FrontSink::stream(1 << 20);
        let mut r = Resumable::new("abc".into(), reader, Some("7".into()));
        sink.send(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#.to_vec())
            .await;
        sink.send(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#.to_vec())
            .await;
        let one = r.next().await.unwrap();
        assert!(text(&one).starts_with("id: abc-1\nevent: message\ndata: {"));
        let two = r.next().await.unwrap();
        assert!(text(&two).starts_with("id: abc-2\n"));
        assert!(r.is_finished());
        assert_eq!(r.next().await, None);
        assert_eq!(r.after(1), vec![two.clone()]);
        assert_eq!(r.after(0).len(), 2);
        assert!(r.after(2).is_empty());
    }

    #[tokio::test]
    async fn only_the_last_events_are_kept() {
        let (sink, reader) = FrontSink::stream(1 << 24);
        let mut r = Resumable::new("s".into(), reader, None);
        for i in 0..(KEEP_EVENTS + 10) {
            sink.send(format!("{{\"n\":{i}}}").into_bytes()).await;
            r.next().await.unwrap();
        }
        let kept = r.after(0);
        assert_eq!(kept.len(), KEEP_EVENTS);
        assert!(text(&kept[0]).starts_with("id: s-11\n"));
    }

    #[test]
    fn event_ids_parse() {
        assert_eq!(parse_event_id("a1b2-17"), Some(("a1b2", 17)));
        assert_eq!(parse_event_id("nodash"), None);
        assert_eq!(parse_event_id("a-x"), None);
    }
}

//! A `text/event-stream` parser (the WHATWG "server-sent events" format) for a remote child's
//! streams: bytes in, whole events out. Bounded: an event larger than the cap is dropped (and
//! counted) instead of growing memory, as the stdio reader does with an oversized line.

/// One dispatched event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `event:` (empty means "message").
    pub kind: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` of this event, if it had one.
    pub id: Option<String>,
}

impl Event {
    /// Whether it carries a JSON-RPC message (the default event type).
    pub fn is_message(&self) -> bool {
        self.kind.is_empty() || self.kind == "message"
    }
}

/// Incremental parser; feed it chunks as they arrive.
pub(crate) struct Parser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The event being built.
    event: Event,
    /// Whether the current event has any field at all (a blank line alone dispatches nothing).
    started: bool,
    /// Whether it has a `data` line yet (the next one is joined with `\n`; an empty first
    /// `data:` counts).
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Largest event kept, in bytes of data.
    cap: usize,
    /// The current event went over the cap: it is skipped up to its end.
    skipping: bool,
    /// Events dropped for size.
    pub dropped: u64,
}

impl Parser {
    pub fn new(cap: usize) -> Self {
        Self {
            line: Vec::new(),
            event: Event::default(),
            started: false,
            has_data: false,
            after_cr: false,
            cap,
            skipping: false,
            dropped: 0,
        }
    }

    /// Parses `chunk`, appending each complete event to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.on_line(&line, out);
                }
                _ if self.skipping => {}
                _ => {
                    if self.line.len() + self.event.data.len() > self.cap {
                        self.skipping = true;
                        self.line.clear();
                    } else {
                        self.line.push(b);
                    }
                }
            }
        }
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.skipping) {
                self.dropped += 1;
            } else if std::mem::take(&mut self.started) {
                out.push(event);
            }
            self.started = false;
            self.has_data = false;
            return;
        }
        if self.skipping || line[0] == b':' {
            return; // a comment (keep-alive), or the rest of an oversized event
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "event" => self.event.kind = value.to_owned(),
            "data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
            }
            "id" if !value.contains('\0') => self.event.id = Some(value.to_owned()),
            _ => return, // `retry` and unknown fields are ignored
        }
        self.started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&str]) -> Vec<Event> {
        let mut p = Parser::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            p.push(c.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn events_split_anywhere_are_put_together() {
        let all = "event: endpoint\ndata: /message?sessionId=1\n\nid: 7\ndata: {\"a\":1}\n\n";
        for cut in 0..all.len() {
            let got = parse(&[&all[..cut], &all[cut..]]);
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].kind, "endpoint");
            assert_eq!(got[0].data, "/message?sessionId=1");
            assert!(got[1].is_message());
            assert_eq!(got[1].id.as_deref(), Some("7"));
            assert_eq!(got[1].data, "{\"a\":1}");
        }
    }

    #[test]
    fn crlf_comments_and_multi_line_data() {
        let got = parse(&[": keep-alive\r\n\r\ndata: a\r\ndata: b\r", "\n\r\n"]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].data, "a\nb");
    }

    #[test]
    fn an_oversized_event_is_dropped_and_the_next_one_kept() {
        let mut p = Parser::new(8);
        let mut out = Vec::new();
        p.push(b"data: 0123456789abcdef\n\ndata: ok\n\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "ok");
        assert_eq!(p.dropped, 1);
    }
}

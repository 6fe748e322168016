//! A validating JSON scanner for the hot path: walks one object's members, hands out each
//! value as the slice of text it occupies, and never decodes or allocates (but for a member
//! name written with escapes, which no real client does).
//!
//! It accepts exactly what serde_json accepts when it reads an object into a struct whose
//! fields are `&RawValue`s (the parser this replaced, kept in `differential.rs` as the test
//! oracle): the JSON grammar, whitespace being space, tab, CR and LF; raw control characters
//! in strings rejected; `\u` escapes checked for four hex digits but — inside skipped values —
//! not for surrogate pairing, as serde_json does when it only skips. Nesting inside a value
//! is unbounded, as in serde_json's skipping, which keeps its own stack on the heap: ours is
//! a bit per level, inline for the first 512 levels.
//!
//! Failing is the rare path: a step returns the zero-sized [`Failed`] and the scanner keeps
//! what went wrong ([`Scanner::error`]), so that the common path passes no error values around.

use std::borrow::Cow;

/// Where and why a text is not JSON (or not the object the caller expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    pub what: &'static str,
    /// Byte offset of the offending byte (or the end of the text).
    pub at: usize,
}

/// A step failed; the scanner's [`Scanner::error`] says why.
#[derive(Debug)]
pub struct Failed;

impl ScanError {
    /// In serde_json's wording, with its "line L column C" position (1-based, in bytes).
    pub fn into_serde(self, text: &str) -> serde_json::Error {
        let before = &text.as_bytes()[..self.at.min(text.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = self.at - line_start + 1;
        serde::de::Error::custom(format_args!("{} at line {line} column {column}", self.what))
    }
}

/// A member name as written, escapes not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// With its quotes, so that the rare escaped name can be decoded by serde_json itself.
    quoted: &'a str,
    escaped: bool,
}

impl<'a> Key<'a> {
    /// The name's bytes between the quotes, when it has no escapes (else `None`: decode it).
    pub fn plain(&self) -> Option<&'a [u8]> {
        let bytes = self.quoted.as_bytes();
        (!self.escaped).then(|| &bytes[1..bytes.len() - 1])
    }
}

/// A cursor over one JSON text.
pub struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Whether the object being walked has yielded a member yet (a `,` is due before the next).
    after_member: bool,
    /// The text is known to be valid JSON: values are skipped without checking them again.
    valid: bool,
    error: ScanError,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            after_member: false,
            valid: false,
            error: ScanError { what: "", at: 0 },
        }
    }

    /// A scanner over text this module has already validated (a value it handed out): its
    /// values are skipped by counting brackets and finding string ends, without checking
    /// their grammar again. On text that is not valid JSON it still neither panics nor
    /// reads out of bounds; it just may not notice.
    pub fn valid(text: &'a str) -> Self {
        Self {
            valid: true,
            ..Self::new(text)
        }
    }

    /// What made the last step fail.
    pub fn error(&self) -> ScanError {
        self.error
    }

    /// Fails at the current position.
    #[cold]
    #[inline(never)]
    pub fn fail<T>(&mut self, what: &'static str) -> Result<T, Failed> {
        self.fail_at(what, self.pos)
    }

    #[cold]
    #[inline(never)]
    pub fn fail_at<T>(&mut self, what: &'static str, at: usize) -> Result<T, Failed> {
        self.error = ScanError { what, at };
        Err(Failed)
    }

    /// Enters the top-level object.
    pub fn begin_object(&mut self) -> Result<(), Failed> {
        self.whitespace();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.after_member = false;
                Ok(())
            }
            None => self.fail("EOF while parsing a value"),
            Some(_) => self.fail("expected an object"),
        }
    }

    /// The next member's name, positioned before its value (which must then be read with
    /// [`Scanner::value`]); `None` after the closing brace.
    pub fn next_key(&mut self) -> Result<Option<Key<'a>>, Failed> {
        self.whitespace();
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if self.after_member => {
                self.pos += 1;
                self.whitespace();
            }
            Some(_) if self.after_member => return self.fail("expected `,` or `}`"),
            Some(_) => {}
            None => return self.fail("EOF while parsing an object"),
        }
        self.after_member = true;
        self.key().map(Some)
    }

    /// The name, borrowed unless it has escapes. Fails as serde_json does on an escape that
    /// is no character (a lone surrogate): it decodes every member name it matches.
    pub fn decode(&mut self, key: Key<'a>) -> Result<Cow<'a, str>, Failed> {
        if !key.escaped {
            return Ok(Cow::Borrowed(&key.quoted[1..key.quoted.len() - 1]));
        }
        match serde_json::from_str::<String>(key.quoted) {
            Ok(name) => Ok(Cow::Owned(name)),
            Err(_) => self.fail("lone surrogate in hex escape"),
        }
    }

    /// The value the cursor is at, skipped and validated; its text without surrounding space.
    pub fn value(&mut self) -> Result<&'a str, Failed> {
        self.whitespace();
        let start = self.pos;
        if self.valid {
            self.pos = skip_valid(self.bytes, self.pos);
        } else if !self.scalar()? {
            self.nested()?;
        }
        match self.text.get(start..self.pos) {
            Some(value) if self.pos > start => Ok(value),
            _ => self.fail("expected value"),
        }
    }

    /// Checks that only whitespace follows.
    pub fn end(&mut self) -> Result<(), Failed> {
        self.whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("trailing characters"),
        }
    }

    /// The current position.
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// A member name and its colon; the cursor is at the name's opening quote (or should be).
    fn key(&mut self) -> Result<Key<'a>, Failed> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return self.fail("key must be a string"),
            None => return self.fail("EOF while parsing an object"),
        }
        let escaped = self.string()?;
        let quoted = &self.text[start..self.pos];
        self.whitespace();
        match self.peek() {
            Some(b':') => self.pos += 1,
            Some(_) => return self.fail("expected `:`"),
            None => return self.fail("EOF while parsing an object"),
        }
        Ok(Key { quoted, escaped })
    }

    /// Skips the string, number or literal at the cursor; `false` (nothing consumed) at an
    /// opening bracket.
    #[inline]
    fn scalar(&mut self) -> Result<bool, Failed> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| true),
            Some(b'-' | b'0'..=b'9') => self.number().map(|()| true),
            Some(b'n') => self.literal(b"null").map(|()| true),
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| true),
            Some(b'[' | b'{') => Ok(false),
            Some(_) => self.fail("expected value"),
            None => self.fail("EOF while parsing a value"),
        }
    }

    /// Skips the array or object at the cursor, nested ones included, without recursion:
    /// `open` remembers, a bit per level, which brackets are open.
    fn nested(&mut self) -> Result<(), Failed> {
        let mut open = Nesting::default();
        loop {
            // A value is due, and it is not a scalar: it opens a bracket.
            if !self.scalar()? {
                let bracket = self.bytes[self.pos];
                self.pos += 1;
                self.whitespace();
                match (bracket, self.peek()) {
                    (b'[', Some(b']')) | (b'{', Some(b'}')) => self.pos += 1,
                    (b'[', _) => {
                        open.push(Bracket::Array);
                        self.whitespace();
                        continue;
                    }
                    _ => {
                        self.key()?;
                        self.whitespace();
                        open.push(Bracket::Object);
                        continue;
                    }
                }
            }
            // A value ended: close what it ends, until a comma asks for the next one.
            loop {
                let Some(inner) = open.top() else {
                    return Ok(());
                };
                self.whitespace();
                match (self.peek(), inner) {
                    (Some(b','), Bracket::Array) => {
                        self.pos += 1;
                        self.whitespace();
                        break;
                    }
                    (Some(b','), Bracket::Object) => {
                        self.pos += 1;
                        self.whitespace();
                        self.key()?;
                        self.whitespace();
                        break;
                    }
                    (Some(b']'), Bracket::Array) | (Some(b'}'), Bracket::Object) => {
                        self.pos += 1;
                        open.pop();
                    }
                    (Some(_), Bracket::Array) => return self.fail("expected `,` or `]`"),
                    (Some(_), Bracket::Object) => return self.fail("expected `,` or `}`"),
                    (None, Bracket::Array) => return self.fail("EOF while parsing a list"),
                    (None, Bracket::Object) => return self.fail("EOF while parsing an object"),
                }
            }
        }
    }

    /// Skips a string (the cursor at its opening quote); says whether it has escapes.
    fn string(&mut self) -> Result<bool, Failed> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.pos += special_offset(&self.bytes[self.pos..]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => {
                    return self
                        .fail("control character (\\u0000-\\u001F) found while parsing a string")
                }
                None => return self.fail("EOF while parsing a string"),
            }
        }
    }

    /// Skips an escape (the cursor at its backslash).
    fn escape(&mut self) -> Result<(), Failed> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
            Some(b'u') => {
                self.pos += 1;
                match self.bytes.get(self.pos..self.pos + 4) {
                    Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => self.pos += 4,
                    Some(_) => return self.fail("invalid escape"),
                    None => {
                        self.pos = self.bytes.len();
                        return self.fail("EOF while parsing a string");
                    }
                }
            }
            Some(_) => return self.fail("invalid escape"),
            None => return self.fail("EOF while parsing a string"),
        }
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Failed> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    // No leading zeros.
                    return self.fail("invalid number");
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn some_digits(&mut self) -> Result<(), Failed> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            _ => self.fail("invalid number"),
        }
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Failed> {
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else if word.starts_with(rest) {
            self.pos += rest.len();
            self.fail("EOF while parsing a value")
        } else {
            self.fail("expected ident")
        }
    }
}

/// The offset of the first `"`, `\` or control character in `bytes` (or its length): eight
/// bytes at a time, as serde_json does, since string contents are most of a message.
#[inline]
fn special_offset(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // The classic "has a byte less than n" tricks: a byte's high bit ends up set in the
        // mask where that byte is below 0x20, a quote or a backslash (bytes >= 0x80, the
        // UTF-8 of non-ASCII text, never match). A borrow can set bits only above the first
        // real match, so the lowest set bit is exact.
        let (q, b) = (w ^ (ONES * u64::from(b'"')), w ^ (ONES * u64::from(b'\\')));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = q.wrapping_sub(ONES) & !q;
        let backslash = b.wrapping_sub(ONES) & !b;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

/// The end of the value at `pos` in valid JSON: brackets counted, strings jumped over, a
/// scalar ended by what may follow it.
fn skip_valid(bytes: &[u8], mut pos: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&b) = bytes.get(pos) {
        match b {
            b'"' => pos = string_end(bytes, pos + 1),
            b'[' | b'{' => {
                depth += 1;
                pos += 1;
                continue;
            }
            b']' | b'}' if depth == 0 => break,
            b']' | b'}' => {
                depth -= 1;
                pos += 1;
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => break,
            // A scalar's bytes, or separators inside brackets.
            _ => {
                pos += 1;
                continue;
            }
        }
        if depth == 0 {
            break;
        }
    }
    pos
}

/// Just past the closing quote of the (valid) string whose contents start at `pos`.
fn string_end(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        pos += special_offset(bytes.get(pos..).unwrap_or_default());
        match bytes.get(pos) {
            Some(b'"') => return pos + 1,
            Some(b'\\') => pos += 2,
            Some(_) => pos += 1,
            None => return bytes.len(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bracket {
    Array,
    Object,
}

/// The open brackets, a bit each: 512 levels inline, more (as serde_json allows) on the heap.
#[derive(Default)]
struct Nesting {
    depth: usize,
    inline: [u64; 8],
    spill: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, bracket: Bracket) {
        let (word, bit) = (self.depth / 64, self.depth % 64);
        let slot = match self.inline.get_mut(word) {
            Some(slot) => slot,
            None => {
                let i = word - self.inline.len();
                if i == self.spill.len() {
                    self.spill.push(0);
                }
                &mut self.spill[i]
            }
        };
        match bracket {
            Bracket::Object => *slot |= 1 << bit,
            Bracket::Array => *slot &= !(1 << bit),
        }
        self.depth += 1;
    }

    fn top(&self) -> Option<Bracket> {
        let d = self.depth.checked_sub(1)?;
        let (word, bit) = (d / 64, d % 64);
        let slot = match self.inline.get(word) {
            Some(slot) => *slot,
            None => self.spill[word - self.inline.len()],
        };
        Some(if slot >> bit & 1 == 1 {
            Bracket::Object
        } else {
            Bracket::Array
        })
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Result<&str, ScanError> {
        let mut s = Scanner::new(text);
        let v = s.value().and_then(|v| s.end().map(|()| v));
        v.map_err(|Failed| s.error())
    }

    #[test]
    fn finds_special_bytes_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    // Non-ASCII and near-miss bytes around it must not match.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff][i % 8];
                    }
                    bytes[at] = special;
                    assert_eq!(special_offset(&bytes), at, "{len} {at} {special}");
                }
            }
            assert_eq!(special_offset(&vec![0xe9; len]), len);
        }
    }

    #[test]
    fn skips_values_and_returns_their_text() {
        assert_eq!(
            skip(r#"  {"a" : [1, -2.5e+3, "x\"\u00e9"], "b":{}} "#).unwrap(),
            r#"{"a" : [1, -2.5e+3, "x\"\u00e9"], "b":{}}"#
        );
        for ok in [
            "0", "-0", "1.0", "1E5", "1e-5", "[]", "{}", "[[]]", "[{}]", "\"\"", "true", "false",
            "null",
        ] {
            assert_eq!(skip(ok), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "01",
            "-",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "[1,]",
            "{\"a\":1,}",
            "[",
            "{",
            "{\"a\"}",
            "{1:2}",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"\u{1}\"",
            "nul",
            "nulx",
            "tru",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "1 2",
            "\u{c}1",
        ] {
            assert!(skip(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nesting_is_unbounded_as_in_serde_json() {
        for depth in [1, 63, 64, 65, 512, 513, 2000] {
            let text = format!("{}1{}", "[{\"k\":".repeat(depth), "}]".repeat(depth));
            assert_eq!(skip(&text), Ok(text.as_str()), "{depth}");
            let unclosed = &text[..text.len() - 1];
            assert!(skip(unclosed).is_err());
            let crossed = format!("{}1{}", "[{\"k\":".repeat(depth), "]}".repeat(depth));
            assert!(skip(&crossed).is_err());
        }
    }
}

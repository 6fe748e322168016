//! JSON-RPC 2.0 as the gateway needs it: borrow a line, look only at the envelope, and write
//! lines by splicing raw JSON (ids, params and results pass through without being re-encoded).
//!
//! This is the hot path's vocabulary: a forwarded call is parsed once (the envelope) and the
//! child's answer is parsed once (the envelope); arguments and results are never decoded.

#[cfg(test)]
mod differential;
pub mod framing;
pub mod peek;
mod scan;

use std::borrow::Cow;
use std::fmt::Write as _;

use scan::{Failed, Scanner};

/// The parts of a JSON-RPC message the gateway routes on; everything else stays raw.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The id as written, `null` included (a request with `"id": null` is not a notification).
    pub id: Option<Raw<'a>>,
    /// `None` when absent — or not a string (see `defect`).
    pub method: Option<Cow<'a, str>>,
    /// `None` when absent or `null`, as for `result` and `error`.
    pub params: Option<Raw<'a>>,
    pub result: Option<Raw<'a>>,
    pub error: Option<Raw<'a>>,
    /// Why the message is not valid JSON-RPC 2.0 although it parsed, if it is not.
    pub defect: Option<Defect>,
}

/// A JSON value exactly as written in the line (no surrounding whitespace), checked to be
/// valid JSON: ids, params and results are passed on as text and never decoded. Only the
/// parsers here make one, so holding a `Raw` means holding valid JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

/// What makes a well-formed JSON object an invalid JSON-RPC message (answered with -32600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// `id` is present but neither a string nor an integer (MCP: "string or integer").
    Id,
    /// `jsonrpc` is missing or not `"2.0"`.
    Version,
    /// `method` is present but not a string.
    Method,
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Defect::Id => "\"id\" must be a string or an integer",
            Defect::Version => "\"jsonrpc\" must be \"2.0\"",
            Defect::Method => "\"method\" must be a string",
        })
    }
}

/// What kind of message an envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

/// The envelope's members, by index (see [`member`]).
const JSONRPC: usize = 0;
const ID: usize = 1;
const METHOD: usize = 2;
const PARAMS: usize = 3;
const RESULT: usize = 4;
const ERROR: usize = 5;
/// A member given twice is an error (as serde's derived structs made it): which of the two
/// to route on would be a guess, and the child could guess the other way.
const DUPLICATE: [&str; 6] = [
    "duplicate field `jsonrpc`",
    "duplicate field `id`",
    "duplicate field `method`",
    "duplicate field `params`",
    "duplicate field `result`",
    "duplicate field `error`",
];

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }

    /// `None` for `null`: JSON-RPC reads a `null` params, result or error as absent.
    fn unless_null(text: &'a str) -> Option<Self> {
        (text != "null").then_some(Raw(text))
    }
}

impl std::fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl<'a> Envelope<'a> {
    /// Parses one line. Batches (`[...]`) and non-objects are errors: batching was removed from
    /// MCP in 2025-06-18. An object that is not valid JSON-RPC (wrong `jsonrpc`, a method that
    /// is not a string, an id that is neither string nor integer) parses, with its `defect`
    /// set, so that the answer can carry the id when it is readable.
    ///
    /// The whole line is validated as JSON, but only the envelope's members are looked at:
    /// values are skipped by [`scan`], not decoded (this runs twice per forwarded call).
    pub fn parse(line: &'a [u8]) -> Result<Envelope<'a>, serde_json::Error> {
        if line.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde::de::Error::custom(
                "a JSON-RPC message must be a JSON object",
            ));
        }
        // Validated once for the whole line, so that every value is a `&str` slice of it.
        let text = std::str::from_utf8(line)
            .map_err(|e| serde::de::Error::custom(format!("invalid UTF-8: {e}")))?;
        let mut s = Scanner::new(text);
        Self::scan(&mut s).map_err(|Failed| s.error().into_serde(text))
    }

    fn scan(s: &mut Scanner<'a>) -> Result<Envelope<'a>, Failed> {
        s.begin_object()?;
        // Each member's text as written (`null` included), once seen.
        let mut members: [Option<&'a str>; 6] = [None; 6];
        while let Some(key) = s.next_key()? {
            let at = s.pos();
            let member = match key.plain() {
                Some(name) => member(name),
                None => member(s.decode(key)?.as_bytes()),
            };
            let value = s.value()?;
            if let Some(i) = member {
                if members[i].replace(value).is_some() {
                    return s.fail_at(DUPLICATE[i], at);
                }
            }
        }
        s.end()?;
        let id = members[ID].map(Raw);
        let method = members[METHOD].and_then(Raw::unless_null).map(as_str);
        let defect = if id.is_some_and(|id| !is_valid_id(id.0)) {
            Some(Defect::Id)
        } else if members[JSONRPC]
            .and_then(Raw::unless_null)
            .is_none_or(|v| v.0 != "\"2.0\"" && as_str(v).as_deref() != Some("2.0"))
        {
            Some(Defect::Version)
        } else if matches!(method, Some(None)) {
            Some(Defect::Method)
        } else {
            None
        };
        Ok(Envelope {
            id,
            method: method.flatten(),
            params: members[PARAMS].and_then(Raw::unless_null),
            result: members[RESULT].and_then(Raw::unless_null),
            error: members[ERROR].and_then(Raw::unless_null),
            defect,
        })
    }

    pub fn kind(&self) -> Kind {
        if self.defect == Some(Defect::Id) {
            return Kind::Invalid;
        }
        match (self.id.is_some(), self.method.is_some()) {
            (true, true) => Kind::Request,
            (false, true) => Kind::Notification,
            (true, false) if self.result.is_some() || self.error.is_some() => Kind::Response,
            _ => Kind::Invalid,
        }
    }

    /// The id to answer with: the message's own when it is a valid id, else `null` (JSON-RPC:
    /// an id that cannot be determined is answered as null).
    pub fn reply_id(&self) -> &'a str {
        match self.id {
            Some(id) if self.defect != Some(Defect::Id) => id.0,
            _ => "null",
        }
    }
}

/// Which envelope member a name is, if any.
fn member(name: &[u8]) -> Option<usize> {
    match name {
        b"jsonrpc" => Some(JSONRPC),
        b"id" => Some(ID),
        b"method" => Some(METHOD),
        b"params" => Some(PARAMS),
        b"result" => Some(RESULT),
        b"error" => Some(ERROR),
        _ => None,
    }
}

/// A string value, borrowed when it has no escapes (every method name in practice); `None`
/// when `raw` is not a string (or has an escape that is no character, a lone surrogate).
fn as_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let text = raw.0;
    match text.as_bytes() {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => {
            Some(Cow::Borrowed(&text[1..text.len() - 1]))
        }
        [b'"', ..] => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        _ => None,
    }
}

/// MCP request ids are strings or integers (no null, no fraction, no exponent).
fn is_valid_id(raw: &str) -> bool {
    match raw.as_bytes() {
        [b'"', ..] => true,
        [b'-' | b'0'..=b'9', ..] => !raw.contains(['.', 'e', 'E']),
        _ => false,
    }
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}\n`
pub fn response_line(id: &str, result: &str) -> Vec<u8> {
    answer_line(id, b"result", result)
}

/// `{"jsonrpc":"2.0","id":<id>,"error":<error>}\n` with `error` already serialized.
pub fn error_line(id: &str, error: &str) -> Vec<u8> {
    answer_line(id, b"error", error)
}

fn answer_line(id: &str, member: &[u8], payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + id.len() + payload.len());
    write_answer(&mut out, id, member, payload);
    out
}

/// Appends `{"jsonrpc":"2.0","id":<id>,"<member>":<payload>}\n` to `out`.
pub fn write_answer(out: &mut Vec<u8>, id: &str, member: &[u8], payload: &str) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(member);
    out.extend_from_slice(b"\":");
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// `{"jsonrpc":"2.0","id":<n>,"method":"<method>","params":<params>}\n`
pub fn request_line(id: u64, method: &str, params: Option<&str>) -> Vec<u8> {
    message_line(Some(id), method, params)
}

/// `{"jsonrpc":"2.0","method":"<method>","params":<params>}\n`
pub fn notification_line(method: &str, params: Option<&str>) -> Vec<u8> {
    message_line(None, method, params)
}

fn message_line(id: Option<u64>, method: &str, params: Option<&str>) -> Vec<u8> {
    let mut out = String::with_capacity(64 + params.map_or(0, str::len));
    out.push_str("{\"jsonrpc\":\"2.0\",");
    if let Some(id) = id {
        let _ = write!(out, "\"id\":{id},");
    }
    out.push_str("\"method\":");
    push_json_str(&mut out, method);
    if let Some(p) = params {
        out.push_str(",\"params\":");
        out.push_str(p);
    }
    out.push_str("}\n");
    out.into_bytes()
}

/// Appends `s` as a JSON string literal (no allocation when nothing needs escaping, which is
/// every tool name and almost every key).
fn push_json_bytes(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(serde_json::Value::from(s).to_string().as_bytes());
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaper is correct for every input; strings here are short.
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// The params of a `tools/call`: the tool name decoded, every other member kept raw and in
/// order, so the call can be re-addressed to the child without touching the arguments.
pub struct CallParams<'a> {
    pub name: Cow<'a, str>,
    pub rest: Vec<(Cow<'a, str>, Raw<'a>)>,
}

impl<'a> CallParams<'a> {
    /// Reads `params` (JSON text: the envelope's params, or a call kept to be sent again).
    /// The whole text must be a JSON object; the first member that is wrong for a call (a
    /// name that is not a string, arguments that are not an object) is the error. Member
    /// names may repeat: the last `name` wins, the others are passed on as written.
    pub fn parse(params: &'a str) -> Result<Self, String> {
        Self::read_from(Scanner::new(params), params)
    }

    /// The call's `arguments` (raw JSON), if it has any.
    pub fn arguments(&self) -> Option<&'a str> {
        self.rest
            .iter()
            .rev()
            .find(|(k, _)| k == "arguments")
            .map(|(_, v)| v.0)
    }

    /// [`CallParams::parse`] for params the envelope's parse has validated already: the hot
    /// path, which skips the arguments without checking them a second time.
    pub fn from_raw(params: Raw<'a>) -> Result<Self, String> {
        Self::read_from(Scanner::valid(params.0), params.0)
    }

    fn read_from(mut s: Scanner<'a>, params: &'a str) -> Result<Self, String> {
        let mut call = Self {
            name: Cow::Borrowed(""),
            rest: Vec::new(),
        };
        let (named, wrong) = call.read(&mut s).map_err(|Failed| {
            let e = s.error().into_serde(params);
            format!("params must be an object: {e}")
        })?;
        match wrong {
            Some(wrong) => Err(wrong),
            None if !named => Err("params.name is required".to_owned()),
            None => Ok(call),
        }
    }

    /// Reads the members into `self`; says whether there was a name, and what (first) was
    /// wrong for a call — to be reported only once the whole object is known to be JSON, as
    /// a syntax error anywhere wins.
    fn read(&mut self, s: &mut Scanner<'a>) -> Result<(bool, Option<String>), Failed> {
        s.begin_object()?;
        let mut named = false;
        let mut wrong = None;
        while let Some(key) = s.next_key()? {
            let k = s.decode(key)?;
            let v = s.value()?;
            if wrong.is_some() {
                continue;
            }
            if k == "name" {
                match as_str(Raw(v)) {
                    Some(name) => (self.name, named) = (name, true),
                    None => wrong = Some("params.name must be a string".to_owned()),
                }
            } else if k == "arguments" && !v.starts_with('{') {
                // Forwarded as is, never decoded: one byte tells an object from anything else.
                wrong = Some(format!(
                    "params.arguments must be an object, not {}",
                    json_type(v)
                ));
            } else {
                self.rest.push((k, Raw(v)));
            }
        }
        s.end()?;
        Ok((named, wrong))
    }

    /// Appends the request line to `out` in one pass: the hot path writes it straight into
    /// the child's outbox, the only copy of the arguments.
    /// `meta`, when given, is written as the call's `_meta` instead of the client's (the
    /// progress token re-addressed for the child).
    pub fn write_request(&self, out: &mut Vec<u8>, id: u64, tool: &str, meta: Option<&str>) {
        use std::io::Write as _;
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        let _ = write!(out, "{id}");
        out.extend_from_slice(b",\"method\":\"tools/call\",\"params\":{\"name\":");
        push_json_bytes(out, tool);
        for (k, v) in &self.rest {
            out.push(b',');
            push_json_bytes(out, k);
            out.push(b':');
            match meta {
                Some(meta) if k == "_meta" => out.extend_from_slice(meta.as_bytes()),
                _ => out.extend_from_slice(v.get().as_bytes()),
            }
        }
        out.extend_from_slice(b"}}\n");
    }
}

/// The JSON type of a raw value, for error messages.
fn json_type(raw: &str) -> &'static str {
    match raw.trim_ascii_start().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let k = |s: &str| Envelope::parse(s.as_bytes()).unwrap().kind();
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Kind::Request
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Kind::Notification
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Kind::Response
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}"#),
            Kind::Response
        );
        assert_eq!(k(r#"{"jsonrpc":"2.0","id":1}"#), Kind::Invalid);
        assert!(Envelope::parse(b"[1,2]").is_err());
    }

    #[test]
    fn invalid_envelopes_keep_a_readable_id() {
        let env = |s: &'static str| Envelope::parse(s.as_bytes()).unwrap();
        let bad_method = env(r#"{"jsonrpc":"2.0","id":6,"method":42}"#);
        assert_eq!(bad_method.defect, Some(Defect::Method));
        assert_eq!(bad_method.reply_id(), "6");
        assert_eq!(bad_method.kind(), Kind::Invalid);

        let no_version = env(r#"{"id":"a","method":"ping"}"#);
        assert_eq!(no_version.defect, Some(Defect::Version));
        assert_eq!(no_version.reply_id(), r#""a""#);
        let old_version = env(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#);
        assert_eq!(old_version.defect, Some(Defect::Version));
        let numeric_version = env(r#"{"jsonrpc":2.0,"id":7,"method":"ping"}"#);
        assert_eq!(numeric_version.defect, Some(Defect::Version));
        let escaped = env(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
        assert_eq!(escaped.defect, None);
        assert_eq!(escaped.method.as_deref(), Some("ping"));

        // An id of null is not a notification; it is an invalid request, answered as null.
        let null_id = env(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
        assert_eq!(null_id.defect, Some(Defect::Id));
        assert_eq!(null_id.kind(), Kind::Invalid);
        assert_eq!(null_id.reply_id(), "null");
        for id in [r#"{"a":1}"#, "[1]", "1.5", "1e3", "true"] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let e = Envelope::parse(line.as_bytes()).unwrap();
            assert_eq!((e.defect, e.reply_id()), (Some(Defect::Id), "null"), "{id}");
        }
        for id in ["0", "-3", "12345678901234567890", r#""x""#] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let e = Envelope::parse(line.as_bytes()).unwrap();
            assert_eq!((e.defect, e.kind()), (None, Kind::Request), "{id}");
            assert_eq!(e.reply_id(), id);
        }
        // A method name without escapes is borrowed from the line, not copied.
        assert!(matches!(
            env(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#).method,
            Some(Cow::Borrowed("tools/call"))
        ));
    }

    #[test]
    fn call_arguments_must_be_an_object() {
        for (args, what) in [
            ("\"x\"", "a string"),
            ("[1]", "an array"),
            ("null", "null"),
            ("3", "a number"),
        ] {
            let text = format!(r#"{{"name":"t","arguments":{args}}}"#);
            let raw = text.as_str();
            let err = CallParams::parse(raw).err().unwrap();
            assert_eq!(
                err,
                format!("params.arguments must be an object, not {what}")
            );
        }
        let raw = r#"{"name":"t","arguments": {"a":1}}"#;
        assert!(CallParams::parse(raw).is_ok());
        let raw = r#"{"name":"t"}"#;
        assert!(CallParams::parse(raw).is_ok(), "arguments may be left out");
    }

    #[test]
    fn request_lines_are_written_in_one_pass() {
        let raw = r#"{"name":"files__read","arguments":{"path":"a \"b\""},"_meta":{"progressToken":"t"}}"#;
        let mut line = Vec::new();
        CallParams::parse(raw)
            .unwrap()
            .write_request(&mut line, 42, "read", None);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "read");
        assert_eq!(v["params"]["arguments"]["path"], "a \"b\"");
        assert_eq!(v["params"]["_meta"]["progressToken"], "t");
        assert_eq!(line.last(), Some(&b'\n'));
        let mut odd = Vec::new();
        CallParams::parse(raw)
            .unwrap()
            .write_request(&mut odd, 1, "we\"ird", None);
        let v: serde_json::Value = serde_json::from_slice(&odd).unwrap();
        assert_eq!(v["params"]["name"], "we\"ird");
    }

    #[test]
    fn call_params_errors_are_clear() {
        let raw = r#"{"arguments":{}}"#;
        assert_eq!(
            CallParams::parse(raw).err().unwrap(),
            "params.name is required"
        );
        let raw = r#"[1]"#;
        assert!(CallParams::parse(raw).is_err());
    }

    #[test]
    fn lines_splice_raw_json() {
        assert_eq!(
            response_line("\"x\"", "{}"),
            b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}\n"
        );
        assert_eq!(
            request_line(3, "tools/call", Some("{\"name\":\"a\"}")),
            b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"a\"}}\n"
        );
    }
}

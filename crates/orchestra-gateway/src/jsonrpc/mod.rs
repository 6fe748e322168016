//! JSON-RPC 2.0 as the gateway needs it: borrow a line, look only at the envelope, and write
//! lines by splicing raw JSON (ids, params and results pass through without being re-encoded).
//!
//! This is the hot path's vocabulary: a forwarded call is parsed once (the envelope) and the
//! child's answer is parsed once (the envelope); arguments and results are never decoded.

pub mod framing;
pub mod peek;

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The parts of a JSON-RPC message the gateway routes on; everything else stays raw.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The id as written, `null` included (a request with `"id": null` is not a notification).
    pub id: Option<&'a RawValue>,
    /// `None` when absent — or not a string (see `defect`).
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
    /// Why the message is not valid JSON-RPC 2.0 although it parsed, if it is not.
    pub defect: Option<Defect>,
}

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

/// The members as they come, every value raw; [`Envelope::parse`] checks and decodes them.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    /// `Option` would read `null` as absent; an id of `null` must stay visible.
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

impl<'a> Envelope<'a> {
    /// Parses one line. Batches (`[...]`) and non-objects are errors: batching was removed from
    /// MCP in 2025-06-18. An object that is not valid JSON-RPC (wrong `jsonrpc`, a method that
    /// is not a string, an id that is neither string nor integer) parses, with its `defect`
    /// set, so that the answer can carry the id when it is readable.
    pub fn parse(line: &'a [u8]) -> Result<Envelope<'a>, serde_json::Error> {
        // serde would read a struct from an array too (by position): only objects are messages.
        if line.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde::de::Error::custom(
                "a JSON-RPC message must be a JSON object",
            ));
        }
        // Validate UTF-8 once for the whole line: `from_slice` would re-validate every raw
        // value it borrows (params, result) on the hot path.
        let text = std::str::from_utf8(line)
            .map_err(|e| serde::de::Error::custom(format!("invalid UTF-8: {e}")))?;
        let m: Members<'a> = serde_json::from_str(text)?;
        let method = m.method.map(as_str);
        let defect = if m.id.is_some_and(|id| !is_valid_id(id)) {
            Some(Defect::Id)
        } else if m
            .jsonrpc
            .is_none_or(|v| v.get() != "\"2.0\"" && as_str(v).as_deref() != Some("2.0"))
        {
            Some(Defect::Version)
        } else if matches!(method, Some(None)) {
            Some(Defect::Method)
        } else {
            None
        };
        Ok(Envelope {
            id: m.id,
            method: method.flatten(),
            params: m.params,
            result: m.result,
            error: m.error,
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
            Some(id) if self.defect != Some(Defect::Id) => id.get(),
            _ => "null",
        }
    }
}

/// A string value, borrowed when it has no escapes (every method name in practice); `None`
/// when `raw` is not a string.
fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes() {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => {
            Some(Cow::Borrowed(&text[1..text.len() - 1]))
        }
        [b'"', ..] => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        _ => None,
    }
}

/// MCP request ids are strings or integers (no null, no fraction, no exponent).
fn is_valid_id(raw: &RawValue) -> bool {
    match raw.get().as_bytes() {
        [b'"', ..] => true,
        [b'-' | b'0'..=b'9', ..] => !raw.get().contains(['.', 'e', 'E']),
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
    pub rest: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> CallParams<'a> {
    pub fn parse(params: &'a RawValue) -> Result<Self, String> {
        let members: Vec<(Cow<'a, str>, &'a RawValue)> =
            serde_json::from_str::<RawMembers<'a>>(params.get())
                .map_err(|e| format!("params must be an object: {e}"))?
                .0;
        let mut name = None;
        let mut rest = Vec::with_capacity(members.len());
        for (k, v) in members {
            if k == "name" {
                let n: Cow<'a, str> = serde_json::from_str(v.get())
                    .map_err(|_| "params.name must be a string".to_owned())?;
                name = Some(n);
            } else {
                // Forwarded as is, never decoded: one byte tells an object from anything else.
                if k == "arguments" && !v.get().trim_ascii_start().starts_with('{') {
                    return Err(format!(
                        "params.arguments must be an object, not {}",
                        json_type(v.get())
                    ));
                }
                rest.push((k, v));
            }
        }
        let name = name.ok_or_else(|| "params.name is required".to_owned())?;
        Ok(Self { name, rest })
    }

    /// Appends the request line to `out` in one pass: the hot path writes it straight into
    /// the child's outbox, the only copy of the arguments.
    pub fn write_request(&self, out: &mut Vec<u8>, id: u64, tool: &str) {
        use std::io::Write as _;
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        let _ = write!(out, "{id}");
        out.extend_from_slice(b",\"method\":\"tools/call\",\"params\":{\"name\":");
        push_json_bytes(out, tool);
        for (k, v) in &self.rest {
            out.push(b',');
            push_json_bytes(out, k);
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
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

/// An object's members in document order, values raw.
struct RawMembers<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = RawMembers<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(RawMembers(out))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
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
            let raw: &RawValue = serde_json::from_str(&text).unwrap();
            let err = CallParams::parse(raw).err().unwrap();
            assert_eq!(
                err,
                format!("params.arguments must be an object, not {what}")
            );
        }
        let raw: &RawValue = serde_json::from_str(r#"{"name":"t","arguments": {"a":1}}"#).unwrap();
        assert!(CallParams::parse(raw).is_ok());
        let raw: &RawValue = serde_json::from_str(r#"{"name":"t"}"#).unwrap();
        assert!(CallParams::parse(raw).is_ok(), "arguments may be left out");
    }

    #[test]
    fn request_lines_are_written_in_one_pass() {
        let raw: &RawValue = serde_json::from_str(
            r#"{"name":"files__read","arguments":{"path":"a \"b\""},"_meta":{"progressToken":"t"}}"#,
        )
        .unwrap();
        let mut line = Vec::new();
        CallParams::parse(raw)
            .unwrap()
            .write_request(&mut line, 42, "read");
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
            .write_request(&mut odd, 1, "we\"ird");
        let v: serde_json::Value = serde_json::from_slice(&odd).unwrap();
        assert_eq!(v["params"]["name"], "we\"ird");
    }

    #[test]
    fn call_params_errors_are_clear() {
        let raw: &RawValue = serde_json::from_str(r#"{"arguments":{}}"#).unwrap();
        assert_eq!(
            CallParams::parse(raw).err().unwrap(),
            "params.name is required"
        );
        let raw: &RawValue = serde_json::from_str(r#"[1]"#).unwrap();
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

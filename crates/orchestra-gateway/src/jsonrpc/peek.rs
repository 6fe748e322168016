//! What a message is, read from its first bytes only: for a line too long to keep
//! (`framing::Frame::Oversized`), whose prefix is all there is.
//!
//! JSON-RPC members may come in any order, but every implementation we know writes `jsonrpc`,
//! `id` and `method` before `params`/`result`/`error`, so the envelope is almost always in
//! the first few hundred bytes. When it is not, the peek says so (`id`/`method` stay None)
//! and the caller must not guess.

use std::borrow::Cow;

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The envelope members found in a message's prefix.
#[derive(Debug, Default, PartialEq)]
pub struct Peek {
    pub id: Option<Value>,
    pub method: Option<String>,
    /// `"result"` or `"error"`: the first answer member seen (reading stops there).
    pub answer: Option<&'static str>,
}

impl Peek {
    /// The id of the request this message answers, when the prefix shows it is a response.
    pub fn response_id(&self) -> Option<&Value> {
        match (&self.id, &self.method, self.answer) {
            (Some(id), None, Some(_)) => Some(id),
            _ => None,
        }
    }
}

/// Reads the top-level members of `prefix` (a JSON object, possibly cut anywhere) until it
/// ends, breaks, or reaches `result`/`error`.
pub fn peek(prefix: &[u8]) -> Peek {
    let mut found = Peek::default();
    let mut de = serde_json::Deserializer::from_slice(prefix);
    // The error (the prefix ends mid-value, or reading stopped early) is expected: what was
    // read before it is in `found`.
    let _ = de.deserialize_map(PeekVisitor(&mut found));
    found
}

struct PeekVisitor<'p>(&'p mut Peek);

impl<'de> Visitor<'de> for PeekVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "id" => self.0.id = Some(map.next_value()?),
                "method" => self.0.method = Some(map.next_value()?),
                "result" => {
                    self.0.answer = Some("result");
                    return Ok(());
                }
                "error" => {
                    self.0.answer = Some("error");
                    return Ok(());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_id_of_a_cut_response() {
        let p =
            peek(br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"xxxx"#);
        assert_eq!(p.response_id(), Some(&json!(42)));
        let p = peek(br#"{"id":"a","jsonrpc":"2.0","error":{"code":1,"mess"#);
        assert_eq!(p.response_id(), Some(&json!("a")));
    }

    #[test]
    fn does_not_guess() {
        // The id comes after the (cut) result: unknown.
        let p = peek(br#"{"jsonrpc":"2.0","result":{"content":"xxxxxxx"#);
        assert_eq!(p.response_id(), None);
        assert_eq!(p.answer, Some("result"));
        // A request/notification is not a response.
        let p = peek(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"xx"#);
        assert_eq!(p.method.as_deref(), Some("notifications/message"));
        assert_eq!(p.response_id(), None);
        let p = peek(br#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"#);
        assert_eq!(p.response_id(), None);
        // An id, then a long unknown member: no answer member seen, so not known as a response.
        let p = peek(br#"{"id":3,"padding":"xxxxxxxxx"#);
        assert_eq!(p.response_id(), None);
        assert_eq!(peek(b"xxxxxxxx"), Peek::default());
        assert_eq!(peek(b""), Peek::default());
    }
}

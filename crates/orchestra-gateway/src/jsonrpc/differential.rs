//! The hand-written scanner against the serde_json parser it replaced (kept here, unchanged
//! but for its output types, as the oracle): on generated messages — valid ones, and the same
//! mutated, truncated and spliced with garbage — both must accept and reject the same lines,
//! and read the same envelope (or the same tools/call params) from what they accept.

use std::borrow::Cow;

use super::{CallParams, Defect, Envelope, Raw};

/// The previous parser, serde_json with a borrowed struct of `&RawValue`s.
mod oracle {
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::super::Defect;

    pub struct Envelope<'a> {
        pub id: Option<&'a RawValue>,
        pub method: Option<Cow<'a, str>>,
        pub params: Option<&'a RawValue>,
        pub result: Option<&'a RawValue>,
        pub error: Option<&'a RawValue>,
        pub defect: Option<Defect>,
    }

    #[derive(Deserialize)]
    struct Members<'a> {
        #[serde(borrow, default)]
        jsonrpc: Option<&'a RawValue>,
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

    pub fn parse(line: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
        if line.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde::de::Error::custom(
                "a JSON-RPC message must be a JSON object",
            ));
        }
        let text = std::str::from_utf8(line)
            .map_err(|e| serde::de::Error::custom(format!("invalid UTF-8: {e}")))?;
        let m: Members<'_> = serde_json::from_str(text)?;
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

    fn is_valid_id(raw: &RawValue) -> bool {
        match raw.get().as_bytes() {
            [b'"', ..] => true,
            [b'-' | b'0'..=b'9', ..] => !raw.get().contains(['.', 'e', 'E']),
            _ => false,
        }
    }

    /// `CallParams::parse` as it was, from text (which had been a `&RawValue`).
    #[allow(clippy::type_complexity)]
    pub fn call_params(text: &str) -> Result<(String, Vec<(String, String)>), String> {
        let params: &RawValue = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let members: Vec<(Cow<'_, str>, &RawValue)> =
            serde_json::from_str::<RawMembers<'_>>(params.get())
                .map_err(|e| format!("params must be an object: {e}"))?
                .0;
        let mut name = None;
        let mut rest = Vec::with_capacity(members.len());
        for (k, v) in members {
            if k == "name" {
                let n: Cow<'_, str> = serde_json::from_str(v.get())
                    .map_err(|_| "params.name must be a string".to_owned())?;
                name = Some(n);
            } else {
                if k == "arguments" && !v.get().trim_ascii_start().starts_with('{') {
                    return Err(format!(
                        "params.arguments must be an object, not {}",
                        super::super::json_type(v.get())
                    ));
                }
                rest.push((k.into_owned(), v.get().to_owned()));
            }
        }
        let name = name.ok_or_else(|| "params.name is required".to_owned())?;
        Ok((name.into_owned(), rest))
    }

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
}

/// What a parse saw, comparable across the two parsers.
#[derive(Debug, PartialEq)]
struct Seen<'a> {
    id: Option<&'a str>,
    method: Option<Cow<'a, str>>,
    params: Option<&'a str>,
    result: Option<&'a str>,
    error: Option<&'a str>,
    defect: Option<Defect>,
}

fn new_parse(line: &[u8]) -> Result<(Seen<'_>, super::Kind, &str), String> {
    let e = Envelope::parse(line).map_err(|e| e.to_string())?;
    let seen = Seen {
        id: e.id.map(|r| r.get()),
        method: e.method.clone(),
        params: e.params.map(|r| r.get()),
        result: e.result.map(|r| r.get()),
        error: e.error.map(|r| r.get()),
        defect: e.defect,
    };
    Ok((seen, e.kind(), e.reply_id()))
}

fn old_parse(line: &[u8]) -> Result<Seen<'_>, String> {
    let e = oracle::parse(line).map_err(|e| e.to_string())?;
    Ok(Seen {
        id: e.id.map(|r| r.get()),
        method: e.method,
        params: e.params.map(|r| r.get()),
        result: e.result.map(|r| r.get()),
        error: e.error.map(|r| r.get()),
        defect: e.defect,
    })
}

/// Both parsers on one line; returns whether it parsed.
fn agree(line: &[u8]) -> bool {
    let shown = String::from_utf8_lossy(line);
    match (old_parse(line), new_parse(line)) {
        (Ok(old), Ok((new, kind, reply_id))) => {
            assert_eq!(old, new, "{shown}");
            // The derived answers, for the types' sake (they read the same fields).
            let e = Envelope::parse(line).unwrap();
            assert_eq!((e.kind(), e.reply_id()), (kind, reply_id));
            true
        }
        (Err(old), Err(new)) => {
            // The checks before any JSON is read are shared and say the same.
            if old.starts_with("a JSON-RPC") || old.starts_with("invalid UTF-8") {
                assert_eq!(old, new, "{shown}");
            }
            false
        }
        (old, new) => panic!("disagree on {shown:?}:\n old {old:?}\n new {new:?}"),
    }
}

#[allow(clippy::type_complexity)]
fn fields(call: Result<CallParams<'_>, String>) -> Result<(String, Vec<(String, String)>), String> {
    call.map(|c| {
        let rest = c.rest.iter();
        let rest = rest.map(|(k, v)| (k.to_string(), v.get().to_owned()));
        (c.name.into_owned(), rest.collect::<Vec<_>>())
    })
}

fn agree_on_call(text: &str) -> bool {
    let old = oracle::call_params(text);
    let new = fields(CallParams::parse(text));
    // The hot path's reading of params already validated (as the envelope's parse hands
    // them out: trimmed) must be the same.
    if let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(text) {
        let trusted = fields(CallParams::from_raw(Raw(raw.get())));
        assert_eq!(trusted, fields(CallParams::parse(raw.get())), "{text}");
    }
    // On anything else it must at least not panic.
    let _ = CallParams::from_raw(Raw(text));
    match (&old, &new) {
        (Ok(_), Ok(_)) => assert_eq!(old, new, "{text}"),
        (Err(o), Err(n)) => {
            // Syntax errors are worded by each parser; what is wrong for a call is ours.
            let syntax =
                |e: &str| e.starts_with("params must be an object") || !e.contains("params");
            if syntax(o) {
                assert!(
                    n.starts_with("params must be an object"),
                    "{text}: {o} / {n}"
                );
            } else {
                assert_eq!(o, n, "{text}");
            }
        }
        _ => panic!("disagree on {text:?}:\n old {old:?}\n new {new:?}"),
    }
    old.is_ok()
}

/// splitmix64: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// JSON whitespace, mostly none.
fn ws(rng: &mut Rng) -> &'static str {
    if rng.chance(75) {
        ""
    } else {
        rng.pick(&[" ", "\t", "\n", "\r", " \r\n\t ", "  "])
    }
}

fn string(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "tools/call",
        "Z",
        "0",
        " ",
        "é",
        "日本",
        "😀",
        "\u{7f}",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u00e9",
        "\\u0041",
        "\\uD83D\\uDE00",
        "\\u0000",
        "\\uD800",
        "\\uDC00",
        "\\uFFFF",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "'",
    ];
    let mut s = String::from("\"");
    for _ in 0..rng.below(6) {
        s.push_str(rng.pick(PIECES));
    }
    s.push('"');
    s
}

fn number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng
            .pick(&[
                "0",
                "-0",
                "1.5",
                "-2.5e-10",
                "1E400",
                "0.0",
                "1e3",
                "12345678901234567890123",
            ])
            .to_string(),
        1 => format!("-{}", rng.below(1000)),
        _ => rng.below(100_000).to_string(),
    }
}

fn value(rng: &mut Rng, depth: usize) -> String {
    let leaf = depth == 0 || rng.chance(40);
    if leaf {
        return match rng.below(6) {
            0 | 1 => string(rng),
            2 | 3 => number(rng),
            _ => rng.pick(&["true", "false", "null"]).to_string(),
        };
    }
    let n = rng.below(4);
    if rng.chance(50) {
        let items: Vec<String> = (0..n)
            .map(|_| format!("{}{}{}", ws(rng), value(rng, depth - 1), ws(rng)))
            .collect();
        format!("[{}{}]", items.join(","), ws(rng))
    } else {
        let members: Vec<String> = (0..n)
            .map(|_| {
                format!(
                    "{}{}{}:{}{}{}",
                    ws(rng),
                    string(rng),
                    ws(rng),
                    ws(rng),
                    value(rng, depth - 1),
                    ws(rng)
                )
            })
            .collect();
        format!("{{{}{}}}", members.join(","), ws(rng))
    }
}

/// tools/call params: a name, arguments, `_meta`, and now and then something wrong.
fn call_params(rng: &mut Rng) -> String {
    let mut members = vec![];
    let name = match rng.below(10) {
        0 => value(rng, 1),
        1 => "\"we\\\"ird\\u00e9\"".to_owned(),
        2 => "\"\\uD800x\"".to_owned(),
        _ => format!("\"s{}__tool_{}\"", rng.below(50), rng.below(200)),
    };
    if rng.chance(90) {
        members.push(("\"name\"".to_owned(), name));
    }
    if rng.chance(80) {
        let args = if rng.chance(85) {
            format!("{{\"path\":{},\"n\":{}}}", string(rng), value(rng, 3))
        } else {
            value(rng, 2)
        };
        members.push(("\"arguments\"".to_owned(), args));
    }
    if rng.chance(40) {
        members.push((
            "\"_meta\"".to_owned(),
            format!("{{\"progressToken\":{}}}", value(rng, 1)),
        ));
    }
    for _ in 0..rng.below(3) * usize::from(rng.chance(40)) {
        let key = rng.pick(&[
            "\"name\"",
            "\"arguments\"",
            "\"n\\u0061me\"",
            "\"x\"",
            "\"\\uDC00\"",
            "\"\"",
        ]);
        members.push((key.to_string(), value(rng, 2)));
    }
    object(rng, members)
}

fn object(rng: &mut Rng, mut members: Vec<(String, String)>) -> String {
    // Shuffle: members come in any order.
    for i in (1..members.len()).rev() {
        members.swap(i, rng.below(i + 1));
    }
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}{k}{}:{}{v}{}", ws(rng), ws(rng), ws(rng), ws(rng)))
        .collect();
    format!("{}{{{}{}}}{}", ws(rng), members.join(","), ws(rng), ws(rng))
}

/// A JSON-RPC message, valid most of the time.
fn message(rng: &mut Rng) -> String {
    let mut members = vec![];
    if rng.chance(92) {
        let v = rng.pick(&[
            "\"2.0\"",
            "\"2.0\"",
            "\"2.0\"",
            "\"1.0\"",
            "2.0",
            "null",
            "\"2\\u002e0\"",
            "\"\\uD8002.0\"",
        ]);
        members.push(("\"jsonrpc\"".to_owned(), v.to_string()));
    }
    if rng.chance(85) {
        let id = match rng.below(8) {
            0 => string(rng),
            1 => rng
                .pick(&[
                    "null",
                    "1.5",
                    "1e3",
                    "-3",
                    "{\"a\":1}",
                    "[1]",
                    "true",
                    "12345678901234567890",
                ])
                .to_string(),
            2 => value(rng, 2),
            _ => rng.below(100_000).to_string(),
        };
        members.push(("\"id\"".to_owned(), id));
    }
    let request = rng.chance(60);
    if request {
        let method = match rng.below(8) {
            0 => rng
                .pick(&["42", "null", "\"p\\u0069ng\"", "\"\\uD800\"", "{}"])
                .to_string(),
            1 => string(rng),
            _ => rng
                .pick(&["\"tools/call\"", "\"ping\"", "\"notifications/progress\""])
                .to_string(),
        };
        members.push(("\"method\"".to_owned(), method));
        if rng.chance(80) {
            let params = if rng.chance(70) {
                call_params(rng)
            } else {
                value(rng, 3)
            };
            members.push(("\"params\"".to_owned(), params));
        }
    }
    if !request || rng.chance(10) {
        if rng.chance(70) {
            let result = if rng.chance(50) {
                format!(
                    "{{\"content\":[{{\"type\":\"text\",\"text\":{}}}],\"isError\":false}}",
                    string(rng)
                )
            } else {
                value(rng, 3)
            };
            members.push(("\"result\"".to_owned(), result));
        }
        if rng.chance(30) {
            members.push((
                "\"error\"".to_owned(),
                format!("{{\"code\":-32601,\"message\":{}}}", string(rng)),
            ));
        }
    }
    for _ in 0..rng.below(3) {
        // Unknown members, escaped spellings of known ones, and now and then a duplicate.
        let key = rng.pick(&[
            "\"extra\"",
            "\"\\u0069d\"",
            "\"id \"",
            "\"ID\"",
            "\"\"",
            "\"\\uDC00\"",
            "\"method\"",
            "\"result\"",
            "\"j\\u0073onrpc\"",
        ]);
        if rng.chance(60)
            || ![
                "\"method\"",
                "\"result\"",
                "\"\\u0069d\"",
                "\"j\\u0073onrpc\"",
            ]
            .contains(&key)
        {
            members.push((key.to_string(), value(rng, 2)));
        }
    }
    object(rng, members)
}

/// Breaks or bends a line: bytes changed, removed, inserted, cut, repeated.
fn mutate(rng: &mut Rng, line: &[u8]) -> Vec<u8> {
    const BYTES: &[u8] =
        b"\"\\{}[],: \t\n\r\x0c\x00\x1f0123456789-+.eEnulltrfsau/x\x7f\xc3\xa9\xff\xed";
    let mut out = line.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] = rng.pick(BYTES),
            1 if at < out.len() => out[at] = rng.next() as u8,
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => out.truncate(at),
            4 => {
                let garbage: &[u8] = rng.pick(&[
                    &b"\\u"[..],
                    b"\\uD800",
                    b",",
                    b"}",
                    b"]}",
                    b"\"x\":1,",
                    b"null",
                    b"\xe6\x97",
                    b"{\"a\":",
                    b"1e",
                ]);
                out.splice(at..at, garbage.iter().copied());
            }
            _ => {
                let from = rng.below(out.len() + 1);
                let span = out[from..(from + rng.below(12)).min(out.len())].to_vec();
                out.splice(at..at, span);
            }
        }
    }
    out
}

#[test]
fn envelopes_agree_with_serde_json() {
    let mut rng = Rng(0x5eed_0001);
    let (mut valid, mut mutated_ok, mut total) = (0, 0, 0);
    for _ in 0..4000 {
        let line = message(&mut rng);
        valid += usize::from(agree(line.as_bytes()));
        if let Some(params) = Envelope::parse(line.as_bytes()).ok().and_then(|e| e.params) {
            let trusted = fields(CallParams::from_raw(params));
            assert_eq!(trusted, fields(CallParams::parse(params.get())), "{line}");
        }
        for _ in 0..15 {
            let bent = mutate(&mut rng, line.as_bytes());
            mutated_ok += usize::from(agree(&bent));
            total += 1;
        }
    }
    // The corpus must mostly parse, and the mutations must reach both outcomes, or the
    // comparison says little.
    assert!(valid > 2500, "{valid} of 4000 generated messages parsed");
    assert!(
        mutated_ok > total / 20 && mutated_ok < total * 9 / 10,
        "{mutated_ok} of {total}"
    );
}

#[test]
fn call_params_agree_with_serde_json() {
    let mut rng = Rng(0x5eed_0002);
    let (mut valid, mut total) = (0, 0);
    for _ in 0..4000 {
        let text = call_params(&mut rng);
        valid += usize::from(agree_on_call(&text));
        total += 1;
        for _ in 0..10 {
            let bent = mutate(&mut rng, text.as_bytes());
            if let Ok(bent) = std::str::from_utf8(&bent) {
                agree_on_call(bent);
            }
        }
    }
    assert!(
        valid > total / 2,
        "{valid} of {total} generated params were valid calls"
    );
    assert!(
        valid < total * 9 / 10,
        "{valid} of {total}: too few wrong calls"
    );
}

#[test]
fn hand_picked_lines_agree() {
    let deep = |n: usize| {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{}0{}}}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let lines = [
        deep(127),
        deep(128),
        deep(129),
        deep(5000),
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"x"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":null,"id":null}"#.to_owned(),
        r#"{"jsonrpc":"2.0","method":null,"id":1,"result":null,"error":null,"params":null}"#
            .to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\uD800"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"x","\uD800":1}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"\uD800"}"#.to_owned(),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\u{1}\"}".to_owned(),
        " \t\r\n{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"x\" } \n".to_owned(),
        "\u{c}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}".to_owned(),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}\u{c}".to_owned(),
        "{}".to_owned(),
        "{".to_owned(),
        "{}{}".to_owned(),
        "[1]".to_owned(),
        "".to_owned(),
    ];
    for line in &lines {
        agree(line.as_bytes());
    }
    assert!(
        agree(deep(5000).as_bytes()),
        "serde_json skips values of any depth"
    );
    assert!(
        !agree(br#"{"id":1,"id":1}"#),
        "a duplicate member is an error"
    );
    assert!(!agree(b"{\"id\":1,\"result\":{}}\xff"), "invalid UTF-8");
    for text in [
        r#"{"name":"a","name":"b","arguments":{},"arguments":[]}"#,
        r#"{"name":1,"arguments":[]}"#,
        r#"{"arguments":[],"name":1}"#,
        r#"{"name":1,"arguments":[}"#,
        r#"{"n\u0061me":"t","x":1}"#,
        r#"{"name":"t","\uD800":1}"#,
        r#" {"name":"t"} "#,
        r#"{"name":"t"} x"#,
        "[1]",
        "{}",
    ] {
        agree_on_call(text);
    }
}

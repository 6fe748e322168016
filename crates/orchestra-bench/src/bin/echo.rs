//! `bench-echo`: a fast MCP server for benchmarks, on stdin/stdout.
//!
//! Blocking std I/O; each line is parsed only as far as its envelope (`id` and `params` stay
//! raw). Output is flushed only when no further input is already buffered, so a pipelined burst
//! of requests is answered with one write.
//!
//! * `initialize` echoes the client's `protocolVersion` (else `2025-11-25`), `capabilities:
//!   {tools: {}}`, plus `resources: {}` when it has resources.
//! * `ping` → `{}`.
//! * `tools/list` → `--tools N` tools (default 1): `echo`, then `tool_1` .. `tool_{N-1}`, one page.
//! * `tools/call` (any name) → `{"content":[{"type":"text","text":"ok"}]}`.
//! * `resources/list` → `--resources N` resources (default 0) `bench://resource/0` ..
//!   `bench://resource/{N-1}`, in pages of `--resource-page M` (default 100); `nextCursor` is
//!   the next page's number (an unknown cursor: `-32602`). Pages are built at start.
//! * `resources/read {uri}` → one text content `ok` for one of those URIs, else `-32002`.
//! * Other requests → `-32601`; notifications and responses are ignored. Exits on stdin EOF.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, BufWriter, Write};

use anyhow::Result;
use clap::Parser;
use orchestra_bench::{Envelope, IO_BUF};
use serde::Deserialize;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Fast echo MCP server for benchmarks (stdio)")]
struct Args {
    /// Number of tools in tools/list: `echo` plus `tool_1` .. `tool_{N-1}`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    tools: u32,
    /// Number of resources in resources/list: `bench://resource/0` .. `bench://resource/{N-1}`.
    #[arg(long, default_value_t = 0)]
    resources: u32,
    /// Resources per resources/list page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    resource_page: u32,
}

const RESOURCE_SCHEME: &str = "bench://resource/";

/// Every `resources/list` result, page by page (`nextCursor` = the next page's index).
fn resource_pages(n: u32, per_page: u32) -> Vec<String> {
    let pages = n.div_ceil(per_page).max(1);
    (0..pages)
        .map(|page| {
            let from = page * per_page;
            let resources: Vec<_> = (from..n.min(from + per_page))
                .map(|i| {
                    json!({
                        "uri": format!("{RESOURCE_SCHEME}{i}"),
                        "name": format!("resource_{i}"),
                        "description": format!("Benchmark resource number {i}"),
                        "mimeType": "text/plain",
                    })
                })
                .collect();
            let mut result = json!({ "resources": resources });
            if page + 1 < pages {
                result["nextCursor"] = json!((page + 1).to_string());
            }
            result.to_string()
        })
        .collect()
}

/// The page a `resources/list` asks for (no cursor: the first), None for a cursor not ours.
fn page_asked(params: Option<&serde_json::value::RawValue>) -> Option<usize> {
    #[derive(Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        cursor: Option<Cow<'a, str>>,
    }
    let Some(params) = params else { return Some(0) };
    match serde_json::from_str::<List>(params.get()).ok()?.cursor {
        None => Some(0),
        Some(c) => c.parse().ok(),
    }
}

/// The `resources/read` result for `params.uri`, or why not.
fn read_result(params: Option<&serde_json::value::RawValue>, n: u32) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Read<'a> {
        #[serde(borrow)]
        uri: Cow<'a, str>,
    }
    let read = params
        .and_then(|p| serde_json::from_str::<Read>(p.get()).ok())
        .ok_or("resources/read needs params.uri")?;
    let known = read
        .uri
        .strip_prefix(RESOURCE_SCHEME)
        .and_then(|i| i.parse::<u32>().ok())
        .is_some_and(|i| i < n);
    if !known {
        return Err(format!("resource not found: {}", read.uri));
    }
    let uri = serde_json::to_string(&read.uri).map_err(|e| e.to_string())?;
    Ok(format!(
        r#"{{"contents":[{{"uri":{uri},"mimeType":"text/plain","text":"ok"}}]}}"#
    ))
}

fn tools_result(n: u32) -> String {
    let schema = json!({
        "type": "object",
        "properties": {"text": {"type": "string", "description": "ignored"}},
    });
    let mut tools = vec![json!({
        "name": "echo",
        "description": "Answers ok",
        "inputSchema": schema,
    })];
    for i in 1..n {
        tools.push(json!({
            "name": format!("tool_{i}"),
            "description": format!("Benchmark tool number {i}; answers ok"),
            "inputSchema": schema,
        }));
    }
    json!({ "tools": tools }).to_string()
}

fn initialize_result(params: Option<&serde_json::value::RawValue>, resources: bool) -> String {
    #[derive(Deserialize)]
    struct Init<'a> {
        #[serde(rename = "protocolVersion", borrow)]
        protocol_version: Option<Cow<'a, str>>,
    }
    let version = params
        .and_then(|p| serde_json::from_str::<Init>(p.get()).ok())
        .and_then(|i| i.protocol_version)
        .unwrap_or(Cow::Borrowed("2025-11-25"));
    let capabilities = if resources {
        json!({"tools": {}, "resources": {}})
    } else {
        json!({"tools": {}})
    };
    json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": {"name": "bench-echo", "version": env!("CARGO_PKG_VERSION")},
    })
    .to_string()
}

fn reply(out: &mut impl Write, id: &str, result: &str) -> std::io::Result<()> {
    out.write_all(br#"{"jsonrpc":"2.0","id":"#)?;
    out.write_all(id.as_bytes())?;
    out.write_all(br#","result":"#)?;
    out.write_all(result.as_bytes())?;
    out.write_all(b"}\n")
}

fn reply_error(out: &mut impl Write, id: &str, code: i32, message: &str) -> std::io::Result<()> {
    out.write_all(br#"{"jsonrpc":"2.0","id":"#)?;
    out.write_all(id.as_bytes())?;
    let msg = serde_json::to_string(message)?;
    write!(out, r#","error":{{"code":{code},"message":{msg}}}}}"#)?;
    out.write_all(b"\n")
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tools = tools_result(args.tools);
    let pages = resource_pages(args.resources, args.resource_page);
    const CALL_RESULT: &str = r#"{"content":[{"type":"text","text":"ok"}]}"#;

    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut reader = BufReader::with_capacity(IO_BUF, stdin.lock());
    let mut writer = BufWriter::with_capacity(IO_BUF, stdout.lock());
    let mut line = Vec::with_capacity(IO_BUF);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let Ok(env) = Envelope::parse(&line) {
            if let (Some(id), Some(method)) = (env.id, env.method) {
                let id = id.get();
                match method.get() {
                    r#""tools/call""# => reply(&mut writer, id, CALL_RESULT)?,
                    r#""tools/list""# => reply(&mut writer, id, &tools)?,
                    r#""ping""# => reply(&mut writer, id, "{}")?,
                    r#""initialize""# => reply(
                        &mut writer,
                        id,
                        &initialize_result(env.params, args.resources > 0),
                    )?,
                    r#""resources/list""# if args.resources > 0 => {
                        match page_asked(env.params).and_then(|p| pages.get(p)) {
                            Some(page) => reply(&mut writer, id, page)?,
                            None => reply_error(&mut writer, id, -32602, "invalid cursor")?,
                        }
                    }
                    r#""resources/read""# if args.resources > 0 => {
                        match read_result(env.params, args.resources) {
                            Ok(result) => reply(&mut writer, id, &result)?,
                            Err(why) => reply_error(&mut writer, id, -32002, &why)?,
                        }
                    }
                    other => reply_error(
                        &mut writer,
                        id,
                        -32601,
                        &format!("method not found: {other}"),
                    )?,
                }
            }
        }
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;
    use serde_json::Value;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn resource_pages_follow_their_cursors_to_every_resource() {
        let pages = resource_pages(5, 2);
        let mut uris = Vec::new();
        let mut page = page_asked(None);
        while let Some(p) = page {
            let v: Value = serde_json::from_str(&pages[p]).unwrap();
            for r in v["resources"].as_array().unwrap() {
                uris.push(r["uri"].as_str().unwrap().to_owned());
            }
            page = v["nextCursor"]
                .as_str()
                .map(|c| page_asked(Some(&raw(&format!(r#"{{"cursor":"{c}"}}"#)))).unwrap());
        }
        let expected: Vec<String> = (0..5).map(|i| format!("bench://resource/{i}")).collect();
        assert_eq!(uris, expected);
        assert_eq!(page_asked(Some(&raw(r#"{"cursor":"x"}"#))), None);
        assert_eq!(resource_pages(0, 100).len(), 1, "an empty list is one page");
    }

    #[test]
    fn reads_answer_only_known_resources() {
        let ok = read_result(Some(&raw(r#"{"uri":"bench://resource/2"}"#)), 3).unwrap();
        let v: Value = serde_json::from_str(&ok).unwrap();
        assert_eq!(v["contents"][0]["uri"], "bench://resource/2");
        assert_eq!(v["contents"][0]["text"], "ok");
        assert!(read_result(Some(&raw(r#"{"uri":"bench://resource/3"}"#)), 3).is_err());
        assert!(read_result(Some(&raw(r#"{"uri":"other://x"}"#)), 3).is_err());
        assert!(read_result(None, 3).is_err());
    }
}

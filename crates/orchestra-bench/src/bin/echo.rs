//! `bench-echo`: a fast MCP server for benchmarks, on stdin/stdout.
//!
//! Blocking std I/O; each line is parsed only as far as its envelope (`id` and `params` stay
//! raw). Output is flushed only when no further input is already buffered, so a pipelined burst
//! of requests is answered with one write.
//!
//! * `initialize` echoes the client's `protocolVersion` (else `2025-11-25`), `capabilities:
//!   {tools: {}}`.
//! * `ping` → `{}`.
//! * `tools/list` → `--tools N` tools (default 1): `echo`, then `tool_1` .. `tool_{N-1}`, one page.
//! * `tools/call` (any name) → `{"content":[{"type":"text","text":"ok"}]}`.
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

fn initialize_result(params: Option<&serde_json::value::RawValue>) -> String {
    #[derive(Deserialize)]
    struct Init<'a> {
        #[serde(rename = "protocolVersion", borrow)]
        protocol_version: Option<Cow<'a, str>>,
    }
    let version = params
        .and_then(|p| serde_json::from_str::<Init>(p.get()).ok())
        .and_then(|i| i.protocol_version)
        .unwrap_or(Cow::Borrowed("2025-11-25"));
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {}},
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

fn main() -> Result<()> {
    let args = Args::parse();
    let tools = tools_result(args.tools);
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
                    r#""initialize""# => reply(&mut writer, id, &initialize_result(env.params))?,
                    other => {
                        writer.write_all(br#"{"jsonrpc":"2.0","id":"#)?;
                        writer.write_all(id.as_bytes())?;
                        let msg = serde_json::to_string(&format!("method not found: {other}"))?;
                        write!(writer, r#","error":{{"code":-32601,"message":{msg}}}}}"#)?;
                        writer.write_all(b"\n")?;
                    }
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

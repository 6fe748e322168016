//! Shared pieces of the benchmark binaries: a JSON-RPC peer over a child's stdio, minimal
//! response parsing, percentiles and scratch directories.
//!
//! Everything here is plain std (blocking I/O, no async runtime), so that what is measured is
//! the process under test and not a client SDK.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod http;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Protocol version the driver and the suite ask for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Pipe buffer size used on both sides of every stdio pipe we own.
pub const IO_BUF: usize = 64 * 1024;

/// The parts of a JSON-RPC message the benchmarks look at, borrowed from the line.
#[derive(Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// Parses one line (without requiring the trailing newline to be stripped).
    pub fn parse(line: &'a [u8]) -> Result<Self> {
        let text = std::str::from_utf8(line).context("line is not UTF-8")?;
        serde_json::from_str(text.trim_end()).context("line is not a JSON-RPC message")
    }

    /// A response (has an id and no method).
    pub fn is_response(&self) -> bool {
        self.id.is_some() && self.method.is_none()
    }

    /// The id as an unsigned integer, if it is one.
    pub fn id_u64(&self) -> Option<u64> {
        self.id.and_then(|raw| raw.get().parse().ok())
    }
}

/// Builds request lines in which only the id changes: `tools/call` of one tool, or
/// `resources/read` of one URI.
pub struct CallTemplate {
    prefix: &'static [u8],
    suffix: Vec<u8>,
    digits: Vec<u8>,
}

impl CallTemplate {
    /// `tools/call {"name": tool, "arguments": {}}`.
    pub fn new(tool: &str) -> Self {
        let name = serde_json::to_string(tool).expect("a string serialises");
        Self::with_rest(format!(
            r#","method":"tools/call","params":{{"name":{name},"arguments":{{}}}}}}"#
        ))
    }

    /// `resources/read {"uri": uri}`.
    pub fn read(uri: &str) -> Self {
        let uri = serde_json::to_string(uri).expect("a string serialises");
        Self::with_rest(format!(
            r#","method":"resources/read","params":{{"uri":{uri}}}}}"#
        ))
    }

    /// Everything after the id, without the newline.
    fn with_rest(rest: String) -> Self {
        let mut suffix = rest.into_bytes();
        suffix.push(b'\n');
        Self {
            prefix: br#"{"jsonrpc":"2.0","id":"#,
            suffix,
            digits: Vec::with_capacity(24),
        }
    }

    /// Appends the request with `id` to `out` (buffered; nothing is flushed).
    pub fn write(&mut self, out: &mut impl Write, id: u64) -> std::io::Result<()> {
        self.digits.clear();
        write!(self.digits, "{id}")?;
        out.write_all(self.prefix)?;
        out.write_all(&self.digits)?;
        out.write_all(&self.suffix)
    }
}

/// A child process spoken to with newline-delimited JSON-RPC over its stdin/stdout.
pub struct Peer {
    pub child: Child,
    pub writer: BufWriter<ChildStdin>,
    pub reader: BufReader<ChildStdout>,
    line: Vec<u8>,
}

impl Peer {
    /// Spawns `cmd` with piped stdin/stdout (stderr is whatever `cmd` says).
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Self {
            child,
            writer: BufWriter::with_capacity(IO_BUF, stdin),
            reader: BufReader::with_capacity(IO_BUF, stdout),
            line: Vec::with_capacity(IO_BUF),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Queues raw bytes (a whole line, newline included).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).context("writing to the child")
    }

    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush().context("flushing to the child")
    }

    /// True when the next `read_line` would have to read from the pipe.
    pub fn nothing_buffered(&self) -> bool {
        self.reader.buffer().is_empty()
    }

    /// Reads one line (newline included). EOF is an error.
    pub fn read_line(&mut self) -> Result<&[u8]> {
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .context("reading from the child")?;
        if n == 0 {
            bail!("the child closed its stdout");
        }
        Ok(&self.line)
    }

    /// Sends a request and returns the response line with the same (raw) id; anything else
    /// read meanwhile (notifications, other responses) is skipped.
    pub fn request(&mut self, id: &str, method: &str, params: &str) -> Result<Vec<u8>> {
        let line =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
        self.send(line.as_bytes())?;
        self.send(b"\n")?;
        self.flush()?;
        self.read_response(id)
    }

    /// Reads until the response with raw id `id`.
    pub fn read_response(&mut self, id: &str) -> Result<Vec<u8>> {
        loop {
            let line = self.read_line()?;
            let Ok(env) = Envelope::parse(line) else {
                continue;
            };
            if env.is_response() && env.id.map(RawValue::get) == Some(id) {
                return Ok(line.to_vec());
            }
        }
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str) -> Result<()> {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\"}}\n");
        self.send(line.as_bytes())?;
        self.flush()
    }

    /// `initialize` (answered) + `notifications/initialized`.
    pub fn initialize(&mut self) -> Result<()> {
        let params = format!(
            r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"orchestra-bench","version":"0"}}}}"#
        );
        let resp = self.request(r#""init""#, "initialize", &params)?;
        check_result(&resp).context("initialize")?;
        self.notify("notifications/initialized")
    }

    /// Lists the tools, following `nextCursor` (the first request has id `id`); returns the
    /// tool names.
    pub fn list_tools(&mut self, id: &str) -> Result<Vec<String>> {
        let resp = self.request(id, "tools/list", "{}")?;
        let (mut names, mut cursor) = tool_page(&resp)?;
        let mut page = 1;
        while let Some(c) = cursor {
            let params = serde_json::json!({ "cursor": c }).to_string();
            let resp = self.request(&format!("\"tools-page-{page}\""), "tools/list", &params)?;
            let (more, next) = tool_page(&resp)?;
            names.extend(more);
            cursor = next;
            page += 1;
        }
        Ok(names)
    }

    /// Closes the child's stdin and waits for it to exit.
    pub fn close(self) -> Result<ExitStatus> {
        let Peer {
            mut child, writer, ..
        } = self;
        drop(writer.into_inner().ok());
        child.wait().context("waiting for the child")
    }

    /// Closes stdin and waits at most `grace` for the exit; kills the process afterwards.
    pub fn close_within(self, grace: Duration) -> Result<Option<ExitStatus>> {
        let Peer {
            mut child, writer, ..
        } = self;
        drop(writer.into_inner().ok());
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                child.kill().ok();
                child.wait().ok();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Errors unless the response line carries a `result`.
pub fn check_result(line: &[u8]) -> Result<()> {
    let env = Envelope::parse(line)?;
    if env.result.is_some() {
        Ok(())
    } else {
        Err(anyhow!(
            "error response: {}",
            env.error
                .map(RawValue::get)
                .unwrap_or("(no result, no error)")
        ))
    }
}

/// The tool names in a `tools/list` response line (one page).
pub fn tool_names(line: &[u8]) -> Result<Vec<String>> {
    tool_page(line).map(|(names, _)| names)
}

/// The tool names in a `tools/list` response line, and its `nextCursor`.
pub fn tool_page(line: &[u8]) -> Result<(Vec<String>, Option<String>)> {
    #[derive(Deserialize)]
    struct Tool {
        name: String,
    }
    #[derive(Deserialize)]
    struct ListResult {
        tools: Vec<Tool>,
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
    }
    let env = Envelope::parse(line)?;
    let result = env.result.ok_or_else(|| {
        anyhow!(
            "tools/list failed: {}",
            env.error.map(RawValue::get).unwrap_or("(no result)")
        )
    })?;
    let list: ListResult = serde_json::from_str(result.get()).context("tools/list result")?;
    Ok((
        list.tools.into_iter().map(|t| t.name).collect(),
        list.next_cursor,
    ))
}

/// Nearest-rank percentile (`p` in 0..=1) of sorted values.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of a few values (NaNs ignored; the mean of the two middle values for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A directory removed (with its contents) when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "orchestra-bench-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `VmHWM` (peak resident set size) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// CPU time (ns, all threads, from `/proc/<pid>/task/*/schedstat`) of `root` and every
/// descendant, summed by process name (`comm`). Processes that vanish meanwhile are skipped.
pub fn tree_cpu_ns(root: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|_| pid.to_string());
        let mut ns = 0;
        for task in tasks.flatten() {
            let dir = task.path();
            if let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) {
                ns += stat
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if let Ok(children) = std::fs::read_to_string(dir.join("children")) {
                todo.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        *out.entry(comm).or_insert(0) += ns;
    }
    out
}

/// CPU µs per call by process name between two `tree_cpu_ns` snapshots.
pub fn cpu_per_call_us(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    calls: u64,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, &ns)| {
            let spent = ns.saturating_sub(before.get(name).copied().unwrap_or(0));
            (name.clone(), spent as f64 / 1000.0 / calls.max(1) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_builds_valid_requests() {
        let mut t = CallTemplate::new("e__echo");
        let mut out = Vec::new();
        t.write(&mut out, 42).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "e__echo");
        assert_eq!(v["params"]["arguments"], serde_json::json!({}));
    }

    #[test]
    fn read_template_builds_valid_requests() {
        let mut t = CallTemplate::read("orchestra://e/bench://resource/0");
        let mut out = Vec::new();
        t.write(&mut out, 7).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["method"], "resources/read");
        assert_eq!(v["params"]["uri"], "orchestra://e/bench://resource/0");
    }

    #[test]
    fn envelope_finds_ids() {
        let env =
            Envelope::parse(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":{\"id\":9}}}\n")
                .unwrap();
        assert!(env.is_response());
        assert_eq!(env.id_u64(), Some(7));
        let note = Envelope::parse(br#"{"jsonrpc":"2.0","method":"notifications/x"}"#).unwrap();
        assert!(!note.is_response());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}

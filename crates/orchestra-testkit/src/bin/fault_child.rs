//! `orchestra-fault-child`: a tiny MCP server used by the gateway tests **only**
//! for faults that real servers cannot produce on demand.
//!
//! It speaks newline-delimited JSON-RPC 2.0 over stdin/stdout (the MCP stdio
//! transport) using plain std threads. Diagnostics go to stderr only; every
//! stdout write goes through one mutex-guarded writer, one line per message,
//! flushed immediately.
//!
//! # Normal behaviour
//!
//! * `initialize` echoes the requested `protocolVersion` and advertises
//!   `tools.listChanged`; `notifications/initialized` is ignored; `ping` → `{}`.
//! * `tools/list` exposes `echo {text}`, `sleep {ms}`, `fail`, `pid`,
//!   `crash {code=3}` and `progress {steps, interval_ms}` (plus the optional
//!   tools added by directives below).
//! * `sleep` and `progress` run on their own thread, so other requests keep
//!   being served; a `notifications/cancelled` for them stops them and no
//!   response is sent.
//! * Unknown request method → error -32601; unknown tool → error -32602.
//! * stdin EOF → exit 0 (unless `ignore_eof`).
//!
//! # Environment
//!
//! * `FAULT_MODE` — comma-separated directives (command-line arguments are
//!   accepted too, each one may itself be a comma-separated list).
//!   An unknown or malformed directive makes the child exit with code 2.
//! * `FAULT_LOG=<path>` — lines appended: `request <method> <id>` for every
//!   request received (before any `hang_on`), `cancelled <id> <reason|->` for
//!   every `notifications/cancelled`, `grandchild <pid>` for `spawn_grandchild`,
//!   `setsid_grandchild <pid>` for `setsid_sleeper`, `set_level <level>` for every
//!   `logging/setLevel` answered (`log_all_levels`).
//!   String ids are written without quotes.
//! * `FAULT_MARKER=<path>` — `start <pid> <unix_millis>` appended at startup
//!   (before `exit_on_start`), so tests can count spawns.
//!
//! # Directives
//!
//! * `exit_on_start[:CODE]` — exit with CODE (default 1) before reading anything.
//! * `crash_after:N` — the (N+1)-th `tools/call` received exits the process
//!   with code 3 without answering.
//! * `hang_on:METHOD` — never answer requests of METHOD (repeatable); other
//!   input is still processed.
//! * `sigstop_on_call` — the first `tools/call` raises SIGSTOP on the process
//!   (after SIGCONT it is answered normally).
//! * `banner` — print `Server starting...` and `{not json` to stdout at start.
//! * `invalid_utf8` — print the bytes `ff fe fd` + newline to stdout at start.
//! * `garbage_before_response` — write a non-JSON line before every
//!   `tools/call` response.
//! * `huge_line:BYTES` — on the first `tools/call`, first write one line of
//!   exactly BYTES bytes (a padded `notifications/message` JSON notification,
//!   or plain `x`s if BYTES is too small for that), then answer normally.
//! * `no_newline_flood` — on the first `tools/call`, write `x` bytes to stdout
//!   forever without a newline; exits 1 once the pipe breaks.
//! * `stderr_flood:BYTES` — write BYTES bytes to stderr (lines of 1 KiB) at
//!   start and on every `tools/call`.
//! * `ignore_sigterm` — SIGTERM is blocked on every thread (so it stays
//!   pending forever, i.e. is effectively ignored); SIGKILL still works.
//! * `ignore_eof` — on stdin EOF keep running forever instead of exiting.
//! * `spawn_grandchild` — spawn `sleep 3600` (same process group, null stdio,
//!   SIGTERM not blocked) at start; its pid goes to stderr and to `FAULT_LOG` as `grandchild <pid>`.
//! * `spawn_setsid_grandchild` — at start, spawn a copy of this program in
//!   `setsid_sleeper` mode (null stdio): a grandchild in its own session and
//!   process group that ignores SIGTERM.
//! * `setsid_sleeper` — instead of serving MCP: block SIGTERM, call `setsid()`,
//!   append `setsid_grandchild <pid>` to `FAULT_LOG` (so the line means the
//!   session is already new), then sleep forever.
//! * `tools_change_after:N` — once N `tools/call` have been answered, add the
//!   echo-like tool `added_later` and send `notifications/tools/list_changed`.
//! * `extra_tools:N` — also expose echo-like tools `tool_0` .. `tool_{N-1}`.
//! * `tool_name:NAME` — also expose an echo-like tool called NAME (repeatable).
//! * `respond_twice` — send every `tools/call` response twice.
//! * `unknown_id_response` — before every `tools/call` response, send a
//!   response with id 999999 that nobody asked for.
//! * `slow_start:MS` — sleep MS milliseconds before answering `initialize`.
//! * `bad_tools` — also list malformed tool definitions next to the good ones:
//!   `noschema` (no `inputSchema`), `nullschema` (`inputSchema: null`),
//!   `untyped` (`inputSchema` without `type`), `badmeta` (non-string
//!   description, `outputSchema: "nope"`), a second `echo` (duplicate name),
//!   `stringargs` (`inputSchema.type: "string"`), a tool without a name and a
//!   plain string entry. The named ones answer like `echo`.
//! * `huge_result:BYTES` — also expose the tool `huge`, whose answer is one
//!   result line of exactly BYTES bytes (id first, as most servers write it).
//! * `huge_list:BYTES` — the `tools/list` answer is padded (in its `_meta`) to
//!   a line of exactly BYTES bytes.
//! * `list_changed_flood:MS` — after `notifications/initialized`, send
//!   `notifications/tools/list_changed` every MS milliseconds, forever.
//! * `fake_progress:TOKEN` — before answering each `tools/call`, send a
//!   `notifications/progress` with the string token TOKEN (which it was not
//!   given), progress 999 and message `forged`.
//! * `log_all_levels` — declare the `logging` capability, answer `logging/setLevel`,
//!   and before every `tools/call` response send one `notifications/message` per MCP
//!   level (debug … emergency, `data` = the level's name), ignoring the set level (the
//!   gateway must filter per session).
//! * `result_and_error` — every `tools/call` response carries both a `result`
//!   and an `error`.
//! * `empty_response` — every `tools/call` response carries neither (only
//!   `jsonrpc` and `id`).
//! * `page_size:N` — paginate `tools/list` with N tools per page; `nextCursor`
//!   is the stringified offset of the next page.
//! * `server_request:METHOD` — after `notifications/initialized`, send the client
//!   a request `METHOD` (id `"srv-1"`, e.g. `roots/list`, `sampling/createMessage`);
//!   every response received is logged to `FAULT_LOG` as `response <id> <json>`.
//! * `stderr_line:TEXT` — write TEXT as one line to stderr at start (before
//!   `exit_on_start`), and again as the last lines before the process exits on
//!   its own (crash, `crash_after`, `exit_on_start`, stdin EOF), followed by a
//!   100 ms pause so the reader has them before the exit is seen (repeatable,
//!   in order; TEXT cannot contain a comma).
//! * `server_version:TEXT` — answer `initialize` with `serverInfo.version` TEXT
//!   (and `protocolVersion` TEXT too) instead of `0.1.0` and the requested
//!   version; TEXT cannot contain a comma.
//! * `prompts:N` — declare `prompts.listChanged` and serve `prompts/list` with
//!   `prompt_0` .. `prompt_{N-1}`, each with one optional argument `topic`;
//!   `prompts/get` answers one user message whose text is
//!   `<name> <arguments as JSON>` (`{}` if none); an unknown name gets -32602.
//! * `prompts_fail` — declare `prompts.listChanged` but answer every
//!   `prompts/list` with error -32603 `prompts/list failed on purpose`.
//! * `prompts_change_after:N` — declare `prompts.listChanged`; once N
//!   `tools/call` have been answered, add the prompt `added_prompt` (same shape
//!   as `prompt_0`) and send `notifications/prompts/list_changed`.
//!   Without any `prompts*` directive, `prompts/*` requests get -32601.
//! * `resources:N` — declare `resources.subscribe` and `resources.listChanged`;
//!   `resources/list` serves `fault://item/0` .. `fault://item/{N-1}` (named
//!   `item_<i>`, paginated by `page_size` like tools), `resources/templates/list`
//!   the template `fault://item/{index}`; `resources/read` of `fault://item/<i>`
//!   answers the text `item <i>` (an unknown URI gets -32002);
//!   `resources/subscribe` / `unsubscribe` answer `{}` and append
//!   `subscribe <uri>` / `unsubscribe <uri>` to `FAULT_LOG`.
//! * `huge_resource:BYTES` — declare resources (as `resources:0` if not given);
//!   `resources/read` of `fault://huge` answers one text content of BYTES `x`s.
//! * `duplicate_entries` — `resources/list` also lists `fault://item/0` a second
//!   time (named `item_0_again`), and `prompts/list` repeats `prompt_0`.
//! * `ask_tool` — also expose the tool `ask {method, params?, wait?,
//!   crash_after_ms?, cancel_after_ms?}`: it sends the client the request
//!   `method` (with `params`) under the id `ask-N` (N counts from 1), then:
//!   with `crash_after_ms`, sleeps that long and exits with code 3 (dying with
//!   the request outstanding); with `cancel_after_ms`, sleeps that long, sends
//!   `notifications/cancelled` for `ask-N` (reason `changed my mind`) and
//!   answers `cancelled ask-N`; with `wait: false`, answers `sent ask-N` at once
//!   (the response, when it comes, is only logged); otherwise waits (on its own
//!   thread; a cancelled call stops waiting) for the response and answers with
//!   it: text = the response as JSON, `structuredContent.response` = the
//!   response; with `notify_after: {method, params}`, that notification is sent
//!   once the response is in, before the answer. Every response is logged to
//!   `FAULT_LOG` as `response <id> <json>`.
//! * `log_notifications` — append `notification <method>` to `FAULT_LOG` for
//!   every notification received.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";
const UNKNOWN_RESPONSE_ID: u64 = 999_999;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const PARSE_ERROR: i64 = -32700;
const INTERNAL_ERROR: i64 = -32603;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Config {
    exit_on_start: Option<i32>,
    crash_after: Option<u64>,
    hang_on: HashSet<String>,
    sigstop_on_call: bool,
    banner: bool,
    invalid_utf8: bool,
    garbage_before_response: bool,
    huge_line: Option<usize>,
    no_newline_flood: bool,
    stderr_flood: Option<usize>,
    ignore_sigterm: bool,
    ignore_eof: bool,
    spawn_grandchild: bool,
    spawn_setsid_grandchild: bool,
    setsid_sleeper: bool,
    tools_change_after: Option<u64>,
    extra_tools: usize,
    tool_names: Vec<String>,
    respond_twice: bool,
    unknown_id_response: bool,
    slow_start: Option<u64>,
    page_size: Option<usize>,
    bad_tools: bool,
    huge_result: Option<usize>,
    huge_list: Option<usize>,
    list_changed_flood: Option<u64>,
    fake_progress: Option<String>,
    result_and_error: bool,
    log_all_levels: bool,
    empty_response: bool,
    server_request: Option<String>,
    stderr_lines: Vec<String>,
    server_version: Option<String>,
    prompts: Option<usize>,
    prompts_fail: bool,
    prompts_change_after: Option<u64>,
    resources: Option<usize>,
    huge_resource: Option<usize>,
    duplicate_entries: bool,
    ask_tool: bool,
    log_notifications: bool,
}

impl Config {
    /// Reads directives from `FAULT_MODE` and then from the command line.
    fn from_env_and_args() -> Result<Self, String> {
        let mut config = Config::default();
        let env = std::env::var("FAULT_MODE").unwrap_or_default();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let specs = std::iter::once(env.as_str()).chain(args.iter().map(String::as_str));
        for spec in specs {
            for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                config.apply(directive)?;
            }
        }
        Ok(config)
    }

    fn apply(&mut self, directive: &str) -> Result<(), String> {
        let (name, value) = match directive.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (directive, None),
        };
        match name {
            "exit_on_start" => {
                self.exit_on_start = Some(match value {
                    Some(_) => parse_value(name, value)?,
                    None => 1,
                });
            }
            "crash_after" => self.crash_after = Some(parse_value(name, value)?),
            "hang_on" => {
                self.hang_on.insert(required_value(name, value)?.to_owned());
            }
            "sigstop_on_call" => self.sigstop_on_call = flag(name, value)?,
            "banner" => self.banner = flag(name, value)?,
            "invalid_utf8" => self.invalid_utf8 = flag(name, value)?,
            "garbage_before_response" => self.garbage_before_response = flag(name, value)?,
            "huge_line" => self.huge_line = Some(parse_value(name, value)?),
            "no_newline_flood" => self.no_newline_flood = flag(name, value)?,
            "stderr_flood" => self.stderr_flood = Some(parse_value(name, value)?),
            "ignore_sigterm" => self.ignore_sigterm = flag(name, value)?,
            "ignore_eof" => self.ignore_eof = flag(name, value)?,
            "spawn_grandchild" => self.spawn_grandchild = flag(name, value)?,
            "spawn_setsid_grandchild" => self.spawn_setsid_grandchild = flag(name, value)?,
            "setsid_sleeper" => self.setsid_sleeper = flag(name, value)?,
            "tools_change_after" => self.tools_change_after = Some(parse_value(name, value)?),
            "extra_tools" => self.extra_tools = parse_value(name, value)?,
            "tool_name" => self
                .tool_names
                .push(required_value(name, value)?.to_owned()),
            "respond_twice" => self.respond_twice = flag(name, value)?,
            "unknown_id_response" => self.unknown_id_response = flag(name, value)?,
            "bad_tools" => self.bad_tools = flag(name, value)?,
            "huge_result" => self.huge_result = Some(parse_value(name, value)?),
            "huge_list" => self.huge_list = Some(parse_value(name, value)?),
            "list_changed_flood" => self.list_changed_flood = Some(parse_value(name, value)?),
            "fake_progress" => self.fake_progress = Some(required_value(name, value)?.to_owned()),
            "result_and_error" => self.result_and_error = flag(name, value)?,
            "log_all_levels" => self.log_all_levels = flag(name, value)?,
            "empty_response" => self.empty_response = flag(name, value)?,
            "slow_start" => self.slow_start = Some(parse_value(name, value)?),
            "server_request" => self.server_request = Some(required_value(name, value)?.to_owned()),
            "stderr_line" => self
                .stderr_lines
                .push(required_value(name, value)?.to_owned()),
            "server_version" => self.server_version = Some(required_value(name, value)?.to_owned()),
            "prompts" => self.prompts = Some(parse_value(name, value)?),
            "prompts_fail" => self.prompts_fail = flag(name, value)?,
            "prompts_change_after" => self.prompts_change_after = Some(parse_value(name, value)?),
            "resources" => self.resources = Some(parse_value(name, value)?),
            "huge_resource" => self.huge_resource = Some(parse_value(name, value)?),
            "duplicate_entries" => self.duplicate_entries = flag(name, value)?,
            "ask_tool" => self.ask_tool = flag(name, value)?,
            "log_notifications" => self.log_notifications = flag(name, value)?,
            "page_size" => {
                let size: usize = parse_value(name, value)?;
                if size == 0 {
                    return Err("page_size must be at least 1".to_owned());
                }
                self.page_size = Some(size);
            }
            _ => return Err(format!("unknown directive {directive:?}")),
        }
        Ok(())
    }
}

impl Config {
    /// Whether any `prompts*` directive is given (the capability is declared).
    fn declares_prompts(&self) -> bool {
        self.prompts.is_some() || self.prompts_fail || self.prompts_change_after.is_some()
    }

    /// Whether `resources:N` or `huge_resource` is given (the capability is declared).
    fn declares_resources(&self) -> bool {
        self.resources.is_some() || self.huge_resource.is_some()
    }
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some(v) => Err(format!("directive {name} takes no value (got {v:?})")),
    }
}

fn required_value<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("directive {name} needs a value ({name}:VALUE)")),
    }
}

fn parse_value<T: FromStr>(name: &str, value: Option<&str>) -> Result<T, String> {
    let raw = required_value(name, value)?;
    raw.parse()
        .map_err(|_| format!("directive {name}: invalid number {raw:?}"))
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Tool {
    Echo,
    Sleep,
    Fail,
    Pid,
    Crash,
    Progress,
    Huge,
    Ask,
}

type CallOutcome = Result<Value, (i64, String)>;

fn tool_def(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required},
    })
}

fn echo_tool_def(name: &str) -> Value {
    let mut def = tool_def(
        name,
        "Echo the given text back",
        json!({"text": {"type": "string"}}),
        &["text"],
    );
    def["outputSchema"] = json!({
        "type": "object",
        "properties": {"text": {"type": "string"}, "pid": {"type": "integer"}},
        "required": ["text", "pid"],
    });
    def
}

fn base_tool_defs() -> Vec<Value> {
    vec![
        echo_tool_def("echo"),
        tool_def(
            "sleep",
            "Sleep for ms milliseconds, then answer",
            json!({"ms": {"type": "integer", "minimum": 0}}),
            &["ms"],
        ),
        tool_def("fail", "Always returns an error result", json!({}), &[]),
        tool_def(
            "pid",
            "Return the process id of this server",
            json!({}),
            &[],
        ),
        tool_def(
            "crash",
            "Exit the process immediately with the given code (default 3)",
            json!({"code": {"type": "integer"}}),
            &[],
        ),
        tool_def(
            "progress",
            "Send steps progress notifications, interval_ms apart",
            json!({"steps": {"type": "integer"}, "interval_ms": {"type": "integer"}}),
            &[],
        ),
    ]
}

/// Tool definitions that break MCP's rules (`bad_tools`), in listing order.
fn bad_tool_defs() -> Vec<Value> {
    vec![
        json!({"name": "noschema", "description": "A tool without an inputSchema"}),
        json!({"name": "nullschema", "description": "inputSchema is null", "inputSchema": null}),
        json!({"name": "untyped", "inputSchema": {"properties": {"text": {"type": "string"}}}}),
        json!({"name": "badmeta", "description": 42, "inputSchema": {"type": "object"}, "outputSchema": "nope"}),
        json!({"name": "echo", "description": "A second echo", "inputSchema": {"type": "object"}}),
        json!({"name": "stringargs", "inputSchema": {"type": "string"}}),
        json!({"description": "a tool without a name", "inputSchema": {"type": "object"}}),
        json!("not a tool"),
    ]
}

/// Names of the callable (echo-like) tools among [`bad_tool_defs`].
const BAD_TOOL_NAMES: &[&str] = &["noschema", "nullschema", "untyped", "badmeta", "stringargs"];

/// A JSON-RPC line of exactly `bytes` bytes (newline excluded) that starts with `head` and
/// ends with `tail`, padded with `x` in between (or just `head` + `tail` if too small).
fn padded_line(head: &str, tail: &str, bytes: usize) -> Vec<u8> {
    let mut line = Vec::with_capacity(bytes.max(head.len() + tail.len()));
    line.extend_from_slice(head.as_bytes());
    line.resize(bytes.saturating_sub(tail.len()).max(head.len()), b'x');
    line.extend_from_slice(tail.as_bytes());
    line
}

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

fn echo_result(args: &Value) -> Value {
    let text = args["text"].as_str().unwrap_or_default();
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": {"text": text, "pid": process::id()},
    })
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Id as written to the log: strings without quotes, anything else as JSON.
fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Key of an in-flight request (keeps `1` and `"1"` apart).
fn id_key(id: &Value) -> String {
    id.to_string()
}

fn append_line(path: &Path, line: &str) {
    let result = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(err) = result {
        eprintln!("fault-child: cannot append to {}: {err}", path.display());
    }
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// Sleeps `duration` in small steps; returns false if `cancelled` got set.
fn sleep_unless_cancelled(duration: Duration, cancelled: &AtomicBool) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if cancelled.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

fn flood_stderr(bytes: usize) {
    let line = [b'x'; 1023];
    let mut stderr = io::stderr().lock();
    let mut remaining = bytes;
    while remaining > 0 {
        let chunk = remaining.min(line.len() + 1);
        let result = stderr
            .write_all(&line[..chunk - 1])
            .and_then(|()| stderr.write_all(b"\n"));
        if result.is_err() {
            return;
        }
        remaining -= chunk;
    }
    let _ = stderr.flush();
}

/// Blocks SIGTERM on the calling thread; threads spawned later inherit it.
fn block_sigterm() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    match set.thread_block() {
        Ok(()) => eprintln!("fault-child: SIGTERM blocked"),
        Err(err) => eprintln!("fault-child: cannot block SIGTERM: {err}"),
    }
}

/// Spawns a copy of this program as a `setsid_sleeper` with null stdio.
fn spawn_setsid_grandchild() -> Option<Child> {
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .env("FAULT_MODE", "setsid_sleeper")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    });
    match spawned {
        Ok(child) => {
            eprintln!("fault-child: setsid grandchild pid {}", child.id());
            Some(child)
        }
        Err(err) => {
            eprintln!("fault-child: cannot spawn the setsid grandchild: {err}");
            None
        }
    }
}

/// The `setsid_sleeper` mode: a process that escapes its parent's session and process
/// group, ignores SIGTERM, and sleeps until SIGKILLed.
fn setsid_sleeper() -> ! {
    block_sigterm();
    if let Err(err) = nix::unistd::setsid() {
        exit_with(1, &format!("setsid failed: {err}"));
    }
    if let Some(path) = std::env::var_os("FAULT_LOG") {
        append_line(
            Path::new(&path),
            &format!("setsid_grandchild {}", process::id()),
        );
    }
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// Spawns `sleep 3600` in our process group with null stdio.
fn spawn_grandchild() -> Option<Child> {
    let spawned = Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => {
            eprintln!("fault-child: grandchild pid {}", child.id());
            Some(child)
        }
        Err(err) => {
            eprintln!("fault-child: cannot spawn grandchild: {err}");
            None
        }
    }
}

/// The `stderr_line` texts, repeated by [`exit_with`].
static STDERR_LINES: OnceLock<Vec<String>> = OnceLock::new();

fn write_stderr_lines() {
    for line in STDERR_LINES.get().into_iter().flatten() {
        eprintln!("{line}");
    }
}

fn exit_with(code: i32, why: &str) -> ! {
    eprintln!("fault-child: exiting with code {code}: {why}");
    if STDERR_LINES.get().is_some_and(|l| !l.is_empty()) {
        write_stderr_lines();
        thread::sleep(Duration::from_millis(100));
    }
    process::exit(code)
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

struct Server {
    config: Config,
    out: Mutex<io::Stdout>,
    log_path: Option<PathBuf>,
    calls_received: AtomicU64,
    calls_answered: AtomicU64,
    first_call_seen: AtomicBool,
    tools_added: AtomicBool,
    prompts_added: AtomicBool,
    in_flight: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// `ask` requests sent to the client so far.
    asks: AtomicU64,
    /// Calls of `ask` waiting for the client's response, by request id key.
    ask_waiters: Mutex<HashMap<String, mpsc::Sender<Value>>>,
}

impl Server {
    fn new(config: Config) -> Self {
        Server {
            config,
            out: Mutex::new(io::stdout()),
            log_path: std::env::var_os("FAULT_LOG").map(PathBuf::from),
            calls_received: AtomicU64::new(0),
            calls_answered: AtomicU64::new(0),
            first_call_seen: AtomicBool::new(false),
            tools_added: AtomicBool::new(false),
            prompts_added: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
            asks: AtomicU64::new(0),
            ask_waiters: Mutex::new(HashMap::new()),
        }
    }

    // ----- output ---------------------------------------------------------

    /// Writes `bytes` plus a newline as one line, then flushes.
    fn send_raw(&self, bytes: &[u8]) {
        let mut line = Vec::with_capacity(bytes.len() + 1);
        line.extend_from_slice(bytes);
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = out.write_all(&line).and_then(|()| out.flush()) {
            eprintln!("fault-child: stdout write failed: {err}");
        }
    }

    fn send(&self, message: &Value) {
        self.send_raw(message.to_string().as_bytes());
    }

    fn send_result(&self, id: &Value, result: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    fn send_error(&self, id: &Value, code: i64, message: &str) {
        self.send(&json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message},
        }));
    }

    fn log(&self, line: &str) {
        if let Some(path) = &self.log_path {
            append_line(path, line);
        }
    }

    // ----- startup ----------------------------------------------------------

    fn startup_faults(&self) {
        if self.config.banner {
            self.send_raw(b"Server starting...");
            self.send_raw(b"{not json");
        }
        if self.config.invalid_utf8 {
            self.send_raw(&[0xff, 0xfe, 0xfd]);
        }
        if let Some(bytes) = self.config.stderr_flood {
            flood_stderr(bytes);
        }
    }

    /// Logs the grandchild and reaps it on a thread if it ever exits.
    fn watch_grandchild(&self, mut child: Child) {
        self.log(&format!("grandchild {}", child.id()));
        thread::spawn(move || {
            let _ = child.wait();
        });
    }

    // ----- input loop -------------------------------------------------------

    fn run(self: &Arc<Self>) {
        let mut reader = io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => self.handle_line(&line),
                Err(err) => {
                    eprintln!("fault-child: stdin read failed: {err}");
                    break;
                }
            }
        }
        if self.config.ignore_eof {
            eprintln!("fault-child: stdin EOF ignored, running forever");
            loop {
                thread::park();
            }
        }
        exit_with(0, "stdin EOF");
    }

    fn handle_line(self: &Arc<Self>, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let message: Value = match serde_json::from_slice(line) {
            Ok(message) => message,
            Err(err) => {
                eprintln!("fault-child: unparsable input: {err}");
                self.send_error(&Value::Null, PARSE_ERROR, &format!("parse error: {err}"));
                return;
            }
        };
        let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
        match (message["method"].as_str(), message.get("id")) {
            (Some(method), Some(id)) => self.handle_request(method, id.clone(), params),
            (Some(method), None) => self.handle_notification(method, &params),
            (None, Some(id)) => {
                self.log(&format!("response {} {message}", id_text(id)));
                let waiter = self
                    .ask_waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id_key(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(message);
                }
            }
            (None, None) => eprintln!("fault-child: ignoring message without method: {message}"),
        }
    }

    fn handle_request(self: &Arc<Self>, method: &str, id: Value, params: Value) {
        self.log(&format!("request {method} {}", id_text(&id)));
        if self.config.hang_on.contains(method) {
            eprintln!("fault-child: hang_on: not answering {method} {id}");
            return;
        }
        match method {
            "initialize" => self.initialize(&id, &params),
            "ping" => self.send_result(&id, json!({})),
            "logging/setLevel" if self.config.log_all_levels => {
                self.log(&format!(
                    "set_level {}",
                    params["level"].as_str().unwrap_or("-")
                ));
                self.send_result(&id, json!({}))
            }
            "tools/list" => self.tools_list(&id, &params),
            "tools/call" => self.tools_call(id, &params),
            "prompts/list" if self.config.declares_prompts() => self.prompts_list(&id),
            "prompts/get" if self.config.declares_prompts() => self.prompts_get(&id, &params),
            "resources/list" if self.config.declares_resources() => {
                self.resources_list(&id, &params)
            }
            "resources/templates/list" if self.config.declares_resources() => self.send_result(
                &id,
                json!({"resourceTemplates": [{"uriTemplate": "fault://item/{index}", "name": "item"}]}),
            ),
            "resources/read" if self.config.declares_resources() => {
                self.resources_read(&id, &params)
            }
            "resources/subscribe" | "resources/unsubscribe"
                if self.config.declares_resources() =>
            {
                let verb = method.trim_start_matches("resources/");
                self.log(&format!("{verb} {}", params["uri"].as_str().unwrap_or("?")));
                self.send_result(&id, json!({}));
            }
            _ => self.send_error(
                &id,
                METHOD_NOT_FOUND,
                &format!("method not found: {method}"),
            ),
        }
    }

    fn handle_notification(&self, method: &str, params: &Value) {
        if self.config.log_notifications {
            self.log(&format!("notification {method}"));
        }
        match method {
            "notifications/initialized" => {
                if let Some(method) = &self.config.server_request {
                    self.send(&json!({"jsonrpc": "2.0", "id": "srv-1", "method": method}));
                }
                if let Some(ms) = self.config.list_changed_flood {
                    self.flood_list_changed(ms);
                }
            }
            "notifications/cancelled" => self.cancel(params),
            _ => eprintln!("fault-child: ignoring notification {method}"),
        }
    }

    fn cancel(&self, params: &Value) {
        let id = params.get("requestId").cloned().unwrap_or(Value::Null);
        let reason = params["reason"].as_str().unwrap_or("-");
        self.log(&format!("cancelled {} {reason}", id_text(&id)));
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flag) = in_flight.get(&id_key(&id)) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    // ----- methods ----------------------------------------------------------

    fn initialize(&self, id: &Value, params: &Value) {
        if let Some(ms) = self.config.slow_start {
            thread::sleep(Duration::from_millis(ms));
        }
        let version = params["protocolVersion"]
            .as_str()
            .unwrap_or(DEFAULT_PROTOCOL_VERSION);
        let (version, server_version) = match &self.config.server_version {
            Some(text) => (text.as_str(), text.as_str()),
            None => (version, "0.1.0"),
        };
        self.send_result(
            id,
            json!({
                "protocolVersion": version,
                "capabilities": self.capabilities(),
                "serverInfo": {"name": "fault-child", "version": server_version},
            }),
        );
    }

    fn capabilities(&self) -> Value {
        let mut capabilities = json!({"tools": {"listChanged": true}});
        if self.config.log_all_levels {
            capabilities["logging"] = json!({});
        }
        if self.config.declares_prompts() {
            capabilities["prompts"] = json!({"listChanged": true});
        }
        if self.config.declares_resources() {
            capabilities["resources"] = json!({"subscribe": true, "listChanged": true});
        }
        capabilities
    }

    fn resources_list(&self, id: &Value, params: &Value) {
        let mut resources: Vec<Value> = (0..self.config.resources.unwrap_or(0))
            .map(|i| json!({"uri": format!("fault://item/{i}"), "name": format!("item_{i}"), "mimeType": "text/plain"}))
            .collect();
        if self.config.huge_resource.is_some() {
            resources.push(json!({"uri": "fault://huge", "name": "huge"}));
        }
        if self.config.duplicate_entries {
            resources.push(json!({"uri": "fault://item/0", "name": "item_0_again"}));
        }
        let page_size = self.config.page_size.unwrap_or(usize::MAX);
        let offset = match params.get("cursor") {
            None | Some(Value::Null) => 0,
            Some(cursor) => match cursor.as_str().and_then(|c| c.parse::<usize>().ok()) {
                Some(offset) if offset <= resources.len() => offset,
                _ => {
                    self.send_error(id, INVALID_PARAMS, &format!("invalid cursor: {cursor}"));
                    return;
                }
            },
        };
        let end = offset.saturating_add(page_size).min(resources.len());
        let mut result = json!({"resources": &resources[offset..end]});
        if end < resources.len() {
            result["nextCursor"] = json!(end.to_string());
        }
        self.send_result(id, result);
    }

    fn resources_read(&self, id: &Value, params: &Value) {
        let uri = params["uri"].as_str().unwrap_or_default();
        if let (Some(bytes), "fault://huge") = (self.config.huge_resource, uri) {
            let text = "x".repeat(bytes);
            self.send_result(
                id,
                json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": text}]}),
            );
            return;
        }
        let index = uri
            .strip_prefix("fault://item/")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < self.config.resources.unwrap_or(0));
        match index {
            Some(i) => self.send_result(
                id,
                json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": format!("item {i}")}]}),
            ),
            None => self.send_error(id, -32002, &format!("resource not found: {uri}")),
        }
    }

    /// Names of the prompts served now (`prompts:N`, plus `added_prompt` once added).
    fn prompt_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.config.prompts.unwrap_or(0))
            .map(|i| format!("prompt_{i}"))
            .collect();
        if self.prompts_added.load(Ordering::SeqCst) {
            names.push("added_prompt".to_owned());
        }
        names
    }

    fn prompts_list(&self, id: &Value) {
        if self.config.prompts_fail {
            self.send_error(id, INTERNAL_ERROR, "prompts/list failed on purpose");
            return;
        }
        let prompts: Vec<Value> = self
            .prompt_names()
            .iter()
            .map(|name| {
                json!({
                    "name": name,
                    "description": format!("The {name} prompt"),
                    "arguments": [{"name": "topic", "description": "What about", "required": false}],
                })
            })
            .collect();
        let mut prompts = prompts;
        if self.config.duplicate_entries && !prompts.is_empty() {
            let mut again = prompts[0].clone();
            again["description"] = json!("The prompt_0 prompt, again");
            prompts.push(again);
        }
        self.send_result(id, json!({"prompts": prompts}));
    }

    fn prompts_get(&self, id: &Value, params: &Value) {
        let name = params["name"].as_str().unwrap_or_default();
        if !self.prompt_names().iter().any(|n| n == name) {
            self.send_error(id, INVALID_PARAMS, &format!("unknown prompt: {name}"));
            return;
        }
        let args = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        self.send_result(
            id,
            json!({
                "description": format!("The {name} prompt"),
                "messages": [{"role": "user", "content": {"type": "text", "text": format!("{name} {args}")}}],
            }),
        );
    }

    fn all_tool_defs(&self) -> Vec<Value> {
        let mut tools = base_tool_defs();
        tools.extend((0..self.config.extra_tools).map(|i| echo_tool_def(&format!("tool_{i}"))));
        tools.extend(
            self.config
                .tool_names
                .iter()
                .map(|name| echo_tool_def(name)),
        );
        if self.tools_added.load(Ordering::SeqCst) {
            tools.push(echo_tool_def("added_later"));
        }
        if self.config.huge_result.is_some() {
            tools.push(tool_def(
                "huge",
                "Answers with one very long line",
                json!({}),
                &[],
            ));
        }
        if self.config.bad_tools {
            tools.extend(bad_tool_defs());
        }
        if self.config.ask_tool {
            tools.push(tool_def(
                "ask",
                "Send the client a request and answer with its response",
                json!({
                    "method": {"type": "string"},
                    "params": {"type": "object"},
                    "wait": {"type": "boolean"},
                    "crash_after_ms": {"type": "integer"},
                    "cancel_after_ms": {"type": "integer"},
                    "notify_after": {"type": "object"},
                }),
                &["method"],
            ));
        }
        tools
    }

    fn tools_list(&self, id: &Value, params: &Value) {
        let tools = self.all_tool_defs();
        if let Some(bytes) = self.config.huge_list {
            let head = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools}}).to_string();
            let head = format!("{},\"_meta\":{{\"padding\":\"", &head[..head.len() - 2]);
            self.send_raw(&padded_line(&head, "\"}}}", bytes));
            return;
        }
        let Some(page_size) = self.config.page_size else {
            self.send_result(id, json!({"tools": tools}));
            return;
        };
        let offset = match params.get("cursor") {
            None | Some(Value::Null) => 0,
            Some(cursor) => match cursor.as_str().and_then(|c| c.parse::<usize>().ok()) {
                Some(offset) if offset <= tools.len() => offset,
                _ => {
                    self.send_error(id, INVALID_PARAMS, &format!("invalid cursor: {cursor}"));
                    return;
                }
            },
        };
        let end = (offset + page_size).min(tools.len());
        let mut result = json!({"tools": &tools[offset..end]});
        if end < tools.len() {
            result["nextCursor"] = json!(end.to_string());
        }
        self.send_result(id, result);
    }

    fn tool_kind(&self, name: &str) -> Option<Tool> {
        let builtin = match name {
            "echo" => Some(Tool::Echo),
            "sleep" => Some(Tool::Sleep),
            "fail" => Some(Tool::Fail),
            "pid" => Some(Tool::Pid),
            "crash" => Some(Tool::Crash),
            "progress" => Some(Tool::Progress),
            _ => None,
        };
        let extra = name
            .strip_prefix("tool_")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < self.config.extra_tools && name == format!("tool_{n}"));
        let named = self.config.tool_names.iter().any(|n| n == name)
            || (self.config.bad_tools && BAD_TOOL_NAMES.contains(&name));
        let added = name == "added_later" && self.tools_added.load(Ordering::SeqCst);
        let huge = (name == "huge" && self.config.huge_result.is_some()).then_some(Tool::Huge);
        let ask = (name == "ask" && self.config.ask_tool).then_some(Tool::Ask);
        builtin
            .or(huge)
            .or(ask)
            .or((extra || named || added).then_some(Tool::Echo))
    }

    fn tools_call(self: &Arc<Self>, id: Value, params: &Value) {
        if let Some(bytes) = self.config.stderr_flood {
            flood_stderr(bytes);
        }
        let index = self.calls_received.fetch_add(1, Ordering::SeqCst);
        if self.config.crash_after.is_some_and(|n| index >= n) {
            exit_with(3, "crash_after reached");
        }
        if !self.first_call_seen.swap(true, Ordering::SeqCst) {
            self.first_call_faults();
        }
        let name = params["name"].as_str().unwrap_or_default();
        let args = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if self.config.log_all_levels {
            for level in [
                "debug",
                "info",
                "notice",
                "warning",
                "error",
                "critical",
                "alert",
                "emergency",
            ] {
                self.send(&json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": {"level": level, "logger": "fault", "data": level},
                }));
            }
        }
        if let Some(token) = &self.config.fake_progress {
            self.send(&json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": token, "progress": 999, "message": "forged"},
            }));
        }
        let Some(tool) = self.tool_kind(name) else {
            self.finish_call(&id, Err((INVALID_PARAMS, format!("unknown tool: {name}"))));
            return;
        };
        match tool {
            Tool::Echo => self.finish_call(&id, Ok(echo_result(&args))),
            Tool::Fail => {
                let mut result = text_result("failed on purpose");
                result["isError"] = json!(true);
                self.finish_call(&id, Ok(result));
            }
            Tool::Pid => self.finish_call(&id, Ok(text_result(&process::id().to_string()))),
            Tool::Huge => {
                let bytes = self.config.huge_result.unwrap_or_default();
                let head = format!(
                    r#"{{"id":{id},"jsonrpc":"2.0","result":{{"content":[{{"type":"text","text":""#
                );
                self.send_raw(&padded_line(&head, r#""}]}}"#, bytes));
            }
            Tool::Crash => {
                let code = args["code"].as_i64().unwrap_or(3);
                exit_with(i32::try_from(code).unwrap_or(3), "crash tool");
            }
            Tool::Sleep => {
                let ms = args["ms"].as_u64().unwrap_or(0);
                self.spawn_cancellable(id, move |_, cancelled| {
                    sleep_unless_cancelled(Duration::from_millis(ms), cancelled)
                        .then(|| text_result(&format!("slept {ms}")))
                });
            }
            Tool::Progress => {
                let token = params["_meta"].get("progressToken").cloned();
                self.spawn_cancellable(id, move |server, cancelled| {
                    server.run_progress(&args, token.as_ref(), cancelled)
                });
            }
            Tool::Ask => self.ask(id, &args),
        }
    }

    /// The `ask` tool: a request to the client, then what its arguments say (see the header).
    fn ask(self: &Arc<Self>, id: Value, args: &Value) {
        let n = self.asks.fetch_add(1, Ordering::SeqCst) + 1;
        let ask_id = json!(format!("ask-{n}"));
        let method = args["method"].as_str().unwrap_or_default();
        let mut request = json!({"jsonrpc": "2.0", "id": ask_id, "method": method});
        if let Some(params) = args.get("params") {
            request["params"] = params.clone();
        }
        let wait = args["wait"].as_bool().unwrap_or(true)
            && args.get("crash_after_ms").is_none()
            && args.get("cancel_after_ms").is_none();
        let (tx, rx) = mpsc::channel();
        if wait {
            self.ask_waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id_key(&ask_id), tx);
        }
        self.send(&request);
        if let Some(ms) = args["crash_after_ms"].as_u64() {
            thread::sleep(Duration::from_millis(ms));
            exit_with(3, "ask: dying before the client's answer");
        }
        if let Some(ms) = args["cancel_after_ms"].as_u64() {
            thread::sleep(Duration::from_millis(ms));
            self.send(&json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": ask_id, "reason": "changed my mind"},
            }));
            self.finish_call(
                &id,
                Ok(text_result(&format!("cancelled {}", id_text(&ask_id)))),
            );
            return;
        }
        if !wait {
            self.finish_call(&id, Ok(text_result(&format!("sent {}", id_text(&ask_id)))));
            return;
        }
        let notify_after = args.get("notify_after").cloned();
        self.spawn_cancellable(id, move |server, cancelled| loop {
            if cancelled.load(Ordering::SeqCst) {
                return None;
            }
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(response) => {
                    if let Some(n) = &notify_after {
                        let mut notification = json!({"jsonrpc": "2.0", "method": n["method"]});
                        if let Some(params) = n.get("params") {
                            notification["params"] = params.clone();
                        }
                        server.send(&notification);
                    }
                    let mut result = text_result(&response.to_string());
                    result["structuredContent"] = json!({"response": response});
                    return Some(result);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        });
    }

    /// Faults that fire on the first `tools/call` only, before it is answered.
    fn first_call_faults(&self) {
        if self.config.sigstop_on_call {
            eprintln!("fault-child: raising SIGSTOP");
            if let Err(err) = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP) {
                eprintln!("fault-child: raise(SIGSTOP) failed: {err}");
            }
        }
        if let Some(bytes) = self.config.huge_line {
            self.send_raw(&huge_line(bytes));
        }
        if self.config.no_newline_flood {
            self.flood_stdout_without_newline();
        }
    }

    /// Sends `notifications/tools/list_changed` every `ms` milliseconds, forever.
    fn flood_list_changed(&self, ms: u64) {
        // Stdout's own lock keeps each line whole next to the writes through `self.out`.
        thread::spawn(move || loop {
            let line = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n";
            let mut out = io::stdout().lock();
            if out.write_all(line).and_then(|()| out.flush()).is_err() {
                return;
            }
            drop(out);
            thread::sleep(Duration::from_millis(ms));
        });
    }

    fn flood_stdout_without_newline(&self) -> ! {
        eprintln!("fault-child: flooding stdout without newline");
        let chunk = [b'x'; 64 * 1024];
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Err(err) = out.write_all(&chunk).and_then(|()| out.flush()) {
                exit_with(1, &format!("stdout flood stopped: {err}"));
            }
        }
    }

    /// Runs `task` on its own thread; if the request is cancelled meanwhile
    /// (or the task returns `None`), no response is sent.
    fn spawn_cancellable<F>(self: &Arc<Self>, id: Value, task: F)
    where
        F: FnOnce(&Server, &AtomicBool) -> Option<Value> + Send + 'static,
    {
        let key = id_key(&id);
        let cancelled = Arc::new(AtomicBool::new(false));
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), Arc::clone(&cancelled));
        let server = Arc::clone(self);
        thread::spawn(move || {
            let outcome = task(&server, &cancelled);
            server
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            match outcome {
                Some(result) if !cancelled.load(Ordering::SeqCst) => {
                    server.finish_call(&id, Ok(result));
                }
                _ => eprintln!("fault-child: request {id} cancelled, not answering"),
            }
        });
    }

    fn run_progress(
        &self,
        args: &Value,
        token: Option<&Value>,
        cancelled: &AtomicBool,
    ) -> Option<Value> {
        let steps = args["steps"].as_u64().unwrap_or(3);
        let interval = Duration::from_millis(args["interval_ms"].as_u64().unwrap_or(100));
        for step in 1..=steps {
            if !sleep_unless_cancelled(interval, cancelled) {
                return None;
            }
            if let Some(token) = token {
                self.send(&json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {
                        "progressToken": token,
                        "progress": step,
                        "total": steps,
                        "message": format!("step {step}/{steps}"),
                    },
                }));
            }
        }
        Some(text_result(&format!("done {steps}")))
    }

    /// Sends a `tools/call` response, applying the response-level faults.
    fn finish_call(&self, id: &Value, outcome: CallOutcome) {
        if self.config.garbage_before_response {
            self.send_raw(b"this is not JSON-RPC");
        }
        if self.config.unknown_id_response {
            self.send_result(&json!(UNKNOWN_RESPONSE_ID), text_result("unsolicited"));
        }
        let times = if self.config.respond_twice { 2 } else { 1 };
        for _ in 0..times {
            if self.config.result_and_error {
                let result = outcome.clone().unwrap_or_else(|_| json!({}));
                self.send(&json!({
                    "jsonrpc": "2.0", "id": id, "result": result,
                    "error": {"code": -32603, "message": "and an error too"},
                }));
                continue;
            }
            if self.config.empty_response {
                self.send(&json!({"jsonrpc": "2.0", "id": id}));
                continue;
            }
            match &outcome {
                Ok(result) => self.send_result(id, result.clone()),
                Err((code, message)) => self.send_error(id, *code, message),
            }
        }
        let answered = self.calls_answered.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.tools_change_after == Some(answered)
            && !self.tools_added.swap(true, Ordering::SeqCst)
        {
            self.send(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
        }
        if self.config.prompts_change_after == Some(answered)
            && !self.prompts_added.swap(true, Ordering::SeqCst)
        {
            self.send(&json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"}));
        }
    }
}

/// One line of exactly `bytes` bytes (newline excluded): a padded JSON
/// notification if it fits, plain `x`s otherwise.
fn huge_line(bytes: usize) -> Vec<u8> {
    let prefix =
        br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"debug","data":""#;
    let suffix = br#""}}"#;
    let overhead = prefix.len() + suffix.len();
    if bytes < overhead {
        return vec![b'x'; bytes];
    }
    let mut line = Vec::with_capacity(bytes);
    line.extend_from_slice(prefix);
    line.resize(bytes - suffix.len(), b'x');
    line.extend_from_slice(suffix);
    line
}

fn main() {
    let config = Config::from_env_and_args().unwrap_or_else(|err| exit_with(2, &err));
    if let Some(path) = std::env::var_os("FAULT_MARKER") {
        append_line(
            Path::new(&path),
            &format!("start {} {}", process::id(), unix_millis()),
        );
    }
    let _ = STDERR_LINES.set(config.stderr_lines.clone());
    write_stderr_lines();
    if let Some(code) = config.exit_on_start {
        exit_with(code, "exit_on_start");
    }
    if config.setsid_sleeper {
        setsid_sleeper();
    }
    // Spawned before SIGTERM is blocked: the child inherits our signal mask.
    let grandchild = if config.spawn_grandchild {
        spawn_grandchild()
    } else {
        None
    };
    if config.ignore_sigterm {
        // Must happen before any thread is spawned so every thread inherits it.
        block_sigterm();
    }
    let server = Arc::new(Server::new(config));
    if let Some(child) = grandchild {
        server.watch_grandchild(child);
    }
    if server.config.spawn_setsid_grandchild {
        if let Some(mut child) = spawn_setsid_grandchild() {
            thread::spawn(move || {
                let _ = child.wait();
            });
        }
    }
    server.startup_faults();
    server.run();
}

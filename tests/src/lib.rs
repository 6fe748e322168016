//! Test kit for driving the built `mcp-orchestra` binary as a real client would.
//!
//! - [`deps`]: the real reference servers, installed project-locally at pinned versions by
//!   `scripts/test-deps.sh` (run once per test process, idempotent).
//! - [`Gateway`]: the gateway under test over stdio, with a raw JSON-RPC client that checks
//!   every line on the gateway's stdout is a JSON-RPC message.
//! - [`procs`]: which processes of one test are still alive, read from /proc.
//! - [`inproc`]: the gateway library in this process, with several client sessions on it.
//!
//! Every await here is bounded: a hang fails the test instead of stalling CI.

pub mod http_kit;
pub mod inproc;
pub mod procs;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

/// Default bound on any single wait in a test.
pub const STEP: Duration = Duration::from_secs(30);

/// Awaits `fut` for at most `limit`, panicking with `what` if it does not finish.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Paths of the pinned reference servers and tools.
#[derive(Debug, Clone)]
pub struct Deps {
    pub everything: String,
    pub filesystem: String,
    pub memory: String,
    pub time: String,
    pub git: String,
    /// Python with the official `mcp` SDK installed (the 1.x line, beside the servers).
    pub python: String,
    /// Python with the official `mcp` SDK's 2.x line installed (a client-only venv).
    pub python2: String,
}

/// Installs (once, idempotently) and returns the reference servers.
pub fn deps() -> &'static Deps {
    static DEPS: OnceLock<Deps> = OnceLock::new();
    DEPS.get_or_init(|| {
        let root = workspace_root();
        let status = std::process::Command::new(root.join("scripts/test-deps.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("running scripts/test-deps.sh");
        assert!(status.success(), "scripts/test-deps.sh failed: {status}");
        let env = std::fs::read_to_string(root.join(".test-deps/env.sh"))
            .expect("reading .test-deps/env.sh");
        let vars: HashMap<String, String> = env
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix("export ")
                    .unwrap_or(l.trim())
                    .split_once('=')
            })
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.trim_matches(|c| c == '"' || c == '\'').to_owned(),
                )
            })
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing from .test-deps/env.sh"))
        };
        Deps {
            everything: get("ORCHESTRA_TEST_SERVER_EVERYTHING"),
            filesystem: get("ORCHESTRA_TEST_SERVER_FILESYSTEM"),
            memory: get("ORCHESTRA_TEST_SERVER_MEMORY"),
            time: get("ORCHESTRA_TEST_SERVER_TIME"),
            git: get("ORCHESTRA_TEST_SERVER_GIT"),
            python: get("ORCHESTRA_TEST_PYTHON"),
            python2: get("ORCHESTRA_TEST_PYTHON2"),
        }
    })
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A binary of this workspace (built by `cargo build --workspace` before the tests run).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests",
        bin.display()
    );
    bin
}

pub fn gateway_bin() -> PathBuf {
    workspace_bin("mcp-orchestra")
}

pub fn fault_child() -> PathBuf {
    workspace_bin("orchestra-fault-child")
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "orchestra-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique value put in the gateway's environment; every descendant inherits it (the kit
/// admits it in the config: [`with_marker_inherited`]), which is how [`procs`] finds
/// leftovers.
pub fn new_marker() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Name of the environment variable carrying the marker.
pub const MARKER_VAR: &str = "ORCHESTRA_TEST_MARKER";

/// `config_yaml` with [`MARKER_VAR`] added to what children inherit (`gateway.inherit_env`
/// and every server's own `inherit_env` list): children get only the variables their config
/// admits, and the marker is how [`procs`] finds every process of a test. Text that is not a
/// YAML mapping (a test of a broken config) is returned unchanged.
pub fn with_marker_inherited(config_yaml: &str) -> String {
    use serde_yaml::{Mapping, Value as Yaml};
    let Ok(Yaml::Mapping(mut root)) = serde_yaml::from_str::<Yaml>(config_yaml) else {
        return config_yaml.to_owned();
    };
    let marker = Yaml::String(MARKER_VAR.to_owned());
    // Adds the marker to an `inherit_env` list; `all` already admits it.
    let admit = |entry: &mut Mapping| match entry.get_mut("inherit_env") {
        None => {
            entry.insert("inherit_env".into(), Yaml::Sequence(vec![marker.clone()]));
        }
        Some(Yaml::Sequence(names)) if !names.contains(&marker) => names.push(marker.clone()),
        Some(_) => {}
    };
    match root.get_mut("gateway") {
        Some(Yaml::Mapping(gateway)) => admit(gateway),
        Some(_) => return config_yaml.to_owned(),
        None => {
            let mut gateway = Mapping::new();
            admit(&mut gateway);
            root.insert("gateway".into(), Yaml::Mapping(gateway));
        }
    }
    if let Some(Yaml::Mapping(servers)) = root.get_mut("servers") {
        for (_, server) in servers.iter_mut() {
            if let Yaml::Mapping(server) = server {
                if server.contains_key("inherit_env") {
                    admit(server);
                }
            }
        }
    }
    serde_yaml::to_string(&Yaml::Mapping(root)).unwrap_or_else(|_| config_yaml.to_owned())
}

type Replies = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The gateway under test, spoken to over its stdio.
pub struct Gateway {
    child: Child,
    /// The gateway's stdin, written only under this lock so that concurrent test tasks
    /// sharing `&Gateway` never interleave lines.
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    replies: Replies,
    next_id: AtomicU64,
    notifications: mpsc::UnboundedReceiver<Value>,
    /// Error responses with `id: null` (answers to input that had no usable id).
    null_id_errors: mpsc::UnboundedReceiver<Value>,
    /// Every line the gateway wrote to stdout that was not a JSON-RPC message.
    pub stdout_garbage: Arc<Mutex<Vec<String>>>,
    stderr_log: Arc<Mutex<Vec<String>>>,
    /// The task reading stderr: it ends at EOF, after the gateway's last log line.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    pub marker: String,
    pub dir: TempDir,
    pub initialize_result: Value,
}

impl Gateway {
    /// Writes `config_yaml` to a scratch dir, starts `mcp-orchestra serve` on it and completes
    /// the MCP handshake.
    pub async fn start(config_yaml: &str) -> Self {
        Self::start_with(config_yaml, &[]).await
    }

    /// Like [`Gateway::start`], with extra environment for the gateway.
    pub async fn start_with(config_yaml: &str, env: &[(&str, &str)]) -> Self {
        let mut gw = Self::spawn(config_yaml, env);
        let init = gw
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": { "name": "orchestra-tests", "version": "0" }
                }),
            )
            .await
            .expect("initialize succeeds");
        gw.initialize_result = init;
        gw.notify("notifications/initialized", json!({})).await;
        gw
    }

    /// Starts the gateway without any handshake.
    pub fn spawn(config_yaml: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with_args(config_yaml, env, &[])
    }

    /// Like [`Gateway::spawn`], with extra arguments after `serve -c <config>` (e.g.
    /// `--listen 127.0.0.1:0`).
    pub fn spawn_with_args(config_yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = TempDir::new("gw");
        let config = dir.join("orchestra.yaml");
        std::fs::write(&config, with_marker_inherited(config_yaml)).expect("writing config");
        let marker = new_marker();
        let mut cmd = Command::new(gateway_bin());
        cmd.arg("serve")
            .arg("-c")
            .arg(&config)
            .args(args)
            .env(MARKER_VAR, &marker)
            // A fresh catalog cache per gateway: every test starts cold unless it says otherwise.
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            // And a fresh task store: plans never leak between tests or into the user's own.
            .env("ORCHESTRA_DATA_DIR", dir.join("data"))
            .env("RUST_LOG", "info,orchestra_gateway=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning mcp-orchestra");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let replies: Replies = Arc::default();
        let garbage: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr_log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (ntx, nrx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        {
            let replies = replies.clone();
            let garbage = garbage.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let msg: Value = match serde_json::from_str(&line) {
                        Ok(v @ Value::Object(_)) if v.get("jsonrpc") == Some(&json!("2.0")) => v,
                        _ => {
                            garbage.lock().unwrap().push(line);
                            continue;
                        }
                    };
                    let is_response = msg.get("method").is_none();
                    if is_response
                        && msg.get("id") == Some(&Value::Null)
                        && msg.get("error").is_some()
                    {
                        let _ = etx.send(msg);
                    } else if is_response {
                        let id = msg.get("id").and_then(Value::as_u64);
                        let waiter = id.and_then(|id| replies.lock().unwrap().remove(&id));
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(msg);
                            }
                            None => garbage
                                .lock()
                                .unwrap()
                                .push(format!("unexpected response: {line}")),
                        }
                    } else {
                        let _ = ntx.send(msg);
                    }
                }
            });
        }
        let stderr_reader = {
            let log = stderr_log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("ORCHESTRA_TEST_SHOW_LOGS").is_some() {
                        eprintln!("[gateway] {line}");
                    }
                    log.lock().unwrap().push(line);
                }
            })
        };
        Self {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            replies,
            next_id: AtomicU64::new(1),
            notifications: nrx,
            null_id_errors: erx,
            stdout_garbage: garbage,
            stderr_log,
            stderr_reader: Some(stderr_reader),
            marker,
            dir,
            initialize_result: Value::Null,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("gateway pid")
    }

    /// Sends a request and waits (bounded) for its response: Ok(result) or Err(error object).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Value> {
        let rx = self.send_request(method, params).await;
        let msg = within(STEP, &format!("response to {method}"), rx)
            .await
            .expect("gateway closed stdout before answering");
        match msg.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(msg["result"].clone()),
        }
    }

    /// Sends a request and returns its id and the pending response.
    pub async fn send_request(&self, method: &str, params: Value) -> oneshot::Receiver<Value> {
        self.send_request_with_id(method, params).await.1
    }

    pub async fn send_request_with_id(
        &self,
        method: &str,
        params: Value,
    ) -> (u64, oneshot::Receiver<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.replies.lock().unwrap().insert(id, tx);
        self.write(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        (id, rx)
    }

    pub async fn notify(&self, method: &str, params: Value) {
        self.write(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
            .await;
    }

    /// Writes raw text (a line is appended) to the gateway's stdin.
    pub async fn write_raw(&self, text: &str) {
        let mut line = text.to_owned();
        line.push('\n');
        self.write_bytes(line.as_bytes()).await;
    }

    async fn write(&self, msg: &Value) {
        let mut line = msg.to_string();
        line.push('\n');
        self.write_bytes(line.as_bytes()).await;
    }

    async fn write_bytes(&self, bytes: &[u8]) {
        // Through the async ChildStdin itself: the pipe is non-blocking, so a blocking-thread
        // writer (tokio::fs::File over a dup of it) would meet EAGAIN when the gateway is slow
        // to read, and lose the rest of the line.
        let mut stdin = self.stdin.lock().await;
        let stdin = stdin.as_mut().expect("stdin open");
        within(STEP, "writing to the gateway's stdin", async {
            stdin.write_all(bytes).await?;
            stdin.flush().await
        })
        .await
        .expect("gateway stdin write");
    }

    /// `tools/call` → Ok(result) or Err(JSON-RPC error).
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<Value, Value> {
        self.request(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        )
        .await
    }

    /// Exposed tool names.
    pub async fn tool_names(&self) -> Vec<String> {
        let list = self
            .request("tools/list", json!({}))
            .await
            .expect("tools/list");
        list["tools"]
            .as_array()
            .expect("tools array")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The health tool's structured report.
    pub async fn health(&self) -> Value {
        let r = self
            .call("orchestrator_health", json!({}))
            .await
            .expect("health call");
        r["structuredContent"].clone()
    }

    /// One server's entry in the health report.
    pub async fn server_health(&self, name: &str) -> Value {
        let h = self.health().await;
        h["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no server {name} in health: {h}"))
    }

    /// Polls health until `pred` holds for server `name` (bounded).
    pub async fn wait_server(
        &self,
        name: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        // The last state seen goes into the failure message: "timed out" alone says nothing.
        let mut last = Value::Null;
        let found = tokio::time::timeout(limit, async {
            loop {
                let s = self.server_health(name).await;
                if pred(&s) {
                    return s;
                }
                last = s;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match found {
            Ok(s) => s,
            Err(_) => panic!(
                "timed out after {limit:?}: server {name} to reach the expected state; last seen: {last}"
            ),
        }
    }

    /// The next notification with `method` (others are skipped), within `limit`.
    pub async fn next_notification(&mut self, method: &str, limit: Duration) -> Option<Value> {
        tokio::time::timeout(limit, async {
            while let Some(n) = self.notifications.recv().await {
                if n["method"] == method {
                    return Some(n);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// The next error response with `id: null`, within [`STEP`].
    pub async fn next_null_id_error(&mut self) -> Value {
        within(
            STEP,
            "an error response with id null",
            self.null_id_errors.recv(),
        )
        .await
        .expect("gateway closed stdout")
    }

    /// Drains notifications received so far.
    pub fn drain_notifications(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(n) = self.notifications.try_recv() {
            out.push(n);
        }
        out
    }

    /// The gateway's stderr so far.
    pub fn logs(&self) -> String {
        self.stderr_log.lock().unwrap().join("\n")
    }

    /// Closes stdin (the client goes away) and waits for the gateway to exit.
    pub async fn close(mut self, limit: Duration) -> (ExitStatus, Self) {
        self.stdin.get_mut().take();
        let status = within(limit, "gateway exit after stdin EOF", self.child.wait())
            .await
            .expect("wait");
        (status, self)
    }

    /// Sends `signal` to the gateway process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal gateway");
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let status = within(limit, "gateway exit", self.child.wait())
            .await
            .expect("wait");
        // The exit can be seen before the reader has taken the last lines from the pipe:
        // wait for its EOF, so that `logs()` holds everything the gateway wrote.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        status
    }

    /// Panics if anything but JSON-RPC reached the gateway's stdout.
    pub fn assert_clean_stdout(&self) {
        let garbage = self.stdout_garbage.lock().unwrap();
        assert!(
            garbage.is_empty(),
            "non-JSON-RPC lines on the gateway's stdout: {garbage:?}"
        );
    }
}

/// YAML for a server entry running the fault child with `mode` directives.
pub fn fault_server(name: &str, mode: &str, extra_env: &[(&str, &str)]) -> String {
    let mut env = format!("{{FAULT_MODE: \"{mode}\"");
    for (k, v) in extra_env {
        env.push_str(&format!(", {k}: \"{v}\""));
    }
    env.push('}');
    format!(
        "  {name}: {{command: \"{}\", env: {env}}}\n",
        fault_child().display()
    )
}

/// Text of the first content block of a tool result.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Like [`fault_server`], with `extra` per-server settings appended inside the entry's braces
/// (e.g. `"startup_timeout: 2s, restart: {initial_backoff: 20s}"`); an empty `extra` gives the
/// plain [`fault_server`] entry.
pub fn fault_with(name: &str, mode: &str, env: &[(&str, &str)], extra: &str) -> String {
    let entry = fault_server(name, mode, env);
    let body = entry
        .strip_suffix("}\n")
        .expect("fault_server entries end with a closing brace");
    if extra.is_empty() {
        entry
    } else {
        format!("{body}, {extra}}}\n")
    }
}

/// YAML for the server entry `everything`: the real `server-everything` over stdio.
pub fn everything_entry() -> String {
    format!(
        "  everything: {{command: \"{}\", args: [stdio]}}\n",
        deps().everything
    )
}

/// Ends a test's gateway and checks it ended cleanly: stdout carried only JSON-RPC (checked
/// before and after shutdown), closing stdin makes the gateway exit 0 within 20 s, and no
/// process of this test is left within 5 s.
pub async fn finish(gw: Gateway) {
    gw.assert_clean_stdout();
    let marker = gw.marker.clone();
    let (status, gw) = gw.close(Duration::from_secs(20)).await;
    assert!(status.success(), "gateway exit: {status}\n{}", gw.logs());
    gw.assert_clean_stdout();
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}

/// Waits until every server in `names` is `ready` in health, each within `limit`.
pub async fn wait_ready(gw: &Gateway, names: &[&str], limit: Duration) {
    for name in names {
        gw.wait_server(name, limit, |s| s["state"] == "ready").await;
    }
}

/// The string at `v[key]`; panics if it is missing or not a string.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// The `_meta` detail (`mcp-orchestra/unavailable`) of an "unavailable" tool result, after
/// checking it is an isError answer the model can read that names `server`.
pub fn unavailable_detail(result: &Value, server: &str) -> Value {
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(result);
    assert!(
        text.contains(&format!("server \"{server}\"")),
        "the answer names the server: {text}"
    );
    result["_meta"]["mcp-orchestra/unavailable"].clone()
}

/// Asks real `server-everything` directly (no gateway) with a raw JSON-RPC exchange over its
/// stdio: initialize, initialized, then `method` — and returns that request's result.
pub async fn everything_direct(method: &str, params: Value) -> Value {
    let mut child = tokio::process::Command::new(&deps().everything)
        .arg("stdio")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server-everything");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut script = String::new();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "direct", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}),
    ] {
        script.push_str(&msg.to_string());
        script.push('\n');
    }
    within(
        STEP,
        "write to server-everything",
        stdin.write_all(script.as_bytes()),
    )
    .await
    .unwrap();
    let result = within(STEP, "server-everything's answer", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("stdout open");
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg["id"] == 2 {
                return msg;
            }
        }
    })
    .await;
    drop(stdin);
    let _ = within(STEP, "server-everything exits", child.wait()).await;
    result["result"].clone()
}

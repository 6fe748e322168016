//! Several client sessions on one gateway, in process.
//!
//! The binary serves one client per process (stdio), but the gateway keeps its per-session
//! state for many (`sessions`: ids, levels, served lists; `reply::Caller`: whose call
//! is whose). This kit starts the real library [`Gateway`] with real children and opens
//! sessions on it the way `front::stdio` does — [`Session::new`], then [`Session::handle`] and
//! [`Session::flush`] per message — except that each session writes to its own pipe
//! ([`FrontSink::pipe`]) and the test reads each pipe separately.
//!
//! No watchdog (library use): its cgroup subtree is named by the process id, which the
//! gateways of one test process would share. Children are still stopped by
//! [`InProcess::finish`] (the gateway's own shutdown), and checked gone through the marker
//! every server gets in its `env`.
//!
//! Every wait is bounded, as in the rest of the kit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestra_gateway::child::State;
use orchestra_gateway::front::session::Session;
use orchestra_gateway::front::FrontSink;
use orchestra_gateway::{Gateway, StartOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::{new_marker, procs, within, TempDir, MARKER_VAR, STEP};

/// A gateway started in this process.
pub struct InProcess {
    gw: Gateway,
    pub marker: String,
    _dir: TempDir,
}

impl InProcess {
    /// Starts a gateway on `config_yaml` (each server is given the marker in its `env`) and
    /// waits until every child has finished starting; panics unless all are ready.
    pub async fn start(config_yaml: &str) -> Self {
        let dir = TempDir::new("inproc");
        let marker = new_marker();
        let path = dir.join("orchestra.yaml");
        std::fs::write(&path, with_marker_env(config_yaml, &marker)).expect("writing config");
        let mut config = orchestra_config::load(&path).expect("a valid configuration");
        // The Task Orchestrator wired as the binary wires it, on a store of this test's own.
        if config.orchestrator.store.is_none() {
            config.orchestrator.store = Some(dir.join("tasks.db"));
        }
        let plans = mcp_orchestra::orchestrator::Lazy::new(&config.orchestrator);
        let options = StartOptions {
            local_tools: mcp_orchestra::orchestrator::tools(&plans),
            local_resources: Some(Arc::new(mcp_orchestra::orchestrator::Plans(plans))),
            ..StartOptions::default()
        };
        // The gateway's own front is nowhere: every session has its own output.
        let gw =
            Gateway::start(config, FrontSink::discard(), options).expect("starting the gateway");
        within(
            Duration::from_secs(90),
            "children to start",
            gw.wait_settled(),
        )
        .await;
        for child in gw.children() {
            assert_eq!(child.state(), State::Ready, "server {}", child.name());
        }
        Self {
            gw,
            marker,
            _dir: dir,
        }
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    /// Opens a session and completes its handshake, declaring `capabilities`.
    pub async fn session(&self, name: &str, capabilities: Value) -> Client {
        let mut client = self.open(name);
        let init = client
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": capabilities,
                    "clientInfo": { "name": name, "version": "0" }
                }),
            )
            .await
            .expect("initialize succeeds");
        assert_eq!(init["serverInfo"]["name"], "mcp-orchestra", "{init}");
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        client
    }

    /// Opens a session without any handshake.
    pub fn open(&self, name: &str) -> Client {
        let (tx, rx) = tokio::net::unix::pipe::pipe().expect("a pipe for the session's output");
        let session = Session::new(self.gw.clone(), FrontSink::pipe(tx), "in-process");
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let garbage: Arc<Mutex<Vec<String>>> = Arc::default();
        {
            let garbage = garbage.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(rx).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v @ Value::Object(_)) if v["jsonrpc"] == "2.0" => {
                            let _ = out_tx.send(v);
                        }
                        _ => garbage.lock().unwrap().push(line),
                    }
                }
            });
        }
        Client {
            name: name.to_owned(),
            session,
            output: out_rx,
            seen: VecDeque::new(),
            garbage,
            next_id: 1000,
        }
    }

    /// Shuts the gateway down (bounded) and checks that no process of it is left.
    pub async fn finish(self) {
        within(
            Duration::from_secs(30),
            "gateway shutdown",
            self.gw.shutdown(),
        )
        .await;
        for child in self.gw.children() {
            assert_eq!(child.state(), State::Stopped, "server {}", child.name());
        }
        procs::assert_none_left(&self.marker, Duration::from_secs(5)).await;
    }
}

/// One client session and everything its output carried.
pub struct Client {
    pub name: String,
    session: Session,
    output: mpsc::UnboundedReceiver<Value>,
    /// Messages read from the output and not taken yet, in order.
    seen: VecDeque<Value>,
    /// Lines on the output that were not JSON-RPC messages.
    garbage: Arc<Mutex<Vec<String>>>,
    /// Ids for [`Client::request`]; far from the small ids the tests choose themselves.
    next_id: u64,
}

impl Client {
    /// Hands one message to the session, as its transport would after reading it, and ends
    /// the input burst (the session writes what it queued for children).
    pub async fn send(&self, msg: &Value) {
        let line = msg.to_string();
        within(
            STEP,
            &format!("{} to take in {line}", self.name),
            self.session.handle(line.as_bytes()),
        )
        .await;
        self.session.flush();
    }

    /// Sends a request with `id` (any JSON id) and returns at once.
    pub async fn send_request(&self, id: Value, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
    }

    /// Sends a request with a fresh id and waits for its answer: Ok(result) or Err(error).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send_request(id.clone(), method, params).await;
        let answer = self.response(&id, STEP).await;
        match answer.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// `tools/call` of `tool` with a fresh id.
    pub async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, Value> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    /// Takes the response with exactly this `id` (`1` and `"1"` differ), waiting at most
    /// `limit`; panics if none comes.
    pub async fn response(&mut self, id: &Value, limit: Duration) -> Value {
        let what = format!("{}: the response to id {id}", self.name);
        self.take(limit, &what, |m| is_response_to(m, id)).await
    }

    /// Every message up to and including the response to `id`, in the order the session's
    /// output carried them (the messages after it stay unread).
    pub async fn until_response(&mut self, id: &Value, limit: Duration) -> Vec<Value> {
        let what = format!("{}: the response to id {id}", self.name);
        within(limit, &what, async {
            let mut got = Vec::new();
            loop {
                let m = self.next_message().await;
                let last = is_response_to(&m, id);
                got.push(m);
                if last {
                    return got;
                }
            }
        })
        .await
    }

    /// Takes the first message that satisfies `pred` (others stay unread), waiting at most
    /// `limit`; panics if none comes.
    pub async fn take(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        match self.try_take(limit, &pred).await {
            Some(m) => m,
            None => panic!("timed out after {limit:?}: {what}; unread: {:?}", self.seen),
        }
    }

    /// Like [`Client::take`], None when nothing matching comes within `limit`.
    pub async fn try_take(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        tokio::time::timeout(limit, async {
            loop {
                let m = self.read().await;
                if pred(&m) {
                    return m;
                }
                self.seen.push_back(m);
            }
        })
        .await
        .ok()
    }

    /// Everything the output carries until it has been quiet for `quiet` (unread messages
    /// first), in order.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut got: Vec<Value> = self.seen.drain(..).collect();
        while let Ok(m) = tokio::time::timeout(quiet, self.read()).await {
            got.push(m);
        }
        got
    }

    /// Panics if anything but JSON-RPC messages reached this session's output.
    pub fn assert_clean_output(&self) {
        let garbage = self.garbage.lock().unwrap();
        assert!(
            garbage.is_empty(),
            "{}: not JSON-RPC: {garbage:?}",
            self.name
        );
    }

    async fn next_message(&mut self) -> Value {
        match self.seen.pop_front() {
            Some(m) => m,
            None => self.read().await,
        }
    }

    async fn read(&mut self) -> Value {
        self.output
            .recv()
            .await
            .unwrap_or_else(|| panic!("{}: the session's output closed", self.name))
    }
}

/// Whether `m` is a response (no method) to exactly `id`.
pub fn is_response_to(m: &Value, id: &Value) -> bool {
    m.get("method").is_none() && m.get("id") == Some(id)
}

/// Whether `m` is a notification or request with `method`.
pub fn is_method(m: &Value, method: &str) -> bool {
    m["method"] == method
}

/// `config_yaml` with [`MARKER_VAR`] = `marker` in every server's `env` (children of an
/// in-process gateway cannot inherit it from the gateway: the test process has none).
pub fn with_marker_env(config_yaml: &str, marker: &str) -> String {
    use serde_yaml::{Mapping, Value as Yaml};
    let mut root: Yaml = serde_yaml::from_str(config_yaml).expect("config YAML");
    let servers = root
        .get_mut("servers")
        .and_then(Yaml::as_mapping_mut)
        .expect("config has servers");
    for (_, server) in servers.iter_mut() {
        let server = server
            .as_mapping_mut()
            .expect("a server entry is a mapping");
        let env = server
            .entry("env".into())
            .or_insert_with(|| Yaml::Mapping(Mapping::new()));
        env.as_mapping_mut()
            .expect("env is a mapping")
            .insert(MARKER_VAR.into(), marker.into());
    }
    serde_yaml::to_string(&root).expect("config YAML")
}

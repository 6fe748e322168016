//! Hardening of the client-facing side: a client that stops reading slows its own intake
//! (and no child is blamed for it), calls made while a server restarts wait for it, and the
//! front answers malformed JSON-RPC envelopes strictly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use orchestra_tests::{
    deps, fault_with, finish, gateway_bin, new_marker, procs, str_of, text_of, unavailable_detail,
    within, Gateway, TempDir, MARKER_VAR, STEP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The gateway with raw stdio: the test alone decides when stdout is read.
struct RawGateway {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    marker: String,
    _dir: TempDir,
}

impl RawGateway {
    fn spawn(config_yaml: &str) -> Self {
        let dir = TempDir::new("front-raw");
        let config = dir.join("orchestra.yaml");
        std::fs::write(&config, config_yaml).expect("writing config");
        let marker = new_marker();
        let mut child = Command::new(gateway_bin())
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .env(MARKER_VAR, &marker)
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning mcp-orchestra");
        let stdin = child.stdin.take();
        let stdout =
            BufReader::with_capacity(1 << 20, child.stdout.take().expect("stdout")).lines();
        Self {
            child,
            stdin,
            stdout,
            marker,
            _dir: dir,
        }
    }

    async fn write(&mut self, msg: &Value) {
        let line = format!("{msg}\n");
        let stdin = self.stdin.as_mut().expect("stdin open");
        within(
            STEP,
            "writing to the gateway",
            stdin.write_all(line.as_bytes()),
        )
        .await
        .expect("write");
    }

    /// The next line on stdout, as JSON.
    async fn next(&mut self) -> Value {
        let line = within(STEP, "a line from the gateway", self.stdout.next_line())
            .await
            .expect("reading stdout")
            .expect("gateway closed stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends a request and reads lines until its response (notifications are skipped).
    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let msg = self.next().await;
            if msg.get("method").is_none() {
                assert_eq!(msg["id"], id, "{msg}");
                return msg;
            }
        }
    }

    async fn handshake(&mut self) {
        let init = self
            .request(
                0,
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "orchestra-tests", "version": "0"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "{init}");
        self.write(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    /// Closes stdin and checks the gateway exits 0 and leaves no process behind.
    async fn finish(mut self) {
        self.stdin.take();
        let status = within(Duration::from_secs(20), "gateway exit", self.child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "gateway exit: {status}");
        procs::assert_none_left(&self.marker, Duration::from_secs(5)).await;
    }
}

/// Fault #4: a client pipelines thousands of ~10 kB calls to a fast child at a pace the child
/// keeps up with easily (500 a second), but stops reading its answers for 6 s — longer than the
/// call timeout, and long enough for its calls to fill the child's input queue (16 MiB) had the
/// gateway kept taking them in. Its backlog must wait in its own stdin pipe: once it reads again
/// every call has its own successful answer — no "server is not reading its input" (-31006)
/// and no timeout (-31003) blamed on a child that answered each call at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_slows_its_intake_and_no_child_is_blamed() {
    let calls: u64 = 3000;
    let stall = Duration::from_secs(6);
    let mut gw = RawGateway::spawn(&format!(
        "servers:\n{}",
        fault_with("fastecho", "", &[], "call_timeout: 2s")
    ));
    gw.handshake().await;
    let list = gw.request(1, "tools/list", json!({})).await;
    assert!(
        list["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "fastecho__echo")),
        "{list}"
    );

    // The writer runs on its own: a gateway that (rightly) stops reading blocks it. 10 calls
    // every 20 ms at most, never catching up after a blocked write.
    let mut stdin = gw.stdin.take().expect("stdin");
    let pad = "x".repeat(10_000);
    let sent_pad = pad.clone();
    let writer = tokio::spawn(async move {
        let ids: Vec<u64> = (100..100 + calls).collect();
        for chunk in ids.chunks(10) {
            let mut batch = Vec::with_capacity(128 * 1024);
            for id in chunk {
                let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "fastecho__echo", "arguments": {"text": format!("{id}:{sent_pad}")}}});
                batch.extend_from_slice(call.to_string().as_bytes());
                batch.push(b'\n');
            }
            stdin.write_all(&batch).await.expect("writing calls");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stdin
    });

    tokio::time::sleep(stall).await;

    let started = Instant::now();
    let mut answered = std::collections::HashSet::new();
    let mut failures = Vec::new();
    within(Duration::from_secs(120), "every call answered", async {
        while answered.len() + failures.len() < calls as usize {
            let msg = gw.next().await;
            if msg.get("method").is_some() {
                continue;
            }
            let id = msg["id"].as_u64().unwrap_or_else(|| panic!("{msg}"));
            if let Some(err) = msg.get("error") {
                failures.push(err.clone());
                continue;
            }
            let text = msg["result"]["content"][0]["text"].as_str().unwrap_or("");
            assert!(
                text.strip_prefix(&format!("{id}:")) == Some(pad.as_str()),
                "call {id} got its own answer"
            );
            assert!(answered.insert(id), "call {id} answered twice");
        }
    })
    .await;
    eprintln!(
        "read {} answers in {:?} after a {stall:?} stall",
        answered.len(),
        started.elapsed()
    );
    let mut summary = std::collections::BTreeMap::<String, usize>::new();
    for e in &failures {
        *summary
            .entry(format!("{} {}", e["code"], e["message"]))
            .or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed although the child answered every one at once: {summary:?}",
        failures.len()
    );
    gw.stdin = Some(
        within(STEP, "the writer to finish", writer)
            .await
            .expect("writer"),
    );
    gw.finish().await;
}

/// Fault #10 (front): envelopes that parse but are not valid JSON-RPC are answered -32600 —
/// with their id whenever it is readable, `null` otherwise (an id of `null` included: such a
/// request is not a notification to stay silent on); a `tools/call` whose `arguments` is not
/// an object is answered -32602 and never reaches the child. The session carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_envelopes_are_answered_strictly_with_the_readable_id() {
    let dir = TempDir::new("front-strict");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let mut gw = RawGateway::spawn(&format!(
        "servers:\n{}",
        fault_with("f", "", &[("FAULT_LOG", log_s.as_str())], "")
    ));
    gw.handshake().await;
    let cases: &[(&str, i64, Value, &str)] = &[
        (
            r#"{"jsonrpc":"2.0","id":6,"method":42}"#,
            -32600,
            json!(6),
            "method",
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            -32600,
            Value::Null,
            "id",
        ),
        (
            r#"{"id":"no-version","method":"ping"}"#,
            -32600,
            json!("no-version"),
            "jsonrpc",
        ),
        (
            r#"{"jsonrpc":"1.0","id":8,"method":"ping"}"#,
            -32600,
            json!(8),
            "jsonrpc",
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
            -32600,
            Value::Null,
            "id",
        ),
        (
            r#"{"jsonrpc":"2.0","id":9.5,"method":"ping"}"#,
            -32600,
            Value::Null,
            "id",
        ),
        (
            r#"{"jsonrpc":"2.0","method":7}"#,
            -32600,
            Value::Null,
            "method",
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"f__echo","arguments":"text"}}"#,
            -32602,
            json!(10),
            "arguments",
        ),
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"f__echo","arguments":[1]}}"#,
            -32602,
            json!(11),
            "arguments",
        ),
    ];
    for (line, code, id, names) in cases {
        let stdin = gw.stdin.as_mut().expect("stdin");
        within(
            STEP,
            "writing",
            stdin.write_all(format!("{line}\n").as_bytes()),
        )
        .await
        .unwrap();
        let answer = gw.next().await;
        assert_eq!(answer["jsonrpc"], "2.0", "{line} → {answer}");
        assert_eq!(answer["error"]["code"], *code, "{line} → {answer}");
        assert_eq!(answer["id"], *id, "{line} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{line} → the message names {names}: {answer}"
        );
    }

    // Still serving, and the calls with bad arguments never reached the child.
    let ok = gw
        .request(
            12,
            "tools/call",
            json!({"name": "f__echo", "arguments": {"text": "fine"}}),
        )
        .await;
    assert_eq!(ok["result"]["content"][0]["text"], "fine", "{ok}");
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("request tools/call"))
        .count();
    assert_eq!(calls, 1, "only the valid call reached the child");
    gw.finish().await;
}

/// Fault #9: `server-everything` is SIGKILLed; a call to one of its tools made as soon as the
/// gateway has seen it die (state `restarting`, next attempt 300 ms away — well within the
/// call's 30 s timeout, no fallback) waits for the restart and succeeds, answered by the new
/// process, instead of an "unavailable, retry later" answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_real_server_killed_moments_ago_waits_for_its_restart() {
    let gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 20s, call_timeout: 30s}}\nservers:\n  everything: {{command: \"{}\", args: [stdio], restart: {{initial_backoff: 300ms, jitter: 0.0}}}}\n",
        deps().everything
    ))
    .await;
    let ready = gw
        .wait_server("everything", Duration::from_secs(15), |s| {
            s["state"] == "ready"
        })
        .await;
    let pid = ready["pid"].as_u64().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL");
    let down = gw
        .wait_server("everything", Duration::from_secs(5), |s| {
            s["state"] != "ready"
        })
        .await;
    assert_eq!(down["state"], "restarting", "{down}");

    let asked = Instant::now();
    let answer = gw
        .call("everything__echo", json!({"message": "after the kill"}))
        .await
        .unwrap_or_else(|e| panic!("everything__echo failed: {e}"));
    let waited = asked.elapsed();
    assert_ne!(answer["isError"], true, "{answer}");
    assert_eq!(text_of(&answer), "Echo: after the kill", "{answer}");
    eprintln!("the call waited {waited:?} for the restart");
    let back = gw.server_health("everything").await;
    assert_eq!(
        (back["state"].as_str(), back["restarts"].as_u64()),
        (Some("ready"), Some(1)),
        "{back}"
    );
    assert_ne!(back["pid"].as_u64(), Some(pid), "a new process: {back}");
    finish(gw).await;
}

/// Fault #9, the limits: a crash-looping server is not worth waiting for. A call made while it
/// still restarts waits only until the breaker trips, then is answered at once (state
/// `failed`) — not at its 20 s timeout; once failed, calls are answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_server_is_answered_at_once_not_waited_for() {
    let gw = Gateway::start(&format!(
        "gateway: {{call_timeout: 20s}}\nservers:\n{}",
        fault_with(
            "quits",
            "exit_on_start:7",
            &[],
            "restart: {initial_backoff: 300ms, multiplier: 1.0, jitter: 0.0, max_restarts: 2, within: 1m, reprobe_after: 10m}",
        )
    ))
    .await;
    gw.wait_server("quits", Duration::from_secs(5), |s| {
        s["state"] == "restarting" && s["next_attempt"].is_string()
    })
    .await;

    let asked = Instant::now();
    let answer = gw
        .call("quits__echo", json!({"text": "x"}))
        .await
        .expect("an isError result");
    let waited = asked.elapsed();
    let detail = unavailable_detail(&answer, "quits");
    assert_eq!(
        detail["state"], "failed",
        "answered once the breaker tripped: {answer}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "answered {waited:?} after the call, not at its timeout"
    );

    let failed = gw.server_health("quits").await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(str_of(&failed, "reason").contains("crash loop"), "{failed}");
    let asked = Instant::now();
    let answer = gw
        .call("quits__echo", json!({"text": "x"}))
        .await
        .expect("an isError result");
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "a call to a failed server took {:?}",
        asked.elapsed()
    );
    assert_eq!(unavailable_detail(&answer, "quits")["state"], "failed");
    finish(gw).await;
}

/// Fault #9: a call waiting for a restarting server is still the client's to cancel: it gets
/// no answer and never reaches the server once it is back, while another waiting call is
/// answered by the restarted process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_restart_can_be_cancelled() {
    let dir = TempDir::new("front-restart-cancel");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let gw = Gateway::start(&format!(
        "gateway: {{call_timeout: 20s}}\nservers:\n{}",
        fault_with(
            "fragile",
            "",
            &[("FAULT_LOG", log_s.as_str())],
            "restart: {initial_backoff: 1500ms, jitter: 0.0}",
        )
    ))
    .await;
    gw.wait_server("fragile", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let crash = gw.call("fragile__crash", json!({})).await.unwrap_err();
    assert_eq!(crash["code"], -31002, "{crash}");
    gw.wait_server("fragile", Duration::from_secs(3), |s| {
        s["state"] == "restarting"
    })
    .await;

    let (cancelled_id, mut cancelled) = gw
        .send_request_with_id(
            "tools/call",
            json!({"name": "fragile__echo", "arguments": {"text": "never"}}),
        )
        .await;
    let kept = gw
        .send_request(
            "tools/call",
            json!({"name": "fragile__echo", "arguments": {"text": "kept"}}),
        )
        .await;
    gw.notify(
        "notifications/cancelled",
        json!({"requestId": cancelled_id, "reason": "user"}),
    )
    .await;

    let answer = within(STEP, "the waiting call that was not cancelled", kept)
        .await
        .expect("answered");
    assert_eq!(text_of(&answer["result"]), "kept", "{answer}");
    let back = gw.server_health("fragile").await;
    assert_eq!(back["restarts"], 1, "{back}");
    assert_eq!(
        answer["result"]["structuredContent"]["pid"], back["pid"],
        "answered by the restarted process: {answer}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cancelled.try_recv().is_err(),
        "a cancelled call must get no answer"
    );
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("request tools/call"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        calls.len(),
        2,
        "only the crash and the kept call reached a child: {calls:?}"
    );
    finish(gw).await;
}

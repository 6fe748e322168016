//! Server→client requests from children (sampling, elicitation, roots): passed to the client
//! session under the gateway's own ids, answered back to the child under its own id, and
//! bounded whatever the client or the child does (no answer, death, cancellation, the
//! session closing). Real server-everything where it can show the behaviour; the fault child
//! (`ask_tool`, `log_notifications`) for faults it cannot produce.

use std::path::Path;
use std::time::{Duration, Instant};

use orchestra_tests::{
    everything_entry, fault_with, finish, text_of, wait_ready, within, Gateway, TempDir, STEP,
};
use serde_json::{json, Value};

/// A gateway on `config` whose client declares `capabilities`, initialized (with
/// `notifications/initialized` sent when `initialized`).
async fn client_with(config: &str, capabilities: Value, initialized: bool) -> Gateway {
    let mut gw = Gateway::spawn(config, &[]);
    gw.initialize_result = gw
        .request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities,
                "clientInfo": { "name": "server-requests-test", "version": "0" },
            }),
        )
        .await
        .expect("initialize");
    if initialized {
        gw.notify("notifications/initialized", json!({})).await;
    }
    gw
}

/// The client's answer to the gateway's request `id`: `member` is `result` or `error`.
async fn answer(gw: &Gateway, id: &Value, member: &str, payload: Value) {
    gw.write_raw(&json!({ "jsonrpc": "2.0", "id": id, member: payload }).to_string())
        .await;
}

/// The next request `method` from the gateway, checked to carry an id of the gateway's.
async fn next_request(gw: &mut Gateway, method: &str) -> Value {
    let req = gw
        .next_notification(method, STEP)
        .await
        .unwrap_or_else(|| panic!("no {method} request reached the client"));
    assert!(req["id"].is_u64(), "the gateway's own integer id: {req}");
    req
}

/// The client gets `notifications/cancelled` for the gateway's request `id`.
async fn next_cancel_of(gw: &mut Gateway, id: &Value) -> Value {
    let n = gw
        .next_notification("notifications/cancelled", STEP)
        .await
        .unwrap_or_else(|| panic!("no notifications/cancelled for request {id}"));
    assert_eq!(&n["params"]["requestId"], id, "{n}");
    n
}

/// The fault child's `response <id> <json>` line for `id` in `log`, once written.
async fn logged_response(log: &Path, id: &str) -> Value {
    let prefix = format!("response {id} ");
    within(
        STEP,
        &format!("the child to log its response {id}"),
        async {
            loop {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if let Some(line) = text.lines().find(|l| l.starts_with(&prefix)) {
                    return serde_json::from_str(&line[prefix.len()..]).expect("logged JSON");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await
}

async fn sessions_requests(gw: &Gateway) -> u64 {
    gw.health().await["sessions"][0]["server_requests"]
        .as_u64()
        .expect("server_requests in health")
}

fn everything_config() -> String {
    format!(
        "gateway: {{call_timeout: 30s, startup_timeout: 60s}}\nservers:\n{}",
        everything_entry()
    )
}

/// A client that declared sampling calls server-everything's `trigger-sampling-request`: the
/// `sampling/createMessage` reaches it under an id of the gateway's, its answer reaches the
/// child, and the tool's result carries it. The children were initialized with sampling,
/// elicitation (form and url) and roots, so the tools server-everything registers only for
/// such clients are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_from_server_everything_reaches_the_client_and_back() {
    let mut gw = client_with(&everything_config(), json!({"sampling": {}}), true).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    let names = gw.tool_names().await;
    for t in [
        "everything__trigger-sampling-request",
        "everything__trigger-elicitation-request",
        "everything__trigger-url-elicitation",
        "everything__get-roots-list",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "everything__trigger-sampling-request",
                   "arguments": {"prompt": "the colour of 4711", "maxTokens": 7}}),
        )
        .await;
    let req = next_request(&mut gw, "sampling/createMessage").await;
    let text = req["params"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("the colour of 4711"), "{req}");
    assert_eq!(req["params"]["maxTokens"], 7, "{req}");
    assert_eq!(sessions_requests(&gw).await, 1, "one request outstanding");
    answer(
        &gw,
        &req["id"],
        "result",
        json!({"role": "assistant", "model": "test-model", "stopReason": "endTurn",
               "content": {"type": "text", "text": "sampled-by-the-test-client"}}),
    )
    .await;
    let result = within(STEP, "the sampling tool's result", call)
        .await
        .expect("answered");
    let text = text_of(&result["result"]);
    assert!(
        text.contains("sampled-by-the-test-client") && text.contains("test-model"),
        "{result}"
    );
    assert_eq!(sessions_requests(&gw).await, 0);
    finish(gw).await;
}

/// Elicitation (form mode) from server-everything: the client accepts with content, and the
/// tool's result shows what it entered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_from_server_everything_is_answered_by_the_client() {
    let mut gw = client_with(&everything_config(), json!({"elicitation": {}}), true).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "everything__trigger-elicitation-request", "arguments": {}}),
        )
        .await;
    let req = next_request(&mut gw, "elicitation/create").await;
    assert_eq!(
        req["params"]["requestedSchema"]["required"],
        json!(["name"]),
        "{req}"
    );
    answer(
        &gw,
        &req["id"],
        "result",
        json!({"action": "accept", "content": {"name": "Ada Lovelace", "check": true, "integer": 42}}),
    )
    .await;
    let result = within(STEP, "the elicitation tool's result", call)
        .await
        .expect("answered");
    let all: String = result["result"]["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(all.contains("Name: Ada Lovelace"), "{result}");
    assert!(all.contains("Agreed to terms: true"), "{result}");
    finish(gw).await;
}

/// Roots: server-everything asks a client that declared roots for them (after it starts, and
/// while its `get-roots-list` runs; every `roots/list` is answered here), and lists them; the
/// client's `notifications/roots/list_changed` reaches it, it asks again, and lists the new
/// roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_from_the_client_reach_server_everything_and_follow_list_changed() {
    let mut gw = client_with(
        &everything_config(),
        json!({"roots": {"listChanged": true}}),
        true,
    )
    .await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    let roots_a = json!({"roots": [{"uri": "file:///tmp/root-a-4711", "name": "root-a"}]});
    let listed = list_roots_answering(&mut gw, &roots_a).await;
    assert!(listed.contains("file:///tmp/root-a-4711"), "{listed}");

    // The client's roots change: the child is told, asks again, and lists the new ones.
    let roots_b = json!({"roots": [{"uri": "file:///tmp/root-b-4711", "name": "root-b"}]});
    gw.notify("notifications/roots/list_changed", json!({}))
        .await;
    let req = next_request(&mut gw, "roots/list").await;
    answer(&gw, &req["id"], "result", roots_b.clone()).await;
    let listed = within(STEP, "get-roots-list to show the new roots", async {
        loop {
            let listed = list_roots_answering(&mut gw, &roots_b).await;
            if listed.contains("root-b-4711") {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(!listed.contains("root-a-4711"), "{listed}");
    finish(gw).await;
}

/// Calls `everything__get-roots-list`, answering every `roots/list` with `roots` meanwhile
/// (server-everything asks when it has not got them yet); its text.
async fn list_roots_answering(gw: &mut Gateway, roots: &Value) -> String {
    let mut call = gw
        .send_request(
            "tools/call",
            json!({"name": "everything__get-roots-list", "arguments": {}}),
        )
        .await;
    let result = within(STEP, "get-roots-list", async {
        loop {
            tokio::select! {
                r = &mut call => return r.expect("answered"),
                Some(req) = gw.next_notification("roots/list", STEP) => {
                    answer(gw, &req["id"], "result", roots.clone()).await;
                }
            }
        }
    })
    .await;
    text_of(&result["result"])
}

/// A client that did not declare sampling: server-everything's sampling tool ends quickly (the
/// child was refused at once, naming what is missing), and no request reached the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_sampling_gets_the_childs_answer_at_once() {
    let mut gw = client_with(&everything_config(), json!({}), true).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    let started = Instant::now();
    let result = within(
        Duration::from_secs(10),
        "the sampling tool to end without a client that samples",
        gw.call(
            "everything__trigger-sampling-request",
            json!({"prompt": "anyone?"}),
        ),
    )
    .await;
    let elapsed = started.elapsed();
    let text = match &result {
        Ok(r) => text_of(r),
        Err(e) => e.to_string(),
    };
    assert!(
        text.contains("no connected client can answer sampling/createMessage")
            && text.contains("did not declare the sampling capability"),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let leaked: Vec<Value> = gw
        .drain_notifications()
        .into_iter()
        .filter(|n| n["method"] == "sampling/createMessage")
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    finish(gw).await;
}

/// The fault child's id and the gateway's are remapped both ways, and a client's error answer
/// reaches the child as written; the gateway answers a child's `ping` itself and refuses a
/// method it does not pass on, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_remapped_both_ways_and_errors_pass_through() {
    let config = format!("servers:\n{}", fault_with("f", "ask_tool", &[], ""));
    let mut gw = client_with(&config, json!({"roots": {}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "f__ask", "arguments": {"method": "roots/list"}}),
        )
        .await;
    let req = next_request(&mut gw, "roots/list").await;
    assert_ne!(
        req["id"], "ask-1",
        "the child's id is not shown to the client"
    );
    answer(
        &gw,
        &req["id"],
        "error",
        json!({"code": -32603, "message": "no roots for you"}),
    )
    .await;
    let result = within(STEP, "ask's result", call).await.expect("answered");
    let response = &result["result"]["structuredContent"]["response"];
    assert_eq!(response["id"], "ask-1", "the child's own id: {result}");
    assert_eq!(
        response["error"],
        json!({"code": -32603, "message": "no roots for you"}),
        "{result}"
    );

    let ping = gw
        .call("f__ask", json!({"method": "ping"}))
        .await
        .expect("ask ping");
    assert_eq!(
        ping["structuredContent"]["response"]["result"],
        json!({}),
        "{ping}"
    );
    let other = gw
        .call(
            "f__ask",
            json!({"method": "tasks/get", "params": {"taskId": "t"}}),
        )
        .await
        .expect("ask tasks/get");
    let error = &other["structuredContent"]["response"]["error"];
    assert_eq!(error["code"], -32601, "{other}");
    assert!(
        error["message"].as_str().unwrap().contains("tasks/get"),
        "{other}"
    );
    let leaked: Vec<Value> = gw
        .drain_notifications()
        .into_iter()
        .filter(|n| n["method"] == "ping" || n["method"] == "tasks/get")
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    finish(gw).await;
}

/// A child that dies with a request outstanding: the client gets `notifications/cancelled` for
/// it (naming the server), its late answer is dropped quietly, and the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_dies_before_the_answer_withdraws_its_request() {
    let config = format!(
        "servers:\n{}",
        fault_with(
            "f",
            "ask_tool",
            &[],
            "restart: {initial_backoff: 100ms, jitter: 0.0}"
        )
    );
    let mut gw = client_with(&config, json!({"sampling": {}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "f__ask", "arguments": {
                "method": "sampling/createMessage", "crash_after_ms": 300,
                "params": {"messages": [], "maxTokens": 1}}}),
        )
        .await;
    let req = next_request(&mut gw, "sampling/createMessage").await;
    let cancel = next_cancel_of(&mut gw, &req["id"]).await;
    let reason = cancel["params"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("server \"f\""), "{cancel}");
    let died = within(STEP, "the call's answer", call)
        .await
        .expect("answered");
    assert_eq!(died["error"]["code"], -31002, "{died}");
    // The late answer: dropped, nothing comes back for it.
    answer(
        &gw,
        &req["id"],
        "result",
        json!({"role": "assistant", "model": "m", "content": {"type": "text", "text": "late"}}),
    )
    .await;
    gw.request("ping", json!({})).await.expect("ping after");
    assert_eq!(sessions_requests(&gw).await, 0);
    wait_ready(&gw, &["f"], STEP).await;
    let echo = gw
        .call("f__echo", json!({"text": "still serving"}))
        .await
        .expect("echo after the restart");
    assert_eq!(text_of(&echo), "still serving");
    finish(gw).await;
}

/// A client that never answers: within the child's call_timeout the child gets -32001 and
/// the client `notifications/cancelled`; a later answer is dropped (the child hears nothing
/// more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_is_bounded_by_the_call_timeout() {
    let dir = TempDir::new("s2c-timeout");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_with(
            "f",
            "ask_tool",
            &[("FAULT_LOG", log_s.as_str())],
            "call_timeout: 1s"
        )
    );
    let mut gw = client_with(&config, json!({"sampling": {}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let sent = gw
        .call(
            "f__ask",
            json!({"method": "sampling/createMessage", "wait": false,
                   "params": {"messages": [], "maxTokens": 1}}),
        )
        .await
        .expect("ask");
    assert_eq!(text_of(&sent), "sent ask-1");
    let started = Instant::now();
    let req = next_request(&mut gw, "sampling/createMessage").await;
    let cancel = next_cancel_of(&mut gw, &req["id"]).await;
    assert!(
        cancel["params"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer"),
        "{cancel}"
    );
    let response = logged_response(&log, "ask-1").await;
    let elapsed = started.elapsed();
    assert_eq!(response["error"]["code"], -32001, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sampling/createMessage"),
        "{response}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    answer(&gw, &req["id"], "result", json!({"late": true})).await;
    gw.request("ping", json!({})).await.expect("ping after");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("response ask-1 "))
            .count(),
        1,
        "the late answer reached the child: {text}"
    );
    finish(gw).await;
}

/// A child that cancels its own request: the client gets `notifications/cancelled` with the
/// gateway's id, and its late answer never reaches the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_cancellation_reaches_the_client_under_the_gateways_id() {
    let dir = TempDir::new("s2c-cancel");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_with("f", "ask_tool", &[("FAULT_LOG", log_s.as_str())], "")
    );
    let mut gw = client_with(&config, json!({"elicitation": {"form": {}}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "f__ask", "arguments": {
                "method": "elicitation/create", "cancel_after_ms": 200,
                "params": {"message": "name?", "requestedSchema": {"type": "object", "properties": {}}}}}),
        )
        .await;
    let req = next_request(&mut gw, "elicitation/create").await;
    let cancel = next_cancel_of(&mut gw, &req["id"]).await;
    assert_eq!(cancel["params"]["reason"], "changed my mind", "{cancel}");
    let result = within(STEP, "ask's result", call).await.expect("answered");
    assert_eq!(text_of(&result["result"]), "cancelled ask-1", "{result}");
    assert_eq!(sessions_requests(&gw).await, 0);
    answer(&gw, &req["id"], "result", json!({"action": "decline"})).await;
    gw.request("ping", json!({})).await.expect("ping after");
    // The child's log is written before it answers the next call: a late answer that had
    // reached it would be there by now.
    gw.call("f__echo", json!({"text": "x"}))
        .await
        .expect("echo");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.lines().any(|l| l.starts_with("response ask-1 ")),
        "{text}"
    );
    finish(gw).await;
}

/// A session that closes with a request outstanding: the child gets an error at once (before
/// the gateway stops it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_closes_fails_its_outstanding_requests() {
    let dir = TempDir::new("s2c-close");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_with("f", "ask_tool", &[("FAULT_LOG", log_s.as_str())], "")
    );
    let mut gw = client_with(&config, json!({"sampling": {}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    gw.call(
        "f__ask",
        json!({"method": "sampling/createMessage", "wait": false, "params": {"messages": [], "maxTokens": 1}}),
    )
    .await
    .expect("ask");
    next_request(&mut gw, "sampling/createMessage").await;
    finish(gw).await;
    let response = logged_response(&log, "ask-1").await;
    assert_eq!(response["error"]["code"], -31008, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed before answering sampling/createMessage"),
        "{response}"
    );
}

/// Roots changes reach the children: when a session that declared roots finishes
/// initializing (children may have asked before anyone could answer), and on the client's
/// own `notifications/roots/list_changed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_list_changed_reaches_the_children() {
    let dir = TempDir::new("s2c-roots");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_with(
            "f",
            "log_notifications",
            &[("FAULT_LOG", log_s.as_str())],
            ""
        )
    );
    // Initialized only once the child is up.
    let gw = client_with(&config, json!({"roots": {"listChanged": true}}), false).await;
    wait_ready(&gw, &["f"], STEP).await;
    let told = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "notification notifications/roots/list_changed")
            .count()
    };
    assert_eq!(told(), 0);
    gw.notify("notifications/initialized", json!({})).await;
    within(
        STEP,
        "the child to hear of the roots at initialized",
        async {
            while told() < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    gw.notify("notifications/roots/list_changed", json!({}))
        .await;
    within(STEP, "the child to hear the client's list_changed", async {
        while told() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    finish(gw).await;
}

/// The official Python SDK (1.x) as the client, with a sampling_callback: server-everything's
/// sampling tool, through the gateway, returns what the callback answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_sampling_callback_answers_through_the_gateway() {
    let d = orchestra_tests::deps();
    let dir = TempDir::new("py-s2c");
    let config = dir.join("orchestra.yaml");
    std::fs::write(
        &config,
        orchestra_tests::with_marker_inherited(&everything_config()),
    )
    .unwrap();
    let marker = orchestra_tests::new_marker();
    let script = orchestra_tests::workspace_root().join("tests/python/sampling_client.py");
    let out = within(
        Duration::from_secs(90),
        "the Python sampling client to finish",
        tokio::process::Command::new(&d.python)
            .arg(&script)
            .arg(orchestra_tests::gateway_bin())
            .arg(&config)
            .env(orchestra_tests::MARKER_VAR, &marker)
            // The gateway's cache and task store in this test's folder, not the user's.
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            .env("ORCHESTRA_DATA_DIR", dir.join("data"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running the Python client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python exited {}: {stderr}",
        out.status
    );
    let obs: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {:?}\n{stderr}", out.stdout));
    assert_eq!(obs["errors"], json!({}), "{obs}");
    assert_eq!(obs["callback_calls"], 1, "{obs}");
    assert!(
        obs["text"]
            .as_str()
            .is_some_and(|t| t.contains("python-sampled-4711")),
        "{obs}"
    );
    orchestra_tests::procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}

/// URL-mode elicitation goes only to a client that declared it; the child's
/// `notifications/elicitation/complete` that follows reaches the session that was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_elicitation_needs_the_url_mode_and_its_completion_follows() {
    let config = format!("servers:\n{}", fault_with("f", "ask_tool", &[], ""));
    let url_ask = json!({"method": "elicitation/create",
        "params": {"mode": "url", "url": "https://example.com/consent", "message": "open it",
                   "elicitationId": "el-4711"},
        "notify_after": {"method": "notifications/elicitation/complete",
                         "params": {"elicitationId": "el-4711"}}});

    // Form mode only (`elicitation: {}`): refused at once, naming the missing mode.
    let gw = client_with(&config, json!({"elicitation": {}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let refused = gw.call("f__ask", url_ask.clone()).await.expect("ask");
    let error = &refused["structuredContent"]["response"]["error"];
    assert_eq!(error["code"], -32601, "{refused}");
    assert!(
        error["message"].as_str().unwrap().contains("url mode"),
        "{refused}"
    );
    finish(gw).await;

    let mut gw = client_with(&config, json!({"elicitation": {"url": {}}}), true).await;
    wait_ready(&gw, &["f"], STEP).await;
    let call = gw
        .send_request(
            "tools/call",
            json!({"name": "f__ask", "arguments": url_ask}),
        )
        .await;
    let req = next_request(&mut gw, "elicitation/create").await;
    assert_eq!(req["params"]["url"], "https://example.com/consent", "{req}");
    answer(&gw, &req["id"], "result", json!({"action": "accept"})).await;
    let done = gw
        .next_notification("notifications/elicitation/complete", STEP)
        .await
        .expect("the completion reached the client");
    assert_eq!(done["params"]["elicitationId"], "el-4711", "{done}");
    let result = within(STEP, "ask's result", call).await.expect("answered");
    assert_eq!(
        result["result"]["structuredContent"]["response"]["result"]["action"], "accept",
        "{result}"
    );
    finish(gw).await;
}

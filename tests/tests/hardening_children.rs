//! What a child *sends* the gateway, when it breaks the rules (issue 7, hardening): malformed
//! tool definitions, answers over `max_message_size`, a `list_changed` flood, progress for
//! calls it does not hold, responses with both or neither of `result` and `error`. One child's
//! fault must stay that child's: the client and the other servers go on.

use std::path::Path;
use std::time::{Duration, Instant};

use orchestra_tests::{
    deps, fault_with, finish, gateway_bin, new_marker, text_of, wait_ready, within, Gateway,
    TempDir, MARKER_VAR, STEP,
};
use serde_json::{json, Value};

/// A config with the given server entries only.
fn config(gateway: &str, servers: &[String]) -> String {
    let mut yaml = format!("gateway: {{{gateway}}}\nservers:\n");
    for s in servers {
        yaml.push_str(s);
    }
    yaml
}

/// How many requests of `method` the fault child logged (FAULT_LOG `request <method> <id>`).
fn requests_logged(log: &Path, method: &str) -> usize {
    let prefix = format!("request {method} ");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .count()
}

async fn echo(gw: &Gateway, server: &str, text: &str) {
    let r = within(
        Duration::from_secs(5),
        &format!("{server}__echo"),
        gw.call(&format!("{server}__echo"), json!({ "text": text })),
    )
    .await
    .unwrap_or_else(|e| panic!("{server}__echo failed: {e}"));
    assert_eq!(text_of(&r), text, "{r}");
}

/// Runs tests/python/strict_list_client.py (the official Python SDK) against a gateway on
/// `config_yaml`; returns its observations.
async fn run_strict_client(config_yaml: &str, tool: &str, arguments: Value) -> Value {
    let dir = TempDir::new("strict");
    let config = dir.join("orchestra.yaml");
    std::fs::write(&config, config_yaml).unwrap();
    let script = orchestra_tests::workspace_root().join("tests/python/strict_list_client.py");
    let out = within(
        Duration::from_secs(90),
        "the Python SDK client to finish",
        tokio::process::Command::new(&deps().python)
            .arg(&script)
            .arg(gateway_bin())
            .arg(&config)
            .arg(tool)
            .arg(arguments.to_string())
            .env(MARKER_VAR, new_marker())
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            .env("RUST_LOG", "info,orchestra_gateway=debug")
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}\n{stderr}"))
}

fn issue<'a>(list: &'a Value, key: &str, value: Value) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|i| i[key] == value)
        .unwrap_or_else(|| panic!("no issue with {key} = {value} in {list:#}"))
}

/// Defect 1: a child lists tools without `inputSchema`, with `inputSchema: null`, without a
/// schema `type`, with a non-string description and a non-object outputSchema, a duplicate
/// name, non-object arguments, no name, and a plain string — next to good tools, with a
/// healthy real server (mcp-server-time) beside it. The official Python SDK, which rejects
/// the whole list if one definition is invalid, lists the tools and calls the healthy
/// server's tool; the repairable tools are listed repaired, the rest dropped, and the health
/// report names each with its reason and counts only what is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_tool_definitions_are_repaired_or_dropped_for_strict_clients() {
    let config = config(
        "call_timeout: 30s, startup_timeout: 30s",
        &[
            fault_with("bad", "bad_tools", &[], ""),
            format!(
                "  time: {{command: \"{}\", args: [\"--local-timezone\", \"UTC\"]}}\n",
                deps().time
            ),
        ],
    );
    let obs = run_strict_client(
        &config,
        "time__get_current_time",
        json!({"timezone": "UTC"}),
    )
    .await;
    let tracebacks = obs.get("tracebacks").cloned().unwrap_or(Value::Null);
    assert_eq!(obs["errors"], json!({}), "steps failed: {tracebacks:#}");

    // The healthy server's tool works.
    assert_eq!(obs["call_is_error"], false, "{obs}");
    assert!(
        obs["call_text"].as_str().is_some_and(|t| t.contains("UTC")),
        "{obs}"
    );

    let tools = &obs["tools"];
    let object = json!({"type": "object"});
    assert_eq!(tools["bad__noschema"]["inputSchema"], object, "{tools:#}");
    assert_eq!(tools["bad__nullschema"]["inputSchema"], object, "{tools:#}");
    assert_eq!(
        tools["bad__untyped"]["inputSchema"]["type"], "object",
        "{tools:#}"
    );
    assert!(tools["bad__untyped"]["inputSchema"]["properties"]["text"].is_object());
    let badmeta = &tools["bad__badmeta"];
    assert!(
        badmeta.get("description").is_none() && badmeta.get("outputSchema").is_none(),
        "{badmeta}"
    );
    assert_eq!(
        tools["bad__echo"]["description"], "Echo the given text back",
        "the first of two same-named tools is kept"
    );
    assert!(tools.get("bad__stringargs").is_none(), "{tools:#}");
    assert!(tools.get("time__get_current_time").is_some(), "{tools:#}");
    let listed_bad = tools
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("bad__"))
        .count();

    let health = &obs["health"];
    let bad = health["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bad")
        .unwrap_or_else(|| panic!("no server bad: {health}"));
    assert_eq!(bad["tools"], listed_bad, "exposed = really listed: {bad:#}");
    assert_eq!(bad["tools_hidden_by_filter"], 0, "{bad:#}");

    let repaired = &bad["tools_repaired"];
    assert_eq!(repaired.as_array().map(Vec::len), Some(4), "{repaired:#}");
    let reason = |i: &Value| i["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason(issue(repaired, "tool", json!("noschema"))).contains("no inputSchema"));
    assert!(reason(issue(repaired, "tool", json!("nullschema"))).contains("inputSchema was null"));
    assert!(reason(issue(repaired, "tool", json!("untyped"))).contains("had no type"));
    let meta = reason(issue(repaired, "tool", json!("badmeta")));
    assert!(
        meta.contains("description") && meta.contains("outputSchema"),
        "{meta}"
    );

    let dropped = &bad["tools_dropped"];
    assert_eq!(dropped.as_array().map(Vec::len), Some(4), "{dropped:#}");
    assert!(reason(issue(dropped, "tool", json!("echo"))).contains("duplicate"));
    assert!(reason(issue(dropped, "tool", json!("stringargs"))).contains("inputSchema.type"));
    let nameless = dropped
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("tool").is_none())
        .map(reason)
        .collect::<Vec<_>>();
    assert_eq!(
        nameless,
        ["no name", "not a JSON object (a string)"],
        "{dropped:#}"
    );
}

/// Defect 2, call path: a child answers a call with a 17 MB line (over the default 16 MiB
/// max_message_size). The client gets -31005 at once naming the size and the limit — not a
/// -31003 after call_timeout — and the session goes on: the next call works, the server was
/// never restarted, and the oversized message is counted. A notification over a server's own
/// (smaller) max_message_size is dropped and counted, and the call it preceded is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_fails_its_call_at_once_with_size_and_limit() {
    let gw = Gateway::start(&config(
        "call_timeout: 20s, startup_timeout: 10s",
        &[
            fault_with("big", "huge_result:17000000", &[], ""),
            fault_with("chatty", "huge_line:100000", &[], "max_message_size: 64KiB"),
        ],
    ))
    .await;
    wait_ready(&gw, &["big", "chatty"], STEP).await;

    let started = Instant::now();
    let err = gw.call("big__huge", json!({})).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert_eq!(err["code"], -31005, "{err}");
    assert_eq!(err["data"]["server"], "big", "{err}");
    assert_eq!(err["data"]["tool"], "big__huge", "{err}");
    assert_eq!(err["data"]["size"], 17_000_000, "{err}");
    assert_eq!(err["data"]["limit"], 16 * 1024 * 1024, "{err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("17000000") && message.contains("16777216"),
        "{message}"
    );

    echo(&gw, "big", "still here").await;
    let big = gw.server_health("big").await;
    assert_eq!(big["oversized_messages"], 1, "{big}");
    assert_eq!(big["restarts"], 0, "{big}");
    assert_eq!(big["state"], "ready", "{big}");

    // A 100 kB notification against a 64 KiB limit: dropped, counted, logged with both sizes.
    echo(&gw, "chatty", "after the long notification").await;
    let chatty = gw.server_health("chatty").await;
    assert_eq!(chatty["oversized_messages"], 1, "{chatty}");
    assert_eq!(chatty["state"], "ready", "{chatty}");
    let logs = gw.logs();
    assert!(
        logs.lines().any(|l| l.contains("notifications/message")
            && l.contains("size=100000")
            && l.contains("limit=65536")),
        "no log line names the dropped notification with its size and limit:\n{logs}"
    );
    finish(gw).await;
}

/// Defect 2, start-up path: a `tools/list` answer over the server's max_message_size fails
/// the handshake at once with that reason (not a handshake timeout), while another server
/// starts normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_tools_list_fails_startup_with_a_clear_reason() {
    let gw = Gateway::start(&config(
        "call_timeout: 20s, startup_timeout: 20s, restart: {initial_backoff: 30s}",
        &[
            fault_with("wide", "huge_list:200000", &[], "max_message_size: 64KiB"),
            fault_with("fine", "", &[], ""),
        ],
    ))
    .await;
    wait_ready(&gw, &["fine"], STEP).await;
    let wide = gw
        .wait_server("wide", Duration::from_secs(8), |s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("exceeds max_message_size"))
        })
        .await;
    let reason = wide["reason"].as_str().unwrap();
    assert!(
        reason.contains("tools/list answer of 200000 bytes exceeds max_message_size 65536"),
        "{reason}"
    );
    assert_ne!(wide["state"], "ready", "{wide}");
    assert_eq!(wide["oversized_messages"], 1, "{wide}");
    echo(&gw, "fine", "unaffected").await;
    finish(gw).await;
}

/// Defect 7: a child that sends `tools/list_changed` every millisecond gets a bounded number
/// of `tools/list` requests (one in flight, the rest coalesced, a few per second at most),
/// stays ready and answers calls all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_changed_flood_is_coalesced() {
    let dir = TempDir::new("flood");
    let log = dir.join("fault.log");
    let log_env = log.display().to_string();
    let gw = Gateway::start(&config(
        "call_timeout: 10s, startup_timeout: 10s",
        &[fault_with(
            "flood",
            "list_changed_flood:1",
            &[("FAULT_LOG", &log_env)],
            "",
        )],
    ))
    .await;
    wait_ready(&gw, &["flood"], STEP).await;

    let before = requests_logged(&log, "tools/list");
    let window = Instant::now();
    let mut calls = 0;
    while window.elapsed() < Duration::from_secs(3) {
        echo(&gw, "flood", &format!("call {calls}")).await;
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = window.elapsed().as_secs_f64();
    let relists = requests_logged(&log, "tools/list") - before;
    eprintln!("{relists} tools/list in {secs:.1} s while the child notified every ms; {calls} calls answered");
    assert!(
        relists as f64 <= secs * 4.0 + 2.0,
        "{relists} tools/list requests in {secs:.1} s"
    );
    assert!(relists >= 1, "the change was listed at all");
    let flood = gw.server_health("flood").await;
    assert_eq!(flood["state"], "ready", "{flood}");
    assert_eq!(flood["restarts"], 0, "{flood}");
    finish(gw).await;
}

/// Defect 8: server `a` sends progress with a token it was never given — the token of a
/// call in flight at server `b`. The client never sees it; `b`'s real progress (string and
/// integer tokens) arrives in full; `a`'s forged progress is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_with_a_token_the_child_was_not_given_is_dropped() {
    let mut gw = Gateway::start(&config(
        "call_timeout: 20s, startup_timeout: 10s",
        &[
            fault_with("a", "fake_progress:victim", &[], ""),
            fault_with("b", "", &[], ""),
        ],
    ))
    .await;
    wait_ready(&gw, &["a", "b"], STEP).await;
    gw.drain_notifications();

    let mut real = gw
        .send_request(
            "tools/call",
            json!({
                "name": "b__progress",
                "arguments": { "steps": 3, "interval_ms": 300 },
                "_meta": { "progressToken": "victim" }
            }),
        )
        .await;
    // While b's call runs, a forges progress for its token (before answering each call).
    echo(&gw, "a", "one").await;
    echo(&gw, "a", "two").await;
    let response = within(STEP, "b's progress call", &mut real)
        .await
        .expect("gateway closed stdout");
    assert!(response.get("error").is_none(), "{response}");
    let numbered = gw
        .call("b__progress", json!({ "steps": 2, "interval_ms": 20 }))
        .await;
    assert!(numbered.is_ok(), "{numbered:?}");
    let r = gw
        .request(
            "tools/call",
            json!({
                "name": "b__progress",
                "arguments": { "steps": 2, "interval_ms": 20 },
                "_meta": { "progressToken": 7 }
            }),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");

    let progress: Vec<Value> = gw
        .drain_notifications()
        .into_iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(
        progress.iter().all(|n| n["params"]["message"] != "forged"),
        "forged progress reached the client: {progress:#?}"
    );
    let victim: Vec<&Value> = progress
        .iter()
        .filter(|n| n["params"]["progressToken"] == "victim")
        .collect();
    assert_eq!(victim.len(), 3, "{progress:#?}");
    let numbered: Vec<&Value> = progress
        .iter()
        .filter(|n| n["params"]["progressToken"] == 7)
        .collect();
    assert_eq!(numbered.len(), 2, "{progress:#?}");
    let a = gw.server_health("a").await;
    assert_eq!(a["progress_dropped"], 2, "{a}");
    let b = gw.server_health("b").await;
    assert_eq!(b["progress_dropped"], 0, "{b}");
    finish(gw).await;
}

/// Defect 10 (child half): a response with both `result` and `error`, or with neither, is an
/// invalid response: the client gets -31007 at once naming the server and what was wrong
/// (not the result as if nothing happened, not a timeout), and it is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_with_both_or_neither_result_and_error_are_errors() {
    let gw = Gateway::start(&config(
        "call_timeout: 20s, startup_timeout: 10s",
        &[
            fault_with("both", "result_and_error", &[], ""),
            fault_with("empty", "empty_response", &[], ""),
        ],
    ))
    .await;
    wait_ready(&gw, &["both", "empty"], STEP).await;

    for (server, what) in [
        ("both", "both a result and an error"),
        ("empty", "neither a result nor an error"),
    ] {
        let started = Instant::now();
        let err = gw
            .call(&format!("{server}__echo"), json!({ "text": "x" }))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{server}: answered after {:?}",
            started.elapsed()
        );
        assert_eq!(err["code"], -31007, "{err}");
        assert_eq!(err["data"]["server"], server, "{err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("server \"{server}\"")) && message.contains(what),
            "{message}"
        );
        let health = gw.server_health(server).await;
        assert_eq!(health["invalid_responses"], 1, "{health}");
        assert_eq!(health["errors"], 1, "{health}");
        assert_eq!(health["state"], "ready", "{health}");
    }
    finish(gw).await;
}

//! Many calls at once: every answer goes to its own request, a slow call delays nobody,
//! cancellations and timeouts reach the owning child only, and progress flows to the client
//! ahead of the response it belongs to.

use std::path::Path;
use std::time::{Duration, Instant};

use orchestra_tests::{
    everything_entry, fault_child, fault_server, finish, gateway_bin, procs, text_of, within,
    Gateway, TempDir, MARKER_VAR, STEP,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// "Well under a second": the bound on a fast call made while a slow one is in flight.
const FAST: Duration = Duration::from_millis(500);

/// Lines of a fault child's FAULT_LOG (empty if it does not exist yet).
fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `path` until a line starting with `prefix` appears (bounded by `limit`).
async fn wait_log_line(path: &Path, prefix: &str, limit: Duration) -> String {
    within(limit, &format!("`{prefix}` in {}", path.display()), async {
        loop {
            if let Some(l) = log_lines(path).into_iter().find(|l| l.starts_with(prefix)) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The id the child saw for its only `tools/call` request (from its FAULT_LOG).
fn only_call_id(path: &Path) -> String {
    let calls: Vec<String> = log_lines(path)
        .into_iter()
        .filter_map(|l| l.strip_prefix("request tools/call ").map(str::to_owned))
        .collect();
    assert_eq!(
        calls.len(),
        1,
        "expected one tools/call in {}: {calls:?}",
        path.display()
    );
    calls[0].clone()
}

fn assert_pending(rx: &mut oneshot::Receiver<Value>, what: &str) {
    match rx.try_recv() {
        Err(oneshot::error::TryRecvError::Empty) => {}
        Ok(msg) => panic!("{what}: got an answer already: {msg}"),
        Err(e) => panic!("{what}: response channel broken: {e}"),
    }
}

/// 100 `tools/call`s spread over three children (everything `echo`, two fault children's
/// `echo`), all written before any answer is read, are each answered exactly once, under their
/// own id, with their own payload, by the child they were routed to — and nothing else arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_interleaved_calls_each_get_their_own_answer_once() {
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}{}{}",
        everything_entry(),
        fault_server("alpha", "", &[]),
        fault_server("beta", "", &[]),
    );
    let gw = Gateway::start(&config).await;
    let names = gw.tool_names().await; // held until every child has settled
    for t in ["everything__echo", "alpha__echo", "beta__echo"] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }
    let alpha_pid = gw.server_health("alpha").await["pid"]
        .as_u64()
        .expect("alpha pid");
    let beta_pid = gw.server_health("beta").await["pid"]
        .as_u64()
        .expect("beta pid");
    assert_ne!(alpha_pid, beta_pid);

    struct Sent {
        id: u64,
        tool: &'static str,
        text: String,
        pid: Option<u64>,
        rx: oneshot::Receiver<Value>,
    }
    let mut sent = Vec::new();
    for i in 0..100 {
        let (tool, args, text, pid) = match i % 3 {
            0 => {
                let m = format!("m{i}-to-everything");
                (
                    "everything__echo",
                    json!({ "message": m }),
                    format!("Echo: {m}"),
                    None,
                )
            }
            1 => {
                let m = format!("m{i}-to-alpha");
                ("alpha__echo", json!({ "text": m }), m, Some(alpha_pid))
            }
            _ => {
                let m = format!("m{i}-to-beta");
                ("beta__echo", json!({ "text": m }), m, Some(beta_pid))
            }
        };
        let (id, rx) = gw
            .send_request_with_id("tools/call", json!({ "name": tool, "arguments": args }))
            .await;
        sent.push(Sent {
            id,
            tool,
            text,
            pid,
            rx,
        });
    }

    within(STEP, "100 concurrent answers", async {
        for s in sent {
            let msg = s.rx.await.expect("gateway closed stdout before answering");
            assert_eq!(msg["id"], s.id, "{msg}");
            assert!(msg.get("error").is_none(), "{} failed: {msg}", s.tool);
            let result = &msg["result"];
            assert_eq!(
                text_of(result),
                s.text,
                "{} answered with another call's payload",
                s.tool
            );
            if let Some(pid) = s.pid {
                assert_eq!(
                    result["structuredContent"]["pid"], pid,
                    "{} answered by the wrong child: {msg}",
                    s.tool
                );
            }
        }
    })
    .await;

    // A duplicate or stray response would show up as an unexpected line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let garbage = gw.stdout_garbage.lock().unwrap().clone();
    assert!(garbage.is_empty(), "unexpected output: {garbage:?}");
    for server in ["everything", "alpha", "beta"] {
        let s = gw.server_health(server).await;
        assert_eq!(s["in_flight"], 0, "{server} still has calls pending: {s}");
        assert_eq!(s["state"], "ready", "{s}");
    }
    finish(gw).await;
}

/// No head-of-line blocking: while a 3 s `sleep` is in flight on one child, fast calls to that
/// same child and to another child each complete well under a second, before the slow call
/// returns; the slow call then still gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_call_does_not_delay_fast_calls() {
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}{}",
        everything_entry(),
        fault_server("alpha", "", &[]),
    );
    let gw = Gateway::start(&config).await;
    gw.tool_names().await;

    let started = Instant::now();
    let mut slow = gw
        .send_request(
            "tools/call",
            json!({ "name": "alpha__sleep", "arguments": { "ms": 3000 } }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await; // the sleep is now at the child

    for k in 0..5 {
        let t = Instant::now();
        let r = gw
            .call("alpha__echo", json!({ "text": format!("fast-{k}") }))
            .await
            .expect("fast call to the busy child");
        let took = t.elapsed();
        assert_eq!(text_of(&r), format!("fast-{k}"));
        assert!(took < FAST, "call to the busy child took {took:?}");

        let t = Instant::now();
        let r = gw
            .call(
                "everything__echo",
                json!({ "message": format!("other-{k}") }),
            )
            .await
            .expect("fast call to the other child");
        let took = t.elapsed();
        assert_eq!(text_of(&r), format!("Echo: other-{k}"));
        assert!(took < FAST, "call to the other child took {took:?}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "fast calls took too long overall: {:?}",
        started.elapsed()
    );
    assert_pending(&mut slow, "the 3 s sleep");

    let msg = within(Duration::from_secs(10), "the slow call's answer", slow)
        .await
        .expect("gateway closed stdout");
    assert!(msg.get("error").is_none(), "{msg}");
    assert_eq!(text_of(&msg["result"]), "slept 3000");
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "the sleep returned early: {:?}",
        started.elapsed()
    );
    finish(gw).await;
}

/// A client's `notifications/cancelled` reaches only the child that owns the call, re-addressed
/// to the id that child saw (not the client's id), with the client's reason; no response for
/// the cancelled id ever reaches the client, and the child keeps serving calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cancellation_reaches_only_the_owning_child() {
    let logs = TempDir::new("cancel-logs");
    let log_a = logs.join("a.log");
    let log_b = logs.join("b.log");
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}{}",
        fault_server("alpha", "", &[("FAULT_LOG", &log_a.display().to_string())]),
        fault_server("beta", "", &[("FAULT_LOG", &log_b.display().to_string())]),
    );
    let gw = Gateway::start(&config).await;
    gw.tool_names().await;
    // Push the client's ids well past the children's so a forwarded front id would show.
    for k in 0..8 {
        let r = gw
            .call("beta__echo", json!({ "text": format!("b{k}") }))
            .await
            .unwrap();
        assert_eq!(text_of(&r), format!("b{k}"));
    }

    let (front_id, mut rx) = gw
        .send_request_with_id(
            "tools/call",
            json!({ "name": "alpha__sleep", "arguments": { "ms": 10000 } }),
        )
        .await;
    wait_log_line(&log_a, "request tools/call ", Duration::from_secs(5)).await;
    let child_id = only_call_id(&log_a);
    assert_ne!(
        child_id,
        front_id.to_string(),
        "test precondition: client and child ids must differ"
    );

    gw.notify(
        "notifications/cancelled",
        json!({ "requestId": front_id, "reason": "user" }),
    )
    .await;
    let line = wait_log_line(&log_a, "cancelled ", Duration::from_secs(2)).await;
    assert_eq!(
        line,
        format!("cancelled {child_id} user"),
        "log: {:?}",
        log_lines(&log_a)
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_pending(&mut rx, "the cancelled call");
    let b = log_lines(&log_b);
    assert!(
        !b.iter().any(|l| l.starts_with("cancelled")),
        "the other child got a cancellation: {b:?}"
    );
    let a_cancels = log_lines(&log_a)
        .into_iter()
        .filter(|l| l.starts_with("cancelled"))
        .count();
    assert_eq!(a_cancels, 1, "log: {:?}", log_lines(&log_a));
    assert_eq!(gw.server_health("alpha").await["in_flight"], 0);

    let r = gw
        .call("alpha__echo", json!({ "text": "still here" }))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "still here");
    assert_pending(&mut rx, "the cancelled call");
    finish(gw).await;
}

/// Progress notifications carrying the client's `_meta.progressToken` are forwarded to the
/// client unchanged (token, progress, total), one per step, before the call's response; a call
/// without a token produces no progress at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_forwarded_before_the_response() {
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}",
        everything_entry()
    );
    let mut gw = Gateway::start(&config).await;
    gw.tool_names().await;
    gw.drain_notifications();

    let (_, mut rx) = gw
        .send_request_with_id(
            "tools/call",
            json!({
                "name": "everything__trigger-long-running-operation",
                "arguments": { "duration": 1, "steps": 4 },
                "_meta": { "progressToken": "tok-1" }
            }),
        )
        .await;
    // Notifications first, so one already received is never ordered after the response.
    let mut before = Vec::new();
    let response = within(STEP, "progress and response", async {
        loop {
            tokio::select! {
                biased;
                n = gw.next_notification("notifications/progress", STEP) => {
                    before.push(n.expect("notification stream ended"));
                }
                r = &mut rx => break r.expect("gateway closed stdout"),
            }
        }
    })
    .await;
    // Lines the kit's reader queued before the response are in the queue by now.
    let with_response: Vec<Value> = gw
        .drain_notifications()
        .into_iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert!(response.get("error").is_none(), "{response}");
    assert!(
        text_of(&response["result"]).contains("Steps: 4"),
        "{response}"
    );
    before.extend(with_response);
    assert_eq!(before.len(), 4, "progress before the response: {before:?}");
    for (i, n) in before.iter().enumerate() {
        assert_eq!(n["params"]["progressToken"], "tok-1", "{n}");
        assert_eq!(n["params"]["progress"], i as u64 + 1, "{n}");
        assert_eq!(n["params"]["total"], 4, "{n}");
    }
    let late = gw
        .next_notification("notifications/progress", Duration::from_millis(500))
        .await;
    assert!(late.is_none(), "progress after the response: {late:?}");

    // Without a token: no progress.
    let r = gw
        .call(
            "everything__trigger-long-running-operation",
            json!({ "duration": 1, "steps": 2 }),
        )
        .await
        .unwrap();
    assert!(text_of(&r).contains("Steps: 2"), "{r}");
    let stray = gw
        .next_notification("notifications/progress", Duration::from_millis(500))
        .await;
    assert!(
        stray.is_none(),
        "progress without a progressToken: {stray:?}"
    );
    finish(gw).await;
}

type RawLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

fn wire(v: Value) -> Vec<u8> {
    format!("{v}\n").into_bytes()
}

/// Reads stdout lines (each must be JSON-RPC 2.0) into `seen` until responses for all `ids`
/// have arrived; any other response fails the test.
async fn read_until(lines: &mut RawLines, seen: &mut Vec<Value>, ids: &[u64]) {
    let mut left: Vec<u64> = ids.to_vec();
    while !left.is_empty() {
        let line = lines
            .next_line()
            .await
            .expect("reading gateway stdout")
            .expect("gateway closed stdout");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("non-JSON line on stdout ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        if v.get("method").is_none() {
            let id = v["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("response without our id: {line}"));
            assert!(left.contains(&id), "unexpected response: {line}");
            left.retain(|l| *l != id);
        }
        seen.push(v);
    }
}

/// Strict wire order, read from the gateway's raw stdout (the kit splits notifications and
/// responses into separate queues): for two concurrent calls with a string and a numeric
/// progress token, every progress line for a call precedes that call's response line, and the
/// tokens come back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_precedes_its_response_on_the_wire() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = TempDir::new("raw-progress");
    let config = dir.join("orchestra.yaml");
    std::fs::write(
        &config,
        orchestra_tests::with_marker_inherited(&format!(
            "gateway: {{call_timeout: 30s}}\nservers:\n{}{}",
            everything_entry(),
            fault_server("alpha", "", &[])
        )),
    )
    .unwrap();
    let marker = orchestra_tests::new_marker();
    let show = std::env::var_os("ORCHESTRA_TEST_SHOW_LOGS").is_some();
    let mut child = tokio::process::Command::new(gateway_bin())
        .arg("serve")
        .arg("-c")
        .arg(&config)
        .env(MARKER_VAR, &marker)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(if show {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .expect("spawning mcp-orchestra");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen: Vec<Value> = Vec::new();

    within(STEP, "raw session", async {
        let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}});
        stdin.write_all(&wire(init)).await.unwrap();
        read_until(&mut lines, &mut seen, &[1]).await;
        let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}});
        stdin.write_all(&wire(initialized)).await.unwrap();
        stdin.write_all(&wire(list)).await.unwrap();
        read_until(&mut lines, &mut seen, &[2]).await;
        seen.clear();
        let a = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{
            "name":"everything__trigger-long-running-operation",
            "arguments":{"duration":1,"steps":3},
            "_meta":{"progressToken":"tok-a"}}});
        let b = json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{
            "name":"alpha__progress",
            "arguments":{"steps":5,"interval_ms":0},
            "_meta":{"progressToken":42}}});
        stdin.write_all(&wire(a)).await.unwrap();
        stdin.write_all(&wire(b)).await.unwrap();
        stdin.flush().await.unwrap();
        read_until(&mut lines, &mut seen, &[3, 4]).await;
    })
    .await;

    for (id, token, steps) in [(3u64, json!("tok-a"), 3u64), (4, json!(42), 5)] {
        let pos = seen
            .iter()
            .position(|v| v.get("method").is_none() && v["id"] == id)
            .expect("response seen");
        assert!(seen[pos].get("error").is_none(), "{}", seen[pos]);
        let progress: Vec<(usize, &Value)> = seen
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v["method"] == "notifications/progress" && v["params"]["progressToken"] == token
            })
            .collect();
        let values: Vec<u64> = progress
            .iter()
            .map(|(_, v)| v["params"]["progress"].as_u64().unwrap())
            .collect();
        assert_eq!(
            values,
            (1..=steps).collect::<Vec<_>>(),
            "token {token}: {seen:?}"
        );
        for (i, v) in &progress {
            assert!(
                *i < pos,
                "progress after the response for id {id}: {v} (order {seen:?})"
            );
        }
    }

    // Nothing after the responses either.
    let extra = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
    if let Ok(Ok(Some(line))) = extra {
        panic!("unexpected line after the responses: {line}");
    }
    drop(stdin);
    let status = within(
        Duration::from_secs(20),
        "gateway exit after stdin EOF",
        child.wait(),
    )
    .await
    .unwrap();
    assert!(status.success(), "gateway exit: {status}");
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}

/// A server's own `call_timeout` overrides the gateway default for that server only: with the
/// default at 30 s and the fault server at 1 s, a 5 s `sleep` fails with -31003 after about
/// 1 s (and the child is sent `notifications/cancelled`), while a 2 s call to another server
/// still succeeds and the fault server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_server_call_timeout_overrides_the_default() {
    let logs = TempDir::new("timeout-logs");
    let log = logs.join("slow.log");
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}  slow: {{command: \"{}\", env: {{FAULT_LOG: \"{}\"}}, call_timeout: 1s}}\n",
        everything_entry(),
        fault_child().display(),
        log.display(),
    );
    let gw = Gateway::start(&config).await;
    gw.tool_names().await;

    let long = gw
        .send_request(
            "tools/call",
            json!({
                "name": "everything__trigger-long-running-operation",
                "arguments": { "duration": 2, "steps": 1 }
            }),
        )
        .await;
    let t = Instant::now();
    let err = gw
        .call("slow__sleep", json!({ "ms": 5000 }))
        .await
        .expect_err("the 5 s sleep must time out");
    let took = t.elapsed();
    assert_eq!(err["code"], -31003, "{err}");
    assert_eq!(err["data"]["server"], "slow", "{err}");
    assert_eq!(err["data"]["timeout_ms"], 1000, "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "timed out after {took:?}, expected about 1 s"
    );
    let child_id = only_call_id(&log);
    let cancelled = wait_log_line(&log, "cancelled ", Duration::from_secs(2)).await;
    assert_eq!(
        cancelled,
        format!("cancelled {child_id} timed out in mcp-orchestra")
    );

    let msg = within(Duration::from_secs(10), "the 2 s everything call", long)
        .await
        .expect("gateway closed stdout");
    assert!(
        msg.get("error").is_none(),
        "the 1 s override leaked to another server: {msg}"
    );
    assert!(text_of(&msg["result"]).contains("Duration: 2"), "{msg}");

    let r = gw
        .call("everything__echo", json!({ "message": "fine" }))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: fine");
    let r = gw
        .call("slow__echo", json!({ "text": "after" }))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "after");
    finish(gw).await;
}

/// A call to a server that is still starting waits for it; if the client cancels it meanwhile,
/// no answer is sent and the call never reaches the child once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_parked_on_a_starting_child() {
    let dir = TempDir::new("parked");
    let log = dir.join("late.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_server("late", "slow_start:1500", &[("FAULT_LOG", log_s.as_str())])
    );
    let gw = Gateway::start(&config).await;
    // Sent while `late` is still starting (its initialize answer takes 1.5 s).
    let (cancelled_id, mut cancelled) = gw
        .send_request_with_id(
            "tools/call",
            json!({"name": "late__echo", "arguments": {"text": "never"}}),
        )
        .await;
    let kept = gw
        .send_request(
            "tools/call",
            json!({"name": "late__echo", "arguments": {"text": "kept"}}),
        )
        .await;
    gw.notify(
        "notifications/cancelled",
        json!({"requestId": cancelled_id, "reason": "user"}),
    )
    .await;

    let answer = within(STEP, "the parked call that was not cancelled", kept)
        .await
        .unwrap();
    assert_eq!(text_of(&answer["result"]), "kept", "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cancelled.try_recv().is_err(),
        "a cancelled call must get no answer"
    );
    let calls = log_lines(&log)
        .into_iter()
        .filter(|l| l.starts_with("request tools/call"))
        .count();
    assert_eq!(
        calls,
        1,
        "only the kept call reaches the child: {:?}",
        log_lines(&log)
    );
    finish(gw).await;
}

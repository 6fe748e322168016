//! A broken child never takes the gateway down: next to a healthy real server, every kind of
//! failure leaves the healthy one serving, and the health tool tells the truth about the
//! broken one.

use std::time::{Duration, Instant};

use orchestra_tests::{
    everything_entry, fault_with, finish, procs, str_of, text_of, unavailable_detail, within,
    Gateway, TempDir,
};
use serde_json::{json, Value};

/// A config with the healthy `everything` and the given extra server entries.
fn config(gateway: &str, servers: &[String]) -> String {
    let mut yaml = format!("gateway: {{{gateway}}}\nservers:\n{}", everything_entry());
    for s in servers {
        yaml.push_str(s);
    }
    yaml
}

/// The healthy child answers through the gateway.
async fn assert_everything_serves(gw: &Gateway, message: &str) {
    gw.wait_server("everything", Duration::from_secs(15), |s| {
        s["state"] == "ready"
    })
    .await;
    let echo = gw
        .call("everything__echo", json!({ "message": message }))
        .await
        .unwrap_or_else(|e| panic!("everything__echo failed: {e}"));
    assert_eq!(text_of(&echo), format!("Echo: {message}"), "{echo}");
}

/// Processes of this gateway that are fault children.
fn fault_children(marker: &str) -> Vec<procs::Proc> {
    procs::with_marker(marker)
        .into_iter()
        .filter(|p| p.cmdline.contains("orchestra-fault-child"))
        .collect()
}

/// A server whose command does not exist is `misconfigured` — reported once, never retried —
/// and a call to any of its tools gets an answer saying so and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_command_is_misconfigured_and_not_retried() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, restart: {initial_backoff: 100ms}",
        &["  broken: {command: \"/nonexistent/mcp-server\"}\n".to_owned()],
    ))
    .await;

    let broken = gw
        .wait_server("broken", Duration::from_secs(5), |s| {
            s["state"] != "starting"
        })
        .await;
    assert_eq!(broken["state"], "misconfigured", "{broken}");
    assert!(
        str_of(&broken, "reason").contains("command not found"),
        "{broken}"
    );
    assert!(
        str_of(&broken, "reason").contains("/nonexistent/mcp-server"),
        "the reason names the command: {broken}"
    );
    assert_eq!(broken["pid"], Value::Null, "{broken}");

    // No restart loop: with a 100ms backoff, a loop would have restarted it several times.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let broken = gw.server_health("broken").await;
    assert_eq!(
        (broken["state"].as_str(), broken["restarts"].as_u64()),
        (Some("misconfigured"), Some(0)),
        "{broken}"
    );

    let answer = gw
        .call("broken__anything", json!({}))
        .await
        .expect("an isError result, not a protocol error");
    let detail = unavailable_detail(&answer, "broken");
    assert_eq!(detail["state"], "misconfigured", "{answer}");
    assert!(text_of(&answer).contains("command not found"), "{answer}");

    assert_everything_serves(&gw, "still here").await;
    let health = gw.health().await;
    assert_eq!(health["gateway"]["servers_total"], 2, "{health}");
    assert_eq!(health["gateway"]["servers_ready"], 1, "{health}");
    finish(gw).await;
}

/// A child that never answers `initialize` is killed once its startup timeout passes, counted
/// as a failure and retried after a backoff (fault matrix A6); meanwhile calls get a clear answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_child_is_killed_at_startup_timeout_and_retried_later() {
    let started = Instant::now();
    let gw = Gateway::start(&config(
        "startup_timeout: 15s, shutdown_grace: 1s",
        &[fault_with(
            "mute",
            "hang_on:initialize",
            &[],
            // The next attempt (20 s away) is due after a call's timeout (5 s): calls are
            // answered at once rather than waiting for it.
            "startup_timeout: 2s, call_timeout: 5s, restart: {initial_backoff: 20s, jitter: 0.0}",
        )],
    ))
    .await;

    let mute = gw
        .wait_server("mute", Duration::from_secs(5), |s| s["state"] != "starting")
        .await;
    let took = started.elapsed();
    assert_eq!(mute["state"], "restarting", "{mute}");
    assert!(
        took < Duration::from_millis(3500),
        "gave up only after {took:?} with a 2s startup timeout"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "gave up after {took:?}, before its 2s startup timeout"
    );
    let reason = str_of(&mute, "reason");
    assert!(
        reason.contains("no answer") && reason.contains("handshake"),
        "{mute}"
    );
    assert!(
        mute["next_attempt"].is_string(),
        "the next attempt is announced: {mute}"
    );
    assert_eq!(mute["tools"], 0, "{mute}");

    // The silent child was killed, not abandoned: no fault child is left while the gateway runs.
    within(
        Duration::from_secs(3),
        "the silent child to be stopped",
        async {
            while !fault_children(&gw.marker).is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await;

    let answer = gw
        .call("mute__echo", json!({"text": "x"}))
        .await
        .expect("an isError result");
    let detail = unavailable_detail(&answer, "mute");
    assert_eq!(detail["state"], "restarting", "{answer}");
    assert!(detail["next_attempt"].is_string(), "{answer}");

    assert_everything_serves(&gw, "unaffected").await;
    finish(gw).await;
}

/// A child that keeps exiting at once is restarted with backoff until the crash-loop breaker
/// trips: then it is `failed`, calls fail fast, and it is not spawned again until its
/// re-probe time (fault matrix A3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_trips_the_breaker_and_stops_spawning() {
    let dir = TempDir::new("crashloop");
    let marker_file = dir.join("spawns");
    let marker = marker_file.display().to_string();
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "quits",
            "exit_on_start:7",
            &[("FAULT_MARKER", marker.as_str())],
            "restart: {initial_backoff: 100ms, multiplier: 2.0, max_restarts: 3, within: 1m, reprobe_after: 10m}",
        )],
    ))
    .await;

    let quits = gw
        .wait_server("quits", Duration::from_secs(10), |s| s["state"] == "failed")
        .await;
    assert!(str_of(&quits, "reason").contains("exit code 7"), "{quits}");
    assert!(str_of(&quits, "reason").contains("crash loop"), "{quits}");
    assert_eq!(quits["last_exit"], "exit code 7", "{quits}");
    assert_eq!(quits["restarts"], 3, "{quits}");

    // First start + 3 restarts, with growing gaps (100ms, 200ms, 400ms ± 20%).
    let spawns = |path: &std::path::Path| -> Vec<u64> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect()
    };
    let times = spawns(&marker_file);
    assert_eq!(times.len(), 4, "spawns: {times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] >= 70 && gaps[2] >= 300 && gaps[2] > gaps[0],
        "backoff gaps should grow: {gaps:?}"
    );

    // Calls fail fast and spawn nothing.
    let t = Instant::now();
    let answer = gw
        .call("quits__echo", json!({"text": "x"}))
        .await
        .expect("an isError result");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "a call to a failed server took {:?}",
        t.elapsed()
    );
    let detail = unavailable_detail(&answer, "quits");
    assert_eq!(detail["state"], "failed", "{answer}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        spawns(&marker_file).len(),
        4,
        "no spawn after the breaker tripped"
    );

    let events = gw.health().await["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["server"] == "quits" && e["kind"] == "failed"),
        "{events}"
    );
    assert_everything_serves(&gw, "unaffected").await;
    finish(gw).await;
}

/// A child that prints a banner and invalid UTF-8 on stdout still works: the noise is skipped
/// and counted, never forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_noise_from_a_child_is_skipped_and_counted() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with("noisy", "banner,invalid_utf8", &[], "")],
    ))
    .await;

    let noisy = gw
        .wait_server("noisy", Duration::from_secs(5), |s| {
            s["state"] != "starting"
        })
        .await;
    assert_eq!(noisy["state"], "ready", "{noisy}");
    let echo = gw
        .call("noisy__echo", json!({"text": "through the noise"}))
        .await
        .unwrap_or_else(|e| panic!("noisy__echo failed: {e}"));
    assert_eq!(text_of(&echo), "through the noise", "{echo}");

    let noisy = gw.server_health("noisy").await;
    assert!(
        noisy["stdout_noise_lines"].as_u64().unwrap() >= 2,
        "banner and invalid UTF-8 lines are counted: {noisy}"
    );

    assert_everything_serves(&gw, "unaffected").await;
    finish(gw).await;
}

/// A child that dies mid-conversation: the call in flight is answered at once with what
/// happened, its tools are withdrawn and the client told; it is restarted after its backoff,
/// its tools come back and the client is told again (fault matrix A1/A2, recovery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_crash_answers_in_flight_calls_then_the_child_comes_back() {
    let mut gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 20s",
        &[fault_with(
            "fragile",
            "",
            &[],
            "restart: {initial_backoff: 2s, jitter: 0.0}",
        )],
    ))
    .await;
    gw.wait_server("fragile", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    gw.wait_server("everything", Duration::from_secs(15), |s| {
        s["state"] == "ready"
    })
    .await;

    // The client has seen the catalog, so changes to it must be announced.
    let before = gw.tool_names().await;
    assert!(before.iter().any(|n| n == "fragile__sleep"), "{before:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.drain_notifications();

    let sleeping = gw
        .send_request(
            "tools/call",
            json!({"name": "fragile__sleep", "arguments": {"ms": 5000}}),
        )
        .await;
    gw.wait_server("fragile", Duration::from_secs(5), |s| {
        s["in_flight"].as_u64() == Some(1)
    })
    .await;

    let crashed_at = Instant::now();
    let crash = gw.call("fragile__crash", json!({})).await.unwrap_err();
    assert_eq!(crash["code"], -31002, "{crash}");

    let answer = within(
        Duration::from_secs(3),
        "the in-flight sleep to be answered",
        sleeping,
    )
    .await
    .expect("the in-flight call is answered");
    let waited = crashed_at.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "the in-flight call was answered {waited:?} after the crash"
    );
    let err = &answer["error"];
    assert_eq!(err["code"], -31002, "{answer}");
    let message = str_of(err, "message");
    assert!(
        message.contains("fragile") && message.contains("exit code 3"),
        "{answer}"
    );
    assert_eq!(err["data"]["server"], "fragile", "{answer}");
    assert_eq!(err["data"]["exit"], "exit code 3", "{answer}");
    assert_eq!(
        err["data"]["delivered"], true,
        "the sleep had reached the child: {answer}"
    );
    assert_eq!(err["data"]["retryable"], false, "{answer}");

    let fragile = gw
        .wait_server("fragile", Duration::from_secs(3), |s| {
            s["state"] == "restarting"
        })
        .await;
    assert_eq!(fragile["last_exit"], "exit code 3", "{fragile}");
    assert!(
        str_of(&fragile, "reason").contains("exit code 3"),
        "{fragile}"
    );
    assert_eq!(fragile["tools"], 0, "{fragile}");

    assert!(
        gw.next_notification("notifications/tools/list_changed", Duration::from_secs(3))
            .await
            .is_some(),
        "no tools/list_changed after a server's tools went away"
    );
    let after = gw.tool_names().await;
    assert!(
        !after.iter().any(|n| n.starts_with("fragile__")),
        "the dead server's tools are still listed: {after:?}"
    );
    assert!(after.iter().any(|n| n == "everything__echo"), "{after:?}");

    // A call made while it restarts (due within 2 s, well inside the 20 s call timeout)
    // waits for it and is answered by the new process.
    let waiting = gw
        .send_request(
            "tools/call",
            json!({"name": "fragile__echo", "arguments": {"text": "x"}}),
        )
        .await;

    // Back after the backoff: ready, tools listed again, the client told, calls work.
    let back = gw
        .wait_server("fragile", Duration::from_secs(8), |s| s["state"] == "ready")
        .await;
    assert_eq!(back["restarts"], 1, "{back}");
    let waited = within(
        Duration::from_secs(5),
        "the call made while restarting",
        waiting,
    )
    .await
    .expect("answered");
    assert_eq!(text_of(&waited["result"]), "x", "{waited}");
    assert_eq!(
        waited["result"]["structuredContent"]["pid"], back["pid"],
        "answered by the restarted process: {waited}"
    );
    assert!(
        gw.next_notification("notifications/tools/list_changed", Duration::from_secs(3))
            .await
            .is_some(),
        "no tools/list_changed after the server came back"
    );
    assert!(gw.tool_names().await.iter().any(|n| n == "fragile__echo"));
    let echo = gw
        .call("fragile__echo", json!({"text": "again"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "again");
    let kinds: Vec<String> = gw.health().await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["server"] == "fragile")
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["ready", "died", "restarting", "recovered"],
        "event log"
    );

    assert_everything_serves(&gw, "after the crash").await;
    finish(gw).await;
}

/// A child flooding its stderr is drained: its calls still succeed in normal time, and health
/// keeps only a short tail of what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_flood_is_drained_and_its_tail_bounded() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 10s",
        &[fault_with("chatty", "stderr_flood:10485760", &[], "")],
    ))
    .await;
    let chatty = gw
        .wait_server("chatty", Duration::from_secs(10), |s| {
            s["state"] != "starting"
        })
        .await;
    assert_eq!(chatty["state"], "ready", "{chatty}");

    let started = Instant::now();
    let echo = gw
        .call("chatty__echo", json!({"text": "heard over the noise"}))
        .await
        .unwrap_or_else(|e| panic!("chatty__echo failed: {e}"));
    assert_eq!(text_of(&echo), "heard over the noise", "{echo}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the call took {:?}",
        started.elapsed()
    );

    let chatty = gw.server_health("chatty").await;
    let tail = chatty["stderr_tail"].as_array().expect("stderr_tail array");
    assert!(!tail.is_empty(), "{chatty}");
    assert!(tail.len() <= 20, "stderr_tail has {} lines", tail.len());

    assert_everything_serves(&gw, "unaffected").await;
    finish(gw).await;
}

/// A call that outlives its server's `call_timeout` is answered with -31003 at the deadline,
/// the child is told to stop with `notifications/cancelled`, and health counts the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_timeout_answers_and_cancels_at_the_child() {
    let scratch = TempDir::new("timeout");
    let log = scratch.join("fault.log");
    let log_path = log.display().to_string();
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "slow",
            "",
            &[("FAULT_LOG", &log_path)],
            "call_timeout: 1s",
        )],
    ))
    .await;
    gw.wait_server("slow", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;

    let started = Instant::now();
    let err = gw
        .call("slow__sleep", json!({"ms": 10000}))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err["code"], -31003, "{err}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1500),
        "timed out after {took:?} with a 1s call_timeout"
    );
    assert_eq!(err["data"]["server"], "slow", "{err}");
    assert_eq!(err["data"]["timeout_ms"], 1000, "{err}");

    // The child saw the call, then its cancellation under the same id.
    let lines = within(
        Duration::from_secs(3),
        "the cancellation in the fault log",
        async {
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.lines().any(|l| l.starts_with("cancelled ")) {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await;
    let call_id = lines
        .lines()
        .find_map(|l| l.strip_prefix("request tools/call "))
        .unwrap_or_else(|| panic!("no tools/call in the fault log:\n{lines}"))
        .trim()
        .to_owned();
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with(&format!("cancelled {call_id} "))),
        "no `cancelled {call_id}` in the fault log:\n{lines}"
    );

    let slow = gw.server_health("slow").await;
    assert!(slow["timeouts"].as_u64().unwrap() >= 1, "{slow}");
    assert_eq!(
        slow["state"], "ready",
        "a timeout does not fail the server: {slow}"
    );
    assert_eq!(slow["in_flight"], 0, "{slow}");

    // The server still serves after its call was cancelled.
    let echo = gw
        .call("slow__echo", json!({"text": "still up"}))
        .await
        .unwrap_or_else(|e| panic!("slow__echo failed: {e}"));
    assert_eq!(text_of(&echo), "still up");

    assert_everything_serves(&gw, "unaffected").await;
    finish(gw).await;
}

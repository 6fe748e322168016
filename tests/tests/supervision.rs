//! Supervision under fault (fault matrix of shared/mcp-notes.md, groups A and B): a child that
//! is killed, frozen, floods or garbles its stdout, crashes or changes its tools is answered
//! for, restarted when it must be and only then, and the health tool tells the truth.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use orchestra_tests::{deps, fault_with, finish, str_of, text_of, within, Gateway};
use serde_json::{json, Value};

/// A config with the given server entries only.
fn config(gateway: &str, servers: &[String]) -> String {
    let mut yaml = format!("gateway: {{{gateway}}}\nservers:\n");
    for s in servers {
        yaml.push_str(s);
    }
    yaml
}

/// The pid of a server's live process, from health.
fn pid_of(server: &Value) -> i32 {
    let pid = server["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid in {server}"));
    i32::try_from(pid).expect("pid fits i32")
}

fn signal_pid(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("kill({pid}, {sig}): {e}"));
}

/// Sends SIGCONT to a process on drop, so a failing test never leaves a stopped child behind
/// (harmless if it has exited).
struct ContinueOnDrop(i32);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// Kinds of the health events about `server`, oldest first.
async fn event_kinds(gw: &Gateway, server: &str) -> Vec<String> {
    gw.health().await["events"]
        .as_array()
        .expect("events array")
        .iter()
        .filter(|e| e["server"] == server)
        .map(|e| e["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Whether `wanted` appears in `kinds` in this order (other kinds may come between).
fn in_order(kinds: &[String], wanted: &[&str]) -> bool {
    let mut it = kinds.iter();
    wanted.iter().all(|w| it.any(|k| k == w))
}

/// The gateway's peak resident set size (VmHWM) in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

async fn echo(gw: &Gateway, server: &str, text: &str) {
    let r = gw
        .call(&format!("{server}__echo"), json!({ "text": text }))
        .await
        .unwrap_or_else(|e| panic!("{server}__echo failed: {e}"));
    assert_eq!(text_of(&r), text, "{r}");
    assert_ne!(r["isError"], true, "{r}");
}

/// A1: SIGKILL of a real child (`server-everything`) with 5 calls in flight: all 5 are answered
/// with -31002 (delivered, "signal 9") within 500 ms; the child is restarted after its backoff,
/// health shows one restart and the SIGKILL, and calls work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a1_sigkill_of_real_child_answers_in_flight_calls_and_restarts_it() {
    let gw = Gateway::start(&config(
        "startup_timeout: 20s, call_timeout: 30s",
        &[format!(
            "  everything: {{command: \"{}\", args: [stdio], restart: {{initial_backoff: 300ms, jitter: 0.0}}}}\n",
            deps().everything
        )],
    ))
    .await;
    let ready = gw
        .wait_server("everything", Duration::from_secs(15), |s| {
            s["state"] == "ready"
        })
        .await;
    let pid = pid_of(&ready);

    let mut pending = Vec::new();
    for _ in 0..5 {
        pending.push(
            gw.send_request(
                "tools/call",
                json!({
                    "name": "everything__trigger-long-running-operation",
                    "arguments": {"duration": 10, "steps": 10}
                }),
            )
            .await,
        );
    }
    gw.wait_server("everything", Duration::from_secs(5), |s| {
        s["in_flight"].as_u64() == Some(5)
    })
    .await;
    // Let the writer flush them to the child, so they count as delivered.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let killed_at = Instant::now();
    signal_pid(pid, Signal::SIGKILL);
    for (i, rx) in pending.into_iter().enumerate() {
        let answer = within(Duration::from_secs(3), "an in-flight call's answer", rx)
            .await
            .expect("the in-flight call is answered");
        let waited = killed_at.elapsed();
        eprintln!("a1: in-flight call {i} answered {waited:?} after SIGKILL");
        assert!(
            waited < Duration::from_millis(500),
            "in-flight call {i} answered {waited:?} after SIGKILL"
        );
        let err = &answer["error"];
        assert_eq!(err["code"], -31002, "{answer}");
        assert!(str_of(err, "message").contains("signal 9"), "{answer}");
        assert_eq!(err["data"]["delivered"], true, "{answer}");
        assert_eq!(err["data"]["server"], "everything", "{answer}");
    }

    let back = gw
        .wait_server("everything", Duration::from_secs(15), |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        })
        .await;
    assert_eq!(back["last_exit"], "signal 9 (SIGKILL)", "{back}");
    assert!(
        orchestra_tests::procs::zombie_children(gw.pid()).is_empty(),
        "the killed child was not reaped"
    );
    assert_ne!(pid_of(&back), pid, "a new process: {back}");
    assert_eq!(back["in_flight"], 0, "{back}");

    let r = gw
        .call("everything__echo", json!({"message": "after the kill"}))
        .await
        .unwrap_or_else(|e| panic!("everything__echo failed: {e}"));
    assert_eq!(text_of(&r), "Echo: after the kill", "{r}");
    let kinds = event_kinds(&gw, "everything").await;
    assert!(
        in_order(&kinds, &["ready", "died", "restarting", "recovered"]),
        "{kinds:?}"
    );
    finish(gw).await;
}

/// A5 (idle, frozen): a SIGSTOPped child misses pings: after `unhealthy_after` it is
/// `unhealthy` and its tools are withdrawn; after `restart_after` it is killed and restarted,
/// then ready again with one restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a5_frozen_child_turns_unhealthy_then_is_killed_and_restarted() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "frozen",
            "",
            &[],
            "probe: {interval: 300ms, timeout: 200ms, unhealthy_after: 2, restart_after: 5}, restart: {initial_backoff: 300ms, jitter: 0.0}",
        )],
    ))
    .await;
    let ready = gw
        .wait_server("frozen", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let pid = pid_of(&ready);
    assert!(gw.tool_names().await.iter().any(|n| n == "frozen__echo"));
    let _cont = ContinueOnDrop(pid);

    let stopped_at = Instant::now();
    signal_pid(pid, Signal::SIGSTOP);
    let sick = gw
        .wait_server("frozen", Duration::from_secs(2), |s| s["state"] != "ready")
        .await;
    assert_eq!(sick["state"], "unhealthy", "{sick}");
    assert!(str_of(&sick, "reason").contains("ping"), "{sick}");
    assert!(sick["probe_failures"].as_u64().unwrap() >= 2, "{sick}");
    assert_eq!(sick["tools"], 0, "{sick}");
    let names = gw.tool_names().await;
    assert!(
        !names.iter().any(|n| n.starts_with("frozen__")),
        "an unhealthy server's tools are still listed: {names:?}"
    );

    let back = gw
        .wait_server("frozen", Duration::from_secs(6), |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        })
        .await;
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(1000),
        "restarted only {:?} after SIGSTOP, before 5 missed pings",
        stopped_at.elapsed()
    );
    assert_ne!(pid_of(&back), pid, "a new process: {back}");
    assert_eq!(back["probe_failures"], 0, "{back}");
    assert!(gw.tool_names().await.iter().any(|n| n == "frozen__echo"));
    echo(&gw, "frozen", "thawed").await;

    let kinds = event_kinds(&gw, "frozen").await;
    assert!(
        in_order(&kinds, &["ready", "unhealthy", "died", "recovered"]),
        "{kinds:?}"
    );
    finish(gw).await;
}

/// A5 (hysteresis): a child frozen long enough to turn unhealthy, but resumed before
/// `restart_after`, is ready again at its first answered ping — same process, no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a5_resumed_child_recovers_without_a_restart() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "dozy",
            "",
            &[],
            "probe: {interval: 300ms, timeout: 200ms, unhealthy_after: 2, restart_after: 20}",
        )],
    ))
    .await;
    let ready = gw
        .wait_server("dozy", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let pid = pid_of(&ready);
    let _cont = ContinueOnDrop(pid);

    signal_pid(pid, Signal::SIGSTOP);
    let sick = gw
        .wait_server("dozy", Duration::from_secs(2), |s| s["state"] != "ready")
        .await;
    assert_eq!(sick["state"], "unhealthy", "{sick}");
    assert!(
        !gw.tool_names()
            .await
            .iter()
            .any(|n| n.starts_with("dozy__")),
        "an unhealthy server's tools are still listed"
    );

    signal_pid(pid, Signal::SIGCONT);
    let back = gw
        .wait_server("dozy", Duration::from_secs(3), |s| s["state"] == "ready")
        .await;
    assert_eq!(back["restarts"], 0, "{back}");
    assert_eq!(pid_of(&back), pid, "the same process: {back}");
    assert_eq!(back["probe_failures"], 0, "{back}");
    assert!(gw.tool_names().await.iter().any(|n| n == "dozy__echo"));
    echo(&gw, "dozy", "awake").await;

    let kinds = event_kinds(&gw, "dozy").await;
    assert_eq!(kinds, ["ready", "unhealthy", "recovered"], "event log");
    finish(gw).await;
}

/// B3: one 20 MB line (over the 16 MiB cap) before a call's answer: the line is skipped and
/// counted, the call answered correctly, the server stays ready and the gateway's peak RSS
/// stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3_oversized_line_is_skipped_with_bounded_memory() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 20s",
        &[fault_with("wide", "huge_line:20000000", &[], "")],
    ))
    .await;
    let ready = gw
        .wait_server("wide", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let pid = pid_of(&ready);
    let before = peak_rss_kib(gw.pid());

    echo(&gw, "wide", "after the long line").await;
    let wide = gw.server_health("wide").await;
    assert!(
        wide["stdout_noise_lines"].as_u64().unwrap() >= 1,
        "the oversized line is counted: {wide}"
    );
    assert_eq!(wide["state"], "ready", "{wide}");
    assert_eq!(wide["restarts"], 0, "{wide}");
    assert_eq!(pid_of(&wide), pid, "{wide}");
    echo(&gw, "wide", "and again").await;

    let peak = peak_rss_kib(gw.pid());
    eprintln!("b3: gateway VmHWM {before} KiB before, {peak} KiB after");
    assert!(
        peak < 80 * 1024,
        "gateway peak RSS {peak} KiB (before the line: {before} KiB)"
    );
    finish(gw).await;
}

/// B4: endless stdout without a newline: the pending call is answered with -31002, the child
/// is killed and restarted, and the gateway's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b4_newline_free_flood_kills_and_restarts_the_child() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 30s",
        &[fault_with(
            "flood",
            "no_newline_flood",
            &[],
            "restart: {initial_backoff: 200ms, jitter: 0.0}",
        )],
    ))
    .await;
    let ready = gw
        .wait_server("flood", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let pid = pid_of(&ready);

    let started = Instant::now();
    let err = within(
        Duration::from_secs(12),
        "the flooding call's answer",
        gw.call("flood__echo", json!({"text": "x"})),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert_eq!(err["code"], -31002, "{err}");
    assert_eq!(err["data"]["server"], "flood", "{err}");
    assert_eq!(err["data"]["delivered"], true, "{err}");

    let back = gw
        .wait_server("flood", Duration::from_secs(5), |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        })
        .await;
    assert_ne!(pid_of(&back), pid, "a new process: {back}");
    assert!(
        back["stdout_noise_lines"].as_u64().unwrap() >= 1,
        "the flood is counted: {back}"
    );
    let kinds = event_kinds(&gw, "flood").await;
    assert!(
        in_order(&kinds, &["ready", "died", "recovered"]),
        "{kinds:?}"
    );

    let peak = peak_rss_kib(gw.pid());
    eprintln!("b4: answered after {took:?}; gateway VmHWM {peak} KiB");
    assert!(peak < 200 * 1024, "gateway peak RSS {peak} KiB");
    finish(gw).await;
}

/// B6: unknown-id and duplicate responses are dropped and counted; every call is answered
/// exactly once with its own result and nothing stray reaches the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b6_unknown_and_duplicate_responses_are_dropped_and_counted() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "twice",
            "unknown_id_response,respond_twice",
            &[],
            "",
        )],
    ))
    .await;
    gw.wait_server("twice", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;

    for i in 0..10 {
        echo(&gw, "twice", &format!("call number {i}")).await;
    }
    let twice = gw
        .wait_server("twice", Duration::from_secs(3), |s| {
            s["unmatched_responses"].as_u64().is_some_and(|n| n >= 20)
        })
        .await;
    assert_eq!(twice["state"], "ready", "{twice}");
    assert_eq!(twice["in_flight"], 0, "{twice}");
    // Give any stray duplicate a chance to reach the client before checking its stdout.
    tokio::time::sleep(Duration::from_millis(200)).await;
    finish(gw).await;
}

/// B1/B2: a banner, invalid UTF-8 and garbage before every response are skipped and counted;
/// calls keep working, also after the child is restarted and prints its banner again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b1_b2_stdout_noise_is_skipped_and_counted_across_a_restart() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "noisy",
            "banner,invalid_utf8,garbage_before_response",
            &[],
            "restart: {initial_backoff: 200ms, jitter: 0.0}",
        )],
    ))
    .await;
    gw.wait_server("noisy", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    for i in 0..5 {
        echo(&gw, "noisy", &format!("through the noise {i}")).await;
    }
    let noisy = gw.server_health("noisy").await;
    // Two banner lines, one invalid UTF-8 line, one garbage line per call.
    assert!(
        noisy["stdout_noise_lines"].as_u64().unwrap() >= 8,
        "{noisy}"
    );
    assert_eq!(noisy["state"], "ready", "{noisy}");

    let crash = gw.call("noisy__crash", json!({})).await.unwrap_err();
    assert_eq!(crash["code"], -31002, "{crash}");
    let back = gw
        .wait_server("noisy", Duration::from_secs(5), |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        })
        .await;
    assert_eq!(back["last_exit"], "exit code 3", "{back}");
    echo(&gw, "noisy", "after the restart").await;
    let noisy = gw.server_health("noisy").await;
    assert!(
        noisy["stdout_noise_lines"].as_u64().unwrap() >= 12,
        "noise of both lives is counted: {noisy}"
    );
    finish(gw).await;
}

/// A child announcing `notifications/tools/list_changed`: the gateway relists its tools, tells
/// the client, and the new tool is listed and callable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_announced_tool_change_reaches_the_client() {
    let mut gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with("growing", "tools_change_after:1", &[], "")],
    ))
    .await;
    gw.wait_server("growing", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    let before = gw.tool_names().await;
    assert!(
        !before.iter().any(|n| n == "growing__added_later"),
        "{before:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.drain_notifications();

    echo(&gw, "growing", "first").await;
    assert!(
        gw.next_notification("notifications/tools/list_changed", Duration::from_secs(5))
            .await
            .is_some(),
        "no tools/list_changed after the child announced new tools"
    );
    let after = gw.tool_names().await;
    assert!(
        after.iter().any(|n| n == "growing__added_later"),
        "{after:?}"
    );
    let r = gw
        .call("growing__added_later", json!({"text": "new tool"}))
        .await
        .unwrap_or_else(|e| panic!("growing__added_later failed: {e}"));
    assert_eq!(text_of(&r), "new tool", "{r}");

    let growing = gw.server_health("growing").await;
    assert_eq!(growing["state"], "ready", "{growing}");
    assert_eq!(growing["restarts"], 0, "{growing}");
    let kinds = event_kinds(&gw, "growing").await;
    assert!(kinds.iter().any(|k| k == "tools_changed"), "{kinds:?}");
    finish(gw).await;
}

/// A2: a child that exits after 3 calls: the 4th call gets -31002 (delivered), the child comes
/// back after its backoff and the next call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_crash_after_n_calls_then_the_child_comes_back() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "brittle",
            "crash_after:3",
            &[],
            "restart: {initial_backoff: 200ms, jitter: 0.0}",
        )],
    ))
    .await;
    gw.wait_server("brittle", Duration::from_secs(5), |s| s["state"] == "ready")
        .await;
    for i in 1..=3 {
        echo(&gw, "brittle", &format!("call {i}")).await;
    }

    let err = gw
        .call("brittle__echo", json!({"text": "call 4"}))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -31002, "{err}");
    assert_eq!(err["data"]["delivered"], true, "{err}");
    assert_eq!(err["data"]["retryable"], false, "{err}");
    assert_eq!(err["data"]["exit"], "exit code 3", "{err}");
    assert!(str_of(&err, "message").contains("exit code 3"), "{err}");

    let back = gw
        .wait_server("brittle", Duration::from_secs(5), |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        })
        .await;
    assert_eq!(back["last_exit"], "exit code 3", "{back}");
    echo(&gw, "brittle", "call 5").await;
    finish(gw).await;
}

/// A2: calls still queued in the gateway (never written to the child) when the child dies are
/// sent again once it is back, and succeed; calls that had reached it get -31002 with
/// `delivered: true`. Every call is answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_calls_that_never_reached_a_dead_child_are_sent_again() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 20s",
        &[fault_with(
            "stalled",
            "",
            &[],
            "restart: {initial_backoff: 300ms, jitter: 0.0}",
        )],
    ))
    .await;
    let pid = pid_of(
        &gw.wait_server("stalled", Duration::from_secs(5), |s| s["state"] == "ready")
            .await,
    );
    // Frozen, the child stops reading: its stdin pipe (64 KiB) fills and the rest of the
    // calls stay queued in the gateway.
    signal_pid(pid, Signal::SIGSTOP);
    let _resume = ContinueOnDrop(pid);
    let texts: Vec<String> = (0..12)
        .map(|i| format!("{i}-{}", "x".repeat(20_000)))
        .collect();
    let mut pending = Vec::new();
    for text in &texts {
        pending.push(
            gw.send_request(
                "tools/call",
                json!({"name": "stalled__echo", "arguments": {"text": text}}),
            )
            .await,
        );
    }
    gw.wait_server("stalled", Duration::from_secs(5), |s| {
        s["in_flight"].as_u64() == Some(12)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal_pid(pid, Signal::SIGKILL);

    let (mut resent_ok, mut failed_delivered, mut failed_undelivered) = (0, 0, 0);
    for (text, rx) in texts.iter().zip(pending) {
        let answer = within(Duration::from_secs(15), "every call to be answered", rx)
            .await
            .expect("answered");
        if let Some(err) = answer.get("error") {
            assert_eq!(err["code"], -31002, "{err}");
            if err["data"]["delivered"] == true {
                failed_delivered += 1;
            } else {
                assert_eq!(err["data"]["retryable"], true, "{err}");
                failed_undelivered += 1;
            }
        } else {
            assert_eq!(
                &text_of(&answer["result"]),
                text,
                "a re-sent call gets its own answer"
            );
            resent_ok += 1;
        }
    }
    assert!(
        failed_delivered >= 1,
        "the calls the child had read or had in its pipe fail"
    );
    assert!(resent_ok >= 1, "queued calls are sent again and succeed ({failed_delivered} delivered, {failed_undelivered} undelivered failures)");
    let back = gw.server_health("stalled").await;
    assert_eq!(
        (back["state"].as_str(), back["restarts"].as_u64()),
        (Some("ready"), Some(1)),
        "{back}"
    );
    finish(gw).await;
}

/// A call waiting to be re-sent after its child died is still the client's to cancel: once
/// cancelled it gets no answer and is not sent, while the other re-sent calls succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_to_be_resent_can_be_cancelled() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 20s",
        &[fault_with(
            "stalled",
            "",
            &[],
            "restart: {initial_backoff: 1500ms, jitter: 0.0}",
        )],
    ))
    .await;
    let pid = pid_of(
        &gw.wait_server("stalled", Duration::from_secs(5), |s| s["state"] == "ready")
            .await,
    );
    signal_pid(pid, Signal::SIGSTOP);
    let _resume = ContinueOnDrop(pid);
    let mut pending = Vec::new();
    for i in 0..12 {
        let text = format!("{i}-{}", "x".repeat(20_000));
        pending.push(
            gw.send_request_with_id(
                "tools/call",
                json!({"name": "stalled__echo", "arguments": {"text": text}}),
            )
            .await,
        );
    }
    gw.wait_server("stalled", Duration::from_secs(5), |s| {
        s["in_flight"].as_u64() == Some(12)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal_pid(pid, Signal::SIGKILL);
    // The last call was surely still queued: it now waits for the restart (1.5 s away).
    gw.wait_server("stalled", Duration::from_secs(5), |s| {
        s["state"] == "restarting"
    })
    .await;
    let (last_id, mut last) = pending.pop().expect("12 calls");
    gw.notify(
        "notifications/cancelled",
        json!({"requestId": last_id, "reason": "user"}),
    )
    .await;

    let mut resent_ok = 0;
    for (_, rx) in pending {
        let answer = within(
            Duration::from_secs(15),
            "every other call to be answered",
            rx,
        )
        .await
        .expect("answered");
        if answer.get("result").is_some() {
            resent_ok += 1;
        }
    }
    assert!(resent_ok >= 1, "the other queued calls are still re-sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(last.try_recv().is_err(), "a cancelled call gets no answer");
    finish(gw).await;
}

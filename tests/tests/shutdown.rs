//! Ending the gateway, however it ends, ends its whole process tree: stdin EOF, SIGTERM and
//! SIGINT stop every child (grandchildren included) and exit 0; SIGKILL leaves the watchdog
//! to kill the children's groups; stdout never carries anything but JSON-RPC.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orchestra_tests::{
    deps, fault_server, gateway_bin, new_marker, procs, wait_ready, within, Gateway, TempDir,
    MARKER_VAR,
};
use serde_json::{json, Value};

/// Real children: `everything`, `memory`, and a second memory server behind `sh -c` so that
/// node is a grandchild of the gateway (as with npx).
fn real_servers(data: &TempDir) -> String {
    let d = deps();
    format!(
        "  everything: {{command: \"{everything}\", args: [stdio]}}\n\
         \x20 memory: {{command: \"{memory}\", env: {{MEMORY_FILE_PATH: \"{data}/memory.jsonl\"}}}}\n\
         \x20 wrapped: {{command: sh, args: [\"-c\", \"{memory}; true\"], env: {{MEMORY_FILE_PATH: \"{data}/wrapped.jsonl\"}}}}\n",
        everything = d.everything,
        memory = d.memory,
        data = data.path().display(),
    )
}

const REAL: [&str; 3] = ["everything", "memory", "wrapped"];

/// How long each server may take to become ready.
const READY: Duration = Duration::from_secs(15);

/// The gateway's live processes whose command line contains `needle`.
fn running(marker: &str, needle: &str) -> Vec<procs::Proc> {
    procs::with_marker(marker)
        .into_iter()
        .filter(|p| p.cmdline.contains(needle))
        .collect()
}

/// The process tree is what the config describes: the watchdog, both memory servers (one
/// under `sh`), and whatever else `needles` names.
fn assert_tree_running(marker: &str, needles: &[&str]) {
    let all = procs::with_marker(marker);
    assert!(
        !running(marker, "__watchdog").is_empty(),
        "no watchdog: {all:#?}"
    );
    assert!(
        running(marker, "mcp-server-memory").len() >= 2,
        "both memory servers (one a grandchild under sh) should run: {all:#?}"
    );
    for needle in needles {
        assert!(
            !running(marker, needle).is_empty(),
            "no {needle} process: {all:#?}"
        );
    }
}

/// Closing the gateway's stdin stops every child, grandchildren included, and exits 0 within
/// a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_eof_stops_every_child_and_exits_zero() {
    let data = TempDir::new("eof");
    let gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 15s, shutdown_grace: 1s}}\nservers:\n{}",
        real_servers(&data)
    ))
    .await;
    wait_ready(&gw, &REAL, READY).await;
    assert_tree_running(&gw.marker, &["mcp-server-everything", "sh -c"]);
    gw.assert_clean_stdout();

    close_quickly(gw).await;
}

/// Closes the client side; the gateway must exit 0 within 5 s, with clean stdout and nothing
/// left running a second later.
async fn close_quickly(gw: Gateway) {
    let marker = gw.marker.clone();
    let started = Instant::now();
    let (status, gw) = gw.close(Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "gateway exit: {status}\n{}",
        gw.logs()
    );
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    gw.assert_clean_stdout();
    procs::assert_none_left(&marker, Duration::from_secs(1)).await;
}

/// SIGTERM with a call in flight: the call is answered (with an error) before the gateway
/// exits 0, and no process is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_call_in_flight_and_exits_zero() {
    let mut gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 10s, shutdown_grace: 1s, call_timeout: 30s}}\nservers:\n{}",
        fault_server("fault", "", &[])
    ))
    .await;
    wait_ready(&gw, &["fault"], READY).await;

    let pending = gw
        .send_request(
            "tools/call",
            json!({"name": "fault__sleep", "arguments": {"ms": 10000}}),
        )
        .await;
    gw.wait_server("fault", Duration::from_secs(5), |s| {
        s["in_flight"].as_u64() == Some(1)
    })
    .await;

    let started = Instant::now();
    gw.signal(Signal::SIGTERM);
    let status = gw.wait_exit(Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "gateway exit: {status}\n{}",
        gw.logs()
    );
    assert!(took < Duration::from_secs(5), "exit took {took:?}");

    // The answer was written before the gateway exited (its stdout is closed by now).
    let answer: Value = within(
        Duration::from_secs(2),
        "the answer to the call in flight",
        pending,
    )
    .await
    .expect("the call in flight was never answered");
    let err = &answer["error"];
    assert!(err.is_object(), "expected an error answer: {answer}");
    assert!(
        err["code"] == -31001 || err["code"] == -31002,
        "an unavailable/exited error: {answer}"
    );
    assert_eq!(err["data"]["server"], "fault", "{answer}");

    gw.assert_clean_stdout();
    procs::assert_none_left(&gw.marker, Duration::from_secs(1)).await;
}

/// SIGINT (Ctrl-C) shuts down as cleanly as SIGTERM: exit 0, every child stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_every_child_and_exits_zero() {
    let data = TempDir::new("sigint");
    let mut gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 15s, shutdown_grace: 1s}}\nservers:\n{}{}",
        real_servers(&data),
        fault_server("fault", "", &[])
    ))
    .await;
    wait_ready(&gw, &["everything", "memory", "wrapped", "fault"], READY).await;
    assert_tree_running(&gw.marker, &["orchestra-fault-child"]);

    let started = Instant::now();
    gw.signal(Signal::SIGINT);
    let status = gw.wait_exit(Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "gateway exit: {status}\n{}",
        gw.logs()
    );
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    gw.assert_clean_stdout();
    procs::assert_none_left(&gw.marker, Duration::from_secs(1)).await;
}

/// SIGKILL gives the gateway no chance to clean up: its watchdog notices and kills every
/// child's process group — real servers, a shell's node grandchild, a fault child's
/// `sleep` grandchild — and then exits itself, all within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_the_watchdog_to_kill_every_group() {
    let data = TempDir::new("sigkill");
    let log = data.join("fault.log");
    let log_path = log.display().to_string();
    let mut gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 15s, shutdown_grace: 1s}}\nservers:\n{}{}",
        real_servers(&data),
        fault_server("forker", "spawn_grandchild", &[("FAULT_LOG", &log_path)])
    ))
    .await;
    wait_ready(&gw, &["everything", "memory", "wrapped", "forker"], READY).await;

    let grandchild: u32 = std::fs::read_to_string(&log)
        .expect("fault log")
        .lines()
        .find_map(|l| l.strip_prefix("grandchild "))
        .expect("the fault child logged its grandchild")
        .trim()
        .parse()
        .expect("grandchild pid");
    assert_tree_running(&gw.marker, &["mcp-server-everything", "sleep 3600"]);
    assert!(
        procs::with_marker(&gw.marker)
            .iter()
            .any(|p| p.pid == grandchild),
        "the grandchild {grandchild} should be running"
    );
    gw.assert_clean_stdout();

    gw.signal(Signal::SIGKILL);
    let status = gw.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(Signal::SIGKILL as i32),
        "{status}"
    );
    procs::assert_none_left(&gw.marker, Duration::from_secs(3)).await;
}

/// A child that ignores both stdin EOF and SIGTERM is SIGKILLed after the grace periods:
/// the gateway still exits 0 within about 5 s and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stubborn_child_is_killed_after_the_grace_period() {
    let gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 10s, shutdown_grace: 1s}}\nservers:\n{}",
        fault_server("stubborn", "ignore_eof,ignore_sigterm", &[])
    ))
    .await;
    wait_ready(&gw, &["stubborn"], READY).await;
    assert_eq!(running(&gw.marker, "orchestra-fault-child").len(), 1);

    close_quickly(gw).await;
}

/// Children failing during start-up (missing command, immediate exit, stdout banner) never
/// put anything on the gateway's stdout: the client sees only JSON-RPC, and no unprompted
/// notification before it has listed tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_children_at_startup_keep_stdout_clean() {
    let mut gw = Gateway::start(&format!(
        "gateway: {{startup_timeout: 10s, shutdown_grace: 1s}}\nservers:\n\
         \x20 missing: {{command: \"/nonexistent/mcp-server\"}}\n{}{}",
        fault_server("quits", "banner,invalid_utf8,exit_on_start:5", &[]),
        fault_server("noisy", "banner,invalid_utf8,garbage_before_response", &[])
    ))
    .await;
    for name in ["missing", "quits"] {
        let s = gw
            .wait_server(name, Duration::from_secs(5), |s| {
                matches!(
                    s["state"].as_str(),
                    Some("misconfigured" | "restarting" | "failed")
                )
            })
            .await;
        assert!(s["reason"].is_string(), "{s}");
    }
    wait_ready(&gw, &["noisy"], READY).await;
    let echo = gw
        .call("noisy__echo", json!({"text": "clean"}))
        .await
        .unwrap_or_else(|e| panic!("noisy__echo failed: {e}"));
    assert_eq!(echo["content"][0]["text"], "clean", "{echo}");
    let unprompted = gw.drain_notifications();
    assert!(
        unprompted.is_empty(),
        "notifications before the client listed tools: {unprompted:?}"
    );
    gw.assert_clean_stdout();

    let marker = gw.marker.clone();
    let (status, gw) = gw.close(Duration::from_secs(8)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "gateway exit: {status}\n{}",
        gw.logs()
    );
    gw.assert_clean_stdout();
    procs::assert_none_left(&marker, Duration::from_secs(1)).await;
}

/// An invalid configuration (a domain owned by an unknown server) stops `serve` before
/// anything starts: exit 64, nothing on stdout, and stderr names the offending key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_error_exits_64_with_empty_stdout() {
    let dir = TempDir::new("badcfg");
    let config = dir.join("orchestra.yaml");
    std::fs::write(
        &config,
        format!(
            "servers:\n  everything: {{command: \"{}\", args: [stdio]}}\n\
             domain_boundaries:\n  research: nowhere\n",
            deps().everything
        ),
    )
    .unwrap();
    let marker = new_marker();
    let mut cmd = tokio::process::Command::new(gateway_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&config)
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = within(
        Duration::from_secs(10),
        "mcp-orchestra serve with a bad config",
        cmd.output(),
    )
    .await
    .expect("running mcp-orchestra");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{:?}\n{stderr}", out.status);
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("domain_boundaries.research"),
        "stderr names the key path: {stderr}"
    );
    assert!(
        stderr.contains("nowhere"),
        "stderr names the server: {stderr}"
    );
    procs::assert_none_left(&marker, Duration::from_secs(1)).await;
}

//! Graceful degradation: when a server goes down, its calls are served by a fallback along its
//! `server_alternatives` chain, or answered with what still works and what to use instead; the
//! health report tells which domains are normal, degraded or lost; a restart storm does not
//! flood the client with `tools/list_changed`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use orchestra_tests::{
    deps, fault_server, fault_with, finish, gateway_bin, new_marker, procs, text_of,
    unavailable_detail, wait_ready, within, Gateway, TempDir, MARKER_VAR,
};
use serde_json::{json, Value};

/// Key of the failover note in a served result's `_meta`.
const FAILOVER: &str = "mcp-orchestra/failover";

/// A config with the given server entries and top-level sections (`domain_boundaries`, ...).
fn config(gateway: &str, servers: &[String], sections: &str) -> String {
    let mut yaml = format!("gateway: {{{gateway}}}\nservers:\n");
    for s in servers {
        yaml.push_str(s);
    }
    yaml.push_str(sections);
    yaml
}

/// A restart policy that keeps a crashed server down for `backoff`.
fn down_for(backoff: &str) -> String {
    format!("restart: {{initial_backoff: {backoff}, max_backoff: {backoff}, jitter: 0.0}}")
}

/// The pid of a ready server.
async fn pid_of(gw: &Gateway, name: &str) -> u64 {
    let s = gw.server_health(name).await;
    s["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} has no pid: {s}"))
}

/// Crashes `name` through its `crash` tool and waits until the gateway sees it down.
async fn crash(gw: &Gateway, name: &str) -> Value {
    let err = gw
        .call(&format!("{name}__crash"), json!({}))
        .await
        .expect_err("a crash is answered with an error");
    assert_eq!(err["code"], -31002, "{err}");
    gw.wait_server(name, Duration::from_secs(3), |s| s["state"] != "ready")
        .await
}

/// One domain's entry in the health report.
fn domain<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["domains"]
        .as_array()
        .expect("domains array")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no domain {name} in health: {health}"))
}

/// When `db` is down, `db__echo` is served by its fallback `backup` (which has an `echo` too):
/// the result is backup's, carries a failover note naming both, the domain is reported
/// degraded with the configured capabilities, and a `failed_over` event is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_serves_a_same_named_tool() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[
            fault_with("db", "", &[], &down_for("10s")),
            fault_server("backup", "", &[]),
        ],
        "domain_boundaries: {data_persistence: db}\n\
         server_alternatives: {db: {fallback: backup, degraded_capabilities: [file_storage], lost_capabilities: [queries]}}\n",
    ))
    .await;
    wait_ready(&gw, &["db", "backup"], Duration::from_secs(10)).await;
    let health = gw.health().await;
    let d = domain(&health, "data_persistence");
    assert_eq!(
        (&d["mode"], &d["serving"]),
        (&json!("normal"), &json!("db")),
        "{d}"
    );
    let backup_pid = pid_of(&gw, "backup").await;

    let db = crash(&gw, "db").await;
    assert_eq!(db["state"], "restarting", "{db}");

    let served = gw
        .call("db__echo", json!({"text": "stand-in"}))
        .await
        .unwrap_or_else(|e| panic!("db__echo should be served by backup: {e}"));
    assert_ne!(served["isError"], true, "{served}");
    assert_eq!(text_of(&served), "stand-in", "{served}");
    assert_eq!(
        served["structuredContent"]["pid"], backup_pid,
        "backup answered: {served}"
    );
    let note = &served["_meta"][FAILOVER];
    assert_eq!(note["requested_server"], "db", "{served}");
    assert_eq!(note["served_by"], "backup", "{served}");
    assert_eq!(note["tool"], "echo", "{served}");
    assert!(
        note["reason"].as_str().is_some_and(|r| r.contains("db")),
        "the note says why: {served}"
    );

    let health = gw.health().await;
    let d = domain(&health, "data_persistence");
    assert_eq!(d["mode"], "degraded", "{d}");
    assert_eq!(d["owner"], "db", "{d}");
    assert_eq!(d["serving"], "backup", "{d}");
    assert_eq!(d["served"], true, "{d}");
    assert_eq!(d["degraded_capabilities"], json!(["file_storage"]), "{d}");
    assert_eq!(d["lost_capabilities"], json!(["queries"]), "{d}");
    let events = health["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["server"] == "db" && e["kind"] == "failed_over"),
        "a failed_over event for db: {events:?}"
    );
    assert!(
        text_of(&gw.call("orchestrator_health", json!({})).await.unwrap()).contains("DEGRADED"),
        "the summary shows the degraded domain"
    );
    finish(gw).await;
}

/// Once the primary is ready again after its backoff, its domain is back to normal and its
/// tools are answered by the new primary process, without any failover note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_returns_the_domain_to_the_primary() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[
            fault_with("db", "", &[], &down_for("1500ms")),
            fault_server("backup", "", &[]),
        ],
        "domain_boundaries: {data_persistence: db}\n\
         server_alternatives: {db: {fallback: backup, degraded_capabilities: [file_storage], lost_capabilities: [queries]}}\n",
    ))
    .await;
    wait_ready(&gw, &["db", "backup"], Duration::from_secs(10)).await;
    let old_pid = pid_of(&gw, "db").await;
    let backup_pid = pid_of(&gw, "backup").await;

    crash(&gw, "db").await;
    let degraded = gw.health().await;
    assert_eq!(
        domain(&degraded, "data_persistence")["mode"],
        "degraded",
        "{degraded}"
    );
    let served = gw
        .call("db__echo", json!({"text": "meanwhile"}))
        .await
        .unwrap();
    assert_eq!(served["structuredContent"]["pid"], backup_pid, "{served}");
    assert_eq!(served["_meta"][FAILOVER]["served_by"], "backup", "{served}");

    let db = gw
        .wait_server("db", Duration::from_secs(6), |s| {
            s["state"] == "ready" && s["pid"].as_u64().is_some_and(|p| p != old_pid)
        })
        .await;
    let new_pid = db["pid"].as_u64().unwrap();
    assert_eq!(db["restarts"], 1, "{db}");

    let health = gw.health().await;
    let d = domain(&health, "data_persistence");
    assert_eq!(d["mode"], "normal", "{d}");
    assert_eq!(d["serving"], "db", "{d}");
    assert_eq!(d["served"], true, "{d}");
    assert_eq!(d["degraded_capabilities"], json!([]), "{d}");
    assert_eq!(d["lost_capabilities"], json!([]), "{d}");

    let echo = gw
        .call("db__echo", json!({"text": "home again"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "home again", "{echo}");
    assert_eq!(echo["structuredContent"]["pid"], new_pid, "{echo}");
    assert!(
        echo["_meta"].get(FAILOVER).is_none(),
        "no failover note once the primary serves: {echo}"
    );
    finish(gw).await;
}

/// A fallback without a same-named tool cannot stand in for the call: the answer is an
/// isError result naming the server, its state and the degraded domain, and pointing at the
/// fallback's tools (here the real memory server's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_same_named_tool_on_the_fallback_points_to_its_tools() {
    let d = deps();
    let data = TempDir::new("degr-mem");
    let memory = format!(
        "  memory: {{command: \"{}\", env: {{MEMORY_FILE_PATH: \"{}\"}}}}\n",
        d.memory,
        data.join("memory.jsonl").display()
    );
    // The restart (10 s away) is due after the call's timeout (5 s): the call is answered at
    // once instead of waiting for it.
    let gw = Gateway::start(&config(
        "startup_timeout: 15s, call_timeout: 5s",
        &[
            fault_with("primary", "tool_name:special_op", &[], &down_for("10s")),
            memory,
        ],
        "domain_boundaries: {knowledge: primary}\n\
         server_alternatives: {primary: {fallback: memory, degraded_capabilities: [graph_reads], lost_capabilities: [special_ops]}}\n",
    ))
    .await;
    wait_ready(&gw, &["primary", "memory"], Duration::from_secs(15)).await;
    let special = gw
        .call("primary__special_op", json!({"text": "direct"}))
        .await
        .unwrap();
    assert_eq!(text_of(&special), "direct", "{special}");

    crash(&gw, "primary").await;
    let answer = gw
        .call("primary__special_op", json!({"text": "x"}))
        .await
        .expect("an isError result, not a protocol error");
    let detail = unavailable_detail(&answer, "primary");
    let text = text_of(&answer);
    assert!(text.contains("restarting"), "the state is named: {text}");
    assert!(
        text.contains("Domain knowledge is degraded") && text.contains("\"memory\""),
        "the degraded domain and who serves it: {text}"
    );
    assert!(
        text.contains("graph_reads") && text.contains("special_ops"),
        "what still works and what is lost: {text}"
    );
    assert!(text.contains("Use instead"), "{text}");
    assert!(text.contains("memory__read_graph"), "{text}");

    assert_eq!(detail["server"], "primary", "{answer}");
    assert_eq!(detail["state"], "restarting", "{answer}");
    assert_eq!(detail["fallback"], "memory", "{answer}");
    assert!(detail["next_attempt"].is_string(), "{answer}");
    let use_instead: Vec<&str> = detail["use_instead"]
        .as_array()
        .expect("use_instead array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(use_instead.contains(&"memory__read_graph"), "{answer}");
    assert!(
        use_instead.iter().all(|n| n.starts_with("memory__")),
        "only the stand-in's tools: {use_instead:?}"
    );
    let domains = detail["domains"].as_array().expect("domains array");
    assert_eq!(domains.len(), 1, "{answer}");
    assert_eq!(domains[0]["name"], "knowledge", "{answer}");
    assert_eq!(domains[0]["mode"], "degraded", "{answer}");
    assert_eq!(domains[0]["serving"], "memory", "{answer}");

    // The stand-in's tools really work.
    let graph = gw.call("memory__read_graph", json!({})).await.unwrap();
    assert_ne!(graph["isError"], true, "{graph}");
    finish(gw).await;
}

/// A domain whose owner is down with no fallback or secondary is reported lost, calls get an
/// answer saying so (with no alternative to offer), and the summary shows it as LOST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbackless_domain_is_reported_lost() {
    // The restart (10 s away) is due after the call's timeout (5 s): answered at once.
    let gw = Gateway::start(&config(
        "startup_timeout: 10s, call_timeout: 5s",
        &[
            fault_with("lonely", "", &[], &down_for("10s")),
            fault_server("bystander", "", &[]),
        ],
        "domain_boundaries: {research: lonely, chatter: bystander}\n",
    ))
    .await;
    wait_ready(&gw, &["lonely", "bystander"], Duration::from_secs(10)).await;

    crash(&gw, "lonely").await;
    let health = gw.health().await;
    let d = domain(&health, "research");
    assert_eq!(d["mode"], "lost", "{d}");
    assert_eq!(d["owner"], "lonely", "{d}");
    assert_eq!(d["serving"], Value::Null, "{d}");
    assert_eq!(d["served"], false, "{d}");
    let other = domain(&health, "chatter");
    assert_eq!(
        other["mode"], "normal",
        "an unrelated domain is unaffected: {other}"
    );

    let answer = gw
        .call("lonely__echo", json!({"text": "anyone?"}))
        .await
        .expect("an isError result, not a protocol error");
    let detail = unavailable_detail(&answer, "lonely");
    let text = text_of(&answer);
    assert!(text.contains("Domain research is lost"), "{text}");
    assert!(text.contains("No alternative tools"), "{text}");
    assert_eq!(detail["fallback"], Value::Null, "{answer}");
    assert_eq!(detail["use_instead"], json!([]), "{answer}");
    assert_eq!(detail["domains"][0]["mode"], "lost", "{answer}");

    let summary = text_of(&gw.call("orchestrator_health", json!({})).await.unwrap());
    assert!(
        summary.contains("domain research: LOST"),
        "the summary shows the lost domain: {summary}"
    );
    finish(gw).await;
}

/// A fallback that is itself down is skipped: with a → b → c and both a and b down, a's
/// tools are served by c.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_fallback_is_skipped_along_the_chain() {
    let gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[
            fault_with("a", "", &[], &down_for("10s")),
            fault_with("b", "", &[], &down_for("10s")),
            fault_server("c", "", &[]),
        ],
        "domain_boundaries: {work: a}\n\
         server_alternatives: {a: {fallback: b}, b: {fallback: c}}\n",
    ))
    .await;
    wait_ready(&gw, &["a", "b", "c"], Duration::from_secs(10)).await;
    let c_pid = pid_of(&gw, "c").await;

    crash(&gw, "a").await;
    crash(&gw, "b").await;

    let served = gw
        .call("a__echo", json!({"text": "third in line"}))
        .await
        .unwrap_or_else(|e| panic!("a__echo should be served by c: {e}"));
    assert_eq!(text_of(&served), "third in line", "{served}");
    assert_eq!(served["structuredContent"]["pid"], c_pid, "{served}");
    let note = &served["_meta"][FAILOVER];
    assert_eq!(note["requested_server"], "a", "{served}");
    assert_eq!(note["served_by"], "c", "{served}");

    let health = gw.health().await;
    let d = domain(&health, "work");
    assert_eq!(
        (&d["mode"], &d["serving"]),
        (&json!("degraded"), &json!("c")),
        "{d}"
    );
    finish(gw).await;
}

/// A server crashing and coming back over and over does not flood the client: tools/list_changed
/// notifications stay at about one per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_storm_yields_few_list_changed_notifications() {
    let mut gw = Gateway::start(&config(
        "startup_timeout: 10s",
        &[fault_with(
            "storm",
            "",
            &[],
            "restart: {initial_backoff: 100ms, max_backoff: 100ms, jitter: 0.0, max_restarts: 50}",
        )],
        "",
    ))
    .await;
    wait_ready(&gw, &["storm"], Duration::from_secs(10)).await;
    let names = gw.tool_names().await;
    assert!(names.iter().any(|n| n == "storm__echo"), "{names:?}");
    // Past the rate limit of any announcement of the start-up itself, so that the storm's
    // first change is announced (a change undone before it is announced is not).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gw.drain_notifications();

    let started = Instant::now();
    for round in 0..5 {
        let pid = pid_of(&gw, "storm").await;
        crash(&gw, "storm").await;
        gw.wait_server("storm", Duration::from_secs(5), |s| {
            s["state"] == "ready" && s["pid"].as_u64().is_some_and(|p| p != pid)
        })
        .await;
        eprintln!("round {round} done after {:?}", started.elapsed());
        // Up long enough each time that, without a rate limit, every down and every up
        // would be announced (10 notifications).
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Let any pending (debounced, rate-limited) announcement go out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let elapsed = started.elapsed();
    let count = gw
        .drain_notifications()
        .iter()
        .filter(|n| n["method"] == "notifications/tools/list_changed")
        .count();
    assert!(
        count >= 1,
        "the storm changed the catalog; no list_changed was sent"
    );
    assert!(
        count as f64 <= elapsed.as_secs_f64() + 2.0,
        "{count} list_changed notifications in {elapsed:?}"
    );
    assert_eq!(gw.server_health("storm").await["restarts"], 5);
    let names = gw.tool_names().await;
    assert!(names.iter().any(|n| n == "storm__echo"), "{names:?}");
    finish(gw).await;
}

/// Runs `mcp-orchestra health -c FILE [--json]` (no client) and returns its exit code and stdout,
/// checking that it left no process behind.
async fn run_health_cli(config: &std::path::Path, json: bool) -> (Option<i32>, String) {
    let marker = new_marker();
    let mut cmd = tokio::process::Command::new(gateway_bin());
    cmd.arg("health")
        .arg("-c")
        .arg(config)
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if json {
        cmd.arg("--json");
    }
    let out = within(
        Duration::from_secs(15),
        "mcp-orchestra health to exit",
        cmd.output(),
    )
    .await
    .expect("running mcp-orchestra health");
    procs::assert_none_left(&marker, Duration::from_secs(3)).await;
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 stdout");
    (out.status.code(), stdout)
}

/// `mcp-orchestra health` without a client starts the children, prints the report and exits
/// 1 when not every server is ready; the summary lists both servers and the lost domain, and
/// `--json` prints the structured report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_cli_reports_misconfigured_server_and_lost_domain() {
    let dir = TempDir::new("degr-cli");
    let file = dir.join("orchestra.yaml");
    std::fs::write(
        &file,
        orchestra_tests::with_marker_inherited(&config(
            "startup_timeout: 10s",
            &[
                fault_server("fine", "", &[]),
                "  gone: {command: \"/nonexistent/x\"}\n".to_owned(),
            ],
            "domain_boundaries: {research: gone}\n",
        )),
    )
    .expect("writing config");

    let (code, stdout) = run_health_cli(&file, false).await;
    assert_eq!(code, Some(1), "not every server is ready: {stdout}");
    assert!(stdout.contains("1/2 servers ready"), "{stdout}");
    assert!(stdout.contains("- fine: ready"), "{stdout}");
    assert!(stdout.contains("- gone: misconfigured"), "{stdout}");
    assert!(
        stdout.contains("/nonexistent/x"),
        "the reason names the command: {stdout}"
    );
    assert!(stdout.contains("domain research: LOST"), "{stdout}");

    let (code, stdout) = run_health_cli(&file, true).await;
    assert_eq!(code, Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("health --json is JSON ({e}): {stdout}"));
    let servers = report["servers"].as_array().expect("servers array");
    let state = |name: &str| {
        servers
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"].clone())
            .unwrap_or_else(|| panic!("no server {name}: {report}"))
    };
    assert_eq!(state("fine"), "ready", "{report}");
    assert_eq!(state("gone"), "misconfigured", "{report}");
    let d = domain(&report, "research");
    assert_eq!(
        (&d["mode"], &d["served"]),
        (&json!("lost"), &json!(false)),
        "{d}"
    );
}

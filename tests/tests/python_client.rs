//! The official Python MCP SDK (`mcp` 1.30.0) as the client: it launches the gateway itself
//! over stdio, in front of real servers, and everything it observes is asserted here.

use std::time::{Duration, Instant};

use orchestra_tests::{deps, gateway_bin, new_marker, procs, within, TempDir, MARKER_VAR};
use serde_json::Value;

/// Runs tests/python/e2e_client.py against a gateway with server-everything and
/// mcp-server-time, and returns its observations (panics with its stderr if it misbehaves).
async fn run_python_client(config_yaml: &str, marker: &str) -> Value {
    let dir = TempDir::new("py");
    let config = dir.join("orchestra.yaml");
    std::fs::write(&config, orchestra_tests::with_marker_inherited(config_yaml)).unwrap();
    let script = orchestra_tests::workspace_root().join("tests/python/e2e_client.py");
    let out = within(
        Duration::from_secs(90),
        "the Python SDK client to finish",
        tokio::process::Command::new(&deps().python)
            .arg(&script)
            .arg(gateway_bin())
            .arg(&config)
            .env(MARKER_VAR, marker)
            // The gateway's cache and task store in this test's folder, not the user's.
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            .env("ORCHESTRA_DATA_DIR", dir.join("data"))
            .env("RUST_LOG", "info,orchestra_gateway=debug")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running the Python client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var_os("ORCHESTRA_TEST_SHOW_LOGS").is_some() {
        eprintln!("[python+gateway stderr]\n{stderr}");
    }
    assert!(
        out.status.success(),
        "python exited {}: {stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.trim();
    assert_eq!(
        line.lines().count(),
        1,
        "expected one JSON line, got: {stdout}\n{stderr}"
    );
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}\n{stderr}"))
}

/// With the official Python SDK as client: the handshake names mcp-orchestra, the catalog
/// holds both children's namespaced tools and the health tool, calls route and return results
/// unchanged, progress reaches the SDK's progress_callback (one per step), the health tool's
/// structuredContent passes the SDK's own outputSchema validation and counts 2 servers ready,
/// an unknown tool raises McpError naming the tool (the session survives it), and on close the
/// gateway exits by itself with no process left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_client_end_to_end() {
    let d = deps();
    let config = format!(
        "gateway: {{call_timeout: 30s, startup_timeout: 30s}}\nservers:\n  everything: {{command: \"{}\", args: [stdio]}}\n  time: {{command: \"{}\", args: [\"--local-timezone\", \"UTC\"]}}\n",
        d.everything, d.time
    );
    let marker = new_marker();
    let started = Instant::now();
    let obs = run_python_client(&config, &marker).await;
    eprintln!("python client finished in {:?}", started.elapsed());

    let tracebacks = obs.get("tracebacks").cloned().unwrap_or(Value::Null);
    assert_eq!(
        obs["errors"],
        serde_json::json!({}),
        "steps failed in the Python client: {tracebacks:#}"
    );
    assert_eq!(obs["server_name"], "mcp-orchestra", "{obs}");
    assert_eq!(obs["protocol_version"], "2025-11-25", "{obs}");
    assert_eq!(obs["tools_list_changed"], true, "{obs}");

    let tools: Vec<&str> = obs["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {obs}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "everything__echo",
        "everything__trigger-long-running-operation",
        "time__get_current_time",
        "orchestrator_health",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }

    assert_eq!(obs["echo_is_error"], false, "{obs}");
    assert_eq!(obs["echo_text"], "Echo: from python", "{obs}");

    assert_eq!(obs["progress_is_error"], false, "{obs}");
    assert!(
        obs["progress_text"]
            .as_str()
            .is_some_and(|t| t.contains("Steps: 2")),
        "{obs}"
    );
    let callbacks = obs["progress_callbacks"].as_array().expect("callbacks");
    assert_eq!(callbacks.len(), 2, "progress callbacks: {callbacks:?}");
    for (i, c) in callbacks.iter().enumerate() {
        assert_eq!(c["progress"].as_f64(), Some(i as f64 + 1.0), "{c}");
        assert_eq!(c["total"].as_f64(), Some(2.0), "{c}");
    }

    assert_eq!(obs["time_is_error"], false, "{obs}");
    assert!(
        obs["time_text"].as_str().is_some_and(|t| t.contains("UTC")),
        "{obs}"
    );

    assert_eq!(obs["health_is_error"], false, "{obs}");
    assert_eq!(obs["health"]["gateway"]["servers_ready"], 2, "{obs}");

    let unknown = &obs["unknown_error"];
    assert!(
        unknown.is_object(),
        "no McpError for an unknown tool: {obs}"
    );
    assert_eq!(unknown["code"], -32602, "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("everything__no_such_tool")),
        "error does not name the tool: {unknown}"
    );
    assert_eq!(obs["echo_after_error_text"], "Echo: after error", "{obs}");

    // The SDK waits 2 s after closing stdin before it terminates the process tree itself.
    let shutdown = obs["shutdown_seconds"].as_f64().expect("shutdown_seconds");
    assert!(
        shutdown < 1.9,
        "the gateway did not exit on stdin EOF by itself ({shutdown:.2} s): the SDK had to terminate it"
    );
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}
